"""Rigorous error bounds for the general-W DEQ refinement (``docs/exact-dd.md``, "General W").

On a pattern D the fixed point is affine, u^D = (I - W D)^-1 (U x + b): its coefficients come from a float
solve.  :func:`pattern_affine_u_bounded` bounds them by a verified solve: with the computed coefficients
C~ and the residual R = (I - W D) C~ - rhs (its rounding bounded), ``|C* - C~| <= ||(I - W D)^-1||_inf
||R||_inf`` column by column, the inverse's norm bounded by
:func:`~regioncount.partition.vertex_bounds.inverse_norm_bounds` (an approximate inverse X with ``||I - X
M|| < 1``), so an ill-conditioned I - W D gives wide bounds, never wrong ones.
:func:`~regioncount.partition.vertex_bounds.value_errors` turns them into bounds on the units' values at the
cells' vertices (with the vertices' own radii), which decide which float sign decisions are proven and which
go to the exact referee.
"""

from __future__ import annotations

import torch

from ..line.forward_error import INFLATE, SMALLEST_SUBNORMAL, UNIT_ROUNDOFF, gamma
from ..models.fixedpoint import checked_solve
from ..models.networks import DEQ, DTYPE
from .vertex_bounds import inverse_norm_bounds


def _right_hand_side(model: DEQ, device: torch.device, embedding: tuple[torch.Tensor, torch.Tensor] | None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """[U P | U o + b] (m, d + 1) for x = o + P y (the identity without ``embedding = (o, P)``), and an
    entrywise bound on its rounding (zero for the identity: U and b are the stored weights)."""
    on_device = model.to(device)
    U, b = on_device.U, on_device.b
    if embedding is None:
        rhs = torch.cat([U, b[:, None]], 1)
        return rhs, torch.zeros_like(rhs)
    origin, directions = embedding[0].to(device), embedding[1].to(device)
    n = U.shape[1]
    rhs = torch.cat([U @ directions, (U @ origin + b)[:, None]], 1)
    error = torch.cat([gamma(n) * (U.abs() @ directions.abs()),
                       (gamma(n + 1) * (U.abs() @ origin.abs() + b.abs()))[:, None]], 1)
    return rhs, (error + SMALLEST_SUBNORMAL) * INFLATE


class InverseBounds:
    """Bounds on ``||(I - W D)^-1||_inf`` by pattern, each computed once
    (:func:`~regioncount.partition.vertex_bounds.inverse_norm_bounds`) and remembered: a refinement meets
    most patterns again in later rounds (a cut cell's child keeps its pattern)."""

    def __init__(self) -> None:
        self.known: dict[bytes, float] = {}

    def __call__(self, patterns: torch.Tensor, M: torch.Tensor, M_error: torch.Tensor) -> torch.Tensor:
        """(Q,) bounds for the distinct ``patterns`` (Q, m) bool with matrices ``M`` (Q, m, m) and their
        entrywise rounding ``M_error``."""
        keys = [bytes(row) for row in patterns.cpu().numpy()]
        new = [i for i, key in enumerate(keys) if key not in self.known]
        if new:
            index = torch.tensor(new, dtype=torch.long, device=M.device)
            for i, bound in zip(new, inverse_norm_bounds(M[index], M_error[index]).tolist()):
                self.known[keys[i]] = bound
        return torch.tensor([self.known[key] for key in keys], dtype=M.dtype, device=M.device)


def pattern_affine_u_bounded(model: DEQ, active: torch.Tensor,
                             embedding: tuple[torch.Tensor, torch.Tensor] | None = None,
                             inverse_bounds: InverseBounds | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, d + 1, m) coefficients of u on each cell's pattern ``active`` (P, m) (cell coordinates, then the
    constant) and (P, d + 1, m) bounds on their distance from the exact coefficients (``inf`` where the
    verified solve proves nothing).  ``inverse_bounds`` remembers the patterns' inverse norms across calls."""
    device, m = active.device, model.width
    W = model.to(device).W
    rhs, rhs_error = _right_hand_side(model, device, embedding)
    patterns, of_cell = torch.unique(active, dim=0, return_inverse=True)  # each distinct pattern solved once
    M = torch.eye(m, dtype=DTYPE, device=device) - W[None] * patterns.to(DTYPE)[:, None, :]  # (Q, m, m)
    C = checked_solve(M, rhs.expand(patterns.shape[0], m, rhs.shape[1]))  # (Q, m, d + 1)
    # M's off-diagonal entries are stored weights (or zero); its diagonal 1 - W_ii D_i may round
    M_error = torch.diag_embed(M.diagonal(dim1=1, dim2=2).abs() * UNIT_ROUNDOFF)
    residual = M @ C - rhs
    residual_bound = (residual.abs() + gamma(m + 1) * (M.abs() @ C.abs() + rhs.abs()) + M_error @ C.abs()
                      + rhs_error) * INFLATE  # (P, m, d + 1): |M* C~ - rhs*|
    inverse = (inverse_bounds or InverseBounds())(patterns, M, M_error)  # (Q,)
    column = inverse[:, None] * residual_bound.amax(1) * INFLATE  # (Q, d + 1)
    error = torch.nan_to_num(column, nan=torch.inf)[:, :, None].expand(-1, -1, m)
    return C.transpose(1, 2)[of_cell], error[of_cell]
