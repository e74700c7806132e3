"""Where a 1-D walk's final pieces go, in increasing t: the counts, linear pieces (slope comparisons), kept
breakpoints, region lengths, limits and the decisions left doubtful (``docs/algorithms.md``).

The walks and their tolerance rule are described in :mod:`regioncount.line.ffn_walk`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from ..core.errors import CostLimitError
from ..core.limits import Deadline
from ..core.tolerances import MERGE_RATIO as TOLERANCE_RATIO
from ..core.tolerances import SLOPE_RTOL
from .forward_error import (
    INFLATE,
)

if TYPE_CHECKING:
    from .envelope import ColumnEnvelope

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
                 stop_when_unproven: bool = False, deadline: Deadline | None = None,
                 envelope: ColumnEnvelope | None = None) -> None:
        self.t_low, self.span = t_low, t_high - t_low
        #: the output reduced to pixel columns as the pieces arrive (plots); emptied for this walk
        self.envelope = envelope
        if envelope is not None:
            envelope.reset()
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
                f"more regions than the limit of {self.max_regions:,}; raise `max_regions` to count further"
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
        if slopes is not None and self.envelope is not None:
            self.envelope.add(left, right, slopes)
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
        assert self.envelope is None, "a walk feeding an envelope emits every piece's slopes"
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
