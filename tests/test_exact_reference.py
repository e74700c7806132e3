"""The fast enumerator against the exact-rational reference on random small nets (dyadic weights)."""

from __future__ import annotations

import random

import pytest
import torch
from random_nets import random_deq, random_ffn, random_segment
from rational_reference import exact_count

from regioncount import count_segment


def _fast(model, p, v, t_low, t_high, max_pieces=None):
    if len(p) == 1 and p == [0.0] and v == [1.0]:
        return count_segment(model, interval=(t_low, t_high), keep_breakpoints=True, max_pieces=max_pieces)
    q = [pi + vi for pi, vi in zip(p, v)]
    return count_segment(model, segment=(p, q), keep_breakpoints=True, max_pieces=max_pieces)


def _check(model, p, v, t_low, t_high, max_pieces=None):
    exact = exact_count(model, p, v, t_low, t_high)
    fast = _fast(model, p, v, t_low, t_high, max_pieces)
    assert fast.activation_regions == exact.activation_regions
    assert fast.linear_pieces == exact.linear_pieces
    assert fast.breakpoints.tolist() == [float(x) for x in exact.breakpoints]
    assert fast.near_coincident == 0
    # convexity lemma: along a segment every pattern occupies one interval
    assert len(set(exact.patterns)) == len(exact.patterns)
    return exact


@pytest.mark.parametrize("seed", range(160))
def test_random_ffn_matches_rational_reference(seed):
    rng = random.Random(seed)
    d = 1 if seed % 3 else rng.randint(2, 3)
    p, v, t_low, t_high = random_segment(rng, d)
    model = random_ffn(rng, d, t_low)
    _check(model, p, v, t_low, t_high)


@pytest.mark.parametrize("seed", range(120))
def test_random_triangular_deq_matches_rational_reference(seed):
    rng = random.Random(10_000 + seed)
    d = 1 if seed % 3 else rng.randint(2, 3)
    p, v, t_low, t_high = random_segment(rng, d)
    model = random_deq(rng, d, t_low, permute=seed % 4 == 0)
    _check(model, p, v, t_low, t_high)


@pytest.mark.parametrize("seed", range(20))
def test_tiny_batches_give_the_same_answer(seed):
    """Splitting the walk into batches of 2..5 pieces must not change counts, pieces or breakpoints."""
    rng = random.Random(50_000 + seed)
    p, v, t_low, t_high = random_segment(rng, 1)
    model = random_ffn(rng, 1, t_low) if seed % 2 else random_deq(rng, 1, t_low)
    _check(model, p, v, t_low, t_high, max_pieces=2 + seed % 4)


def test_random_suite_exercises_degenerate_cases():
    """The random nets really contain the degenerate cases the suite is meant to cover."""
    fewer_pieces = ends_hit = dead = 0
    for seed in range(160):
        rng = random.Random(seed)
        d = 1 if seed % 3 else rng.randint(2, 3)
        p, v, t_low, t_high = random_segment(rng, d)
        model = random_ffn(rng, d, t_low)
        exact = exact_count(model, p, v, t_low, t_high)
        fewer_pieces += exact.linear_pieces < exact.activation_regions
        dead += any(bool((w == 0).all(1).any()) for w in model.weights[:-1])
        if d == 1:
            first = model.weights[0][:, 0] * t_low + model.biases[0]
            ends_hit += bool(((first == 0) & (model.weights[0][:, 0] != 0)).any())
    assert fewer_pieces >= 10 and ends_hit >= 10 and dead >= 10


# ---- adversarial families of the exactness issue: every count equals the exact-rational reference ----

def _t(rows):
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("exponent", range(-40, 41, 8))
def test_output_scales_far_apart(exponent):
    """y1 = 2^e x, y2 = relu(x - 1/2): slopes are compared per output coordinate, never against the
    largest output's scale."""
    from regioncount import FFN

    net = FFN([_t([[1.0], [1.0]]), _t([[2.0**exponent, 0.0], [0.0, 1.0]])], [_t([0.0, -0.5]), _t([0.0, 0.0])])
    result = count_segment(net, interval=(0, 1))
    assert (result.activation_regions, result.linear_pieces, result.method) == (2, 2, "exact")
    tiny = FFN([_t([[1.0], [1.0]]), _t([[1.0, 2.0**-exponent if exponent > 0 else 2.0**exponent]])],
               [_t([0.0, -0.5]), _t([0.0])])
    assert count_segment(tiny, interval=(0, 1)).linear_pieces == 2  # a genuine kink of any size


@pytest.mark.parametrize("gap_exponent", [30, 40, 46, 47, 50, 55, 60])
@pytest.mark.parametrize("across_layers", [False, True])
def test_slivers_below_and_above_the_tolerance(gap_exponent, across_layers):
    from regioncount import FFN

    gap, base = 2.0**-gap_exponent, 2.0**-10  # base + gap is a float64 for gaps down to 2^-62
    if across_layers:
        net = FFN([_t([[1.0]]), _t([[1.0], [1.0]]), _t([[1.0, 1.0]])], [_t([-base]), _t([0.0, -gap]), _t([0.0])])
    else:
        net = FFN([_t([[1.0], [1.0]]), _t([[1.0, 1.0]])], [_t([-base, -base - gap]), _t([0.0])])
    result = count_segment(net, interval=(0, 1))
    exact = exact_count(net, [0.0], [1.0], 0.0, 1.0)
    assert (exact.activation_regions, exact.linear_pieces) == (3, 3)
    assert (result.activation_regions, result.linear_pieces, result.method) == (3, 3, "exact")


def test_doubtful_decisions_over_budget_are_labelled_approximate(monkeypatch):
    from regioncount import FFN
    from regioncount.line import exact1d

    monkeypatch.setattr(exact1d, "RATIONAL_RECOUNT_BUDGET", 1.0)
    net = FFN([_t([[1.0], [1.0]]), _t([[1.0, 1.0]])], [_t([-0.5, -0.5 - 2.0**-50]), _t([0.0])])
    result = count_segment(net, interval=(0, 1))
    assert result.method == "approximate" and result.doubtful_decisions == 1
    assert "left to float64" in result.algorithm
    assert result.to_json()["method"] == "approximate"


@pytest.mark.parametrize("teeth, depth", [(3, 3), (5, 2), (5, 3), (6, 2), (7, 2), (9, 2)])
def test_constructions_as_stored(teeth, depth):
    """The w-tooth net as stored in float64 has exactly w^L pieces (dyadic teeth), by the reference."""
    from regioncount import fold_ffn, sawtooth_ffn

    net = sawtooth_ffn(teeth, depth)
    exact = exact_count(net, [0.0], [1.0], 0.0, 1.0)
    assert (exact.activation_regions, exact.linear_pieces) == (teeth**depth, teeth**depth)
    fast = count_segment(net, interval=(0, 1))
    assert (fast.activation_regions, fast.linear_pieces, fast.doubtful_decisions) == (teeth**depth,) * 2 + (0,)
    fold = fold_ffn(min(teeth, 5), 2)
    exact = exact_count(fold, [0.0], [1.0], 0.0, 1.0)
    fast = count_segment(fold, interval=(0, 1))
    assert (fast.activation_regions, fast.linear_pieces) == (exact.activation_regions, exact.linear_pieces)


@pytest.mark.parametrize("dims, max_pieces", [([1, 300, 1], 2), ([1, 300, 2], 7), ([1, 40, 40, 1], 2), ([2, 64, 30, 1], 3)])
def test_children_built_in_chunks_give_the_same_answer(dims, max_pieces):
    """Wide layers whose children are built one or a few at a time (tiny batches): same counts, pieces and
    breakpoints as the default batches and as the exact rational reference."""
    from regioncount import FFN

    gen = torch.Generator().manual_seed(sum(dims) + max_pieces)
    weights = [torch.randint(-8, 9, (o, i), generator=gen).double() / 8 for i, o in zip(dims, dims[1:])]
    biases = [torch.randint(-8, 9, (o,), generator=gen).double() / 16 for o in dims[1:]]
    model = FFN(weights, biases)
    p, v = [0.0] * dims[0], [1.0] + [0.5] * (dims[0] - 1)
    q = [a + b for a, b in zip(p, v)]
    interval = dict(interval=(-2.0, 2.0)) if dims[0] == 1 else dict(segment=(p, q))
    small = count_segment(model, **interval, keep_breakpoints=True, max_pieces=max_pieces)
    default = count_segment(model, **interval, keep_breakpoints=True)
    assert (small.activation_regions, small.linear_pieces) == (default.activation_regions, default.linear_pieces)
    assert small.breakpoints.tolist() == default.breakpoints.tolist()
    t_low, t_high = (-2.0, 2.0) if dims[0] == 1 else (0.0, 1.0)
    exact = exact_count(model, p if dims[0] > 1 else [0.0], v if dims[0] > 1 else [1.0], t_low, t_high)
    assert (exact.activation_regions, exact.linear_pieces) == (small.activation_regions, small.linear_pieces)


@pytest.mark.parametrize("seed", range(6))
def test_ffns_with_weights_of_wildly_different_scales(seed):
    """Weights 2^-45 .. 2^45 make float64 cancel catastrophically inside the GEMMs; such nets fail the
    exact-arithmetic test, so their counts are decided by the exact recount (or labelled approximate),
    never a rounded answer labelled exact."""
    from regioncount import FFN

    rng = random.Random(900 + seed)
    for _ in range(40):
        depth = rng.randint(1, 3)
        dims = [1] + [rng.randint(1, 5) for _ in range(depth)] + [rng.randint(1, 3)]
        weights, biases = [], []
        for n_in, n_out in zip(dims, dims[1:]):
            weights.append(torch.tensor([[rng.choice([0, 1, -1, 2, 0.5, -0.75, 2.0 ** rng.randint(-45, 45)])
                                          for _ in range(n_in)] for _ in range(n_out)], dtype=torch.float64))
            biases.append(torch.tensor([rng.choice([0, 0.5, -0.5, 0.25 + 2.0 ** -rng.randint(20, 60), 0.1])
                                        for _ in range(n_out)], dtype=torch.float64))
        net = FFN(weights, biases)
        fast = count_segment(net, interval=(-1.0, 1.0))
        exact = exact_count(net, [0.0], [1.0], -1.0, 1.0)
        if fast.method == "exact":
            assert (fast.activation_regions, fast.linear_pieces) == (exact.activation_regions, exact.linear_pieces)


@pytest.mark.parametrize("seed", range(6))
def test_triangular_deqs_with_weights_of_wildly_different_scales(seed):
    """Triangular DEQs with weights 2^-45 .. 2^45: exact is claimed only when proven (statically, a
    posteriori from the walk's magnitudes, or by the rational recount), and then it is right."""
    from regioncount import DEQ

    rng = random.Random(700 + seed)
    for _ in range(50):
        m = rng.randint(1, 6)
        W = torch.zeros(m, m, dtype=torch.float64)
        for t in range(m):
            for i in range(t):
                W[t, i] = rng.choice([0, 1, -1, 2, -0.5, 2.0 ** rng.randint(-45, 45), -(2.0 ** rng.randint(-45, 45))])
        U = torch.tensor([[rng.choice([1, -1, 2, 2.0 ** rng.randint(-40, 40)])] for _ in range(m)], dtype=torch.float64)
        b = torch.tensor([rng.choice([0, 0.5, -0.5, 0.25 + 2.0 ** -rng.randint(20, 60), 0.1]) for _ in range(m)],
                         dtype=torch.float64)
        A = torch.tensor([[rng.choice([1, -1, 0, 2.0 ** rng.randint(-40, 40)]) for _ in range(m)]], dtype=torch.float64)
        deq = DEQ(W=W, U=U, b=b, A=A)
        fast = count_segment(deq, interval=(-1.0, 1.0))
        exact = exact_count(deq, [0.0], [1.0], -1.0, 1.0)
        if fast.method == "exact":
            assert (fast.activation_regions, fast.linear_pieces) == (exact.activation_regions, exact.linear_pieces)


@pytest.mark.parametrize("m", [22, 24, 30, pytest.param(40, marks=pytest.mark.slow)])
def test_theorem1_beyond_the_static_test_is_proven_exact(m):
    """The static test's |W| bound fails beyond m = 20; the walk's own magnitudes prove exactness up to 40."""
    from regioncount import theorem1_deq

    interval = (0.0, 1.0) if m <= 24 else (0.25, 0.25 + 2.0**-14)
    result = count_segment(theorem1_deq(m), interval=interval, linear_pieces=m <= 24, max_regions=None)
    assert result.method == "exact" and "proven a posteriori" in result.algorithm
    expected = 2**m if m <= 24 else 2 ** (m - 14)
    assert result.activation_regions == expected


def test_the_a_posteriori_proof_refuses_a_rounding_walk():
    """A triangular DEQ whose walk must round (2^60 + 1 is not a float64): no proof, so not labelled exact
    from float64 alone."""
    import numpy as np

    from regioncount import DEQ
    from regioncount.line.exactness import deq_walk_proven_exact

    W = torch.tensor([[0.0, 0.0], [2.0**60, 0.0]], dtype=torch.float64)
    deq = DEQ(W=W, U=torch.tensor([[1.0], [1.0]], dtype=torch.float64), b=torch.tensor([0.0, 0.0], dtype=torch.float64),
              A=torch.ones(1, 2, dtype=torch.float64))
    one = torch.tensor([1.0], dtype=torch.float64)
    measured = {0: np.array([1.0, 0.0]), 1: np.array([1.0, 0.0])}
    assert not deq_walk_proven_exact(deq, torch.tensor([0.0], dtype=torch.float64), one, measured, False)
    result = count_segment(deq, interval=(-1.0, 1.0))
    assert "proven a posteriori" not in result.algorithm
