"""The pattern refinement of general-W DEQs (2-D slices and d-D boxes) decides its zero tests inside the
tolerance exactly (regioncount.partition.exact_refinement): slivers thinner than the tolerance are reported, never
silently lost; coincident hyperplanes and corners where cuts meet are proven without arithmetic."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
import torch
from lp_reference import bfs_regions
from random_nets import gaussian_deq, random_general_deq

from regioncount import DEQ
from regioncount.core.geometry import Box
from regioncount.core.integer_linalg import determinant, positive_definite, solve_square
from regioncount.exact.rational1d import solve_unique
from regioncount.partition.box_partition import partition_box
from regioncount.partition.deq_cells import refine_general_deq
from regioncount.partition.exact_refinement import influences
from regioncount.partition.plane2d import partition_plane

F = torch.float64
BOX = ([-1.0, -1.0], [1.0, 1.0])


def sliver_deq(gap: float, duplicate: bool = False) -> DEQ:
    """Units 0 and 1 have their zeros at x1 = 2^-10 and x1 = 2^-10 + gap (the same line when ``duplicate``:
    u1 = 2 u0); units 2 and 3 form a cycle of W.  Every gap from 2^-62 up is stored exactly."""
    W = torch.zeros(4, 4, dtype=F)
    W[2, 3], W[3, 2] = 1 / 8, -1 / 8
    U = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.5, 1.0], [-1.0, 0.5]], dtype=F)
    b = torch.tensor([-(2.0**-10), -(2.0**-10) - gap, 0.25, -0.125], dtype=F)
    if duplicate:
        U[1], b[1] = 2 * U[0], 2 * b[0]
    return DEQ(W=W, U=U, b=b, A=torch.ones(1, 4, dtype=F), name="sliver")


def both(model):
    return (partition_box(model, *BOX, device="cpu"), partition_plane(model, *BOX, device="cpu"))


def test_a_sliver_above_the_tolerance_is_a_region():
    model = sliver_deq(2.0**-12)
    expected = len(bfs_regions(model, *BOX)["patterns"])
    for with_sliver, without in zip(both(model), both(sliver_deq(0.0))):
        assert with_sliver.method == without.method == "exact"
        assert with_sliver.activation_regions == expected > without.activation_regions


@pytest.mark.parametrize("exponent", [30, 44, 50, 60])
def test_a_sliver_below_the_tolerance_is_reported_not_lost(exponent):
    assert float(sliver_deq(2.0**-exponent).b[1]) != -(2.0**-10)  # the sliver is in the stored weights
    for part in both(sliver_deq(2.0**-exponent)):
        assert part.method == "approximate" and part.tolerance_decisions > 0


def test_coincident_hyperplanes_are_proven():
    for part in both(sliver_deq(0.0, duplicate=True)):
        assert (part.method, part.tolerance_decisions) == ("exact", 0)
        assert part.activation_regions == both(sliver_deq(0.0))[0].activation_regions


@pytest.mark.parametrize("seed", range(6))
def test_random_degenerate_cyclic_nets_are_exact_and_match_the_reference(seed):
    deq = random_general_deq(random.Random(300 + seed), 2, 0.0)
    ref = bfs_regions(deq, *BOX)
    for part in (partition_box(deq, *BOX, device="cpu", assume_well_posed=True),
                 partition_plane(deq, *BOX, device="cpu", assume_well_posed=True)):
        assert part.method == "exact"
        assert part.activation_regions == len(ref["patterns"])


def test_generic_cyclic_nets_need_almost_no_arithmetic():
    """Own cuts and corners where cuts meet are settled structurally: a generic 16-unit cyclic W is exact
    with no rational decision at all."""
    gen = torch.Generator().manual_seed(1)
    W = torch.randn(16, 16, generator=gen, dtype=F)
    W *= 0.85 / torch.linalg.matrix_norm(W, ord=2)
    deq = DEQ(W=W, U=torch.randn(16, 2, generator=gen, dtype=F) * 2, b=torch.randn(16, generator=gen, dtype=F) * 0.5,
              A=torch.randn(1, 16, generator=gen, dtype=F))
    part = partition_plane(deq, [-3.0, -3.0], [3.0, 3.0], device="cpu")
    assert (part.method, part.activation_regions, part.exact_decisions) == ("exact", 137, 0)


def test_influences_follow_paths_of_w():
    W = torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.25, 0.0]], dtype=F)
    assert influences(W).tolist() == [[False] * 3, [True, False, False], [True, True, False]]
    W[0, 2] = 0.125  # a cycle through every unit
    assert bool(influences(W).all())


def test_the_integer_solver_agrees_with_elimination_over_fractions():
    rng = random.Random(5)
    for _ in range(200):
        d, k = rng.randint(1, 8), rng.randint(0, 3)
        rows = [[Fraction(rng.randint(-4, 4), 2 ** rng.randint(0, 60)) if rng.random() < 0.7 else Fraction(0)
                 for _ in range(d + k)] for _ in range(d)]
        if d > 1 and rng.random() < 0.25:
            rows[1][:d] = [3 * v for v in rows[0][:d]]  # singular
        assert solve_square(rows, d) == solve_unique(rows, d)


@pytest.mark.parametrize("triangular", [True, False])
def test_every_structural_zero_is_an_exact_zero(monkeypatch, triangular):
    """Whenever the cuts through a vertex prove a value zero without arithmetic (own cuts, chains of cuts,
    bends), the rational value at the exact vertex is zero too; and the structural rules settle nearly
    every value inside the tolerance."""
    from regioncount.partition import exact_refinement

    original = exact_refinement.ExactRefinement.chained_zero
    seen = []

    def checked(self, tight, lineage, pattern, unit):
        proven = original(self, tight, lineage, pattern, unit)
        if proven:
            self.left += 1  # the check below is not the partition's decision
            seen.append(self.sign(tight, lineage, tuple(bool(pattern >> k & 1) for k in range(self.m)), unit))
            self.decided -= 1
        return proven

    monkeypatch.setattr(exact_refinement.ExactRefinement, "chained_zero", checked)
    for seed in range(3):  # the refinement itself (a triangular slice is cut unit by unit by default)
        refined = refine_general_deq(gaussian_deq(12, seed, triangular), Box((-3.0, -3.0), (3.0, 3.0)),
                                     torch.device("cpu"), lambda *sizes: None)
        assert refined.doubtful == refined.unresolved == 0
    assert seen and all(sign == 0 for sign in seen)


def test_integer_determinants_and_definiteness_agree_with_sympy():
    import sympy

    rng = random.Random(9)
    for _ in range(100):
        n = rng.randint(1, 6)
        A = [[Fraction(rng.randint(-5, 5), 2 ** rng.randint(0, 40)) for _ in range(n)] for _ in range(n)]
        if n > 1 and rng.random() < 0.3:
            A[-1] = [2 * v for v in A[0]]  # singular
        exact = sympy.Matrix(A)
        assert determinant(A) == Fraction(str(exact.det()))
        S = [[A[i][j] + A[j][i] for j in range(n)] for i in range(n)]
        leading = [sympy.Matrix(S)[:k, :k].det() for k in range(1, n + 1)]
        assert positive_definite(S) == all(v > 0 for v in leading)
