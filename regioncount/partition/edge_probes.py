"""Region adjacency of a plane partition by probes: step across the middle of every polygon edge and look up
the pattern found there (used where the engine does not prove its adjacency)."""

from __future__ import annotations

import torch

from ..core.geometry import Plane
from ..core.patterns import match_rows
from ..graph.model import GraphModel
from ..line.cost import layer_widths
from ..models.networks import DTYPE, Model
from ..sampling.sampled import packed_patterns_at
from .polygons import Polygons

#: Bytes of activations one batch of probes may hold.
PROBE_BYTES = 2**28


def _edges(polys: Polygons, plane: Plane) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Per polygon edge (P, V): its start, its end, its outward unit normal, whether it is a real edge of
    positive length, and the slice's size."""
    device = polys.xy.device
    k = torch.arange(polys.xy.shape[1], device=device)[None]
    nxt = torch.where(k + 1 < polys.n[:, None], k + 1, 0)
    a = polys.xy
    b = torch.gather(a, 1, nxt[..., None].expand(-1, -1, 2))
    length = torch.linalg.vector_norm(b - a, dim=2)
    size = max(plane.high[0] - plane.low[0], plane.high[1] - plane.low[1])
    valid = polys.valid() & (length > 1e-9 * size)
    normal = torch.stack([(b - a)[..., 1], -(b - a)[..., 0]], 2) / length.clamp_min(1e-300)[..., None]
    return a, b, normal, valid, size


def _patterns(model: Model | GraphModel, plane: Plane, points: torch.Tensor) -> torch.Tensor:
    """Packed patterns of plane points (N, 2), in batches of bounded memory (a graph model holds every
    node's values per point)."""
    width = model.activation_size() if isinstance(model, GraphModel) else max(layer_widths(model))
    chunk = max(1024, PROBE_BYTES // (8 * width))
    return torch.cat([packed_patterns_at(model, plane.points(points[i:i + chunk]))
                      for i in range(0, points.shape[0], chunk)])


def _probe(model: Model | GraphModel, plane: Plane, edges: tuple, owners: torch.Tensor, which: torch.Tensor,
           fraction: float, relative: float, region_words: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Probe the edges ``which`` (E, 2) (polygon, slot) once: the region found across (E,), whether one was
    found that is not the edge's own, and whether the edge's own region was found by a full step (E,) each."""
    a, b, normal, _, size = edges
    p, v = which[:, 0], which[:, 1]
    length = torch.linalg.vector_norm(b[p, v] - a[p, v], dim=1)
    step = torch.minimum(length * 1e-3, torch.full_like(length, relative * size))
    point = a[p, v] + fraction * (b[p, v] - a[p, v]) + normal[p, v] * step[:, None]
    lo = torch.tensor(plane.low, dtype=DTYPE, device=point.device)
    hi = torch.tensor(plane.high, dtype=DTYPE, device=point.device)
    inside = ((point > lo) & (point < hi)).all(1)
    index = torch.full((which.shape[0],), -1, dtype=torch.long, device=point.device)
    if bool(inside.any()):
        found_index, found = match_rows(region_words, _patterns(model, plane, point[inside]))
        index[inside] = torch.where(found, found_index, -1)
    full = step >= relative * size  # not shortened by a short edge
    return index, (index >= 0) & (index != owners), (index == owners) & full


def probe_adjacency(model: Model | GraphModel, plane: Plane, polys: Polygons, region: torch.Tensor,
                    region_words: torch.Tensor, retries: tuple[tuple[float, float], ...] = ()
                    ) -> tuple[torch.Tensor, int]:
    """Pairs of regions sharing an edge: step across the middle of every polygon edge (by 1e-7 of the slice's
    size, at most a thousandth of the edge) and look up the pattern found there; edges whose probe found no
    other region are probed again at each (fraction of the edge, relative depth) of ``retries``, in turn.
    An edge whose probe, a full step across, found its own region is an edge between two polygons of one
    region (a max's over-cut): across its whole length there is that region, and it is not probed again.
    Returns the pairs and the number of edges whose last probe matched no region (a probe that landed on a
    boundary; slice borders excluded)."""
    edges = _edges(polys, plane)
    a, b, _, valid, size = edges
    mid = (a + b) / 2
    lo = torch.tensor(plane.low, dtype=DTYPE, device=a.device)
    hi = torch.tensor(plane.high, dtype=DTYPE, device=a.device)
    on_border = (((mid - lo).abs() <= 1e-12 * size) | ((mid - hi).abs() <= 1e-12 * size)).any(2)
    which = torch.nonzero(valid & ~on_border)
    owners = region[which[:, 0]]
    found = torch.full((which.shape[0],), -1, dtype=torch.long, device=a.device)
    last = found.clone()  # what each edge's last probe found (-1: no region)
    open_ = torch.ones(which.shape[0], dtype=torch.bool, device=a.device)
    for fraction, relative in ((0.5, 1e-7), *retries):
        rows = torch.nonzero(open_).squeeze(1)
        if rows.numel() == 0:
            break
        index, ok, inside = _probe(model, plane, edges, owners[rows], which[rows], fraction, relative, region_words)
        found[rows[ok]] = index[ok]
        last[rows] = index
        open_[rows[ok | inside]] = False
    hit = found >= 0
    pairs = torch.sort(torch.stack([owners[hit], found[hit]], 1), 1).values
    R = region_words.shape[0]
    code = torch.unique(pairs[:, 0] * R + pairs[:, 1])
    return torch.stack([code // R, code % R], 1), int((open_ & (last < 0)).sum())
