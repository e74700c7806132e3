"""Double-double layer products (:mod:`regioncount.line.double_double`): their error bounds hold in exact rational
arithmetic, and the deep nets that split products leave open are proven by them."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
import torch
from random_nets import gaussian_ffn
from rational_reference import exact_count

from regioncount import count_segment
from regioncount.line import exact1d
from regioncount.line.double_double import WeightSlices, double_product, two_sum
from regioncount.line.forward_error import INFLATE, LayerBound


def _dyadic_tensor(rng: random.Random, shape: tuple[int, ...], spread: int) -> torch.Tensor:
    """Gaussian entries times 2^k, k uniform in [-spread, spread]: many exponents in one row."""
    values = [rng.gauss(0, 1) * 2.0 ** rng.randint(-spread, spread) for _ in range(math.prod(shape))]
    return torch.tensor(values, dtype=torch.float64).reshape(shape)


def test_two_sum_is_error_free():
    rng = random.Random(1)
    a, b = _dyadic_tensor(rng, (500,), 80), _dyadic_tensor(rng, (500,), 80)
    a[:3] = torch.tensor([2.0**-1074, 1e300, 0.0], dtype=torch.float64)
    s, e = two_sum(a, b)
    for x, y, s1, e1 in zip(a.tolist(), b.tolist(), s.tolist(), e.tolist()):
        assert Fraction(x) + Fraction(y) == Fraction(s1) + Fraction(e1)
        assert s1 == x + y


@pytest.mark.parametrize("seed", range(16))
def test_double_product_bounds_hold_exactly(seed):
    """Each unit's ``hi`` error and the norm of the ``hi + lo`` errors over a random set of units, measured
    in exact rational arithmetic against ``W (hi + lo) + b``, stay within the bounds the walk uses."""
    rng = random.Random(seed)
    n_in, n_out, P = rng.choice([1, 3, 17, 64]), rng.randint(1, 12), rng.randint(1, 4)
    spread = rng.choice([0, 4, 30, 200])
    W = _dyadic_tensor(rng, (n_out, n_in), spread)
    if seed % 3 == 0:
        W[0] = 0.0  # a unit with no weights
    b = _dyadic_tensor(rng, (n_out,), spread)
    hi = _dyadic_tensor(rng, (P, 2, n_in), spread)
    lo = hi * _dyadic_tensor(rng, (P, 2, n_in), 3) * 2.0**-54
    if seed % 4 == 1:  # rows whose entries cancel: a true value far below the terms
        hi[:, 0] = W[-1] * 2.0 ** rng.randint(-3, 3)
        hi[:, 1] = W[-1].flip(0)
    if seed % 6 == 5:  # products in the subnormal range: slice grids underflow
        W, hi, lo, b = W * 2.0**-520, hi * 2.0**-520, lo * 2.0**-520, b * 2.0**-1040
    bound = LayerBound.of(W, b)
    z, rounding = double_product(torch.cat([hi, lo], 1), W, b, bound, WeightSlices.of(W))
    assert z.shape == (P, 4, n_out)
    F = Fraction
    active = [rng.random() < 0.6 for _ in range(n_out)]
    for p in range(P):
        for r in range(2):
            exact = [sum((F(float(W[j, k])) * (F(float(hi[p, r, k])) + F(float(lo[p, r, k])))
                          for k in range(n_in)), F(0)) + (F(float(b[j])) if r == 1 else 0) for j in range(n_out)]
            for j in range(n_out):
                allowed = float(bound.row_norms[j]) * float(rounding.local[p, r]) * INFLATE \
                    + (rounding.bias_coeff * float(bound.bias_abs[j]) if r == 1 else 0.0)
                assert abs(F(float(z[p, r, j])) - exact[j]) <= F(allowed)
                assert abs(F(float(z[p, r + 2, j]))) <= abs(F(float(z[p, r, j]))) * F(2.0**-53)
            errors = [abs(F(float(z[p, r, j])) + F(float(z[p, r + 2, j])) - exact[j]) for j in range(n_out)]
            masked = math.sqrt(sum(float(errors[j]) ** 2 for j in range(n_out) if active[j]))
            assert masked <= float(rounding.masked[p, r])


def test_double_products_are_far_tighter_than_one_rounding():
    """The propagated bound of a double-double product is about 2^-100 of the values, not 2^-53."""
    gen = torch.Generator().manual_seed(3)
    W = torch.randn(128, 128, generator=gen, dtype=torch.float64) / 8
    b = torch.randn(128, generator=gen, dtype=torch.float64)
    h = torch.cat([torch.randn(5, 2, 128, generator=gen, dtype=torch.float64), torch.zeros(5, 2, 128,
                                                                                             dtype=torch.float64)], 1)
    z, rounding = double_product(h, W, b, LayerBound.of(W, b), WeightSlices.of(W))
    assert float((rounding.masked / z[:, :2].norm(dim=2)).max()) < 2.0**-90


def _deep(width: int, depth: int, seed: int = 0):
    return gaussian_ffn([1] + [width] * depth + [1], seed, 0.1, he=True)


@pytest.fixture
def double_only(monkeypatch):
    """Every certified walk done with double-double products from the start, and no rational recount: a count
    is exact only where the bounds proved every decision."""
    monkeypatch.setattr(exact1d, "_certified_stages", lambda *args: ["double"])
    monkeypatch.setattr(exact1d, "RATIONAL_RECOUNT_BUDGET", 0.0)


@pytest.mark.parametrize("seed", range(12))
def test_double_walks_match_the_rational_reference(seed, double_only):
    rng = random.Random(400 + seed)
    dims = [1] + [rng.randint(2, 9) for _ in range(rng.randint(1, 6))] + [rng.randint(1, 2)]
    net = gaussian_ffn(dims, seed, 0.3, he=True, dead_out=seed % 3 == 0)
    interval = (-2.0, 2.0)
    fast = count_segment(net, interval=interval)
    exact = exact_count(net, [0.0], [1.0], *interval)
    assert fast.method == "exact" and "double-double" in fast.algorithm, fast.algorithm
    assert (fast.activation_regions, fast.linear_pieces) == (exact.activation_regions, exact.linear_pieces)


def test_double_walks_never_mislabel_near_ties(double_only):
    """A layer-2 zero placed within 1e-17 .. 1e-12 of a layer-1 breakpoint (or on it): labelled exact only
    when right."""
    from test_forward_error import _near_tie

    for seed in range(30):
        rng = random.Random(8000 + seed)
        net = _near_tie(rng, rng.choice([0.0, 1e-17, 1e-16, 1e-15, 1e-13, 1e-12]))
        fast = count_segment(net, interval=(-2.0, 2.0))
        exact = exact_count(net, [0.0], [1.0], -2.0, 2.0)
        if fast.method == "exact":
            assert (fast.activation_regions, fast.linear_pieces) == (exact.activation_regions, exact.linear_pieces)
        else:
            assert fast.doubtful_decisions >= 1


@pytest.mark.parametrize("width,depth", [(128, 32), (64, 32)])
def test_deep_narrow_nets_are_proven_exact(width, depth, monkeypatch):
    """He-init 1 -> 128 x 32 and 1 -> 64 x 32 on [-3, 3]: split products leave thousands of decisions open,
    double-double products prove them all; the count is the plain float64 walk's."""
    net = _deep(width, depth)
    result = count_segment(net, interval=(-3.0, 3.0))
    assert result.method == "exact" and result.doubtful_decisions == 0, result.algorithm
    assert "double-double products" in result.algorithm
    monkeypatch.setattr(exact1d, "exact_arithmetic", lambda *args: True)  # the plain float64 walk, unproven
    plain = count_segment(net, interval=(-3.0, 3.0))
    assert (plain.activation_regions, plain.linear_pieces) == (result.activation_regions, result.linear_pieces)
