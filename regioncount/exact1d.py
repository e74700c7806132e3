"""Exact 1-D region counting along an interval or a segment: the public entry point.

``count_segment(model, interval=(a, b))`` for 1-D input, ``count_segment(model, segment=(p, q))`` for
d-D input (``x(t) = p + t (q - p)``, t in [0, 1]); with neither, the model's ``domain`` (its diagonal from
``low`` to ``high`` for d > 1).  The kernels are in :mod:`regioncount.walk1d`; this module resolves the
segment, checks that the count fits (regions, memory, float64 range) before starting, runs it on the
chosen device and packages a :class:`~regioncount.results.SegmentCount`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .cost import default_max_pieces, estimate_exact
from .deq_general import walk_segment
from .devices import Stopwatch, default_memory_limit, resolve_device, synchronize
from .errors import CostLimitError, NotWellPosedError, SegmentError
from .exactness import deq_walk_proven_exact, exact_arithmetic
from .forward_error import LayerBound, layer_bounds
from .fused_deq import DEFAULT_FUSED_LEVELS, fused_available
from .models import DEQ, DTYPE, FFN, Model
from .rational1d import exact_count, ffn_output_slope_at, rational_cost
from .results import SegmentCount
from .walk1d import KEPT_BYTES_PER_REGION, DEQKernel, FFNKernel, PieceSink, merge_tolerance
from .wellposed import require_well_posed


def deq_certificate(model: Model, assume_well_posed: bool = False) -> str | None:
    """For a DEQ that forward substitution cannot solve: the certificate that it is well-posed.

    Raises :class:`NotWellPosedError` (one line, with the failing minor and ||W||_2) unless it is shown
    well-posed or ``assume_well_posed`` is set; returns a short description, or None for FFNs and
    triangular DEQs.
    """
    if not isinstance(model, DEQ) or model.unit_order is not None:
        return None
    if assume_well_posed:
        return "assumed well-posed (`assume_well_posed`): every solve is checked"
    return require_well_posed(model.W).reason


from .settings import DEFAULT_MAX_REGIONS  # noqa: E402  (re-exported)

#: Largest magnitude an intermediate slope or intercept may reach (float64 overflows at 1.8e308).
MAX_INTERMEDIATE = 1e300
#: Largest exact rational recount (rational operations, about 5 s) run as the second opinion on doubtful
#: float64 decisions; above it the count is labelled approximate.
RATIONAL_RECOUNT_BUDGET = 2e6
#: Rational operations allowed for re-deciding single open slope comparisons of a certified FFN walk.
LOCAL_EXACT_BUDGET = 2e6
PILOT_PIECES = 16
PILOT_FRACTION = 2.0**-10


@dataclass(frozen=True)
class Segment:
    """``x(t) = origin + t * direction`` for t in [t_low, t_high]; ``kind`` is "interval" or "segment"."""

    origin: tuple[float, ...]
    direction: tuple[float, ...]
    t_low: float
    t_high: float
    kind: str

    def describe(self) -> dict:
        if self.kind == "interval":
            return {"kind": "interval", "interval": [self.t_low, self.t_high]}
        end = [o + d for o, d in zip(self.origin, self.direction)]
        return {"kind": "segment", "p": list(self.origin), "q": end, "t": [0.0, 1.0]}


def _finite_pair(low: float, high: float, what: str) -> tuple[float, float]:
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SegmentError(f"{what} must be finite, got [{low}, {high}]")
    if not low < high:
        raise SegmentError(f"{what} needs A < B, got A = {low:g}, B = {high:g}")
    return low, high


def resolve_segment(model: Model, interval: Sequence[float] | None = None,
                    segment: tuple[Sequence[float], Sequence[float]] | None = None) -> Segment:
    """The segment to count on, from an interval (1-D input), two end points, or the model's domain."""
    d = model.input_dim
    if interval is not None and segment is not None:
        raise SegmentError("give either an interval or a segment, not both")
    if interval is not None:
        if d != 1:
            raise SegmentError(f"the model has {d}-dimensional input: give a `segment` P Q, not an `interval`")
        if len(interval) != 2:
            raise SegmentError(f"an interval has two ends, got {len(interval)} numbers")
        a, b = _finite_pair(interval[0], interval[1], "the interval")
        return Segment((0.0,), (1.0,), a, b, "interval")
    if segment is not None:
        p, q = (tuple(float(v) for v in end) for end in segment)
        if len(p) != d or len(q) != d:
            raise SegmentError(f"the segment ends have {len(p)} and {len(q)} coordinates but the model's input has {d}")
        if not all(math.isfinite(v) for v in p + q):
            raise SegmentError("the segment ends must be finite")
        direction = tuple(b - a for a, b in zip(p, q))
        if not any(direction):
            raise SegmentError("the segment ends P and Q coincide")
        if not all(math.isfinite(v) for v in direction):
            raise SegmentError("the segment is too long for float64 (Q - P overflows)")
        return Segment(p, direction, 0.0, 1.0, "segment")
    if model.domain is None:
        option = "`interval` A B" if d == 1 else "`segment` P Q"
        raise SegmentError(f"the model has no domain: give {option}")
    if d == 1:
        return resolve_segment(model, interval=(model.domain.low[0], model.domain.high[0]))
    return resolve_segment(model, segment=(model.domain.low, model.domain.high))


def _magnitude_bound(model: Model, seg: Segment) -> float:
    """An a-priori bound on every slope and intercept the walk computes (|W| recursion; float64)."""
    t_abs = max(abs(seg.t_low), abs(seg.t_high))
    p = torch.tensor(seg.origin, dtype=DTYPE).abs()
    v = torch.tensor(seg.direction, dtype=DTYPE).abs()
    with torch.no_grad():
        if isinstance(model, FFN):
            s, c, worst = v, p, 0.0
            for w, b in zip(model.weights, model.biases):
                s, c = w.abs() @ s, w.abs() @ c + b.abs()
                worst = max(worst, float(s.max()), float(c.max()), float((s * t_abs).max()))
            return worst
        Wn, Un, bn, _ = _normalized_deq(model)
        s_in, c_in = Un.abs() @ v, Un.abs() @ p + bn.abs()
        s = torch.zeros(model.width, dtype=DTYPE)
        c = torch.zeros(model.width, dtype=DTYPE)
        for t in range(model.width):
            s[t] = Wn[t, :t].abs() @ s[:t] + s_in[t]
            c[t] = Wn[t, :t].abs() @ c[:t] + c_in[t]
        out = (model.A.abs() @ s).max() + (model.B.abs() @ v).max()
        return max(float(s.max()), float(c.max()), float(s.max()) * t_abs, float(out))


def _normalized_deq(model: DEQ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Units permuted into forward-substitution order, each row divided by ``1 - W_tt``.

    Returns ``Wn`` (m, m) strictly lower triangular, ``Un`` (m, d), ``bn`` (m,) and ``A`` (k, m) permuted;
    ``z_t = relu(Wn[t] z + Un[t] x + bn[t])`` because ``relu(r) / (1 - w) = relu(r / (1 - w))``.
    """
    order = torch.tensor(model.unit_order)
    W = model.W[order][:, order]
    scale = 1.0 / (1.0 - torch.diagonal(W))
    Wn = torch.tril(W, diagonal=-1) * scale[:, None]
    return Wn, model.U[order] * scale[:, None], model.b[order] * scale, model.A[:, order]


def build_kernel(model: Model, seg: Segment, device: torch.device,
                 fused: int | None = None) -> DEQKernel | FFNKernel:
    """The walk kernel of a model along a segment, with its tensors on ``device``.

    ``fused``: levels of a triangular DEQ's count-only walk given to the fused Triton kernel (None: the
    default on CUDA with Triton installed, else 0 = plain torch).
    """
    p = torch.tensor(seg.origin, dtype=DTYPE)
    v = torch.tensor(seg.direction, dtype=DTYPE)
    if isinstance(model, FFN):
        return FFNKernel(
            weights=[w.to(device) for w in model.weights[:-1]],
            biases=[b.to(device) for b in model.biases[:-1]],
            readout=model.weights[-1].to(device),
            p=p.to(device),
            v=v.to(device),
        )
    Wn, Un, bn, A = _normalized_deq(model)
    fused_levels = fused if fused is not None else (DEFAULT_FUSED_LEVELS if fused_available(device) else 0)
    return DEQKernel(Wn=Wn.to(device), us0=(Un @ v).to(device), uc0=(Un @ p + bn).to(device),
                     A=A.to(device), out0=(model.B @ v).to(device), Un=Un.to(device), bn=bn.to(device),
                     fused_levels=fused_levels)


def region_upper_bound(model: Model) -> int:
    """A guaranteed bound on the regions along any segment: prod(n_l + 1) for an FFN, 2^m for a DEQ."""
    if isinstance(model, FFN):
        return math.prod(n + 1 for n in model.hidden_widths)
    return 2**model.width


def _run(kernel: DEQKernel | FFNKernel, t_low: float, t_high: float, sink: PieceSink,
         track_linear: bool, max_pieces: int, tau: float, track_ends: bool = False,
         certify: list[LayerBound] | None = None) -> None:
    with torch.no_grad():
        if certify is not None and isinstance(kernel, FFNKernel):
            kernel.run(t_low, t_high, sink, track_linear=track_linear, max_pieces=max_pieces, tau=tau,
                       certify=certify)
        else:
            kernel.run(t_low, t_high, sink, track_linear=track_linear, max_pieces=max_pieces, tau=tau,
                       track_ends=track_ends)


def estimate_regions(kernel: DEQKernel | FFNKernel, seg: Segment, device: torch.device,
                     max_pieces: int, max_regions: int | None) -> dict:
    """Pilot estimate: exact counts on 16 stratified sub-segments of 1/1024 of the length each.

    Returns ``{"regions": estimated total, "seconds": estimated time, "pilot_fraction": ...}``; the
    breakpoint density of the pilots times the length gives the regions, their rate gives the time.
    """
    span = seg.t_high - seg.t_low
    gen = torch.Generator().manual_seed(0)
    offsets = (torch.arange(PILOT_PIECES, dtype=DTYPE) + torch.rand(PILOT_PIECES, generator=gen, dtype=DTYPE))
    width = span * PILOT_FRACTION
    tau = merge_tolerance(seg.t_low, seg.t_high)
    # a pilot covers 1/1024 of the segment: more than max_regions / 16 there means > 64x the limit overall
    cap = None if max_regions is None else max(1000, max_regions // 16)
    found = 0
    watch = Stopwatch(device)
    for offset in offsets.tolist():
        lo = seg.t_low + (span - width) * offset / PILOT_PIECES
        sink = PieceSink(lo, lo + width, max_regions=cap)
        try:
            _run(kernel, lo, lo + width, sink, False, max_pieces, tau)
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
            "pilot_fraction": PILOT_PIECES * PILOT_FRACTION}


def check_cost(model: Model, kernel: DEQKernel | FFNKernel, seg: Segment, device: torch.device,
               keep_breakpoints: bool, max_regions: int | None, memory_limit: int,
               max_pieces: int, known_regions: int | None = None) -> dict | None:
    """Refuse (CostLimitError, with the estimate and the limit) a count that cannot fit.

    The guaranteed bound (:func:`region_upper_bound`) decides when it is small enough; otherwise
    ``known_regions`` (e.g. 2^m for the Theorem 1 DEQ) or a pilot estimate is used.
    """
    bound = _magnitude_bound(model, seg)
    if not bound < MAX_INTERMEDIATE:
        raise CostLimitError(
            f"weights too large along this segment: intermediate values could reach {bound:.3g}, "
            f"beyond the float64-safe limit {MAX_INTERMEDIATE:.0e}"
        )
    upper = region_upper_bound(model)
    if (max_regions is None or upper <= max_regions) and (not keep_breakpoints
                                                         or KEPT_BYTES_PER_REGION * upper <= memory_limit):
        _check_walk_memory(model, device, upper if known_regions is None else known_regions, max_pieces,
                           memory_limit)
        return None
    if known_regions is not None:
        estimate: dict[str, Any] = {"regions": known_regions, "seconds": None, "pilot_fraction": 0.0}
    else:
        estimate = estimate_regions(kernel, seg, device, max_pieces, max_regions)
    regions = estimate["regions"]
    timing = "" if estimate["seconds"] is None else f", about {estimate['seconds']:.3g} s"
    if max_regions is not None and regions > max_regions:
        raise CostLimitError(
            f"estimated {regions:.4g} regions{timing}: above the limit of {max_regions:.4g} regions "
            "(raise `max_regions` to go on)"
        )
    if keep_breakpoints and KEPT_BYTES_PER_REGION * regions > memory_limit:
        raise CostLimitError(
            f"keeping breakpoints for an estimated {regions:.4g} regions needs "
            f"{KEPT_BYTES_PER_REGION * regions / 2**30:.3g} GiB, "
            f"above the memory limit of {memory_limit / 2**30:.3g} GiB; count without keeping breakpoints"
        )
    _check_walk_memory(model, device, regions, max_pieces, memory_limit)
    return estimate


def _check_walk_memory(model: Model, device: torch.device, regions: float, max_pieces: int,
                       memory_limit: int) -> None:
    """Refuse a walk whose batches (:func:`regioncount.cost.estimate_exact`, pieces and breakpoints aside)
    would not fit the memory limit, or on CUDA the device's memory."""
    limit = memory_limit
    if device.type == "cuda":
        limit = min(limit, int(0.8 * torch.cuda.get_device_properties(device).total_memory))
    estimate_exact(model, linear_pieces=True, keep_breakpoints=False, regions=regions, device=device,
                   max_pieces=max_pieces).check(limit)


def count_segment(model: Model, interval: Sequence[float] | None = None,
                  segment: tuple[Sequence[float], Sequence[float]] | None = None, *,
                  linear_pieces: bool = True, keep_breakpoints: bool = False,
                  device: str | torch.device = "auto", max_regions: int | None = DEFAULT_MAX_REGIONS,
                  memory_limit: int | None = None, max_pieces: int | None = None,
                  known_regions: int | None = None, assume_well_posed: bool = False, walkers: int = 256,
                  progress: Callable[[float], None] | None = None, fused: int | None = None) -> SegmentCount:
    """Count exactly the activation regions (and linear pieces) of ``model`` along a segment.

    Args:
        interval: (a, b) for a 1-D model; segment: (p, q) end points for d-D input.
        linear_pieces: also merge neighbouring regions with the same affine output (costs ~1.5x).
        keep_breakpoints: return the sorted breakpoints and region lengths (about 40 bytes per region at peak).
        device: "auto", "cpu" or "cuda".  Counting is float64 throughout.
        max_regions / memory_limit: refuse, before starting, counts estimated to exceed them.
        max_pieces: pieces per batch (memory of one batch is about 8 * max_pieces * (2 n + 12) bytes).
        known_regions: a count known in advance (skips the pilot estimate).
        progress: called with the covered fraction of the segment, in [0, 1], as the walk advances.
        assume_well_posed: count a DEQ whose well-posedness is not certified (solves are still checked).
        walkers: parallel walkers for a general-W DEQ (the pattern walk of :mod:`regioncount.deq_general`).
        fused: levels of a triangular DEQ's count-only walk done by the fused GPU kernel (None: default on
            CUDA when Triton is installed; 0: plain torch).  The counts are identical either way.
    """
    certificate = deq_certificate(model, assume_well_posed)
    seg = resolve_segment(model, interval, segment)
    dev = resolve_device(device)
    if certificate is not None:
        assert isinstance(model, DEQ)  # only DEQs have certificates
        return _count_general_deq(model, seg, dev, linear_pieces, keep_breakpoints, walkers, certificate)
    memory_limit = default_memory_limit() if memory_limit is None else memory_limit
    max_pieces = default_max_pieces(dev) if max_pieces is None else max(2, int(max_pieces))
    kernel = build_kernel(model, seg, dev, fused)
    estimate = check_cost(model, kernel, seg, dev, keep_breakpoints, max_regions, memory_limit,
                          max_pieces, known_regions)
    tau = merge_tolerance(seg.t_low, seg.t_high)
    origin, direction = torch.tensor(seg.origin, dtype=DTYPE), torch.tensor(seg.direction, dtype=DTYPE)
    arithmetic_exact = exact_arithmetic(model, origin, direction)
    exact_slopes = linear_pieces and arithmetic_exact
    # a net outside the exact-arithmetic test may round its slopes and intercepts (catastrophic
    # cancellation with weights of very different scales): no decision of its walk is proven, unless a
    # DEQ walk's recorded magnitudes prove it afterwards
    unproven = not arithmetic_exact
    prove_deq = isinstance(model, DEQ) and not arithmetic_exact
    # an FFN with rounded arithmetic carries rigorous forward-error bounds that prove its decisions
    certify = isinstance(model, FFN) and not arithmetic_exact

    def new_sink() -> PieceSink:
        return PieceSink(seg.t_low, seg.t_high, keep_breakpoints=keep_breakpoints, progress=progress,
                         max_regions=max_regions, max_kept_bytes=memory_limit, exact_slopes=exact_slopes)

    sink = new_sink()
    watch = Stopwatch(dev)
    if prove_deq and isinstance(kernel, DEQKernel):
        kernel.snapshots = {}
    bounds = layer_bounds(model.weights[:-1], model.biases[:-1], dev, cache_owner=model) \
        if certify and isinstance(model, FFN) else None
    _run(kernel, seg.t_low, seg.t_high, sink, linear_pieces, max_pieces, tau, certify=bounds)
    if sink.suspicious and not certify:
        # some zero fell within tau of a breakpoint, or exactly on it: classify exactly with end tracking
        sink = new_sink()
        if prove_deq and isinstance(kernel, DEQKernel):
            kernel.snapshots = {}
        _run(kernel, seg.t_low, seg.t_high, sink, linear_pieces, max_pieces, tau, track_ends=True)
    synchronize(dev)
    proven_after = False
    if prove_deq and isinstance(kernel, DEQKernel) and isinstance(model, DEQ):
        measured = kernel.measured_maxima()
        kernel.snapshots = None
        proven_after = deq_walk_proven_exact(model, origin, direction, measured, linear_pieces)
        unproven = not proven_after
        exact_slopes = linear_pieces and proven_after
    regions, pieces = sink.regions, sink.linear_pieces if linear_pieces else None
    local_note = ""
    unsure_slopes = 0
    if certify and isinstance(model, FFN):
        pieces, unsure_slopes, local_note = _resolve_slope_doubts(model, seg, sink, pieces)
        proven_after = sink.uncertain == 0 and unsure_slopes == 0
        unproven = not proven_after
    # with every slope proven exact, bitwise slope comparisons were exact decisions, not doubtful ones
    doubtful = sink.near_coincident + (0 if exact_slopes else sink.slope_doubts)
    if certify:  # every decision the bounds do not prove (tolerance merges included) is doubtful
        doubtful = sink.uncertain + unsure_slopes
    method, second_opinion = "exact", ""
    breakpoints = lengths = None
    if keep_breakpoints:
        lefts = torch.cat(sink.lefts).numpy()  # pieces are contiguous: each right end is the next left end
        sink.lefts.clear()
        breakpoints = lefts[1:]
        lengths = np.diff(lefts, append=seg.t_high)
    if doubtful or unproven:
        why = (f"{doubtful} float64 decision(s) not proven by the forward-error bounds" if certify else
               f"{doubtful} doubtful float64 decision(s)" if doubtful else
               "float64 arithmetic not provably exact for these weights")
        if rational_cost(model, regions) <= RATIONAL_RECOUNT_BUDGET:
            exact = exact_count(model, list(seg.origin), list(seg.direction), seg.t_low, seg.t_high)
            regions = exact.activation_regions
            pieces = exact.linear_pieces if linear_pieces else None
            second_opinion = f"; {why}: decided by an exact rational recount"
            if keep_breakpoints:
                ends = np.array([seg.t_low] + [float(b) for b in exact.breakpoints] + [seg.t_high])
                breakpoints, lengths = ends[1:-1], np.diff(ends)
        else:
            method = "approximate"
            second_opinion = (f"; {why}, left to float64 (an exact recount would take about "
                              f"{rational_cost(model, regions):.2g} rational operations, above the budget of "
                              f"{RATIONAL_RECOUNT_BUDGET:.0e})")
    seconds = watch.seconds()
    tracked = linear_pieces or keep_breakpoints
    return SegmentCount(
        model=model.name or model.describe(),
        activation_regions=regions,
        linear_pieces=pieces,
        method=method,
        doubtful_decisions=doubtful,
        segment=seg.describe(),
        device=dev.type,
        seconds=seconds,
        tolerance=tau,
        near_coincident=sink.near_coincident,
        breakpoints=breakpoints,
        region_lengths=lengths,
        shortest_region=sink.shortest if tracked else None,
        longest_region=sink.longest if tracked else None,
        estimate=estimate,
        algorithm="breakpoint propagation" + (" (forward substitution)" if isinstance(model, DEQ) else "")
                  + ("; slopes exact" if exact_slopes else "")
                  + ("; float64 rounding bounded, every decision proven (forward error analysis)"
                     + local_note if certify and proven_after else
                     "; float64 exactness proven a posteriori" if proven_after else "") + second_opinion,
    )


def _resolve_slope_doubts(model: FFN, seg: Segment, sink: PieceSink, pieces: int | None
                          ) -> tuple[int | None, int, str]:
    """Re-decide in exact arithmetic the slope comparisons that a certified walk's bounds left open.

    Each open pair of neighbouring pieces is settled by the exact output slopes at the two pieces'
    midpoints (:func:`regioncount.rational1d.ffn_output_slope_at`), when they are all recorded and their cost
    fits ``LOCAL_EXACT_BUDGET``; the piece count is corrected where the float comparison was wrong.
    Returns (pieces, slope decisions still open, a note for the algorithm line).
    """
    total = sink.slope_doubts_total
    if total == 0 or pieces is None:
        return pieces, 0, ""
    parameters = sum(w.numel() + b.numel() for w, b in zip(model.weights, model.biases))
    if total > len(sink.slope_doubt_pairs) or 4 * total * parameters > LOCAL_EXACT_BUDGET:
        return pieces, total, ""
    p, v = list(seg.origin), list(seg.direction)
    for left_mid, right_mid, counted in sink.slope_doubt_pairs:
        differ = ffn_output_slope_at(model, p, v, left_mid) != ffn_output_slope_at(model, p, v, right_mid)
        pieces += int(differ) - int(counted)
    return pieces, 0, f"; {total} slope comparison(s) decided exactly"


def _count_general_deq(model: DEQ, seg: Segment, dev: torch.device, linear_pieces: bool, keep_breakpoints: bool,
                       walkers: int, certificate: str) -> SegmentCount:
    """Exact count of a general-W DEQ by the batched pattern walk (cost O(regions * m^3) in torch)."""
    p = torch.tensor(seg.origin, dtype=DTYPE)
    v = torch.tensor(seg.direction, dtype=DTYPE)
    watch = Stopwatch(dev)
    walk = walk_segment(model, p, v, seg.t_low, seg.t_high, walkers=walkers, device=dev,
                        linear_pieces=linear_pieces, keep_breakpoints=keep_breakpoints)
    seconds = watch.seconds()
    if walk.failures:
        raise NotWellPosedError(
            f"{walk.failures} fixed-point solves or pattern updates failed their checks along the segment: "
            "the count cannot be trusted (is the DEQ well-posed?)"
        )
    lengths = None
    if walk.breakpoints is not None:
        ends = np.concatenate([[seg.t_low], walk.breakpoints, [seg.t_high]])
        lengths = np.diff(ends)
    return SegmentCount(
        model=model.name or model.describe(),
        activation_regions=walk.activation_regions,
        linear_pieces=walk.linear_pieces,
        segment=seg.describe(),
        method="approximate" if walk.doubtful else "exact",
        doubtful_decisions=walk.doubtful,
        device=dev.type,
        seconds=seconds,
        tolerance=merge_tolerance(seg.t_low, seg.t_high),
        breakpoints=walk.breakpoints,
        region_lengths=lengths,
        shortest_region=None if lengths is None else float(lengths.min()),
        longest_region=None if lengths is None else float(lengths.max()),
        algorithm=f"pattern walk ({walk.walkers} walkers); {certificate}"
                  + (f"; {walk.doubtful} decision(s) left to the tolerance (no exact second opinion for a "
                     "general W yet)" if walk.doubtful else ""),
    )
