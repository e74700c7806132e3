"""Exact 1-D counts of a graph model along a segment: the float64 walk, its exact proof, and the exact walk
as the second opinion of any piece the proof could not confirm (``docs/graphs.md``)."""

from __future__ import annotations

import numpy as np
import torch

from ..core.devices import Stopwatch, default_memory_limit, resolve_device
from ..core.errors import CostLimitError
from ..core.geometry import Segment
from ..core.limits import Deadline
from ..core.results import SegmentCount
from .model import GraphModel
from .proof import GraphProof, prove_walk
from .reference import ExactGraphCount, exact_walk
from .walk import WalkPieces, walk_graph

#: Seconds the exact walk may take as the second opinion before the count is labelled approximate (or what is
#: left of the caller's deadline, whichever is less).
EXACT_WALK_SECONDS = 60.0


def count_graph(model: GraphModel, seg: Segment, *, linear_pieces: bool = True, keep_breakpoints: bool = False,
                device: str | torch.device = "auto", max_regions: int | None = None, memory_limit: int | None = None,
                max_seconds: float | None = None) -> SegmentCount:
    """Count the activation regions and linear pieces of a graph model along ``seg``.

    The walk runs in float64 on ``device``; its proof and any exact second opinion run on the CPU in rational
    arithmetic.  ``method`` is "exact" when every piece was proven or the exact walk finished, "approximate"
    (with ``doubtful_decisions`` = the unproven pieces) when the exact walk did not fit in its time."""
    deadline = Deadline(max_seconds)
    dev = resolve_device(device)
    watch = Stopwatch(dev)
    p = torch.tensor(seg.origin, dtype=torch.float64)
    v = torch.tensor(seg.direction, dtype=torch.float64)
    walk = walk_graph(model, p.to(dev), v.to(dev), seg.t_low, seg.t_high, max_regions=max_regions,
                      memory_limit=memory_limit or default_memory_limit(), deadline=deadline)
    walk = WalkPieces(walk.lefts.cpu(), walk.t_high, [s.cpu() for s in walk.states], walk.out_c.cpu(),
                      walk.out_s.cpu())
    proof = prove_walk(model, walk, p, v, seg.t_low, seg.t_high, deadline)
    operators = len(model.nodes) - 1
    if proof.failed == 0:
        return _result(model, seg, dev, watch, walk.count, proof.linear_pieces, walk.lefts[1:].tolist(), "exact", 0,
                       f"graph breakpoint propagation (float64, {operators} operators); every piece proven "
                       f"({proof.in_rationals} in rational arithmetic, the rest by forward-error bounds)",
                       linear_pieces, keep_breakpoints)
    exact = _second_opinion(model, p, v, seg, walk, proof, deadline)
    if exact is not None:
        return _result(model, seg, dev, watch, exact.regions, exact.linear_pieces, exact.breakpoints, "exact",
                       proof.failed, f"graph breakpoint propagation (float64, {operators} operators); "
                       f"{proof.failed} pieces unproven, recounted by the exact rational walk",
                       linear_pieces, keep_breakpoints)
    return _result(model, seg, dev, watch, walk.count, _float_pieces(walk), walk.lefts[1:].tolist(), "approximate",
                   proof.failed, f"graph breakpoint propagation (float64, {operators} operators); {proof.failed} "
                   "pieces unproven and the exact walk did not fit in its time", linear_pieces, keep_breakpoints)


def _second_opinion(model: GraphModel, p: torch.Tensor, v: torch.Tensor, seg: Segment, walk: WalkPieces,
                    proof: GraphProof, deadline: Deadline) -> ExactGraphCount | None:
    left = deadline.remaining()
    budget = EXACT_WALK_SECONDS if left is None else min(EXACT_WALK_SECONDS, left)
    if budget <= 0:
        return None
    try:
        return exact_walk(model, p, v, seg.t_low, seg.t_high, max_pieces=4 * walk.count + 64,
                          deadline=Deadline(budget))
    except CostLimitError:
        return None


def _float_pieces(walk: WalkPieces) -> int:
    """Linear pieces as float64 sees them (neighbouring output maps equal to 1e-12 of their size)."""
    c, s = walk.out_c, walk.out_s
    if c.shape[0] < 2:
        return c.shape[0]
    scale = 1e-12 * (1 + c.abs().amax() + s.abs().amax())
    differ = ((c[1:] - c[:-1]).abs() > scale).any(dim=1) | ((s[1:] - s[:-1]).abs() > scale).any(dim=1)
    return 1 + int(differ.sum())


def _result(model: GraphModel, seg: Segment, dev: torch.device, watch: Stopwatch, regions: int,
            pieces: int | None, breakpoints: list, method: str, doubtful: int, algorithm: str,
            linear_pieces: bool, keep_breakpoints: bool) -> SegmentCount:
    ends = np.array([seg.t_low, *[float(b) for b in breakpoints], seg.t_high], dtype=np.float64)
    lengths = np.diff(ends)
    return SegmentCount(
        model=model.name or model.describe(), activation_regions=regions,
        linear_pieces=pieces if linear_pieces else None, segment=seg.describe(), method=method,
        device=dev.type, seconds=watch.seconds(), doubtful_decisions=doubtful,
        breakpoints=ends[1:-1] if keep_breakpoints else None, region_lengths=lengths if keep_breakpoints else None,
        shortest_region=float(lengths.min()), longest_region=float(lengths.max()), algorithm=algorithm)
