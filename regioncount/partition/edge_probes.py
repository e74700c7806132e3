"""Region adjacency of a plane partition by probes: step across the middle of every polygon edge and look up
the pattern found there (used where the engine does not prove its adjacency)."""

from __future__ import annotations

import torch

from ..core.geometry import Plane
from ..core.patterns import probe_pairs
from ..graph.model import GraphModel
from ..line.cost import layer_widths
from ..models.networks import DTYPE, Model
from ..sampling.sampled import packed_patterns_at
from .polygons import Polygons

#: Bytes of activations one batch of probes may hold.
PROBE_BYTES = 2**28


def probe_adjacency(model: Model | GraphModel, plane: Plane, polys: Polygons, region: torch.Tensor,
                    region_words: torch.Tensor, along: tuple[float, ...] = (0.5,), steps: tuple[float, ...] = (1e-7,)
                    ) -> tuple[torch.Tensor, int]:
    """Pairs of regions sharing an edge: step across every polygon edge (at the fractions ``along`` of its
    length, by the ``steps`` times the slice's size) and look up the pattern found there.  Returns the pairs
    and the number of probes that matched no region."""
    device = polys.xy.device
    nxt = torch.where(torch.arange(polys.xy.shape[1], device=device)[None] + 1 < polys.n[:, None],
                      torch.arange(polys.xy.shape[1], device=device)[None] + 1, 0)
    a = polys.xy
    b = torch.gather(a, 1, nxt[..., None].expand(-1, -1, 2))
    edge = b - a
    length = torch.linalg.vector_norm(edge, dim=2)
    size = max(plane.high[0] - plane.low[0], plane.high[1] - plane.low[1])
    valid = polys.valid() & (length > 1e-9 * size)
    normal = torch.stack([edge[..., 1], -edge[..., 0]], 2) / length.clamp_min(1e-300)[..., None]
    probes = []
    for fraction in along:
        for relative in steps:
            step = torch.minimum(length * 1e-3, torch.full_like(length, relative * size))
            probes.append(a + fraction * (b - a) + normal * step[..., None])
    probe = torch.stack(probes, 2)  # (P, V, probes, 2)
    lo = torch.tensor(plane.low, dtype=DTYPE, device=device)
    hi = torch.tensor(plane.high, dtype=DTYPE, device=device)
    inside = ((probe > lo) & (probe < hi)).all(3)
    use = valid[..., None] & inside
    owners = region[:, None, None].expand_as(use)[use]
    points = probe[use]
    if points.shape[0] == 0:
        return torch.zeros(0, 2, dtype=torch.long, device=device), 0
    # patterns in batches of bounded memory (a graph model holds every node's values per point)
    width = model.activation_size() if isinstance(model, GraphModel) else max(layer_widths(model))
    chunk = max(1024, PROBE_BYTES // (8 * width))
    words = torch.cat([packed_patterns_at(model, plane.points(points[i:i + chunk]))
                       for i in range(0, points.shape[0], chunk)])
    return probe_pairs(owners, region_words, words)
