"""Decision boundaries on a plane partition: where a classifier's predicted class changes, or where a
regression output crosses a level (``docs/exact-dd.md``, "Decision boundaries").

On each region the outputs are affine, ``y = G (s, t) + c``.  For k >= 2 outputs the region is clipped, for
each class c, by the half-planes ``y_c >= y_j`` (j != c); an edge of the clipped polygon along which class c
ties with the best other class is a piece of the boundary between them (kept once, from the lower class).
Inside one region the set where two given classes tie and lead is convex, so the boundary meets each region
in at most one segment per pair of classes: ``segments`` counts them.  Where two leading classes are equal on a
whole region (dead units feeding both), that region is reported as tied instead.  For one output the boundary is the level
set ``y = level``, one segment per region it crosses.  The partition is exact; the clipping is float64, so the
end points and the length carry float64 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.errors import RegionCountError
from .polygons import split_pairs

#: Relative size (of the outputs on the polygon) below which two classes count as tied along an edge.
TIE_TOLERANCE = 1e-9


@dataclass
class DecisionBoundary:
    """``segments`` (S, 2, 2) end points in plane coordinates; ``classes`` (S, 2) the two classes (or the
    output twice, for a level set) on either side; ``region`` (S,) the activation region of each segment."""

    kind: str
    segments: np.ndarray
    classes: np.ndarray
    region: np.ndarray
    level: float | None = None
    #: regions where the two leading classes are equal everywhere (the "boundary" there is an area; their
    #: edges are not counted as segments)
    tied_regions: int = 0

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.segments[:, 1] - self.segments[:, 0], axis=1).sum())

    @property
    def regions_crossed(self) -> int:
        return int(np.unique(self.region).shape[0])

    def to_json(self) -> dict[str, Any]:
        pairs = sorted({(int(a), int(b)) for a, b in self.classes.tolist()})
        return {"kind": self.kind, "segments": int(self.segments.shape[0]), "length": self.length,
                "regions_crossed": self.regions_crossed, "class_pairs": [list(p) for p in pairs],
                "level": self.level, "tied_regions": self.tied_regions,
                "precision": "float64 clipping of the exact partition"}


def _vertex_outputs(partition: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    polys = partition.polygons
    xy, n = polys.xy.double().cpu(), polys.n.cpu()
    region = partition.region.cpu()
    grads, offs = partition.gradients.double().cpu()[region], partition.offsets.double().cpu()[region]
    values = torch.einsum("pvd,pkd->pvk", xy, grads) + offs[:, None, :]  # (P, V, k)
    return xy, n, values


def _clip(xy: torch.Tensor, n: torch.Tensor, values: torch.Tensor, f: torch.Tensor, keep: torch.Tensor
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the part of each polygon where ``f`` (P, V) >= 0; ``keep`` (P,) marks the polygons still alive.
    Values within ``TIE_TOLERANCE`` of the outputs' size count as 0, so no sliver is cut along a region's edge."""
    valid = torch.arange(xy.shape[1])[None] < n[:, None]
    scale = values.abs().amax(dim=(1, 2))[:, None] + 1e-300
    f = torch.where(f.abs() <= TIE_TOLERANCE * scale, torch.zeros_like(f), f)
    above = ((f >= 0) | ~valid).all(1)
    below = ((f <= 0) | ~valid).all(1) & ~above
    keep = keep & ~below
    mixed = torch.nonzero(keep & ~above).squeeze(1)
    if mixed.numel() == 0:
        return xy, n, values, keep
    (cxy, cn, cv), _ = split_pairs(xy[mixed], n[mixed], values[mixed], f[mixed])
    V = max(xy.shape[1], cxy.shape[1])
    def widen(t: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        if t.shape[1] == V:
            return t
        last = t[torch.arange(t.shape[0]), (count - 1).clamp(min=0)][:, None]
        return torch.cat([t, last.expand(-1, V - t.shape[1], -1)], 1)
    xy, values = widen(xy, n).clone(), widen(values, n).clone()
    xy[mixed], values[mixed], n = widen(cxy, cn), widen(cv, cn), n.clone()
    n[mixed] = cn
    return xy, n, values, keep


def _class_edges(xy: torch.Tensor, n: torch.Tensor, values: torch.Tensor, c: int, keep: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Edges of the class-c polygons along which c ties with the best other class: (E, 2, 2), the other
    class (E,) and the polygon (E,); and the polygons (P,) where c ties with another class everywhere."""
    V = xy.shape[1]
    k = torch.arange(V)[None]
    nxt = torch.where(k + 1 < n[:, None], k + 1, 0)
    b = torch.gather(xy, 1, nxt[..., None].expand_as(xy))
    mid_values = (values + torch.gather(values, 1, nxt[..., None].expand_as(values))) / 2
    others = mid_values.clone()
    others[..., c] = -torch.inf
    best, other = others.max(dim=2)
    scale = values.abs().amax(dim=(1, 2))[:, None] + 1e-300
    tie = (mid_values[..., c] - best).abs() <= TIE_TOLERANCE * scale
    long = (b - xy).abs().amax(dim=2) > 0
    real = (k < n[:, None]) & (n[:, None] >= 3) & keep[:, None]
    flat = (tie | ~real).all(1) & real.any(1)  # two classes equal on the whole polygon: a tied area
    edge = tie & long & real & (other > c) & ~flat[:, None]
    rows, cols = torch.nonzero(edge, as_tuple=True)
    return torch.stack([xy[rows, cols], b[rows, cols]], 1), other[rows, cols], rows, flat


def decision_boundary(partition: Any, *, output: int | None = None, level: float = 0.0) -> DecisionBoundary:
    """The decision boundary of a :class:`~regioncount.core.results.PlanePartition` (module docstring): the
    argmax boundary of its k >= 2 outputs, or, for one output (or ``output`` given), the level set
    ``y_output = level``."""
    xy, n, values = _vertex_outputs(partition)
    k = values.shape[2]
    if output is not None or k == 1:
        which = 0 if output is None else output
        if not 0 <= which < k:
            raise RegionCountError(f"output {which} does not exist: the model has {k} output(s)")
        return _level_set(partition, xy, n, values[..., which] - level, which, level)
    segments, classes, polygons = [], [], []
    tied = torch.zeros(xy.shape[0], dtype=torch.bool)
    for c in range(k):
        cxy, cn, cv, keep = xy, n, values, torch.ones(xy.shape[0], dtype=torch.bool)
        for j in range(k):
            if j != c:
                cxy, cn, cv, keep = _clip(cxy, cn, cv, cv[..., c] - cv[..., j], keep)
        edges, other, rows, flat = _class_edges(cxy, cn, cv, c, keep)
        tied |= flat
        segments.append(edges)
        classes.append(torch.stack([torch.full_like(other, c), other], 1))
        polygons.append(rows)
    region = partition.region.cpu()[torch.cat(polygons)]
    tied_regions = int(torch.unique(partition.region.cpu()[tied]).shape[0])
    return DecisionBoundary("argmax", torch.cat(segments).numpy(), torch.cat(classes).numpy(), region.numpy(),
                            tied_regions=tied_regions)


def _level_set(partition: Any, xy: torch.Tensor, n: torch.Tensor, f: torch.Tensor, output: int, level: float
               ) -> DecisionBoundary:
    V = xy.shape[1]
    k = torch.arange(V)[None]
    nxt = torch.where(k + 1 < n[:, None], k + 1, 0)
    fn = torch.gather(f, 1, nxt)
    cross = (f * fn < 0) & (k < n[:, None])
    lam = torch.where(cross, f / torch.where(cross, f - fn, torch.ones_like(f)), torch.zeros_like(f))
    points = xy + lam[..., None] * (torch.gather(xy, 1, nxt[..., None].expand_as(xy)) - xy)
    on_vertex = (f == 0) & (k < n[:, None])  # a level set through a vertex
    hit = cross | on_vertex
    rows = torch.nonzero(hit.sum(1) >= 2).squeeze(1)
    segments = []
    for row in rows.tolist():
        found = torch.cat([points[row][cross[row]], xy[row][on_vertex[row]]])
        segments.append(torch.stack([found[0], found[-1]]))
    seg = torch.stack(segments).numpy() if segments else np.zeros((0, 2, 2))
    region = partition.region.cpu()[rows].numpy()
    return DecisionBoundary("level", seg, np.full((seg.shape[0], 2), output), region, level)
