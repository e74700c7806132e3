"""Breakpoint propagation along a segment: the vectorized kernels behind the exact 1-D count.

The segment is ``x(t) = p + t v`` for t in [t_low, t_high].  A *piece* is a sub-interval [tl, tr] on
which every unit computed so far is affine in t.  Pieces are independent, so they are processed in
batches (tensors with one row per piece) and depth first: a stack of (batch, step) items, leftmost batch
first, each batch halved when its children would exceed ``max_pieces``.  Final pieces therefore reach the
:class:`PieceSink` in increasing t, which makes the count additive over batches, lets linear pieces be
merged across batch edges, and gives a monotone progress fraction.

Tolerance rule (both kernels): with ``tau = TOLERANCE_RATIO * max(|t_low|, |t_high|, t_high - t_low)``,
a unit's zero splits a piece [tl, tr] only when ``tl + tau < t* < tr - tau``, and of several zeros of one
FFN layer in one piece, sorted, a zero within ``tau`` of the previous sorted zero is the same breakpoint.
Zeros that this rule discards without being bitwise equal to the breakpoint they merge with are counted in
``PieceSink.near_coincident``.  Slopes and intercepts never depend on computed breakpoints, so with
dyadic weights of moderate size every quantity except the breakpoint itself (a correctly rounded
``-c/s``) is exact, and equal rational breakpoints are equal floats.

Patterns use the strict convention of ``docs/model-format.md``: a unit is active iff its pre-activation is > 0,
read at the midpoint of the piece.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.errors import CostLimitError
from ..core.limits import Deadline
from ..core.magnitudes import safe_norm
from ..core.tolerances import MERGE_RATIO as TOLERANCE_RATIO
from ..core.tolerances import SLOPE_RTOL
from .double_double import WeightSlices, double_product, double_state
from .forward_error import (
    INFLATE,
    LayerBound,
    ProductRounding,
    input_scale,
    masked_error,
    output_slope_errors,
    rounded_product,
    sign_screen,
    split_product,
    uncertain_gaps,
    uncertain_midpoints,
    uncertain_signs,
    zero_radius,
)

#: The a-posteriori exactness proof measures every level of a triangular-DEQ walk except the last few, where
#: most pieces are (their bounds come from the |W| recursion over these levels instead; ``docs/exactness.md``).
UNMEASURED_LAST_LEVELS = 3
#: Peak bytes per region when breakpoints are kept (left ends while counting, then the breakpoints and the
#: region lengths): measured 33-40 B on the Theorem 1 DEQ, m = 22..23 (was ~50 B when right ends were kept
#: too); the cost checks use this.
KEPT_BYTES_PER_REGION = 40
#: Neighbouring pieces of a certified walk whose slopes are re-decided one by one in exact arithmetic
#: (beyond this many, the slope decisions are left to the whole recount or labelled approximate).
MAX_SLOPE_DOUBTS = 256


def merge_tolerance(t_low: float, t_high: float) -> float:
    """The absolute merge tolerance ``tau`` for a segment parameter range [t_low, t_high]."""
    return TOLERANCE_RATIO * max(abs(t_low), abs(t_high), t_high - t_low)


class UnprovenDecision(Exception):
    """Raised by a :class:`PieceSink` made with ``stop_when_unproven`` at the first decision the forward-error
    bounds of a certified walk do not prove (the caller walks again with tighter bounds)."""


class PieceSink:
    """Receives the final pieces in increasing t and accumulates counts, slopes and breakpoints.

    ``add_count`` takes a batch known only by its size (count-only mode); ``add_pieces`` takes the
    pieces themselves: left/right ends (P,) and, for linear pieces, the output slopes (P, k).
    """

    def __init__(self, t_low: float, t_high: float, *, keep_breakpoints: bool = False,
                 progress: Callable[[float], None] | None = None, max_regions: int | None = None,
                 max_kept_bytes: int | None = None, exact_slopes: bool = False, segments: int | None = None,
                 stop_when_unproven: bool = False, deadline: Deadline | None = None) -> None:
        self.t_low, self.span = t_low, t_high - t_low
        #: checked after every batch: the walk stops with a CostLimitError once it has passed
        self.deadline = deadline
        self.keep = keep_breakpoints
        self.progress = progress
        self.max_regions = max_regions
        self.max_kept_bytes = max_kept_bytes
        self.regions = 0
        self.slope_changes = 0
        self.last_slope: torch.Tensor | None = None
        self.saw_slopes = False
        self.lefts: list[torch.Tensor] = []
        #: lengths of the first and last regions seen, and the extremes of those between them (pieces
        #: mode): the shortest and longest regions, and what merging the counts of adjacent parts needs
        self.first_length: float | None = None
        self.last_length: float | None = None
        self.inner_shortest = float("inf")
        self.inner_longest = 0.0
        self._near: list[torch.Tensor] = []
        self._suspicious: list[torch.Tensor] = []
        #: many-segment runs: regions per segment (``segments`` zeros, int64, on the device of the walk)
        self.segment_counts: torch.Tensor | None = None
        self.segments = segments
        #: True when every output slope is computed exactly (:mod:`regioncount.line.exactness`): then slopes
        #: are compared bit for bit and no slope decision is doubtful
        self.exact_slopes = exact_slopes
        self.slope_doubts = 0
        self._uncertain: list[torch.Tensor] = []
        self.stop_when_unproven = stop_when_unproven
        self.last_slope_error: torch.Tensor | None = None
        self.last_mid: torch.Tensor | None = None
        #: certified walks: neighbouring pieces whose slopes the bounds could not tell apart, as
        #: (midpoint left, midpoint right, counted as a slope change), kept up to MAX_SLOPE_DOUBTS
        self.slope_doubt_pairs: list[tuple[float, float, bool]] = []
        self.slope_doubts_total = 0

    def add_near(self, count: torch.Tensor) -> None:
        """Record tolerance-decided zeros (a 0-d tensor, kept on its device until the end: no sync)."""
        self._near.append(count)
        if len(self._near) >= 1024:
            self._near = [torch.stack(self._near).sum()]

    def add_suspicious(self, count: torch.Tensor) -> None:
        """First pass (no end tracking): zeros within tau of a piece end, or exactly on it."""
        self._suspicious.append(count)
        if len(self._suspicious) >= 1024:
            self._suspicious = [torch.stack(self._suspicious).sum()]

    def add_uncertain(self, count: torch.Tensor) -> None:
        """Record decisions that the forward-error bounds of a certified walk do not prove (0-d tensor; with
        ``stop_when_unproven`` a positive count raises :class:`UnprovenDecision`, a sync)."""
        if self.stop_when_unproven and bool(count):
            raise UnprovenDecision
        self._uncertain.append(count)
        if len(self._uncertain) >= 1024:
            self._uncertain = [torch.stack(self._uncertain).sum()]

    @property
    def uncertain(self) -> int:
        return int(torch.stack(self._uncertain).sum()) if self._uncertain else 0

    @property
    def suspicious(self) -> int:
        return int(torch.stack(self._suspicious).sum()) if self._suspicious else 0

    @property
    def near_coincident(self) -> int:
        return int(torch.stack(self._near).sum()) if self._near else 0

    def add_count(self, count: int, right_end: torch.Tensor | float | None) -> None:
        """Count ``count`` more final pieces (regions), the last ending at ``right_end`` (for the progress)."""
        self.regions += count
        if self.max_regions is not None and self.regions > self.max_regions:
            raise CostLimitError(
                f"more than {self.max_regions:,} regions (the limit); raise max_regions to count further"
            )
        if self.keep and self.max_kept_bytes is not None and KEPT_BYTES_PER_REGION * self.regions > self.max_kept_bytes:
            raise CostLimitError(
                f"keeping the breakpoints of more than {self.regions:,} regions needs over "
                f"{KEPT_BYTES_PER_REGION * self.regions / 2**30:.2f} GiB, above the memory limit of "
                f"{self.max_kept_bytes / 2**30:.2f} GiB; count without keeping breakpoints"
            )
        if self.progress is not None and right_end is not None:
            self.progress(min(1.0, (float(right_end) - self.t_low) / self.span))
        self.tick()

    def tick(self) -> None:
        """Stop (CostLimitError) once the deadline has passed: called after every batch of the walk."""
        if self.deadline is not None:
            self.deadline.check(f"the walk (at {self.regions:,} regions)")

    def add_segment_counts(self, seg: torch.Tensor, per_piece: torch.Tensor) -> None:
        """Many-segment mode: piece i of this batch contributes ``per_piece[i]`` regions to segment seg[i]."""
        if self.segment_counts is None:
            if self.segments is None:
                raise ValueError("a many-segment walk needs a sink made with segments=K")
            self.segment_counts = torch.zeros(self.segments, dtype=torch.int64, device=per_piece.device)
        self.segment_counts.index_add_(0, seg, per_piece.long())
        self.add_count(int(per_piece.sum()), None)

    def add_pieces(self, left: torch.Tensor, right: torch.Tensor, slopes: torch.Tensor | None,
                   slope_errors: torch.Tensor | None = None) -> None:
        """Final pieces in increasing t: ends (P,), output slopes (P, k) or None, and (certified walks)
        bounds on the slopes' rounding errors (P, k): neighbours whose slopes differ by no more than their
        errors in every coordinate are uncertain decisions."""
        if left.numel() == 0:
            return
        self._lengths(left, right)
        if slopes is not None:
            self._compare_neighbours(slopes[:-1], slopes[1:], None if slope_errors is None else slope_errors[:-1],
                                     None if slope_errors is None else slope_errors[1:],
                                     lambda: ((left[:-1] + right[:-1]) * 0.5, (left[1:] + right[1:]) * 0.5))
        self._finish(left, right, slopes, slope_errors)

    def add_pieces_by_flips(self, left: torch.Tensor, right: torch.Tensor, firsts: torch.Tensor,
                            lasts: torch.Tensor, first_errors: torch.Tensor | None, last_errors: torch.Tensor | None,
                            first_mids: torch.Tensor, last_mids: torch.Tensor, inner_changes: int) -> None:
        """Final pieces in increasing t, grouped by parent: the output slopes (G, k) of each group's first
        and last piece only (with their error bounds and midpoints), and the number of slope changes
        between neighbours inside the groups, known exactly (:meth:`FFNKernel.run`: one unit flips there)."""
        if left.numel() == 0:
            return
        self._lengths(left, right)
        self._compare_neighbours(lasts[:-1], firsts[1:], None if last_errors is None else last_errors[:-1],
                                 None if first_errors is None else first_errors[1:],
                                 lambda: (last_mids[:-1], first_mids[1:]))
        self.slope_changes += inner_changes
        self._finish(left, right, lasts, last_errors, first=(firsts[0], None if first_errors is None
                                                              else first_errors[0], first_mids[0]))

    def _lengths(self, left: torch.Tensor, right: torch.Tensor) -> None:
        lengths = right - left
        # the regions strictly between the first and the last: everything but the first region, with each
        # batch's last region held back until a later batch shows it was not the last
        inner = lengths
        if self.first_length is None:
            self.first_length = float(lengths[0])
            inner = lengths[1:]
        elif self.last_length is not None and self.regions > 1:
            self._inner_extremes(self.last_length, self.last_length)
        if inner.numel() > 1:
            self._inner_extremes(float(inner[:-1].min()), float(inner[:-1].max()))
        self.last_length = float(lengths[-1])

    def _compare_neighbours(self, a: torch.Tensor, b: torch.Tensor, err_a: torch.Tensor | None,
                            err_b: torch.Tensor | None, mids: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Count the slope changes between neighbouring pieces with slopes a[i] (left) and b[i] (right);
        ``mids()`` gives their midpoints, asked for only to record the pairs the error bounds leave open."""
        if a.shape[0] == 0:
            return
        differ, doubtful = compare_slopes(b, a, self.exact_slopes)
        self.slope_changes += int(differ.sum())
        if err_a is None or err_b is None:
            self.slope_doubts += int(doubtful)
            return
        unsure = ~((b - a).abs() > (err_a + err_b) * INFLATE).any(dim=1)  # NaN bounds stay unproven
        n_unsure = int(unsure.sum())
        if n_unsure:
            self.slope_doubts_total += n_unsure
            if self.slope_doubts_total <= MAX_SLOPE_DOUBTS:
                mid_a, mid_b = mids()
                for i in unsure.nonzero()[:, 0].tolist():
                    self.slope_doubt_pairs.append((float(mid_a[i]), float(mid_b[i]), bool(differ[i])))

    def _finish(self, left: torch.Tensor, right: torch.Tensor, slopes: torch.Tensor | None,
                slope_errors: torch.Tensor | None, first: tuple | None = None) -> None:
        """Compare the batch's first piece with the previous batch's last, keep the last for the next batch,
        and count the batch.  ``first`` = (slope, error, midpoint) of the first piece when ``slopes`` holds
        only some pieces; by default ``slopes[0]``."""
        if slopes is not None:
            self.saw_slopes = True
            if first is None:
                first = (slopes[0], None if slope_errors is None else slope_errors[0], (left[0] + right[0]) * 0.5)
            if self.last_slope is not None:
                error, prev_error = first[1], self.last_slope_error
                errors = (prev_error[None], error[None]) if error is not None and prev_error is not None else (None, None)
                prev_mid = self.last_mid if self.last_mid is not None else first[2]
                self._compare_neighbours(self.last_slope[None], first[0][None], errors[0], errors[1],
                                         lambda: (prev_mid[None], first[2][None]))
            self.last_slope = slopes[-1].clone()
            if slope_errors is not None:
                self.last_slope_error = slope_errors[-1].clone()
                self.last_mid = ((left[-1] + right[-1]) * 0.5).clone()
        if self.keep:
            self.lefts.append(left.cpu())
        self.add_count(int(left.numel()), right[-1])

    def _inner_extremes(self, shortest: float, longest: float) -> None:
        self.inner_shortest = min(self.inner_shortest, shortest)
        self.inner_longest = max(self.inner_longest, longest)

    @property
    def linear_pieces(self) -> int | None:
        return self.slope_changes + 1 if self.saw_slopes else None


def compare_slopes(a: torch.Tensor, b: torch.Tensor, exact: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise: do output slope vectors (P, k) differ, and how many of the decisions are doubtful?

    ``exact`` (every slope computed exactly): bitwise comparison, never doubtful.  Otherwise each output
    coordinate is compared on its own scale: rows that differ bitwise but by at most ``SLOPE_RTOL`` of
    that coordinate's magnitude in every coordinate are counted as different and as doubtful (a genuine
    tiny kink and float rounding cannot be told apart there).  Returns (differ (P,) bool, doubtful 0-d).
    """
    bitwise = (a != b).any(dim=1)
    if exact:
        return bitwise, bitwise.new_zeros((), dtype=torch.int64)
    scale = torch.maximum(a.abs(), b.abs())
    within = ((a - b).abs() <= SLOPE_RTOL * scale).all(dim=1)
    return bitwise, (bitwise & within).sum()


def slopes_differ(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise test (P,) that output slope vectors (P, k) differ: ``|a-b|_inf > rtol * max(|a|_inf, |b|_inf)``.

    The output is continuous along the segment, so neighbouring pieces with equal slopes have the same
    affine map; comparing slopes is the robust test.
    """
    diff = (a - b).abs().amax(dim=1)
    scale = torch.maximum(a.abs().amax(dim=1), b.abs().amax(dim=1))
    return diff > SLOPE_RTOL * scale


def _count_near(x: torch.Tensor, tl: torch.Tensor, tr: torch.Tensor, tau: float,
                include_ends: bool = False) -> torch.Tensor:
    """Zeros strictly inside (tl, tr) but within tau of an end: decided by the tolerance, not exactly.
    With ``include_ends``, zeros exactly on an end count too (the cheap first-pass test)."""
    if include_ends:
        near = ((x >= tl) & (x <= tl + tau)) | ((x <= tr) & (x >= tr - tau))
    else:
        near = ((x > tl) & (x <= tl + tau)) | ((x < tr) & (x >= tr - tau))
    return near.sum()


@dataclass
class DEQKernel:
    """Triangular DEQ, one unit per step, with a forward-looking state.

    After unit t is decided on a piece, every later unit j's pre-activation (normalized by
    ``1 / (1 - W_jj)``) is ``GS[:, j] t + GC[:, j]`` with ``GS = sum_{i<=t} Wn[j, i] zs_i + (Un v)_j``.
    Step t reads column 0 (unit t), splits at its zero, and pushes ``zs_t = us * delta`` into the later
    columns with a rank-1 update, so the state shrinks as the walk goes deeper: traffic is O(regions)
    instead of O(regions * m).  ``out`` (k columns) accumulates the output slopes when linear pieces are
    counted.

    Tensors (device, float64): ``Wn`` (m, m) strictly lower, ``us0``/``uc0`` (m,), ``A`` (k, m) and
    ``out0`` (k,) = ``B v``; ``Un`` (m, d), ``bn`` (m,) for many-segment runs; forward-substitution order.
    """

    Wn: torch.Tensor
    us0: torch.Tensor
    uc0: torch.Tensor
    A: torch.Tensor
    out0: torch.Tensor
    Un: torch.Tensor
    bn: torch.Tensor
    #: count-only runs hand the last ``fused_levels`` units to the fused kernel (0: plain torch throughout)
    fused_levels: int = 0
    #: when a dict, the largest |us_t|, |uc_t| of every step t done in torch are recorded in it (the
    #: evidence of :func:`regioncount.line.exactness.deq_walk_proven_exact`)
    snapshots: dict | None = None

    @property
    def steps(self) -> int:
        return int(self.Wn.shape[0])

    def initial_state(self, t_low: float, t_high: float, track_linear: bool) -> tuple:
        dev, dt = self.Wn.device, self.Wn.dtype
        tl = torch.tensor([t_low], device=dev, dtype=dt)
        tr = torch.tensor([t_high], device=dev, dtype=dt)
        out = self.out0[None].clone() if track_linear else None
        return (tl, tr, self.us0[None].clone(), self.uc0[None].clone(), out)

    def run(self, t_low: float, t_high: float, sink: PieceSink, *, track_linear: bool,
            max_pieces: int, tau: float, segments: tuple[torch.Tensor, torch.Tensor] | None = None,
            track_ends: bool = False) -> None:
        """Walk [t_low, t_high] of the kernel's segment, or, with ``segments = (P, V)`` ((K, d) each,
        count-only), the K segments p_k + t v_k at once, counting into ``sink.segment_counts``.

        Without ``track_ends`` zeros near or on a piece end are only counted (``sink.suspicious``); with
        it every piece carries its ends' exact (c, s) and such zeros are classified exactly.
        """
        m = self.steps
        need_pieces = track_linear or sink.keep
        if segments is None:
            tl, tr, gs, gc, out = self.initial_state(t_low, t_high, track_linear)
            seg = None
        else:
            P0, V0 = segments
            K = P0.shape[0]
            tl = torch.full((K,), t_low, dtype=P0.dtype, device=P0.device)
            tr = torch.full((K,), t_high, dtype=P0.dtype, device=P0.device)
            gs, gc, out = V0 @ self.Un.T, P0 @ self.Un.T + self.bn, None
            seg = torch.arange(K, device=P0.device)
            need_pieces = False
        ones = torch.ones_like(tl)
        ends = torch.stack([-tl, ones, -tr, ones], 1) if track_ends else None  # exact (c, s): t = -c / s
        stack: list[Any] = [((tl, tr, ends, gs, gc, out, seg), 0)]
        while stack:
            item, t = stack.pop()
            sink.tick()
            tl, tr, ends, gs, gc, out, seg = item
            P = tl.shape[0]
            if self.fused_levels and ends is None and not need_pieces and t == m - min(self.fused_levels, m):
                self._count_fused(tl, tr, gs, gc, seg, t, tau, sink)
                continue
            if 2 * P > max_pieces and P > 1:
                half = P // 2
                stack.append((tuple(None if v is None else v[half:] for v in item), t))
                stack.append((tuple(None if v is None else v[:half] for v in item), t))
                continue
            us, uc = gs[:, 0], gc[:, 0]
            if self.snapshots is not None and P and t < m - UNMEASURED_LAST_LEVELS:
                self._record(t, us, uc)
            x = -uc / us
            inside = (x > tl + tau) & (x < tr - tau)
            if ends is None:
                sink.add_suspicious(_count_near(x, tl, tr, tau, include_ends=True))
            else:
                sink.add_near(_count_near(x, tl, tr, tau))
                sink.add_near(_count_end_slivers(x, uc, us, tl, tr, ends))
            n_split = int(inside.sum())
            last = t == m - 1
            if last and not need_pieces:
                if seg is None:
                    sink.add_count(P + n_split, tr[-1])
                else:
                    sink.add_segment_counts(seg, inside.long() + 1)
                continue
            left, right, parent, left_cut, right_cut = _split_once(tl, tr, x, inside, n_split)
            usp, ucp = us[parent], uc[parent]
            active = usp * ((left + right) * 0.5) + ucp > 0
            zs = torch.where(active, usp, 0.0)
            new_out = None
            if out is not None:
                new_out = out.index_select(0, parent)
                new_out.addr_(zs, self.A[:, t])
            if last:
                sink.add_pieces(left, right, new_out)
                continue
            new_ends = None if ends is None else ends.index_select(0, parent)
            if new_ends is not None and left_cut is not None:
                cut_cs = torch.stack([ucp, usp], 1)
                new_ends[:, :2] = torch.where(left_cut[:, None], cut_cs, new_ends[:, :2])
                new_ends[:, 2:] = torch.where(right_cut[:, None], cut_cs, new_ends[:, 2:])
            zc = torch.where(active, ucp, 0.0)
            column = self.Wn[t + 1:, t]
            new_gs = gs[:, 1:].index_select(0, parent).addr_(zs, column)
            new_gc = gc[:, 1:].index_select(0, parent).addr_(zc, column)
            stack.append(((left, right, new_ends, new_gs, new_gc, new_out, None if seg is None else seg[parent]),
                          t + 1))


    def _record(self, t: int, us: torch.Tensor, uc: torch.Tensor) -> None:
        """Record the (min, max) of us_t and uc_t (unit t's complete slope and intercept) of one batch."""
        # (min, max) pairs: two reductions per step, no |.| pass; combined once after the walk
        assert self.snapshots is not None
        self.snapshots.setdefault(t, []).append((us.aminmax(), uc.aminmax()))

    def measured_maxima(self) -> dict[int, np.ndarray]:
        """Per recorded step t: (max |us_t|, max |uc_t|) over all pieces, from the (min, max) records."""
        maxima = {}
        for t, pairs in (self.snapshots or {}).items():
            slopes = torch.stack([torch.stack([s.min, s.max]) for s, _ in pairs])
            intercepts = torch.stack([torch.stack([c.min, c.max]) for _, c in pairs])
            maxima[t] = np.array([float(slopes.abs().max()), float(intercepts.abs().max())])
        return maxima

    def _count_fused(self, tl: torch.Tensor, tr: torch.Tensor, gs: torch.Tensor, gc: torch.Tensor,
                     seg: torch.Tensor | None, t: int, tau: float, sink: PieceSink) -> None:
        """Count the leaves below a batch of pieces at level t with the fused kernel (count-only)."""
        from .fused_deq import subtree_counts

        counts, suspicious = subtree_counts(tl, tr, gs, gc, self.Wn[t:, t:], tau)
        sink.add_suspicious(suspicious.sum())
        if seg is None:
            sink.add_count(int(counts.sum()), tr[-1])
        else:
            sink.add_segment_counts(seg, counts.long())


def _split_once(tl: torch.Tensor, tr: torch.Tensor, x: torch.Tensor, inside: torch.Tensor, n_split: int):
    """Split each piece [tl, tr] (P,) at x where ``inside``; children in t order with their parent index,
    and masks of the children whose left (right) end is the new cut (None when nothing was split)."""
    P = tl.shape[0]
    if n_split == 0:
        return tl, tr, torch.arange(P, device=tl.device), None, None
    counts = inside.long() + 1
    parent = torch.repeat_interleave(torch.arange(P, device=tl.device), counts, output_size=P + n_split)
    first = torch.cumsum(counts, 0) - counts
    is_right_child = torch.zeros(P + n_split, dtype=torch.bool, device=tl.device)
    is_right_child[first[inside] + 1] = True
    xp = x[parent]
    right_cut = inside[parent] & ~is_right_child
    left = torch.where(is_right_child, xp, tl[parent])
    right = torch.where(right_cut, xp, tr[parent])
    return left, right, parent, is_right_child, right_cut


@dataclass
class FFNKernel:
    """Feed-forward net, one layer per step (``docs/algorithms.md``).

    The state of a piece is the affine map of the previous layer's output, ``H`` (P, 2, n): row 0 the
    slopes, row 1 the intercepts.  A layer computes ``Z = H W^T (+ b on the intercept row)`` with one
    GEMM, finds every unit's zero inside each piece, splits, reads the pattern at each child's midpoint
    and masks.  ``weights``/``biases`` are the hidden layers; ``readout`` (k, n_L) the output weights.
    """

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    readout: torch.Tensor
    p: torch.Tensor
    v: torch.Tensor

    def run(self, t_low: float, t_high: float, sink: PieceSink, *, track_linear: bool,
            max_pieces: int, tau: float, segments: tuple[torch.Tensor, torch.Tensor] | None = None,
            track_ends: bool = False, certify: list[LayerBound] | None = None, split_products: bool = False,
            double_products: bool = False) -> None:
        """Walk [t_low, t_high] of the kernel's segment, or, with ``segments = (P, V)`` ((K, d) each,
        count-only), the K segments p_k + t v_k at once, counting into ``sink.segment_counts``.
        ``track_ends`` as in :meth:`DEQKernel.run`.  ``certify`` (single segment, rounded arithmetic): the hidden
        layers' :class:`~regioncount.line.forward_error.LayerBound`; the walk then carries rigorous forward-error
        bounds and counts every decision they do not prove in ``sink.uncertain``.  ``split_products``: each
        layer product of a certified walk by :func:`~regioncount.line.forward_error.split_product` (three GEMMs, one
        final rounding: much tighter bounds for deep or wide nets) instead of one rounded GEMM;
        ``double_products``: each piece's maps kept in double-double precision
        (:func:`~regioncount.line.double_double.double_product`: twelve GEMMs, a propagated rounding of about
        ``2^-106``) for nets too deep for split products."""
        dev, dt = self.p.device, self.p.dtype
        bounds = certify
        L = len(self.weights)
        need_pieces = track_linear or sink.keep
        if segments is None:
            tl = torch.tensor([t_low], device=dev, dtype=dt)
            tr = torch.tensor([t_high], device=dev, dtype=dt)
            state = torch.stack([self.v, self.p])[None]  # (1, 2, d)
            if double_products:
                state = double_state(state)
            seg = None
        else:
            P0, V0 = segments
            K = P0.shape[0]
            tl = torch.full((K,), t_low, device=dev, dtype=dt)
            tr = torch.full((K,), t_high, device=dev, dtype=dt)
            state = torch.stack([V0, P0], 1)  # (K, 2, d)
            seg = torch.arange(K, device=dev)
            need_pieces = False
        if L == 0:
            if seg is not None:
                sink.add_segment_counts(seg, torch.ones_like(seg))
                return
            sink.add_pieces(tl, tr, (state[:, 0] @ self.readout.T) if track_linear else None)
            return
        ones = torch.ones_like(tl)
        ends_cs = torch.stack([-tl, ones, -tr, ones], 1) if track_ends else None  # each end t = -c / s
        # certify: per piece, the error bounds of the input rows (P, 2) and the radii of the two ends (P, 2)
        cert: tuple[torch.Tensor, torch.Tensor] | None = \
            (torch.zeros_like(tl)[:, None].repeat(1, 2), torch.zeros_like(tl)[:, None].repeat(1, 2)) \
            if certify is not None else None
        stack: list[Any] = [(tl, tr, ends_cs, state, 0, seg, cert)]
        slices: dict[int, WeightSlices] = {}
        while stack:
            tl, tr, ends_cs, h, layer, seg, cert = stack.pop()
            sink.tick()
            if isinstance(h, tuple):  # deferred children: gather and mask their parents' maps now
                parent_z, parent_index, parent_cert = h
                h, err = _masked_children(parent_z, parent_index, tl, tr, parent_cert, sink)
                if cert is not None:
                    assert err is not None
                    cert = (err, cert[1])
            P = tl.shape[0]
            if cert is None:
                z = (h.reshape(2 * P, -1) @ self.weights[layer].T).view(P, 2, -1)
                z[:, 1] += self.biases[layer]
                zeros = _plain_zeros(z[:, 0], z[:, 1], tl, tr, tau)
            else:
                assert bounds is not None
                if double_products:
                    if layer not in slices:
                        slices[layer] = WeightSlices.of(self.weights[layer])
                    z, rounding = double_product(h, self.weights[layer], self.biases[layer], bounds[layer],
                                                 slices[layer])
                else:
                    product = split_product if split_products else rounded_product
                    z, rounding = product(h, self.weights[layer], self.biases[layer], bounds[layer])
                zeros = _certified_zeros(z[:, 0], z[:, 1], tl, tr, tau, cert, bounds[layer], rounding)
            zs, zc = z[:, 0], z[:, 1]
            counts, kept, units = zeros.counts, zeros.kept, zeros.units
            n_children = P + int(counts.sum())
            # a batch holds at most max_pieces * 64 state values: fewer pieces when the layer is wide
            if n_children * max(zs.shape[1], 1) > max_pieces * 64 and P > 1:
                # halve by children, so each half fits; the leftmost half is processed first
                cut = int(torch.searchsorted(torch.cumsum(counts + 1, 0), n_children // 2).clamp(1, P - 1))
                for part in (slice(cut, None), slice(None, cut)):
                    stack.append((tl[part], tr[part], None if ends_cs is None else ends_cs[part], h[part], layer,
                                  None if seg is None else seg[part],
                                  None if cert is None else (cert[0][part], cert[1][part])))
                continue
            # proofs and flags are recorded once per batch, after the halving decision
            parent_cert, zero_radii = _record_layer(sink, zeros, zs, zc, tl, tr, ends_cs, cert)
            last = layer == L - 1
            if last and not need_pieces:
                if seg is None:
                    sink.add_count(n_children, tr[-1])
                else:
                    sink.add_segment_counts(seg, counts + 1)
                continue
            if cert is None:  # tracked ends carry their exact (c, s)
                kept_cs = None if ends_cs is None else torch.stack([zc.gather(1, units), zs.gather(1, units)], 2)
                left, right, parent, child_cs = _split_many(tl, tr, kept, counts, n_children, ends_cs, kept_cs)
                child_radii = None
            else:  # a certified walk (never end-tracked): each child's end radii, its parent's or its zero's
                assert ends_cs is None
                kept_radii = zero_radii[:, :, None] if zero_radii is not None else kept.new_zeros(kept.shape + (1,))
                left, right, parent, child_radii = _split_many(tl, tr, kept, counts, n_children, cert[1], kept_radii)
                child_cs = None
            # children in chunks whose (chunk, 2, n) maps stay within the batch memory, even when one wide
            # layer splits a single piece into many children
            chunk = max(1, (max_pieces * 64) // max(z.shape[2], 1))
            parts = [slice(start, start + chunk) for start in range(0, n_children, chunk)]
            if last:
                flips = track_linear and ends_cs is None and n_children >= 4 * P and zeros.all_kept()
                self._emit_last(z, left, right, parent, zeros, parent_cert, sink, track_linear, flips, chunk)
            else:
                for part in reversed(parts):  # leftmost chunk on top of the stack
                    stack.append((left[part], right[part], None if child_cs is None else child_cs[part],
                                  (z, parent[part], parent_cert), layer + 1, None if seg is None else seg[parent[part]],
                                  None if child_radii is None else (None, child_radii[part])))


    def _emit_last(self, z: torch.Tensor, left: torch.Tensor, right: torch.Tensor, parent: torch.Tensor,
                   zeros: _LayerZeros, parent_cert: tuple | None, sink: PieceSink, track_linear: bool,
                   flips: bool, chunk: int) -> None:
        """The last layer's children (in increasing t) into the sink: by unit flips when ``flips``, their
        ends alone without slopes, else every child's map in chunks of ``chunk``."""
        if flips:
            # each child differs from its left neighbour by the one unit whose zero separates them: slopes
            # only for every parent's first and last child, the changes in between from the flips
            self._last_layer_by_flips(z, left, right, parent, zeros.counts, zeros.units, parent_cert, sink,
                                      max(1, chunk // 2))
            return
        for start in range(0, left.shape[0], chunk):
            part = slice(start, start + chunk)
            if not track_linear:  # breakpoints kept, no slopes: the children's ends are all it takes
                sink.add_pieces(left[part], right[part], None)
                continue
            zp, err = _masked_children(z, parent[part], left[part], right[part], parent_cert, sink)
            slope_errors = None if err is None else output_slope_errors(zp[:, 0], _slope_error(zp, err), self.readout)
            sink.add_pieces(left[part], right[part], zp[:, 0] @ self.readout.T, slope_errors)

    def _last_layer_by_flips(self, z: torch.Tensor, left: torch.Tensor, right: torch.Tensor, parent: torch.Tensor,
                             counts: torch.Tensor, units: torch.Tensor, parent_cert: tuple | None,
                             sink: PieceSink, group: int) -> None:
        """The last layer's pieces with linear pieces, in O(children + parents x width) instead of
        O(children x width).  Inside one parent piece every other unit keeps its sign (each zero is a kept
        breakpoint: none was merged, none lies within the tolerance of an end), so neighbouring children
        differ by the unit j whose zero separates them: their output slopes differ by R[:, j] |s_j| with
        s_j != 0 (a proven sign change), which is zero exactly when the readout column R[:, j] is.  Only each
        parent's first and last child get their slopes computed (with their error bounds in a certified
        walk), for the comparisons across parents and batches; ``group`` parents at a time, so their (2 group, 2,
        n) maps stay within the batch memory."""
        first = torch.cumsum(counts + 1, 0) - (counts + 1)
        live = self.readout.ne(0).any(0)  # (n,): units whose flip changes the output slope
        P = counts.shape[0]
        for g in range(0, P, group):
            cnt = counts[g:g + group]
            ends = torch.stack([first[g:g + group], first[g:g + group] + cnt], 1).reshape(-1)  # first, last child
            zp, err = _masked_children(z, parent[ends], left[ends], right[ends], parent_cert, sink)
            slopes = zp[:, 0] @ self.readout.T
            errors = None if err is None else output_slope_errors(zp[:, 0], _slope_error(zp, err), self.readout)
            block = units[g:g + group]
            flips = block[torch.arange(block.shape[1], device=block.device)[None] < cnt[:, None]]
            mids = (left[ends] + right[ends]) * 0.5
            children = slice(int(ends[0]), int(ends[-1]) + 1)
            sink.add_pieces_by_flips(left[children], right[children], slopes[0::2], slopes[1::2],
                                     None if errors is None else errors[0::2],
                                     None if errors is None else errors[1::2], mids[0::2], mids[1::2],
                                     int(live[flips].sum()))


@dataclass
class _LayerZeros:
    """The zeros of one layer's units inside a batch of pieces: distinct sorted zeros per piece (``counts``,
    ``kept`` (P, c), their ``units``), how many were valid before merging (``n_valid``), flagged merges
    (``equal_distinct``), zeros within the tolerance of a piece's end (``near_ends``), and the walk's own
    data: all zeros ``x`` (P, n) for a plain walk; the sign screen and its scales for a certified one."""

    counts: torch.Tensor
    kept: torch.Tensor
    units: torch.Tensor
    n_valid: torch.Tensor
    equal_distinct: torch.Tensor
    near_ends: torch.Tensor
    x: torch.Tensor | None = None
    screen: Any = None
    valid_k: torch.Tensor | None = None
    scale: torch.Tensor | None = None
    rounding: ProductRounding | None = None
    bound: LayerBound | None = None

    def all_kept(self) -> bool:
        """No zero merged with another or lying near an end: each kept zero is one unit's sign change."""
        return int(self.near_ends) == 0 and int(self.equal_distinct) == 0 and bool((self.counts == self.n_valid).all())


def _plain_zeros(zs: torch.Tensor, zc: torch.Tensor, tl: torch.Tensor, tr: torch.Tensor, tau: float) -> _LayerZeros:
    """Every unit's zero -c / s, the valid ones (more than tau inside their piece) sorted and merged."""
    lo, hi = tl[:, None], tr[:, None]
    x = torch.div(zc, zs).neg_()
    valid = (x > lo + tau) & (x < hi - tau)
    n_valid = valid.sum(1)
    counts, kept, units, equal_distinct = _dedupe_sorted(*_sorted_zeros(x, valid, n_valid), tl, tau, zs, zc)
    near_ends = ((x >= lo) & (x <= hi)).sum() - n_valid.sum()  # zeros within tau of an end
    return _LayerZeros(counts, kept, units, n_valid, equal_distinct, near_ends, x=x)


def _certified_zeros(zs: torch.Tensor, zc: torch.Tensor, tl: torch.Tensor, tr: torch.Tensor, tau: float,
                     cert: tuple[torch.Tensor, torch.Tensor], bound: LayerBound, rounding: ProductRounding
                     ) -> _LayerZeros:
    """A certified walk's zeros: a screen proves most units sign-constant on the piece in a few full passes;
    the zeros are then computed, tested and sorted on the screened entries only."""
    P = zs.shape[0]
    scale = input_scale(cert[0], rounding)
    screen = sign_screen(zs, zc, scale, rounding, bound, tl, tr, cert[1][:, 0], cert[1][:, 1])
    zs_k, zc_k = zs[screen.rows, screen.cols], zc[screen.rows, screen.cols]
    x_k = torch.div(zc_k, zs_k).neg_()
    valid_k = (x_k > tl[screen.rows] + tau) & (x_k < tr[screen.rows] - tau)
    n_valid = torch.bincount(screen.rows[valid_k], minlength=P)
    counts, kept, units, equal_distinct = _dedupe_sorted(
        *_sorted_zeros_sparse(screen.rows[valid_k], screen.cols[valid_k], x_k[valid_k], n_valid), tl, tau, zs, zc)
    near_ends = ((x_k >= tl[screen.rows]) & (x_k <= tr[screen.rows]) & ~valid_k).sum()
    return _LayerZeros(counts, kept, units, n_valid, equal_distinct, near_ends, screen=screen, valid_k=valid_k,
                       scale=scale, rounding=rounding, bound=bound)


def _record_layer(sink: PieceSink, zeros: _LayerZeros, zs: torch.Tensor, zc: torch.Tensor, tl: torch.Tensor,
                  tr: torch.Tensor, ends_cs: torch.Tensor | None, cert: tuple | None
                  ) -> tuple[tuple | None, torch.Tensor | None]:
    """Record a layer's decisions in the sink: for a certified walk the unproven signs and gaps (returns the
    parents' certification data and the kept zeros' radii); for a plain walk the tolerance flags."""
    sink.add_near(zeros.equal_distinct)
    counts, kept, units, n_valid = zeros.counts, zeros.kept, zeros.units, zeros.n_valid
    if zeros.screen is not None:
        assert cert is not None and zeros.bound is not None and zeros.scale is not None
        assert zeros.rounding is not None and zeros.valid_k is not None
        bound, scale, rounding = zeros.bound, zeros.scale, zeros.rounding
        # valid zeros are proven by the gap test; merged ones (n_valid - kept) are never proven
        sink.add_uncertain(uncertain_signs(zeros.screen, zeros.valid_k, zs, scale, rounding, bound)
                           + n_valid.sum() - counts.sum())
        zero_radii = None
        if kept.shape[1]:
            norms = bound.row_norms[units]
            zero_radii = zero_radius(kept, zs.gather(1, units), scale[:, 0, None] * norms,
                                     scale[:, 1, None] * norms + rounding.bias_coeff * bound.bias_abs[units])
            rl, rr = cert[1][:, 0], cert[1][:, 1]
            cut_points = torch.cat([tl[:, None], kept, torch.full_like(tl[:, None], torch.inf)], 1)
            cut_points.scatter_(1, (counts + 1)[:, None], tr[:, None])
            radii = torch.cat([rl[:, None], zero_radii, torch.zeros_like(rl[:, None])], 1)
            radii.scatter_(1, (counts + 1)[:, None], rr[:, None])
            sink.add_uncertain(uncertain_gaps(cut_points, radii, counts))
        return (scale, rounding, cert[0], bound), zero_radii
    x = zeros.x
    assert x is not None
    lo, hi = tl[:, None], tr[:, None]
    if ends_cs is not None:
        sink.add_near(((x > lo) & (x < hi)).sum() - n_valid.sum())
        sink.add_near(_count_end_slivers(x, zc, zs, tl, tr, ends_cs))
    else:  # (a certified walk decides by its proof, not by this flag)
        sink.add_suspicious(((x >= lo) & (x <= hi)).sum() - n_valid.sum())
    return None, None


def _masked_children(z: torch.Tensor, parent: torch.Tensor, left: torch.Tensor, right: torch.Tensor,
                     parent_cert: tuple | None = None, sink: PieceSink | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The children's layer maps (C, 2, n): their parents' pre-activation maps ``z[parent]`` with the units
    inactive at each child's midpoint zeroed (the ReLU on that child).

    With the parents' certification data ``(scale, rounding, err, bound)`` (:mod:`regioncount.line.forward_error`),
    also the children's row error norms (C, 2), and the midpoint activations whose sign is not certain are
    counted in ``sink``; otherwise the second result is None.
    """
    zp = z.index_select(0, parent)
    mid = (left + right) * 0.5
    values = torch.addcmul(zp[:, 1], zp[:, 0], mid[:, None])
    active = values > 0
    zp *= active[:, None, :]
    err = None
    if parent_cert is not None:
        scale, rounding, parent_err, bound = parent_cert
        assert sink is not None
        scale, h_norms = scale.index_select(0, parent), rounding.h_norms.index_select(0, parent)
        sink.add_uncertain(uncertain_midpoints(values, scale, h_norms, bound, rounding.bias_coeff, mid))
        err = masked_error(parent_err.index_select(0, parent), rounding.masked.index_select(0, parent),
                           rounding.child_coeff, safe_norm(zp, 2) if rounding.child_coeff else None, bound)
    return zp, err


def _slope_error(zp: torch.Tensor, err: torch.Tensor) -> torch.Tensor:
    """(C,): bound on the error of the children's float slopes ``zp[:, 0]`` from their propagated error
    ``err[:, 0]``, plus, for double-double maps (C, 4, n), the ``lo`` slopes the float row leaves out."""
    if zp.shape[1] == 2:
        return err[:, 0]
    return (err[:, 0] + safe_norm(zp[:, 2], 1)) * INFLATE


_VELTKAMP = 134217729.0  # 2^27 + 1


def _two_product(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Error-free product (Dekker): a * b = hi + lo exactly, hi = fl(a * b); canonical, so two products
    are equal as real numbers iff their (hi, lo) pairs are equal.  Needs |a|, |b| < 1e290."""
    def split(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = _VELTKAMP * v
        high = c - (c - v)
        return high, v - high

    hi = a * b
    a1, a2 = split(a)
    b1, b2 = split(b)
    lo = ((a1 * b1 - hi) + a1 * b2 + a2 * b1) + a2 * b2
    return hi, lo


def _count_float_equal_distinct(zs: torch.Tensor, zc: torch.Tensor, order: torch.Tensor, xs: torch.Tensor,
                                finite: torch.Tensor) -> torch.Tensor:
    """Among neighbouring sorted zeros that are bitwise equal in float64, count those whose exact values
    -zc/zs differ (zc1 * zs2 != zc2 * zs1, decided exactly): slivers float64 cannot represent."""
    equal = finite[:, 1:] & (xs[:, 1:] == xs[:, :-1])
    if not bool(equal.any()):
        return equal.sum()
    rows, cols = equal.nonzero(as_tuple=True)
    first, second = order[rows, cols], order[rows, cols + 1]
    return (_exact_order(zc[rows, first], zs[rows, first], zc[rows, second], zs[rows, second]) != 0).sum()


def _exact_order(c1: torch.Tensor, s1: torch.Tensor, c2: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """(N,) int: the exact sign of (-c1/s1) - (-c2/s2), i.e. of (c2 s1 - c1 s2) / (s1 s2).

    Products are error-free (hi + lo); rounding is monotone, so hi parts that differ order the products,
    and equal hi parts leave the (exact) lo parts to decide.  Values above 1e290 count as different.
    """
    h1, l1 = _two_product(c1, s2)
    h2, l2 = _two_product(c2, s1)
    diff = torch.where(h1 != h2, torch.sign(h2 - h1), torch.sign(l2 - l1))
    huge = torch.maximum(torch.maximum(c1.abs(), c2.abs()), torch.maximum(s1.abs(), s2.abs())) > 1e290
    order = (diff * torch.sign(s1) * torch.sign(s2)).to(torch.int64)
    return torch.where(huge, torch.ones_like(order), order)


def _count_end_slivers(x: torch.Tensor, zc: torch.Tensor, zs: torch.Tensor, tl: torch.Tensor, tr: torch.Tensor,
                       ends: torch.Tensor) -> torch.Tensor:
    """Zeros bitwise equal to a piece end but exactly inside the piece: slivers below float64 resolution.

    ``x``, ``zc``, ``zs``: (P, n) or (P,) zeros and their pre-activation intercepts/slopes; ``ends``:
    (P, 4) = (c, s) of the left end and (c, s) of the right end, each end being exactly -c/s.  A zero on
    the left end counts when it is exactly right of it, one on the right end when exactly left of it, so
    a zero seen from both neighbouring pieces is counted once.
    """
    if x.dim() == 1:
        x, zc, zs = x[:, None], zc[:, None], zs[:, None]
    total = x.new_zeros((), dtype=torch.int64)
    for side, end, inward in ((0, tl, 1), (2, tr, -1)):
        hit = x == end[:, None]
        if bool(hit.any()):
            rows, cols = hit.nonzero(as_tuple=True)
            order = _exact_order(zc[rows, cols], zs[rows, cols], ends[rows, side], ends[rows, side + 1])
            total = total + (order == inward).sum()
    return total


def _sorted_zeros(x: torch.Tensor, valid: torch.Tensor, n_valid: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each piece's valid zeros in increasing order: (n_valid (P,), values (P, c) padded with +inf, their
    units (P, c)), from the dense zeros ``x`` (P, n) and mask ``valid`` (P, n) (``n_valid = valid.sum(1)``)."""
    P = x.shape[0]
    c_max = int(n_valid.max()) if P else 0
    if c_max == 0:
        return n_valid, x.new_empty((P, 0)), torch.zeros(P, 0, dtype=torch.long, device=x.device)
    xs = torch.where(valid, x, torch.inf)
    if c_max == 1:
        value, unit = xs.min(1, keepdim=True)
        return n_valid, value, unit
    if c_max <= 16:
        xs, order = torch.topk(xs, c_max, dim=1, largest=False, sorted=True)
        return n_valid, xs, order
    xs, order = torch.sort(xs, dim=1)
    return n_valid, xs[:, :c_max], order[:, :c_max]


def _sorted_zeros_sparse(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n_valid: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """As :func:`_sorted_zeros`, from the valid zeros listed as entries: piece ``rows`` (K,, non-decreasing),
    unit ``cols`` (K,), value ``values`` (K,); ``n_valid`` (P,) the entries per piece."""
    P = n_valid.shape[0]
    c_max = int(n_valid.max()) if P else 0
    if c_max == 0:
        return n_valid, values.new_empty((P, 0)), torch.zeros(P, 0, dtype=torch.long, device=values.device)
    first = torch.cumsum(n_valid, 0) - n_valid
    position = torch.arange(rows.shape[0], device=rows.device) - first[rows]
    xs = torch.full((P, c_max), torch.inf, dtype=values.dtype, device=values.device)
    xs[rows, position] = values
    units = torch.zeros((P, c_max), dtype=torch.long, device=values.device)
    units[rows, position] = cols
    if c_max == 1:
        return n_valid, xs, units
    xs, order = torch.sort(xs, dim=1, stable=True)
    return n_valid, xs, units.gather(1, order)


def _dedupe_sorted(n_valid: torch.Tensor, xs: torch.Tensor, order: torch.Tensor, tl: torch.Tensor, tau: float,
                   zs: torch.Tensor, zc: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sorted distinct zeros per piece, from each piece's sorted valid zeros ``xs`` (P, c) (+inf padded) and
    their units ``order`` (P, c): returns counts (P,), a (P, c_max) matrix padded with +inf, the unit of each
    kept zero (P, c_max), and the number of flagged zeros (0-d tensor: tolerance merges and float-equal but
    exactly distinct zeros).

    Zeros of one layer that are equal in float64 are one breakpoint; when their exact values differ (a
    sliver below float64 resolution, decided exactly with error-free products) it is flagged.
    """
    P, c_max = xs.shape
    none = xs.new_zeros((), dtype=torch.int64)
    if c_max <= 1:  # valid zeros lie more than tau inside their piece: nothing to merge
        return n_valid, xs, order, none
    prev = torch.cat([tl[:, None], xs[:, :-1]], 1)
    finite = torch.isfinite(xs)
    flagged = _count_float_equal_distinct(zs, zc, order, xs, finite)
    keep = finite & (xs > prev + tau)
    # a zero can also be swallowed by a kept zero two places back in a chain; the rule is stated
    # against the previous sorted zero, which is what this implements
    flagged = flagged + (finite & ~keep & (xs != prev)).sum()
    counts = keep.sum(1)
    c_max = int(counts.max())
    if bool((counts == n_valid).all()):
        return counts, xs[:, :c_max], order[:, :c_max], flagged
    position = torch.where(keep, torch.cumsum(keep, 1) - 1, c_max)
    packed = torch.full((P, c_max + 1), torch.inf, dtype=xs.dtype, device=xs.device)
    packed.scatter_(1, position, torch.where(keep, xs, torch.inf))
    units = torch.zeros((P, c_max + 1), dtype=torch.long, device=xs.device)
    units.scatter_(1, position, order)
    return counts, packed[:, :c_max], units[:, :c_max], flagged


def _split_many(tl: torch.Tensor, tr: torch.Tensor, kept: torch.Tensor, counts: torch.Tensor,
                n_children: int, end_attrs: torch.Tensor | None, kept_attrs: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Split piece p at its ``counts[p]`` sorted zeros ``kept[p, :counts[p]]``; children in t order.

    Each cut point may carry k attributes that the children inherit at their ends: ``end_attrs`` (P, 2k)
    for each piece's left and right end, ``kept_attrs`` (P, c_max, k) for the zeros (both None: none).  The
    exact (c, s) of tracked ends (k = 2) and the error radii of a certified walk (k = 1) travel this way.
    Returns the children's left, right ends, parent index and their ends' attributes (P', 2k) or None.
    """
    P = tl.shape[0]
    if kept.shape[1] == 0:
        return tl, tr, torch.arange(P, device=tl.device), end_attrs
    ends = torch.cat([tl[:, None], kept, torch.full_like(tl[:, None], torch.inf)], 1)  # (P, c_max + 2)
    ends.scatter_(1, (counts + 1)[:, None], tr[:, None])
    sizes = counts + 1
    parent = torch.repeat_interleave(torch.arange(P, device=tl.device), sizes, output_size=n_children)
    first = torch.cumsum(sizes, 0) - sizes
    k = torch.arange(n_children, device=tl.device) - first[parent]
    child_attrs = None
    if end_attrs is not None:
        assert kept_attrs is not None
        width = kept_attrs.shape[2]
        left, right = end_attrs[:, None, :width], end_attrs[:, None, width:]
        attrs = torch.cat([left, kept_attrs, right], 1)  # (P, c_max + 2, k)
        attrs.scatter_(1, (counts + 1)[:, None, None].expand(-1, 1, width), right)
        child_attrs = torch.cat([attrs[parent, k], attrs[parent, k + 1]], 1)
    return ends[parent, k], ends[parent, k + 1], parent, child_attrs
