"""One set of limits for every entry point (:mod:`regioncount.core.limits`): each count honours
``max_regions``, ``memory_limit`` and ``max_seconds`` (a deadline) or refuses with one CostLimitError, the
split and several-model paths included, and quickly: the limit stops the work, it does not wait for it."""

from __future__ import annotations

import time

import pytest
from random_nets import gaussian_ffn, run_cli

from regioncount import (
    Box,
    chord_statistics,
    count_all_space,
    count_along,
    count_segment,
    partition_box,
    partition_plane,
    resolve_segment,
    sample_regions,
)
from regioncount.core.errors import CostLimitError
from regioncount.core.limits import Deadline, Limits
from regioncount.parallel import segments
from regioncount.parallel.many import count_models
from regioncount.parallel.samples import sample_regions_split
from regioncount.parallel.segments import count_segment_split
from regioncount.theory.constructions import tent_ffn

#: 2^20 teeth: about 0.9 s to count, many times the tight deadline (a random 1 -> 64 x 3 net counts in a few
#: milliseconds, so a deadline could pass unchecked)
LINE = tent_ffn(20)
PLANE = gaussian_ffn([2, 32, 32, 32, 1], 0, he=True)
#: a plane partition that takes several times the tight deadline (PLANE's takes about that long: a fast run
#: could finish before its deadline is checked)
SLOW_PLANE = gaussian_ffn([2, 128, 128, 128, 1], 0, he=True)
BOX = gaussian_ffn([3, 24, 24, 1], 0)
SEGMENT = resolve_segment(LINE, (-3.0, 3.0))

#: every entry point, called with the limits as keyword arguments (``Limits.kwargs`` form)
ENTRY_POINTS = {
    "count_segment": lambda **k: count_segment(LINE, interval=(-3.0, 3.0), **k),
    "count_along": lambda **k: count_along(LINE, SEGMENT, **k),
    "count_segment_split": lambda **k: count_segment_split(LINE, interval=(-3.0, 3.0), tasks=3, **k),
    "sample_regions": lambda **k: sample_regions(PLANE, -1.0, 1.0, samples=2_000_000, **k),
    "sample_regions_split": lambda **k: sample_regions_split(PLANE, -1.0, 1.0, samples=2_000_000, tasks=3, **k),
    "count_models": lambda **k: count_models(
        [LINE, LINE], segments=[SEGMENT, SEGMENT], on_result=lambda i, r: None, max_seconds=k.pop("max_seconds"),
        options=k),
    "partition_box": lambda **k: partition_box(BOX, -1.0, 1.0, **k),
    "partition_plane": lambda **k: partition_plane(SLOW_PLANE, [-1.0, -1.0], [1.0, 1.0], **k),
    "count_all_space": lambda **k: count_all_space(BOX, **k),
    "chord_statistics": lambda **k: chord_statistics(PLANE, Box((-1.0, -1.0), (1.0, 1.0)), 20_000, **k),
}
#: one limit each, far below what the count needs
TIGHT = {"max_seconds": 0.05, "max_regions": 5, "memory_limit": 4096}
WORDS = {"max_seconds": "time limit", "max_regions": "limit", "memory_limit": "memory limit"}


@pytest.mark.parametrize("limit", sorted(TIGHT))
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_every_entry_point_honours_every_limit(entry, limit):
    limits = Limits(device="cpu", **{limit: TIGHT[limit]})
    started = time.perf_counter()
    with pytest.raises(CostLimitError) as caught:
        ENTRY_POINTS[entry](**limits.kwargs())
    assert time.perf_counter() - started < 5.0  # stopped or refused, not run to the end (up to 10 s)
    message = str(caught.value)
    assert "\n" not in message and WORDS[limit] in message, message


@pytest.mark.parametrize("entry", ["count_segment", "partition_plane", "sample_regions", "chord_statistics"])
def test_generous_limits_change_nothing(entry):
    """The same counts with every limit set far above what they need as with none."""
    roomy = Limits(max_regions=10**9, memory_limit=2**34, max_seconds=600, device="cpu").kwargs()
    if entry == "partition_plane":
        assert ENTRY_POINTS[entry](device="cpu").activation_regions == ENTRY_POINTS[entry](**roomy).activation_regions
    elif entry == "count_segment":
        free, limited = ENTRY_POINTS[entry](device="cpu", max_regions=None), ENTRY_POINTS[entry](**roomy)
        assert (free.activation_regions, free.linear_pieces) == (limited.activation_regions, limited.linear_pieces)
    elif entry == "sample_regions":
        small = {"samples": 20_000}
        assert sample_regions(PLANE, -1.0, 1.0, device="cpu", **small).distinct_patterns == \
            sample_regions(PLANE, -1.0, 1.0, **small, **roomy).distinct_patterns
    else:
        box = Box((-1.0, -1.0), (1.0, 1.0))
        assert chord_statistics(PLANE, box, 64, device="cpu").regions_per_chord == \
            chord_statistics(PLANE, box, 64, **roomy).regions_per_chord


def test_the_same_default_region_limit_everywhere():
    """``max_regions`` has one default: the command line's, ``Limits()``'s and every entry point's."""
    import inspect

    from regioncount.core.settings import DEFAULT_MAX_REGIONS

    entries = [chord_statistics, count_all_space, count_along, count_segment, partition_box, partition_plane,
               sample_regions, sample_regions_split, count_segment_split]
    defaults = {f.__name__: inspect.signature(f).parameters["max_regions"].default for f in entries}
    assert set(defaults.values()) == {DEFAULT_MAX_REGIONS}, defaults
    assert Limits().max_regions == DEFAULT_MAX_REGIONS
    for command in ("count", "deq", "track", "plot"):
        assert str(DEFAULT_MAX_REGIONS) in run_cli(command, "--help").output, command


def test_a_deadline_stops_a_walk_the_pilot_let_through(monkeypatch):
    """``max_seconds`` is a deadline, not only a pilot's refusal: with the pilot's estimate made optimistic,
    the walk itself stops at the deadline."""
    from regioncount.line import cost

    real = cost.check_cost

    def optimistic(*args, **kwargs):
        kwargs["max_seconds"] = None  # no timed pilot: the estimate cannot refuse
        return real(*args, **kwargs)

    monkeypatch.setattr("regioncount.line.exact1d.check_cost", optimistic)
    from regioncount import theorem1_deq

    big = theorem1_deq(24)  # 2^24 regions, about 3.3 s on 2 cores, walked in many batches
    started = time.perf_counter()
    with pytest.raises(CostLimitError, match="ran past the time limit of 0.2 s"):
        count_segment(big, interval=(0.0, 1.0), device="cpu", max_seconds=0.2, linear_pieces=False)
    assert time.perf_counter() - started < 1.5


def test_deadlines_are_positive_and_tell_the_time_left():
    with pytest.raises(CostLimitError, match="must be positive"):
        Deadline(0.0)
    assert Deadline(None).remaining() is None and not Deadline(None).passed()
    soon = Deadline(60.0)
    assert 59.0 < soon.remaining() <= 60.0 and 59.0 < soon.task_seconds() <= 60.0
    Deadline(60.0).check("nothing")  # no error before it passes


def test_a_split_count_is_refused_before_a_cluster_starts(monkeypatch):
    """``workers=2`` with a pilot that projects the count past the deadline (even shared by two workers):
    refused in this process, and no local cluster is started."""
    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started for a count that is refused")

    monkeypatch.setattr(segments, "open_engine", no_cluster)
    wide = gaussian_ffn([1, 20_000, 1], 3)
    with pytest.raises(CostLimitError, match="above the time limit"):
        count_segment_split(wide, interval=(-3.0, 3.0), workers=2, device="cpu", max_seconds=1e-3)
    with pytest.raises(CostLimitError, match="above the limit of 5 regions"):
        count_segment_split(wide, interval=(-3.0, 3.0), workers=2, device="cpu", max_regions=5)


def test_the_cli_refuses_a_split_count_before_starting_dask(tmp_path):
    from regioncount.io.model_files import save_model

    path = tmp_path / "wide.json"
    save_model(gaussian_ffn([1, 20_000, 1], 3), path)
    started = time.perf_counter()
    out = run_cli("count", path, "--interval", "-3", "3", "--workers", "2", "--max-seconds", "0.001")
    assert out.exit_code != 0 and "above the time limit" in out.output, out.output
    assert time.perf_counter() - started < 10.0  # no cluster start (about 5-15 s)
    out = run_cli("deq", "--width", "36", "--workers", "2")
    assert out.exit_code != 0 and "regions" in out.output, out.output


@pytest.mark.slow
def test_a_deadline_cancels_the_tasks_on_dask():
    """On a local Dask cluster the wait for the tasks ends at the deadline (the tasks are cancelled), for a
    split sampled count and for several models."""
    pytest.importorskip("distributed")
    from regioncount.parallel.engine import open_engine

    with open_engine(workers=2) as engine:
        started = time.perf_counter()
        with pytest.raises(CostLimitError, match="time limit"):
            sample_regions_split(PLANE, -1.0, 1.0, samples=20_000_000, tasks=4, engine=engine, device="cpu",
                                 max_seconds=1.0)
        assert time.perf_counter() - started < 8.0
        started = time.perf_counter()
        with pytest.raises(CostLimitError, match="time limit"):
            count_models([PLANE, PLANE], sampled={"samples": 20_000_000, "device": "cpu"}, engine=engine,
                         boxes=[((-1.0, -1.0), (1.0, 1.0))] * 2, on_result=lambda i, r: None, max_seconds=1.0)
        assert time.perf_counter() - started < 8.0


def test_the_chebyshev_lps_stop_at_the_deadline_between_chunks():
    """The inscribed balls are LPs in chunks of polytopes; the deadline is checked before each chunk, so a
    partition's time limit also bounds this stage (it ran to the end before)."""
    import torch

    from regioncount.partition.chebyshev import chebyshev_balls

    P = 10  # unit squares [i, i + 1] x [0, 1]: four constraints each
    owner = torch.arange(P).repeat_interleave(4)
    normal = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]], dtype=torch.float64).repeat(P, 1)
    offset = torch.stack([torch.tensor([-float(i), i + 1.0, 0.0, 1.0], dtype=torch.float64) for i in range(P)])
    calls = []
    centres, radii = chebyshev_balls(owner, normal, offset.reshape(-1), P, chunk=3, check=lambda: calls.append(1))
    assert len(calls) == 4 and radii == pytest.approx([0.5] * P)
    assert centres[:, 0] == pytest.approx([i + 0.5 for i in range(P)])

    def expire():
        if calls:
            raise CostLimitError("the Chebyshev centres ran past the time limit")
        calls.append(1)

    calls.clear()
    with pytest.raises(CostLimitError, match="Chebyshev"):
        chebyshev_balls(owner, normal, offset.reshape(-1), P, chunk=3, check=expire)
