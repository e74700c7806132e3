"""The pattern refinement of general-W DEQs (2-D slices and d-D boxes) decides every zero test its error
bounds do not prove exactly (regioncount.partition.exact_refinement): slivers thinner than the tolerance are
cut out and counted; coincident hyperplanes and corners where cuts meet are proven without arithmetic; an
ill-conditioned I - W D widens the bounds, and the counts stay exact against a rational reference."""

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
def test_a_sliver_below_the_tolerance_is_counted_exactly(exponent):
    """A sliver 2^-30 .. 2^-60 wide: the values inside the error bounds are decided exactly, so the sliver is
    cut out and counted, as the same arrangement with a wide gap is (it used to be reported approximate)."""
    assert float(sliver_deq(2.0**-exponent).b[1]) != -(2.0**-10)  # the sliver is in the stored weights
    wide = both(sliver_deq(2.0**-12))
    for part, reference in zip(both(sliver_deq(2.0**-exponent)), wide):
        assert (part.method, part.tolerance_decisions) == ("exact", 0)
        assert part.activation_regions == reference.activation_regions


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


def _ill_conditioned_deq(rng: random.Random, k: int, silent_readout: bool = False) -> DEQ:
    """Three units, units 0 and 1 a 2-cycle with W01 W10 = 1 - 2^-k + (under 2^-52): I - W D is a P-matrix
    (well-posed) but nearly singular on the patterns with both active (cond ~ 2^k), so the float solve's
    coefficients carry errors far beyond the 1e-9 band; unit 2 reads both.  Dyadic weights of 20-52 bits.
    ``silent_readout``: the readout ignores unit 2, so regions differing only there are one linear piece."""
    def dyadic(bits: int = 20) -> float:
        return rng.randint(-(2**bits), 2**bits) / 2**bits

    a = Fraction(rng.randint(2**19, 2**20), 2**20)
    b = Fraction(int((1 - Fraction(1, 2**k)) / a * 2**52), 2**52)
    W = torch.zeros(3, 3, dtype=F)
    W[0, 1], W[1, 0], W[2, 0], W[2, 1] = float(a), float(b), dyadic(), dyadic()
    assert a * b < 1
    return DEQ(W=W, U=[[dyadic(), dyadic()] for _ in range(3)], b=[dyadic() / 2 for _ in range(3)],
               A=[[dyadic(), dyadic(), 0.0 if silent_readout else dyadic()]])


def _clip(polygon: list[tuple[Fraction, Fraction]], a: Fraction, b: Fraction, c: Fraction):
    """The convex polygon cut to a x + b y + c >= 0, exactly."""
    out = []
    for p, q in zip(polygon, polygon[1:] + polygon[:1]):
        fp, fq = a * p[0] + b * p[1] + c, a * q[0] + b * q[1] + c
        if fp >= 0:
            out.append(p)
        if fp * fq < 0:
            t = fp / (fp - fq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def _exact_regions_2d(deq: DEQ, low: int, high: int) -> int:
    """The activation regions of a 2-input DEQ in the square [low, high]^2, in rational arithmetic: the
    patterns D whose polygon {x : u^D_i(x) >= 0 for i in D, <= 0 otherwise}, u^D = (I - W D)^-1 (U x + b)
    solved exactly, has positive area (the areas must fill the square)."""
    m = deq.width
    W = [[Fraction(v) for v in row] for row in deq.W.tolist()]
    rhs = [[Fraction(u0), Fraction(u1), Fraction(c)] for (u0, u1), c in zip(deq.U.tolist(), deq.b.tolist())]
    count, covered = 0, Fraction(0)
    for D in range(2**m):
        on = [(D >> j) & 1 for j in range(m)]
        M = [[Fraction(int(i == j)) - W[i][j] * on[j] for j in range(m)] for i in range(m)]
        X = solve_unique([M[i] + rhs[i] for i in range(m)], m)  # (m, 3): u^D = X[:, 0] x + X[:, 1] y + X[:, 2]
        assert X is not None
        coef = [[X[i][k] for i in range(m)] for k in range(3)]
        polygon = [(Fraction(low), Fraction(low)), (Fraction(high), Fraction(low)), (Fraction(high), Fraction(high)),
                   (Fraction(low), Fraction(high))]
        for i in range(m):
            s = 1 if on[i] else -1
            polygon = _clip(polygon, s * coef[0][i], s * coef[1][i], s * coef[2][i])
            if len(polygon) < 3:
                break
        if len(polygon) >= 3:
            area = abs(sum(p[0] * q[1] - q[0] * p[1] for p, q in zip(polygon, polygon[1:] + polygon[:1]))) / 2
            count += area > 0
            covered += area
    assert covered == (high - low) ** 2
    return count


@pytest.mark.parametrize("seed", range(4))
def test_ill_conditioned_patterns_are_counted_exactly(seed):
    """Nearly singular I - W D (cond up to 2^48): the verified solve's bounds send every unproven sign to
    the exact referee, so each count is exact and equals the rational reference (before the bounds, float
    decisions outside the 1e-9 band were trusted; 60% of these nets ended approximate)."""
    rng = random.Random(900 + seed)
    for _ in range(5):
        deq = _ill_conditioned_deq(rng, rng.choice([20, 32, 44, 48]))
        truth = _exact_regions_2d(deq, -1, 1)
        part = partition_plane(deq, *BOX, device="cpu", assume_well_posed=True)
        assert (part.method, part.activation_regions) == ("exact", truth)


def _unpacked(words: torch.Tensor, m: int) -> list[tuple[bool, ...]]:
    """Rows of :func:`~regioncount.core.patterns.pack_bits` words back to patterns of m units (unit
    64 w + 8 k + b sits at bit 8 b + k of word w)."""
    rows = []
    for row in words.tolist():
        rows.append(tuple(bool((row[u // 64] >> (8 * (u % 8) + (u % 64) // 8)) & 1) for u in range(m)))
    return rows


@pytest.mark.parametrize("seed", range(2))
def test_ill_conditioned_linear_pieces_follow_the_exact_jacobians(seed):
    """Neighbouring regions are one linear piece exactly when their exact rational Jacobians agree, however
    ill-conditioned their patterns' I - W D (a difference counts only beyond both Jacobians' proven error
    bounds; the rest is compared exactly)."""
    from regioncount.core.patterns import pack_bits
    from regioncount.partition.exact_pieces import ExactJacobians

    probe = torch.tensor([[True, False, True], [False, True, True]])
    assert _unpacked(pack_bits(probe), 3) == [tuple(r) for r in probe.tolist()]
    rng = random.Random(950 + seed)
    merged = 0
    for _ in range(4):
        deq = _ill_conditioned_deq(rng, rng.choice([32, 44, 48]), silent_readout=True)
        part = partition_plane(deq, *BOX, device="cpu", assume_well_posed=True)
        patterns = _unpacked(part.patterns, deq.width)
        exact = ExactJacobians(deq, [[1.0, 0.0], [0.0, 1.0]])
        truth = [exact(patterns[i]) == exact(patterns[j]) for i, j in part.pairs.tolist()]
        assert part.same_affine.tolist() == truth
        merged += sum(truth)
    assert merged > 0  # some neighbours differ only at the silent unit: one piece, told apart from rounding
