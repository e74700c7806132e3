"""Gradient flow and gradient descent on diagonal linear DEQs and on diagonal linear networks
(``docs/bias.md``).

Diagonal linear DEQ: ``z = diag(w) z + x``, ``f(x) = signs . z = theta . x`` with ``theta = signs * beta``
and ``beta = 1 / (1 - w)`` (well-posed while w < 1, i.e. beta > 0).  On ``L = ||X theta - y||^2 / 2`` gradient
flow in w is, in beta, ``d beta / dt = -signs * (X^T r) * beta^4`` (r = X theta - y; ``d beta / dw = beta^2``),
integrated here with the integrated residual ``v`` (``dv/dt = r``) by scipy's implicit Radau method (stiff)
at tight tolerances, the Jacobian given.  Diagonal linear network: ``theta = u^2 - v^2`` from
``u = v = alpha`` (Woodworth et al., 2020).  All arrays float64 numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .instances import Instance

#: Largest beta the flow may reach before it is called divergent (the DEQ's w approaching 1).
BLOW_UP = 1e12


@dataclass
class FlowResult:
    """The end of a flow: coefficients ``theta`` (d,), the DEQ's ``beta`` (None for other models), the time
    reached, the relative training residual ``|X theta - y| / |y|``, whether it converged (residual below
    the target), a one-line status, a trajectory (times (T,), thetas (T, d)) for plots, the largest deviation
    from the closed form along it, the solver's evaluations (or GD's steps) and the plain coefficients."""

    theta: np.ndarray
    beta: np.ndarray | None
    time: float
    residual: float
    converged: bool
    status: str
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    path: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    relation_error: float = float("nan")
    steps: int = 0
    plain: np.ndarray | None = None


def _relative(X: np.ndarray, theta: np.ndarray, y: np.ndarray) -> float:
    return float(np.linalg.norm(X @ theta - y) / max(np.linalg.norm(y), np.finfo(float).tiny))


def deq_gradient_flow(inst: Instance, *, residual_tol: float = 1e-13, rtol: float = 1e-12, t_max: float = 1e9,
                      samples: int = 60) -> FlowResult:
    """Gradient flow of the diagonal DEQ from ``beta0`` until ``|r| <= residual_tol |y|`` (an event), over at
    most ``t_max``.  Also checks the closed form ``beta(t)^-3 = beta0^-3 + 3 signs * X^T v(t)`` along the
    path (``relation_error``: the largest deviation relative to ``beta0^-3``).  Ends as "diverged" when some
    beta passes :data:`BLOW_UP` (w -> 1: the flow leaves the well-posed DEQs)."""
    from scipy.integrate import solve_ivp

    X, y, a = inst.X, inst.y, inst.signs
    n, d, k = inst.n, inst.d, inst.k
    B = np.zeros((n, 0)) if inst.plain is None else inst.plain
    target = residual_tol * max(np.linalg.norm(y), np.finfo(float).tiny)
    F = np.concatenate([X * a[None, :], B], 1)  # (n, d + k): d residual / d (beta, c)
    G = F.T @ F

    def residual_of(state: np.ndarray) -> np.ndarray:
        return F @ state[:d + k] - y

    def rhs(_t: float, state: np.ndarray) -> np.ndarray:
        r = residual_of(state)
        g = F.T @ r
        return np.concatenate([-g[:d] * state[:d] ** 4, -g[d:], r])

    def jac(_t: float, state: np.ndarray) -> np.ndarray:
        beta = state[:d]
        g = F.T @ residual_of(state)
        J = np.zeros((d + k + n, d + k + n))
        J[:d + k, :d + k] = -G
        J[:d, :d + k] *= (beta**4)[:, None]
        J[np.arange(d), np.arange(d)] -= 4 * g[:d] * beta**3
        J[d + k:, :d + k] = F
        return J

    def converged(_t: float, state: np.ndarray) -> float:
        return float(np.linalg.norm(residual_of(state)) - target)

    def blow_up(_t: float, state: np.ndarray) -> float:
        return float(BLOW_UP - state[:d].max())

    converged.terminal = True  # type: ignore[attr-defined]
    blow_up.terminal = True  # type: ignore[attr-defined]
    times = np.concatenate([[0.0], np.logspace(-3, np.log10(t_max), samples)])
    sol = solve_ivp(rhs, (0.0, t_max), np.concatenate([inst.beta0, np.zeros(k + n)]), method="Radau", jac=jac,
                    rtol=rtol, atol=1e-15, events=(converged, blow_up), dense_output=True)
    t_end = float(sol.t[-1])
    state = sol.y[:, -1]
    beta = state[:d]
    shown = times[times <= t_end]
    path = sol.sol(shown)[:d].T * a[None, :] if sol.sol is not None and shown.size else np.zeros((0, d))
    states = sol.sol(shown) if sol.sol is not None and shown.size else np.zeros((d + k + n, 0))
    base = inst.beta0**-3.0
    predicted = base[:, None] + 3 * a[:, None] * (X.T @ states[d + k:])
    relation = float(np.max(np.abs(states[:d] ** -3.0 - predicted) / base[:, None])) if shown.size else 0.0
    residual = float(np.linalg.norm(residual_of(state)) / max(np.linalg.norm(y), np.finfo(float).tiny))
    if sol.status == 1 and sol.t_events[1].size:
        status, ok = f"diverged: beta reached {BLOW_UP:.0e} at t = {t_end:.3g} (w -> 1)", False
    elif sol.status == 1:
        status, ok = "converged", True
    elif sol.status == 0:
        status, ok = f"did not converge by t = {t_max:.3g} (residual {residual:.2e})", False
    else:
        status, ok = f"the integrator failed: {sol.message}", False
    return FlowResult(a * beta, beta, t_end, residual, ok, status, shown, path, relation, int(sol.nfev),
                      state[d:d + k].copy())


def deq_gradient_descent(inst: Instance, step: float, *, residual_tol: float = 1e-12, max_steps: int = 200_000,
                         chunk: int = 1000) -> FlowResult:
    """Gradient descent on w (``w <- w - step * signs * (X^T r) * beta^2``) from ``w0 = 1 - 1 / beta0`` until
    ``|r| <= residual_tol |y|`` or ``max_steps``; "diverged" when w reaches 1 or a value is not finite."""
    X, y, a = inst.X, inst.y, inst.signs
    w = 1.0 - 1.0 / inst.beta0
    target = residual_tol * max(np.linalg.norm(y), np.finfo(float).tiny)
    steps = 0
    with np.errstate(all="ignore"):
        while steps < max_steps:
            for _ in range(chunk):
                beta = 1.0 / (1.0 - w)
                r = X @ (a * beta) - y
                w = w - step * a * (X.T @ r) * beta**2
            steps += chunk
            beta = 1.0 / (1.0 - w)
            if not (np.all(np.isfinite(w)) and np.all(w < 1)):
                return FlowResult(np.full(inst.d, np.nan), None, steps * step, float("inf"), False,
                                  f"diverged after {steps} steps (step {step:g}: w left the well-posed w < 1)",
                                  steps=steps)
            if np.linalg.norm(X @ (a * beta) - y) <= target:
                break
    beta = 1.0 / (1.0 - w)
    residual = _relative(X, a * beta, y)
    ok = residual <= residual_tol * 1.0001
    status = "converged" if ok else f"did not converge in {steps} steps (residual {residual:.2e})"
    return FlowResult(a * beta, beta, steps * step, residual, ok, status, steps=steps)


def diagonal_network_flow(inst: Instance, alpha: float, *, residual_tol: float = 1e-12, rtol: float = 1e-10,
                          t_max: float = 1e9, samples: int = 150) -> FlowResult:
    """Gradient flow of ``theta = u^2 - v^2`` from ``u = v = alpha`` on the same loss
    (``du/dt = -2 u X^T r``, ``dv/dt = 2 v X^T r``): small alpha tends to the least-l1 interpolant, large
    alpha to the least-l2 one (Woodworth et al., 2020)."""
    from scipy.integrate import solve_ivp

    X, y, d = inst.X, inst.y, inst.d
    target = residual_tol * max(np.linalg.norm(y), np.finfo(float).tiny)
    G = X.T @ X

    def theta_of(state: np.ndarray) -> np.ndarray:
        return state[:d] ** 2 - state[d:] ** 2

    def rhs(_t: float, state: np.ndarray) -> np.ndarray:
        g = X.T @ (X @ theta_of(state) - y)
        return np.concatenate([-2 * state[:d] * g, 2 * state[d:] * g])

    def jac(_t: float, state: np.ndarray) -> np.ndarray:
        u, v = state[:d], state[d:]
        g = X.T @ (X @ theta_of(state) - y)
        dg = np.concatenate([G * (2 * u)[None, :], -G * (2 * v)[None, :]], 1)  # d g / d (u, v)
        J = np.concatenate([-2 * u[:, None] * dg, 2 * v[:, None] * dg])
        J[np.arange(d), np.arange(d)] -= 2 * g
        J[d + np.arange(d), d + np.arange(d)] += 2 * g
        return J

    def converged(_t: float, state: np.ndarray) -> float:
        return float(np.linalg.norm(X @ theta_of(state) - y) - target)

    converged.terminal = True  # type: ignore[attr-defined]
    sol = solve_ivp(rhs, (0.0, t_max), np.full(2 * d, float(alpha)), method="Radau", jac=jac, rtol=rtol,
                    atol=1e-14 * max(alpha**2, 1e-30), events=(converged,), dense_output=True)
    theta = theta_of(sol.y[:, -1])
    times = np.concatenate([[0.0], np.logspace(-3, np.log10(t_max), samples)])
    shown = times[times <= sol.t[-1]]
    path = np.stack([theta_of(s) for s in sol.sol(shown).T]) if sol.sol is not None and shown.size else \
        np.zeros((0, d))
    residual = _relative(X, theta, y)
    ok = sol.status == 1
    status = "converged" if ok else f"did not converge by t = {sol.t[-1]:.3g} (residual {residual:.2e})"
    return FlowResult(theta, None, float(sol.t[-1]), residual, ok, status, shown, path, steps=int(sol.nfev))


def least_l2(inst: Instance) -> np.ndarray:
    """The least-l2-norm interpolant ``X^+ y`` (gradient flow of plain linear regression from 0)."""
    return np.linalg.lstsq(inst.X, inst.y, rcond=None)[0]


def least_l1(inst: Instance) -> np.ndarray:
    """The least-l1-norm interpolant (an LP: theta = p - q, p, q >= 0, minimise sum p + q)."""
    from scipy.optimize import linprog

    d = inst.d
    res = linprog(np.ones(2 * d), A_eq=np.c_[inst.X, -inst.X], b_eq=inst.y, bounds=[(0, None)] * (2 * d),
                  method="highs")
    if res.status != 0:
        raise RuntimeError(f"the least-l1 LP did not solve: {res.message}")
    return res.x[:d] - res.x[d:]
