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
def dyadic_ffns(draw, values=DYADICS, inputs: int = 1, widest: int = 5, depth: int = 3):
    """FFNs with ``inputs`` inputs, up to ``depth`` hidden layers of up to ``widest`` units, dyadic weights."""
    widths = [inputs] + draw(st.lists(st.integers(1, widest), min_size=1, max_size=depth)) + [draw(st.integers(1, 2))]
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


@SETTINGS
@given(dyadic_ffns(inputs=2, widest=4, depth=2))  # dead, duplicated and concurrent boundaries arise by themselves
def test_generated_2d_partitions_match_the_exact_reference(model):
    """The polygon and the polytope partitions of generated dyadic 2-D nets are exact and agree with the LP
    reference (regions) and the sympy Jacobians (linear pieces)."""
    from lp_reference import bfs_regions, reference_linear_pieces

    from regioncount.partition.box_partition import partition_box
    from regioncount.partition.plane2d import partition_plane

    box = ([-1.0, -1.0], [1.0, 1.0])
    ref = bfs_regions(model, *box)
    pieces = reference_linear_pieces(model, ref)
    for part in (partition_plane(model, *box, device="cpu"), partition_box(model, *box, device="cpu")):
        assert part.method == "exact"
        assert (part.activation_regions, part.linear_pieces) == (len(ref["patterns"]), pieces)
