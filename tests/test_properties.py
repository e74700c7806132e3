"""Property-based tests (hypothesis): generated nets with dyadic weights, counted by the fast walk, agree
with the exact-rational reference; generated Gaussian-like nets labelled exact agree too."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rational_reference import exact_count

from regioncount import DEQ, FFN, count_segment

DYADICS = st.builds(lambda k, e: k / 2**e, st.integers(-8, 8), st.integers(0, 3))
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def dyadic_ffns(draw, values=DYADICS):
    widths = [1] + draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)) + [draw(st.integers(1, 2))]
    weights, biases = [], []
    for n_in, n_out in zip(widths, widths[1:]):
        weights.append(torch.tensor(draw(st.lists(st.lists(values, min_size=n_in, max_size=n_in),
                                                  min_size=n_out, max_size=n_out)), dtype=torch.float64))
        biases.append(torch.tensor(draw(st.lists(values, min_size=n_out, max_size=n_out)), dtype=torch.float64))
    return FFN(weights, biases)


@st.composite
def dyadic_deqs(draw):
    m = draw(st.integers(1, 5))
    W = torch.zeros(m, m, dtype=torch.float64)
    for t in range(m):
        for i in range(t):
            W[t, i] = draw(DYADICS)
        W[t, t] = draw(st.sampled_from([0.0, 0.5, -1.0]))
    U = torch.tensor([[draw(DYADICS)] for _ in range(m)], dtype=torch.float64)
    b = torch.tensor([draw(DYADICS) for _ in range(m)], dtype=torch.float64)
    A = torch.tensor([[draw(DYADICS) for _ in range(m)]], dtype=torch.float64)
    return DEQ(W=W, U=U, b=b, A=A)


INTERVALS = st.tuples(st.integers(-3, 2), st.integers(1, 4)).map(lambda p: (float(p[0]), float(p[0] + p[1])))


def _agree(model, interval):
    fast = count_segment(model, interval=interval)
    exact = exact_count(model, [0.0], [1.0], *interval)
    assert fast.method == "exact"
    assert (fast.activation_regions, fast.linear_pieces) == (exact.activation_regions, exact.linear_pieces)


@SETTINGS
@given(dyadic_ffns(), INTERVALS)
def test_dyadic_ffns_match_the_reference(model, interval):
    _agree(model, interval)


@SETTINGS
@given(dyadic_deqs(), INTERVALS)
def test_dyadic_triangular_deqs_match_the_reference(model, interval):
    _agree(model, interval)


@SETTINGS
@given(dyadic_ffns(values=st.floats(-3, 3, allow_nan=False, allow_subnormal=False)), INTERVALS)
def test_arbitrary_float_ffns_labelled_exact_are_right(model, interval):
    fast = count_segment(model, interval=interval)
    exact = exact_count(model, [0.0], [1.0], *interval)
    if fast.method == "exact":
        assert (fast.activation_regions, fast.linear_pieces) == (exact.activation_regions, exact.linear_pieces)
