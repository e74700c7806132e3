"""Fixed points of a ReLU DEQ with any well-posed W, ``z* = relu(W z* + U x + b)`` (``docs/algorithms.md``):
Picard iteration, then an exact solve on each point's activation pattern, checked.  Works on anything with
tensors ``W`` (m, m), ``U`` (m, d), ``b`` (m,), so that the model classes can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from ..core.errors import NotWellPosedError
from ..core.tolerances import FIXED_POINT_RESIDUAL_RTOL, FIXED_POINT_STEP_TOL

DTYPE = torch.float64


class HasFixedPoint(Protocol):
    """The parts of a DEQ a fixed point needs."""

    W: torch.Tensor
    U: torch.Tensor
    b: torch.Tensor


@dataclass
class FixedPoints:
    """Fixed points of a batch: ``z`` and ``u`` (B, m), ``ok`` (B,) verified, ``iterations`` used."""

    z: torch.Tensor
    u: torch.Tensor
    ok: torch.Tensor
    iterations: int

    @property
    def failures(self) -> int:
        return int((~self.ok).sum())


def checked_solve(M: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Batched ``solve(M, rhs)`` for M = I - W D; a singular M (some pattern D with det(I - W D) = 0) ends
    as :class:`NotWellPosedError`, one line, never a linear-algebra traceback."""
    sol, info = torch.linalg.solve_ex(M, rhs)
    singular = int((info != 0).sum())
    if singular:
        raise NotWellPosedError(
            f"I - W D is singular in float64 for {singular} activation pattern(s) D met here: either the DEQ is "
            "not well-posed on this input (no unique fixed point), or float64 cannot resolve its fixed points; "
            "no count is given"
        )
    return sol


def _solve_pattern(W: torch.Tensor, active: torch.Tensor, q: torch.Tensor, chunk: int) -> torch.Tensor:
    """u = (I - W D)^{-1} q for each row's pattern D (B, m) bool; batched LU in chunks of ``chunk`` rows."""
    m = W.shape[0]
    eye = torch.eye(m, dtype=W.dtype, device=W.device)
    out = torch.empty_like(q)
    for start in range(0, q.shape[0], chunk):
        d = active[start:start + chunk].to(W.dtype)
        M = eye - W[None] * d[:, None, :]
        out[start:start + chunk] = checked_solve(M, q[start:start + chunk])
    return out


def _consistent_solve(W: torch.Tensor, active: torch.Tensor, q: torch.Tensor, chunk: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """u on each row's pattern (:func:`_solve_pattern`) and whether its signs agree with that pattern (B,):
    then relu(u) is a fixed point."""
    u = _solve_pattern(W, active, q, chunk)
    return u, ((u > 0) == active).all(1)


def solve_fixed_points(model: HasFixedPoint, x: torch.Tensor, *, tol: float = FIXED_POINT_STEP_TOL, max_iter: int = 2000,
                       damping: float = 1.0, polish_rounds: int | None = None,
                       guess: torch.Tensor | None = None) -> FixedPoints:
    """Fixed points z* = relu(W z* + U x + b) of points ``x`` (B, d), exact up to float64 rounding.

    Picard iteration ``z <- (1 - a) z + a relu(W z + q)`` (a = ``damping``) runs until each point's own
    step ``||dz||_inf <= tol * (1 + ||z||_inf)``; then every point is polished on its pattern and checked
    (signs of u consistent with D, and ``|relu(W z + q) - z| <= 1e-10 (1 + |z|)``).  ``ok`` marks verified
    points.  Polishing re-solves on the signs of the last solve for up to ``polish_rounds`` rounds (default
    m + 2, at least 8: where the iteration does not contract, its last pattern can be many flips away).
    ``guess`` (B, m) bool: a likely pattern per point (e.g. a neighbour's); the points whose solve on their
    guessed pattern is consistent with it skip the iteration (a consistent pattern's solution is a fixed point,
    the fixed point when the DEQ is well-posed).
    """
    W = model.W.to(x.device)
    q = x.to(DTYPE) @ model.U.to(x.device).T + model.b.to(x.device)
    B, m = q.shape
    chunk = max(1, 2**22 // max(1, m * m))
    z = torch.zeros_like(q)
    settled = torch.zeros(B, dtype=torch.bool, device=x.device)
    if guess is not None:
        u_guess, settled = _consistent_solve(W, guess, q, chunk)
    live = (~settled).nonzero().flatten()
    iterations = 0
    for iterations in range(1, max_iter + 1 if live.numel() else 1):  # noqa: B007 - reported after the loop
        zl = z[live]
        new = torch.relu(zl @ W.T + q[live])
        if damping != 1.0:
            new = (1 - damping) * zl + damping * new
        step = (new - zl).abs().amax(1)
        z[live] = new
        done = step <= tol * (1 + new.abs().amax(1))
        live = live[~done]
        if live.numel() == 0:
            break
    active = (z @ W.T + q) > 0
    ok = settled.clone()
    u = torch.empty_like(q)
    if guess is not None:
        u[settled] = u_guess[settled]
    todo = (~settled).nonzero().flatten()
    for _ in range(max(8, m + 2) if polish_rounds is None else polish_rounds):
        if todo.numel() == 0:
            break
        u_try, consistent = _consistent_solve(W, active[todo], q[todo], chunk)
        u[todo] = u_try
        ok[todo[consistent]] = True
        todo, active_next = todo[~consistent], u_try[~consistent] > 0
        if todo.numel() == 0:
            break
        active[todo] = active_next
    z = torch.where(u > 0, u, torch.zeros((), dtype=DTYPE, device=x.device))
    residual = (torch.relu(z @ W.T + q) - z).abs().amax(1)
    ok &= residual <= FIXED_POINT_RESIDUAL_RTOL * (1 + z.abs().amax(1))
    return FixedPoints(z, u, ok, iterations)
