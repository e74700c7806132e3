"""One cost model: the peak memory a count will need, predicted before it starts.

Every estimate is bytes above the process's baseline (imports, model), from the quantities that drive the
allocations, with constants measured by ``benchmarks/bench_memory.py`` (which prints predicted against
measured peaks on a grid of nets; see ``docs/algorithms.md``, "Cost model"):

* exact 1-D walk of an FFN: a batch holds at most ``S = 64 * max_pieces`` state values (pieces x units),
  each needing about ``FFN_BYTES_PER_STATE_VALUE`` bytes with its temporaries, plus one live copy of the
  pre-activation maps per layer on the depth-first stack; never more values than pieces x units; the last
  layer's children cost ``FFN_BYTES_PER_CHILD`` each (their maps are built only for each parent's first
  and last child);
* exact 1-D walk of a triangular DEQ: ``max_pieces`` pieces of ``m`` columns (slopes and intercepts);
* kept breakpoints: ``KEPT_BYTES_PER_REGION`` per region;
* sampled counts: the batch's activations, plus the distinct-pattern set, whose buffered rows grow with
  the number of samples until they are merged: ``SAMPLED_BYTES_PER_WORD`` per sample and pattern word, and
  the freed merge blocks the C heap keeps (up to ``SAMPLED_HEAP_RETENTION`` merges of raw rows);
* 2-D partitions: ``PLANE_BYTES_PER_POLYGON_UNIT`` per polygon and unit of the widest layer (its maps,
  values and bit patterns with their temporaries), plus ``PLANE_BYTES_PER_POLYGON`` for its vertices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ..core.devices import Stopwatch
from ..core.errors import CostLimitError
from ..core.geometry import Segment
from ..core.patterns import packed_words
from ..graph.model import GraphModel
from ..models.networks import DEQ, DTYPE, FFN, Model
from .deq_walk import DEQKernel
from .ffn_walk import FFNKernel
from .kernels import magnitude_bound, run_kernel
from .sink import KEPT_BYTES_PER_REGION, PieceSink, merge_tolerance

#: bytes per state value of an FFN batch (maps, zeros, sorting, children, certification temporaries;
#: measured by ``benchmarks/bench_memory.py`` after the certified walk's sign screen made its zeros sparse)
FFN_BYTES_PER_STATE_VALUE = 48
#: bytes per child of the last layer held at once (ends, parent index, midpoints, sorted zeros and units)
FFN_BYTES_PER_CHILD = 160
#: bytes per (piece, unit) of a triangular-DEQ batch
DEQ_BYTES_PER_PIECE_UNIT = 40
#: bytes per sample and 64-bit pattern word of the distinct-pattern set (buffered rows, sorting copies)
SAMPLED_BYTES_PER_WORD = 11
#: bytes per distinct pattern and word (the merged set, its keys and the copies made while sorting)
DISTINCT_BYTES_PER_WORD = 22
#: merges of raw pattern rows whose freed blocks the C heap keeps on a long sampled run (measured, glibc)
SAMPLED_HEAP_RETENTION = 16
#: bytes per polygon and unit of the widest layer of a 2-D partition (the (P, 3, n) maps and their copies,
#: the (P, n) values, tolerances, candidate flags and bit patterns)
PLANE_BYTES_PER_POLYGON_UNIT = 100
#: bytes per polygon for its padded vertices, counts, origins and region bookkeeping
PLANE_BYTES_PER_POLYGON = 2048


@dataclass(frozen=True)
class CostEstimate:
    """Predicted peak bytes (above the baseline) of one piece of work, with what it is for."""

    what: str
    bytes: int

    def check(self, limit: int) -> None:
        """Refuse (:class:`CostLimitError`, one line with the estimate) when above ``limit`` bytes."""
        if self.bytes > limit:
            raise CostLimitError(f"{self.what} needs about {self.bytes / 2**30:.3g} GiB (estimated), above the "
                                 f"memory limit of {limit / 2**30:.3g} GiB")


def default_max_pieces(device: str | torch.device) -> int:
    """Pieces per batch of the exact walk: small enough to stay in cache on a CPU, large enough to fill a GPU."""
    return 2**23 if torch.device(device).type == "cuda" else 2**16


def estimate_exact(model: Model, *, linear_pieces: bool, keep_breakpoints: bool, regions: float | None,
                   device: str | torch.device = "cpu", max_pieces: int | None = None) -> CostEstimate:
    """Peak bytes of an exact 1-D count of ``model`` with about ``regions`` regions (None: the guaranteed
    bound ``prod(n_l + 1)`` or ``2^m``)."""
    pieces = max_pieces or default_max_pieces(device)
    if isinstance(model, FFN):
        widths = model.hidden_widths or [1]
        bound = regions if regions is not None else _product(n + 1 for n in widths)
        # pieces entering layer l: at most the regions of the layers before it (and of the whole net); the
        # last layer's children are built only when pieces or breakpoints are asked for
        values, before = 0.0, 1.0
        for n in widths:
            values = max(values, min(before, bound) * n)
            before *= n + 1
        parents = min(before / (widths[-1] + 1), bound)  # pieces entering the last layer
        children = 0.0
        if linear_pieces or keep_breakpoints:
            # the last layer's children: their ends, and with linear pieces the maps of each parent's first
            # and last child (the slopes in between follow from the unit flips; zeros that coincide fall back
            # to maps for every child, in chunks of the same batch size)
            children = min(bound, 64 * pieces)
            if linear_pieces:  # the flips are used when parents have 4 children on average
                values = max(values, (2 * parents if 4 * parents <= bound else bound) * widths[-1])
        values = min(64 * pieces, values)
        live = min(len(widths), 3)  # pieces grow with depth: the live maps of all levels add up to ~3 batches
        walk = values * (FFN_BYTES_PER_STATE_VALUE + 16 * live) + children * FFN_BYTES_PER_CHILD
        what = f"the exact walk of {' x '.join(map(str, widths))} hidden units"
    else:
        assert isinstance(model, DEQ)
        bound = regions if regions is not None else float(2**model.width)  # noqa: F841
        walk = min(pieces, bound) * model.width * DEQ_BYTES_PER_PIECE_UNIT
        what = f"the exact walk of a width-{model.width} DEQ"
    kept = KEPT_BYTES_PER_REGION * bound if keep_breakpoints else 0
    if keep_breakpoints:
        what += f" keeping the breakpoints of {bound:.3g} regions"
    return CostEstimate(what, int(walk + kept))


def layer_widths(model: Model | GraphModel) -> list[int]:
    """The widths whose activations a forward pass holds: the hidden layers of an FFN ([1] when it has
    none), ``[m]`` for a DEQ."""
    if isinstance(model, GraphModel):
        return [model.activation_size()]
    return [model.width] if isinstance(model, DEQ) else (model.hidden_widths or [1])


def model_words(model: Model | GraphModel) -> int:
    """64-bit words of a model's packed pattern (a graph model's code: ``GraphModel.pattern_bits``)."""
    from ..models.networks import pattern_words

    return packed_words(model.pattern_bits()) if isinstance(model, GraphModel) else pattern_words(model)


def default_batch(model: Model | GraphModel, dtype: torch.dtype, device: torch.device) -> int:
    """Points per batch: about 2 MiB of pre-activations per layer on a CPU (at least 1,024 points), 2 GiB on a GPU."""
    width = max(layer_widths(model))
    budget = 2**31 if device.type == "cuda" else 2**21  # CPU batches that stay in L2 (~1 MiB a core): 1.4x faster
    if isinstance(model, DEQ) and model.unit_order is None:
        budget //= max(1, model.width)  # the polish solves an m x m system per point
    return int(max(2**10, min(2**24, budget // (width * 24))))


def estimate_sampled(model: Model | GraphModel, *, samples: int, distinct: float | None = None, batch: int | None = None,
                     device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64) -> CostEstimate:
    """Peak bytes of a sampled count of ``samples`` points: the batch's activations, the buffered pattern
    rows (``SAMPLED_BYTES_PER_WORD`` per sample and word) and the distinct set with its sorting copies
    (``DISTINCT_BYTES_PER_WORD`` per distinct pattern and word).  ``distinct``: the expected number of
    distinct patterns (e.g. extrapolated from the first batch); None: every sample distinct."""
    from ..core.patterns import BUFFER_MIN_ROWS, DistinctPatterns

    dev = torch.device(device)
    batch = batch or default_batch(model, dtype, dev)
    widths = layer_widths(model)
    words = max(model_words(model), 1) + 2  # pattern words, plus the key and the count
    distinct = float(samples) if distinct is None else min(float(samples), float(distinct))
    # raw rows wait in blocks of PENDING_ROWS and deduplicated ones in a buffer merged once it is as large
    # as the set: the buffered rows never exceed those two, whatever the number of samples
    buffered = min(float(samples), DistinctPatterns.PENDING_ROWS + max(distinct, float(BUFFER_MIN_ROWS)))
    batch_bytes = batch * max(widths) * 24
    # each merge of PENDING_ROWS raw rows frees blocks that glibc's heap keeps once its dynamic mmap threshold
    # has risen to their size (none with a fixed MALLOC_MMAP_THRESHOLD_, which makes sampling 3x slower):
    # measured up to about SAMPLED_HEAP_RETENTION merges' worth of raw rows
    merges = min(SAMPLED_HEAP_RETENTION, max(0, samples // DistinctPatterns.PENDING_ROWS - 1))
    retained = merges * DistinctPatterns.PENDING_ROWS * (words - 2) * 8  # the raw rows' pattern words
    total = batch_bytes + retained + buffered * words * SAMPLED_BYTES_PER_WORD \
        + distinct * words * DISTINCT_BYTES_PER_WORD
    return CostEstimate(f"a sampled count of {samples:,} points ({sum(widths)} units, about {distinct:.3g} "
                        "distinct patterns)", int(total))


def plane_polygon_bytes(model: Model) -> int:
    """Peak bytes per polygon of a 2-D partition of ``model`` (see the module docstring); the partition
    stops with an estimate once its polygons would need more than the memory limit."""
    return PLANE_BYTES_PER_POLYGON_UNIT * max(layer_widths(model)) + PLANE_BYTES_PER_POLYGON


def _product(values) -> float:
    out = 1.0
    for v in values:
        out *= v
        if out > 2.0**62:
            return 2.0**62
    return out

#: Largest magnitude an intermediate slope or intercept may reach (float64 overflows at 1.8e308).
MAX_INTERMEDIATE = 1e300
#: The pilot estimate counts PILOT_PIECES stratified sub-segments of PILOT_FRACTION of the length each.
PILOT_PIECES = 16
PILOT_FRACTION = 2.0**-10


def region_upper_bound(model: Model) -> int:
    """A guaranteed bound on the regions along any segment: prod(n_l + 1) for an FFN, 2^m for a DEQ."""
    if isinstance(model, FFN):
        return math.prod(n + 1 for n in model.hidden_widths)
    return 2**model.width


def estimate_regions(kernel: DEQKernel | FFNKernel, seg: Segment, device: torch.device,
                     max_pieces: int, max_regions: int | None, linear_pieces: bool = False,
                     fraction: float = PILOT_FRACTION) -> dict:
    """Pilot estimate: exact counts on 16 stratified sub-segments of ``fraction`` (1/1024) of the length each
    (with the linear-piece merge when ``linear_pieces``, so that the time is the real walk's).

    Returns ``{"regions": estimated total, "seconds": estimated time, "pilot_fraction": ...}``; the
    breakpoint density of the pilots times the length gives the regions, their rate gives the time.
    """
    span = seg.t_high - seg.t_low
    gen = torch.Generator().manual_seed(0)
    offsets = (torch.arange(PILOT_PIECES, dtype=DTYPE) + torch.rand(PILOT_PIECES, generator=gen, dtype=DTYPE))
    width = span * fraction
    tau = merge_tolerance(seg.t_low, seg.t_high)
    # a pilot covers 1/1024 of the segment: more than max_regions / 16 there means > 64x the limit overall
    cap = None if max_regions is None else max(1000, max_regions // 16)
    found = 0
    watch = Stopwatch(device)
    for offset in offsets.tolist():
        lo = seg.t_low + (span - width) * offset / PILOT_PIECES
        sink = PieceSink(lo, lo + width, max_regions=cap)
        try:
            run_kernel(kernel, lo, lo + width, sink, linear_pieces, max_pieces, tau)
        except CostLimitError:
            raise CostLimitError(
                f"a pilot on 1/1024 of the segment already found over {cap:,} regions: the whole count is "
                f"likely far above the limit of {max_regions:.4g} regions (raise `max_regions` to go on)"
            ) from None
        found += sink.regions
    elapsed = watch.seconds()
    density = (found - PILOT_PIECES) / (PILOT_PIECES * width)
    regions = 1 + density * span
    return {"regions": regions, "seconds": elapsed / max(found, 1) * regions,
            "pilot_fraction": PILOT_PIECES * fraction}


#: With a time limit, a count whose guaranteed bound exceeds this many regions is timed by the pilot first.
TIMED_PILOT_REGIONS = 20_000
#: Regions a timing pilot walks when the count is known in advance (about 0.1 s on a CPU).
KNOWN_PILOT_REGIONS = 2**20


def check_cost(model: Model, kernel: DEQKernel | FFNKernel, seg: Segment, device: torch.device,
               keep_breakpoints: bool, max_regions: int | None, memory_limit: int,
               max_pieces: int, known_regions: int | None = None, max_seconds: float | None = None,
               linear_pieces: bool = False) -> dict | None:
    """Refuse (CostLimitError, with the estimate and the limit) a count that cannot fit.

    The guaranteed bound (:func:`region_upper_bound`) decides when it is small enough; otherwise
    ``known_regions`` (e.g. 2^m for the Theorem 1 DEQ) or a pilot estimate is used.  With ``max_seconds``,
    a count that may exceed :data:`TIMED_PILOT_REGIONS` regions is timed by the pilot (the walk as it will
    run, ``linear_pieces`` included, on 1.6% of the segment) and refused when projected past the limit.
    """
    bound = magnitude_bound(model, seg)
    if not bound < MAX_INTERMEDIATE:
        raise CostLimitError(
            f"weights too large along this segment: intermediate values could reach {bound:.3g}, "
            f"beyond the float64-safe limit {MAX_INTERMEDIATE:.0e}"
        )
    upper = region_upper_bound(model)
    timed = max_seconds is not None and upper > TIMED_PILOT_REGIONS
    if (max_regions is None or upper <= max_regions) and (not keep_breakpoints
                                                         or KEPT_BYTES_PER_REGION * upper <= memory_limit) \
            and not timed:
        check_walk_memory(model, device, upper if known_regions is None else known_regions, max_pieces,
                           memory_limit)
        return None
    if known_regions is not None and max_regions is not None and known_regions > max_regions:
        raise CostLimitError(f"{known_regions:.4g} regions (known in advance): above the limit of "
                             f"{max_regions:.4g} regions (raise `max_regions` to go on)")
    estimate = _estimate(kernel, seg, device, max_pieces, max_regions, known_regions, timed, linear_pieces)
    _refuse_past_limits(estimate, max_regions, max_seconds, keep_breakpoints, memory_limit)
    check_walk_memory(model, device, estimate["regions"], max_pieces, memory_limit)
    return estimate


def _estimate(kernel: DEQKernel | FFNKernel, seg: Segment, device: torch.device, max_pieces: int,
              max_regions: int | None, known_regions: int | None, timed: bool, linear_pieces: bool
              ) -> dict[str, Any]:
    """The regions (known, or estimated by the pilot) and, when ``timed``, the seconds the walk will take:
    a count known in advance is timed by a pilot of about KNOWN_PILOT_REGIONS regions."""
    if known_regions is not None and not timed:
        return {"regions": known_regions, "seconds": None, "pilot_fraction": 0.0}
    if known_regions is None:
        return estimate_regions(kernel, seg, device, max_pieces, max_regions, linear_pieces)
    fraction = min(PILOT_FRACTION, KNOWN_PILOT_REGIONS / (PILOT_PIECES * max(known_regions, 1)))
    pilot = estimate_regions(kernel, seg, device, max_pieces, None, linear_pieces, fraction)
    return pilot | {"regions": known_regions, "seconds": pilot["seconds"] / pilot["regions"] * known_regions}


def _refuse_past_limits(estimate: dict[str, Any], max_regions: int | None, max_seconds: float | None,
                        keep_breakpoints: bool, memory_limit: int) -> None:
    """Refuse (CostLimitError, with the estimate) a count estimated past its regions, time or kept-bytes limit."""
    regions, seconds = estimate["regions"], estimate["seconds"]
    timing = "" if seconds is None else f", about {seconds:.3g} s"
    if max_regions is not None and regions > max_regions:
        raise CostLimitError(
            f"estimated {regions:.4g} regions{timing}: above the limit of {max_regions:.4g} regions "
            "(raise `max_regions` to go on)"
        )
    if max_seconds is not None and seconds is not None and seconds > max_seconds:
        raise CostLimitError(
            f"estimated {regions:.4g} regions, about {seconds:.3g} s (timed on "
            f"{estimate['pilot_fraction']:.1%} of the segment): above the time limit of {max_seconds:g} s "
            "(raise `max_seconds` to go on)"
        )
    if keep_breakpoints and KEPT_BYTES_PER_REGION * regions > memory_limit:
        raise CostLimitError(
            f"keeping breakpoints for an estimated {regions:.4g} regions needs "
            f"{KEPT_BYTES_PER_REGION * regions / 2**30:.3g} GiB, "
            f"above the memory limit of {memory_limit / 2**30:.3g} GiB; count without keeping breakpoints"
        )


def check_walk_memory(model: Model, device: torch.device, regions: float, max_pieces: int,
                       memory_limit: int) -> None:
    """Refuse a walk whose batches (:func:`regioncount.line.cost.estimate_exact`, pieces and breakpoints aside)
    would not fit the memory limit, or on CUDA the device's memory."""
    limit = memory_limit
    if device.type == "cuda":
        limit = min(limit, int(0.8 * torch.cuda.get_device_properties(device).total_memory))
    estimate_exact(model, linear_pieces=True, keep_breakpoints=False, regions=regions, device=device,
                   max_pieces=max_pieces).check(limit)
