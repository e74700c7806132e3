"""Exact 1-D region counting along an interval or a segment: the public entry point.

``count_segment(model, interval=(a, b))`` for 1-D input, ``count_segment(model, segment=(p, q))`` for
d-D input (``x(t) = p + t (q - p)``, t in [0, 1]); with neither, the model's ``domain`` (its diagonal from
``low`` to ``high`` for d > 1).  The segment is resolved by :mod:`regioncount.core.geometry`, the kernels
built and run by :mod:`regioncount.line.kernels` (over :mod:`~regioncount.line.ffn_walk`,
:mod:`~regioncount.line.deq_walk`), the cost checked by :mod:`regioncount.line.cost` and a general-W DEQ's
well-posedness by :mod:`regioncount.models.wellposed`; this module
decides what is proven (static test, a-posteriori proofs, forward-error bounds, the exact second opinion)
and packages a :class:`~regioncount.core.results.SegmentCount`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..core.devices import Stopwatch, default_memory_limit, resolve_device, synchronize
from ..core.errors import NotWellPosedError
from ..core.geometry import Segment, resolve_segment
from ..core.limits import Deadline
from ..core.results import RegionEnds, SegmentCount, region_ends
from ..core.settings import DEFAULT_MAX_REGIONS  # noqa: E402  (re-exported)
from ..exact.rational1d import exact_count, ffn_output_slope_at, rational_cost
from ..graph.count import count_graph
from ..graph.model import GraphModel
from ..models.networks import DEQ, DTYPE, FFN, Model, deq_certificate
from .cost import check_cost, default_max_pieces
from .deq_general import walk_segment
from .deq_walk import DEQKernel
from .envelope import ColumnEnvelope
from .exactness import deq_walk_proven_exact, exact_arithmetic
from .ffn_walk import FFNKernel
from .forward_error import layer_bounds
from .general_exact import decide_general_walk
from .kernels import build_kernel, run_kernel
from .sink import PieceSink, UnprovenDecision, merge_tolerance

#: Time of a certified walk with split products, or with double-double products, and of the walks that stopped
#: before it, in walks of one GEMM per layer (for ``max_seconds``).
SPLIT_COST = 4.0
DOUBLE_COST = 20.0
#: Pieces per batch of each certified walk, as a share of the plain walk's (its maps take more memory).
PIECE_SHARE = {"rounded": 1, "split": 4, "double": 8}
#: How the algorithm line names each kind of certified walk.
PRODUCT_NOTES = {"rounded": "", "split": ", split products", "double": ", double-double products"}
#: Largest exact rational recount (rational operations, about 5 s) run as the second opinion on doubtful
#: float64 decisions; above it the count is labelled approximate.
RATIONAL_RECOUNT_BUDGET = 2e6
#: Seconds per rational operation of the recount (measured: about 2.5 us), to keep it within ``max_seconds``.
RATIONAL_SECONDS_PER_OPERATION = 2.5e-6
#: Rational operations allowed for re-deciding single open slope comparisons of a certified FFN walk.
LOCAL_EXACT_BUDGET = 2e6


def count_segment(model: Model | GraphModel, interval: Sequence[float] | None = None,
                  segment: tuple[Sequence[float], Sequence[float]] | None = None, *,
                  linear_pieces: bool = True, keep_breakpoints: bool = False,
                  device: str | torch.device = "auto", max_regions: int | None = DEFAULT_MAX_REGIONS,
                  memory_limit: int | None = None, max_pieces: int | None = None,
                  known_regions: int | None = None, assume_well_posed: bool = False, walkers: int = 256,
                  progress: Callable[[float], None] | None = None, fused: int | None = None,
                  max_seconds: float | None = None, envelope: ColumnEnvelope | None = None) -> SegmentCount:
    """Count exactly the activation regions (and linear pieces) of ``model`` along a segment.

    A :class:`~regioncount.graph.model.GraphModel` (convolutions, pooling, residual blocks, leaky ReLUs: read
    by ``from_module``) is counted by :func:`regioncount.graph.count.count_graph`, which honours the
    segment, ``linear_pieces``, ``keep_breakpoints``, ``device`` and the limits.

    Args:
        interval: (a, b) for a 1-D model; segment: (p, q) end points for d-D input.
        linear_pieces: also merge neighbouring regions with the same affine output (costs ~1.5x).
        keep_breakpoints: return the sorted breakpoints and region lengths (about 40 bytes per region at peak).
        device: "auto", "cpu" or "cuda".  Counting is float64 throughout.
        max_regions / memory_limit: refuse, before starting, counts estimated to exceed them.
        max_seconds: a deadline for the whole count (:mod:`regioncount.core.limits`): a count projected by a
            timed pilot (1.6% of the segment) to take longer is refused before it starts, and a walk that still
            reaches it stops there (CostLimitError).
        max_pieces: pieces per batch (memory of one batch is about 8 * max_pieces * (2 n + 12) bytes).
        known_regions: a count known in advance (skips the pilot estimate).
        progress: called with the covered fraction of the segment, in [0, 1], as the walk advances.
        assume_well_posed: count a DEQ whose well-posedness is not certified (solves are still checked).
        walkers: parallel walkers for a general-W DEQ (the pattern walk of :mod:`regioncount.line.deq_general`).
        fused: levels of a triangular DEQ's count-only walk done by the fused GPU kernel (None: default on
            CUDA when Triton is installed; 0: plain torch).  The counts are identical either way.
        envelope: a :class:`~regioncount.line.envelope.ColumnEnvelope` that receives the output per pixel
            column as the walk goes (slopes are then tracked); left empty by a general-W DEQ's pattern walk.
    """
    if isinstance(model, GraphModel):  # operator graphs: their own walk and proof (docs/graphs.md)
        return count_graph(model, resolve_segment(model, interval, segment), linear_pieces=linear_pieces,
                           keep_breakpoints=keep_breakpoints, device=device, max_regions=max_regions,
                           memory_limit=memory_limit, max_seconds=max_seconds)
    certificate = deq_certificate(model, assume_well_posed)  # an ill-posed DEQ is refused before its segment
    seg = resolve_segment(model, interval, segment)
    return _count(model, seg, certificate, linear_pieces=linear_pieces or envelope is not None,
                  keep_breakpoints=keep_breakpoints, device=device, max_regions=max_regions,
                  memory_limit=memory_limit, max_pieces=max_pieces, known_regions=known_regions, walkers=walkers,
                  progress=progress, fused=fused, max_seconds=max_seconds, envelope=envelope)


def count_along(model: Model | GraphModel, seg: Segment, *, linear_pieces: bool = True, keep_breakpoints: bool = False,
                device: str | torch.device = "auto", max_regions: int | None = DEFAULT_MAX_REGIONS,
                memory_limit: int | None = None, max_pieces: int | None = None,
                known_regions: int | None = None, assume_well_posed: bool = False, walkers: int = 256,
                progress: Callable[[float], None] | None = None, fused: int | None = None,
                max_seconds: float | None = None) -> SegmentCount:
    """:func:`count_segment` on a resolved :class:`~regioncount.core.geometry.Segment` (options as there): counts
    the part ``t in [seg.t_low, seg.t_high]`` of the line ``seg.origin + t seg.direction``, so the parts of
    one line can be counted separately and merged (:mod:`regioncount.parallel.segments`)."""
    if isinstance(model, GraphModel):
        return count_graph(model, seg, linear_pieces=linear_pieces, keep_breakpoints=keep_breakpoints, device=device,
                           max_regions=max_regions, memory_limit=memory_limit, max_seconds=max_seconds)
    return _count(model, seg, deq_certificate(model, assume_well_posed), linear_pieces=linear_pieces,
                  keep_breakpoints=keep_breakpoints, device=device, max_regions=max_regions,
                  memory_limit=memory_limit, max_pieces=max_pieces, known_regions=known_regions, walkers=walkers,
                  progress=progress, fused=fused, max_seconds=max_seconds)


def _count(model: Model, seg: Segment, certificate: str | None, *, linear_pieces: bool, keep_breakpoints: bool,
           device: str | torch.device, max_regions: int | None, memory_limit: int | None, max_pieces: int | None,
           known_regions: int | None, walkers: int, progress: Callable[[float], None] | None,
           fused: int | None, max_seconds: float | None = None, envelope: ColumnEnvelope | None = None
           ) -> SegmentCount:
    """The count in four stages: plan (limits, kernel, cost, which proof applies), walk (the certified walks
    in turn), prove (what the walk's bounds or recorded magnitudes prove), and the second opinion (an exact
    recount of what is left, or the label approximate); the method line is built from their records."""
    deadline = Deadline(max_seconds)
    dev = resolve_device(device)
    if certificate is not None:
        assert isinstance(model, DEQ)  # only DEQs have certificates
        return _count_general_deq(model, seg, dev, linear_pieces, keep_breakpoints, walkers, certificate, deadline)
    plan = _plan(model, seg, dev, linear_pieces=linear_pieces, keep_breakpoints=keep_breakpoints,
                 max_regions=max_regions, memory_limit=memory_limit, max_pieces=max_pieces,
                 known_regions=known_regions, progress=progress, fused=fused, deadline=deadline, envelope=envelope)
    watch = Stopwatch(dev)
    sink, products = _walk(plan)
    proof = _prove(plan, sink)
    breakpoints = lengths = None
    if keep_breakpoints:
        lefts = torch.cat(sink.lefts).numpy()  # pieces are contiguous: each right end is the next left end
        sink.lefts.clear()
        breakpoints, lengths = lefts[1:], np.diff(lefts, append=seg.t_high)
    opinion = _second_opinion(plan, proof, breakpoints, lengths)
    tracked = linear_pieces or keep_breakpoints
    end_regions = RegionEnds(sink.first_length, sink.last_length, sink.inner_shortest, sink.inner_longest) \
        if tracked and sink.first_length is not None and sink.last_length is not None else None
    return SegmentCount(
        model=model.name or model.describe(), activation_regions=opinion.regions, linear_pieces=opinion.pieces,
        method=opinion.method, doubtful_decisions=proof.doubtful, segment=seg.describe(), device=dev.type,
        seconds=watch.seconds(), tolerance=plan.tau, near_coincident=sink.near_coincident,
        breakpoints=opinion.breakpoints, region_lengths=opinion.lengths,
        shortest_region=None if end_regions is None else end_regions.shortest,
        longest_region=None if end_regions is None else end_regions.longest,
        end_regions=end_regions, estimate=plan.estimate,
        algorithm=_algorithm_line(plan, products, proof, opinion.note),
    )


@dataclass
class _Plan:
    """A 1-D count resolved before it walks: the model and segment, device, limits, kernel, the pilot's
    estimate, the merge tolerance, and whether float64 is exact here (else which proof applies)."""

    model: Model
    seg: Segment
    dev: torch.device
    kernel: DEQKernel | FFNKernel
    estimate: dict | None
    tau: float
    max_pieces: int
    memory_limit: int
    max_regions: int | None
    linear_pieces: bool
    keep_breakpoints: bool
    progress: Callable[[float], None] | None
    deadline: Deadline
    arithmetic_exact: bool
    envelope: ColumnEnvelope | None = None

    @property
    def certify(self) -> bool:
        """An FFN with rounded arithmetic: its walk carries rigorous forward-error bounds."""
        return isinstance(self.model, FFN) and not self.arithmetic_exact

    @property
    def prove_deq(self) -> bool:
        """A triangular DEQ with rounded arithmetic: proven afterwards from its walk's recorded magnitudes."""
        return isinstance(self.model, DEQ) and not self.arithmetic_exact

    def sink(self, stop_when_unproven: bool = False) -> PieceSink:
        return PieceSink(self.seg.t_low, self.seg.t_high, keep_breakpoints=self.keep_breakpoints,
                         progress=self.progress, max_regions=self.max_regions, max_kept_bytes=self.memory_limit,
                         exact_slopes=self.linear_pieces and self.arithmetic_exact,
                         stop_when_unproven=stop_when_unproven, deadline=self.deadline, envelope=self.envelope)


def _plan(model: Model, seg: Segment, dev: torch.device, *, linear_pieces: bool, keep_breakpoints: bool,
          max_regions: int | None, memory_limit: int | None, max_pieces: int | None, known_regions: int | None,
          progress: Callable[[float], None] | None, fused: int | None, deadline: Deadline,
          envelope: ColumnEnvelope | None = None) -> _Plan:
    """Resolve the limits, build the kernel and refuse (CostLimitError) a count that cannot fit them; every
    walk's sink feeds ``envelope``, when given."""
    memory_limit = default_memory_limit() if memory_limit is None else memory_limit
    max_pieces = default_max_pieces(dev) if max_pieces is None else max(2, int(max_pieces))
    kernel = build_kernel(model, seg, dev, fused)
    estimate = check_cost(model, kernel, seg, dev, keep_breakpoints, max_regions, memory_limit,
                          max_pieces, known_regions, max_seconds=deadline.seconds, linear_pieces=linear_pieces)
    origin, direction = torch.tensor(seg.origin, dtype=DTYPE), torch.tensor(seg.direction, dtype=DTYPE)
    return _Plan(model, seg, dev, kernel, estimate, merge_tolerance(seg.t_low, seg.t_high), max_pieces,
                 memory_limit, max_regions, linear_pieces, keep_breakpoints, progress, deadline,
                 exact_arithmetic(model, origin, direction), envelope)


def _walk(plan: _Plan) -> tuple[PieceSink, str]:
    """Walk the segment: a certified walk stops at its first unproven decision and walks again with split
    products (about three times the GEMMs), then with double-double maps (about twelve), as far as the time
    and memory limits allow (:func:`_certified_stages`); a plain walk that met a zero within the tolerance of
    a breakpoint walks again with end tracking.  Returns the final walk's sink and its kind of products."""
    model, seg, kernel = plan.model, plan.seg, plan.kernel
    stages = _certified_stages(model, plan.estimate, plan.deadline.remaining(), plan.memory_limit) \
        if plan.certify else ["rounded"]
    if plan.prove_deq and isinstance(kernel, DEQKernel):
        kernel.snapshots = {}
    bounds = layer_bounds(model.weights[:-1], model.biases[:-1], plan.dev, cache_owner=model) \
        if plan.certify and isinstance(model, FFN) else None
    products = "rounded"
    for stage, products in enumerate(stages):
        final = stage == len(stages) - 1
        sink = plan.sink(stop_when_unproven=not final)
        try:
            run_kernel(kernel, seg.t_low, seg.t_high, sink, plan.linear_pieces,
                       max(2, plan.max_pieces // PIECE_SHARE[products]), plan.tau, certify=bounds,
                       split_products=products == "split", double_products=products == "double")
            stopped = False
        except UnprovenDecision:
            stopped = True
        if final or not (stopped or (isinstance(model, FFN) and not _slope_doubts_resolvable(model, sink))):
            break
    if sink.suspicious and not plan.certify:
        sink = _walk_tracking_ends(plan)
    synchronize(plan.dev)
    return sink, products


def _walk_tracking_ends(plan: _Plan) -> PieceSink:
    """Walk again with each end's exact (c, s) tracked: some zero fell within tau of a breakpoint, or exactly
    on it, and is classified exactly this time."""
    sink = plan.sink()
    if plan.prove_deq and isinstance(plan.kernel, DEQKernel):
        plan.kernel.snapshots = {}
    run_kernel(plan.kernel, plan.seg.t_low, plan.seg.t_high, sink, plan.linear_pieces, plan.max_pieces, plan.tau,
               track_ends=True)
    return sink


@dataclass
class _Proof:
    """What the walk proved: its regions and pieces, the decisions left doubtful, whether its arithmetic is
    still unproven, whether its slopes are exact, whether a proof after the walk succeeded, and a note."""

    regions: int
    pieces: int | None
    doubtful: int
    unproven: bool
    exact_slopes: bool
    proven_after: bool
    note: str = ""


def _prove(plan: _Plan, sink: PieceSink) -> _Proof:
    """The proofs after the walk: a triangular DEQ's recorded magnitudes (:mod:`regioncount.line.exactness`),
    or a certified FFN walk's open slope comparisons decided exactly; then the doubtful decisions counted."""
    model, kernel = plan.model, plan.kernel
    exact_slopes = plan.linear_pieces and plan.arithmetic_exact
    unproven, proven_after = not plan.arithmetic_exact, False
    pieces = sink.linear_pieces if plan.linear_pieces else None
    unsure_slopes, note = 0, ""
    if plan.prove_deq and isinstance(kernel, DEQKernel) and isinstance(model, DEQ):
        origin, direction = torch.tensor(plan.seg.origin, dtype=DTYPE), torch.tensor(plan.seg.direction, dtype=DTYPE)
        measured = kernel.measured_maxima()
        kernel.snapshots = None
        proven_after = deq_walk_proven_exact(model, origin, direction, measured, plan.linear_pieces)
        unproven = not proven_after
        exact_slopes = plan.linear_pieces and proven_after
    if plan.certify and isinstance(model, FFN):
        pieces, unsure_slopes, note = _resolve_slope_doubts(model, plan.seg, sink, pieces)
        proven_after = sink.uncertain == 0 and unsure_slopes == 0
        unproven = not proven_after
    # with every slope proven exact, bitwise slope comparisons were exact decisions, not doubtful ones
    doubtful = sink.near_coincident + (0 if exact_slopes else sink.slope_doubts)
    if plan.certify:  # every decision the bounds do not prove (tolerance merges included) is doubtful
        doubtful = sink.uncertain + unsure_slopes
    return _Proof(sink.regions, pieces, doubtful, unproven, exact_slopes, proven_after, note)


@dataclass
class _Opinion:
    """The final answer: regions, pieces, breakpoints and lengths, the method label and the note that
    says how the doubtful decisions were settled (or why they were not)."""

    regions: int
    pieces: int | None
    breakpoints: np.ndarray | None
    lengths: np.ndarray | None
    method: str
    note: str


def _second_opinion(plan: _Plan, proof: _Proof, breakpoints: np.ndarray | None, lengths: np.ndarray | None
                    ) -> _Opinion:
    """Decide the walk's doubtful decisions again by an exact rational recount when it fits its budget and
    the time left; otherwise label the count approximate and say why."""
    model, seg = plan.model, plan.seg
    if not (proof.doubtful or proof.unproven):
        return _Opinion(proof.regions, proof.pieces, breakpoints, lengths, "exact", "")
    why = (f"{proof.doubtful} float64 decision(s) not proven by the forward-error bounds" if plan.certify else
           f"{proof.doubtful} doubtful float64 decision(s)" if proof.doubtful else
           "float64 arithmetic not provably exact for these weights")
    cost = rational_cost(model, proof.regions)
    left = plan.deadline.remaining()
    in_time = left is None or cost * RATIONAL_SECONDS_PER_OPERATION <= left
    if not (cost <= RATIONAL_RECOUNT_BUDGET and in_time):
        return _Opinion(proof.regions, proof.pieces, breakpoints, lengths, "approximate",
                        f"; {why}, left to float64 (an exact recount would take about {cost:.2g} rational "
                        "operations, " + (f"above the budget of {RATIONAL_RECOUNT_BUDGET:.0e})" if in_time else
                                          "past the time limit)"))
    exact = exact_count(model, list(seg.origin), list(seg.direction), seg.t_low, seg.t_high)
    if breakpoints is not None:
        ends = np.array([seg.t_low] + [float(b) for b in exact.breakpoints] + [seg.t_high])
        breakpoints, lengths = ends[1:-1], np.diff(ends)
    return _Opinion(exact.activation_regions, exact.linear_pieces if plan.linear_pieces else None, breakpoints,
                    lengths, "exact", f"; {why}: decided by an exact rational recount")


def _algorithm_line(plan: _Plan, products: str, proof: _Proof, note: str) -> str:
    """The method line: the walk, whether its slopes were exact, what proved it, and the second opinion."""
    line = "breakpoint propagation" + (" (forward substitution)" if isinstance(plan.model, DEQ) else "")
    if proof.exact_slopes:
        line += "; slopes exact"
    if plan.certify and proof.proven_after:
        line += "; float64 rounding bounded, every decision proven (forward error analysis" \
                + PRODUCT_NOTES[products] + ")" + proof.note
    elif proof.proven_after:
        line += "; float64 exactness proven a posteriori"
    return line + note


def _certified_stages(model: Model, estimate: dict | None, max_seconds: float | None, memory_limit: int
                      ) -> list[str]:
    """The certified walks to try in turn on a rounded FFN: one rounded GEMM per layer, then split products,
    then double-double products, each kept only when its projected time (from the pilot estimate) fits
    ``max_seconds`` and the weight slices it holds fit half of ``memory_limit``."""
    pilot_seconds = None if estimate is None else estimate.get("seconds")
    largest = max((w.numel() for w in model.weights[:-1]), default=0) if isinstance(model, FFN) else 0
    stages = ["rounded"]
    for products, cost, copies in (("split", SPLIT_COST, 2), ("double", DOUBLE_COST, 5)):
        in_time = max_seconds is None or pilot_seconds is None or cost * pilot_seconds <= max_seconds
        if not (in_time and copies * 8 * largest <= memory_limit // 2):
            break
        stages.append(products)
    return stages


def _slope_doubts_resolvable(model: FFN, sink: PieceSink) -> bool:
    """Whether :func:`_resolve_slope_doubts` can settle every slope comparison a certified walk left open:
    all of them recorded, at about ``4 x parameters`` rational operations each within ``LOCAL_EXACT_BUDGET``."""
    total = sink.slope_doubts_total
    if total == 0:
        return True
    parameters = sum(w.numel() + b.numel() for w, b in zip(model.weights, model.biases))
    return total <= len(sink.slope_doubt_pairs) and 4 * total * parameters <= LOCAL_EXACT_BUDGET


def _resolve_slope_doubts(model: FFN, seg: Segment, sink: PieceSink, pieces: int | None
                          ) -> tuple[int | None, int, str]:
    """Re-decide in exact arithmetic the slope comparisons that a certified walk's bounds left open.

    Each open pair of neighbouring pieces is settled by the exact output slopes at the two pieces'
    midpoints (:func:`regioncount.exact.rational1d.ffn_output_slope_at`), when they are all recorded and their cost
    fits ``LOCAL_EXACT_BUDGET``; the piece count is corrected where the float comparison was wrong.
    Returns (pieces, slope decisions still open, a note for the algorithm line).
    """
    total = sink.slope_doubts_total
    if total == 0 or pieces is None:
        return pieces, 0, ""
    if not _slope_doubts_resolvable(model, sink):
        return pieces, total, ""
    p, v = list(seg.origin), list(seg.direction)
    for left_mid, right_mid, counted in sink.slope_doubt_pairs:
        differ = ffn_output_slope_at(model, p, v, left_mid) != ffn_output_slope_at(model, p, v, right_mid)
        pieces += int(differ) - int(counted)
    return pieces, 0, f"; {total} slope comparison(s) decided exactly"


def _count_general_deq(model: DEQ, seg: Segment, dev: torch.device, linear_pieces: bool, keep_breakpoints: bool,
                       walkers: int, certificate: str, deadline: Deadline) -> SegmentCount:
    """Count of a general-W DEQ by the batched pattern walk (cost O(regions * m^3) in torch), proven by
    rigorous error bounds or decided again exactly (:mod:`regioncount.line.general_exact`)."""
    p = torch.tensor(seg.origin, dtype=DTYPE)
    v = torch.tensor(seg.direction, dtype=DTYPE)
    watch = Stopwatch(dev)
    walk = walk_segment(model, p, v, seg.t_low, seg.t_high, walkers=walkers, device=dev,
                        linear_pieces=linear_pieces, keep_breakpoints=keep_breakpoints, keep_patterns=True,
                        deadline=deadline)
    if walk.failures:
        raise NotWellPosedError(
            f"{walk.failures} fixed-point solves or pattern updates failed their checks along the segment: "
            "the count cannot be trusted (is the DEQ well-posed?)"
        )
    verdict = decide_general_walk(model, seg, walk, linear_pieces, RATIONAL_RECOUNT_BUDGET)
    seconds = watch.seconds()
    breakpoints = walk.breakpoints
    if verdict.exact_breakpoints is not None and keep_breakpoints:
        breakpoints = np.array([float(b) for b in verdict.exact_breakpoints], dtype=np.float64)
    lengths = None
    if breakpoints is not None:
        ends = np.concatenate([[seg.t_low], breakpoints, [seg.t_high]])
        lengths = np.diff(ends)
    return SegmentCount(
        model=model.name or model.describe(),
        activation_regions=verdict.regions,
        linear_pieces=verdict.pieces,
        segment=seg.describe(),
        method=verdict.method,
        doubtful_decisions=verdict.open_decisions,
        device=dev.type,
        seconds=seconds,
        tolerance=merge_tolerance(seg.t_low, seg.t_high),
        breakpoints=breakpoints,
        region_lengths=lengths,
        shortest_region=None if lengths is None else float(lengths.min()),
        longest_region=None if lengths is None else float(lengths.max()),
        end_regions=None if lengths is None else region_ends(lengths),
        algorithm=f"pattern walk ({walk.walkers} walkers); {certificate}" + verdict.note,
    )
