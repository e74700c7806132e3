"""Exact second opinions for the pattern refinement of a general-W DEQ (``docs/exact-dd.md``,
"General W").

The refinement cuts each cell along the zero of one unit's pre-activation on one pattern,
u_k^D(y) = 0 with u^D = (I - W D)^-1 (U x(y) + b) and x(y) = o + P y (the identity for a box, the slice
map for a plane).  Each cut is recorded once (:class:`CutRecord`: its unit and pattern) and every cell
keeps its *lineage*, the cut of each round that made it, so constraint bit ``2 d + r`` of a cell's vertex
is the hyperplane its round-r ancestor was cut along.  With float64 weights read as dyadic rationals:

* a vertex is the exact solution of the constraints tight at it (box faces, recorded hyperplanes);
* u_j^D depends only on the activations of the units that reach unit j through W (:func:`influences`);
* u_j^D at a vertex that lies on the cut (unit j, pattern D') with D' equal to D on those units except
  perhaps at unit j is exactly zero (on that hyperplane z_j = 0 under both patterns, so both fixed-point
  systems have the same solution): such a value is *structurally zero* and needs no arithmetic;
* two distinct cuts of one unit k through a vertex whose patterns differ, among the units reaching k, only
  at unit i make u_i vanish there (u_k of the two patterns differs by a non-zero multiple of u_i), so they
  join patterns as a cut of unit i would;
* more generally, the cuts through a vertex join patterns: a cut (unit k, pattern D') puts D' and D'
  with unit k flipped in one class, because u_k^{D'} vanishes there and both patterns then share their
  fixed point at the vertex.  u_j^D is exactly zero at a vertex when D is in one class with the pattern of
  a cut of unit j through it (:meth:`ExactRefinement.chained_zero`: corners where several cuts meet);
* any other value inside the zero tolerance is computed exactly: zero or of the required sign proves the
  float decision, anything else is a decision left to the tolerance (a sliver thinner than the tolerance).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import torch

from ..exact.rational1d import Affine
from ..exact.rational_deq import PatternMaps
from ..models.networks import DEQ
from .exact_cells import EXACT_BUDGET, box_face, solve_vertex, value_at
from .polytopes import bit_mask

#: Two recorded cut hyperplanes whose normalized coefficients differ by more than this are distinct.
DISTINCT_PLANES = 1e-7


class CutRecord:
    """Every cut of a refinement: node ids in creation order, with the unit, the pattern (bool, m) and the
    float64 coefficients (cell coordinates, then the constant) of the cut hyperplane, on the refinement's
    device."""

    def __init__(self, m: int, d: int, device: torch.device) -> None:
        self.units = torch.zeros(0, dtype=torch.long, device=device)
        self.patterns = torch.zeros(0, m, dtype=torch.bool, device=device)
        self.planes = torch.zeros(0, d + 1, dtype=torch.float64, device=device)
        self._planes: dict[int, tuple[float, ...] | None] = {}  # normalized planes, read back on demand
        self._nodes: dict[int, tuple[int, int]] = {}  # (pattern bit mask, unit), read back on demand

    def add(self, units: torch.Tensor, patterns: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
        """Record cuts (S,) of ``units`` on ``patterns`` (S, m) along ``planes`` (S, d + 1); returns their
        node ids (S,)."""
        first = self.units.shape[0]
        self.units = torch.cat([self.units, units])
        self.patterns = torch.cat([self.patterns, patterns])
        self.planes = torch.cat([self.planes, planes])
        return torch.arange(first, first + units.shape[0], device=units.device)

    def distinct_planes(self, a: int, b: int) -> bool:
        """Are the hyperplanes of cuts ``a`` and ``b`` clearly different (normalized coefficients apart by
        far more than the rounding of their solves)?"""
        pa, pb = self._normalized(a), self._normalized(b)
        if pa is None or pb is None:
            return False
        return max(abs(x - y) for x, y in zip(pa, pb)) > DISTINCT_PLANES and \
            max(abs(x + y) for x, y in zip(pa, pb)) > DISTINCT_PLANES

    def _normalized(self, node: int) -> tuple[float, ...] | None:
        """Cut ``node``'s plane coefficients divided by their largest magnitude (None: all zero), cached."""
        if node not in self._planes:
            row = self.planes[node].tolist()
            top = max(abs(v) for v in row)
            self._planes[node] = None if top == 0 else tuple(v / top for v in row)
        return self._planes[node]

    def node(self, node: int) -> tuple[int, int]:
        """(pattern as an int bit mask, unit) of cut ``node``, cached."""
        if node not in self._nodes:
            bits = sum(1 << i for i, v in enumerate(self.patterns[node].tolist()) if v)
            self._nodes[node] = (bits, int(self.units[node]))
        return self._nodes[node]


def influences(W: torch.Tensor) -> torch.Tensor:
    """(m, m) bool: entry (j, i) when unit i's activation reaches u_j, through a path of non-zero entries
    of W (u_j reads z_i when W[j, i] != 0).  u_j^D depends on D only through these units."""
    reach = W != 0
    while True:
        step = reach | ((reach.to(torch.float32) @ reach.to(torch.float32)) > 0)
        if bool((step == reach).all()):
            return reach
        reach = step


def structurally_zero(record: CutRecord, lineage: torch.Tensor, tight: torch.Tensor, patterns: torch.Tensor,
                      units: torch.Tensor, d: int, reach: torch.Tensor) -> torch.Tensor:
    """(N,) bool: u_{units} on ``patterns`` (N, m) is exactly zero at vertices with incidence words ``tight``
    (N, K), because one of the vertex's recorded hyperplanes (``lineage`` (N, R) node ids, -1 for none) is
    the same unit's zero on a pattern that differs at most at that unit among the units reaching it
    (``reach``, :func:`influences`)."""
    N, R = lineage.shape
    if N == 0 or R == 0:
        return torch.zeros(N, dtype=torch.bool, device=lineage.device)
    nodes = lineage.clamp_min(0)
    has = torch.zeros(N, R, dtype=torch.bool, device=lineage.device)
    for r in range(R):
        word, mask = bit_mask(2 * d + r)
        if word < tight.shape[1]:
            has[:, r] = (tight[:, word] & mask) != 0
    same_unit = (record.units[nodes] == units[:, None]) & (lineage >= 0) & has
    if not bool(same_unit.any()):
        return torch.zeros(N, dtype=torch.bool, device=lineage.device)
    rows, cols = same_unit.nonzero().unbind(1)
    differ = (record.patterns[nodes[rows, cols]] ^ patterns[rows]) & reach[units[rows]]
    differ[torch.arange(rows.shape[0], device=rows.device), units[rows]] = False
    found = torch.zeros(N, dtype=torch.bool, device=lineage.device)
    found[rows[~differ.any(1)]] = True
    return found


class ExactRefinement:
    """Exact hyperplanes, vertices and values for one refinement, within a budget of decisions."""

    def __init__(self, model: DEQ, low: Sequence[float], high: Sequence[float], record: CutRecord,
                 origin: Sequence[float] | None = None, directions: Sequence[Sequence[float]] | None = None,
                 budget: int = EXACT_BUDGET) -> None:
        self.reach = influences(model.W)
        reach = self.reach.tolist()
        self.reach_masks = [sum(1 << i for i, v in enumerate(row) if v) for row in reach]
        self.d = len(low)
        self.low, self.high = [Fraction(v) for v in low], [Fraction(v) for v in high]
        self.record = record
        self.model, self.origin, self.directions = model, origin, directions
        self.m = model.width
        self._maps: PatternMaps | None = None  # the exact maps, built on the first exact question
        self.left = budget
        self.decided = 0
        self.spent = False

    def affine(self, pattern: tuple[bool, ...]) -> list[Affine] | None:
        """u^D of every unit as an exact affine map of the cell coordinates (None: I - W D singular)."""
        if self._maps is None:
            self._maps = PatternMaps(self.model, self.origin, self.directions)
        return self._maps(pattern)

    def constraint(self, bit: int, lineage: Sequence[int]) -> Affine | None:
        """Constraint ``bit`` of a cell with ``lineage`` as a . y + c = 0 (box faces first)."""
        if bit < 2 * self.d:
            return box_face(bit, self.low, self.high)
        node = lineage[bit - 2 * self.d]
        maps = self.affine(tuple(bool(v) for v in self.record.patterns[node].tolist()))
        return None if maps is None else maps[int(self.record.units[node])]

    def vertex(self, tight: Sequence[int], lineage: Sequence[int]) -> tuple[Fraction, ...] | None:
        """The exact point where every constraint tight at a vertex holds (None: not exactly one)."""
        return solve_vertex(tight, 2 * self.d + len(lineage), lambda bit: self.constraint(bit, lineage), self.d)

    def chained_zero(self, tight: Sequence[int], lineage: Sequence[int], pattern: int, unit: int) -> bool:
        """True when u_unit on ``pattern`` (an int bit mask) is provably zero at the vertex by the cuts through
        it alone (no arithmetic): the pattern is joined, by cuts through the vertex, to a cut of ``unit``
        (patterns seen only on the units that reach ``unit``, the rest cannot change u_unit)."""
        parent: dict[int, int] = {}
        keep = self.reach_masks[unit]

        def find(a: int) -> int:
            while parent.setdefault(a, a) != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        same_unit = []
        cuts: list[tuple[int, int, int]] = []  # (pattern bits, unit, node) of the cuts through the vertex
        rounds = sum((w & 0xFFFFFFFFFFFFFFFF) << (64 * i) for i, w in enumerate(tight)) >> (2 * self.d)
        while rounds:
            low = rounds & -rounds
            rounds ^= low
            r = low.bit_length() - 1
            if r >= len(lineage):
                break
            node = lineage[r]
            bits, k = self.record.node(node)
            cuts.append((bits, k, node))
            parent[find(bits & keep)] = find((bits ^ (1 << k)) & keep)
            if k == unit:
                same_unit.append(bits & keep)
        # a bend: two distinct cuts of unit k whose patterns differ, among the units reaching k, only at
        # unit i: u_k of the two patterns differs by a non-zero multiple of u_i, so u_i vanishes there
        for x, (bits_a, k, node_a) in enumerate(cuts):
            for bits_b, k_b, node_b in cuts[x + 1:]:
                diff = (bits_a ^ bits_b) & self.reach_masks[k] & ~(1 << k)
                if k_b != k or diff == 0 or diff & (diff - 1):
                    continue
                if not self.record.distinct_planes(node_a, node_b):
                    continue
                i = diff.bit_length() - 1
                parent[find(bits_b & keep)] = find((bits_b ^ (1 << i)) & keep)
                if i == unit:
                    same_unit.append(bits_b & keep)
        if not same_unit:
            return False
        own = find(pattern & keep)
        return any(find(bits) == own for bits in same_unit)

    def sign(self, tight: Sequence[int], lineage: Sequence[int], pattern: tuple[bool, ...], unit: int) -> int | None:
        """The exact sign (-1, 0, 1) of u_unit on ``pattern`` at the vertex, or None (budget spent, or the
        vertex or the pattern's map is not determined)."""
        maps = self.affine(pattern)
        if maps is None:
            return None
        a, c = maps[unit]
        if not any(a):  # constant on the pattern: no vertex needed
            return (c > 0) - (c < 0)
        if self.left <= 0:
            self.spent = True
            return None
        self.left -= 1
        self.decided += 1
        point = self.vertex(tight, lineage)
        if point is None:
            return None
        value = value_at((a, c), point)
        return (value > 0) - (value < 0)
