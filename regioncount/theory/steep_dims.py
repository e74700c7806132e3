"""The steep target in d dimensions (our reconstruction; ``docs/steep.md``, "The steep target in d dimensions").

The target is ``g_d(x) = phi(x_1)`` on [0, 1]^d, with ``phi(t) = t^n / (t^n + (1 - t)^n)`` and ``n = 2^d``. It is
a rational function of x that depends on x_1 alone, rises from 0 to 1, and has slope ``phi'(1/2) = 2^d``: a
step whose steepness grows exponentially in the dimension.

* **The DEQ** (:func:`inverse_construction`) computes ``H^-1(x_1)``, the inverse of an increasing CPWL map H
  through the points ``(j / K, psi(j / K))`` with ``psi = phi^-1`` and ``K = 2^k = 1 / eps``. Its units are
  ``z_0 = y``, the output, and ``z_j = relu(y - j / K)``; its one equation ``y = relu(y - (H(y) - x_1) / K)``
  has exactly one solution. It has K units, and every weight is at most 1 in magnitude. Its error
  ``sup |H^-1(x_1) - phi(x_1)|`` is bounded rigorously, from the exact breakpoints of the stored weights and
  interval enclosures of phi. Its forward pass (:func:`bisection_forward`) bisects y over [0, 1] in
  ``log2(1 / eps) + log2(b - a) = k`` steps.
* **FFNs** (:func:`ffn_weight_bound`): one of depth L and width at most w within eps of ``g_d`` is Lipschitz
  along x_1 at least ``n (D - 2 eps) / 2`` with ``D = phi(1/2 + 1/n) - phi(1/2 - 1/n) > 0.96``. So its largest
  weight B satisfies ``B^(L+1) >= n (D - 2 eps) / (2 w^L)``, exponential in d for bounded depth and width
  below exponential.
"""

from __future__ import annotations

import contextlib
import math
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import mpmath
import torch

from ..core.errors import SegmentError
from ..models.networks import DEQ, DTYPE

#: Largest dimension: the knots psi(j / K) crowd within about log(K) / 2^(d+1) of 1/2, and float64 keeps them
#: apart well enough up to here (the proven error at d = 30, K = 64 is 0.0166 against eps = 0.0156).
MAX_DIMS = 30
#: Largest log2 of the knot count K (K units).
MAX_KNOTS_LOG2 = 10
#: H(0) = -SHIFT: the output is positive at x_1 = 0 (a kink exactly at the end of [0, 1] would be a decision on
#: the segment's end); it moves the output by at most SHIFT / (H's smallest slope), inside the error bound.
SHIFT = 2.0**-40


def _check(d: int, k: int) -> None:
    if not 1 <= d <= MAX_DIMS:
        raise SegmentError(f"the dimension d must be in 1 .. {MAX_DIMS}, got {d}")
    if not 1 <= k <= MAX_KNOTS_LOG2:
        raise SegmentError(f"the knots exponent k (K = 2^k knots, eps = 2^-k) must be in 1 .. {MAX_KNOTS_LOG2}, got {k}")


def target_values(t: torch.Tensor, d: int) -> torch.Tensor:
    """phi(t) (float64) for t in [0, 1]: ``1 / (1 + ((1 - t) / t)^n)``, by logarithms (no overflow)."""
    n = float(2**d)
    inside = (t > 0) & (t < 1)
    safe = torch.where(inside, t, torch.full_like(t, 0.5))
    exponent = (n * (torch.log1p(-safe) - torch.log(safe))).clamp(max=700.0)
    value = 1.0 / (1.0 + torch.exp(exponent))
    return torch.where(inside, value, (t >= 1).to(t.dtype))


@contextlib.contextmanager
def _interval_digits(digits: int) -> Iterator[None]:
    """mpmath's interval context at ``digits`` decimal digits, restored afterwards (mpmath's ``iv`` has no
    ``workdps``; the caller's precision is left as it was)."""
    saved = mpmath.iv.prec
    mpmath.iv.dps = digits
    try:
        yield
    finally:
        mpmath.iv.prec = saved


def _iv(q: Fraction) -> Any:
    """A rational as a (tight) mpmath interval."""
    return mpmath.iv.mpf(q.numerator) / mpmath.iv.mpf(q.denominator)


def phi_enclosure(t: Fraction, d: int) -> Any:
    """An interval (mpmath ``iv``, 40 digits) containing phi(t) exactly, for a rational t."""
    if t <= 0:
        return mpmath.iv.mpf(0)
    if t >= 1:
        return mpmath.iv.mpf(1)
    with _interval_digits(40):
        ratio = mpmath.iv.mpf(t.denominator - t.numerator) / mpmath.iv.mpf(t.numerator)  # (1 - t) / t
        return 1 / (1 + mpmath.iv.exp(2**d * mpmath.iv.log(ratio)))


def _psi(y: Fraction, d: int) -> float:
    """psi(y) = phi^-1(y) = 1 / (1 + ((1 - y) / y)^(1/n)), rounded to float64 (the knots' choice only: the
    error bound is computed from the stored weights)."""
    if y <= 0:
        return 0.0
    if y >= 1:
        return 1.0
    with mpmath.workdps(60):
        root = mpmath.power(mpmath.mpf(y.denominator - y.numerator) / y.numerator, mpmath.mpf(1) / 2**d)
        return float(1 / (1 + root))


@dataclass(frozen=True)
class InverseConstruction:
    """The DEQ of the module docstring for dimension ``d`` and ``K = 2^k`` knots: its model, the exact map
    H (``slopes`` of its pieces on [j / K, (j + 1) / K], ``breaks`` H(j / K), j = 0 .. K - 1, the last piece
    extended beyond 1), a rigorous upper bound ``error_bound`` on sup |H^-1(x_1) - g_d(x)| over [0, 1]^d, and its
    largest weight."""

    d: int
    k: int
    model: DEQ
    slopes: list[Fraction]
    breaks: list[Fraction]
    error_bound: float
    max_weight: float

    @property
    def eps(self) -> Fraction:
        return Fraction(1, 2**self.k)

    @property
    def regions_on_unit_interval(self) -> int:
        """The activation regions along x_1 in [0, 1], exactly, from the lemma of ``docs/steep.md``: z_0 > 0
        throughout (H(0) < 0) and z_j (j >= 1) switches where x_1 crosses H(j / K), so one region more than
        the breakpoints H(j / K) inside (0, 1) (distinct, H increasing)."""
        return 1 + sum(1 for b in self.breaks[1:] if 0 < b < 1)

    def inverse(self, x: Fraction) -> Fraction:
        """H^-1(x) exactly (x at least H(0))."""
        return _inverse_at(self.slopes, self.breaks, x)


def _inverse_at(slopes: list[Fraction], breaks: list[Fraction], x: Fraction) -> Fraction:
    """H^-1(x) exactly, for H of the given piece slopes and (increasing) breakpoints H(j / K), x >= H(0)."""
    j = bisect_right(breaks, x) - 1
    return Fraction(j, len(breaks)) + (x - breaks[j]) / slopes[j]


def _stored_map(model: DEQ, K: int) -> tuple[list[Fraction], list[Fraction]]:
    """The exact slopes and breakpoints of H from the stored weights: on a piece, x_1 = H(y) =
    ((1 - W_00) y - sum_{j <= piece} W_0j (y - j / K) - b_0) / U_01."""
    w = [Fraction(float(v)) for v in model.W[0].tolist()]
    u, b0 = Fraction(float(model.U[0, 0])), Fraction(float(model.b[0]))
    slopes, breaks = [], []
    slope, value = (1 - w[0]) / u, -b0 / u
    for j in range(K):
        if j:
            value += slope * Fraction(1, K)
            slope -= w[j] / u
        slopes.append(slope)
        breaks.append(value)
    return slopes, breaks


def _upper(value: Any) -> float:
    """A float64 at least the upper end of an interval."""
    return math.nextafter(float(mpmath.mpf(value.b)), math.inf)


def _lower(value: Any) -> float:
    """A float64 at most the lower end of an interval."""
    return math.nextafter(float(mpmath.mpf(value.a)), -math.inf)


def _error_bound(slopes: list[Fraction], breaks: list[Fraction], d: int) -> float:
    """sup over x in [0, 1] of |H^-1(x) - phi(x)|: on each piece [a, c] of H^-1 within [0, 1] both functions are
    increasing, so the gap is at most max(H^-1(c) - phi(a), phi(c) - H^-1(a)) (phi by interval enclosures)."""
    cuts = sorted({Fraction(0), Fraction(1), *(b for b in breaks if 0 < b < 1)})
    worst = 0.0
    with _interval_digits(40):
        for a, c in zip(cuts, cuts[1:]):
            above = _iv(_inverse_at(slopes, breaks, c)) - phi_enclosure(a, d)
            below = phi_enclosure(c, d) - _iv(_inverse_at(slopes, breaks, a))
            worst = max(worst, _upper(above), _upper(below))
    return worst


def inverse_construction(d: int, k: int) -> InverseConstruction:
    """The DEQ for ``g_d`` with ``K = 2^k`` units (module docstring; proofs in ``docs/steep.md``): the knots
    psi(j / K)."""
    _check(d, k)
    K = 2**k
    knots = [_psi(Fraction(j, K), d) for j in range(K + 1)]
    if not all(a < b for a, b in zip(knots, knots[1:])):
        raise SegmentError(f"at d = {d} the knots psi(j / {K}) are not distinct in float64: take a smaller d or k")
    return inverse_deq(d, knots, name=f"steep-inverse-d{d}-K{K}")


def inverse_deq(d: int, knots: Sequence[float], name: str = "") -> InverseConstruction:
    """The bisection DEQ whose map H passes through (j / K, knots[j] - SHIFT) (K + 1 increasing knots in [0, 1]
    from 0, K a power of two; the construction's, or trained ones), with its exact map, proven error and
    largest weight."""
    K = len(knots) - 1
    k = K.bit_length() - 1
    _check(d, k)
    if 2**k != K or knots[0] != 0 or not all(a < b <= 1 for a, b in zip(knots, knots[1:])):
        raise SegmentError("the knots must be 2^k + 1 strictly increasing numbers in [0, 1], the first 0")
    slopes = [K * (b - a) for a, b in zip(knots, knots[1:])]  # H's slopes, in (0, K]
    W = torch.zeros(K, K, dtype=DTYPE)
    U = torch.zeros(K, d, dtype=DTYPE)
    b = torch.zeros(K, dtype=DTYPE)
    W[0, 0] = 1 - slopes[0] / K
    for j in range(1, K):
        W[0, j] = -(slopes[j] - slopes[j - 1]) / K
        W[j, 0] = 1.0
        b[j] = -j / K
    U[0, 0] = 1.0 / K
    b[0] = SHIFT / K  # H(0) = -SHIFT: y > 0 on all of [0, 1], so no kink falls on the segment's end
    A = torch.zeros(1, K, dtype=DTYPE)
    A[0, 0] = 1.0
    return analyse_inverse_deq(d, DEQ(W=W, U=U, b=b, A=A, name=name or f"steep-inverse-d{d}-K{K}"))


def analyse_inverse_deq(d: int, model: DEQ) -> InverseConstruction:
    """A bisection DEQ as stored (the layout of :func:`inverse_deq`, K = 2^k units): its exact map H, which must
    increase (the fixed point is then unique), the proven error against ``g_d`` and the largest weight."""
    K = model.width
    k = K.bit_length() - 1
    _check(d, k)
    exact_slopes, breaks = _stored_map(model, K)
    if 2**k != K or not all(s > 0 for s in exact_slopes):
        raise SegmentError(f"the stored map H is not increasing at d = {d}, K = {K}: take a smaller d or k")
    largest = max(float(t.abs().max()) for t in (model.W, model.U, model.b, model.A))
    return InverseConstruction(d, k, model, exact_slopes, breaks, _error_bound(exact_slopes, breaks, d), largest)


def bisection_forward(construction: InverseConstruction, x1: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The DEQ's output at inputs with first coordinates ``x1`` (N,), and the number of bisection steps
    (:func:`bisect`)."""
    return bisect(construction.model, x1)


def bisect(model: DEQ, x1: torch.Tensor) -> tuple[torch.Tensor, int]:
    """A bisection DEQ's output (layout of :func:`inverse_deq`) at first coordinates ``x1`` (N,), and the number
    of bisection steps: y is bisected over [0, 1] against H (float64, from the stored weights) for
    k = log2(1 / eps) + log2(1 - 0) steps, which isolates H's piece; y then solves the piece's affine equation."""
    K = model.width
    k = K.bit_length() - 1
    W0 = model.W[0]
    knots = torch.arange(K, dtype=DTYPE) / K

    def H(y: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(y[:, None] - knots[None, 1:]) @ W0[1:]
        return ((1 - W0[0]) * y - hidden - model.b[0]) / model.U[0, 0]

    lo, hi = torch.zeros_like(x1), torch.ones_like(x1)
    for _ in range(k):
        mid = (lo + hi) * 0.5
        right = H(mid) <= x1
        lo, hi = torch.where(right, mid, lo), torch.where(right, hi, mid)
    slope = (H(hi) - H(lo)) / (hi - lo)
    return lo + (x1 - H(lo)) / slope, k


def ffn_weight_bound(d: int, depth: int, width: int, eps: Fraction) -> float | None:
    """A lower bound on log2 of the largest weight of any FFN of ``depth`` hidden layers of width at most
    ``width`` within ``eps`` of ``g_d`` on [0, 1]^d (module docstring), rounded down; None when
    ``2 eps >= D`` (no bound from this argument)."""
    n = 2**d
    with _interval_digits(40):
        spread = phi_enclosure(Fraction(1, 2) + Fraction(1, n), d) - phi_enclosure(Fraction(1, 2) - Fraction(1, n), d)
        margin = spread - 2 * _iv(eps)
        if not margin.a > 0:
            return None
        lipschitz = mpmath.iv.mpf(n) * margin / 2  # n (D - 2 eps) / 2
        log2 = mpmath.iv.log(lipschitz) / mpmath.iv.log(2) - depth * mpmath.iv.log(width) / mpmath.iv.log(2)
        return _lower(log2 / (depth + 1))


@dataclass(frozen=True)
class SteepDimsRow:
    """One dimension d: the DEQ (units, largest weight, proven error bound, exact regions and linear pieces
    along x_1 on [0, 1] and the count's method, bisection steps) and the FFN lower bounds (log2 of the largest
    weight) per depth at the width cap."""

    d: int
    k: int
    deq_units: int
    deq_max_abs_weight: float
    deq_error_bound: float
    regions: int | None
    pieces: int | None
    count_method: str
    bisection_steps: int
    ffn_log2_bounds: dict[int, float | None]

    def to_json(self) -> dict[str, Any]:
        return {"d": self.d, "steepness": 2**self.d, "eps_deq": 2.0**-self.k,
                "deq": {"units": self.deq_units, "max_abs_weight": self.deq_max_abs_weight,
                        "error_bound": self.deq_error_bound, "regions_along_x1": self.regions,
                        "pieces_along_x1": self.pieces, "count_method": self.count_method,
                        "bisection_steps": self.bisection_steps},
                "ffn_log2_weight_lower_bound": {str(L): b for L, b in self.ffn_log2_bounds.items()}}


@dataclass(frozen=True)
class SteepDimsReport:
    """``steep --dims``: one :class:`SteepDimsRow` per dimension, with the FFN ``depths``, width cap and eps."""

    rows: list[SteepDimsRow]
    depths: list[int]
    max_width: int
    eps: Fraction

    def to_json(self) -> dict[str, Any]:
        return {"target": "g_d(x) = phi(x_1), phi(t) = t^n / (t^n + (1 - t)^n), n = 2^d, on [0, 1]^d",
                "eps": float(self.eps), "eps_exact": str(self.eps), "max_width": self.max_width,
                "depths": self.depths, "rows": [row.to_json() for row in self.rows]}


#: Knot exponents up to this have their regions counted by default (an exact rational walk stays within its
#: budget: K = 32 units at d = 20 in about 0.6 s; K = 64 is over it).
COUNT_MAX_KNOTS_LOG2 = 5


def steep_dims_row(d: int, k: int, depths: list[int], width_cap: int, eps: Fraction, count: bool = True,
                   device: str = "cpu") -> SteepDimsRow:
    """Build and measure the d-dimensional steep target's DEQ and the FFN bounds (module docstring)."""
    from ..line.exact1d import count_segment

    if width_cap < 1:
        raise SegmentError(f"`max_width` must be at least 1, got {width_cap}")
    construction = inverse_construction(d, k)
    regions = pieces = None
    method = "not counted"
    if count:  # well-posed by the lemma of docs/steep.md (the generic certificates do not cover this W)
        result = count_segment(construction.model, segment=([0.0] * d, [1.0] + [0.0] * (d - 1)),
                               assume_well_posed=True, device=device)
        regions, pieces, method = result.activation_regions, result.linear_pieces, result.method
    _, steps = bisection_forward(construction, torch.zeros(1, dtype=DTYPE))
    return SteepDimsRow(d, k, 2**k, construction.max_weight, construction.error_bound, regions, pieces, method, steps,
                        {L: ffn_weight_bound(d, L, width_cap, eps) for L in depths})
