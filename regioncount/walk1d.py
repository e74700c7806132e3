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

Patterns use the strict convention of algorithms.md §0: a unit is active iff its pre-activation is > 0,
read at the midpoint of the piece.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .errors import CostLimitError

TOLERANCE_RATIO = 2.0**-46
SLOPE_RTOL = 1e-9


def merge_tolerance(t_low: float, t_high: float) -> float:
    """The absolute merge tolerance ``tau`` for a segment parameter range [t_low, t_high]."""
    return TOLERANCE_RATIO * max(abs(t_low), abs(t_high), t_high - t_low)


class PieceSink:
    """Receives the final pieces in increasing t and accumulates counts, slopes and breakpoints.

    ``add_count`` takes a batch known only by its size (count-only mode); ``add_pieces`` takes the
    pieces themselves: left/right ends (P,) and, for linear pieces, the output slopes (P, k).
    """

    def __init__(self, t_low: float, t_high: float, keep_breakpoints: bool,
                 progress: Callable[[float], None] | None, max_regions: int | None,
                 max_kept_bytes: int | None) -> None:
        self.t_low, self.span = t_low, t_high - t_low
        self.keep = keep_breakpoints
        self.progress = progress
        self.max_regions = max_regions
        self.max_kept_bytes = max_kept_bytes
        self.regions = 0
        self.slope_changes = 0
        self.last_slope: torch.Tensor | None = None
        self.saw_slopes = False
        self.lefts: list[torch.Tensor] = []
        self.rights: list[torch.Tensor] = []
        self.shortest = float("inf")
        self.longest = 0.0
        self._near: list[torch.Tensor] = []
        self.segment_counts: torch.Tensor | None = None

    def add_near(self, count: torch.Tensor) -> None:
        """Record tolerance-decided zeros (a 0-d tensor, kept on its device until the end: no sync)."""
        self._near.append(count)
        if len(self._near) >= 1024:
            self._near = [torch.stack(self._near).sum()]

    @property
    def near_coincident(self) -> int:
        return int(torch.stack(self._near).sum()) if self._near else 0

    def _advance(self, count: int, right_end: torch.Tensor | float | None) -> None:
        self.regions += count
        if self.max_regions is not None and self.regions > self.max_regions:
            raise CostLimitError(
                f"more than {self.max_regions:,} regions (the limit); raise max_regions to count further"
            )
        if self.keep and self.max_kept_bytes is not None and 16 * self.regions > self.max_kept_bytes:
            raise CostLimitError(
                f"keeping the breakpoints of more than {self.regions:,} regions needs over "
                f"{16 * self.regions / 2**30:.2f} GiB, above the memory limit of "
                f"{self.max_kept_bytes / 2**30:.2f} GiB; count without keeping breakpoints"
            )
        if self.progress is not None and right_end is not None:
            self.progress(min(1.0, (float(right_end) - self.t_low) / self.span))

    def add_count(self, count: int, right_end: torch.Tensor | None) -> None:
        self._advance(count, right_end)

    def add_segment_counts(self, seg: torch.Tensor, per_piece: torch.Tensor) -> None:
        """Many-segment mode: piece i of this batch contributes ``per_piece[i]`` regions to segment seg[i]."""
        self.segment_counts.index_add_(0, seg, per_piece)
        self._advance(int(per_piece.sum()), None)

    def add_pieces(self, left: torch.Tensor, right: torch.Tensor, slopes: torch.Tensor | None) -> None:
        if left.numel() == 0:
            return
        lengths = right - left
        self.shortest = min(self.shortest, float(lengths.min()))
        self.longest = max(self.longest, float(lengths.max()))
        if slopes is not None:
            self.saw_slopes = True
            if self.last_slope is not None:
                slopes_with_prev = torch.cat([self.last_slope[None], slopes])
            else:
                slopes_with_prev = slopes
            self.slope_changes += int(slopes_differ(slopes_with_prev[1:], slopes_with_prev[:-1]).sum())
            self.last_slope = slopes[-1].clone()
        if self.keep:
            self.lefts.append(left.cpu())
            self.rights.append(right.cpu())
        self._advance(int(left.numel()), right[-1])

    @property
    def linear_pieces(self) -> int | None:
        return self.slope_changes + 1 if self.saw_slopes else None


def slopes_differ(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise test (P,) that output slope vectors (P, k) differ: ``|a-b|_inf > rtol * max(|a|_inf, |b|_inf)``.

    The output is continuous along the segment, so neighbouring pieces with equal slopes have the same
    affine map; comparing slopes is the robust test.
    """
    diff = (a - b).abs().amax(dim=1)
    scale = torch.maximum(a.abs().amax(dim=1), b.abs().amax(dim=1))
    return diff > SLOPE_RTOL * scale


def _count_near(x: torch.Tensor, tl: torch.Tensor, tr: torch.Tensor, tau: float) -> torch.Tensor:
    """Zeros strictly inside (tl, tr) but within tau of an end: decided by the tolerance, not exactly."""
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
            max_pieces: int, tau: float, segments: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        """Walk [t_low, t_high] of the kernel's segment, or, with ``segments = (P, V)`` ((K, d) each,
        count-only), the K segments p_k + t v_k at once, counting into ``sink.segment_counts``."""
        m = self.steps
        need_pieces = track_linear or sink.keep
        if segments is None:
            stack = [((*self.initial_state(t_low, t_high, track_linear), None), 0)]
        else:
            P0, V0 = segments
            K = P0.shape[0]
            tl = torch.full((K,), t_low, dtype=P0.dtype, device=P0.device)
            tr = torch.full((K,), t_high, dtype=P0.dtype, device=P0.device)
            stack = [((tl, tr, V0 @ self.Un.T, P0 @ self.Un.T + self.bn, None,
                       torch.arange(K, device=P0.device)), 0)]
            need_pieces = False
        while stack:
            (tl, tr, gs, gc, out, seg), t = stack.pop()
            P = tl.shape[0]
            if 2 * P > max_pieces and P > 1:
                half = P // 2
                hi = (tl[half:], tr[half:], gs[half:], gc[half:], None if out is None else out[half:],
                      None if seg is None else seg[half:])
                lo = (tl[:half], tr[:half], gs[:half], gc[:half], None if out is None else out[:half],
                      None if seg is None else seg[:half])
                stack.append((hi, t))
                stack.append((lo, t))
                continue
            us, uc = gs[:, 0], gc[:, 0]
            x = -uc / us
            inside = (x > tl + tau) & (x < tr - tau)
            if tau > 0:
                sink.add_near(_count_near(x, tl, tr, tau))
            n_split = int(inside.sum())
            last = t == m - 1
            if last and not need_pieces:
                if seg is None:
                    sink.add_count(P + n_split, tr[-1])
                else:
                    sink.add_segment_counts(seg, inside.long() + 1)
                continue
            left, right, parent = _split_once(tl, tr, x, inside, n_split)
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
            zc = torch.where(active, ucp, 0.0)
            column = self.Wn[t + 1:, t]
            new_gs = gs[:, 1:].index_select(0, parent).addr_(zs, column)
            new_gc = gc[:, 1:].index_select(0, parent).addr_(zc, column)
            stack.append(((left, right, new_gs, new_gc, new_out, None if seg is None else seg[parent]), t + 1))


def _split_once(tl: torch.Tensor, tr: torch.Tensor, x: torch.Tensor, inside: torch.Tensor,
                n_split: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split each piece [tl, tr] (P,) at x where ``inside``; children in t order with their parent index."""
    P = tl.shape[0]
    if n_split == 0:
        return tl, tr, torch.arange(P, device=tl.device)
    counts = inside.long() + 1
    parent = torch.repeat_interleave(torch.arange(P, device=tl.device), counts, output_size=P + n_split)
    first = torch.cumsum(counts, 0) - counts
    is_right_child = torch.zeros(P + n_split, dtype=torch.bool, device=tl.device)
    is_right_child[first[inside] + 1] = True
    xp = x[parent]
    left = torch.where(is_right_child, xp, tl[parent])
    right = torch.where(inside[parent] & ~is_right_child, xp, tr[parent])
    return left, right, parent


@dataclass
class FFNKernel:
    """Feed-forward net, one layer per step (algorithms.md §1.2).

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
            max_pieces: int, tau: float, segments: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        """Walk [t_low, t_high] of the kernel's segment, or, with ``segments = (P, V)`` ((K, d) each,
        count-only), the K segments p_k + t v_k at once, counting into ``sink.segment_counts``."""
        dev, dt = self.p.device, self.p.dtype
        L = len(self.weights)
        need_pieces = track_linear or sink.keep
        if segments is None:
            tl = torch.tensor([t_low], device=dev, dtype=dt)
            tr = torch.tensor([t_high], device=dev, dtype=dt)
            state = torch.stack([self.v, self.p])[None]  # (1, 2, d)
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
        stack = [(tl, tr, state, 0, seg)]
        while stack:
            tl, tr, h, layer, seg = stack.pop()
            P = tl.shape[0]
            z = (h.reshape(2 * P, -1) @ self.weights[layer].T).view(P, 2, -1)
            z[:, 1] += self.biases[layer]
            zs, zc = z[:, 0], z[:, 1]
            x = torch.div(zc, zs).neg_()
            lo, hi = tl[:, None], tr[:, None]
            valid = (x > lo + tau) & (x < hi - tau)
            if tau > 0:
                sink.add_near(((x > lo) & (x < hi)).sum() - valid.sum())
            counts, kept = _dedupe_crossings(x, valid, tl, tau, sink, zs, zc)
            n_children = P + int(counts.sum())
            # a batch holds at most max_pieces * 64 state values: fewer pieces when the layer is wide
            if n_children * max(zs.shape[1], 1) > max_pieces * 64 and P > 1:
                # halve by children, so each half fits; the leftmost half is processed first
                cut = int(torch.searchsorted(torch.cumsum(counts + 1, 0), n_children // 2).clamp(1, P - 1))
                stack.append((tl[cut:], tr[cut:], h[cut:], layer, None if seg is None else seg[cut:]))
                stack.append((tl[:cut], tr[:cut], h[:cut], layer, None if seg is None else seg[:cut]))
                continue
            last = layer == L - 1
            if last and not need_pieces:
                if seg is None:
                    sink.add_count(n_children, tr[-1])
                else:
                    sink.add_segment_counts(seg, counts + 1)
                continue
            left, right, parent = _split_many(tl, tr, kept, counts, n_children)
            zp = z.index_select(0, parent)
            mid = (left + right) * 0.5
            active = zp[:, 0] * mid[:, None] + zp[:, 1] > 0
            zp *= active[:, None, :]
            if last:
                sink.add_pieces(left, right, zp[:, 0] @ self.readout.T if track_linear else None)
            else:
                stack.append((left, right, zp, layer + 1, None if seg is None else seg[parent]))


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
    s1, c1 = zs[rows, first], zc[rows, first]
    s2, c2 = zs[rows, second], zc[rows, second]
    h1, l1 = _two_product(c1, s2)
    h2, l2 = _two_product(c2, s1)
    huge = torch.maximum(torch.maximum(c1.abs(), c2.abs()), torch.maximum(s1.abs(), s2.abs())) > 1e290
    return ((h1 != h2) | (l1 != l2) | huge).sum()


def _dedupe_crossings(x: torch.Tensor, valid: torch.Tensor, tl: torch.Tensor, tau: float,
                      sink: PieceSink, zs: torch.Tensor, zc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted distinct zeros per piece: returns counts (P,) and a (P, c_max) matrix padded with +inf.

    Zeros of one layer that are equal in float64 are one breakpoint; when their exact values differ (a
    sliver below float64 resolution, decided exactly with error-free products) it is counted in
    ``sink.near_coincident``.
    """
    P = x.shape[0]
    n_valid = valid.sum(1)
    c_max = int(n_valid.max()) if P else 0
    if c_max == 0:
        return n_valid, x.new_empty((P, 0))
    xs = torch.where(valid, x, torch.inf)
    if c_max == 1:
        return n_valid, xs.amin(1, keepdim=True)
    if c_max <= 16:
        xs, order = torch.topk(xs, c_max, dim=1, largest=False, sorted=True)
    else:
        xs, order = torch.sort(xs, dim=1)
        xs, order = xs[:, :c_max], order[:, :c_max]
    prev = torch.cat([tl[:, None], xs[:, :-1]], 1)
    finite = torch.isfinite(xs)
    sink.add_near(_count_float_equal_distinct(zs, zc, order, xs, finite))
    keep = finite & (xs > prev + tau)
    # a zero can also be swallowed by a kept zero two places back in a chain; the rule is stated
    # against the previous sorted zero, which is what this implements
    sink.add_near((finite & ~keep & (xs != prev)).sum())
    counts = keep.sum(1)
    c_max = int(counts.max())
    if bool((counts == n_valid).all()):
        return counts, xs[:, :c_max]
    position = torch.where(keep, torch.cumsum(keep, 1) - 1, c_max)
    packed = torch.full((P, c_max + 1), torch.inf, dtype=x.dtype, device=x.device)
    packed.scatter_(1, position, torch.where(keep, xs, torch.inf))
    return counts, packed[:, :c_max]


def _split_many(tl: torch.Tensor, tr: torch.Tensor, kept: torch.Tensor, counts: torch.Tensor,
                n_children: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split piece p at its ``counts[p]`` sorted zeros ``kept[p, :counts[p]]``; children in t order."""
    P = tl.shape[0]
    if kept.shape[1] == 0:
        return tl, tr, torch.arange(P, device=tl.device)
    ends = torch.cat([tl[:, None], kept, torch.full_like(tl[:, None], torch.inf)], 1)  # (P, c_max + 2)
    ends.scatter_(1, (counts + 1)[:, None], tr[:, None])
    sizes = counts + 1
    parent = torch.repeat_interleave(torch.arange(P, device=tl.device), sizes, output_size=n_children)
    first = torch.cumsum(sizes, 0) - sizes
    k = torch.arange(n_children, device=tl.device) - first[parent]
    return ends[parent, k], ends[parent, k + 1], parent
