"""The 1-D walk of a triangular DEQ, unit by unit (forward substitution), batched over pieces
(``docs/algorithms.md``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .sink import PieceSink
from .zeros import _count_end_slivers, _count_near, _split_once

#: The a-posteriori exactness proof measures every level of a triangular-DEQ walk except the last few, where
#: most pieces are (their bounds come from the |W| recursion over these levels instead; ``docs/exactness.md``).
UNMEASURED_LAST_LEVELS = 3


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
        need_pieces = (track_linear or sink.keep) and segments is None
        tl, tr, gs, gc, out, seg = self._start(t_low, t_high, segments, track_linear)
        ones = torch.ones_like(tl)
        ends = torch.stack([-tl, ones, -tr, ones], 1) if track_ends else None  # exact (c, s): t = -c / s
        stack: list[Any] = [((tl, tr, ends, gs, gc, out, seg), 0)]
        while stack:
            item, t = stack.pop()
            sink.tick()
            self._level(item, t, stack, sink, need_pieces, max_pieces, tau)

    def _level(self, item: tuple, t: int, stack: list[Any], sink: PieceSink, need_pieces: bool, max_pieces: int,
               tau: float) -> None:
        """Walk one batch through unit t: halve it when it would not fit, count its children after the last
        unit (or the fused last levels), else split each piece at the unit's zero and push the children."""
        m = self.steps
        tl, tr, ends, gs, gc, out, seg = item
        P = tl.shape[0]
        if self.fused_levels and ends is None and not need_pieces and t == m - min(self.fused_levels, m):
            self._count_fused(tl, tr, gs, gc, seg, t, tau, sink)
            return
        if 2 * P > max_pieces and P > 1:
            stack.extend(_halves(item, t))  # the left half on top
            return
        us, uc = gs[:, 0], gc[:, 0]
        if self.snapshots is not None and P and t < m - UNMEASURED_LAST_LEVELS:
            self._record(t, us, uc)
        x = -uc / us
        inside = (x > tl + tau) & (x < tr - tau)
        _note_near_zeros(sink, x, uc, us, tl, tr, tau, ends)
        if t == m - 1 and not need_pieces:
            _count_children(sink, seg, inside, tr)
            return
        self._split(item, t, x, inside, stack, sink)

    def _split(self, item: tuple, t: int, x: torch.Tensor, inside: torch.Tensor, stack: list[Any],
               sink: PieceSink) -> None:
        """Split each piece of a batch at unit t's zero x where it lies ``inside``, read the unit's sign at each
        child's midpoint, update the output maps and the later units' maps (rank-one updates), and emit the
        children (after the last unit) or push them."""
        tl, tr, ends, gs, gc, out, seg = item
        us, uc = gs[:, 0], gc[:, 0]
        left, right, parent, left_cut, right_cut = _split_once(tl, tr, x, inside, int(inside.sum()))
        usp, ucp = us[parent], uc[parent]
        active = usp * ((left + right) * 0.5) + ucp > 0
        zs = torch.where(active, usp, 0.0)
        new_out = None
        if out is not None:
            new_out = out.index_select(0, parent)
            new_out.addr_(zs, self.A[:, t])
        if t == self.steps - 1:
            sink.add_pieces(left, right, new_out)
            return
        new_ends = _child_ends(ends, parent, left_cut, right_cut, ucp, usp)
        zc = torch.where(active, ucp, 0.0)
        column = self.Wn[t + 1:, t]
        new_gs = gs[:, 1:].index_select(0, parent).addr_(zs, column)
        new_gc = gc[:, 1:].index_select(0, parent).addr_(zc, column)
        stack.append(((left, right, new_ends, new_gs, new_gc, new_out, None if seg is None else seg[parent]), t + 1))

    def _start(self, t_low: float, t_high: float, segments: tuple[torch.Tensor, torch.Tensor] | None,
               track_linear: bool) -> tuple:
        """The first batch: piece ends (P,), the remaining units' pre-activation slopes and intercepts
        (P, m), the output maps (None when not tracked) and, for several segments, each piece's segment (P,)."""
        if segments is None:
            return (*self.initial_state(t_low, t_high, track_linear), None)
        P0, V0 = segments
        K = P0.shape[0]
        return (torch.full((K,), t_low, dtype=P0.dtype, device=P0.device),
                torch.full((K,), t_high, dtype=P0.dtype, device=P0.device),
                V0 @ self.Un.T, P0 @ self.Un.T + self.bn, None, torch.arange(K, device=P0.device))

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


def _halves(item: tuple, t: int) -> list[tuple]:
    """A batch cut in two equal halves of pieces, the right half first (pushed in this order, the left half
    is walked first)."""
    half = item[0].shape[0] // 2
    return [(tuple(None if v is None else v[half:] for v in item), t),
            (tuple(None if v is None else v[:half] for v in item), t)]


def _note_near_zeros(sink: PieceSink, x: torch.Tensor, uc: torch.Tensor, us: torch.Tensor, tl: torch.Tensor,
                     tr: torch.Tensor, tau: float, ends: torch.Tensor | None) -> None:
    """Record the zeros x (P,) that the tolerance rule does not split at: without tracked ends, those near or
    on a piece end as suspicious; with them, the near ones and the exact end slivers as near."""
    if ends is None:
        sink.add_suspicious(_count_near(x, tl, tr, tau, include_ends=True))
    else:
        sink.add_near(_count_near(x, tl, tr, tau))
        sink.add_near(_count_end_slivers(x, uc, us, tl, tr, ends))


def _count_children(sink: PieceSink, seg: torch.Tensor | None, inside: torch.Tensor, tr: torch.Tensor) -> None:
    """The last level's children counted, never built: each piece has one more child when its zero is
    ``inside`` (P,); in all (one segment, its progress at tr[-1]) or per segment."""
    if seg is None:
        sink.add_count(tr.shape[0] + int(inside.sum()), tr[-1])
    else:
        sink.add_segment_counts(seg, inside.long() + 1)


def _child_ends(ends: torch.Tensor | None, parent: torch.Tensor, left_cut: torch.Tensor | None,
                right_cut: torch.Tensor | None, ucp: torch.Tensor, usp: torch.Tensor) -> torch.Tensor | None:
    """The children's tracked ends' exact (c, s) (C, 4): their parent's, except where a child's end is its
    parent's zero (``left_cut`` / ``right_cut``), whose (c, s) is the unit's (ucp, usp)."""
    if ends is None:
        return None
    new_ends = ends.index_select(0, parent)
    if left_cut is not None:
        assert right_cut is not None
        cut_cs = torch.stack([ucp, usp], 1)
        new_ends[:, :2] = torch.where(left_cut[:, None], cut_cs, new_ends[:, :2])
        new_ends[:, 2:] = torch.where(right_cut[:, None], cut_cs, new_ends[:, 2:])
    return new_ends
