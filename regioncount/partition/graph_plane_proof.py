"""The rational check of a graph model's plane partition, within a budget (``docs/graphs.md``, "Planes"): the
second route, for a walk that left a sign undecided, and the exact comparison of neighbouring outputs.

For each region (a distinct pattern) the exact maps of every constraint quantity are built in rational
arithmetic along the plane's two directions (``q(s, t) = qc + qs s + qt t``).  Every float vertex of the
region's polygons is made exact as the intersection of the two lines nearest to it (constraint lines, or
the rectangle's sides), and every constraint must be >= 0 at every exact vertex of the region (a strict one
not 0 at all of them): the float screen ``q~ - E > 0`` settles most signs, the rest are decided in integers.
Then the hull of a region's exact vertices lies in the closure of its pattern's (convex) set, hulls of
different patterns have disjoint interiors, and if their exact areas add up to the rectangle's, they cover
it: the regions are exactly the patterns found.  The same exact maps decide whether adjacent regions compute
one affine output.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from ..core.geometry import Plane
from ..graph.certify import maps_apart, reaches_output
from ..graph.model import GraphModel
from ..graph.proof import _stacked, exact_maps
from ..graph.scaled import Scaled
from .polygons import Polygons

#: Seconds per multiply-add of the exact maps (Python integers in numpy object arrays), for the budget.
EXACT_SECONDS_PER_MAC = 1.5e-7
#: Regions whose exact maps are built at once.
REGION_CHUNK = 32


@dataclass
class PlaneProof:
    """``done``: the proof ran; ``failed``: regions whose check failed (0 and ``covered``: proven);
    ``covered``: the exact hull areas add up to the rectangle; ``same``: exact output equality per pair."""

    done: bool
    failed: int
    covered: bool
    same: torch.Tensor | None
    seconds_estimate: float


#: Seconds of Python work per region besides its exact maps (corners, hull, the doubtful signs).
SECONDS_PER_REGION = 3e-3


def estimate_seconds(model: GraphModel, regions: int) -> float:
    """The proof's expected time: the exact maps (two directions, value and slope) and the per-region checks."""
    return regions * (4 * (model.macs() + model.piecewise_units() * 4) * EXACT_SECONDS_PER_MAC + SECONDS_PER_REGION)


def _cross(o: tuple[Fraction, Fraction], a: tuple[Fraction, Fraction], b: tuple[Fraction, Fraction]) -> Fraction:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def hull_area(points: list[tuple[Fraction, Fraction]]) -> Fraction:
    """The exact area of the convex hull of rational points (monotone chain)."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return Fraction(0)
    lower: list[tuple[Fraction, Fraction]] = []
    upper: list[tuple[Fraction, Fraction]] = []
    for p in pts:
        while len(lower) >= 2 and _cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and _cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    ring = lower[:-1] + upper[:-1]
    twice = sum((ring[i][0] * ring[(i + 1) % len(ring)][1] - ring[(i + 1) % len(ring)][0] * ring[i][1]
                 for i in range(len(ring))), Fraction(0))
    return abs(twice) / 2


class _Lines:
    """The exact constraint lines of one region, with their float images for the screen."""

    def __init__(self, qc: Scaled, qs: Scaled, qt: Scaled, strict: np.ndarray, row: int, plane: Plane) -> None:
        self.c, self.s, self.t = qc.ints[row], qs.ints[row], qt.ints[row]
        self.dc, self.ds, self.dt = qc.den, qs.den, qt.den
        self.strict = strict[row]
        self.fc = np.array([v / self.dc for v in self.c], dtype=np.float64)
        self.fs = np.array([v / self.ds for v in self.s], dtype=np.float64)
        self.ft = np.array([v / self.dt for v in self.t], dtype=np.float64)
        (s0, t0), (s1, t1) = plane.low, plane.high
        # the rectangle's sides as lines a s + b t + c = 0, with the inside >= 0
        self.sides = [(Fraction(1), Fraction(0), -Fraction(s0)), (Fraction(-1), Fraction(0), Fraction(s1)),
                      (Fraction(0), Fraction(1), -Fraction(t0)), (Fraction(0), Fraction(-1), Fraction(t1))]

    def line(self, k: int) -> tuple[Fraction, Fraction, Fraction]:
        if k < 0:
            return self.sides[-k - 1]
        return (Fraction(int(self.s[k]), self.ds), Fraction(int(self.t[k]), self.dt), Fraction(int(self.c[k]), self.dc))

    def corners(self, points: np.ndarray, reach: float) -> list[tuple[Fraction, Fraction]]:
        """The exact corners behind float vertices (N, 2): each vertex whose two nearest lines (constraint
        lines or the rectangle's sides) pass within ``reach`` and cross becomes their exact intersection;
        vertices inside the region (on a line a max over-cut along, with one line near) are skipped, as no
        corner needs them.  Each pair of lines is solved once."""
        x, y = points[:, 0][None], points[:, 1][None]
        norm = np.hypot(self.fs, self.ft)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.where(norm > 0, np.abs(self.fc[:, None] + self.fs[:, None] * x + self.ft[:, None] * y) / norm,
                            np.inf)
        sides = np.abs(np.stack([x[0] - float(-self.sides[0][2]), x[0] - float(self.sides[1][2]),
                                 y[0] - float(-self.sides[2][2]), y[0] - float(self.sides[3][2])]))
        both = np.concatenate([dist, sides])  # (M + 4, N)
        within = (both <= reach).sum(0)
        depth = int(min(both.shape[0], max(2, within.max() if within.size else 2)))
        order = np.argsort(both, axis=0, kind="stable")[:depth]
        M = dist.shape[0]
        ids = np.where(order < M, order, -(order - M) - 1)
        corners = set()
        for col in np.nonzero(within >= 2)[0].tolist():
            # every line within reach (equal quantities, e.g. a max over several dead units, repeat one line)
            corners.add(tuple(sorted(int(ids[k, col]) for k in range(int(within[col])))))
        out = []
        for key in corners:
            point = self._meet(list(key))
            if point is not None:
                out.append(point)
        return out

    def _meet(self, lines: list[int]) -> tuple[Fraction, Fraction] | None:
        """The exact intersection of the first two lines that are not parallel (float directions pick the
        pair; the intersection itself is exact)."""
        directions = {k: (self.fs[k], self.ft[k]) if k >= 0 else ((1.0, 0.0) if k > -3 else (0.0, 1.0))
                      for k in lines}
        first = lines[0]
        for k in lines[1:]:
            (a, b), (c, d) = directions[first], directions[k]
            if abs(a * d - b * c) > 1e-12 * (abs(a) + abs(b)) * (abs(c) + abs(d)):
                return self._intersection(first, k)
        for position, line in enumerate(lines):
            for other in lines[position + 1:]:
                point = self._intersection(line, other)
                if point is not None:
                    return point
        return None

    def _intersection(self, i: int, j: int) -> tuple[Fraction, Fraction] | None:
        a1, b1, c1 = self.line(i)
        a2, b2, c2 = self.line(j)
        det = a1 * b2 - a2 * b1
        if det == 0:
            return None
        return ((b1 * c2 - b2 * c1) / det, (a2 * c1 - a1 * c2) / det)

    def holds(self, vertices: list[tuple[Fraction, Fraction]]) -> bool:
        """Every quantity >= 0 at every vertex, a strict one not 0 at all; screened in float first."""
        fx = np.array([float(v[0]) for v in vertices])
        fy = np.array([float(v[1]) for v in vertices])
        value = self.fc[:, None] + self.fs[:, None] * fx + self.ft[:, None] * fy  # (M, V)
        size = np.abs(self.fc)[:, None] + np.abs(self.fs)[:, None] * np.abs(fx) + np.abs(self.ft)[:, None] * np.abs(fy)
        certain = value > 1e-12 * size + 1e-300
        void = (self.fc == 0) & (self.fs == 0) & (self.ft == 0)  # float 0 is exact 0: a quantity that is 0
        if bool((void & self.strict).any()):
            return False
        doubtful = np.nonzero(~certain.all(1) & ~void)[0]
        for k in doubtful.tolist():
            a, b, c = self.line(k)
            signs = [a * x + b * y + c for x, y in vertices]
            if any(v < 0 for v in signs) or (self.strict[k] and all(v == 0 for v in signs)):
                return False
        return True


#: Reaches tried, in turn, for the lines behind a float vertex (times the slice's extent): a vertex where two
#: lines meet at a small angle, or a corner the walk cut off by a hair, may sit farther from its lines.
REACHES = (1e-9, 1e-6)


def _region_area(lines: _Lines, points: np.ndarray, extent: float) -> Fraction | None:
    """The exact hull area of the region's corners, when every constraint holds at every corner (None when
    no reach gives such corners spanning a positive area)."""
    for reach in REACHES:
        exact = lines.corners(points, reach * extent)
        area = hull_area(exact) if len(exact) >= 3 else Fraction(0)
        if area > 0 and lines.holds(exact):
            return area
    return None


def _region_members(region: torch.Tensor) -> tuple[list[list[int]], torch.Tensor]:
    """The polygons of each region, and one representative polygon per region."""
    R = int(region.max()) + 1 if region.numel() else 0
    members: list[list[int]] = [[] for _ in range(R)]
    for p, r in enumerate(region.tolist()):
        members[r].append(p)
    return members, torch.tensor([m[0] for m in members], dtype=torch.long)


def _chunk_lines(model: GraphModel, plane: Plane, states: list[np.ndarray]) -> tuple[list[_Lines], list[tuple]]:
    """The exact lines and output maps (value, s-slope, t-slope) of a chunk of patterns."""
    o, u, w = (Scaled.of_tensor(torch.tensor(v, dtype=torch.float64).reshape(1, -1))
               for v in (plane.origin, plane.u, plane.w))
    cons_u, (oc, osu) = exact_maps(model, states, o, u)
    cons_w, (_, osw) = exact_maps(model, states, o, w)
    rows = states[0].shape[0] if states else 1
    qc, qs, strict = _stacked(cons_u, rows)
    _, qt, _ = _stacked(cons_w, rows)
    lines = [_Lines(qc, qs, qt, strict, k, plane) for k in range(rows)]
    return lines, [(oc.ints[k], osu.ints[k], osw.ints[k]) for k in range(rows)]


def prove_plane(model: GraphModel, plane: Plane, polys: Polygons, states: list[torch.Tensor], region: torch.Tensor,
                pairs: torch.Tensor, budget_seconds: float) -> PlaneProof:
    """Check the partition exactly (module docstring) when its estimated cost fits ``budget_seconds``."""
    members, representative = _region_members(region)
    R = len(members)
    estimate = estimate_seconds(model, R)
    if estimate > budget_seconds:
        return PlaneProof(False, 0, False, None, estimate)
    start = time.perf_counter()
    xy, n = polys.xy.cpu().numpy(), polys.n.cpu().numpy()
    extent = max(plane.high[0] - plane.low[0], plane.high[1] - plane.low[1])
    failed, total = 0, Fraction(0)
    outputs: list[tuple] = []
    for first in range(0, R, REGION_CHUNK):
        rows = representative[first:first + REGION_CHUNK]
        lines, maps = _chunk_lines(model, plane, [s[rows].cpu().numpy() for s in states])
        outputs += maps
        for k, region_lines in enumerate(lines):
            points = np.concatenate([xy[p, :n[p]] for p in members[first + k]])
            area = _region_area(region_lines, points, extent)
            failed += area is None
            total += area or 0
        if time.perf_counter() - start > 2 * budget_seconds:  # the estimate was far off: stop, unproven
            return PlaneProof(False, 0, False, None, estimate)
    rect = (Fraction(plane.high[0]) - Fraction(plane.low[0])) * (Fraction(plane.high[1]) - Fraction(plane.low[1]))
    same = None
    if failed == 0:
        same = torch.tensor([all((a == b).all() for a, b in zip(outputs[i], outputs[j])) for i, j in pairs.tolist()],
                            dtype=torch.bool)
    return PlaneProof(True, failed, failed == 0 and total == rect, same, estimate)


@dataclass
class OutputComparison:
    """Whether each pair of regions computes one affine output: ``same`` (E,); ``exact``: pairs settled in
    rational arithmetic; ``left``: pairs the budget left to a float64 comparison within a tolerance."""

    same: torch.Tensor
    exact: int
    left: int


def _single_change(states: list[torch.Tensor], a: torch.Tensor, b: torch.Tensor, model: GraphModel
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For polygon pairs (a, b): whether their states differ in exactly one unit of one piecewise node, that
    node's index in the graph and the unit (E,) each."""
    E = a.shape[0]
    changes = torch.zeros(E, dtype=torch.long)
    node = torch.full((E,), -1, dtype=torch.long)
    unit = torch.full((E,), -1, dtype=torch.long)
    for index, st in zip(model.piecewise, states):
        changed = st[a] != st[b]
        changes += changed.sum(1)
        rows = changed.any(1).nonzero().flatten()
        node[rows] = index
        unit[rows] = changed[rows].long().argmax(1)
    return changes == 1, node, unit


def compare_outputs(model: GraphModel, plane: Plane, states: list[torch.Tensor], representative: torch.Tensor,
                    pairs: torch.Tensor, out: tuple[torch.Tensor, ...], out_errors: tuple[torch.Tensor, ...],
                    budget_seconds: float) -> OutputComparison:
    """Compare the output maps of neighbouring regions (``pairs`` (E, 2) of region ids, each region read at its
    ``representative`` polygon; ``out``/``out_errors``: every polygon's output maps (c, g_s, g_t) and their
    bounds): a pair is different where the bounds prove a gap, equal where only one unit's state differs and
    its change cannot reach the output (:func:`~regioncount.graph.certify.reaches_output`), and otherwise
    compared in rational arithmetic when the cost fits ``budget_seconds`` (else within a tolerance, and
    counted in ``left``)."""
    E = pairs.shape[0]
    a, b = representative[pairs[:, 0]], representative[pairs[:, 1]]
    differ = torch.zeros(E, dtype=torch.bool)
    for x, e in zip(out, out_errors):
        x, e = x.cpu(), e.cpu()
        differ |= maps_apart(x[a], e[a], x[b], e[b])
    same = torch.zeros(E, dtype=torch.bool)
    open_rows = (~differ).nonzero().flatten()
    single, node, unit = _single_change(states, a[open_rows], b[open_rows], model)
    support = open_rows[single]
    if support.numel():
        same[support] = ~reaches_output(model, [s[a[support]] for s in states], node[single], unit[single])
    rest = open_rows[~single]
    rest = torch.cat([rest, support[~same[support]]])  # the support rule proves equality only
    if rest.numel() == 0:
        return OutputComparison(same, 0, 0)
    regions = torch.unique(pairs[rest])
    if estimate_seconds(model, int(regions.numel())) > budget_seconds:
        scale = 1e-9 * (1 + max(float(x.abs().max()) for x in out))
        close = torch.ones(rest.shape[0], dtype=torch.bool)
        for x in out:
            close &= ((x.cpu()[a[rest]] - x.cpu()[b[rest]]).abs() <= scale).all(1)
        same[rest] = close
        return OutputComparison(same, 0, int(rest.numel()))
    exact = {}
    ids = regions.tolist()
    for first in range(0, len(ids), REGION_CHUNK):
        chunk = ids[first:first + REGION_CHUNK]
        rows = representative[torch.tensor(chunk)]
        for region_id, maps in zip(chunk, _exact_outputs(model, plane, [s[rows].numpy() for s in states])):
            exact[region_id] = maps
    for row in rest.tolist():
        i, j = pairs[row].tolist()
        same[row] = all(_equal(x, y) for x, y in zip(exact[i], exact[j]))
    return OutputComparison(same, int(rest.numel()), 0)


def _equal(x: tuple[np.ndarray, int], y: tuple[np.ndarray, int]) -> bool:
    """Two exact vectors ``ints / den`` are equal."""
    return bool((x[0] * y[1] == y[0] * x[1]).all())


def _exact_outputs(model: GraphModel, plane: Plane, states: list[np.ndarray]) -> list[tuple[tuple[np.ndarray, int], ...]]:
    """The exact output maps (value, s-slope, t-slope) of a batch of patterns, as (ints, den) per row."""
    o, u, w = (Scaled.of_tensor(torch.tensor(v, dtype=torch.float64).reshape(1, -1))
               for v in (plane.origin, plane.u, plane.w))
    _, (oc, osu) = exact_maps(model, states, o, u)
    _, (_, osw) = exact_maps(model, states, o, w)
    rows = oc.ints.shape[0]
    return [((oc.ints[k], oc.den), (osu.ints[k], osu.den), (osw.ints[k], osw.den)) for k in range(rows)]
