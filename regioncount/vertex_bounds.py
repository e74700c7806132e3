"""Rigorous error bounds for the float64 vertices and vertex values of the cell subdivisions
(``docs/exact-dd.md``, "Decisions proven by their own conditioning").

A computed vertex ``x~`` of a cell carries a radius ``r`` with ``|x~ - x*|_inf <= r``, where ``x*`` is the
exact vertex (the point where its tight constraints, read from the stored weights as dyadic rationals,
meet).  Box corners have radius 0.  A cell's affine map ``f = a . x + c`` of a unit is computed with
coefficient errors ``E = |(a~, c~) - (a, c)|`` (entrywise, from the rounding of the layer products,
:func:`product_error`).  Then the computed value ``f~(x~)`` is within

    err = (||a~||_1 + ||E_a||_1) r + E_a . |x~| + E_c + gamma_{d+2} (|a~| . |x~| + |c~|) + (d + 2) 2^-1074

of the exact value ``f(x*)`` (:func:`value_errors`), so ``|f~| > err`` proves its sign.  A new vertex on
the edge from ``u`` (f > 0) to ``v`` (f < 0) is ``x* = u* + lam* (v* - u*)`` with ``lam* = f_u / (f_u - f_v)``
of the exact values; ``lam*`` lies in an interval from the enclosures ``[f~ - err, f~ + err]`` (and the
proven signs), whose midpoint gives ``x~`` and whose half-width, times the edge length, bounds the new
vertex's error (:func:`crossing`).  The radius is thus about ``u |x| / sin(angle)`` for a hyperplane
meeting the edge at a small angle: the conditioning of the vertex decides, not a fixed band.  Every bound is
inflated by ``INFLATE`` for its own rounding; NaN or inf never proves anything (callers test ``> err``).
"""

from __future__ import annotations

import torch

from .forward_error import INFLATE, SMALLEST_SUBNORMAL, UNIT_ROUNDOFF, gamma


def product_error(state: torch.Tensor, state_error: torch.Tensor | None, weight: torch.Tensor,
                  bias: torch.Tensor | None) -> torch.Tensor:
    """Entrywise bound on ``|fl(state @ W^T (+ b on the last row)) - exact|`` (P, q, n) for the computed
    ``state`` (P, q, w) whose entries are within ``state_error`` (same shape, None for exact) of the exact
    ones: ``(state_error + gamma_{w+2} |state|) @ |W|^T`` plus ``gamma |b|`` and an underflow term."""
    g = gamma(weight.shape[1] + 1)
    load = state.abs() * g if state_error is None else torch.addcmul(state_error, state.abs(), torch.full_like(state, g))
    out = load @ weight.abs().T
    if bias is not None:
        out[:, -1] += g * bias.abs()
    return (out + (weight.shape[1] + 2) * SMALLEST_SUBNORMAL) * INFLATE


def value_errors(x: torch.Tensor, radius: torch.Tensor | None, coef: torch.Tensor, coef_error: torch.Tensor
                 ) -> torch.Tensor:
    """(S, V) bounds on ``|fl(a~ . x~ + c~) - (a . x* + c)|`` at the vertices ``x`` (S, V, d) with radii
    ``radius`` (S, V) (None: exact vertices), for maps ``coef`` (S, d + 1) (slopes, then the constant) with
    entrywise errors ``coef_error`` (S, d + 1)."""
    d = x.shape[2]
    a, c = coef[:, :d], coef[:, d]
    ea, ec = coef_error[:, :d], coef_error[:, d]
    g = gamma(d + 1)
    ax = x.abs()
    weights = torch.addcmul(ea, a.abs(), torch.full_like(a, g))  # (S, d)
    err = (ax @ weights[:, :, None])[..., 0] + (ec + g * c.abs())[:, None]
    if radius is not None:
        err = torch.addcmul(err, radius, (a.abs().sum(1) + ea.sum(1))[:, None])
    return (err + (d + 2) * SMALLEST_SUBNORMAL) * INFLATE


def crossing(xu: torch.Tensor, xv: torch.Tensor, ru: torch.Tensor, rv: torch.Tensor, fu: torch.Tensor,
             fv: torch.Tensor, eu: torch.Tensor, ev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """New vertices on the edges from ``xu`` (E, d) (exact value > 0) to ``xv`` (exact value < 0): the
    computed point and its radius (E,).  ``fu``, ``fv`` (E,) are the computed values, ``eu``, ``ev`` their
    error bounds, ``ru``, ``rv`` the ends' radii.  The exact ``lam* = A / (A + B)`` with ``A = f_u > 0`` in
    ``[max(fu - eu, 0), fu + eu]`` and ``B = -f_v > 0`` in ``[max(-fv - ev, 0), -fv + ev]`` lies in
    ``[A_lo / (A_lo + B_hi), A_hi / (A_hi + B_lo)]``, widened for rounding and clipped to [0, 1]."""
    a_lo, a_hi = (fu - eu).clamp_min(0), fu + eu
    b_lo, b_hi = (-fv - ev).clamp_min(0), -fv + ev
    lam_lo = a_lo / (a_lo + b_hi)
    lam_hi = a_hi / (a_hi + b_lo)
    slack = 4 * UNIT_ROUNDOFF
    lam_lo = torch.nan_to_num(lam_lo * (1 - slack), nan=0.0).clamp(0.0, 1.0)
    lam_hi = torch.nan_to_num(lam_hi * (1 + slack), nan=1.0).clamp(0.0, 1.0)
    lam_hi = torch.maximum(lam_hi, lam_lo)
    lam = (lam_lo + lam_hi) * 0.5
    edge = xv - xu
    x = xu + edge * lam[:, None]
    span = edge.abs().amax(1)
    rounding = 3 * UNIT_ROUNDOFF * (xu.abs().amax(1) + span) + SMALLEST_SUBNORMAL
    radius = (torch.maximum(ru, rv) + span * (lam_hi - lam_lo) * 0.5 + rounding) * INFLATE
    return x, radius


def crossing_radius(xu: torch.Tensor, xv: torch.Tensor, ru: torch.Tensor, rv: torch.Tensor, au: torch.Tensor,
                    av: torch.Tensor, eu: torch.Tensor, ev: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """(...) radius of the computed point ``xu + lam (xv - xu)`` (points (..., d)) on an edge whose ends have
    exact values of opposite signs, of magnitudes within ``eu``, ``ev`` of the computed ``au``, ``av``: the
    exact point is ``lam* = A / (A + B)`` along the exact edge, with lam* enclosed as in :func:`crossing`, so
    the error is the ends' radius plus the edge's span times ``max(lam - lam_lo, lam_hi - lam)``."""
    a_lo, a_hi = (au - eu).clamp_min(0), au + eu
    b_lo, b_hi = (av - ev).clamp_min(0), av + ev
    slack = 4 * UNIT_ROUNDOFF
    lam_lo = torch.nan_to_num(a_lo / (a_lo + b_hi) * (1 - slack), nan=0.0).clamp(0.0, 1.0)
    lam_hi = torch.nan_to_num(a_hi / (a_hi + b_lo) * (1 + slack), nan=1.0).clamp(0.0, 1.0)
    width = torch.maximum(lam - lam_lo, lam_hi - lam).clamp_min(0) + 2 * UNIT_ROUNDOFF
    span = (xv - xu).abs().amax(-1)
    rounding = 3 * UNIT_ROUNDOFF * (xu.abs().amax(-1) + span) + SMALLEST_SUBNORMAL
    return (torch.maximum(ru, rv) + span * width + rounding) * INFLATE


def centre_radii(x: torch.Tensor, radius: torch.Tensor | None, valid: torch.Tensor, counts: torch.Tensor
                 ) -> torch.Tensor:
    """(P,) bounds on ``|c~ - c*|_inf`` for the vertex means of cells with vertices ``x`` (P, V, d) and radii
    ``radius`` (P, V) (None: exact vertices): the exact mean of the exact vertices is within the largest
    radius of the computed mean of the computed ones, plus the rounding of V additions and one division
    (``(V + 1) u`` times the largest coordinate)."""
    reach = torch.where(valid[..., None], x.abs(), 0.0).amax((1, 2))
    rounding = (counts.to(x.dtype) + 2) * UNIT_ROUNDOFF * reach + SMALLEST_SUBNORMAL
    if radius is None:
        return rounding * INFLATE
    return (torch.where(valid, radius, 0.0).amax(1) + rounding) * INFLATE
