"""Rigorous forward-error bounds that prove the decisions of a rounded FFN walk (``docs/exactness.md``).

When the weights fail the static exact-arithmetic test (:mod:`regioncount.exactness`), the slopes and
intercepts of a piece's pre-activations ``z_j(t) = s_j t + c_j`` are rounded by the layer GEMMs.  For a
dot product of length n every summation order satisfies ``|fl(w . h) - w . h| <= gamma_n |w| . |h|`` with
``gamma_n = n u / (1 - n u)``, ``u = 2^-53``; by Cauchy-Schwarz ``|w| . |h| <= ||w||_2 ||h||_2``.  Carrying
per piece the bound ``e = ||h~ - h||_2`` of each row (slopes, intercepts) of the layer input gives, for unit
j, ``|z~_j - z_j| <= ||w_j||_2 (e + gamma ||h~||_2)`` (+ ``gamma |b_j|`` on the intercepts), and the same for
the next layer after masking.  From these:

* a zero ``x = -c / s`` lies within ``delta = (E_c + |x~| E_s) / (|s~| - E_s) + 2 u |x~|`` of its float
  ``x~`` (infinite when ``|s~| <= E_s``: the slope's sign is not known);
* a unit does not change sign on a piece when its value has the same certain sign at both ends of the
  piece widened by the ends' radii (``|z~(t)| > E_s |t| + E_c + 2 u (|s~ t| + |c~|)``);
* neighbouring points of a piece's sorted cut list ``[tl, zeros..., tr]`` are certainly distinct, in this
  order, with their float midpoint between them, when their gap exceeds twice the sum of their radii;
* a child's activation pattern, read at its midpoint, is certain when every unit's value there exceeds its
  error bound.

A walk in which every decision passes these tests made the decisions exact arithmetic would have made, so
its counts are those of the stored weights; each decision that does not pass is counted as uncertain.  All
bounds are inflated by ``INFLATE`` to cover the rounding of their own computation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

UNIT_ROUNDOFF = 2.0**-53
#: Relative inflation of every computed bound: covers the rounding of the bound's own few operations.
INFLATE = 1.0 + 2.0**-20


def gamma(n: int) -> float:
    """``gamma_n = n u / (1 - n u)`` for a dot product of ``n`` terms plus a bias (n + 2 for safety)."""
    k = (n + 2) * UNIT_ROUNDOFF
    return k / (1.0 - k)


def spectral_norm_bound(weight: torch.Tensor) -> float:
    """A rigorous upper bound on ``||W||_2``.

    For a small side (<= ``GRAM_LIMIT``) the largest eigenvalue of the Gram matrix, plus the Gram's own
    rounding (``gamma ||W||_F^2``) and a relative margin for the backward-stable eigensolver; otherwise
    ``min(||W||_F, sqrt(||W||_1 ||W||_inf))``.
    """
    if weight.numel() == 0:
        return 0.0
    frobenius = float(weight.norm())
    cheap = min(frobenius, math.sqrt(float(weight.abs().sum(0).max()) * float(weight.abs().sum(1).max())))
    rows, cols = weight.shape
    if min(rows, cols) > GRAM_LIMIT:
        return cheap * INFLATE
    gram = weight @ weight.T if rows <= cols else weight.T @ weight
    top = float(torch.linalg.eigvalsh(gram)[-1])
    squared = top * (1 + 2.0**-30) + gamma(max(rows, cols)) * frobenius**2
    return min(cheap, math.sqrt(max(squared, 0.0))) * INFLATE


#: Largest small side of a weight matrix whose spectral norm bound uses a Gram eigenvalue.
GRAM_LIMIT = 4096


@dataclass
class LayerBound:
    """Per-layer constants: row norms ``||W_j||_2`` (n,) and their maximum, ``|b_j|`` (n,) and its maximum, a
    bound on ``||W||_2``, gamma of the fan-in, and the units whose weights and bias are all zero
    (identically zero, computed exactly)."""

    row_norms: torch.Tensor
    all_rows: float
    bias_abs: torch.Tensor
    all_biases: float
    max_row_norm: float
    max_bias: float
    spectral: float
    gamma: float
    zero_units: torch.Tensor
    has_zero_units: bool

    @classmethod
    def of(cls, weight: torch.Tensor, bias: torch.Tensor) -> LayerBound:
        row_norms = weight.norm(dim=1) * INFLATE
        bias_abs = bias.abs()
        zero_units = (weight == 0).all(dim=1) & (bias == 0)
        return cls(row_norms=row_norms, all_rows=float(row_norms.norm()) * INFLATE, bias_abs=bias_abs,
                   all_biases=float(bias_abs.norm()) * INFLATE, max_row_norm=float(row_norms.max()) if row_norms.numel() else 0.0,
                   max_bias=float(bias_abs.max()) if bias_abs.numel() else 0.0,
                   spectral=spectral_norm_bound(weight.cpu()), gamma=gamma(weight.shape[1]),
                   zero_units=zero_units, has_zero_units=bool(zero_units.any()))


def input_scale(h_norms: torch.Tensor, err: torch.Tensor, bound: LayerBound) -> torch.Tensor:
    """(P, 2): ``err + gamma ||h~||`` per row: unit j's pre-activation error is at most ``||W_j||`` times
    this (plus ``gamma |b_j|`` on the intercepts).  ``h_norms`` (P, 2): ``||h~||_2`` of the computed input
    maps' rows; ``err`` (P, 2): bounds on ``||h~ - h||_2`` per row."""
    return (err + bound.gamma * h_norms) * INFLATE


def zero_radius(x: torch.Tensor, zs: torch.Tensor, es: torch.Tensor, ec: torch.Tensor) -> torch.Tensor:
    """Bound on |x~ - x| for the zero x = -c / s of a unit (``inf`` where the slope's sign is unknown), from
    the bounds ``es``, ``ec`` on the errors of its slope and intercept (all broadcast together)."""
    margin = zs.abs() - es
    ax = x.abs()
    radius = ((ec + ax * es) / margin + 2 * UNIT_ROUNDOFF * ax) * INFLATE
    return torch.where(margin > 0, radius, torch.inf)


def value_errors(scale: torch.Tensor, h_norms: torch.Tensor, row_norm: torch.Tensor | float,
                 bias_abs: torch.Tensor | float, gamma_: float, t: torch.Tensor) -> torch.Tensor:
    """Bounds on |fl(s~_j t + c~_j) - (s_j t + c_j)| at float points t; all arguments broadcast together
    (``scale``, ``h_norms`` with a trailing axis of 2: slope row, intercept row).

    The error of the maps contributes ``||W_j|| (A_s |t| + A_c) + gamma |b_j|`` (A = :func:`input_scale`); the
    two roundings of the evaluation at most ``2 u (|s~_j t| + |c~_j|) <= 2 u (||W_j|| (H_s |t| + H_c) + |b_j|)``
    up to second order, with H the input row norms (covered by the inflation).
    """
    at = t.abs()
    k = (scale[..., 0] + 2 * UNIT_ROUNDOFF * h_norms[..., 0]) * at + scale[..., 1] + 2 * UNIT_ROUNDOFF * h_norms[..., 1]
    return (k * row_norm + (gamma_ + 2 * UNIT_ROUNDOFF) * bias_abs) * INFLATE


@dataclass
class SignScreen:
    """The (piece, unit) entries whose sign on the true piece the coarse test of :func:`sign_screen` did not
    prove constant: ``rows``, ``cols`` (K,) in row-major order, ``zm`` (K,) = ``|z~(m)|`` there; ``w``,
    ``far`` (P,): each piece's widened half-width and largest ``|t|``."""

    rows: torch.Tensor
    cols: torch.Tensor
    zm: torch.Tensor
    w: torch.Tensor
    far: torch.Tensor


def sign_screen(zs: torch.Tensor, zc: torch.Tensor, scale: torch.Tensor, h_norms: torch.Tensor,
                bound: LayerBound, tl: torch.Tensor, tr: torch.Tensor, rl: torch.Tensor, rr: torch.Tensor
                ) -> SignScreen:
    """Screen every unit of every piece ((P, n) ``zs``, ``zc``) for a constant sign on the true piece.

    The true piece lies inside [m - w, m + w] = [tl - rl, tr + rr] (ends (P,) with radii (P,), rounded
    outwards), where the true ``|z(t)| >= |z(m)| - |s| w``; so a unit keeps one sign when
    ``|z~(m)| > err(m) + (|s~| + e_s) w``.  This coarse test, with each piece's largest error bound, costs a
    few full passes (the walk's cost on a GPU is memory traffic) and settles every unit whose zero is not
    near the piece; the rest (the crossings among them) are returned.
    """
    a = tl - rl * INFLATE - 2 * UNIT_ROUNDOFF * tl.abs()
    b = tr + rr * INFLATE + 2 * UNIT_ROUNDOFF * tr.abs()
    m = (a + b) * 0.5
    w = (b - a) * (0.5 * INFLATE) + 2 * UNIT_ROUNDOFF * m.abs()
    far = torch.maximum(a.abs(), b.abs())
    coarse = value_errors(scale, h_norms, bound.max_row_norm, bound.max_bias, bound.gamma, far) \
        + scale[:, 0] * bound.max_row_norm * w * INFLATE
    zm = torch.addcmul(zc, zs, m[:, None]).abs_()
    threshold = torch.addcmul(coarse[:, None], zs.abs(), (w * INFLATE)[:, None])
    rows, cols = torch.le(zm, threshold).nonzero(as_tuple=True)
    return SignScreen(rows=rows, cols=cols, zm=zm[rows, cols], w=w, far=far)


def uncertain_signs(screen: SignScreen, skip: torch.Tensor, zs: torch.Tensor, scale: torch.Tensor,
                    h_norms: torch.Tensor, bound: LayerBound) -> torch.Tensor:
    """0-d count of the screened entries (not in ``skip`` (K,), e.g. the crossings, and not identically zero
    units) whose sign on the true piece is not proven constant by each unit's own error bound."""
    keep = ~skip
    if bound.has_zero_units:
        keep &= ~bound.zero_units[screen.cols]
    rows, cols, zm = screen.rows[keep], screen.cols[keep], screen.zm[keep]
    w = screen.w[rows]
    norms = bound.row_norms[cols]
    fine = value_errors(scale[rows], h_norms[rows], norms, bound.bias_abs[cols], bound.gamma, screen.far[rows]) \
        + scale[rows, 0] * norms * w * INFLATE
    return (zm <= (fine + zs[rows, cols].abs() * w) * INFLATE).sum()


def uncertain_gaps(ends: torch.Tensor, radii: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """0-d count of neighbouring cut points not certainly ordered with their midpoint between them.

    ``ends`` (P, c + 2): per piece [tl, sorted kept zeros..., tr] padded with +inf after tr (at column
    ``counts + 1``); ``radii`` the same shape.
    """
    gap = ends[:, 1:] - ends[:, :-1]
    need = 2 * (radii[:, 1:] + radii[:, :-1]) + 4 * UNIT_ROUNDOFF * torch.maximum(ends[:, 1:].abs(),
                                                                                   ends[:, :-1].abs())
    real = torch.arange(gap.shape[1], device=ends.device)[None, :] <= counts[:, None]
    return (real & ~(gap > need * INFLATE)).sum()


def uncertain_midpoints(values: torch.Tensor, scale: torch.Tensor, h_norms: torch.Tensor, bound: LayerBound,
                        mid: torch.Tensor) -> torch.Tensor:
    """0-d count of (child, unit) activations read at the midpoints ``mid`` (C,) whose sign is not certain
    (``values`` (C, n) = the computed ``s~ mid + c~``; ``scale``, ``h_norms`` (C, 2) of the parents).  A
    coarse test with each child's largest bound first, then each remaining unit with its own."""
    coarse = value_errors(scale, h_norms, bound.max_row_norm, bound.max_bias, bound.gamma, mid)
    rows, cols = torch.le(values.abs(), coarse[:, None]).nonzero(as_tuple=True)
    error = value_errors(scale[rows], h_norms[rows], bound.row_norms[cols], bound.bias_abs[cols], bound.gamma,
                         mid[rows])
    return ((values[rows, cols].abs() <= error) & (error > 0)).sum()


def masked_error(parent_err: torch.Tensor, h_norms: torch.Tensor, bound: LayerBound) -> torch.Tensor:
    """(C, 2): bounds on ``||h~ - h||_2`` per row of the children's masked maps (the next layer's input).

    The propagated part ``D W (h~ - h)`` has norm at most ``||W||_2 err``; the new rounding of unit j is at
    most ``gamma (||W_j|| ||h~|| + |b_j|)``, a vector of norm at most ``gamma (||h~|| ||r|| + ||b||)``
    (``r`` the row norms; masking by the active units D only shrinks both).  ``parent_err``, ``h_norms``
    (C, 2): the parents' input error bounds and input row norms.
    """
    out = bound.spectral * parent_err + (bound.gamma * bound.all_rows) * h_norms
    out[:, 1] += bound.gamma * bound.all_biases
    return out * INFLATE


def output_slope_errors(h_slopes: torch.Tensor, err_slopes: torch.Tensor, readout: torch.Tensor) -> torch.Tensor:
    """(P, k) bounds on the error of the output slopes ``h_slopes @ readout^T`` ((P, n) and (P,))."""
    g = gamma(readout.shape[1])
    scale = (err_slopes + g * h_slopes.norm(dim=1)) * INFLATE
    return scale[:, None] * (readout.norm(dim=1) * INFLATE)[None, :]


def layer_bounds(weights: list[torch.Tensor], biases: list[torch.Tensor], device: torch.device,
                 cache_owner: object | None = None) -> list[LayerBound]:
    """The :class:`LayerBound` of each layer, on ``device``.  The spectral bounds cost a Gram matrix and an
    eigenvalue problem per layer, so with ``cache_owner`` (e.g. the model) they are kept on that object and
    reused while its weight tensors are the same, unmodified objects (tensor identity and version)."""
    key = tuple((id(t), t._version, str(device)) for t in (*weights, *biases))
    cached = getattr(cache_owner, "_forward_error_bounds", None) if cache_owner is not None else None
    if cached is not None and cached[0] == key:
        return cached[1]
    bounds = [LayerBound.of(w.to(device), b.to(device)) for w, b in zip(weights, biases)]
    if cache_owner is not None:
        try:
            object.__setattr__(cache_owner, "_forward_error_bounds", (key, bounds))
        except (AttributeError, TypeError):
            pass
    return bounds

