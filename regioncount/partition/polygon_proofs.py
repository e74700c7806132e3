"""The sign proofs of the FFN polygon subdivision, deferred and batched (``docs/exact-dd.md``, "Decisions
proven by their own conditioning").

The layered polygon subdivision (:mod:`regioncount.partition.plane2d`) reads every sign from the float64
value ``f~`` of a unit's map at a float64 vertex.  Each such decision is proven by ``|f~| > err``, where
``err`` bounds the map's rounding and the vertex's radius (:mod:`regioncount.partition.vertex_bounds`); a
vertex made by a cut is the crossing of two lines, its old edge's and the cut's, and its radius comes from
them (:func:`~regioncount.partition.vertex_bounds.line_pair_radius`).

Nothing in the subdivision's float decisions depends on the radii, so they need not be known when a
decision is made: :class:`LayerProof` records each step's values and the vertices they were read at (by
id), each new vertex's point and its two lines (by id in a :class:`LineTable`), and proves the recorded
decisions in a few large batches (when the records fill ``flush_at`` entries, and at the end of the layer).
What is proven is exactly what the eager test proved, with one small tensor operation per step instead of
dozens.  The layer's partition is only used once :meth:`LayerProof.flush` returned True.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch

from ..line.forward_error import INFLATE, gamma
from .polygons import KeptVertexValues, NewVertexValues, Polygons, PolygonStore
from .vertex_bounds import MapErrors, line_pair_radius, value_errors

#: Recorded decision values (vertices times rows) that trigger a batch of proofs.
FLUSH_AT = 2**21


class LineTable:
    """Lines ``a_s s + a_t t + c = 0`` of a slice, each with an entrywise bound on its error, by id.

    Ids are handed out first (:meth:`reserve`) and the coefficients filled in later, in the same order
    (:meth:`fill`): a cut's line is known as (cell, unit) while the subdivision runs."""

    def __init__(self, coef: torch.Tensor, error: torch.Tensor) -> None:
        self._coef, self._error = [coef], [error]
        #: per line, the unit whose zero set it is (its index over all layers), -1 for the slice's edges
        self._units = [torch.full((coef.shape[0],), -1, dtype=torch.long, device=coef.device)]
        self.filled = int(coef.shape[0])
        self.reserved = self.filled
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def reserve(self, count: int, device: torch.device, unit: int) -> torch.Tensor:
        """Ids (count,) for lines of unit ``unit`` (its index over all layers) whose coefficients come later."""
        return self.reserve_units(torch.full((count,), unit, dtype=torch.long, device=device))

    def reserve_units(self, units: torch.Tensor) -> torch.Tensor:
        """Ids (k,) for lines of the units ``units`` (k,) (indices over all layers), coefficients to come."""
        ids = torch.arange(self.reserved, self.reserved + int(units.shape[0]), device=units.device)
        self._units.append(units.clone())
        self.reserved += int(units.shape[0])
        return ids

    def fill(self, coef: torch.Tensor, error: torch.Tensor) -> None:
        """The coefficients (k, 3) and errors (k, 3) of the next k reserved ids."""
        self._coef.append(coef)
        self._error.append(error)
        self.filled += int(coef.shape[0])
        self._cache = None

    def units(self) -> torch.Tensor:
        """(L,) the unit of each line (reserved ones included), -1 for the slice's edges."""
        if len(self._units) > 1:
            self._units = [torch.cat(self._units)]
        return self._units[0]

    def mark(self) -> tuple[int, int]:
        """The table's size now (filled, reserved), to :meth:`rollback` to."""
        return self.filled, self.reserved

    def rollback(self, mark: tuple[int, int]) -> None:
        """Forget every line reserved or filled since :meth:`mark` (a batch of cuts that was given up)."""
        filled, reserved = mark
        coef, error = self.tables()
        self._coef, self._error = [coef[:filled]], [error[:filled]]
        self._units = [self.units()[:reserved]]
        self.filled, self.reserved, self._cache = filled, reserved, None

    def tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All filled lines: coefficients (L, 3) and errors (L, 3)."""
        if self._cache is None:
            self._cache = (torch.cat(self._coef), torch.cat(self._error))
            self._coef, self._error = [self._cache[0]], [self._cache[1]]
        return self._cache


class LayerProof:
    """The deferred sign proofs of one layer of the polygon subdivision.

    ``xy`` (P0, V, 2) and ``radius`` (P0, V) are the layer's starting polygons' vertices and radii (vertex
    ids ``p * V + k``); ``Z`` (P0, 3, n) the layer's maps on them (slopes in s, t, then the constant),
    ``EZ`` their errors and ``bound`` (P0, n) each map's error bound over the polygon's widened bounding box."""

    def __init__(self, xy: torch.Tensor, radius: torch.Tensor, lines: LineTable, Z: torch.Tensor, EZ: MapErrors,
                 bound: torch.Tensor, flush_at: int | None = None) -> None:
        self.lines, self.Z, self.EZ, self.bound = lines, Z, EZ, bound
        self.flush_at = FLUSH_AT if flush_at is None else flush_at
        self.points = xy.reshape(-1, 2)
        self.radii = radius.reshape(-1)
        self.count = int(self.points.shape[0])
        self._new: list[tuple[torch.Tensor, ...]] = []  # crossing, points, edge lines, cut lines
        self._cuts: list[tuple[torch.Tensor, int]] = []  # (cells, unit) of reserved lines, in order
        self._records: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]] = []  # f, vertex ids, cells, unit
        self._recorded = 0

    def cut_lines(self, cells: torch.Tensor, unit: int, bit: int) -> torch.Tensor:
        """Ids (S,) of the lines of the layer's unit ``unit`` (``bit`` over all layers) on the starting
        polygons ``cells`` (S,)."""
        self._cuts.append((cells, unit))
        return self.lines.reserve(int(cells.shape[0]), cells.device, bit)

    def add_vertices(self, crossing: torch.Tensor, points: torch.Tensor, edge_lines: torch.Tensor,
                     cut_lines: torch.Tensor) -> torch.Tensor:
        """Register the new vertices ``points[crossing]`` (``crossing`` (S, V) bool, ``points`` (S, V, 2)),
        each the crossing of two lines (ids ``edge_lines`` (S, V) and ``cut_lines`` (S,)); returns (S, V)
        float ids, numbered in row-major order at the crossing slots (meaningless elsewhere)."""
        order = crossing.flatten().cumsum(0)
        ids = (order + (self.count - 1)).view(crossing.shape).to(points.dtype)
        self.count += int(order[-1]) if order.numel() else 0
        self._new.append((crossing, points, edge_lines, cut_lines))
        return ids

    def record(self, f: torch.Tensor, vertices: torch.Tensor, cells: torch.Tensor, unit: int) -> bool:
        """Record the values ``f`` (S, V) of unit ``unit`` at the vertices ``vertices`` (S, V) of polygons
        started as ``cells`` (S,); proves the records so far once they are large (False: one is unproven)."""
        self._records.append((f, vertices, cells, unit))
        self._recorded += f.numel()
        return self.flush() if self._recorded >= self.flush_at else True

    def _fill_lines(self) -> None:
        if not self._cuts:
            return
        cells = torch.cat([c for c, _ in self._cuts])
        units = torch.cat([torch.full_like(c, unit) for c, unit in self._cuts])
        self._cuts = []
        self.lines.fill(self.Z[cells, :, units], self.EZ.entries(cells, units))

    def _bound_new_vertices(self) -> None:
        if not self._new:
            return
        pending, self._new = self._new, []
        points = torch.cat([p[c] for c, p, _, _ in pending])
        edge = torch.cat([e[c] for c, _, e, _ in pending])
        cut = torch.cat([k[:, None].expand_as(c)[c] for c, _, _, k in pending])
        coef, error = self.lines.tables()
        radius = line_pair_radius(points, coef[edge], error[edge], coef[cut], error[cut])
        self.points = torch.cat([self.points, points])
        self.radii = torch.cat([self.radii, radius])

    def flush(self) -> bool:
        """Prove every recorded decision (True), or find one that its bound does not prove (False)."""
        self._fill_lines()
        self._bound_new_vertices()
        records, self._records, self._recorded = self._records, [], 0
        by_width: dict[int, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]]] = {}
        for record in records:
            by_width.setdefault(int(record[0].shape[1]), []).append(record)
        return all(self._prove(group) for group in by_width.values())

    def _prove(self, group: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]]) -> bool:
        f = torch.cat([r[0] for r in group])
        vertices = torch.cat([r[1] for r in group])
        cells = torch.cat([r[2] for r in group])
        units = torch.cat([torch.full_like(r[2], r[3]) for r in group])
        radius = self.radii[vertices]
        maps, errors = self.Z[cells, :, units], self.EZ.entries(cells, units)  # (N, 3) each
        slopes = maps[:, 0].abs() + maps[:, 1].abs() + errors[:, 0] + errors[:, 1]
        # first each polygon's largest error: its start's bound over the widened bounding box, plus the largest
        # vertex radius times the slopes' sizes (padding repeats real vertices)
        coarse = self.bound[cells, units] + radius.amax(1) * slopes
        rows = (~(f.abs() > (coarse * INFLATE)[:, None]).all(1)).nonzero().flatten()
        if rows.numel() == 0:
            return True
        err = value_errors(self.points[vertices[rows]], radius[rows], maps[rows], errors[rows])
        return bool((f[rows].abs() > err).all())

    def doubts(self, f: torch.Tensor, vertices: torch.Tensor, cells: torch.Tensor, unit: int) -> torch.Tensor:
        """(S, V): the signs of ``f`` (unit ``unit`` at vertices ``vertices`` of polygons started as ``cells``)
        that their error bounds do not prove, now (the eager form of :meth:`record`)."""
        self._fill_lines()
        self._bound_new_vertices()
        units = torch.full_like(cells, unit)
        err = value_errors(self.points[vertices], self.radii[vertices], self.Z[cells, :, units],
                           self.EZ.entries(cells, units))
        return ~(f.abs() > err)

    def radii_of(self, vertices: torch.Tensor) -> torch.Tensor:
        """The radii of vertices (any shape) after :meth:`flush`."""
        return self.radii[vertices]


def unit_maps(Z: torch.Tensor, cells: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
    """(N, q): ``Z[cells, :, units]`` for maps Z (P, q, n) (contiguous), by one flat gather."""
    q, n = Z.shape[1], Z.shape[2]
    offsets = torch.arange(q, device=Z.device) * n
    return Z.reshape(-1).index_select(0, ((cells * (q * n) + units)[:, None] + offsets).view(-1)).view(-1, q)


def _widened_boxes(polys: Polygons, radius: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The middles and half-sides (P0, 2) of the polygons' bounding boxes widened by their vertices' radii."""
    r_max = torch.where(polys.valid(), radius, 0.0).amax(1)[:, None]
    lo_xy, hi_xy = polys.xy.amin(1) - r_max, polys.xy.amax(1) + r_max
    return (lo_xy + hi_xy) * 0.5, (hi_xy - lo_xy) * 0.5


def box_signs(polys: Polygons, radius: torch.Tensor, Z: torch.Tensor, EZ: MapErrors
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`box_bounds`'s last two results without its (P0, n) bounds: the test runs first with each
    polygon's largest bound over its units (:meth:`MapErrors.row_max` and the maps' largest entries, an upper
    bound of every entry's), and only where that does not decide with the entry's own bound, so the verdicts
    are :func:`box_bounds`' with a few passes over (P0, n) instead of a dozen."""
    mid, half = _widened_boxes(polys, radius)
    g = gamma(6)
    reach = torch.cat([mid.abs() + half, torch.ones_like(mid[:, :1])], 1)  # (P0, 3): max |s|, |t|, and 1
    P0, n = Z.shape[0], Z.shape[2]
    may_change = torch.empty(P0, n, dtype=torch.bool, device=Z.device)
    positive = torch.empty_like(may_change)
    for block in _box_blocks(Z):
        Zb, m, h, w = Z[block], mid[block], half[block], reach[block]
        low, high = torch.aminmax(Zb, dim=2)
        largest = (w * EZ.rows(block).row_max()).sum(1) + g * (w * torch.maximum(high, -low)).sum(1)
        coarse = (largest * INFLATE).nan_to_num_(nan=torch.inf)
        middle = torch.addcmul(Zb[:, 2], Zb[:, 0], m[:, :1]).addcmul_(Zb[:, 1], m[:, 1:])
        spread = Zb[:, 0].abs().mul_(h[:, :1]).addcmul_(Zb[:, 1].abs(), h[:, 1:])
        positive[block] = middle > 0
        may_change[block] = middle.abs_() <= spread.add_(coarse[:, None])
    cells, units = may_change.nonzero(as_tuple=True)
    if cells.numel():  # the entries the coarse bound left: their own bounds
        maps = unit_maps(Z, cells, units)
        own = (EZ.entries(cells, units) * reach[cells]).sum(1) + g * (maps.abs() * reach[cells]).sum(1)
        own = (own * INFLATE).nan_to_num_(nan=torch.inf)
        m, h = mid[cells], half[cells]
        middle = maps[:, 2] + maps[:, 0] * m[:, 0] + maps[:, 1] * m[:, 1]
        spread = maps[:, 0].abs() * h[:, 0] + maps[:, 1].abs() * h[:, 1]
        may_change[cells, units] = middle.abs() <= spread + own
    positive &= ~may_change
    return may_change, positive


def box_bounds(polys: Polygons, radius: torch.Tensor, Z: torch.Tensor, EZ: MapErrors
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For maps ``Z`` (P0, 3, n) (slopes in s, t, then the constant) with errors ``EZ`` on polygons ``polys``
    whose vertices have radii ``radius`` (P0, V): each map's error bound (P0, n) at exact points of the
    polygon's bounding box widened by the radii (plus the rounding of the test below), whether the exact
    map may change sign on the exact polygon (P0, n): ``|value at the box's middle| <= spread + bound``, and
    where it may not, whether it is positive there (P0, n; False wherever it may change sign).  Blocks of
    polygons at a time, so that the dozen passes over each block run in the cache."""
    mid, half = _widened_boxes(polys, radius)
    P0, n = Z.shape[0], Z.shape[2]
    bound = Z.new_empty(P0, n)
    may_change = torch.empty(P0, n, dtype=torch.bool, device=Z.device)
    positive = torch.empty_like(may_change)
    for block in _box_blocks(Z):
        bound[block], may_change[block], positive[block] = _box_block(Z[block], EZ.rows(block), mid[block],
                                                                      half[block])
    return bound, may_change, positive


#: Entries (polygons times units) of one block of :func:`box_bounds` and :func:`box_signs`.
BOX_BLOCK = 2**15


def _box_blocks(Z: torch.Tensor) -> Iterator[slice]:
    """Slices of the polygons of maps ``Z`` (P0, 3, n) holding about ``BOX_BLOCK`` entries each."""
    P0, rows = int(Z.shape[0]), max(1, BOX_BLOCK // max(int(Z.shape[2]), 1))
    return (slice(start, min(start + rows, P0)) for start in range(0, P0, rows))


def _box_block(Z: torch.Tensor, EZ: MapErrors, mid: torch.Tensor, half: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`box_bounds` on one block of polygons, given their widened boxes' middles and half-sides (B, 2)."""
    g = gamma(6)
    reach = mid.abs() + half  # (B, 2): max |s|, |t| over the widened box
    abs_s, abs_t = Z[:, 0].abs(), Z[:, 1].abs()
    # each map's error at exact points of the widened box, plus the rounding of the tests below (the value at
    # the box's middle, the spread, their comparison: gamma_6 covers them)
    bound = EZ.weighted(torch.cat([reach, torch.ones_like(reach[:, :1])], 1))
    bound.addcmul_(abs_s, reach[:, :1], value=g).addcmul_(abs_t, reach[:, 1:], value=g).add_(Z[:, 2].abs(), alpha=g)
    bound.mul_(INFLATE).nan_to_num_(nan=torch.inf)
    middle = torch.addcmul(Z[:, 2], Z[:, 0], mid[:, :1]).addcmul_(Z[:, 1], mid[:, 1:])
    spread = abs_s.mul_(half[:, :1]).addcmul_(abs_t, half[:, 1:])
    positive = middle > 0
    may_change = middle.abs_() <= spread.add_(bound)
    return bound, may_change, positive.logical_and_(may_change.logical_not())


def vertex_channels(proof: LayerProof, cut_lines: torch.Tensor) -> tuple[NewVertexValues, KeptVertexValues]:
    """The store channels (vertex id, outgoing line id) of the vertices of a cut's children.  Each new vertex
    is registered with its two lines (its old edge's and the cut's, ``cut_lines`` (S,) ids as floats); in a
    child its outgoing edge runs along the cut where the child's boundary leaves the old edge (the child
    keeps vertex k), along the old edge where it enters.  An old vertex exactly on the cut (``f`` = 0) is in
    both children; in the one its old successor is not in, its outgoing edge runs along the cut."""

    def new_values(crossing: torch.Tensor, points: torch.Tensor, f: torch.Tensor, values: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        edge = values[..., 1]
        vertex = proof.add_vertices(crossing, points, edge.long(), cut_lines.long())
        cut = cut_lines[:, None].expand_as(edge)
        return (torch.stack([vertex, torch.where(f > 0, cut, edge)], 2),
                torch.stack([vertex, torch.where(f < 0, cut, edge)], 2))

    def kept_values(f: torch.Tensor, f_next: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        vertex, edge = values[..., 0], values[..., 1]
        cut = cut_lines[:, None].expand_as(edge)
        on = f == 0
        return (torch.stack([vertex, torch.where(on & (f_next < 0), cut, edge)], 2),
                torch.stack([vertex, torch.where(on & (f_next > 0), cut, edge)], 2))

    return new_values, kept_values


class ProvenCuts(NamedTuple):
    """Polygons after the proven cuts of one batch of lines: the polygons (P,), the starting polygon each
    lies in (P,), each vertex's radius and the line id of its outgoing edge (P, V), and, where the cutter
    proved them, the signs of the lines' maps in each polygon (P, n) (True: positive; None: not known)."""

    polys: Polygons
    origin: torch.Tensor
    radius: torch.Tensor
    outgoing: torch.Tensor
    active: torch.Tensor | None = None


#: ``decide(j, origin (N,), lines (N, 2))`` -> (N,) signs in {-1, 0, 1} of line j at the vertices where the lines
#: ``lines`` (ids in the :class:`LineTable`) meet, on polygons in the starting polygons ``origin``, decided exactly
#: (None: it cannot decide them).
ExactSigns = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor | None]
#: ``exactly_on(j, origin (S,), units (S, V, 2), xy (S, V, 2), exact (S, V))`` -> (S, V) bool: vertices of
#: polygons in the starting polygons ``origin``, given by the bits of their two lines (-1: the slice's border),
#: their points, and whether the point is exact (radius 0), that lie exactly on line j by a rule of the caller's.
ExactlyOn = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def cut_proven(polys: Polygons, radius: torch.Tensor, outgoing: torch.Tensor, lines: LineTable, Z: torch.Tensor,
               EZ: MapErrors, bound: torch.Tensor, candidates: torch.Tensor, first_bit: int,
               check: Callable[[int], None], exactly_on: ExactlyOn | None = None, decide: ExactSigns | None = None
               ) -> ProvenCuts | None:
    """Cut polygons (P0,) along the zero lines of the maps ``Z`` (P0, 3, n) (errors ``EZ``, box bounds
    ``bound`` (P0, n), ``candidates`` (P0, n): the lines that may cross each polygon, from
    :func:`box_bounds`), line by line, each sign read at a vertex proven by its own error bound
    (:class:`LayerProof`).  Line j's cuts are registered as the lines of bit ``first_bit + j``.  ``check``
    gets the polygon count after each line (it raises to stop); ``exactly_on`` names vertices that lie
    exactly on a line (their value is 0, not a sign to prove; a cut through them passes through the vertex).
    With ``decide``, every sign is proven as it is read, and the ones the bounds leave are decided exactly by
    it (slower: for a batch whose deferred proof failed).  None: some sign is not proven."""
    P0, V0 = polys.xy.shape[:2]
    device, dtype = polys.xy.device, polys.xy.dtype
    proof = LayerProof(polys.xy, radius, lines, Z, EZ, bound)
    store = PolygonStore(polys, 2, capacity=2 * P0 + 16, flags=candidates)
    store.values[:P0, :, 0] = torch.arange(P0 * V0, dtype=dtype, device=device).view(P0, V0)  # vertex ids
    store.values[:P0, :, 1] = outgoing
    for j in candidates.any(0).nonzero().flatten().tolist():
        assert store.flags is not None
        idx = store.flags[:store.count, j].nonzero().flatten()
        origin = store.origin[idx]
        zj = Z[origin, :, j]  # (S, 3)
        xy = store.xy[idx]
        f = xy[..., 0] * zj[:, :1] + xy[..., 1] * zj[:, 1:2] + zj[:, 2:]  # (S, V) line j at the vertices
        vertices = store.values[idx, :, 0].long()
        n = store.n[idx]
        both = vertex_lines(store.values[idx, :, 1].long(), n) if exactly_on or decide else None
        recorded = f
        if exactly_on is not None:
            assert both is not None
            start = vertices < P0 * V0
            exact = start & (proof.radii[vertices.clamp(max=P0 * V0 - 1)] == 0)
            on = exactly_on(j, origin, lines.units()[both], xy, exact)
            f = f.masked_fill(on, 0.0)
            recorded = f.masked_fill(on, torch.inf)
        if decide is None:
            if not proof.record(recorded, vertices, origin, j):
                return None
        else:
            assert both is not None
            decided = _decide_doubts(proof, decide, f, recorded, vertices, origin, j, both, n)
            if decided is None:
                return None
            f = decided
        real = ((f > 0).any(1) & (f < 0).any(1)).nonzero().flatten()
        if real.numel() == 0:
            continue
        cut_lines = proof.cut_lines(origin[real], j, first_bit + j).to(dtype)
        new_values, kept_values = vertex_channels(proof, cut_lines)
        # an old vertex is exactly on the cut only by a rule or an exact decision
        store.split(idx[real], f[real], new_values=new_values,
                    kept_values=kept_values if exactly_on is not None or decide is not None else None)
        check(store.count)
    if not proof.flush():
        return None
    ids = store.values[:store.count]
    return ProvenCuts(store.polygons(), store.origin[:store.count], proof.radii_of(ids[..., 0].long()),
                      ids[..., 1].clone())


def vertex_lines(outgoing: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """(S, V, 2): the line ids of each vertex's incoming and outgoing edges (padding: the last vertex's)."""
    k = torch.minimum(torch.arange(outgoing.shape[1], device=outgoing.device)[None], n[:, None] - 1)
    previous = torch.where(k == 0, n[:, None] - 1, k - 1)
    return torch.stack([torch.gather(outgoing, 1, previous), torch.gather(outgoing, 1, k)], 2)


def _decide_doubts(proof: LayerProof, decide: ExactSigns, f: torch.Tensor, recorded: torch.Tensor,
                   vertices: torch.Tensor, origin: torch.Tensor, j: int, both: torch.Tensor, n: torch.Tensor
                   ) -> torch.Tensor | None:
    """``f`` (S, V) with every sign its bound does not prove replaced by the exact decision (0 on the line; a
    sign the float value lacks becomes a value of that sign next to 0).  None: a sign is left undecided."""
    valid = torch.arange(f.shape[1], device=f.device)[None] < n[:, None]
    doubt = proof.doubts(recorded, vertices, origin, j) & valid
    if not bool(doubt.any()):
        return f
    rows, cols = doubt.nonzero(as_tuple=True)
    signs = decide(j, origin[rows], both[rows, cols])
    if signs is None:
        return None
    old = f[rows, cols]
    keep = torch.sign(old) == signs
    tiny = torch.full_like(old, 2.0**-1000)
    f = f.clone()
    f[rows, cols] = torch.where(keep, old, signs.to(f.dtype) * tiny)
    last = (n - 1)[:, None].expand_as(f)
    return torch.where(valid, f, torch.gather(f, 1, last))
