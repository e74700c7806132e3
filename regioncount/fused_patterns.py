"""Fused GPU kernel for sampled FFN patterns: one pass per layer computes ``h W^T + b``, packs the signs
into pattern words and writes ``relu`` for the next layer (Triton, CUDA only).

The plain torch pipeline (:class:`regioncount.sampled.PatternFunction`) runs a GEMM, then separate passes
for the comparison, the clamp and the bit packing; here each layer is one kernel and the last hidden
layer writes only its words.  The bits are placed exactly as :func:`regioncount.patterns.pack_bits`
places them (column ``c`` of a 64-column chunk at bit ``8 (c mod 8) + c div 8``), so the words are
interchangeable with the torch pipeline's.  Sums run in k order with fused multiply-adds, so a point
within rounding of a boundary can get a different pattern than cuBLAS gives it, as between any two
devices; the count stays a sampled lower bound.  See ``docs/gpu.md``.
"""

from __future__ import annotations

import functools

import torch

BLOCK_M = 64


@functools.lru_cache(maxsize=1)
def _compiled():
    """The Triton kernel, compiled lazily (None when Triton is not installed)."""
    try:
        import triton
        import triton.language as tl
    except ImportError:  # pragma: no cover - depends on the machine
        return None

    @triton.jit
    def layer_bits(H, W, BIAS, H_OUT, WORDS, M, K, N, n_words, word_offset,
                   BLOCK: tl.constexpr, WRITE_H: tl.constexpr):
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        rows = pid_m * BLOCK + tl.arange(0, BLOCK)
        local = tl.arange(0, 64)
        cols = pid_n * 64 + local
        rmask = rows < M
        cmask = cols < N
        rows64 = rows.to(tl.int64)
        acc = tl.zeros([BLOCK, 64], dtype=H.dtype.element_ty)
        for k in tl.range(0, K):
            hk = tl.load(H + rows64 * K + k, mask=rmask, other=0.0)
            wk = tl.load(W + cols * K + k, mask=cmask, other=0.0)
            acc += hk[:, None] * wk[None, :]
        bias = tl.load(BIAS + cols, mask=cmask, other=0.0)
        pre = acc + bias[None, :]
        active = (pre > 0) & cmask[None, :]
        bitpos = ((local % 8) * 8 + local // 8).to(tl.int64)
        one = tl.full([64], 1, dtype=tl.int64)
        word = tl.sum(tl.where(active, (one << bitpos)[None, :], 0), axis=1)
        tl.store(WORDS + rows64 * n_words + word_offset + pid_n, word, mask=rmask)
        if WRITE_H:
            tl.store(H_OUT + rows64[:, None] * N + cols[None, :], tl.maximum(pre, 0.0),
                     mask=rmask[:, None] & cmask[None, :])

    return layer_bits


def fused_patterns_available(device: torch.device) -> bool:
    """True when the fused pattern kernel can run on ``device`` (CUDA and Triton installed)."""
    return device.type == "cuda" and _compiled() is not None


def ffn_pattern_words(x: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Packed activation patterns (B, words) of the points ``x`` (B, d) through the hidden ``layers``
    ((W (n, k), b (n,)) pairs, same dtype and device as x); words laid out layer after layer."""
    kernel = _compiled()
    B = x.shape[0]
    n_words = sum(-(-w.shape[0] // 64) for w, _ in layers)
    words = torch.empty((B, n_words), dtype=torch.int64, device=x.device)
    h = x.contiguous()
    offset = 0
    for index, (w, b) in enumerate(layers):
        n, k = w.shape
        last = index == len(layers) - 1
        out = h if last else torch.empty((B, n), dtype=x.dtype, device=x.device)
        chunks = -(-n // 64)
        grid = (max(1, -(-B // BLOCK_M)), chunks)
        kernel[grid](h, w.contiguous(), b.contiguous(), out, words, B, k, n, n_words, offset,
                     BLOCK=BLOCK_M, WRITE_H=not last)
        h = out
        offset += chunks
    return words
