"""Rounded FFN walks proven by forward-error bounds: whatever is labelled exact equals the exact-rational
reference, on generic nets (weights that are not short dyadics) and on adversarial ones built to put a
later layer's zero within 1e-17..1e-12 of an earlier breakpoint.  The recount budget is set to zero, so a
count can only be "exact" when the bounds proved every decision."""

from __future__ import annotations

import math
import random

import pytest
import torch
from random_nets import gaussian_ffn
from rational_reference import exact_count

from regioncount import FFN, count_segment
from regioncount.line import exact1d, ffn_walk, forward_error
from regioncount.line.exactness import exact_arithmetic
from regioncount.line.forward_error import INFLATE, spectral_norm_bound


def _gaussian_ffn(rng: random.Random, widths: list[int]) -> FFN:
    weights, biases = [], []
    for n_in, n_out in zip(widths, widths[1:]):
        scale = math.sqrt(2.0 / n_in)
        weights.append(torch.tensor([[rng.gauss(0, scale) for _ in range(n_in)] for _ in range(n_out)],
                                    dtype=torch.float64))
        biases.append(torch.tensor([rng.gauss(0, 0.3) for _ in range(n_out)], dtype=torch.float64))
    return FFN(weights, biases)


def _count(net: FFN, interval=(-2.0, 2.0)):
    fast = count_segment(net, interval=interval)
    exact = exact_count(net, [0.0], [1.0], *interval)
    return fast, exact


@pytest.fixture
def no_recount(monkeypatch):
    monkeypatch.setattr(exact1d, "RATIONAL_RECOUNT_BUDGET", 0.0)


@pytest.fixture(params=["one GEMM", "split"])
def products(request, monkeypatch):
    """Every certified walk with its layer products as one rounded GEMM (the first pass), or all of them as
    error-free split products (the second pass, here from the start)."""
    if request.param == "split":
        monkeypatch.setattr(ffn_walk, "rounded_product", forward_error.split_product)
    return request.param


@pytest.mark.parametrize("seed", range(30))
def test_generic_nets_are_proven_and_right(seed, no_recount, products):
    rng = random.Random(7000 + seed)
    depth = rng.randint(1, 3)
    net = _gaussian_ffn(rng, [1] + [rng.randint(2, 10) for _ in range(depth)] + [rng.randint(1, 2)])
    assert not exact_arithmetic(net, torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))
    fast, exact = _count(net)
    assert fast.method == "exact", fast.algorithm  # generic nets have no near-ties: all proven
    assert "forward error" in fast.algorithm
    assert (fast.activation_regions, fast.linear_pieces) == (exact.activation_regions, exact.linear_pieces)


def _near_tie(rng: random.Random, eps: float) -> FFN:
    """1 -> n1 -> n2 -> 1 with one layer-2 unit whose exact zero is within ~eps of a layer-1 breakpoint."""
    n1, n2 = rng.randint(2, 6), rng.randint(1, 4)
    net = _gaussian_ffn(rng, [1, n1, n2, 1])
    W1, b1 = net.weights[0][:, 0], net.biases[0]
    k = rng.randrange(n1)
    t0 = float(-b1[k] / W1[k])
    if not -1.5 < t0 < 1.5:
        b1[k] = -W1[k] * rng.uniform(-1, 1)
        t0 = float(-b1[k] / W1[k])
    t1 = t0 + eps * rng.choice([-1.0, 1.0])
    hidden = torch.relu(W1 * t1 + b1)
    j = rng.randrange(n2)
    net.biases[1][j] = -float(net.weights[1][j] @ hidden)
    return net


@pytest.mark.parametrize("seed", range(40))
def test_near_ties_are_never_mislabelled(seed, no_recount, products):
    rng = random.Random(8000 + seed)
    eps = rng.choice([0.0, 1e-17, 1e-16, 1e-15, 1e-13, 1e-12])
    net = _near_tie(rng, eps)
    fast, exact = _count(net)
    if fast.method == "exact":
        assert (fast.activation_regions, fast.linear_pieces) == (exact.activation_regions, exact.linear_pieces)
    else:
        assert fast.method == "approximate" and fast.doubtful_decisions >= 1


def test_near_ties_are_flagged_and_then_recounted(monkeypatch):
    """The same near ties with the default budget: flagged decisions are re-decided exactly."""
    flagged = 0
    for seed in range(40):
        rng = random.Random(8000 + seed)
        net = _near_tie(rng, rng.choice([0.0, 1e-17, 1e-16, 1e-15, 1e-13, 1e-12]))
        fast, exact = _count(net)
        assert fast.method == "exact"
        assert (fast.activation_regions, fast.linear_pieces) == (exact.activation_regions, exact.linear_pieces)
        flagged += fast.doubtful_decisions > 0
    assert flagged >= 5  # the family does produce decisions the bounds cannot prove


def test_outputs_on_wildly_different_scales_are_compared_per_coordinate(no_recount):
    rng = random.Random(3)
    net = _gaussian_ffn(rng, [1, 8, 8, 2])
    net.weights[-1][0] *= 2.0**40
    net.weights[-1][1] *= 2.0**-40
    fast, exact = _count(net)
    assert fast.method == "exact"
    assert (fast.activation_regions, fast.linear_pieces) == (exact.activation_regions, exact.linear_pieces)


def test_a_wide_layer_is_proven():
    """1 -> 2000 -> 1 with Gaussian weights: proven without any recount (too large for one)."""
    rng = random.Random(11)
    net = _gaussian_ffn(rng, [1, 2000, 1])
    fast = count_segment(net, interval=(-2.0, 2.0))
    assert fast.method == "exact" and fast.doubtful_decisions == 0
    assert "recount" not in fast.algorithm


@pytest.mark.parametrize("shape", [(5, 3), (64, 64), (1, 40), (300, 2)])
def test_spectral_norm_bound_is_an_upper_bound(shape):
    gen = torch.Generator().manual_seed(sum(shape))
    W = torch.randn(*shape, generator=gen, dtype=torch.float64)
    exact = float(torch.linalg.matrix_norm(W, ord=2))
    bound = spectral_norm_bound(W)
    assert exact <= bound <= exact * 1.001 + 1e-12


def _dyadic_tensor(rng: random.Random, shape: tuple[int, ...], spread: int) -> torch.Tensor:
    """Gaussian entries times 2^k, k uniform in [-spread, spread]: many exponents in one row."""
    numel = math.prod(shape)
    values = [rng.gauss(0, 1) * 2.0 ** rng.randint(-spread, spread) for _ in range(numel)]
    return torch.tensor(values, dtype=torch.float64).reshape(shape)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("product", ["rounded", "split"])
def test_product_rounding_bounds_hold_exactly(seed, product):
    """Each unit's error of a layer product, and the norm of the errors over a random set of units, measured
    in exact rational arithmetic, stay within the bounds the walk uses (both products)."""
    from fractions import Fraction

    from regioncount.line.forward_error import LayerBound, rounded_product, split_product

    rng = random.Random(seed)
    n_in, n_out, P = rng.choice([1, 3, 17, 64]), rng.randint(1, 12), rng.randint(1, 4)
    spread = rng.choice([0, 4, 30])
    W = _dyadic_tensor(rng, (n_out, n_in), spread)
    if seed % 3 == 0:
        W[0] = 0.0  # a unit with no weights
    b = _dyadic_tensor(rng, (n_out,), spread)
    h = _dyadic_tensor(rng, (P, 2, n_in), spread)
    if seed % 4 == 1:  # rows whose entries cancel: a true value far below the terms
        h[:, 0] = W[-1] * 2.0 ** rng.randint(-3, 3)
        h[:, 1] = W[-1].flip(0)
    if seed % 6 == 5:  # products in the subnormal range: the leading product's grid underflows
        W, h, b = W * 2.0**-520, h * 2.0**-520, b * 2.0**-1040
    bound = LayerBound.of(W, b)
    z, rounding = (rounded_product if product == "rounded" else split_product)(h, W, b, bound)
    exact = [[[sum((Fraction(float(W[j, k])) * Fraction(float(h[p, r, k])) for k in range(n_in)), Fraction(0))
               + (Fraction(float(b[j])) if r == 1 else 0) for j in range(n_out)] for r in range(2)]
             for p in range(P)]
    active = torch.tensor([rng.random() < 0.6 for _ in range(n_out)])
    for p in range(P):
        for r in range(2):
            errors = [abs(Fraction(float(z[p, r, j])) - exact[p][r][j]) for j in range(n_out)]
            for j in range(n_out):
                allowed = float(bound.row_norms[j]) * float(rounding.local[p, r]) * INFLATE \
                    + (rounding.bias_coeff * float(bound.bias_abs[j]) if r == 1 else 0.0)
                assert float(errors[j]) <= allowed
            masked_norm = math.sqrt(sum(float(errors[j]) ** 2 for j in range(n_out) if active[j]))
            child = float(z[p, r][active].norm())
            assert masked_norm <= float(rounding.masked[p, r]) + rounding.child_coeff * child


def test_split_rows_is_error_free():
    from regioncount.line.forward_error import SplitRows, split_bits

    rng = random.Random(5)
    x = _dyadic_tensor(rng, (6, 50), 200)
    x[1] = 0.0
    x[2, :3] = torch.tensor([2.0**-1074, -(2.0**-1060), 2.0**-1022])
    bits = split_bits(50)
    parts = SplitRows.of(x, bits)
    assert torch.equal(parts.hi + parts.lo, x)
    for row in range(6):
        grid = 2.0 ** (int(parts.exponent[row]) - bits)
        hi = parts.hi[row]
        assert torch.equal(torch.round(hi / grid) * grid, hi)  # on the row's grid
        assert float((hi / grid).abs().max()) <= 2.0**bits
        assert float(parts.lo[row].abs().max()) <= grid / 2


@pytest.mark.parametrize("seed", range(4))
def test_split_products_on_weights_of_wildly_different_scales(seed, no_recount, monkeypatch):
    """Weights 2^-45 .. 2^45 (catastrophic cancellation in the GEMMs), every product split: what the bounds
    prove equals the exact-rational reference."""
    from regioncount import FFN

    monkeypatch.setattr(ffn_walk, "rounded_product", forward_error.split_product)
    rng = random.Random(900 + seed)
    proven = 0
    for _ in range(30):
        dims = [1] + [rng.randint(1, 5) for _ in range(rng.randint(1, 3))] + [rng.randint(1, 3)]
        weights, biases = [], []
        for n_in, n_out in zip(dims, dims[1:]):
            weights.append(torch.tensor([[rng.choice([0, 1, -1, 2, 0.5, -0.75, rng.gauss(0, 1),
                                                      2.0 ** rng.randint(-45, 45)])
                                          for _ in range(n_in)] for _ in range(n_out)], dtype=torch.float64))
            biases.append(torch.tensor([rng.choice([0, 0.5, -0.5, 0.25 + 2.0 ** -rng.randint(20, 60), rng.gauss(0, 1)])
                                        for _ in range(n_out)], dtype=torch.float64))
        net = FFN(weights, biases)
        fast, exact = _count(net, (-1.0, 1.0))
        if fast.method == "exact":
            proven += "forward error" in fast.algorithm
            assert (fast.activation_regions, fast.linear_pieces) == (exact.activation_regions, exact.linear_pieces)
    assert proven  # the family does exercise the proof


def _he_ffn(width: int, depth: int) -> FFN:
    """1 -> width x depth -> 1, weights N(0, 2 / fan_in), biases N(0, 0.1^2), seed 0 (the benchmarks' nets)."""
    return gaussian_ffn([1] + [width] * depth + [1], 0, 0.1, he=True)


@pytest.mark.parametrize("linear", [False, True])
def test_a_deep_net_is_proven_by_split_products(linear, monkeypatch):
    """He-initialised 1 -> 256 x 16: one rounded GEMM per layer leaves decisions open, the split products of
    the second walk prove them all; the count is that of the first, unproven float64 walk."""
    net = _he_ffn(256, 16)
    result = count_segment(net, interval=(-3.0, 3.0), linear_pieces=linear)
    assert result.method == "exact" and result.doubtful_decisions == 0
    assert "split products" in result.algorithm
    monkeypatch.setattr(exact1d, "exact_arithmetic", lambda *args: True)  # the plain float64 walk, unproven
    plain = count_segment(net, interval=(-3.0, 3.0), linear_pieces=linear)
    assert "forward error" not in plain.algorithm
    assert (plain.activation_regions, plain.linear_pieces) == (result.activation_regions, result.linear_pieces)


def test_a_time_limit_that_rules_out_the_split_walk_keeps_the_first(monkeypatch):
    """With ``max_seconds``, the split walk runs only when the pilot's time, times SPLIT_COST, fits."""
    net = _he_ffn(256, 16)
    fits = count_segment(net, interval=(-3.0, 3.0), max_seconds=600)
    assert fits.method == "exact" and "split products" in fits.algorithm
    monkeypatch.setattr(exact1d, "SPLIT_COST", 1e12)
    monkeypatch.setattr(exact1d, "RATIONAL_RECOUNT_BUDGET", 0.0)
    tight = count_segment(net, interval=(-3.0, 3.0), max_seconds=600)
    assert tight.method == "approximate" and tight.doubtful_decisions > 0
    assert tight.activation_regions == fits.activation_regions


def test_a_memory_limit_too_small_for_the_weight_slices_keeps_the_first_walk():
    """The split walk holds two slices of a layer's weights (2 x 8 x 256^2 bytes here): a memory limit whose
    half cannot hold them keeps the first walk's answer, labelled approximate."""
    net = _he_ffn(256, 16)
    small = count_segment(net, interval=(-3.0, 3.0), memory_limit=2**21 - 1, max_pieces=16)
    assert small.method == "approximate" and "split products" not in small.algorithm
    roomy = count_segment(net, interval=(-3.0, 3.0), memory_limit=2**21, max_pieces=16)
    assert roomy.method == "exact" and "split products" in roomy.algorithm
    assert small.activation_regions == roomy.activation_regions


def test_the_certified_walks_a_count_may_try_follow_its_limits():
    """The split walk holds two slices of a layer's weights, the double-double walk five (both in half the
    memory limit) and each runs only when its cost factor times the pilot's time fits the time left: the
    gate that the end-to-end memory and time tests exercise, checked directly (and fast)."""
    net = _he_ffn(256, 4)
    slices = 8 * 256 * 256
    pilot = {"seconds": 1.0}
    assert exact1d._certified_stages(net, pilot, None, 2**40) == ["rounded", "split", "double"]
    assert exact1d._certified_stages(net, pilot, None, 2 * 2 * slices - 1) == ["rounded"]
    assert exact1d._certified_stages(net, pilot, None, 2 * 2 * slices) == ["rounded", "split"]
    assert exact1d._certified_stages(net, pilot, None, 2 * 5 * slices) == ["rounded", "split", "double"]
    assert exact1d._certified_stages(net, pilot, exact1d.SPLIT_COST - 0.5, 2**40) == ["rounded"]
    assert exact1d._certified_stages(net, pilot, exact1d.DOUBLE_COST - 0.5, 2**40) == ["rounded", "split"]
    assert exact1d._certified_stages(net, None, 1e-3, 2**40) == ["rounded", "split", "double"]  # no pilot ran
