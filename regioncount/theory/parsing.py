"""Numbers a user types for the separation, taken exactly and of bounded size: alpha (a decimal or a fraction,
or a comma list) and DEQ widths (A:B, A:B:step or a,b,c)."""

from __future__ import annotations

from fractions import Fraction

from ..core.errors import RegionCountError
from ..core.numbers import MAX_DIGITS, bounded_fraction

#: alpha is taken exactly as typed; more significant digits than this (or a fraction with a numerator or
#: denominator above 10^MAX_ALPHA_DIGITS) is refused: write 1/3, not 0.3333333333333333.
MAX_ALPHA_DIGITS = MAX_DIGITS


def parse_alpha(value: str | float | Fraction) -> Fraction:
    """alpha as an exact fraction in (0, 1): "0.5" -> 1/2, "1/3" -> 1/3 (decimals taken as typed), of
    bounded size (:func:`regioncount.core.numbers.bounded_fraction`: every later computation is then bounded)."""
    alpha = bounded_fraction(value, "alpha", "0.5 or 1/3 in (0, 1)")
    if not 0 < alpha < 1:
        raise RegionCountError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    return alpha


#: Most alphas one ``compare`` takes.
MAX_ALPHAS = 16


def parse_alphas(text: str) -> list[Fraction]:
    """A comma list of alphas ("1/4,1/3,0.5"), each as :func:`parse_alpha`, duplicates dropped, in order."""
    parts = [part for part in str(text).split(",") if part.strip()]
    if not parts:
        raise RegionCountError(f"alpha must be a number in (0, 1) such as 0.5 or 1/3, got {text!r}")
    if len(parts) > MAX_ALPHAS:
        raise RegionCountError(f"{len(parts)} alphas given; at most {MAX_ALPHAS}")
    alphas: list[Fraction] = []
    for part in parts:
        alpha = parse_alpha(part)
        if alpha not in alphas:
            alphas.append(alpha)
    return alphas


#: Most DEQ widths one ``compare`` takes.
MAX_WIDTH_LIST = 1000


def parse_widths(text: str) -> list[int]:
    """"4:20" (inclusive), "4:20:2" (with a step) or "4,8,12"."""
    try:
        if ":" in text:
            parts = [int(v) for v in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            step = parts[2] if len(parts) == 3 else 1
            if step < 1:
                raise ValueError
            span = range(parts[0], parts[1] + 1, step)
            if len(span) > MAX_WIDTH_LIST:
                raise RegionCountError(f"{len(span):,} widths in {text!r}; at most {MAX_WIDTH_LIST:,}")
            widths = list(span)
        else:
            widths = [int(v) for v in text.split(",")]
    except ValueError:
        raise RegionCountError(f"widths must look like 4:20, 4:20:2 or 4,8,12, got {text!r}") from None
    if not widths:
        raise RegionCountError(f"the width range {text!r} is empty")
    if min(widths) < 1:
        raise RegionCountError(f"widths must be at least 1, got {min(widths)}")
    return widths
