"""Exact numbers typed by a user: a decimal or a fraction, of bounded size, so that every later exact
computation with it is bounded too."""

from __future__ import annotations

from fractions import Fraction

from .errors import RegionCountError

#: Most significant digits of a decimal, and largest numerator and denominator (10^this) of a fraction.
MAX_DIGITS = 12


def bounded_fraction(value: str | float | Fraction, what: str, example: str = "0.5 or 1/3") -> Fraction:
    """``value`` as an exact fraction ("0.5" -> 1/2, "1/3" -> 1/3, decimals taken as typed), refusing (one
    :class:`RegionCountError` naming ``what``) text that is not a number, decimals with more than
    :data:`MAX_DIGITS` significant digits and fractions whose terms exceed 10^MAX_DIGITS."""
    text = str(value).strip()
    try:
        number = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise RegionCountError(f"{what} must be a number such as {example}, got {value!r}") from None
    if "/" not in text:
        mantissa = text.lower().split("e")[0]
        digits = mantissa.replace(".", "").replace("-", "").replace("+", "").lstrip("0")
        if len(digits) > MAX_DIGITS:
            raise RegionCountError(f"{what} {text} has {len(digits)} significant digits (at most {MAX_DIGITS}); "
                                   "give it as a fraction such as 1/3")
    if max(abs(number.numerator), number.denominator) > 10**MAX_DIGITS:
        raise RegionCountError(f"{what} {text[:40]}{'...' if len(text) > 40 else ''} is too precise: numerator and "
                               f"denominator must have at most {MAX_DIGITS} digits (be at most 10^{MAX_DIGITS})")
    return number
