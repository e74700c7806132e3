"""Layer products in double-double precision with rigorous error bounds (``docs/exactness.md``).

A certified FFN walk (:mod:`regioncount.line.forward_error`) carries a bound on each piece's map error that grows
by ``||W||_2`` per layer: for deep nets (He-init 1 -> 128 x 32: ``||W||_2 ~ 2.8``, ``2.8^32 ~ 2^48``) even one
rounding of each value's size per layer (split products) leaves many decisions unproven.  Here a piece's
map is kept as an unevaluated sum ``hi + lo`` of two float64 tensors (about 106 bits), so only a rounding of
about ``2^-106`` per layer is propagated; the decisions of each layer are made on ``hi``, whose own rounding
(``|lo| <= u |hi|``) is not carried on.

The product ``z = W (hi + lo) + b`` is evaluated by an Ozaki-style scheme: the rows of ``W`` and of ``hi``
are cut error-free into three slices of :func:`~regioncount.line.forward_error.split_bits` bits
(:class:`~regioncount.line.forward_error.SplitRows`), so that each of the nine slice products is an exact GEMM;
the remainders (``W4``, the part of ``hi`` below its third slice ``Rh``) and ``lo`` enter through three
rounded GEMMs a factor ``2^-69`` or ``2^-53`` smaller.  The thirteen terms are summed with error-free
``two_sum`` steps and a compensation term (Ogita, Rump and Oishi's Sum2), whose unrounded result
``s + e`` is within ``gamma_12^2 sum |p_i|`` of the exact sum; ``two_sum(s, e)`` gives ``hi + lo`` exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.magnitudes import safe_norm
from .forward_error import INFLATE, UNIT_ROUNDOFF, LayerBound, ProductRounding, SplitRows, gamma, split_bits

#: Slices of the weights and of ``hi`` whose pairwise products are exact GEMMs.
SLICES = 3
#: Terms summed by :func:`double_product`: the slice products, three rounded remainders and the bias.
TERMS = SLICES * SLICES + 4


def two_sum(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Knuth's error-free sum: ``a + b = s + e`` exactly, ``s = fl(a + b)`` (no overflow assumed)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@dataclass
class WeightSlices:
    """A layer's weights cut error-free into ``SLICES`` slices ``W = W_1 + ... + W_S + W_rest`` (rows of
    :class:`~regioncount.line.forward_error.SplitRows`), with the per-row exponents of each slice and the
    constants of the error bound: ``ratio_slices = max_j sum_k ||W_k,j|| / ||W_j||`` and
    ``ratio_rest = max_j ||W_rest,j|| / ||W_j||`` over the rows with weights."""

    parts: list[torch.Tensor]
    exponents: list[torch.Tensor]
    rest: torch.Tensor
    ratio_slices: float
    ratio_rest: float
    bits: int

    @classmethod
    def of(cls, weight: torch.Tensor) -> WeightSlices:
        bits = split_bits(weight.shape[1])
        parts, exponents = [], []
        rest = weight
        for _ in range(SLICES):
            cut = SplitRows.of(rest, bits)
            parts.append(cut.hi)
            exponents.append(cut.exponent)
            rest = cut.lo
        norms = safe_norm(weight, 1)
        live = norms > 0
        if bool(live.any()):
            slices = sum(safe_norm(part, 1) for part in parts)
            assert isinstance(slices, torch.Tensor)
            ratio_slices = float((slices[live] / norms[live]).max()) * INFLATE ** 2
            ratio_rest = float((safe_norm(rest, 1)[live] / norms[live]).max()) * INFLATE ** 2
        else:
            ratio_slices = ratio_rest = 0.0
        return cls(parts=parts, exponents=exponents, rest=rest, ratio_slices=ratio_slices, ratio_rest=ratio_rest,
                   bits=bits)


def double_product(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, bound: LayerBound,
                   slices: WeightSlices) -> tuple[torch.Tensor, ProductRounding]:
    """``z = W (hi + lo) + b`` as a double-double (P, 4, n_out) (rows: hi slopes, hi intercepts, lo slopes,
    lo intercepts) from ``h`` (P, 4, n_in) in the same layout, and the rounding of ``hi`` and of ``hi + lo``.

    Unit j's ``hi + lo`` is within ``||W_j|| c + gamma_12^2 |b_j|`` (intercepts) of ``W_j . (hi + lo) + b_j``,
    ``c`` (P, 2) from the norms of the slices and remainders (module docstring); its ``hi`` within that plus
    ``|lo_j| <= u |hi_j + lo_j|``, which is the ``local`` part of the returned
    :class:`~regioncount.line.forward_error.ProductRounding` and is not propagated (``masked`` holds ``c`` only).
    """
    P, n = h.shape[0], h.shape[2]
    hi, lo = h[:, :2], h[:, 2:]

    def product(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return (x.reshape(2 * P, -1) @ w.T).view(P, 2, -1)

    cuts, rest = [], hi
    for _ in range(SLICES):
        cut = SplitRows.of(rest, slices.bits)
        cuts.append(cut)
        rest = cut.lo
    live = bound.row_norms > 0
    log_n = math.ceil(math.log2(max(n, 2)))
    w_low = [int(e[live].min()) if bool(live.any()) else 0 for e in slices.exponents]
    w_high = [int(e[live].max()) if bool(live.any()) else 0 for e in slices.exponents]
    exact = torch.ones(P, 2, dtype=torch.bool, device=h.device)
    s: torch.Tensor | None = None
    e = torch.zeros(P, 2, weight.shape[0], dtype=h.dtype, device=h.device)
    # largest terms first: slice pairs by the sum of their ranks
    pairs = sorted(((i, k) for i in range(SLICES) for k in range(SLICES)), key=lambda p: (p[0] + p[1], p[0]))
    for i, k in pairs:
        term = product(cuts[i].hi, slices.parts[k])
        # exact when the products' common grid does not underflow and their sum cannot overflow
        exact &= (cuts[i].exponent + w_low[k] - 2 * slices.bits >= -1074) \
            & (cuts[i].exponent + w_high[k] + log_n <= 1020)
        if s is None:
            s = term
        else:
            s, err = two_sum(s, term)
            e += err
    assert s is not None
    for term in (product(hi, slices.rest), product(rest, weight), product(lo, weight)):
        s, err = two_sum(s, term)
        e += err
    intercepts, err = two_sum(s[:, 1], bias.expand_as(s[:, 1]))
    s = torch.stack([s[:, 0], intercepts], 1)
    e[:, 1] += err
    top, low = two_sum(s, e)
    # the bound c (P, 2), in units of ||W_j||
    g_n = gamma(n)
    g_sum = gamma(TERMS - 3) ** 2  # gamma(k) counts k + 2 terms: gamma_12
    hi_norms, lo_norms, rest_norms = safe_norm(hi, 2), safe_norm(lo, 2), safe_norm(rest, 2)
    slice_norms = sum(safe_norm(cut.hi, 2) for cut in cuts)
    assert isinstance(slice_norms, torch.Tensor)
    remainders = slices.ratio_rest * hi_norms + rest_norms + lo_norms
    magnitude = (slices.ratio_slices * slice_norms + remainders) * (1 + g_n)
    c = g_sum * magnitude + g_n * remainders + slices.ratio_rest * rest_norms \
        + (~exact).to(h.dtype) * (g_n * slices.ratio_slices * slice_norms) + 4 * bound.underflow
    c = c * INFLATE
    rho = UNIT_ROUNDOFF / (1 - UNIT_ROUNDOFF) * INFLATE
    rho_self = rho / (1 - rho) * INFLATE
    bias_dd = g_sum * INFLATE
    norms = hi_norms + lo_norms
    masked = bound.all_rows * c
    masked[:, 1] += bias_dd * bound.all_biases
    z = torch.cat([top, low], 1)
    return z, ProductRounding(h_norms=norms, local=rho_self * norms + (1 + rho_self) * c, masked=masked * INFLATE,
                              bias_coeff=rho_self + (1 + rho_self) * bias_dd, child_coeff=0.0)


def double_state(state: torch.Tensor) -> torch.Tensor:
    """A walk's float64 input maps (P, 2, d) as double-doubles (P, 4, d) with zero ``lo`` rows."""
    return torch.cat([state, torch.zeros_like(state)], 1)
