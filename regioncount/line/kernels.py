"""Building and running the 1-D walk kernels of :mod:`~regioncount.line.ffn_walk`,
:mod:`~regioncount.line.deq_walk` for a model along a segment:
the triangular DEQ normalized into forward-substitution order, tensors moved to the device once, and an
a-priori bound on every value the walk computes."""

from __future__ import annotations

import torch

from ..core.geometry import Segment
from ..models.networks import DEQ, DTYPE, FFN, Model
from .deq_walk import DEQKernel
from .ffn_walk import FFNKernel
from .forward_error import LayerBound
from .fused_deq import DEFAULT_FUSED_LEVELS, fused_available
from .sink import PieceSink


def normalized_deq(model: DEQ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Units permuted into forward-substitution order, each row divided by ``1 - W_tt``.

    Returns ``Wn`` (m, m) strictly lower triangular, ``Un`` (m, d), ``bn`` (m,) and ``A`` (k, m) permuted;
    ``z_t = relu(Wn[t] z + Un[t] x + bn[t])`` because ``relu(r) / (1 - w) = relu(r / (1 - w))``.
    """
    order = torch.tensor(model.unit_order)
    W = model.W[order][:, order]
    scale = 1.0 / (1.0 - torch.diagonal(W))
    Wn = torch.tril(W, diagonal=-1) * scale[:, None]
    return Wn, model.U[order] * scale[:, None], model.b[order] * scale, model.A[:, order]


def magnitude_bound(model: Model, seg: Segment) -> float:
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
        Wn, Un, bn, _ = normalized_deq(model)
        s_in, c_in = Un.abs() @ v, Un.abs() @ p + bn.abs()
        s = torch.zeros(model.width, dtype=DTYPE)
        c = torch.zeros(model.width, dtype=DTYPE)
        for t in range(model.width):
            s[t] = Wn[t, :t].abs() @ s[:t] + s_in[t]
            c[t] = Wn[t, :t].abs() @ c[:t] + c_in[t]
        out = (model.A.abs() @ s).max() + (model.B.abs() @ v).max()
        return max(float(s.max()), float(c.max()), float(s.max()) * t_abs, float(out))


def build_kernel(model: Model, seg: Segment, device: torch.device,
                 fused: int | None = None) -> DEQKernel | FFNKernel:
    """The walk kernel of a model along a segment, with its tensors on ``device``.

    ``fused``: levels of a triangular DEQ's count-only walk given to the fused Triton kernel (None: the
    default on CUDA with Triton installed, else 0 = plain torch).
    """
    p = torch.tensor(seg.origin, dtype=DTYPE)
    v = torch.tensor(seg.direction, dtype=DTYPE)
    if isinstance(model, FFN):
        model = model.to(device)
        return FFNKernel(
            weights=model.weights[:-1],
            biases=model.biases[:-1],
            readout=model.weights[-1],
            p=p.to(device),
            v=v.to(device),
        )
    Wn, Un, bn, A = normalized_deq(model)
    fused_levels = fused if fused is not None else (DEFAULT_FUSED_LEVELS if fused_available(device) else 0)
    return DEQKernel(Wn=Wn.to(device), us0=(Un @ v).to(device), uc0=(Un @ p + bn).to(device),
                     A=A.to(device), out0=(model.B @ v).to(device), Un=Un.to(device), bn=bn.to(device),
                     fused_levels=fused_levels)


def run_kernel(kernel: DEQKernel | FFNKernel, t_low: float, t_high: float, sink: PieceSink,
         track_linear: bool, max_pieces: int, tau: float, track_ends: bool = False,
         certify: list[LayerBound] | None = None, split_products: bool = False,
         double_products: bool = False) -> None:
    with torch.no_grad():
        if certify is not None and isinstance(kernel, FFNKernel):
            kernel.run(t_low, t_high, sink, track_linear=track_linear, max_pieces=max_pieces, tau=tau,
                       certify=certify, split_products=split_products, double_products=double_products)
        else:
            kernel.run(t_low, t_high, sink, track_linear=track_linear, max_pieces=max_pieces, tau=tau,
                       track_ends=track_ends)
