"""The implicit bias of gradient flow on a diagonal linear DEQ: its potential and the minimiser over the
interpolating solutions (``docs/bias.md``, "The potential and its sign").

With ``beta = 1 / (1 - w)`` and ``theta = signs * beta``, gradient flow on ``L = ||X theta - y||^2 / 2`` keeps
``beta^-3 - beta0^-3 = 3 signs * X^T v(t)``, ``v`` the integrated residual.  A limit that interpolates is
therefore the minimiser of

    Q(beta) = sum_i 1 / (2 beta_i^2) + s beta_i / beta0_i^3      over beta > 0 with A beta = y (A = X diag(signs))

with ``s = +1`` (:data:`DERIVED`): Q' = beta0^-3 - beta^-3 lies in the row space of A, the KKT condition.
Plain coefficients ``c`` trained from 0 beside them (a bias term: columns ``P``, model ``A beta + P c``) keep
``c = -P^T v``, so with the same multiplier ``-3 v`` they add ``3 |c|^2 / 2`` to Q.
The review discussion quotes ``s = -1`` (:data:`QUOTED`); both can be solved and compared with the flow.
Q is convex on beta > 0 for either sign; the minimiser is found through the concave dual
``phi(lam) = sum_i h(c_i - (A^T lam)_i) + lam . y``, ``c = s beta0^-3``, by a damped Newton method, with
``h(u) = min_b 1/(2b^2) + u b = (3/2) u^(2/3)`` for u > 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .instances import Instance

#: The sign of the linear term of the potential: derived from the flow (+1) and as quoted (-1).
DERIVED, QUOTED = 1.0, -1.0


@dataclass(frozen=True)
class Minimiser:
    """The potential's minimiser ``beta`` (d,) (None if none was found; ``plain`` (k,) the plain columns'
    coefficients, whose cost is ``3 |c|^2 / 2``), the KKT residual (relative: the part
    of ``Q'(beta)`` outside the row space of A, over its size), the constraint residual ``|A beta - y| / |y|``,
    Newton iterations and a one-line status."""

    beta: np.ndarray | None
    kkt_residual: float
    constraint_residual: float
    iterations: int
    status: str
    sign: float
    plain: np.ndarray | None = None

    @property
    def found(self) -> bool:
        return self.beta is not None


def potential(beta: np.ndarray, beta0: np.ndarray, sign: float = DERIVED) -> float:
    """``Q(beta) = sum 1 / (2 beta^2) + sign * beta / beta0^3`` (beta > 0)."""
    return float(np.sum(0.5 / beta**2 + sign * beta / beta0**3))


def potential_gradient(beta: np.ndarray, beta0: np.ndarray, sign: float = DERIVED) -> np.ndarray:
    """``Q'(beta) = sign / beta0^3 - 1 / beta^3``."""
    return sign / beta0**3 - 1.0 / beta**3


def kkt_residual(A: np.ndarray, gradient: np.ndarray) -> float:
    """``|(I - A^T (A A^T)^-1 A) g| / |g|``: the part of ``g`` outside the row space of A, relatively."""
    coef, *_ = np.linalg.lstsq(A.T, gradient, rcond=None)
    rest = gradient - A.T @ coef
    return float(np.linalg.norm(rest) / max(np.linalg.norm(gradient), np.finfo(float).tiny))


def minimise(inst: Instance, sign: float = DERIVED, tol: float = 1e-14, max_iter: int = 200) -> Minimiser:
    """The minimiser of Q (linear term of sign ``sign``) over ``{beta > 0 : A beta = y}``, through its dual.

    Q is convex on beta > 0 for either sign.  Its dual ``phi(lam) = (3/2) sum u^(2/3) + lam . y`` with
    ``u = sign beta0^-3 - A^T lam`` lives where u > 0: lam = 0 for the derived sign; for the quoted one a
    strictly feasible lam exists only if no nonnegative direction of A's null space exists (Gordan), and
    otherwise Q decreases without bound along it (an interpolating beta + t z, z >= 0, t -> inf): then there
    is no minimiser, which is reported."""
    c = sign * inst.beta0**-3.0
    lam = np.zeros(inst.n) if np.all(c > 0) else _strictly_feasible(inst.A, c)
    if lam is None:
        return _finish(inst, None, 0, "no minimiser: Q decreases without bound along a nonnegative null "
                       "direction of X diag(signs)", sign)
    return _dual_newton(inst, c, lam, sign, tol, max_iter)


def _strictly_feasible(A: np.ndarray, c: np.ndarray) -> np.ndarray | None:
    """A ``lam`` with ``A^T lam < c`` entrywise (the largest margin, by an LP), or None when none exists."""
    from scipy.optimize import linprog

    n, d = A.shape
    cap = float(np.abs(c).max())
    res = linprog(np.r_[np.zeros(n), -1.0], A_ub=np.c_[A.T, np.ones(d)], b_ub=c,
                  bounds=[(None, None)] * n + [(None, cap)], method="highs")
    if res.status != 0 or res.x[-1] <= 1e-12 * cap:
        return None
    return res.x[:n]


def _finish(inst: Instance, beta: np.ndarray | None, iterations: int, status: str, sign: float,
            plain: np.ndarray | None = None) -> Minimiser:
    if beta is None or not np.all(np.isfinite(beta)) or not np.all(beta > 0):
        return Minimiser(None, float("nan"), float("nan"), iterations, status, sign)
    A, fit = inst.A, inst.A @ beta
    gradient = potential_gradient(beta, inst.beta0, sign)
    if inst.plain is not None and plain is not None:  # the plain coefficients' cost 3 |c|^2 / 2: gradient 3 c
        A, fit = np.concatenate([A, inst.plain], 1), fit + inst.plain @ plain
        gradient = np.concatenate([gradient, 3 * plain])
    residual = float(np.linalg.norm(fit - inst.y) / max(np.linalg.norm(inst.y), np.finfo(float).tiny))
    return Minimiser(beta, kkt_residual(A, gradient), residual, iterations, status, sign, plain)


def _dual_newton(inst: Instance, c: np.ndarray, lam: np.ndarray, sign: float, tol: float, max_iter: int
                 ) -> Minimiser:
    """Maximise ``phi(lam) = (3/2) sum u^(2/3) + lam . y``, ``u = c - A^T lam > 0``, from a feasible ``lam``:
    ``grad = y - A beta(lam)`` with ``beta = u^(-1/3)``, ``Hessian = -(1/3) A diag(u^(-4/3)) A^T``; a Newton
    step, halved until it stays in the domain and raises phi (Armijo).  lam running away means phi is
    unbounded: no interpolating beta > 0 exists."""
    A, y = inst.A, inst.y
    B = np.zeros((inst.n, 0)) if inst.plain is None else inst.plain  # plain columns: c = B^T lam / 3
    scale = max(np.linalg.norm(y), np.finfo(float).tiny)

    def phi(lam: np.ndarray) -> float:
        u = c - A.T @ lam
        plain = B.T @ lam
        return float(1.5 * np.sum(u ** (2.0 / 3.0)) + lam @ y - plain @ plain / 6) if np.all(u > 0) else -np.inf

    value = phi(lam)
    for iteration in range(1, max_iter + 1):
        u = c - A.T @ lam
        beta = u ** (-1.0 / 3.0)
        grad = y - A @ beta - B @ (B.T @ lam) / 3
        if np.linalg.norm(grad) <= tol * scale * max(1.0, np.sqrt(inst.n)):
            return _finish(inst, beta, iteration, "converged", sign, B.T @ lam / 3)
        H = (A * (u ** (-4.0 / 3.0) / 3.0)[None, :]) @ A.T + B @ B.T / 3
        step = np.linalg.solve(H, grad)  # the ascent direction -Hessian^-1 grad
        t, slope = 1.0, float(grad @ step)
        if slope <= (1e-12 * scale) ** 2:  # the Newton decrement: what is left is rounding (u's cancellation)
            return _finish(inst, beta, iteration, "converged", sign, B.T @ lam / 3)
        while t > 1e-20:
            trial = lam + t * step
            new = phi(trial)
            if new >= value + 1e-4 * t * slope or (new > -np.inf and abs(new - value) <= 1e-15 * abs(value)):
                break
            t *= 0.5
        else:
            return _finish(inst, beta, iteration, "stalled (no step raised the dual)", sign)
        lam, value = trial, new
        if not np.isfinite(value) or np.abs(lam).max() > 1e150:
            return _finish(inst, None, iteration, "no interpolating beta > 0 (the dual is unbounded)", sign)
    u = c - A.T @ lam
    beta = u ** (-1.0 / 3.0)
    ok = np.linalg.norm(y - A @ beta - B @ (B.T @ lam) / 3) <= 1e-10 * scale
    return _finish(inst, beta, max_iter, "converged" if ok else "did not converge", sign, B.T @ lam / 3)
