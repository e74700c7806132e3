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
#: Largest stiffness ``(beta_max / beta_min)^4`` the integration follows: beyond it the Newton systems of an
#: implicit method are singular in float64, and the flow is stopped and reported as such.
STIFFNESS = 1e14


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


def deq_gradient_flow(inst: Instance, *, residual_tol: float = 1e-13, rtol: float = 1e-12, t_max: float = 1e40,
                      s_max: float = 1e6, samples: int = 150, method: str = "LSODA") -> FlowResult:
    """Gradient flow of the diagonal DEQ from ``beta0`` until ``|r| <= residual_tol |y|`` (an event), up to
    the time ``t_max``.  Ends as "diverged" when some beta passes :data:`BLOW_UP` (w -> 1: the flow leaves the
    well-posed DEQs).  ``relation_error`` compares the path with an independent integration of the model's own
    parameters (:func:`_direct_relation`).

    Near the limit the flow is slow wherever beta is small (``d beta / dt`` carries ``beta^4``: a limit with
    beta ~ 1e-4 is reached only by t ~ 1e18).  So it is integrated in ``mu = beta^-3`` (``d mu / dt = 3 signs
    X^T r``: relative accuracy where beta is small) and in the time ``s`` with ``dt / ds = phi = 1 + sum
    beta_i^-4`` (``t`` is a state too).  A positive scalar time change leaves the path and its limit unchanged;
    in ``s`` the residual decays at least like ``exp(-sigma_min(X)^2 s)`` (``docs/bias.md``, "Integrating the
    flow")."""
    from scipy.integrate import solve_ivp

    y, a = inst.y, inst.signs
    n, d, k = inst.n, inst.d, inst.k
    B = np.zeros((n, 0)) if inst.plain is None else inst.plain
    target = residual_tol * max(np.linalg.norm(y), np.finfo(float).tiny)
    F = np.concatenate([inst.A, B], 1)  # (n, d + k): d residual / d (beta, c)
    G = F.T @ F
    size = d + k + n  # state: mu (d), plain c (k), integrated residual v (n), then the time t

    def parameters(state: np.ndarray) -> np.ndarray:
        return np.concatenate([state[:d] ** (-1.0 / 3.0), state[d:d + k]])

    def in_time(state: np.ndarray) -> np.ndarray:
        """d (mu, c, v) / dt."""
        r = F @ parameters(state) - y
        g = F.T @ r
        return np.concatenate([3 * g[:d], -g[d:], r])

    def rhs(_s: float, state: np.ndarray) -> np.ndarray:
        phi = 1.0 + np.sum(state[:d] ** (4.0 / 3.0))
        return np.concatenate([phi * in_time(state), [phi]])

    def jac(_s: float, state: np.ndarray) -> np.ndarray:
        mu = state[:d]
        scale = np.concatenate([-(mu ** (-4.0 / 3.0)) / 3.0, np.ones(k)])  # d (beta, c) / d (mu, c)
        J = np.zeros((size, size))
        J[:d, :d + k] = 3 * G[:d] * scale[None, :]
        J[d:d + k, :d + k] = -G[d:] * scale[None, :]
        J[d + k:, :d + k] = F * scale[None, :]
        phi = 1.0 + np.sum(mu ** (4.0 / 3.0))
        dphi = np.zeros(size + 1)
        dphi[:d] = (4.0 / 3.0) * mu ** (1.0 / 3.0)
        full = np.zeros((size + 1, size + 1))
        full[:size, :size] = phi * J
        full += np.outer(np.append(in_time(state), 1.0), dphi)  # the product rule: (phi f)' = phi f' + f phi'
        return full

    def converged(_s: float, state: np.ndarray) -> float:
        return float(np.linalg.norm(F @ parameters(state) - y) - target)

    def blow_up(_s: float, state: np.ndarray) -> float:
        return float(state[:d].min() - BLOW_UP**-3.0)

    def out_of_time(_s: float, state: np.ndarray) -> float:
        return float(t_max - state[-1])

    def too_stiff(_s: float, state: np.ndarray) -> float:
        return float(STIFFNESS - (state[:d].max() / state[:d].min()) ** (4.0 / 3.0))

    for event in (converged, blow_up, out_of_time, too_stiff):
        event.terminal = True  # type: ignore[attr-defined]
    start = np.concatenate([inst.beta0**-3.0, np.zeros(k + n + 1)])
    atol = np.concatenate([np.full(d, 1e-300), np.full(k + n + 1, 1e-15)])  # mu > 0 is kept to rtol alone
    sol = solve_ivp(rhs, (0.0, s_max), start, method=method, jac=jac, rtol=rtol, atol=atol,
                    events=(converged, blow_up, out_of_time, too_stiff), dense_output=True)
    state = sol.y[:, -1]
    t_end, beta = float(state[-1]), state[:d] ** (-1.0 / 3.0)
    grid = np.concatenate([[0.0], np.logspace(-4, np.log10(max(float(sol.t[-1]), 1e-3)), samples)])
    states = sol.sol(grid[grid <= sol.t[-1]]) if sol.sol is not None else state[:, None]
    residual = float(np.linalg.norm(F @ parameters(state) - y) / max(np.linalg.norm(y), np.finfo(float).tiny))
    status, ok = _flow_status(sol, t_end, residual)
    return FlowResult(a * beta, beta, t_end, residual, ok, status, states[-1], (states[:d] ** (-1.0 / 3.0)).T * a,
                      _direct_relation(inst, states[-1], states[:d + k]), int(sol.nfev), state[d:d + k].copy())


def _direct_relation(inst: Instance, times: np.ndarray, reduced: np.ndarray, horizon: float = 1e3) -> float:
    """Integrate the flow in the model's own parameters (``d beta / dt = -signs (X^T r) beta^4``, plain
    ``dc / dt = -P^T r``) over the sampled times up to ``horizon`` and return the largest deviation of
    ``beta^-3`` from the ``mu`` of :func:`deq_gradient_flow` (``reduced`` (d + k, T)), relative to
    ``beta0^-3``: a check, independent of the change of variables, that the two describe one path."""
    from scipy.integrate import solve_ivp

    y, d, k = inst.y, inst.d, inst.k
    F = np.concatenate([inst.A, np.zeros((inst.n, 0)) if inst.plain is None else inst.plain], 1)
    shown = times <= horizon
    if shown.sum() < 2:
        return 0.0

    def rhs(_t: float, state: np.ndarray) -> np.ndarray:
        g = F.T @ (F @ state - y)
        return np.concatenate([-g[:d] * state[:d] ** 4, -g[d:]])

    sol = solve_ivp(rhs, (0.0, float(times[shown][-1])), np.concatenate([inst.beta0, np.zeros(k)]), method="LSODA",
                    rtol=1e-12, atol=np.concatenate([np.full(d, 1e-300), np.full(k, 1e-15)]), t_eval=times[shown])
    if sol.status != 0:
        return float("inf")
    base = inst.beta0**-3.0
    return float(np.max(np.abs(sol.y[:d] ** -3.0 - reduced[:d, shown]) / base[:, None]))


def _flow_status(sol, t_end: float, residual: float) -> tuple[str, bool]:
    """The one-line status of :func:`deq_gradient_flow` and whether it converged (its events, in order:
    converged, blow-up, out of time, too stiff)."""
    if sol.status == 1 and sol.t_events[1].size:
        return f"diverged: beta reached {BLOW_UP:.0e} at t = {t_end:.3g} (w -> 1)", False
    if sol.status == 1 and sol.t_events[0].size:
        return "converged", True
    if sol.status == 1 and sol.t_events[3].size:
        return (f"stopped at t = {t_end:.3g} (residual {residual:.2e}): beta spans more than "
                f"{STIFFNESS ** 0.25:.0e}, too stiff to integrate in float64"), False
    if sol.status in (0, 1):
        return f"did not converge by t = {t_end:.3g} (residual {residual:.2e})", False
    return f"the integrator failed: {sol.message}", False


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
