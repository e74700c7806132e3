"""Norms and magnitudes that neither underflow nor overflow, for the bounds that prove decisions
(``docs/exactness.md``, "Magnitudes that cannot vanish").

``torch.linalg.vector_norm`` squares its entries: below about ``2^-537`` the squares are lost to underflow
(a nonzero vector gets the norm 0) and above about ``2^511`` they overflow.  An error bound built on such a
norm is 0 or infinite, and a 0 "proves" every decision.  Here every norm that a proof uses is taken with
power-of-two scaling (exact: only exponents change) wherever the plain one leaves the safe range, and a
nonzero quantity whose bound is not a normal float (it would be 0, subnormal or would overflow) is returned
as ``inf``, so every decision that rests on it stays unproven and goes to the exact recount.
"""

from __future__ import annotations

import math

import torch

#: Plain norms inside [SAFE_LOW, SAFE_HIGH] lost nothing to underflow or overflow of their squares.
SAFE_LOW = 2.0**-480
SAFE_HIGH = 2.0**480
#: The smallest positive normal float64.
SMALLEST_NORMAL = 2.0**-1022


def powers_of_two(exponents: torch.Tensor) -> torch.Tensor:
    """``2^e`` exactly, for integer exponents (any int tensor), clamped to the normal range [-1022, 1023]
    (the float64 bit pattern is built directly)."""
    return ((exponents.to(torch.int64).clamp(-1022, 1023) + 1023) << 52).view(torch.float64)


def _times_power_of_two(x: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """``x * 2^exponent`` (exponent an int tensor broadcasting with x, |exponent| <= 2044) in two
    multiplications by normal powers of two, so that no factor itself over- or underflows."""
    first = torch.div(exponent, 2, rounding_mode="floor")
    return x * powers_of_two(first) * powers_of_two(exponent - first)


def safe_norm(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """The Euclidean norm of ``x`` over ``dim`` (all entries when None), with no loss to underflow or
    overflow: rows whose plain norm leaves [SAFE_LOW, SAFE_HIGH] (or is NaN) are recomputed as
    ``2^e ||x 2^-e||`` with ``2^e`` above their largest magnitude.  Rows of zeros get 0; a nonzero row whose
    norm is not a normal float (subnormal or overflowing) gets ``inf``; a row holding NaN or inf gets inf.
    Accurate to a few units in the last place, as the plain norm (callers inflate)."""
    if dim is None:
        return safe_norm(x.reshape(1, -1), 1)[0]
    plain = torch.linalg.vector_norm(x, dim=dim)
    unsafe = ~((plain >= SAFE_LOW) & (plain <= SAFE_HIGH)) & (plain != 0)
    zero = plain == 0
    if x.shape[dim] and bool(zero.any()):
        unsafe |= zero & (x != 0).any(dim)  # every square underflowed
    if not bool(unsafe.any()):
        return plain
    largest = x.abs().amax(dim=dim, keepdim=True)
    exponent = torch.frexp(torch.nan_to_num(largest, nan=1.0, posinf=1.0)).exponent
    scaled = torch.linalg.vector_norm(_times_power_of_two(x, -exponent), dim=dim)
    value = _times_power_of_two(scaled, exponent.squeeze(dim))
    finite = torch.isfinite(largest.squeeze(dim))
    value = torch.where(finite & (value >= SMALLEST_NORMAL) & torch.isfinite(value), value, torch.inf)
    return torch.where(unsafe, value, plain)


def safe_float_norm(x: torch.Tensor) -> float:
    """:func:`safe_norm` of all of ``x`` as a Python float (0.0 for an empty tensor)."""
    return float(safe_norm(x)) if x.numel() else 0.0


def scale_exponent(x: torch.Tensor) -> int:
    """An exponent e with ``2^(e-1) <= max |x| < 2^e`` (0 for an all-zero or empty tensor): dividing x by
    ``2^e`` (:func:`scaled`) brings its largest entry into [1/2, 1)."""
    if x.numel() == 0:
        return 0
    largest = float(x.abs().max())
    if largest == 0 or not math.isfinite(largest):
        return 0
    return math.frexp(largest)[1]


def scaled(x: torch.Tensor, exponent: int) -> torch.Tensor:
    """``x * 2^-exponent``, exact except for entries that fall below the subnormal range (far below the
    largest, so negligible in any norm of x)."""
    return _times_power_of_two(x, torch.tensor(-exponent, dtype=torch.int64, device=x.device))


def unscale(value: float, exponent: int) -> float:
    """``value * 2^exponent`` as a bound: ``inf`` when it overflows, or when a positive value would fall
    below the normal range (a subnormal bound may have rounded down)."""
    if value == 0:
        return 0.0
    try:
        out = math.ldexp(value, exponent)
    except OverflowError:
        return math.inf
    return out if out >= SMALLEST_NORMAL and math.isfinite(out) else math.inf
