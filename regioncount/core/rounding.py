"""Float64 rounding constants shared by every forward-error bound (``docs/exactness.md``)."""

from __future__ import annotations

UNIT_ROUNDOFF = 2.0**-53
#: The smallest positive float64 (subnormal): the absolute rounding of a product that underflows is at most half.
SMALLEST_SUBNORMAL = 2.0**-1074
#: Relative inflation of every computed bound: covers the rounding of the bound's own few operations.
INFLATE = 1.0 + 2.0**-20


def gamma(n: int) -> float:
    """``gamma_n = n u / (1 - n u)`` for a dot product of ``n`` terms plus a bias (n + 2 for safety)."""
    k = (n + 2) * UNIT_ROUNDOFF
    return k / (1.0 - k)
