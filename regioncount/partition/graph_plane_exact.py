"""Exact decisions of the signs that the graph plane walk's float64 bounds leave (``docs/graphs.md``, "Planes").

A vertex of a polygon is the crossing of the lines of its two edges: sides of the slice, or lines where a
piecewise node of the graph may change state.  Every such line is, on the polygon, the line of the polygon's
own pattern (the states of the nodes before that node are the polygon's), so its exact coefficients come
from one exact pass of the pattern's maps through the operators
(:func:`~regioncount.graph.proof.exact_plane_inputs`).  The vertex is then the exact intersection of two
rational lines, and the sign of the line being cut is read there in rational arithmetic.  Polygons share
the exact maps of their starting polygon, computed once.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch

from ..core.geometry import Plane
from ..graph.model import GraphModel
from ..graph.ops import Elementwise, MaxGroups
from ..graph.proof import exact_plane_inputs
from ..graph.scaled import Scaled
from .graph_plane_bounds import max_lines
from .polygon_proofs import LineTable
from .polygons import rectangle_lines

Line = tuple[Fraction, Fraction, Fraction]  # a s + b t + c


class ExactSigns:
    """The exact signs of node ``index``'s lines at vertices (the ``decide`` of
    :func:`~regioncount.partition.polygon_proofs.cut_proven`), for the walk's lines ``lines`` (their bits:
    node k's lines from ``first_bit[k]``, ``counts[k]`` of them) and the states (P0, n) of the nodes before
    ``index`` on the starting polygons."""

    def __init__(self, model: GraphModel, plane: Plane, index: int, states: list[torch.Tensor],
                 first_bit: dict[int, int], counts: dict[int, int], lines: LineTable) -> None:
        self.model, self.index, self.states = model, index, [s.cpu() for s in states]
        self.ranges = sorted((first_bit[k], first_bit[k] + counts[k], k) for k in first_bit)
        self.table = lines
        self.o, self.u, self.w = (Scaled.of_tensor(torch.tensor(v, dtype=torch.float64).reshape(1, -1))
                                  for v in (plane.origin, plane.u, plane.w))
        # the rectangle's sides, the table's first lines (their float64 coefficients are exact)
        sides = rectangle_lines(plane.low, plane.high, torch.device("cpu"))[0].tolist()
        self.sides: list[Line] = [(Fraction(a), Fraction(b), Fraction(c)) for a, b, c in sides]
        self.pairs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # each max's inputs (a, b) per line
        for k, node in enumerate(model.nodes):
            if isinstance(node.op, MaxGroups):
                pair = max_lines(node.op)
                self.pairs[k] = (pair.input_a, pair.input_b)
        self._maps: dict[int, dict[int, tuple[Scaled, Scaled, Scaled]]] = {}
        self.decided = 0

    def __call__(self, j: int, origin: torch.Tensor, line_ids: torch.Tensor) -> torch.Tensor | None:
        out = torch.zeros(origin.shape[0], dtype=torch.long)
        for row, (cell, (first, second)) in enumerate(zip(origin.tolist(), line_ids.tolist())):
            maps = self._cell_maps(cell)
            a, b = self._line(first, maps), self._line(second, maps)
            point = _meet(a, b)
            if point is None:
                return None
            cs, ct, cc = self._node_line(self.index, j, maps)
            value = cs * point[0] + ct * point[1] + cc
            out[row] = (value > 0) - (value < 0)
        self.decided += int(origin.shape[0])
        return out.to(origin.device)

    def polygon_states(self, cell: int, line_ids: torch.Tensor) -> torch.Tensor | None:
        """The exact states (n_states,) of node ``index`` inside a polygon of starting polygon ``cell`` whose
        vertices are the crossings of the lines ``line_ids`` (V, 2): read at the mean of its exact vertices,
        a point inside it (None: two lines of a vertex are parallel)."""
        maps = self._cell_maps(cell)
        points = [_meet(self._line(a, maps), self._line(b, maps)) for a, b in line_ids.tolist()]
        if any(p is None for p in points):
            return None
        s = sum((p[0] for p in points if p is not None), Fraction(0)) / len(points)
        t = sum((p[1] for p in points if p is not None), Fraction(0)) / len(points)
        c, gs, gt = maps[self.index]
        n = c.shape[1]
        values = [Fraction(int(c.ints[0, k]), c.den) + Fraction(int(gs.ints[0, k]), gs.den) * s
                  + Fraction(int(gt.ints[0, k]), gt.den) * t for k in range(n)]
        den = math.lcm(*(v.denominator for v in values)) if values else 1
        ints = np.array([[v.numerator * (den // v.denominator) for v in values]], dtype=object)
        op = self.model.nodes[self.index].op
        assert isinstance(op, (Elementwise, MaxGroups))
        self.decided += 1
        return torch.from_numpy(op.exact_states(ints, np.array([[den]], dtype=object)).astype(np.int64))[0]

    def _cell_maps(self, cell: int) -> dict[int, tuple[Scaled, Scaled, Scaled]]:
        if cell not in self._maps:
            states = [s[cell:cell + 1].numpy() for s in self.states]
            self._maps[cell] = exact_plane_inputs(self.model, states, self.o, self.u, self.w, self.index)
        return self._maps[cell]

    def _line(self, line_id: int, maps: dict[int, tuple[Scaled, Scaled, Scaled]]) -> Line:
        if line_id < len(self.sides):
            return self.sides[line_id]
        bit = int(self.table.units()[line_id])
        for start, end, node in self.ranges:
            if start <= bit < end:
                return self._node_line(node, bit - start, maps)
        raise AssertionError(f"line {line_id} (bit {bit}) belongs to no node")

    def _node_line(self, node: int, local: int, maps: dict[int, tuple[Scaled, Scaled, Scaled]]) -> Line:
        c, gs, gt = maps[node]
        op = self.model.nodes[node].op

        def entry(x: Scaled, unit: int) -> Fraction:
            return Fraction(int(x.ints[0, unit]), x.den)

        if isinstance(op, Elementwise):
            n = c.shape[1]
            i, unit = divmod(local, n)
            return entry(gs, unit), entry(gt, unit), entry(c, unit) - Fraction(op.thresholds[i])
        a, b = (int(x[local]) for x in self.pairs[node])
        return entry(gs, a) - entry(gs, b), entry(gt, a) - entry(gt, b), entry(c, a) - entry(c, b)


def _meet(first: Line, second: Line) -> tuple[Fraction, Fraction] | None:
    """The exact crossing of two lines (None: parallel)."""
    a1, b1, c1 = first
    a2, b2, c2 = second
    det = a1 * b2 - a2 * b1
    if det == 0:
        return None
    return (b1 * c2 - b2 * c1) / det, (a2 * c1 - a1 * c2) / det

