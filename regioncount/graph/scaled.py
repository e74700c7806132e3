"""Exact rational tensors with one common denominator: ``value = ints / den``.

``ints`` is a numpy array of Python integers (dtype object, so it never overflows) and ``den`` a positive
Python integer shared by every entry.  Stored float64 numbers are dyadic rationals, so
:func:`Scaled.of_tensor` is exact; sums, products with other scaled tensors and integer gathers stay exact,
and the denominator only grows by the factors that the operators bring (a weight's power of two, an average
pool's divisor).  The exact second opinion of the graph walk (``docs/graphs.md``) evaluates operators on
these, batched over pieces, with numpy's object loops doing the integer arithmetic.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch

from ..core.errors import ModelFormatError


def _object(values: np.ndarray) -> np.ndarray:
    return values.astype(object) if values.dtype != object else values


class Scaled:
    """``ints / den``: ``ints`` a numpy object array of Python ints, ``den`` a positive int."""

    __slots__ = ("ints", "den")

    def __init__(self, ints: np.ndarray, den: int = 1) -> None:
        self.ints = _object(np.asarray(ints))
        self.den = int(den)

    @staticmethod
    def of_tensor(tensor: torch.Tensor | np.ndarray) -> Scaled:
        """The exact value of a float tensor (every finite float is m 2^e with integer m, e)."""
        values = np.asarray(tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else tensor,
                            dtype=np.float64)
        if not np.isfinite(values).all():
            raise ModelFormatError("a weight of the network is NaN or infinite")
        mantissa, exponent = np.frexp(values)  # values = mantissa 2^exponent, 0.5 <= |mantissa| < 1
        ints = np.ldexp(mantissa, 53).astype(np.int64)  # exact: values = ints 2^(exponent - 53)
        shift = exponent.astype(np.int64) - 53
        trailing = np.log2((ints & -ints).clip(min=1)).astype(np.int64)  # drop the mantissas' trailing zeros
        ints, shift = ints >> trailing, shift + trailing
        low = int(shift[ints != 0].min()) if (ints != 0).any() else 0
        shift = np.where(ints != 0, shift, low)
        scaled = _object(ints) * np.array([1 << int(k - low) for k in shift.ravel()], dtype=object
                                          ).reshape(shift.shape)
        return Scaled(scaled * (1 << low), 1) if low >= 0 else Scaled(scaled, 1 << -low)

    @staticmethod
    def of_fraction(value: Fraction | int | float, shape: tuple[int, ...] = ()) -> Scaled:
        value = Fraction(value)
        return Scaled(np.full(shape, value.numerator, dtype=object), value.denominator)

    def over(self, den: int) -> np.ndarray:
        """The integers of this value over the denominator ``den`` (a multiple of ``self.den``)."""
        factor = den // self.den
        return self.ints if factor == 1 else self.ints * factor

    def __add__(self, other: Scaled) -> Scaled:
        den = math.lcm(self.den, other.den)
        return Scaled(self.over(den) + other.over(den), den)

    def __sub__(self, other: Scaled) -> Scaled:
        den = math.lcm(self.den, other.den)
        return Scaled(self.over(den) - other.over(den), den)

    def __neg__(self) -> Scaled:
        return Scaled(-self.ints, self.den)

    def times(self, other: Scaled) -> Scaled:
        """The entrywise (broadcast) product."""
        return Scaled(self.ints * other.ints, self.den * other.den)

    def divided(self, divisor: int) -> Scaled:
        return Scaled(self.ints, self.den * int(divisor))

    def reshape(self, *shape: int) -> Scaled:
        return Scaled(self.ints.reshape(*shape), self.den)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.ints.shape)

    def fractions(self) -> np.ndarray:
        return np.vectorize(lambda n: Fraction(n, self.den), otypes=[object])(self.ints)

    def floats(self) -> np.ndarray:
        """Correctly rounded float64 values (Python's int / int division)."""
        return np.vectorize(lambda n: n / self.den, otypes=[np.float64])(self.ints)


def stack(parts: list[Scaled], axis: int = 0) -> Scaled:
    den = math.lcm(*(part.den for part in parts))
    return Scaled(np.stack([part.over(den) for part in parts], axis=axis), den)


def concatenate(parts: list[Scaled], axis: int) -> Scaled:
    den = math.lcm(*(part.den for part in parts))
    return Scaled(np.concatenate([part.over(den) for part in parts], axis=axis), den)
