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

import torch

from ..line.forward_error import INFLATE
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
        ids = torch.arange(self.reserved, self.reserved + count, device=device)
        self._units.append(torch.full((count,), unit, dtype=torch.long, device=device))
        self.reserved += count
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

    def radii_of(self, vertices: torch.Tensor) -> torch.Tensor:
        """The radii of vertices (any shape) after :meth:`flush`."""
        return self.radii[vertices]
