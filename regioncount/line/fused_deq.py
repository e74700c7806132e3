"""Fused count-only kernel for the last levels of a triangular DEQ walk (Triton, CUDA only).

The plain torch walk (:class:`regioncount.line.deq_walk.DEQKernel`) materializes every piece of every level.
For a count, the last ``r`` levels need no pieces at all: each piece that reaches level ``m - r`` has a
subtree of at most ``2^r`` leaves, and the number of leaves is what is counted.  This kernel gives each
piece one GPU lane, keeps the piece's ``r`` forward-looking columns (``gs``, ``gc``) in registers and
enumerates the root-to-leaf paths of its subtree by their bit strings (bit ``k`` = which child at level
``k``; a ``1`` where the piece does not split prunes the whole sub-range of paths).  Only one count and one
flag per piece are written.

Every floating-point operation is the one the torch walk performs, in the same order, with contraction
into fused multiply-adds disabled, so the decisions (split or not, active or not) and hence the counts are
bitwise those of the torch walk; ``tests/test_cuda.py`` checks this on adversarial nets.  The first-pass
"suspicious" flag (a zero within tau of a piece end, or on it) is reported as a count of path visits:
only whether it is zero matters (non-zero triggers the exact end-tracking rerun in torch).
See ``docs/gpu.md`` for the design and measured speeds.
"""

from __future__ import annotations

import functools

import torch

#: Levels handled by the fused kernel (2^r paths per piece at most).  Measured on an H100 (Theorem 1 DEQ,
#: m = 26..30): r = 4 is fastest; each path costs O(r * R) work, so large r loses (r = 10 is 40x slower).
DEFAULT_FUSED_LEVELS = 4
BLOCK = 128


@functools.lru_cache(maxsize=1)
def _compiled():
    """The Triton kernel, compiled lazily (None when Triton is not installed)."""
    try:
        import triton
        import triton.language as tl
    except ImportError:  # pragma: no cover - depends on the machine
        return None

    @triton.jit
    def subtree_count(TL, TR, GS, GC, WSUB, COUNTS, SUSP, P, tau, stride_g,
                      R: tl.constexpr, LEVELS: tl.constexpr, BLOCK_P: tl.constexpr):
        pid = tl.program_id(0)
        rows = pid * BLOCK_P + tl.arange(0, BLOCK_P)
        live = rows < P
        cols = tl.arange(0, R)
        in_cols = cols < LEVELS
        a0 = tl.load(TL + rows, mask=live, other=0.0)
        b0 = tl.load(TR + rows, mask=live, other=1.0)
        offs = rows[:, None].to(tl.int64) * stride_g + cols[None, :]
        gmask = live[:, None] & in_cols[None, :]
        gs0 = tl.load(GS + offs, mask=gmask, other=0.0)
        gc0 = tl.load(GC + offs, mask=gmask, other=0.0)
        path = tl.zeros([BLOCK_P], dtype=tl.int32)
        count = tl.zeros([BLOCK_P], dtype=tl.int32)
        susp = tl.zeros([BLOCK_P], dtype=tl.int32)
        running = live
        while tl.max(running.to(tl.int32), axis=0) > 0:
            a = a0
            b = b0
            gs = gs0
            gc = gc0
            pruned_at = tl.full([BLOCK_P], -1, dtype=tl.int32)
            for k in tl.static_range(LEVELS):
                sel = cols[None, :] == k
                us = tl.sum(tl.where(sel, gs, 0.0), axis=1)
                uc = tl.sum(tl.where(sel, gc, 0.0), axis=1)
                x = -uc / us
                inside = (x > a + tau) & (x < b - tau)
                near = ((x >= a) & (x <= a + tau)) | ((x <= b) & (x >= b - tau))
                on_path = running & (pruned_at < 0)
                susp += (near & on_path).to(tl.int32)
                bit = (path >> (LEVELS - 1 - k)) & 1
                pruned_at = tl.where(on_path & (bit == 1) & (inside == 0), k, pruned_at)
                if k < LEVELS - 1:
                    a_next = tl.where(inside & (bit == 1), x, a)
                    b_next = tl.where(inside & (bit == 0), x, b)
                    a = a_next
                    b = b_next
                    mid = (a + b) * 0.5
                    active = us * mid + uc > 0
                    zs = tl.where(active, us, 0.0)
                    zc = tl.where(active, uc, 0.0)
                    wcol = tl.load(WSUB + cols * R + k)
                    gs = gs + zs[:, None] * wcol[None, :]
                    gc = gc + zc[:, None] * wcol[None, :]
            complete = running & (pruned_at < 0)
            count += complete.to(tl.int32)
            shift = tl.where(pruned_at >= 0, LEVELS - 1 - pruned_at, 0)
            step_to = ((path >> shift) + 1) << shift
            path = tl.where(running, step_to, path)
            running = running & (path < (1 << LEVELS))
        tl.store(COUNTS + rows, count, mask=live)
        tl.store(SUSP + rows, susp, mask=live)

    return subtree_count


def fused_available(device: torch.device) -> bool:
    """True when the fused kernel can run on ``device`` (a CUDA device and Triton installed)."""
    return device.type == "cuda" and _compiled() is not None


def subtree_counts(tl_: torch.Tensor, tr_: torch.Tensor, gs: torch.Tensor, gc: torch.Tensor,
                   w_sub: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Leaves below each of P pieces over the last ``r = gs.shape[1]`` units, and the suspicious flag.

    ``tl_``, ``tr_`` (P,) piece ends; ``gs``, ``gc`` (P, r) the pre-activation slopes and intercepts of the
    remaining units on each piece; ``w_sub`` (r, r) the strictly lower-triangular block of the normalized
    W for those units.  Returns ``counts`` (P,) int32 and ``suspicious`` (P,) int32 (path visits that met
    a zero within tau of, or on, a piece end).
    """
    kernel = _compiled()
    P, r = gs.shape
    R = max(2, 1 << (r - 1).bit_length())
    w_pad = torch.zeros((R, R), dtype=gs.dtype, device=gs.device)
    w_pad[:r, :r] = w_sub
    gs, gc = gs.contiguous(), gc.contiguous()
    counts = torch.empty(P, dtype=torch.int32, device=gs.device)
    susp = torch.empty(P, dtype=torch.int32, device=gs.device)
    grid = (max(1, -(-P // BLOCK)),)
    kernel[grid](tl_.contiguous(), tr_.contiguous(), gs, gc, w_pad, counts, susp, P, float(tau), gs.stride(0),
                 R=R, LEVELS=r, BLOCK_P=BLOCK, enable_fp_fusion=False)
    return counts, susp
