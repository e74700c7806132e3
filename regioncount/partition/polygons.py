"""Batched convex polygons with padded vertex arrays, and cutting them along lines (all at once).

A batch holds P convex polygons: ``xy`` (P, V, 2) vertices in counter-clockwise order, padded by repeating
the last vertex, ``n`` (P,) vertex counts, and optional per-vertex ``values`` (P, V, c) of affine
functions, which are interpolated at new vertices (exact for affine functions, up to rounding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Polygons:
    xy: torch.Tensor
    n: torch.Tensor
    values: torch.Tensor | None = None

    @property
    def count(self) -> int:
        return int(self.xy.shape[0])

    def valid(self) -> torch.Tensor:
        """(P, V) mask of real (non-padding) vertices."""
        return torch.arange(self.xy.shape[1], device=self.xy.device)[None, :] < self.n[:, None]

    def centroids(self) -> torch.Tensor:
        """(P, 2) area centroids (shoelace); falls back to the vertex mean for degenerate polygons."""
        x, y = self.xy[..., 0], self.xy[..., 1]
        nxt = _next_index(self.n, self.xy.shape[1])
        x2, y2 = torch.gather(x, 1, nxt), torch.gather(y, 1, nxt)
        cross = (x * y2 - x2 * y) * self.valid()
        area2 = cross.sum(1)
        cx = ((x + x2) * cross).sum(1) / (3 * area2)
        cy = ((y + y2) * cross).sum(1) / (3 * area2)
        mean = (self.xy * self.valid()[..., None]).sum(1) / self.n[:, None]
        ok = area2.abs() > 0
        return torch.where(ok[:, None], torch.stack([cx, cy], 1), mean)

    def areas(self) -> torch.Tensor:
        x, y = self.xy[..., 0], self.xy[..., 1]
        nxt = _next_index(self.n, self.xy.shape[1])
        x2, y2 = torch.gather(x, 1, nxt), torch.gather(y, 1, nxt)
        return 0.5 * ((x * y2 - x2 * y) * self.valid()).sum(1)

    def select(self, index: torch.Tensor) -> Polygons:
        return Polygons(self.xy[index], self.n[index], None if self.values is None else self.values[index])


#: ``new_values(crossing (S, V), points (S, V, 2), f (S, V), values (S, V, c))`` -> the values (S, V, c) of the new vertices in
#: the non-negative child and in the non-positive one (:func:`split_pairs`).
NewVertexValues = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
#: ``kept_values(f (S, V), f_next (S, V), values (S, V, c))`` -> the values (S, V, c) of the old vertices in the
#: non-negative child and in the non-positive one (a vertex where ``f`` is 0 is in both, and its outgoing edge
#: may change: :func:`split_pairs`).
KeptVertexValues = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _next_index(n: torch.Tensor, V: int) -> torch.Tensor:
    """(P, V) index of each vertex's successor (cyclic within the first n[p] vertices)."""
    k = torch.arange(V, device=n.device)[None, :]
    return torch.where(k + 1 < n[:, None], k + 1, torch.zeros_like(k))


def rectangle(low: tuple[float, ...], high: tuple[float, ...], device: torch.device,
              dtype: torch.dtype = torch.float64) -> Polygons:
    (x0, y0), (x1, y1) = low, high
    xy = torch.tensor([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], dtype=dtype, device=device)
    return Polygons(xy, torch.tensor([4], device=device))


def split_pairs(xy: torch.Tensor, n: torch.Tensor, values: torch.Tensor, f: torch.Tensor,
                zero_tol: torch.Tensor | None = None, new_values: NewVertexValues | None = None,
                kept_values: KeptVertexValues | None = None):
    """Split S convex polygons that all change sign along ``f`` (S, V) into (non-negative, non-positive)
    children.  Returns ((xy, n, values) of the first children, (xy, n, values) of the second), padded
    to V + 1 vertices (a convex polygon cut by a line keeps at most V - 1 vertices plus 2 new ones).

    A new vertex lies on edge k -> k + 1 where ``f`` changes sign (values within ``zero_tol`` count as 0: such
    a vertex joins both children).  Its values are interpolated along the edge (exact for affine functions,
    up to rounding), or, with ``new_values``, given per child by ``new_values(crossing (S, V), points
    (S, V, 2), f (S, V), values (S, V, c))``: one (S, V, c) tensor for each child, read at the crossing slots;
    ``kept_values(f, f_next, values)`` likewise gives the old vertices' values per child (default: their own)."""
    S, V = f.shape
    device = f.device
    k = torch.arange(V, device=device)[None, :]
    valid = k < n[:, None]
    fz = f if zero_tol is None else torch.where(f.abs() <= zero_tol, torch.zeros_like(f), f)
    nxt = torch.where(k + 1 < n[:, None], k + 1, torch.zeros_like(k))
    f_next = torch.gather(fz, 1, nxt)
    crossing = (fz * f_next < 0) & valid
    lam = torch.where(crossing, fz / (fz - f_next), torch.zeros_like(fz))[..., None]
    channels = 2 + values.shape[2]
    cut_xy = torch.addcmul(xy, lam, torch.gather(xy, 1, nxt[..., None].expand_as(xy)) - xy)
    both = [torch.cat([xy, values], 2)] * 2
    if kept_values is not None:
        both = [torch.cat([xy, side], 2) for side in kept_values(fz, f_next, values)]
    if new_values is not None:
        cuts = [torch.cat([cut_xy, side], 2) for side in new_values(crossing, cut_xy, fz, values)]
    else:
        cut_values = torch.addcmul(values, lam, torch.gather(values, 1, nxt[..., None].expand_as(values)) - values)
        cuts = [torch.cat([cut_xy, cut_values], 2)] * 2
    out = []
    V_new = V + 1
    columns = torch.arange(V_new, device=device)[None]
    slot_ids = torch.arange(2 * V, device=device)[None].expand(S, -1)
    for side, kept, cut in zip((fz >= 0, fz <= 0), both, cuts):
        slots = torch.stack([kept, cut], 2).reshape(S, 2 * V, channels)
        keep = torch.stack([side & valid, crossing], 2).reshape(S, 2 * V)
        count = keep.sum(1)
        position = torch.where(keep, torch.cumsum(keep, 1) - 1, V_new)
        # the slot each child vertex comes from (dropped slots land in the spare column V_new), padded
        # with the last real vertex; then one gather of the data
        source = torch.zeros(S, V_new + 1, dtype=torch.long, device=device).scatter_(1, position, slot_ids)
        source = torch.gather(source, 1, torch.where(columns < count[:, None], columns, (count - 1)[:, None]))
        child = torch.gather(slots, 1, source[..., None].expand(-1, -1, channels))
        out.append((child[..., :2], count, child[..., 2:]))
    return out[0], out[1]


def rectangle_lines(low: tuple[float, ...], high: tuple[float, ...], device: torch.device
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact lines (4, 3) of :func:`rectangle`'s edges in vertex order (y = y0, x = x1, y = y1, x = x0),
    written a_s s + a_t t + c = 0, and their errors (4, 3) (zero)."""
    (x0, y0), (x1, y1) = low, high
    lines = torch.tensor([[0.0, 1.0, -y0], [1.0, 0.0, -x1], [0.0, 1.0, -y1], [1.0, 0.0, -x0]], dtype=torch.float64,
                         device=device)
    return lines, torch.zeros_like(lines)


class PolygonStore:
    """Growable batch of polygons (capacity doubles), so splitting S polygons costs O(S), not O(P)."""

    def __init__(self, polys: Polygons, channels: int, capacity: int = 1024,
                 flags: torch.Tensor | None = None) -> None:
        P, V = polys.xy.shape[:2]
        cap = max(capacity, P)
        device, dtype = polys.xy.device, polys.xy.dtype
        #: optional per-polygon bool rows (e.g. candidate units), inherited by both children of a split
        self.flags = None
        if flags is not None:
            self.flags = torch.zeros(cap, flags.shape[1], dtype=torch.bool, device=device)
            self.flags[:P] = flags
        self.xy = torch.zeros(cap, V, 2, dtype=dtype, device=device)
        self.n = torch.zeros(cap, dtype=torch.long, device=device)
        self.values = torch.zeros(cap, V, channels, dtype=dtype, device=device)
        self.origin = torch.zeros(cap, dtype=torch.long, device=device)
        self.count = P
        self.xy[:P], self.n[:P] = polys.xy, polys.n
        self.origin[:P] = torch.arange(P, device=device)

    @property
    def V(self) -> int:
        return int(self.xy.shape[1])

    def _grow(self, rows: int, V: int) -> None:
        cap, old_V = self.xy.shape[0], self.V
        new_cap = cap
        while new_cap < rows:
            new_cap *= 2
        if new_cap == cap and V <= old_V:
            return
        V = int(max(V, old_V))
        xy = torch.zeros(new_cap, V, 2, dtype=self.xy.dtype, device=self.xy.device)
        values = torch.zeros(new_cap, V, self.values.shape[2], dtype=self.values.dtype, device=self.values.device)
        xy[:cap, :old_V], values[:cap, :old_V] = self.xy, self.values
        if V > old_V:  # pad with the last real vertex
            last = (self.n[:cap] - 1).clamp_min(0)
            index = torch.arange(cap, device=self.xy.device)
            xy[:cap, old_V:] = self.xy[index, last][:, None]
            values[:cap, old_V:] = self.values[index, last][:, None]
        n = torch.zeros(new_cap, dtype=torch.long, device=self.n.device)
        origin = torch.zeros(new_cap, dtype=torch.long, device=self.n.device)
        n[:cap], origin[:cap] = self.n, self.origin
        self.xy, self.values, self.n, self.origin = xy, values, n, origin
        if self.flags is not None:
            flags = torch.zeros(new_cap, self.flags.shape[1], dtype=torch.bool, device=self.flags.device)
            flags[:cap] = self.flags
            self.flags = flags

    def _fit(self, t: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """Pad or trim children (S, V', c) to the store's V (trimming only removes padding)."""
        V = self.V
        if t.shape[1] >= V:
            return t[:, :V]
        last = (count - 1).clamp_min(0)
        extra = t[torch.arange(t.shape[0], device=t.device), last][:, None].expand(-1, V - t.shape[1], -1)
        return torch.cat([t, extra], 1)

    def split(self, idx: torch.Tensor, f: torch.Tensor, zero_tol: torch.Tensor | None = None,
              new_values: NewVertexValues | None = None, kept_values: KeptVertexValues | None = None
              ) -> torch.Tensor:
        """Split polygons ``idx`` along their values ``f`` (S, V) (``zero_tol``, ``new_values``, ``kept_values``: see
        :func:`split_pairs`); returns the slots of the new children."""
        S = idx.shape[0]
        first, second = split_pairs(self.xy[idx], self.n[idx], self.values[idx], f, zero_tol, new_values,
                                    kept_values)
        V_need = int(torch.maximum(first[1].max(), second[1].max()))
        self._grow(self.count + S, V_need)
        new = torch.arange(self.count, self.count + S, device=idx.device)
        for slots, (xy, n, values) in ((idx, first), (new, second)):
            self.xy[slots] = self._fit(xy, n)
            self.values[slots] = self._fit(values, n)
            self.n[slots] = n
        self.origin[new] = self.origin[idx]
        if self.flags is not None:
            self.flags[new] = self.flags[idx]
        self.count += S
        return torch.cat([idx, new])

    def polygons(self) -> Polygons:
        P = self.count
        return Polygons(self.xy[:P].clone(), self.n[:P].clone())
