"""A rigorous a-posteriori proof of a general-W DEQ pattern walk in float64 (``docs/exactness.md``).

The float64 walk (:mod:`regioncount.line.deq_general`) yields the sequence of activation patterns
``D_1, ..., D_N`` it met along x(t) = p + t v, t in [t_low, t_high].  This module proves, with rigorous
bounds on every rounding, that this is the true sequence of the stored weights, or counts the decisions
it cannot prove.  Per pattern D (in batches):

* ``(g~, h~)`` from an approximate inverse ``R`` of ``M = I - W D`` (float64), and ``alpha`` bounding
  ``||I - R M||_inf``; when ``alpha < 1``, M is nonsingular, ``||M^-1||_inf <= ||R||_inf / (1 - alpha)``
  and ``||(g, h) - (g~, h~)||_inf <= ||M^-1||_inf ||rho||_inf`` with ``rho`` a bound on the true residual
  (computed residual plus the rounding of its own computation, of M's diagonal and of ``U v``, ``U p + b``);
* between neighbouring patterns exactly one unit j may differ; the breakpoint is the zero of u_j on the
  left pattern, enclosed by ``t~ +- delta``; u_j's slope must certainly leave the left pattern and enter the
  right one (by continuity the fixed point at the breakpoint solves both patterns' systems);
* every other unit keeps a certain strict sign on the pattern's hull ``[a~ - delta_a, b~ + delta_b]``, and
  the hull's inner ends are certainly ordered.

When all pass, each D_k is consistent (strictly) on the interior of its interval and the fixed point is
unique, so these are the true regions.  Linear pieces: neighbouring output slopes ``A (d * g) + B v``
certainly differ when one coordinate differs by more than the sum of their bounds; pairs the bounds cannot
separate are returned for an exact comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..models.networks import DEQ, DTYPE
from .forward_error import INFLATE, UNIT_ROUNDOFF, gamma, zero_radius

#: Batch of patterns whose m x m systems are inverted together (bounds the memory to ~ 4 * 8 * m^2 * batch).
_BATCH_ELEMENTS = 2**23


@dataclass
class WalkProof:
    """What :func:`prove_walk` established about a sequence of patterns (neighbours already distinct)."""

    regions: int
    #: neighbouring pairs whose output slopes certainly differ
    slope_changes: int
    #: decisions the bounds could not prove (pattern changes, signs, orders, singular bounds)
    unproven: int
    #: indices k of neighbouring pairs (k, k + 1) whose slopes the bounds could not separate
    open_slope_pairs: list[int] = field(default_factory=list)


def distinct_sequence(patterns: torch.Tensor) -> torch.Tensor:
    """The sequence with runs of equal neighbouring patterns (N, m) collapsed to one."""
    if patterns.shape[0] <= 1:
        return patterns
    keep = torch.ones(patterns.shape[0], dtype=torch.bool, device=patterns.device)
    keep[1:] = (patterns[1:] != patterns[:-1]).any(1)
    return patterns[keep]


def _down(x: torch.Tensor) -> torch.Tensor:
    return torch.nextafter(x, torch.full_like(x, -torch.inf))


def _up(x: torch.Tensor) -> torch.Tensor:
    return torch.nextafter(x, torch.full_like(x, torch.inf))


def _bounded_solutions(W: torch.Tensor, rhs: torch.Tensor, rhs_err: torch.Tensor, active: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """For patterns ``active`` (n, m): solutions ``x~`` (n, m, 2) of ``(I - W D) x = rhs`` (rhs (m, 2), its
    rounding bound ``rhs_err`` (m, 2)) and rigorous bounds (n, 2) on ``max_j |x_j - x~_j|`` per column
    (infinite where the bound fails)."""
    n, m = active.shape
    eye = torch.eye(m, dtype=DTYPE, device=W.device)
    d = active.to(DTYPE)
    M = eye - W[None] * d[:, None, :]
    R, info = torch.linalg.inv_ex(M)
    ok = info == 0
    R = torch.where(ok[:, None, None], R, torch.zeros_like(R))
    x = R @ rhs
    diag = M.diagonal(dim1=1, dim2=2).abs()  # the only rounded entries of M: 1 - W_jj
    absM = M.abs()
    # true residual |rhs - M x~| <= |rhs~ - M~ x~| + gamma (|rhs~| + |M~| |x~|) + rhs_err + u |diag| |x~|
    residual = (rhs - M @ x).abs()
    residual = residual + gamma(m) * (rhs.abs() + absM @ x.abs()) + rhs_err + UNIT_ROUNDOFF * diag[..., None] * x.abs()
    # ||I - R M|| <= ||I - fl(R M)|| + gamma ||R|| ||M|| + u ||R|| max|diag|
    R_norm = R.abs().sum(2).amax(1)
    M_norm = absM.sum(2).amax(1)
    alpha = (eye - R @ M).abs().sum(2).amax(1) + R_norm * (gamma(m) * M_norm + UNIT_ROUNDOFF * diag.amax(1))
    alpha = alpha * INFLATE
    inverse_norm = torch.where(ok & (alpha < 1), R_norm / (1 - alpha).clamp_min(1e-300), torch.inf) * INFLATE
    err = inverse_norm[:, None] * residual.amax(1) * INFLATE
    return x, torch.nan_to_num(err, nan=torch.inf)


def _solve_all(W: torch.Tensor, rhs: torch.Tensor, rhs_err: torch.Tensor, patterns: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """g~, h~ (N, m) and their error bounds E_g, E_h (N,) for every pattern, in batches."""
    N, m = patterns.shape
    batch = max(1, _BATCH_ELEMENTS // max(1, m * m))
    xs, errs = [], []
    for start in range(0, N, batch):
        x, err = _bounded_solutions(W, rhs, rhs_err, patterns[start:start + batch])
        xs.append(x)
        errs.append(err)
    x, err = torch.cat(xs), torch.cat(errs)
    return x[..., 0], x[..., 1], err[:, 0], err[:, 1]


def _sign_certain(g: torch.Tensor, h: torch.Tensor, Eg: torch.Tensor, Eh: torch.Tensor, t: torch.Tensor,
                  sign: torch.Tensor) -> torch.Tensor:
    """Whether ``sign * u(t) > 0`` for certain, u = g t + h with entrywise bounds Eg, Eh (broadcast)."""
    value = g * t + h
    bound = (Eg * t.abs() + Eh + 2 * UNIT_ROUNDOFF * ((g * t).abs() + h.abs())) * INFLATE
    return sign * value > bound


def prove_walk(model: DEQ, p: torch.Tensor, v: torch.Tensor, t_low: float, t_high: float,
               patterns: torch.Tensor, linear_pieces: bool) -> WalkProof:
    """Prove (or count the decisions that cannot be proven) that ``patterns`` (N, m) bool, neighbours
    distinct, are the activation patterns along x(t) = p + t v on [t_low, t_high], in order."""
    device = patterns.device
    model = model.to(device)
    W, U, b = model.W, model.U, model.b
    p, v = p.to(device, DTYPE), v.to(device, DTYPE)
    d_in = U.shape[1]
    rhs = torch.stack([U @ v, U @ p + b], 1)  # (m, 2)
    rhs_err = gamma(d_in) * torch.stack([U.abs() @ v.abs(), U.abs() @ p.abs() + b.abs()], 1) * INFLATE
    N, m = patterns.shape
    g, h, Eg, Eh = _solve_all(W, rhs, rhs_err, patterns)
    sign = patterns.to(DTYPE) * 2 - 1
    unproven = int((~torch.isfinite(Eg) | ~torch.isfinite(Eh)).sum())

    # the breakpoints between neighbours: exactly one unit flips; it leaves the left and enters the right
    flips = patterns[1:] ^ patterns[:-1]  # (N - 1, m)
    single = flips.sum(1) == 1
    unit = flips.to(torch.int64).argmax(1)
    rows = torch.arange(N - 1, device=device)
    gl, hl = g[:-1][rows, unit], h[:-1][rows, unit]
    gr = g[1:][rows, unit]
    leaving = (-sign[:-1][rows, unit] * gl > Eg[:-1] * INFLATE)
    entering = (sign[1:][rows, unit] * gr > Eg[1:] * INFLATE)
    t_cut = -hl / gl
    delta = zero_radius(t_cut, gl, Eg[:-1], Eh[:-1])
    good_cut = single & leaving & entering & torch.isfinite(delta) & torch.isfinite(t_cut)
    unproven += int((~good_cut).sum())

    # each pattern's hull [a~ - delta_a, b~ + delta_b] and inner ends a~ + delta_a < b~ - delta_b
    lo_t = torch.cat([torch.tensor([t_low], dtype=DTYPE, device=device), t_cut])
    hi_t = torch.cat([t_cut, torch.tensor([t_high], dtype=DTYPE, device=device)])
    zero = torch.zeros(1, dtype=DTYPE, device=device)
    lo_d, hi_d = torch.cat([zero, delta]), torch.cat([delta, zero])
    hull_lo, hull_hi = _down(lo_t - lo_d), _up(hi_t + hi_d)
    inner_lo, inner_hi = _up(lo_t + lo_d), _down(hi_t - hi_d)
    ordered = inner_lo < inner_hi
    ordered &= torch.isfinite(hull_lo) & torch.isfinite(hull_hi)
    unproven += int((~ordered).sum())
    # units other than the two flips keep a certain strict sign on the hull (affine: check both ends)
    exempt = torch.zeros(N, m, dtype=torch.bool, device=device)
    exempt[:-1] |= flips
    exempt[1:] |= flips
    safe_lo = torch.nan_to_num(hull_lo, nan=0.0, posinf=0.0, neginf=0.0)[:, None]
    safe_hi = torch.nan_to_num(hull_hi, nan=0.0, posinf=0.0, neginf=0.0)[:, None]
    certain = (_sign_certain(g, h, Eg[:, None], Eh[:, None], safe_lo, sign)
               & _sign_certain(g, h, Eg[:, None], Eh[:, None], safe_hi, sign)) | exempt
    unproven += int((~certain).sum())

    slope_changes, open_pairs = 0, []
    if linear_pieces and N > 1:
        A, B = model.A, model.B
        d = patterns.to(DTYPE)
        dg = d * g
        slope = dg @ A.T + (B @ v)[None]
        k = A.shape[0]
        err = ((d @ A.abs().T) * Eg[:, None] + gamma(m + d_in) * (dg.abs() @ A.abs().T + (B.abs() @ v.abs())[None])
               + UNIT_ROUNDOFF * slope.abs()) * INFLATE
        gap = (slope[1:] - slope[:-1]).abs()
        differ = (gap > (err[1:] + err[:-1]) * INFLATE + 2 * UNIT_ROUNDOFF * gap).any(1) if k else \
            torch.zeros(N - 1, dtype=torch.bool, device=device)
        slope_changes = int(differ.sum())
        open_pairs = (~differ).nonzero().flatten().tolist()
    return WalkProof(regions=N, slope_changes=slope_changes, unproven=unproven, open_slope_pairs=open_pairs)
