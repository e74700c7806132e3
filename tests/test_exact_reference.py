"""The fast enumerator against the exact-rational reference on random small nets (dyadic weights)."""

from __future__ import annotations

import random

import pytest
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
