"""General-W DEQs counted exactly: the a-posteriori proof of the float64 walk, the exact rational walk that
decides what the proof leaves open, and both against independent references on random and adversarial
nets (duplicated and rescaled units, slivers far below the tolerance, kinks at the ends, dead output
columns)."""

from __future__ import annotations

import random

import pytest
import torch
from random_nets import random_deq, random_general_deq, random_segment

from regioncount import DEQ, count_segment, theorem1_deq
from regioncount.exact.rational1d import exact_count
from regioncount.exact.rational_deq import exact_general_count
from regioncount.line.deq_general import walk_segment
from regioncount.line.deq_proof import prove_walk
from regioncount.models.fixedpoint import solve_fixed_points

CPU = torch.device("cpu")


def _count(model, p, v, t_low, t_high):
    if model.input_dim == 1:
        return count_segment(model, interval=(t_low, t_high))
    return count_segment(model, segment=(p, [pi + vi for pi, vi in zip(p, v)]))


@pytest.mark.parametrize("seed", range(120))
def test_general_counts_equal_the_exact_walk(seed):
    rng = random.Random(seed)
    d = rng.choice((1, 1, 2))
    p, v, t_low, t_high = random_segment(rng, d)
    model = random_general_deq(rng, d, t_low)
    result = _count(model, p, v, t_low, t_high)
    exact = exact_general_count(model, p, v, t_low, t_high)
    assert result.method == "exact"
    assert (result.activation_regions, result.linear_pieces) == (exact.activation_regions, exact.linear_pieces)


@pytest.mark.parametrize("seed", range(40))
def test_exact_walk_equals_the_triangular_reference(seed):
    """On triangular DEQs the exact general walk and the forward-substitution reference must agree."""
    rng = random.Random(1000 + seed)
    d = rng.choice((1, 2))
    p, v, t_low, t_high = random_segment(rng, d)
    model = random_deq(rng, d, t_low, permute=True)
    if any(float(w) >= 1 for w in model.W.diagonal()):
        pytest.skip("diagonal >= 1")
    walk = exact_general_count(model, p, v, t_low, t_high)
    reference = exact_count(model, p, v, t_low, t_high)
    assert (walk.activation_regions, walk.linear_pieces) == (reference.activation_regions, reference.linear_pieces)
    assert walk.breakpoints == reference.breakpoints
    assert walk.outputs == reference.outputs


def test_exact_walk_on_the_theorem1_deq():
    exact = exact_general_count(theorem1_deq(6, "a"), [0.0], [1.0], 0.0, 1.0)
    assert (exact.activation_regions, exact.linear_pieces) == (64, 64)


@pytest.mark.parametrize("seed", range(4))
def test_exact_walk_equals_a_dense_scan(seed):
    rng = random.Random(50 + seed)
    model = random_general_deq(rng, 1, -2.0)
    exact = exact_general_count(model, [0.0], [1.0], -2.0, 2.0)
    # scan points away from the exact breakpoints: every region is hit, patterns read strictly
    cuts = [-2.0] + [float(b) for b in exact.breakpoints] + [2.0]
    mids = torch.tensor([(a + b) / 2 for a, b in zip(cuts, cuts[1:])], dtype=torch.float64)[:, None]
    active = solve_fixed_points(model, mids).u > 0
    assert [tuple(int(x) for x in row) for row in active.tolist()] == [tuple(p) for p in exact.patterns]


def _cyclic_block(m: int) -> torch.Tensor:
    W = torch.zeros(m, m, dtype=torch.float64)
    for j in range(m):
        W[j, (j + 1) % m] = 0.25
        W[j, (j + 2) % m] = -0.125
    return W


def _sliver_deq(gap: float, across: bool, centre: float = 0.5) -> DEQ:
    """Units 0, 1 read x only, with zeros at ``centre`` and ``centre + gap`` (or unit 1 reads unit 0's
    ReLU, ``across`` a level); units 2..5 form a cycle that reads both."""
    m = 6
    W = torch.zeros(m, m, dtype=torch.float64)
    W[2:, 2:] = _cyclic_block(4)
    W[2:, 0] = torch.tensor([0.5, -0.25, 0.125, 0.25], dtype=torch.float64)
    W[2:, 1] = torch.tensor([-0.25, 0.5, 0.25, -0.125], dtype=torch.float64)
    U = torch.tensor([[1.0], [1.0], [0.5], [-0.5], [0.25], [1.0]], dtype=torch.float64)
    b = torch.tensor([-centre, -(centre + gap), 0.0, 0.25, -0.25, -1.0], dtype=torch.float64)
    if across:  # u_1 = relu(u_0) - gap: a zero at centre + gap, behind unit 0
        W[1, 0], U[1, 0], b[1] = 1.0, 0.0, -gap
    A = torch.tensor([[1.0, -2.0, 1.0, 0.5, -1.0, 0.25]], dtype=torch.float64)
    return DEQ(W=W, U=U, b=b, A=A, name="sliver")


@pytest.mark.parametrize("gap", [2.0**-30, 2.0**-44, 2.0**-50, 2.0**-60])
@pytest.mark.parametrize("across", [False, True])
def test_slivers_below_the_tolerance(gap, across):
    """Zeros ``gap`` apart at x = 0 (tolerance 2^-45 on [-1, 1]): the exact count has the sliver."""
    model = _sliver_deq(gap, across, centre=0.0)
    result = count_segment(model, interval=(-1.0, 1.0))
    exact = exact_general_count(model, [0.0], [1.0], -1.0, 1.0)
    assert result.method == "exact"
    assert (result.activation_regions, result.linear_pieces) == (exact.activation_regions, exact.linear_pieces)
    assert gap in {b - a for a, b in zip(exact.breakpoints, exact.breakpoints[1:])}


def test_duplicated_units_and_dead_outputs():
    """Two identical units (coincident zeros: two units flip together) and an output that ignores one
    cycle unit (neighbouring regions with equal slopes)."""
    model = _sliver_deq(0.0, False)
    A = model.A.clone()
    A[0, 2] = 0.0
    model = DEQ(W=model.W, U=model.U, b=model.b, A=A, name="duplicates")
    result = count_segment(model, interval=(0.0, 1.0))
    exact = exact_general_count(model, [0.0], [1.0], 0.0, 1.0)
    assert result.method == "exact"
    assert (result.activation_regions, result.linear_pieces) == (exact.activation_regions, exact.linear_pieces)


def test_kink_at_the_end_of_the_interval():
    model = _sliver_deq(0.25, False)
    for interval in ((0.5, 1.0), (0.0, 0.5), (0.5, 0.75)):
        result = count_segment(model, interval=interval)
        exact = exact_general_count(model, [0.0], [1.0], *interval)
        assert (result.activation_regions, result.linear_pieces) == (exact.activation_regions, exact.linear_pieces)


def _walk_sequence(model, t_low, t_high):
    walk = walk_segment(model, torch.tensor([0.0]), torch.tensor([1.0]), t_low, t_high, walkers=7, device=CPU,
                        keep_patterns=True)
    assert walk.sequence is not None
    return walk.sequence


def test_the_proof_rejects_a_wrong_sequence():
    """The proof is not a formality: a sequence missing a region, with an extra pattern, or out of order
    fails it."""
    model = _sliver_deq(2.0**-8, False, centre=0.3125)
    sequence = _walk_sequence(model, -1.0, 2.0)
    assert sequence.shape[0] >= 4
    p, v = torch.tensor([0.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
    assert prove_walk(model, p, v, -1.0, 2.0, sequence, True).unproven == 0
    missing = torch.cat([sequence[:1], sequence[2:]])
    assert prove_walk(model, p, v, -1.0, 2.0, missing, True).unproven > 0
    extra = sequence.clone()
    extra = torch.cat([extra[:2], extra[1:2] ^ torch.eye(6, dtype=torch.bool)[3], extra[2:]])
    assert prove_walk(model, p, v, -1.0, 2.0, extra, True).unproven > 0
    swapped = sequence[[1, 0] + list(range(2, sequence.shape[0]))]
    assert prove_walk(model, p, v, -1.0, 2.0, swapped, True).unproven > 0
    # a shorter interval than the walked one: the last pattern is not reached
    assert prove_walk(model, p, v, -1.0, 0.49, sequence, True).unproven > 0


def test_open_decisions_past_the_budget_are_labelled_approximate(monkeypatch):
    from regioncount.line import exact1d

    monkeypatch.setattr(exact1d, "RATIONAL_RECOUNT_BUDGET", 0.0)
    result = count_segment(_sliver_deq(2.0**-50, False), interval=(0.0, 1.0))
    assert result.method == "approximate" and result.doubtful_decisions > 0
    assert "above the budget" in result.algorithm
