"""Magnitudes that cannot vanish: norms taken with power-of-two scaling, and 1-D counts of nets whose
weights span 2^-1000 .. 2^1000 against the exact rational reference (a bound that underflows to 0 or
overflows must leave its decision unproven, never prove it)."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
import torch
from rational_reference import exact_count

from regioncount import FFN, count_segment
from regioncount.core.errors import CostLimitError
from regioncount.core.magnitudes import safe_norm, unscale
from regioncount.line import exact1d
from regioncount.line.exactness import exact_arithmetic
from regioncount.line.forward_error import spectral_norm_bound


@pytest.mark.parametrize("exponent", [-1074, -1060, -1000, -600, -540, -537, -300, 0, 300, 511, 600, 1000])
def test_safe_norm_matches_the_exact_norm_or_says_inf(exponent):
    rng = random.Random(exponent)
    rows = [[rng.uniform(-1, 1) * 2.0**exponent for _ in range(5)] for _ in range(4)] + [[0.0] * 5]
    got = safe_norm(torch.tensor(rows, dtype=torch.float64), 1)
    for row, value in zip(rows, got.tolist()):
        if not any(row):
            assert value == 0.0
        elif value == math.inf:  # only when the norm is no normal float
            assert exponent < -1021 or exponent > 1020
        else:
            truth = math.sqrt(sum((Fraction(v) * Fraction(2) ** -exponent) ** 2 for v in row)) * 2.0**exponent
            assert value == pytest.approx(truth, rel=1e-12)
            assert value > 0


def test_norms_of_subnormal_vectors_are_never_zero():
    x = torch.tensor([[2.0**-1074, 0.0], [2.0**-1060, 2.0**-1070]], dtype=torch.float64)
    assert torch.linalg.vector_norm(x, dim=1).tolist() == [0.0, 0.0]  # what plain norms do
    assert (safe_norm(x, 1) == math.inf).all()  # not a normal float: unusable as a bound, never 0


def test_spectral_bound_of_tiny_and_huge_weights():
    rng = random.Random(3)
    base = torch.tensor([[rng.gauss(0, 1) for _ in range(6)] for _ in range(4)], dtype=torch.float64)
    plain = spectral_norm_bound(base)
    for e in (-900, -540, 540, 900):
        scaled = spectral_norm_bound(base * 2.0**e)
        assert scaled == pytest.approx(plain * 2.0**e, rel=1e-9)
    assert spectral_norm_bound(base * 2.0**1023) == math.inf  # entries fit, the norm does not
    assert unscale(1.0, -1070) == math.inf and unscale(0.0, -1070) == 0.0


def test_tiny_second_layer_is_counted_two_regions():
    """The issue's net: a first layer active on all of [0, 1], a second unit of weights about 1e-169 whose
    exact value changes sign inside: 2 regions, labelled exact."""
    W1 = torch.tensor([[0.3], [-0.7], [0.1]], dtype=torch.float64)
    b1 = torch.tensor([1.0, 1.1, 1.3], dtype=torch.float64)
    W2 = torch.tensor([[1e-169, -2e-169, 3e-169]], dtype=torch.float64)
    b2 = torch.tensor([-2.8e-169], dtype=torch.float64)
    net = FFN([W1, W2, torch.ones(1, 1, dtype=torch.float64)], [b1, b2, torch.zeros(1, dtype=torch.float64)])
    got = count_segment(net, interval=(0.0, 1.0))
    ref = exact_count(net, [0.0], [1.0], 0.0, 1.0)
    assert (got.method, got.activation_regions, got.linear_pieces) == ("exact", 2, 2)
    assert (ref.activation_regions, ref.linear_pieces) == (2, 2)


def test_products_below_the_subnormal_range_are_not_exact_arithmetic():
    """Weights of 2^-540 times 2^-540 underflow: the static test must not call the walk exact."""
    s = 2.0**-540
    W1 = torch.tensor([[1.0], [1.0]], dtype=torch.float64) * s
    b1 = torch.tensor([-0.25, -0.5], dtype=torch.float64) * s
    W2 = torch.tensor([[1.0, -1.0]], dtype=torch.float64) * s
    b2 = torch.tensor([-(2.0**-1083) * 1.2345], dtype=torch.float64)
    net = FFN([W1, W2, torch.ones(1, 1, dtype=torch.float64)], [b1, b2, torch.zeros(1, dtype=torch.float64)])
    one = torch.ones(1, dtype=torch.float64)
    assert not exact_arithmetic(net, torch.zeros(1, dtype=torch.float64), one)
    got = count_segment(net, interval=(0.0, 1.0))
    ref = exact_count(net, [0.0], [1.0], 0.0, 1.0)
    assert got.method == "exact"
    assert (got.activation_regions, got.linear_pieces) == (ref.activation_regions, ref.linear_pieces) == (3, 3)


def _scaled_net(rng: random.Random, exponent: int) -> FFN:
    widths = [1] + [rng.randint(2, 6) for _ in range(rng.randint(1, 3))] + [1]
    scales = [1.0] * (len(widths) - 1)
    for layer in rng.sample(range(len(scales)), rng.randint(1, len(scales))):
        scales[layer] = 2.0 ** (exponent + rng.randint(-8, 8))
    weights, biases = [], []
    for (n_in, n_out), s in zip(zip(widths, widths[1:]), scales):
        weights.append(torch.tensor([[rng.gauss(0, 1) * s for _ in range(n_in)] for _ in range(n_out)],
                                    dtype=torch.float64))
        biases.append(torch.tensor([rng.gauss(0, 1) * s for _ in range(n_out)], dtype=torch.float64))
    return FFN(weights, biases)


EXPONENTS = [-1000, -800, -600, -541, -537, -300, -40, 0, 40, 300, 537, 541, 600, 800, 1000]


@pytest.mark.parametrize("recount", [True, False])
@pytest.mark.parametrize("exponent", EXPONENTS)
def test_weight_scales_from_2_minus_1000_to_2_1000_against_the_reference(exponent, recount, monkeypatch):
    """Every count labelled exact equals the rational reference; without the recount, that holds for
    whatever the forward-error bounds alone proved.  With it, every count ends exact unless float64 cannot
    hold the walk's values (a refusal, one line)."""
    if not recount:
        monkeypatch.setattr(exact1d, "RATIONAL_RECOUNT_BUDGET", 0.0)
    for seed in range(12):
        rng = random.Random(1000 * exponent + seed)
        net = _scaled_net(rng, exponent)
        try:
            got = count_segment(net, interval=(-2.0, 2.0))
        except CostLimitError as error:
            assert "too large" in str(error) and exponent >= 300
            continue
        if got.method != "exact":
            assert not recount, got.algorithm
            continue
        ref = exact_count(net, [0.0], [1.0], -2.0, 2.0)
        assert (got.activation_regions, got.linear_pieces) == (ref.activation_regions, ref.linear_pieces), \
            (seed, got.algorithm)
