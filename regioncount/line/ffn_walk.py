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

from dataclasses import dataclass, field
from typing import Any

import torch

from ..core.magnitudes import safe_norm
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
from .sink import PieceSink
from .zeros import _count_end_slivers, _dedupe_sorted, _sorted_zeros, _sorted_zeros_sparse, _split_many


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
        walk = _FFNWalk(self, sink, tau, max_pieces, track_linear,
                        need_pieces=(track_linear or sink.keep) and segments is None, bounds=certify,
                        split_products=split_products, double_products=double_products)
        tl, tr, state, seg = self._start(t_low, t_high, segments, double_products)
        if not self.weights:
            if seg is not None:
                sink.add_segment_counts(seg, torch.ones_like(seg))
            else:
                sink.add_pieces(tl, tr, (state[:, 0] @ self.readout.T) if track_linear else None)
            return
        ones = torch.ones_like(tl)
        ends_cs = torch.stack([-tl, ones, -tr, ones], 1) if track_ends else None  # each end t = -c / s
        # certify: per piece, the error bounds of the input rows (P, 2) and the radii of the two ends (P, 2)
        cert = (tl.new_zeros(tl.shape[0], 2), tl.new_zeros(tl.shape[0], 2)) if certify is not None else None
        stack: list[_Frame] = [(tl, tr, ends_cs, state, 0, seg, cert)]
        while stack:
            walk.step(stack.pop(), stack)

    def _start(self, t_low: float, t_high: float, segments: tuple[torch.Tensor, torch.Tensor] | None,
               double_products: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The first batch: piece ends (P,), the input maps (P, 2, d) (slopes, intercepts; double-double with
        ``double_products``) and, for several segments, each piece's segment index (P,)."""
        dev, dt = self.p.device, self.p.dtype
        if segments is None:
            state = torch.stack([self.v, self.p])[None]  # (1, 2, d)
            return (torch.tensor([t_low], device=dev, dtype=dt), torch.tensor([t_high], device=dev, dtype=dt),
                    double_state(state) if double_products else state, None)
        P0, V0 = segments
        K = P0.shape[0]
        return (torch.full((K,), t_low, device=dev, dtype=dt), torch.full((K,), t_high, device=dev, dtype=dt),
                torch.stack([V0, P0], 1), torch.arange(K, device=dev))

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


#: One batch of the walk's stack: piece ends tl, tr (P,), the ends' exact (c, s) when tracked (P, 4) or None,
#: the input maps of ``layer`` (P, 2, n) or a deferred gather (parent maps, parent index, parent proof), the
#: layer, each piece's segment (P,) or None, and a certified walk's (input row errors, end radii) or None.
_Frame = tuple[torch.Tensor, torch.Tensor, Any, Any, int, Any, Any]


@dataclass
class _FFNWalk:
    """One run of :meth:`FFNKernel.run`: its settings, and :meth:`step`, which takes one batch off the stack
    through one layer (zeros, split, children pushed back or emitted into the sink)."""

    kernel: FFNKernel
    sink: PieceSink
    tau: float
    max_pieces: int
    track_linear: bool
    need_pieces: bool
    bounds: list[LayerBound] | None
    split_products: bool
    double_products: bool
    slices: dict[int, WeightSlices] = field(default_factory=dict)

    def step(self, frame: _Frame, stack: list[_Frame]) -> None:
        """Walk one batch through its layer: halve it when its children would not fit, else split it at its
        units' zeros and push the children (leftmost on top) or, after the last layer, emit them."""
        tl, tr, ends_cs, h, layer, seg, cert = frame
        self.sink.tick()
        if isinstance(h, tuple):  # deferred children: gather and mask their parents' maps now
            h, cert = self._gather(h, tl, tr, cert)
        P = tl.shape[0]
        z, zeros = self._layer(h, layer, tl, tr, cert)
        n_children = P + int(zeros.counts.sum())
        # a batch holds at most max_pieces * 64 state values: fewer pieces when the layer is wide
        if n_children * max(z.shape[2], 1) > self.max_pieces * 64 and P > 1:
            stack.extend(_halves((tl, tr, ends_cs, h, layer, seg, cert), zeros.counts, n_children))
            return
        # proofs and flags are recorded once per batch, after the halving decision
        zs, zc = z[:, 0], z[:, 1]
        parent_cert, zero_radii = _record_layer(self.sink, zeros, zs, zc, tl, tr, ends_cs, cert)
        last = layer == len(self.kernel.weights) - 1
        if last and not self.need_pieces:  # count-only: the children are counted, never built
            self._count(seg, n_children, tr, zeros.counts)
            return
        left, right, parent, child_ends = _children(z, zeros, tl, tr, n_children, ends_cs, cert, zero_radii)
        # children in chunks whose (chunk, 2, n) maps stay within the batch memory, even when one wide
        # layer splits a single piece into many children
        chunk = max(1, (self.max_pieces * 64) // max(z.shape[2], 1))
        if last:
            flips = self._by_flips(ends_cs is None, n_children, P, zeros)
            self.kernel._emit_last(z, left, right, parent, zeros, parent_cert, self.sink, self.track_linear, flips,
                                   chunk)
            return
        certified = cert is not None
        for start in reversed(range(0, n_children, chunk)):  # leftmost chunk on top of the stack
            part = slice(start, start + chunk)
            ends = None if child_ends is None else child_ends[part]
            stack.append((left[part], right[part], None if certified else ends, (z, parent[part], parent_cert),
                          layer + 1, None if seg is None else seg[parent[part]], (None, ends) if certified else None))

    def _by_flips(self, untracked_ends: bool, n_children: int, P: int, zeros: _LayerZeros) -> bool:
        """Emit the last layer's linear pieces by unit flips (:meth:`FFNKernel._last_layer_by_flips`): worth it
        for many children per parent, sound when every kept zero is one unit's sign change; not when ends are
        tracked, nor when an envelope needs every piece's slopes."""
        return (self.track_linear and untracked_ends and n_children >= 4 * P and zeros.all_kept()
                and self.sink.envelope is None)

    def _count(self, seg: torch.Tensor | None, n_children: int, tr: torch.Tensor, counts: torch.Tensor) -> None:
        """The last layer's children counted into the sink: in all (one segment, its progress at tr[-1]) or
        per segment (``counts + 1`` children of each piece)."""
        if seg is None:
            self.sink.add_count(n_children, tr[-1])
        else:
            self.sink.add_segment_counts(seg, counts + 1)

    def _gather(self, deferred: tuple, tl: torch.Tensor, tr: torch.Tensor, cert: Any) -> tuple[torch.Tensor, Any]:
        """Deferred children's input maps (P, 2, n): their parents' maps gathered and masked by the pattern
        at each child's midpoint; a certified walk's input row errors come with them."""
        parent_z, parent_index, parent_cert = deferred
        h, err = _masked_children(parent_z, parent_index, tl, tr, parent_cert, self.sink)
        if cert is None:
            return h, None
        assert err is not None
        return h, (err, cert[1])

    def _layer(self, h: torch.Tensor, layer: int, tl: torch.Tensor, tr: torch.Tensor, cert: Any
               ) -> tuple[torch.Tensor, _LayerZeros]:
        """The layer's pre-activation maps Z (P, 2, n) and its units' zeros inside each piece: one float GEMM
        for a plain walk; a rounded, split or double-double product with proven zeros for a certified one."""
        weight, bias = self.kernel.weights[layer], self.kernel.biases[layer]
        if cert is None:
            P = tl.shape[0]
            z = (h.reshape(2 * P, -1) @ weight.T).view(P, 2, -1)
            z[:, 1] += bias
            return z, _plain_zeros(z[:, 0], z[:, 1], tl, tr, self.tau)
        assert self.bounds is not None
        if self.double_products:
            if layer not in self.slices:
                self.slices[layer] = WeightSlices.of(weight)
            z, rounding = double_product(h, weight, bias, self.bounds[layer], self.slices[layer])
        else:
            product = split_product if self.split_products else rounded_product
            z, rounding = product(h, weight, bias, self.bounds[layer])
        return z, _certified_zeros(z[:, 0], z[:, 1], tl, tr, self.tau, cert, self.bounds[layer], rounding)


def _children(z: torch.Tensor, zeros: _LayerZeros, tl: torch.Tensor, tr: torch.Tensor, n_children: int,
              ends_cs: torch.Tensor | None, cert: Any, zero_radii: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A batch split at its kept zeros: the children's ends (C,), their parents (C,), and what their ends
    carry: the exact (c, s) of tracked ends in a plain walk (C, 4) or None; the end radii (C, 2) in a
    certified walk (never end-tracked), each its parent's end's or its zero's."""
    if cert is None:
        kept_cs = None if ends_cs is None else \
            torch.stack([z[:, 1].gather(1, zeros.units), z[:, 0].gather(1, zeros.units)], 2)
        return _split_many(tl, tr, zeros.kept, zeros.counts, n_children, ends_cs, kept_cs)
    assert ends_cs is None
    kept_radii = zero_radii[:, :, None] if zero_radii is not None else zeros.kept.new_zeros(zeros.kept.shape + (1,))
    return _split_many(tl, tr, zeros.kept, zeros.counts, n_children, cert[1], kept_radii)


def _halves(frame: _Frame, counts: torch.Tensor, n_children: int) -> list[_Frame]:
    """A batch cut in two by its children (so that each half fits), the right half first: pushed in this
    order, the leftmost half is processed first."""
    tl, tr, ends_cs, h, layer, seg, cert = frame
    P = tl.shape[0]
    cut = int(torch.searchsorted(torch.cumsum(counts + 1, 0), n_children // 2).clamp(1, P - 1))
    return [(tl[part], tr[part], None if ends_cs is None else ends_cs[part], h[part], layer,
             None if seg is None else seg[part], None if cert is None else (cert[0][part], cert[1][part]))
            for part in (slice(cut, None), slice(None, cut))]


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
