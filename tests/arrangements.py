"""Hyperplane arrangements that stress exact d-D partitions, and an exact rational reference for them.

The generator builds near-parallel and near-concurrent arrangements in 2-D and 3-D from integer normals
of ``bits`` bits (scaled by a power of two, so float64 holds them exactly): pairs of hyperplanes meeting
at angles down to ``2^-(2 bits)`` in the plane (Bezout pairs of prescribed determinant) or ``2^-bits`` in
space, and hyperplanes missing the crossing of others by ``2^-28 .. 2^-62``, plus a few generic ones.
Each arrangement becomes a 2-layer FFN (hidden units = hyperplanes, readout all ones) and a triangular
DEQ with W = 0; both have the arrangement's cells as activation regions.

The reference (:func:`reference_counts`) never builds a cell: by Zaslavsky's theorem the regions of an
arrangement inside an open convex set K number ``sum |mu(X)|`` over the flats X of its intersection
lattice that meet K (mu the Moebius function from the whole space), and in all of R^d the bounded ones
number ``|sum mu(X)|`` when the normals span R^d.  Flats are intersections of hyperplanes taken
exactly over ``Fraction``; whether a flat meets the open box is decided exactly too.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations

import torch

from regioncount.models.networks import DEQ, FFN

Hyperplane = tuple[tuple[Fraction, ...], Fraction]  # a . x + c = 0


@dataclass
class Arrangement:
    """Hyperplanes a_i . x + c_i = 0 as stored float64 rows ``normals`` (n, d) and ``offsets`` (n,), and
    the box [low, high]^d they are counted in."""

    normals: torch.Tensor
    offsets: torch.Tensor
    low: float
    high: float
    label: str

    def ffn(self) -> FFN:
        n = self.normals.shape[0]
        return FFN([self.normals.clone(), torch.ones(1, n, dtype=torch.float64)],
                   [self.offsets.clone(), torch.zeros(1, dtype=torch.float64)])

    def deq(self) -> DEQ:
        n, d = self.normals.shape
        return DEQ(torch.zeros(n, n, dtype=torch.float64), self.normals.clone(), self.offsets.clone(),
                   torch.ones(1, n, dtype=torch.float64))


# --- the generator --------------------------------------------------------------------------------------

def _bezout(a: int, b: int) -> tuple[int, int, int]:
    """(g, x, y) with a x + b y = g = gcd(a, b)."""
    if b == 0:
        return (abs(a), 1 if a >= 0 else -1, 0)
    g, x, y = _bezout(b, a % b)
    return g, y, x - (a // b) * y


def _random_int(rng: random.Random, bits: int) -> int:
    return rng.choice((-1, 1)) * rng.randint(2 ** (bits - 2), 2 ** (bits - 1) - 1)


def _near_parallel_2d(rng: random.Random, bits: int, angle: int) -> tuple[list[int], list[int]]:
    """Two integer normals of about ``bits`` bits at an angle of about 2^-angle (det = N y - M x)."""
    while True:
        n, m = _random_int(rng, bits), _random_int(rng, bits)
        if math.gcd(n, m) == 1:
            break
    g, p, q = _bezout(n, -m)  # n p - m q = 1
    assert g == 1 and n * p - m * q == 1
    y1, x1 = p, q
    det = max(1, 2 ** max(0, 2 * (bits - 1) - angle) + rng.randint(0, 3))
    bx, by = det * x1, det * y1
    k = round((bx * n + by * m) / (n * n + m * m))
    bx, by = bx - k * n, by - k * m  # shortest representative: det unchanged
    t = rng.choice((1, 1, 2, -1))
    return [n, m], [bx + t * n, by + t * m]


def _near_parallel_3d(rng: random.Random, bits: int, angle: int) -> tuple[list[int], list[int]]:
    a = [_random_int(rng, bits) for _ in range(3)]
    size = 2 ** max(0, bits - 1 - angle)
    delta = [rng.randint(-size, size) for _ in range(3)]
    if not any(delta):
        delta[rng.randrange(3)] = 1
    return a, [ai + di for ai, di in zip(a, delta)]


def _through(normal: list[int], point: list[Fraction], shift: Fraction = Fraction(0)) -> Fraction:
    """The offset c with normal . point + c = shift * |normal|_1 (a hyperplane missing the point by about
    ``shift``)."""
    return -sum((Fraction(a) * p for a, p in zip(normal, point)), Fraction(0)) + shift * sum(abs(a) for a in normal)


def near_degenerate(rng: random.Random, d: int, bits: int) -> Arrangement:
    """A random near-parallel / near-concurrent arrangement in [-1, 1]^d (see the module docstring)."""
    angle = rng.randint(12, min(50, 2 * bits - 2 if d == 2 else bits))
    miss = rng.randint(28, 62)
    at_origin = rng.random() < 0.4
    grid = 2 ** rng.randint(3, 12)
    point = [Fraction(0)] * d if at_origin else [Fraction(rng.randint(-grid + 1, grid - 1), grid) for _ in range(d)]
    rows: list[list[int]] = []
    offsets: list[Fraction] = []
    kind = rng.choice(("parallel", "concurrent", "both"))
    if kind in ("parallel", "both"):
        a, b = _near_parallel_2d(rng, bits, angle) if d == 2 else _near_parallel_3d(rng, bits, angle)
        rows += [a, b]
        offsets += [_through(a, point), _through(b, point)]
    while len(rows) < d:
        a = [_random_int(rng, bits) for _ in range(d)]
        rows.append(a)
        offsets.append(_through(a, point))
    if kind in ("concurrent", "both"):
        for _ in range(rng.randint(1, 2)):
            a = [_random_int(rng, bits) for _ in range(d)]
            if rng.random() < 0.3:  # nearly parallel to one of the others as well
                a = [x + rng.randint(-3, 3) for x in rows[rng.randrange(len(rows))]]
            rows.append(a)
            offsets.append(_through(a, point, Fraction(rng.choice((-1, 1)), 2**miss) * rng.choice((1, 3, 5))))
    for _ in range(rng.randint(0, 2 if d == 2 else 1)):
        a = [_random_int(rng, bits) for _ in range(d)]
        rows.append(a)
        offsets.append(_through(a, [Fraction(rng.uniform(-1, 1)) for _ in range(d)]))
    scale = 2.0 ** -(bits - 1)
    normals = torch.tensor(rows, dtype=torch.float64) * scale
    c = torch.tensor([float(v) * scale for v in offsets], dtype=torch.float64)
    order = list(range(len(rows)))
    rng.shuffle(order)
    label = f"d={d} bits={bits} angle=2^-{angle} miss=2^-{miss} {kind}{' at origin' if at_origin else ''}"
    return Arrangement(normals[order], c[order], -1.0, 1.0, label)


# --- the exact reference --------------------------------------------------------------------------------

def _hyperplanes(arr: Arrangement) -> list[Hyperplane]:
    """The distinct hyperplanes of the stored rows, exactly (rows with a zero normal are no hyperplane;
    rows that are positive or negative multiples of each other are one)."""
    out: list[Hyperplane] = []
    seen = set()
    for row, c in zip(arr.normals.tolist(), arr.offsets.tolist()):
        a = tuple(Fraction(v) for v in row)
        if not any(a):
            continue
        lead = next(v for v in a if v)
        key = (tuple(v / lead for v in a), Fraction(c) / lead)
        if key not in seen:
            seen.add(key)
            out.append((a, Fraction(c)))
    return out


def _rref(rows: list[list[Fraction]]) -> list[list[Fraction]] | None:
    """Reduced row echelon form of the augmented rows [a | -c]; None when inconsistent."""
    rows = [r[:] for r in rows]
    width = len(rows[0]) - 1
    r = 0
    for col in range(width):
        pivot = next((i for i in range(r, len(rows)) if rows[i][col] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        p = rows[r][col]
        rows[r] = [v / p for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][col] != 0:
                f = rows[i][col]
                rows[i] = [x - f * y for x, y in zip(rows[i], rows[r])]
        r += 1
    for row in rows[r:]:
        if row[-1] != 0:
            return None
    return rows[:r]


def _parametrize(echelon: list[list[Fraction]], d: int) -> tuple[list[Fraction], list[list[Fraction]]]:
    """A point x0 and a basis N of the directions of the flat given in reduced echelon form."""
    pivots = [next(j for j in range(d) if row[j] != 0) for row in echelon]
    free = [j for j in range(d) if j not in pivots]
    x0 = [Fraction(0)] * d
    for row, p in zip(echelon, pivots):
        x0[p] = row[-1]
    basis = []
    for f in free:
        v = [Fraction(0)] * d
        v[f] = Fraction(1)
        for row, p in zip(echelon, pivots):
            v[p] = -row[f]
        basis.append(v)
    return x0, basis


def _meets_open_box(x0: list[Fraction], basis: list[list[Fraction]], low: Fraction, high: Fraction) -> bool:
    """Does {x0 + N t} meet the open box (low, high)^d?  Exact for flats of dimension 0, 1 and d - 1 (all
    flats when d <= 3), and for the whole space."""
    d = len(x0)
    k = len(basis)
    if k == 0:
        return all(low < v < high for v in x0)
    if k == d:
        return True
    if k == d - 1:  # a hyperplane: its affine function takes both signs on the box
        normal = _normal_of(basis, d)
        c = -sum((n * x for n, x in zip(normal, x0)), Fraction(0))
        lo = c + sum((min(n * low, n * high) for n in normal), Fraction(0))
        hi = c + sum((max(n * low, n * high) for n in normal), Fraction(0))
        return lo < 0 < hi
    assert k == 1
    (v,) = basis
    t_lo, t_hi = None, None
    for xi, vi in zip(x0, v):
        if vi == 0:
            if not low < xi < high:
                return False
            continue
        a, b = (low - xi) / vi, (high - xi) / vi
        a, b = min(a, b), max(a, b)
        t_lo = a if t_lo is None else max(t_lo, a)
        t_hi = b if t_hi is None else min(t_hi, b)
    return t_lo is None or t_hi is None or t_lo < t_hi


def _normal_of(basis: list[list[Fraction]], d: int) -> list[Fraction]:
    """A nonzero vector orthogonal to the d - 1 independent vectors of ``basis`` (cofactors)."""
    if d == 1:
        return [Fraction(1)]
    if d == 2:
        (v,) = basis
        return [-v[1], v[0]]
    assert d == 3
    u, w = basis
    return [u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0]]


@dataclass
class ReferenceCounts:
    in_box: int
    all_space: int
    bounded: int


def reference_counts(arr: Arrangement) -> ReferenceCounts:
    """Regions in the open box, regions of R^d and bounded regions of R^d, exactly (Zaslavsky)."""
    return counts_of(_hyperplanes(arr), arr.normals.shape[1], Fraction(arr.low), Fraction(arr.high))


def sliced(arr: Arrangement, origin: list[float], u: list[float], w: list[float]) -> list[Hyperplane]:
    """The distinct lines that the hyperplanes cut out of the plane x = origin + s u + t w, exactly:
    a . x + c = (a . u) s + (a . w) t + (a . origin + c)."""
    o, du, dw = ([Fraction(v) for v in vec] for vec in (origin, u, w))
    lines: list[Hyperplane] = []
    for a, c in _hyperplanes(arr):
        lines.append(((sum((x * y for x, y in zip(a, du)), Fraction(0)), sum((x * y for x, y in zip(a, dw)), Fraction(0))),
                      sum((x * y for x, y in zip(a, o)), c)))
    out, seen = [], set()
    for a, c in lines:
        if not any(a):
            continue
        lead = next(v for v in a if v)
        key = (tuple(v / lead for v in a), c / lead)
        if key not in seen:
            seen.add(key)
            out.append((a, c))
    return out


def counts_of(planes: list[Hyperplane], d: int, low: Fraction, high: Fraction) -> ReferenceCounts:
    """:func:`reference_counts` of distinct hyperplanes given exactly, in the box (low, high)^d."""
    flats: dict[tuple, tuple[frozenset[int], int, bool]] = {}
    full = (frozenset(), d, True)
    for size in range(1, d + 1):
        for subset in combinations(range(len(planes)), size):
            rows = [[*planes[i][0], -planes[i][1]] for i in subset]
            echelon = _rref(rows)
            if echelon is None or len(echelon) != size:
                continue  # empty, or not a new flat of codimension ``size``
            key = tuple(tuple(r) for r in echelon)
            if key in flats:
                continue
            x0, basis = _parametrize(echelon, d)
            on = frozenset(i for i, (a, c) in enumerate(planes)
                           if sum((ai * xi for ai, xi in zip(a, x0)), c) == 0
                           and all(sum((ai * vi for ai, vi in zip(a, v)), Fraction(0)) == 0 for v in basis))
            flats[key] = (on, d - size, _meets_open_box(x0, basis, low, high))
    items = [full, *flats.values()]
    items.sort(key=lambda f: -f[1])
    mu: list[int] = []
    for i, (on, dim, _) in enumerate(items):
        if i == 0:
            mu.append(1)
            continue
        mu.append(-sum(mu[j] for j, (other, odim, _) in enumerate(items[:i]) if odim > dim and other < on))
    in_box = sum(abs(m) for m, (_, _, meets) in zip(mu, items) if meets)
    all_space = sum(abs(m) for m in mu)
    rank = max((d - dim for _, dim, _ in items), default=0)
    bounded = abs(sum(mu)) if rank == d else 0
    return ReferenceCounts(in_box, all_space, bounded)


def generic_check(n: int, d: int) -> int:
    """Regions of n hyperplanes in general position in R^d (a closed form the reference must meet)."""
    return sum(math.comb(n, j) for j in range(d + 1))
