"""The second separation: a steep ramp that a bounded-weight DEQ represents exactly, while an FFN of bounded
depth and width needs large weights (``docs/steep.md``; our own reconstruction, the paper's text being
unavailable).

Target: ``r(x) = clip((x - c) / delta, 0, 1)`` on [0, 1] with ``delta = 2^-m`` and ``c = 1/2``.

* DEQ: width 2, ``z_1 = relu((1 - delta) z_1 + x - c)``, ``z_2 = relu((1 - delta) z_2 + x - c - delta)``,
  ``y = z_1 - z_2``: every weight is at most 1 in magnitude and the fixed point gives ``r`` exactly.
* FFN lower bound: depth L (hidden layers), widths <= w, every weight at most B in magnitude: with 1-D input
  ``Lip(g) <= B (w B)^L`` (infinity norms of the layers), and an L-infinity error <= eps forces
  ``Lip(g) >= (1 - 2 eps) / delta``, so ``B^(L+1) >= (1 - 2 eps) 2^m / w^L``.
* FFN construction: width 2, the ramp as a composition of L clips ``clip(2^e v, 0, 1)`` whose slopes
  ``2^e_0 ... 2^e_L`` multiply to ``2^m`` (the last one in the readout), max weight ``2^ceil(m / (L + 1))``.

Every weight is a dyadic rational, so the models are stored exactly; errors are computed exactly from the
breakpoints with the rational reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import torch

from ..core.errors import RegionCountError
from ..core.numbers import bounded_fraction
from ..models.networks import DEQ, DTYPE, FFN, Model
from ..models.wellposed import certify

#: Centre of the ramp (dyadic, so every construction is stored exactly).
RAMP_CENTRE = Fraction(1, 2)
#: Largest m: 1 - 2^-m and 1/2 + 2^-m (the DEQ's feedback and bias) are float64 numbers up to m = 53.
MAX_STEEPNESS = 53


def _check_m(m: int) -> None:
    if not 1 <= m <= MAX_STEEPNESS:
        raise RegionCountError(f"steepness m must be in 1..{MAX_STEEPNESS} (delta = 2^-m), got {m}")


def ramp(x: Fraction, m: int, centre: Fraction = RAMP_CENTRE) -> Fraction:
    """``clip((x - c) 2^m, 0, 1)`` exactly."""
    return min(Fraction(1), max(Fraction(0), (x - centre) * 2**m))


def steep_ramp_deq(m: int) -> DEQ:
    """The width-2 DEQ whose fixed point gives the ramp with delta = 2^-m exactly (weights <= 1)."""
    _check_m(m)
    delta = 2.0**-m
    c = float(RAMP_CENTRE)
    # stored exactly: the feedback 1 - delta and the bias c + delta are float64 numbers for m <= 53
    assert Fraction(1 - delta) == 1 - Fraction(1, 2**m) and Fraction(c + delta) == RAMP_CENTRE + Fraction(1, 2**m)
    return DEQ(W=torch.tensor([[1 - delta, 0.0], [0.0, 1 - delta]], dtype=DTYPE),
               U=torch.tensor([[1.0], [1.0]], dtype=DTYPE), b=torch.tensor([-c, -c - delta], dtype=DTYPE),
               A=torch.tensor([[1.0, -1.0]], dtype=DTYPE), name=f"steep-ramp-deq-m{m}")


def slope_exponents(m: int, depth: int) -> list[int]:
    """Exponents e_0 .. e_L (L = depth) of the clip slopes, as equal as possible, summing to m."""
    parts = depth + 1
    return [m // parts + (1 if i < m % parts else 0) for i in range(parts)]


def steep_ramp_ffn(m: int, depth: int) -> FFN:
    """A width-2 FFN of ``depth`` hidden layers computing the ramp exactly with weights 2^ceil(m / (L + 1)).

    Hidden layer i holds ``relu(2^e_i v)`` and ``relu(2^e_i v - s_i)`` of the previous clip ``v`` (the first
    layer of ``v = x - c``), with ``s_i = 1`` except ``s_{L-1} = 2^-e_L``; the readout ``2^e_L (a - b)``
    rescales the last clip to [0, 1].  By induction the layer-i difference is
    ``clip(2^(e_0 + .. + e_i) (x - c), 0, s_i)``.
    """
    _check_m(m)
    if depth < 1:
        raise RegionCountError(f"the FFN needs at least one hidden layer, got depth {depth}")
    e = slope_exponents(m, depth)
    weights, biases = [], []
    c = float(RAMP_CENTRE)
    for i in range(depth):
        scale = 2.0 ** e[i]
        top = 2.0 ** -e[depth] if i == depth - 1 else 1.0
        if i == 0:
            weights.append(torch.tensor([[scale], [scale]], dtype=DTYPE))
            biases.append(torch.tensor([-scale * c, -scale * c - top], dtype=DTYPE))
        else:
            weights.append(torch.tensor([[scale, -scale], [scale, -scale]], dtype=DTYPE))
            biases.append(torch.tensor([0.0, -top], dtype=DTYPE))
    out = 2.0 ** e[depth]
    weights.append(torch.tensor([[out, -out]], dtype=DTYPE))
    biases.append(torch.zeros(1, dtype=DTYPE))
    return FFN(weights, biases, name=f"steep-ramp-ffn-m{m}-L{depth}")


def max_abs_weight(model: Model) -> float:
    """Largest magnitude of any weight or bias of the model."""
    if isinstance(model, FFN):
        tensors = [*model.weights, *model.biases]
    else:
        tensors = [model.W, model.U, model.b, model.A, model.B, model.c]
    return max(float(t.abs().max()) for t in tensors if t.numel())


def exact_linf_error(model: Model, m: int) -> tuple[Fraction, int]:
    """(exact L-infinity distance to the ramp on [0, 1], linear pieces): both functions are piecewise linear,
    so the largest |difference| is at a breakpoint of either (the model's exact breakpoints from the
    rational reference, the ramp's c and c + delta) or at an end."""
    from ..exact.rational1d import exact_count, exact_output

    count = exact_count(model, [0.0], [1.0], 0.0, 1.0)
    points = {Fraction(0), Fraction(1), RAMP_CENTRE, RAMP_CENTRE + Fraction(1, 2**m), *count.breakpoints}
    error = max(abs(exact_output(model, x)[0] - ramp(x, m)) for x in points)
    return error, count.linear_pieces


def weight_lower_bound(m: int, depth: int, width: int, eps: Fraction) -> tuple[Fraction, float]:
    """A certified lower bound on the largest weight magnitude B of any FFN with ``depth`` hidden layers of
    width <= ``width`` whose L-infinity error to the ramp is <= eps: ``B^(L+1) >= (1 - 2 eps) 2^m / w^L``.

    Returns (the exact right-hand side, a float B with ``B^(L+1) <=`` it: the root rounded down, checked
    exactly); (Fraction(0), 0.0) when ``eps >= 1/2`` (a constant 1/2 already has error 1/2).
    """
    if eps >= Fraction(1, 2):
        return Fraction(0), 0.0
    power = (1 - 2 * eps) * Fraction(2**m, width**depth)
    root = math.exp(math.log(power.numerator) / (depth + 1) - math.log(power.denominator) / (depth + 1))
    # the largest float whose (L+1)th power does not exceed the exact value (a few ulps from exp/log)
    while root > 0 and Fraction(root) ** (depth + 1) > power:
        root = math.nextafter(root, 0.0)
    while Fraction(math.nextafter(root, math.inf)) ** (depth + 1) <= power:
        root = math.nextafter(root, math.inf)
    return power, root


@dataclass
class SteepDepth:
    """One depth L at one steepness m: the certified bound at the width cap and at width 2, and the
    constructed width-2 FFN (max weight, pieces, exact error)."""

    depth: int
    width_cap: int
    weight_lower_bound: float
    bound_power: Fraction
    width2_lower_bound: float
    constructed_max_abs_weight: float
    constructed_linf_error: Fraction
    constructed_pieces: int

    def to_json(self) -> dict[str, Any]:
        return {"depth": self.depth, "width": self.width_cap, "weight_lower_bound": self.weight_lower_bound,
                "weight_lower_bound_power": str(self.bound_power),
                "width2_weight_lower_bound": self.width2_lower_bound,
                "constructed": {"width": 2, "max_abs_weight": self.constructed_max_abs_weight,
                                "linf_error": float(self.constructed_linf_error),
                                "linf_error_exact": str(self.constructed_linf_error),
                                "pieces": self.constructed_pieces}}


@dataclass
class SteepRow:
    """The DEQ and every depth's FFN figures at steepness m (delta = 2^-m)."""

    m: int
    eps: Fraction
    deq_width: int
    deq_max_abs_weight: float
    deq_linf_error: Fraction
    deq_pieces: int
    deq_certificate: str = ""
    depths: list[SteepDepth] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"m": self.m, "delta": 2.0**-self.m, "eps": float(self.eps),
                "deq": {"width": self.deq_width, "max_abs_weight": self.deq_max_abs_weight,
                        "linf_error": float(self.deq_linf_error), "linf_error_exact": str(self.deq_linf_error),
                        "pieces": self.deq_pieces, "well_posed": self.deq_certificate},
                "ffn": [d.to_json() for d in self.depths]}


@dataclass
class SteepReport:
    """``steep``'s result: one :class:`SteepRow` per steepness m, for the listed FFN ``depths``."""

    rows: list[SteepRow]
    depths: list[int]
    max_width: int
    eps: Fraction

    def to_json(self) -> dict[str, Any]:
        return {"target": "clip((x - 1/2) / delta, 0, 1) on [0, 1], delta = 2^-m", "eps": float(self.eps),
                "eps_exact": str(self.eps), "max_width": self.max_width, "rows": [row.to_json() for row in self.rows]}


def steep_row(m: int, depths: list[int], width_cap: int, eps: Fraction) -> SteepRow:
    """Build, certify and measure everything at steepness m (exact arithmetic throughout)."""
    _check_m(m)
    if width_cap < 1:
        raise RegionCountError(f"`max_width` must be at least 1, got {width_cap}")
    deq = steep_ramp_deq(m)
    deq_error, deq_pieces = exact_linf_error(deq, m)
    certificate = certify(deq.W)
    if certificate.well_posed is not True:  # cannot happen for 1 - delta < 1: a guard on the construction
        raise RegionCountError(f"the steep-ramp DEQ at m = {m} is not certified well-posed: {certificate.reason}")
    row = SteepRow(m, eps, deq.width, max_abs_weight(deq), deq_error, deq_pieces,
                   f"{certificate.method}: {certificate.reason}")
    for depth in depths:
        power, bound = weight_lower_bound(m, depth, width_cap, eps)
        _, bound2 = weight_lower_bound(m, depth, 2, eps)
        ffn = steep_ramp_ffn(m, depth)
        error, pieces = exact_linf_error(ffn, m)
        row.depths.append(SteepDepth(depth, width_cap, bound, power, bound2, max_abs_weight(ffn), error, pieces))
    return row


def parse_eps(text: str) -> Fraction:
    """An error tolerance in [0, 1/2): a decimal or a fraction of bounded size
    (:func:`regioncount.core.numbers.bounded_fraction`)."""
    value = bounded_fraction(text, "`eps`", "0.25 or 1/4")
    if not 0 <= value < Fraction(1, 2):
        raise RegionCountError(f"`eps` must be in [0, 1/2), got {text}")
    return value
