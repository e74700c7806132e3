"""The cost model (regioncount.line.cost): predictions that grow with what drives memory, and refusals before
any work, with the estimate in a one-line message."""

from __future__ import annotations

import pytest
from random_nets import gaussian_ffn

from regioncount import count_segment, theorem1_deq
from regioncount.core.errors import CostLimitError
from regioncount.line.cost import estimate_exact, estimate_sampled


def _ffn(dims, seed=0):
    return gaussian_ffn(dims, seed, bias=0.0, he=True)

def test_exact_estimates_follow_the_batch_cap_and_the_kept_breakpoints():
    small, wide = _ffn([1, 64, 1]), _ffn([1, 20000, 1])
    a = estimate_exact(small, linear_pieces=True, keep_breakpoints=False, regions=None).bytes
    b = estimate_exact(wide, linear_pieces=True, keep_breakpoints=False, regions=None).bytes
    assert a < b <= 64 * 2**16 * 200  # capped by the batch: 64 * max_pieces state values
    # one piece enters the only hidden layer: its children's slopes follow from the unit flips, so only
    # their ends and two maps are held, far below the batch cap; count only builds no children at all
    assert b < 64 * 2**16 * 64 / 20
    count_only = estimate_exact(wide, linear_pieces=False, keep_breakpoints=False, regions=None).bytes
    assert count_only < b
    # deep nets whose last-layer parents have about one child each: every child's map, as the walk builds
    deep = _ffn([1] + [512] * 8 + [1])
    assert estimate_exact(deep, linear_pieces=True, keep_breakpoints=False, regions=3945).bytes >= 3945 * 512 * 48
    deq = theorem1_deq(20)
    kept = estimate_exact(deq, linear_pieces=False, keep_breakpoints=True, regions=2**20).bytes
    plain = estimate_exact(deq, linear_pieces=False, keep_breakpoints=False, regions=2**20).bytes
    assert kept - plain == 40 * 2**20


def test_a_walk_that_cannot_fit_is_refused_before_it_starts():
    with pytest.raises(CostLimitError, match=r"needs about .* GiB \(estimated\), above the memory limit"):
        count_segment(_ffn([1, 4096, 4096, 1]), interval=(-1, 1), memory_limit=16 * 2**20, device="cpu")
    # the same net under a roomy limit counts
    assert count_segment(_ffn([1, 256, 1]), interval=(-1, 1), memory_limit=2**30, device="cpu").activation_regions > 1


def test_sampled_estimate_grows_with_samples_and_distinct_patterns():
    net = _ffn([2, 256, 256, 1])
    few = estimate_sampled(net, samples=10**5, distinct=10**3).bytes
    many = estimate_sampled(net, samples=10**7, distinct=10**3).bytes
    diverse = estimate_sampled(net, samples=10**7, distinct=10**7).bytes
    assert few < many < diverse


def test_exact_counts_are_timed_by_the_pilot_and_refused_past_max_seconds():
    """A wide layer makes linear pieces cost width x children: the timed pilot (pieces included) refuses it
    in a fraction of the time, while the count-only walk of the same net is estimated as fast and runs."""
    from random_nets import gaussian_ffn

    from regioncount.line.exact1d import count_segment

    model = gaussian_ffn([1, 20_000, 1], 3)
    with pytest.raises(CostLimitError, match=r"about .* s \(timed on 1\.6% of the segment\): above the time limit"):
        count_segment(model, interval=(-3.0, 3.0), device="cpu", max_seconds=1e-3)
    quick = count_segment(model, interval=(-3.0, 3.0), device="cpu", linear_pieces=False, max_seconds=600)
    assert quick.activation_regions > 10_000
    # a count too small for a pilot runs; max_seconds is still its deadline (one meaning on every path)
    small = gaussian_ffn([1, 8, 1], 4)
    assert count_segment(small, interval=(-3.0, 3.0), device="cpu", max_seconds=60).activation_regions >= 1
    with pytest.raises(CostLimitError, match="ran past the time limit of 1e-09 s"):
        count_segment(small, interval=(-3.0, 3.0), device="cpu", max_seconds=1e-9)


def test_cli_max_seconds_applies_to_exact_counts(tmp_path):
    from random_nets import gaussian_ffn, run_cli

    from regioncount.io.model_files import save_model

    path = tmp_path / "wide.json"
    save_model(gaussian_ffn([1, 20_000, 1], 3), path)
    out = run_cli("count", path, "--interval", "-3", "3", "--max-seconds", "0.001")
    assert out.exit_code != 0 and "above the time limit" in out.output and "--max-seconds" in out.output
