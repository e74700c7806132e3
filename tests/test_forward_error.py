"""Rounded FFN walks proven by forward-error bounds: whatever is labelled exact equals the exact-rational
reference, on generic nets (weights that are not short dyadics) and on adversarial ones built to put a
later layer's zero within 1e-17..1e-12 of an earlier breakpoint.  The recount budget is set to zero, so a
count can only be "exact" when the bounds proved every decision."""

from __future__ import annotations

import math
import random

import pytest
import torch
from rational_reference import exact_count

from regioncount import FFN, count_segment, exact1d
from regioncount.exactness import exact_arithmetic
from regioncount.forward_error import spectral_norm_bound


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


@pytest.mark.parametrize("seed", range(30))
def test_generic_nets_are_proven_and_right(seed, no_recount):
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
def test_near_ties_are_never_mislabelled(seed, no_recount):
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
