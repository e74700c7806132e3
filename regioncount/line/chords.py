"""Exact counts along random chords of a box, and the boundary density they measure (``docs/algorithms.md``).

Chords are isotropic uniform random (IUR) lines hitting the box, clipped to it: a direction u uniform on
the sphere, then a point uniform in the disc of radius R (the box's half-diagonal) orthogonal to u through
the centre; lines that miss the box are redrawn.  Every chord is counted exactly by the 1-D enumerator,
all chords in one batched walk.

What this measures is the density of region *boundaries*, not the number of regions.  By the Crofton
formula, for IUR lines hitting a convex K, E[#boundary crossings] = 2 H^(d-1)(B inside K) / H^(d-1)(dK),
so mean crossings times half the box's surface estimates the (d-1)-volume of the boundaries B.
"""

from __future__ import annotations

import math

import torch

from ..core.devices import Stopwatch, default_memory_limit, resolve_device
from ..core.errors import CostLimitError, NotWellPosedError, RegionCountError
from ..core.geometry import Box, resolve_segment
from ..core.limits import Deadline
from ..core.results import ChordStatistics
from ..core.settings import DEFAULT_MAX_REGIONS
from ..models.networks import DEQ, DTYPE, Model, deq_certificate, require_network
from .cost import default_max_pieces, layer_widths
from .kernels import build_kernel
from .sink import PieceSink, merge_tolerance


def random_chords(box: Box, count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` IUR chords of ``box``: end points P, Q, each (count, d), float64 on the CPU."""
    d = box.dim
    if d < 2:
        raise RegionCountError("random chords need an input of dimension >= 2 (in 1-D, count the interval)")
    gen = torch.Generator().manual_seed(seed)
    low = torch.tensor(box.low, dtype=DTYPE)
    high = torch.tensor(box.high, dtype=DTYPE)
    centre, radius = (low + high) / 2, float(torch.linalg.vector_norm(high - low)) / 2
    starts, ends, have = [], [], 0
    while have < count:
        n = 2 * (count - have) + 16
        u = torch.randn(n, d, generator=gen, dtype=DTYPE)
        u /= torch.linalg.vector_norm(u, dim=1, keepdim=True)
        g = torch.randn(n, d, generator=gen, dtype=DTYPE)
        g -= (g * u).sum(1, keepdim=True) * u
        g /= torch.linalg.vector_norm(g, dim=1, keepdim=True)
        r = radius * torch.rand(n, 1, generator=gen, dtype=DTYPE) ** (1.0 / (d - 1))
        a = centre + r * g
        with torch.no_grad():
            inv = 1.0 / u
            s1, s2 = (low - a) * inv, (high - a) * inv
            s_in = torch.minimum(s1, s2).amax(1)
            s_out = torch.maximum(s1, s2).amin(1)
        hit = s_in < s_out
        starts.append((a + s_in[:, None] * u)[hit])
        ends.append((a + s_out[:, None] * u)[hit])
        have += int(hit.sum())
    P, Q = torch.cat(starts)[:count], torch.cat(ends)[:count]
    return torch.maximum(torch.minimum(P, high), low), torch.maximum(torch.minimum(Q, high), low)


def count_chords(model: Model, P: torch.Tensor, Q: torch.Tensor, *, device: str | torch.device = "auto",
                 max_pieces: int | None = None, assume_well_posed: bool = False) -> torch.Tensor:
    """Activation-region counts (K,) along the segments P_k -> Q_k (t in [0, 1]), batched float64 walks
    (:func:`count_chords_checked` also returns how many decisions fell inside the tolerance band)."""
    return count_chords_checked(model, P, Q, device=device, max_pieces=max_pieces,
                                assume_well_posed=assume_well_posed)[0]


def count_chords_checked(model: Model, P: torch.Tensor, Q: torch.Tensor, *, device: str | torch.device = "auto",
                         max_pieces: int | None = None, assume_well_posed: bool = False,
                         max_regions: int | None = DEFAULT_MAX_REGIONS, deadline: Deadline | None = None
                         ) -> tuple[torch.Tensor, int]:
    """Counts (K,) along the segments P_k -> Q_k and the number of float64 decisions the walks took inside
    the tolerance band (near-coincident breakpoints, kinks near a chord's end).  The chords' walks are not
    re-decided exactly (``docs/exactness.md``): a statistic over random chords, not a certified count."""
    certificate = deq_certificate(model, assume_well_posed)
    if certificate is not None:  # general W: one pattern walker per chord, all in lock step
        from .deq_general import count_lines

        assert isinstance(model, DEQ)  # only DEQs carry a well-posedness certificate
        counts, failures, doubtful = count_lines(model, P, Q, device=resolve_device(device), deadline=deadline)
        if failures:
            raise NotWellPosedError(f"{failures} chord walks failed their fixed-point checks: the counts "
                                    "cannot be trusted (is the DEQ well-posed?)")
        return counts, doubtful
    dev = resolve_device(device)
    seg = resolve_segment(model, segment=(P[0].tolist(), Q[0].tolist()))
    kernel = build_kernel(model, seg, dev)
    sink = PieceSink(0.0, 1.0, max_regions=max_regions, segments=P.shape[0], deadline=deadline)
    pieces = max_pieces or default_max_pieces(dev)
    with torch.no_grad():
        kernel.run(0.0, 1.0, sink, track_linear=False, max_pieces=pieces, tau=merge_tolerance(0.0, 1.0),
                   segments=(P.to(dev, DTYPE), (Q - P).to(dev, DTYPE)))
    if sink.segment_counts is None:  # every walk reports each segment's count at its last step
        raise RuntimeError("the many-segment walk reported no counts")
    return sink.segment_counts.cpu(), sink.near_coincident + sink.suspicious


def chord_statistics(model: Model, box: Box, chords: int, *, seed: int = 0, device: str | torch.device = "auto",
                     assume_well_posed: bool = False, max_regions: int | None = DEFAULT_MAX_REGIONS,
                     memory_limit: int | None = None, max_seconds: float | None = None) -> ChordStatistics:
    """Exact counts on ``chords`` IUR chords: regions per chord, breakpoints per unit length (ratio
    estimator, delta-method interval) and the Crofton estimate of the boundary volume.  ``max_regions``
    bounds the regions of all chords together, ``memory_limit`` (bytes, default half the RAM) the chords'
    batch, ``max_seconds`` is a deadline for the whole call (:mod:`regioncount.core.limits`)."""
    require_network(model, "chord statistics")
    deadline = Deadline(max_seconds)
    if chords < 2:
        raise RegionCountError(f"`chords` needs at least 2 chords, got {chords}")
    width = max(layer_widths(model))
    need = chords * (4 * box.dim + 8 * width) * 8  # chords, their start state and one layer of crossings
    limit = default_memory_limit() if memory_limit is None else memory_limit
    if need > limit:
        raise CostLimitError(f"{chords:,} chords need about {need / 2**30:.3g} GiB, above the memory limit of "
                             f"{limit / 2**30:.3g} GiB; use fewer `chords`")
    P, Q = random_chords(box, chords, seed)
    dev = resolve_device(device)
    watch = Stopwatch(dev)
    counts, doubtful = count_chords_checked(model, P, Q, device=dev, assume_well_posed=assume_well_posed,
                                            max_regions=max_regions, deadline=deadline)
    counts = counts.to(DTYPE)
    seconds = watch.seconds()
    lengths = torch.linalg.vector_norm(Q - P, dim=1)
    K = float(chords)
    crossings = counts - 1
    half_width = lambda values: 1.96 * float(values.std()) / math.sqrt(K)  # noqa: E731
    ratio = float(crossings.sum() / lengths.sum())
    residual = crossings - ratio * lengths
    ratio_ci = 1.96 * float(residual.std()) / (math.sqrt(K) * float(lengths.mean()))
    scale = box.surface() / 2
    return ChordStatistics(
        model=model.name or model.describe(), chords=chords,
        regions_per_chord=(float(counts.mean()), half_width(counts)),
        breakpoints_per_length=(ratio, ratio_ci),
        boundary_volume=(float(crossings.mean()) * scale, half_width(crossings) * scale),
        box=box, seed=seed, device=dev.type, seconds=seconds, counts=counts.long(), lengths=lengths,
        tolerance_decisions=doubtful,
    )


__all__ = ["ChordStatistics", "chord_statistics", "count_chords", "count_chords_checked", "random_chords"]
