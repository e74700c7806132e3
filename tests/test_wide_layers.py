"""The last layer's linear pieces by unit flips (O(children + width)): the same regions and pieces as the
exact-rational reference, on wide layers, dead readout columns, rounded (certified) and exact arithmetic."""

from __future__ import annotations

import random

import pytest
import torch
from random_nets import dyadic, gaussian_ffn

from regioncount.exact.rational1d import exact_count
from regioncount.line.exact1d import count_segment
from regioncount.models.networks import FFN


def with_dead_readout(model: FFN, fraction: float, seed: int) -> FFN:
    """Zero a fraction of the readout columns: those units' flips do not change the output slope."""
    gen = torch.Generator().manual_seed(seed)
    readout = model.weights[-1].clone()
    readout[:, torch.rand(readout.shape[1], generator=gen) < fraction] = 0.0
    return FFN(model.weights[:-1] + [readout], model.biases, name=model.name)


@pytest.mark.parametrize("dims, seed", [([1, 300, 1], 0), ([1, 200, 2], 1), ([1, 6, 120, 1], 2),
                                        ([1, 8, 8, 60, 1], 3)])
def test_rounded_wide_nets_match_the_rational_reference(dims, seed):
    model = with_dead_readout(gaussian_ffn(dims, seed), 0.4, seed)
    fast = count_segment(model, interval=(-3.0, 3.0), device="cpu")
    ref = exact_count(model, [0.0], [1.0], -3.0, 3.0)
    assert fast.activation_regions == ref.activation_regions
    assert fast.linear_pieces == ref.linear_pieces < ref.activation_regions


@pytest.mark.parametrize("seed", range(8))
def test_dyadic_wide_nets_match_the_rational_reference(seed):
    rng = random.Random(1000 + seed)
    n = rng.randint(20, 80)
    W1 = torch.tensor([[dyadic(rng)] for _ in range(n)], dtype=torch.float64)
    b1 = torch.tensor([dyadic(rng) for _ in range(n)], dtype=torch.float64)
    R = torch.tensor([[dyadic(rng, zero_p=0.4) for _ in range(n)]], dtype=torch.float64)
    model = FFN([W1, R], [b1, torch.zeros(1, dtype=torch.float64)])
    fast = count_segment(model, interval=(-3.0, 3.0), device="cpu")
    ref = exact_count(model, [0.0], [1.0], -3.0, 3.0)
    assert (fast.activation_regions, fast.linear_pieces) == (ref.activation_regions, ref.linear_pieces)
    assert fast.method == "exact"


def test_pieces_across_batches_and_parents():
    """A deep net whose last layer sees many parents, split over several batches (small max_pieces): the
    comparisons across parents and batches use the computed slopes, inside parents the flips."""
    model = with_dead_readout(gaussian_ffn([1, 16, 16, 40, 1], 7), 0.3, 7)
    ref = exact_count(model, [0.0], [1.0], -3.0, 3.0)
    for max_pieces in (None, 64):
        fast = count_segment(model, interval=(-3.0, 3.0), device="cpu", max_pieces=max_pieces)
        assert (fast.activation_regions, fast.linear_pieces) == (ref.activation_regions, ref.linear_pieces)
