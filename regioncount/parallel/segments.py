"""Counts split into independent tasks and merged exactly, run in this process or on Dask (``docs/scale.md``).

An exact 1-D count of ``[t_low, t_high]`` is cut at ``K - 1`` points into ``K`` parts of similar cost (from a
pilot density).  Each cut is **certified to lie inside one linear region**: an exact count of a tiny window
around it finds one region and one linear piece (otherwise the cut moves).  Each part is then counted by
:func:`~regioncount.line.exact1d.count_along` on the same line, as a task (a plain function of plain data: the
model's arrays and two floats), and the counts merge exactly: the region (and the linear piece) through each
cut was counted once on each side, so

    regions = sum(regions_k) - (K - 1),    pieces = sum(pieces_k) - (K - 1),

breakpoints are concatenated, and the lengths of the two regions at each cut are added.  The merged count is
exact when every part's count is.  Tasks run in this process (``Engine()``), on a ``LocalCluster`` of
single-threaded worker processes (``open_engine(workers=N)``) or on an existing Dask cluster
(``open_engine(scheduler="tcp://host:port")``); Dask reruns the tasks of a worker that dies.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.errors import RegionCountError
from ..core.geometry import Segment, resolve_segment
from ..core.limits import Deadline
from ..core.results import RegionEnds, SegmentCount, region_ends
from ..core.settings import DEFAULT_MAX_REGIONS
from ..line.deq_walk import DEQKernel
from ..line.ffn_walk import FFNKernel
from ..line.sink import PieceSink, merge_tolerance
from ..models.networks import DEQ, Model, require_network
from .engine import Engine, deadline_at, open_engine, with_time_left
from .payload import model_from_payload, model_payload

#: Pilot strata per part: the cuts are quantiles of a density measured on this many stratified windows.
PILOT_STRATA_PER_PART = 8


#: The pilot's windows cover this fraction of the segment divided by the number of parts, so the pilot (run
#: before the tasks, in the submitting process) costs about 1% of one part, however many parts there are.
PILOT_WINDOW_FRACTION = 2.0**-7


#: A cut is certified by an exact count of [c - h, c + h], h = CUT_WINDOW * span (at least 64 ulps of c).
CUT_WINDOW = 2.0**-40


#: Tries per cut: the candidate moves by span * 2^-24 * CUT_STEP_RATIO * (1, -1, 2, -2, ...) until a window is
#: one region.
CUT_TRIES = 33


CUT_STEP_RATIO = (math.sqrt(5) - 1) / 2


def count_part(payload: dict[str, Any], segment: dict[str, Any], options: dict[str, Any]) -> SegmentCount:
    """Task: the exact count of one part ``[t_low, t_high]`` of a line (``segment``: the fields of a
    :class:`~regioncount.core.geometry.Segment`), with :func:`~regioncount.line.exact1d.count_along`'s ``options``."""
    from ..line.exact1d import count_along

    return count_along(model_from_payload(payload), Segment(**segment), **with_time_left(options))


def pilot_cuts(model: Model, seg: Segment, parts: int, device: torch.device,
               kernel: DEQKernel | FFNKernel | None = None) -> list[float]:
    """``parts - 1`` cut candidates in (t_low, t_high) splitting the count into parts of similar cost: the
    quantiles of a piecewise-constant region density measured by count-only walks of a window in each of
    ``PILOT_STRATA_PER_PART * parts`` strata (``PILOT_WINDOW_FRACTION / parts`` of the segment in all);
    uniform cuts for a general-W DEQ, which has no batched walk.  ``kernel``: the model's walk kernel along
    ``seg`` when already built."""
    span = seg.t_high - seg.t_low
    if parts <= 1:
        return []
    uniform = [seg.t_low + span * k / parts for k in range(1, parts)]
    if isinstance(model, DEQ) and model.unit_order is None:
        return uniform
    from ..line.kernels import build_kernel, run_kernel

    strata = PILOT_STRATA_PER_PART * parts
    kernel = kernel if kernel is not None else build_kernel(model, seg, device, 0)
    width = span / strata * PILOT_WINDOW_FRACTION / parts
    tau = merge_tolerance(seg.t_low, seg.t_high)
    density = []
    for s in range(strata):
        lo = seg.t_low + span * (s + 0.5) / strata - width / 2
        sink = PieceSink(lo, lo + width)
        run_kernel(kernel, lo, lo + width, sink, False, 2**16, tau)
        density.append(sink.regions)
    weights = np.asarray(density, dtype=np.float64)
    weights += max(weights.mean(), 1.0) / 8  # every stratum costs something (the walk's fixed overhead)
    cumulative = np.concatenate([[0.0], np.cumsum(weights)])
    targets = cumulative[-1] * np.arange(1, parts) / parts
    # invert the piecewise-linear cumulative cost: stratum s covers [t_low + s span / strata, ...)
    position = np.interp(targets, cumulative, np.arange(strata + 1, dtype=np.float64))
    return [seg.t_low + span * float(p) / strata for p in position]


def certify_cut(model: Model, seg: Segment, candidate: float, options: dict[str, Any]) -> float | None:
    """A cut near ``candidate`` proven to lie inside one linear region (an exact count of a small window
    around it finds one region and one linear piece), or None when ``CUT_TRIES`` candidates fail."""
    from ..line.exact1d import count_along

    span = seg.t_high - seg.t_low
    # an irrational multiple of a power of two: the moved cuts do not land on a dyadic grid of breakpoints
    # (the Theorem 1 DEQ's are the multiples of 2^-m, every multiple of a dyadic step when m >= 24)
    step = span * 2.0**-24 * CUT_STEP_RATIO
    for k in range(CUT_TRIES):
        offset = 0 if k == 0 else ((k + 1) // 2) * (1 if k % 2 else -1)
        cut = candidate + offset * step
        half = max(span * CUT_WINDOW, 64 * math.ulp(cut))
        lo, hi = cut - half, cut + half
        if not (seg.t_low < lo and hi < seg.t_high):
            continue
        window = dataclasses.replace(seg, t_low=lo, t_high=hi)
        check = count_along(model, window, linear_pieces=True, device=options.get("device", "cpu"),
                            assume_well_posed=options.get("assume_well_posed", False), max_regions=None)
        if check.method == "exact" and check.activation_regions == 1 and check.linear_pieces == 1:
            return cut
    return None


def merge_parts(parts: list[SegmentCount], seg: Segment, *, linear_pieces: bool, keep_breakpoints: bool
                ) -> SegmentCount:
    """One count from the counts of adjacent parts whose every shared end lies inside one region (see the
    module docstring): regions and pieces minus one per cut, breakpoints concatenated, the two lengths
    at each cut added."""
    cuts = len(parts) - 1
    regions = sum(p.activation_regions for p in parts) - cuts
    pieces = None
    if linear_pieces:
        assert all(p.linear_pieces is not None for p in parts)
        pieces = sum(int(p.linear_pieces or 0) for p in parts) - cuts
    breakpoints, lengths = _merged_breakpoints(parts) if keep_breakpoints else (None, None)
    end_regions = region_ends(lengths) if lengths is not None else _merged_end_regions(parts)
    first = parts[0]
    return SegmentCount(
        model=first.model, activation_regions=regions, linear_pieces=pieces, segment=seg.describe(),
        method="exact" if {p.method for p in parts} == {"exact"} else "approximate", dtype=first.dtype,
        device=first.device, seconds=sum(p.seconds for p in parts), tolerance=first.tolerance,
        near_coincident=sum(p.near_coincident for p in parts),
        doubtful_decisions=sum(p.doubtful_decisions for p in parts), breakpoints=breakpoints, region_lengths=lengths,
        **_extremes(end_regions), algorithm=_merged_algorithm(parts),
    )


def _extremes(end_regions: RegionEnds | None) -> dict[str, Any]:
    """The end-region fields of a merged count: the ends and the shortest and longest region (None: unknown)."""
    if end_regions is None:
        return {"shortest_region": None, "longest_region": None, "end_regions": None}
    return {"shortest_region": end_regions.shortest, "longest_region": end_regions.longest,
            "end_regions": end_regions}


def _merged_algorithm(parts: list[SegmentCount]) -> str:
    """The parts' distinct method lines, and how they were split."""
    cuts = len(parts) - 1
    line = " | ".join(dict.fromkeys(p.algorithm for p in parts))
    return line + (f"; split at {cuts} cut(s), each certified inside one region by an exact window count" if cuts
                   else "")


def _merged_breakpoints(parts: list[SegmentCount]) -> tuple[np.ndarray, np.ndarray]:
    """The parts' breakpoints concatenated, and their region lengths with the two lengths at each cut added
    (the region through a cut is one region)."""
    assert all(p.breakpoints is not None and p.region_lengths is not None for p in parts)
    breakpoints = np.concatenate([p.breakpoints for p in parts if p.breakpoints is not None])
    pieces_lengths = [np.asarray(p.region_lengths, dtype=np.float64).copy() for p in parts]
    for left, right in zip(pieces_lengths, pieces_lengths[1:]):
        right[0] += left[-1]
    return breakpoints, np.concatenate([pl[:-1] for pl in pieces_lengths[:-1]] + [pieces_lengths[-1]])


def _merged_end_regions(parts: list[SegmentCount]) -> RegionEnds | None:
    """The first, last, shortest and longest regions of the joined parts, from each part's own (None when a
    part has none)."""
    if not all(p.end_regions is not None for p in parts):
        return None
    end_regions, regions_so_far = parts[0].end_regions, parts[0].activation_regions
    for part in parts[1:]:
        assert end_regions is not None and part.end_regions is not None
        end_regions = end_regions.joined(regions_so_far, part.end_regions, part.activation_regions)
        regions_so_far += part.activation_regions - 1
    return end_regions


def count_segment_split(model: Model, interval: Sequence[float] | None = None,
                        segment: tuple[Sequence[float], Sequence[float]] | None = None, *, tasks: int | None = None,
                        engine: Engine | None = None, workers: int | None = None, scheduler: str | None = None,
                        linear_pieces: bool = True, keep_breakpoints: bool = False,
                        device: str | torch.device = "cpu", max_regions: int | None = DEFAULT_MAX_REGIONS,
                        memory_limit: int | None = None, known_regions: int | None = None,
                        assume_well_posed: bool = False, progress: Callable[[float], None] | None = None,
                        max_seconds: float | None = None) -> SegmentCount:
    """:func:`~regioncount.line.exact1d.count_segment`, split into ``tasks`` parts (default: two per worker) run
    on ``engine``, or on an engine opened here (:func:`open_engine` with ``workers`` or ``scheduler``; with
    neither, this process), and merged exactly (see the module docstring); the same counts, breakpoints and
    labels as the unsplit count.

    The whole count's cost is checked first, before a local cluster is started or any task submitted;
    ``max_seconds`` is a deadline for the whole call (:mod:`regioncount.core.limits`): a count whose pilot
    projects it past the deadline on the engine's workers is refused, each task gets the time that is left,
    and the wait for the tasks stops (cancelling them) when it passes."""
    require_network(model, "the split count")
    deadline = Deadline(max_seconds)
    if engine is None and scheduler is not None:  # connecting is cheap, and tells the workers the estimate uses
        with open_engine(scheduler=scheduler) as opened:
            return count_segment_split(model, interval, segment, tasks=tasks, engine=opened,
                                       linear_pieces=linear_pieces, keep_breakpoints=keep_breakpoints,
                                       device=device, max_regions=max_regions, memory_limit=memory_limit,
                                       known_regions=known_regions, assume_well_posed=assume_well_posed,
                                       progress=progress, max_seconds=deadline.task_seconds())
    plan = _plan_split(model, interval, segment, device=device, max_regions=max_regions, memory_limit=memory_limit,
                       known_regions=known_regions, assume_well_posed=assume_well_posed,
                       keep_breakpoints=keep_breakpoints, parallel=engine.workers if engine else (workers or 1),
                       max_seconds=max_seconds)
    if engine is None:
        with open_engine(workers=workers) as opened:
            return _run_split(model, plan, opened, tasks, linear_pieces, keep_breakpoints, assume_well_posed,
                              progress, deadline)
    return _run_split(model, plan, engine, tasks, linear_pieces, keep_breakpoints, assume_well_posed, progress,
                      deadline)


@dataclass
class _SplitPlan:
    """A split count's resolved segment, device, limits, cost estimate and (when it has one) walk kernel."""

    seg: Segment
    dev: torch.device
    max_regions: int | None
    memory_limit: int
    estimate: dict[str, Any] | None
    kernel: Any


def _plan_split(model: Model, interval: Sequence[float] | None, segment: Any, *, device: str | torch.device,
                max_regions: int | None, memory_limit: int | None, known_regions: int | None,
                assume_well_posed: bool, keep_breakpoints: bool, parallel: int, max_seconds: float | None
                ) -> _SplitPlan:
    """Resolve a split count and check its whole cost (regions, memory, and the pilot's time divided among
    ``parallel`` workers against ``max_seconds``) in this process."""
    from ..core.devices import default_memory_limit, resolve_device
    from ..line.cost import check_cost, default_max_pieces
    from ..line.kernels import build_kernel
    from ..models.networks import deq_certificate

    certificate = deq_certificate(model, assume_well_posed)
    seg = resolve_segment(model, interval, segment)
    dev = resolve_device(device)
    memory_limit = default_memory_limit() if memory_limit is None else memory_limit
    estimate = kernel = None
    if certificate is None:
        kernel = build_kernel(model, seg, dev, 0)
        estimate = check_cost(model, kernel, seg, dev, keep_breakpoints, max_regions, memory_limit,
                              default_max_pieces(dev), known_regions,
                              max_seconds=None if max_seconds is None else max_seconds * max(parallel, 1))
    return _SplitPlan(seg, dev, max_regions, memory_limit, estimate, kernel)


def _run_split(model: Model, plan: _SplitPlan, engine: Engine, tasks: int | None, linear_pieces: bool,
               keep_breakpoints: bool, assume_well_posed: bool, progress: Callable[[float], None] | None,
               deadline: Deadline) -> SegmentCount:
    """Cut the planned count at certified cuts, run the parts on ``engine`` and merge them."""
    started = time.perf_counter()
    tasks = engine.tasks(tasks)
    if tasks < 1:
        raise RegionCountError(f"`tasks` must be at least 1, got {tasks}")
    seg = plan.seg
    options = {"linear_pieces": linear_pieces, "keep_breakpoints": keep_breakpoints, "device": plan.dev.type,
               "max_regions": plan.max_regions, "memory_limit": plan.memory_limit,
               "assume_well_posed": assume_well_posed}
    cuts: list[float] = []
    for candidate in pilot_cuts(model, seg, tasks, plan.dev, plan.kernel):
        deadline.check("choosing the cuts of the split count")
        cut = certify_cut(model, seg, candidate, options)
        if cut is not None and (not cuts or cut > cuts[-1]):
            cuts.append(cut)
    ends = [seg.t_low, *cuts, seg.t_high]
    payload = model_payload(model)
    args = []
    for lo, hi in zip(ends, ends[1:]):
        part = dataclasses.asdict(dataclasses.replace(seg, t_low=lo, t_high=hi))
        # the whole count's regions were checked above; each part checks its own walk's memory, and stops at
        # the deadline by itself
        args.append((payload, part, options | {"max_regions": None} | deadline_at(deadline)))
    parts = engine.map(count_part, args, progress, deadline)
    merged = merge_parts(parts, seg, linear_pieces=linear_pieces, keep_breakpoints=keep_breakpoints)
    return dataclasses.replace(merged, seconds=time.perf_counter() - started, estimate=plan.estimate,
                               engine=engine.describe(len(parts)) | {"cuts": len(cuts)},
                               model=model.name or model.describe())
