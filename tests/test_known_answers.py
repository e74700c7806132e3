"""Known answers: the Theorem 1 DEQ (2^m, readout piece counts, breakpoints k/2^m, Gray-code patterns)
and sawtooth / tent / fold FFNs (w^L pieces)."""

from __future__ import annotations

import pytest
import torch

from regioncount import (
    DEQ,
    FFN,
    count_segment,
    fold_ffn,
    sawtooth_ffn,
    tent_ffn,
    theorem1_deq,
    theorem1_expected,
)
from regioncount.core.errors import CostLimitError


@pytest.mark.parametrize("m", range(1, 19))
def test_theorem1_deq_has_2_to_the_m_regions(m):
    result = count_segment(theorem1_deq(m), interval=(0, 1), linear_pieces=m <= 14)
    assert result.activation_regions == 2**m
    if m <= 14:
        assert result.linear_pieces == 2**m


@pytest.mark.parametrize("readout", ["a", "b", "c", "d"])
@pytest.mark.parametrize("m", [1, 2, 3, 5, 8, 11])
def test_theorem1_linear_pieces_per_readout(m, readout):
    result = count_segment(theorem1_deq(m, readout), interval=(0, 1))
    assert (result.activation_regions, result.linear_pieces) == theorem1_expected(m, readout)


def test_readout_c_piece_formula():
    assert theorem1_expected(6, "c") == (64, 3 * 2**4 + 1)


@pytest.mark.parametrize("m", [1, 4, 9, 14])
def test_theorem1_breakpoints_are_exactly_k_over_2_to_the_m(m):
    result = count_segment(theorem1_deq(m), interval=(0, 1), keep_breakpoints=True)
    expected = [k / 2**m for k in range(1, 2**m)]
    assert result.breakpoints.tolist() == expected
    assert result.region_lengths.tolist() == [2.0**-m] * 2**m


def test_no_kinks_outside_the_unit_interval():
    model = theorem1_deq(6)
    assert count_segment(model, interval=(-5, 0)).activation_regions == 1
    assert count_segment(model, interval=(1, 7)).activation_regions == 1
    assert count_segment(model, interval=(-3, 4)).activation_regions == 64


@pytest.mark.parametrize("m", [3, 7])
def test_theorem1_patterns_are_the_gray_code(m):
    """Unit t is active exactly when bit_t XOR bit_(t-1) of x = 0.b_1 b_2 ... is 1 (b_0 = 0)."""
    model = theorem1_deq(m)
    k = torch.arange(2**m, dtype=torch.float64)
    mids = ((k + 0.5) / 2**m)[:, None]
    active = model.fixed_point(mids) > 0
    bits = [(k.long() >> (m - t)) & 1 for t in range(1, m + 1)]
    prev = [torch.zeros_like(bits[0])] + bits[:-1]
    gray = torch.stack([(b ^ p).bool() for b, p in zip(bits, prev)], 1)
    assert torch.equal(active, gray)
    assert len({tuple(row) for row in active.tolist()}) == 2**m


def test_theorem1_sawtooth_identity():
    m = 6
    model = theorem1_deq(m, "a")
    x = torch.linspace(0, 1, 1001, dtype=torch.float64)[:, None]
    tent = x.clone()
    for _ in range(m):
        tent = torch.where(tent <= 0.5, 2 * tent, 2 - 2 * tent)
    assert torch.allclose(model.forward(x), tent, atol=1e-12)


def test_theorem1_on_a_segment_in_two_dimensions():
    model = theorem1_deq(7, input_dim=2)
    result = count_segment(model, segment=((0.0, 0.3), (1.0, -2.0)))
    assert result.activation_regions == 128
    # a segment that runs along x_2 only sees one region
    assert count_segment(model, segment=((0.3, 0.0), (0.3, 1.0))).activation_regions == 1


def test_permuted_triangular_deq_counts_the_same():
    model = theorem1_deq(8)
    perm = torch.tensor([3, 0, 7, 5, 1, 6, 2, 4])
    permuted = DEQ(W=model.W[perm][:, perm], U=model.U[perm], b=model.b[perm], A=model.A[:, perm])
    assert permuted.unit_order != list(range(8))
    result = count_segment(permuted, interval=(0, 1))
    assert (result.activation_regions, result.linear_pieces) == (256, 256)


def test_diagonal_feedback_is_forward_substituted():
    """z = relu(w z + r) with w < 1 is relu(r) / (1 - w); the count ignores the scale."""
    model = theorem1_deq(5)
    W = model.W.clone()
    W.diagonal().copy_(torch.tensor([0.5, -1.0, 0.75, 0.0, -3.0]))
    scaled = DEQ(W=W * 0 + torch.diag(W.diagonal()) + torch.tril(model.W, -1)
                 * (1 - W.diagonal())[:, None], U=model.U * (1 - W.diagonal())[:, None],
                 b=model.b * (1 - W.diagonal()), A=model.A)
    x = torch.linspace(0, 1, 257, dtype=torch.float64)[:, None]
    assert torch.allclose(scaled.fixed_point(x), model.fixed_point(x))
    assert count_segment(scaled, interval=(0, 1)).activation_regions == 32


@pytest.mark.parametrize("teeth,depth", [(1, 3), (2, 1), (2, 6), (3, 4), (4, 3), (5, 3), (7, 2)])
def test_sawtooth_has_w_to_the_L_pieces(teeth, depth):
    result = count_segment(sawtooth_ffn(teeth, depth), interval=(0, 1))
    assert result.activation_regions == teeth**depth
    assert result.linear_pieces == teeth**depth


@pytest.mark.parametrize("depth", [1, 4, 12])
def test_tent_has_2_to_the_L_pieces(depth):
    assert count_segment(tent_ffn(depth), interval=(0, 1)).linear_pieces == 2**depth


@pytest.mark.parametrize("units,depth", [(3, 5), (4, 3), (5, 3), (7, 3)])
def test_fold_has_n_plus_1_to_the_L_pieces(units, depth):
    result = count_segment(fold_ffn(units, depth), interval=(0, 1))
    assert result.activation_regions == result.linear_pieces == (units + 1) ** depth


def test_width_one_chain_regions_versus_pieces():
    """relu(relu(relu(relu(x) - 1) - 1) - 1) = relu(x - 3): 5 activation regions, 2 linear pieces."""
    weights = [torch.tensor([[1.0]]) for _ in range(5)]
    biases = [torch.tensor([0.0]), torch.tensor([-1.0]), torch.tensor([-1.0]), torch.tensor([-1.0]),
              torch.tensor([0.0])]
    result = count_segment(FFN(weights, biases), interval=(-1, 5))
    assert (result.activation_regions, result.linear_pieces) == (5, 2)


def test_no_hidden_layer_is_one_region():
    net = FFN([torch.tensor([[2.0, -1.0]])], [torch.tensor([0.5])])
    result = count_segment(net, segment=((0, 0), (1, 1)))
    assert (result.activation_regions, result.linear_pieces) == (1, 1)


def test_near_coincident_breakpoints_are_re_decided_exactly():
    """A sliver of 2^-50 (below the tolerance 2^-46) is a doubtful float64 decision: it is re-decided by
    the exact rational recount, and the count is the true 3 regions, labelled exact."""
    eps = 2.0**-50
    net = FFN([torch.tensor([[1.0], [1.0]]), torch.tensor([[1.0, 2.0]])],
              [torch.tensor([-0.5, -0.5 - eps], dtype=torch.float64), torch.tensor([0.0])])
    result = count_segment(net, interval=(0, 1))
    assert (result.activation_regions, result.linear_pieces, result.method) == (3, 3, "exact")
    assert result.near_coincident == 1 and result.doubtful_decisions == 1
    assert "rational recount" in result.algorithm
    # far enough apart (above the tolerance 2^-46), they are two breakpoints
    net.biases[0][1] = -0.5 - 2.0**-40
    result = count_segment(net, interval=(0, 1))
    assert (result.activation_regions, result.near_coincident) == (3, 0)


def test_batches_do_not_change_the_theorem1_answer():
    for max_pieces in (2, 3, 100, 4096):
        result = count_segment(theorem1_deq(10, "c"), interval=(0, 1), keep_breakpoints=True,
                               max_pieces=max_pieces)
        assert (result.activation_regions, result.linear_pieces) == theorem1_expected(10, "c")
        assert result.breakpoints.tolist() == [k / 1024 for k in range(1, 1024)]


def test_progress_reaches_one_and_is_monotone():
    seen = []
    count_segment(theorem1_deq(12), interval=(0, 1), max_pieces=64, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_region_limit_refuses_before_starting():
    with pytest.raises(CostLimitError, match="pilot"):
        count_segment(theorem1_deq(20), interval=(0, 1), max_regions=1000)
    with pytest.raises(CostLimitError, match=r"estimated 1\.04\d+e\+06 regions.*1e\+05"):
        count_segment(theorem1_deq(20), interval=(0, 1), max_regions=10**5)
    with pytest.raises(CostLimitError, match=r"1\.049e\+06 regions \(known in advance\)"):
        count_segment(theorem1_deq(20), interval=(0, 1), max_regions=10**5, known_regions=2**20)
    with pytest.raises(CostLimitError, match="GiB"):
        count_segment(theorem1_deq(20), interval=(0, 1), keep_breakpoints=True, memory_limit=2**20)


def test_pilot_estimate_for_a_large_ffn():
    net = fold_ffn(3, 12)  # 4^12 = 16.8M regions; the guaranteed bound is 4^12 too
    with pytest.raises(CostLimitError, match=r"estimated [12]\.\d+e\+07 regions"):
        count_segment(net, interval=(0, 1), max_regions=10**7)
    with pytest.raises(CostLimitError, match="pilot"):
        count_segment(net, interval=(0, 1), max_regions=10**5)


def test_float_equal_but_distinct_zeros_are_flagged():
    """relu(x - 0.3) and relu(3x - 0.9): their zeros differ by 1.85e-17 in exact arithmetic (a sliver,
    3 regions) but are the same float64.  The sliver is flagged and re-decided exactly: 3 regions."""
    net = FFN([torch.tensor([[1.0], [3.0]], dtype=torch.float64), torch.tensor([[1.0, 1.0]], dtype=torch.float64)],
              [torch.tensor([-0.3, -0.9], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)])
    result = count_segment(net, interval=(0, 1))
    assert result.activation_regions == 3 and result.near_coincident == 1 and result.method == "exact"
    # truly coincident zeros (3x - 1 and 6x - 2, both at 1/3, an inexact float) are not flagged
    net.weights[0] = torch.tensor([[3.0], [6.0]], dtype=torch.float64)
    net.biases[0] = torch.tensor([-1.0, -2.0], dtype=torch.float64)
    result = count_segment(net, interval=(0, 1))
    assert (result.activation_regions, result.near_coincident) == (2, 0)


def test_zero_on_an_earlier_breakpoint_is_classified_exactly():
    """A later layer's (or later DEQ unit's) zero that rounds onto an existing breakpoint: flagged once
    when the exact values differ (3x - 0.9 against x - 0.3: a sliver of 1.85e-17, 3 regions in exact
    arithmetic, which the exact recount gives), silent when they are equal (2x - 0.6 = 2 (x - 0.3))."""
    one = torch.tensor([[1.0]], dtype=torch.float64)
    for slope, offset, flagged in ((3.0, -0.9, 1), (2.0, -0.6, 0)):
        ffn = FFN([torch.tensor([[1.0], [1.0]], dtype=torch.float64),
                   torch.tensor([[0.0, slope]], dtype=torch.float64), one],
                  [torch.tensor([-0.3, 0.0], dtype=torch.float64), torch.tensor([offset], dtype=torch.float64),
                   torch.zeros(1, dtype=torch.float64)])
        result = count_segment(ffn, interval=(0, 1))
        # 0.3 and 0.9 are not short dyadics: the FFN walk is a rounded, certified one, whose unproven
        # decisions (here the coincidence) are re-decided by the exact recount
        assert result.activation_regions == 2 + flagged and result.method == "exact"
        assert result.doubtful_decisions >= 1
        deq = DEQ(W=torch.zeros(2, 2, dtype=torch.float64), U=torch.tensor([[1.0], [slope]], dtype=torch.float64),
                  b=torch.tensor([-0.3, offset], dtype=torch.float64), A=torch.ones(1, 2, dtype=torch.float64))
        result = count_segment(deq, interval=(0, 1))
        assert (result.activation_regions, result.near_coincident) == (2 + flagged, flagged)


def test_exact_order_of_zeros_matches_fractions():
    """The error-free comparison of -c1/s1 and -c2/s2 agrees with exact rational arithmetic, including
    near-ties built to round to the same float."""
    import random
    from fractions import Fraction

    from regioncount.line.zeros import _exact_order

    rng = random.Random(0)
    rows = []
    for _ in range(3000):
        c1, s1 = rng.uniform(-5, 5), rng.choice([-1, 1]) * rng.uniform(0.1, 5)
        if rng.random() < 0.5:  # a second zero equal in float64, exactly equal or not
            k = rng.choice([1.0, 2.0, 3.0, 0.1, 7.0])
            c2, s2 = c1 * k, s1 * k
        else:
            c2, s2 = rng.uniform(-5, 5), rng.uniform(0.1, 5)
        rows.append((c1, s1, c2, s2))
    t = torch.tensor(rows, dtype=torch.float64)
    got = _exact_order(t[:, 0], t[:, 1], t[:, 2], t[:, 3]).tolist()
    for (c1, s1, c2, s2), sign in zip(rows, got):
        diff = -Fraction(c1) / Fraction(s1) + Fraction(c2) / Fraction(s2)
        assert sign == (diff > 0) - (diff < 0)
