"""Rigorous forward-error bounds that prove the decisions of a rounded FFN walk (``docs/exactness.md``).

When the weights fail the static exact-arithmetic test (:mod:`regioncount.line.exactness`), the slopes and
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

Each layer product's own rounding is described by a :class:`ProductRounding`: one rounded GEMM
(:func:`rounded_product`, the bound above), or an error-free split product (:func:`split_product`, three
GEMMs whose result carries one rounding of its own size), which proves deep and wide nets that the first
leaves open.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.magnitudes import powers_of_two, safe_float_norm, safe_norm, scale_exponent, scaled, unscale
from ..core.rounding import INFLATE, SMALLEST_SUBNORMAL, UNIT_ROUNDOFF, gamma  # noqa: F401  (re-exported)
from ..models.networks import zero_rows


def spectral_norm_bound(weight: torch.Tensor) -> float:
    """A rigorous upper bound on ``||W||_2`` (``inf`` when it is not a normal float64).

    For a small side (<= ``GRAM_LIMIT``) the largest eigenvalue of the Gram matrix, plus the Gram's own
    rounding (``gamma ||W||_F^2``) and a relative margin for the backward-stable eigensolver; otherwise
    ``min(||W||_F, sqrt(||W||_1 ||W||_inf))``.  W is first scaled by a power of two that brings its largest
    entry into [1/2, 1) (:mod:`regioncount.core.magnitudes`), so neither the Gram matrix nor the norms under- or
    overflow, and the bound is scaled back.
    """
    if weight.numel() == 0:
        return 0.0
    exponent = scale_exponent(weight)
    if not bool(torch.isfinite(weight).all()):
        return math.inf
    weight = scaled(weight, exponent)
    frobenius = float(weight.norm())
    cheap = min(frobenius, math.sqrt(float(weight.abs().sum(0).max()) * float(weight.abs().sum(1).max())))
    rows, cols = weight.shape
    if min(rows, cols) > GRAM_LIMIT:
        return unscale(cheap * INFLATE, exponent)
    gram = weight @ weight.T if rows <= cols else weight.T @ weight
    top = float(torch.linalg.eigvalsh(gram)[-1])
    squared = top * (1 + 2.0**-30) + gamma(max(rows, cols)) * frobenius**2
    return unscale(min(cheap, math.sqrt(max(squared, 0.0))) * INFLATE, exponent)


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
    underflow: float = 0.0

    @classmethod
    def of(cls, weight: torch.Tensor, bias: torch.Tensor) -> LayerBound:
        row_norms = safe_norm(weight, 1) * INFLATE
        bias_abs = bias.abs()
        zero_units = zero_rows(weight, bias)
        live = row_norms[row_norms > 0]
        # gradual underflow adds at most 2^-1075 per product to a dot product (sums of subnormals are exact):
        # n 2^-1074 per unit, written as ``underflow ||W_j||`` for every unit that has weights
        underflow = (weight.shape[1] + 2) * SMALLEST_SUBNORMAL / float(live.min()) * INFLATE if live.numel() else 0.0
        return cls(underflow=underflow, row_norms=row_norms, all_rows=safe_float_norm(row_norms) * INFLATE,
                   bias_abs=bias_abs, all_biases=safe_float_norm(bias_abs) * INFLATE,
                   max_row_norm=float(row_norms.max()) if row_norms.numel() else 0.0,
                   max_bias=float(bias_abs.max()) if bias_abs.numel() else 0.0,
                   spectral=spectral_norm_bound(weight.cpu()), gamma=gamma(weight.shape[1]),
                   zero_units=zero_units, has_zero_units=bool(zero_units.any()))


@dataclass
class ProductRounding:
    """The rounding of one layer product ``z~ = fl(h~ W^T + b)`` for a batch of pieces.

    Unit j's computed pre-activation row r (0: slopes, 1: intercepts, with the bias) is within
    ``||W_j|| local[:, r] + bias_coeff |b_j| [r = 1]`` of ``W_j . h~_r + b_j``; the vector of these roundings
    over any set of units (the active ones after the ReLU) has norm at most
    ``masked[:, r] + child_coeff ||z~_r||`` over the same units.  ``h_norms`` (P, 2): ``||h~_r||``.
    """

    h_norms: torch.Tensor
    local: torch.Tensor
    masked: torch.Tensor
    bias_coeff: float
    child_coeff: float


def rounded_product(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, bound: LayerBound
                    ) -> tuple[torch.Tensor, ProductRounding]:
    """``z~ = fl(h~ W^T + b)`` (P, 2, n_out) by one GEMM of ``h`` (P, 2, n_in), with the bound
    ``gamma_n |W_j| . |h~| <= gamma_n ||W_j|| ||h~||`` on each dot product's rounding."""
    P = h.shape[0]
    z = (h.reshape(2 * P, -1) @ weight.T).view(P, 2, -1)
    z[:, 1] += bias
    h_norms = safe_norm(h, 2)
    masked = (bound.gamma * bound.all_rows) * h_norms
    masked[:, 1] += bound.gamma * bound.all_biases
    masked += bound.all_rows * bound.underflow
    return z, ProductRounding(h_norms=h_norms, local=bound.gamma * h_norms + bound.underflow, masked=masked,
                              bias_coeff=bound.gamma, child_coeff=0.0)


@dataclass
class SplitRows:
    """An error-free split ``x = hi + lo`` of the rows of a float64 tensor: ``hi`` holds the leading ``bits``
    bits of each row, an integer multiple of ``2^(e - bits)`` of magnitude at most ``2^e``, where ``2^e``
    (``exponent``, raised to at least ``bits - 1016`` so that every scale is a normal float) bounds the row's
    largest magnitude; ``lo = x - hi`` exactly."""

    hi: torch.Tensor
    lo: torch.Tensor
    exponent: torch.Tensor

    @classmethod
    def of(cls, x: torch.Tensor, bits: int) -> SplitRows:
        largest = x.abs().amax(dim=-1, keepdim=True) if x.shape[-1] else x.new_zeros(x.shape[:-1] + (1,))
        exponent = torch.frexp(largest).exponent.clamp(min=bits - 1016)  # largest < 2^exponent (0 -> 0)
        hi = torch.round(x * powers_of_two(bits - exponent)) * powers_of_two(exponent - bits)
        return cls(hi=hi, lo=x - hi, exponent=exponent[..., 0])


def split_bits(n: int) -> int:
    """Bits per slice such that a dot product of ``n`` products of two slices is exact in float64: the
    products are integers of magnitude ``<= 2^(2 bits)`` on a common grid, so their partial sums stay within
    ``n 2^(2 bits) <= 2^53``."""
    return (53 - max(0, math.ceil(math.log2(max(n, 1))))) // 2


def split_product(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, bound: LayerBound
                  ) -> tuple[torch.Tensor, ProductRounding]:
    """``z~ ~ h~ W^T + b`` (P, 2, n_out) with one rounding of each value's size instead of a dot product's
    (``docs/exactness.md``); three GEMMs.

    ``W = W1 + Wr`` and ``h~ = h1 + hr`` are split error-free (:class:`SplitRows`, :func:`split_bits` bits), so
    ``t1 = h1 W1^T`` is exact (when its grid does not underflow); ``a = fl(hr W1^T)`` and ``c = fl(h~ Wr^T)``
    round products about ``2^-bits`` smaller than ``W h~``.  With ``z~ = fl(t1 + fl(fl(a + c) + b))`` unit j's
    error is at most ``u' |z~_j| + gamma_{n+3} (|W1_j| . |hr| + |Wr_j| . |h~|) + u' |b_j|``.
    """
    P, n = h.shape[0], h.shape[2]
    bits = split_bits(n)
    rows = SplitRows.of(weight, bits)
    parts = SplitRows.of(h, bits)
    w_norms = safe_norm(weight, 1)
    live = w_norms > 0
    ratio = float((safe_norm(rows.lo, 1)[live] / w_norms[live]).max()) * INFLATE ** 2 if bool(live.any()) else 0.0

    def product(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return (x.reshape(2 * P, -1) @ w.T).view(P, 2, -1)

    z = product(parts.hi, rows.hi)
    rest = product(parts.lo, rows.hi)
    rest += product(h, rows.lo)
    rest[:, 1] += bias
    z += rest
    # t1 is exact when every grid 2^(e_w - bits) 2^(e_h - bits) is at least 2^-1074 (products that underflow
    # lose bits) and n 2^(e_w + e_h) stays below the overflow threshold
    w_exp = rows.exponent[live] if bool(live.any()) else rows.exponent.new_zeros(1)
    grid_ok = (parts.exponent + int(w_exp.min()) - 2 * bits >= -1074) \
        & (parts.exponent + int(w_exp.max()) + math.ceil(math.log2(max(n, 2))) <= 1020)
    u = UNIT_ROUNDOFF
    h_norms = safe_norm(h, 2)
    # ||hr|| <= sqrt(n) 2^(e_h - bits - 1) (each entry at most half the grid), ||h1|| <= ||h~|| + ||hr||
    lo_h = math.sqrt(n) * powers_of_two(parts.exponent - bits - 1)
    tail = (gamma(n + 3) * ((1 + ratio) * lo_h + ratio * h_norms)
            + (~grid_ok).to(h.dtype) * (gamma(n) * (1 + ratio)) * (h_norms + lo_h) + 3 * bound.underflow) * INFLATE
    rho = u / (1 - u) * INFLATE
    rho_self = rho / (1 - rho) * INFLATE
    masked = bound.all_rows * tail
    masked[:, 1] += rho * bound.all_biases
    return z, ProductRounding(h_norms=h_norms, local=rho_self * h_norms + (1 + rho_self) * tail, masked=masked,
                              bias_coeff=rho_self + (1 + rho_self) * rho, child_coeff=rho)


def input_scale(err: torch.Tensor, rounding: ProductRounding) -> torch.Tensor:
    """(P, 2): ``err + local`` per row: unit j's pre-activation error is at most ``||W_j||`` times this (plus
    ``rounding.bias_coeff |b_j|`` on the intercepts).  ``err`` (P, 2): bounds on ``||h~ - h||_2`` per row of
    the computed input maps; ``rounding`` the product's own rounding (:class:`ProductRounding`)."""
    return (err + rounding.local) * INFLATE


def zero_radius(x: torch.Tensor, zs: torch.Tensor, es: torch.Tensor, ec: torch.Tensor) -> torch.Tensor:
    """Bound on |x~ - x| for the zero x = -c / s of a unit (``inf`` where the slope's sign is unknown), from
    the bounds ``es``, ``ec`` on the errors of its slope and intercept (all broadcast together)."""
    margin = zs.abs() - es
    ax = x.abs()
    radius = ((ec + ax * es) / margin + 2 * UNIT_ROUNDOFF * ax + SMALLEST_SUBNORMAL) * INFLATE
    return torch.where(margin > 0, radius, torch.inf)


def value_errors(scale: torch.Tensor, h_norms: torch.Tensor, row_norm: torch.Tensor | float,
                 bias_abs: torch.Tensor | float, gamma_: float, t: torch.Tensor) -> torch.Tensor:
    """Bounds on |fl(s~_j t + c~_j) - (s_j t + c_j)| at float points t; all arguments broadcast together
    (``scale``, ``h_norms`` with a trailing axis of 2: slope row, intercept row).

    The error of the maps contributes ``||W_j|| (A_s |t| + A_c) + gamma_ |b_j|`` (A = :func:`input_scale`,
    ``gamma_`` the product's bias coefficient); the two roundings of the evaluation at most
    ``2 u (|s~_j t| + |c~_j|) <= 2 u (||W_j|| (H_s |t| + H_c) + |b_j|)`` up to second order, with H the input
    row norms (covered by the inflation), plus a subnormal should the product underflow.
    """
    at = t.abs()
    k = (scale[..., 0] + 2 * UNIT_ROUNDOFF * h_norms[..., 0]) * at + scale[..., 1] + 2 * UNIT_ROUNDOFF * h_norms[..., 1]
    base = k * row_norm + (gamma_ + 2 * UNIT_ROUNDOFF) * bias_abs
    return (base + SMALLEST_SUBNORMAL * (base > 0)) * INFLATE  # a unit with no weights and no bias is exact


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


def sign_screen(zs: torch.Tensor, zc: torch.Tensor, scale: torch.Tensor, rounding: ProductRounding,
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
    coarse = value_errors(scale, rounding.h_norms, bound.max_row_norm, bound.max_bias, rounding.bias_coeff, far) \
        + scale[:, 0] * bound.max_row_norm * w * INFLATE
    zm = torch.addcmul(zc, zs, m[:, None]).abs_()
    threshold = torch.addcmul(coarse[:, None], zs.abs(), (w * INFLATE)[:, None])
    rows, cols = torch.gt(zm, threshold).logical_not_().nonzero(as_tuple=True)  # NaN bounds stay unproven
    return SignScreen(rows=rows, cols=cols, zm=zm[rows, cols], w=w, far=far)


def uncertain_signs(screen: SignScreen, skip: torch.Tensor, zs: torch.Tensor, scale: torch.Tensor,
                    rounding: ProductRounding, bound: LayerBound) -> torch.Tensor:
    """0-d count of the screened entries (not in ``skip`` (K,), e.g. the crossings, and not identically zero
    units) whose sign on the true piece is not proven constant by each unit's own error bound."""
    keep = ~skip
    if bound.has_zero_units:
        keep &= ~bound.zero_units[screen.cols]
    rows, cols, zm = screen.rows[keep], screen.cols[keep], screen.zm[keep]
    w = screen.w[rows]
    norms = bound.row_norms[cols]
    fine = value_errors(scale[rows], rounding.h_norms[rows], norms, bound.bias_abs[cols], rounding.bias_coeff,
                        screen.far[rows]) \
        + scale[rows, 0] * norms * w * INFLATE
    return (~(zm > (fine + zs[rows, cols].abs() * w) * INFLATE)).sum()


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
                        bias_coeff: float, mid: torch.Tensor) -> torch.Tensor:
    """0-d count of (child, unit) activations read at the midpoints ``mid`` (C,) whose sign is not certain
    (``values`` (C, n) = the computed ``s~ mid + c~``; ``scale``, ``h_norms`` (C, 2) of the parents;
    ``bias_coeff`` as in :class:`ProductRounding`).  A coarse test with each child's largest bound first, then
    each remaining unit with its own."""
    coarse = value_errors(scale, h_norms, bound.max_row_norm, bound.max_bias, bias_coeff, mid)
    rows, cols = torch.gt(values.abs(), coarse[:, None]).logical_not_().nonzero(as_tuple=True)
    error = value_errors(scale[rows], h_norms[rows], bound.row_norms[cols], bound.bias_abs[cols], bias_coeff,
                         mid[rows])
    return (~(values[rows, cols].abs() > error) & ~(error <= 0)).sum()  # error 0: a unit with no weights


def masked_error(parent_err: torch.Tensor, masked: torch.Tensor, child_coeff: float,
                 child_norms: torch.Tensor | None, bound: LayerBound) -> torch.Tensor:
    """(C, 2): bounds on ``||h~ - h||_2`` per row of the children's masked maps (the next layer's input).

    The propagated part ``D W (h~ - h)`` has norm at most ``||W||_2 err``; the new rounding over the active
    units D, at most ``masked + child_coeff ||D z~||`` (:class:`ProductRounding`; for one rounded GEMM
    ``gamma (||h~|| ||r|| + ||b||)``, ``r`` the row norms).  ``parent_err``, ``masked`` (C, 2): the parents'
    input error bounds and product roundings; ``child_norms`` (C, 2): ``||D z~||`` per row, the children's
    maps (needed only when ``child_coeff`` is not zero).
    """
    out = bound.spectral * parent_err + masked
    if child_coeff:
        assert child_norms is not None
        out += child_coeff * child_norms
    return out * INFLATE


def output_slope_errors(h_slopes: torch.Tensor, err_slopes: torch.Tensor, readout: torch.Tensor) -> torch.Tensor:
    """(P, k) bounds on the error of the output slopes ``h_slopes @ readout^T`` ((P, n) and (P,))."""
    g = gamma(readout.shape[1])
    scale = (err_slopes + g * safe_norm(h_slopes, 1)) * INFLATE
    return scale[:, None] * (safe_norm(readout, 1) * INFLATE)[None, :]


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

