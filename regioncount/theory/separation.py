"""The DEQ-vs-FFN separation of Theorem 1, evaluated exactly (``docs/theory.md``).

For a width m and alpha in (0, 1): the Theorem 1 DEQ has 2^m regions on [0, 1] (counted exactly here);
the FFN family of the theorem has depth L <= L_max = floor(m^alpha) and width <= w_max =
floor(2^(m^(1-alpha) - 1)).  For 1-D input an FFN of widths n_1..n_L has at most Serra's bound
(= prod(n_l + 1) for n_l >= 2) pieces, so the family reaches 2^m only if that bound does at w_max.
All integers are exact (Python ints; sympy for the irrational width cap), however large m is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..core.errors import RegionCountError
from ..core.numbers import MAX_DIGITS, bounded_fraction
from ..core.settings import DEFAULT_CONSTRUCT_BUDGET, DEFAULT_CONSTRUCT_SECONDS  # noqa: E402  (re-exported)
from ..exact.rational1d import ExactCount
from ..line.exact1d import count_segment
from ..models.networks import FFN
from .bounds import construction_pieces, integer_root, min_width_to_match, same_neurons_max, serra
from .constructions import (
    IDENTITY_ZIGZAG,
    MAX_EXACT_DEQ_WIDTH,
    Zigzag,
    compose_zigzags,
    constructed_ffn,
    fold_zigzag,
    serra_attaining_ffn,
    theorem1_deq,
    tooth_zigzag,
    zigzag_layer,
)

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


def separated_from(rows: list[CompareRow]) -> int | None:
    """The smallest m of ``rows`` from which every row is separated (None when the last one is not)."""
    unseparated = [row.m for row in rows if not row.separated]
    return next((row.m for row in rows if row.m > max(unseparated, default=0)), None)


def alpha_summary(alpha: Fraction, rows: list[CompareRow]) -> dict[str, Any]:
    """One alpha at the largest m of ``rows``: the caps, the family's bound over 2^m, how far outside the
    family the smallest match of depth L_max lies, the L1 lower bound, and where separation starts."""
    last = rows[-1]
    return {"alpha": float(alpha), "alpha_exact": str(alpha), "m": last.m, "max_depth": last.max_depth,
            "max_width": last.max_width, "best_ratio_to_deq": float(last.best_ffn_bound / last.deq_regions),
            "smallest_match_width_over_cap": last.depths[-1].smallest_match["width_over_cap"],
            "l1_lower_bound": last.l1_error["lower_bound"], "separated_from_m": separated_from(rows)}


@dataclass
class SeparationReport:
    """``compare``'s result: per alpha, its rows (:class:`CompareRow`, one per m) and the smallest m from which
    every row is separated.  JSON: one alpha's object, or ``{"alphas": [...], "summary": [...]}``."""

    alphas: list[tuple[Fraction, list[CompareRow]]]

    def separated_from(self, index: int) -> int | None:
        return separated_from(self.alphas[index][1])

    def to_json(self) -> dict[str, Any]:
        objects = [{"alpha": float(a), "alpha_exact": str(a), "separated_from_m": separated_from(rows),
                    "rows": [row.to_json() for row in rows]} for a, rows in self.alphas]
        if len(objects) == 1:
            return objects[0]
        return {"alphas": objects, "summary": [alpha_summary(a, rows) for a, rows in self.alphas]}


def _exact_root(m: int, q: int) -> int | None:
    """The integer r with r^q = m, or None (bounded: for q >= bit_length(m) only m = 0, 1 qualify)."""
    if m < 2:
        return m
    if q >= m.bit_length():
        return None
    root, exact = integer_root(m, q)
    return root if exact else None


def _floor_transcendental(evaluate, magnitude_bits: int) -> int:
    """floor(v) of a number v known not to be an integer, evaluated by ``evaluate(mpmath)`` with enough
    digits that v is provably away from the integers (precision doubled until it is, at most 6 times)."""
    import mpmath

    digits = magnitude_bits * 0.302 + 40
    for _ in range(6):
        with mpmath.workdps(int(digits)):
            value = evaluate(mpmath)
            low = mpmath.floor(value)
            slack = mpmath.mpf(10) ** (-(int(digits) - int(magnitude_bits * 0.302) - 20))
            if value - low > slack and low + 1 - value > slack:
                return int(low)
        digits *= 2
    raise RegionCountError("could not decide a floor to the precision needed (alpha too close to a boundary)")


def depth_cap(m: int, alpha: Fraction) -> int:
    """L_max = floor(m^alpha) exactly, for alpha = p/q.

    If m is a perfect q-th power, r^q = m, then m^alpha = r^p; otherwise m^(p/q) is irrational and its
    floor is decided with interval-checked multiprecision arithmetic.  Bounded in time for any alpha
    accepted by :func:`parse_alpha` (no m^p with a huge p is ever formed).
    """
    p, q = alpha.numerator, alpha.denominator
    root = _exact_root(m, q)
    if root is not None:
        return root**p
    bits = m.bit_length()
    return _floor_transcendental(lambda mp: mp.power(m, mp.mpf(p) / q), bits)


def width_cap(m: int, alpha: Fraction) -> int:
    """w_max = floor(2^(m^(1-alpha) - 1)) exactly.

    With 1 - alpha = k/q: if m = r^q the exponent r^k - 1 is an integer; otherwise it is irrational and
    algebraic, so 2^exponent is transcendental (Gelfond-Schneider) and its floor is decided numerically
    with a proven margin.
    """
    k, q = alpha.denominator - alpha.numerator, alpha.denominator
    root = _exact_root(m, q)
    if root is not None:
        return 2 ** (root**k - 1) if root**k >= 1 else 0
    exponent_bits = int(float(m) ** (k / q)) + 2
    return _floor_transcendental(lambda mp: mp.power(2, mp.power(m, mp.mpf(k) / q) - 1), exponent_bits)


def l1_lower_bound(m: int, pieces: int) -> Fraction:
    """Sharp bound (``docs/theory.md``): every continuous g with N linear pieces on [0, 1] has
    int_0^1 |T^m - g| >= (2^m - 2N + 2) / 2^(m+2) (0 when that is negative)."""
    return max(Fraction(0), Fraction(2**m - 2 * pieces + 2, 2 ** (m + 2)))


#: The teeth approximant reproduces at most 2^this pieces of T^m (its exact error stays cheap to compute).
MAX_APPROXIMANT_TEETH_EXPONENT = 6


def linf_lower_bound(m: int, pieces: int) -> Fraction:
    """Every continuous g with N pieces is at least 1/2 from T^m in L-infinity when 2^m >= 2N (some tent of
    T^m lies inside one linear piece of g, and a line misses a tent of height 1 by 1/2 somewhere)."""
    return Fraction(1, 2) if 2**m >= 2 * pieces else Fraction(0)


def tent_power(x: Fraction, m: int) -> Fraction:
    """T^m(x) exactly, T(x) = 2 min(x, 1 - x) on [0, 1]."""
    for _ in range(m):
        x = 2 * min(x, 1 - x)
    return x


def teeth_approximant(m: int, depth: int, width: int) -> tuple[FFN, int]:
    """An FFN of ``depth`` hidden layers and width <= ``width`` (>= 2) that equals T^m on its first 2^k
    pieces and is flat at 1/2 after them: ``T^k(min(x / a, 1 - 2^-(k+1)))`` with a = 2^(k-m), the min by a
    2-unit layer, T^k by depth - 1 layers of 2^s dyadic teeth each (T^s, 2^s <= width), k = s (depth - 1).
    Returns the FFN and k."""
    s = max(1, (width.bit_length() - 1)) if width >= 2 else 0
    k = min(s * (depth - 1), m - 1, MAX_APPROXIMANT_TEETH_EXPONENT) if s else 0
    s_per_layer = [s] * (depth - 1)
    # use only as many teeth as T^m has room for (k < m)
    remaining, layers = k, []
    for per in s_per_layer:
        take = min(per, remaining)
        layers.append(take)
        remaining -= take
    a = Fraction(1, 2 ** (m - k))
    cap = 1 - Fraction(1, 2 ** (k + 1))
    compress = Zigzag((1 / a, 1 / a), (Fraction(0), cap * a), (Fraction(1), Fraction(-1)), Fraction(0))
    zigzags = [compress] + [tooth_zigzag(2**t) if t else IDENTITY_ZIGZAG for t in layers]
    return compose_zigzags(zigzags, f"teeth-m{m}-L{depth}-k{k}"), k


#: Most breakpoints of T^m visited one by one by :func:`exact_errors_to_sawtooth` (beyond: only when the model
#: is a constant in [0, 1] after its last kink, which the closed-form tail covers).
MAX_EXACT_TEETH_POINTS = 2**20


def exact_errors_to_sawtooth(model: FFN, m: int, count: ExactCount | None = None) -> tuple[Fraction, Fraction]:
    """(L1, L-infinity) distance between the model and T^m on [0, 1], exactly: both are piecewise linear, so
    the difference is linear between consecutive points of the union of their breakpoints, where it is
    evaluated exactly (the model from its exact affine map on each region) and |.| integrated in closed form
    (with the crossing point when it changes sign).  When the model is a constant c in [0, 1] after its
    last breakpoint (rounded up to a breakpoint of T^m), every remaining piece of T^m contributes exactly
    h (c^2 + (1 - c)^2) / 2, h = 2^-m, without visiting it.  ``count``: the model's exact count on [0, 1]
    (:func:`regioncount.exact.rational1d.exact_count`), when already known."""
    from ..exact.rational1d import exact_count

    if count is None:
        count = exact_count(model, [0.0], [1.0], 0.0, 1.0)
    kinks = count.breakpoints
    maps = [(slopes[0], intercepts[0]) for slopes, intercepts in count.outputs]
    last = -(-max(kinks, default=Fraction(0)) * 2**m // 1)  # index of the first T^m breakpoint after them
    end_slope, c = maps[-1]
    constant_tail = end_slope == 0 and 0 <= c <= 1
    if not constant_tail:
        if 2**m > MAX_EXACT_TEETH_POINTS:
            raise RegionCountError(f"the approximant is not a constant in [0, 1] after its last breakpoint, and "
                                   f"T^m has 2^{m} pieces to visit (at most {MAX_EXACT_TEETH_POINTS:,})")
        last = 2**m
    points = sorted({Fraction(j, 2**m) for j in range(int(last) + 1)} | set(kinks))
    diff = []
    region = 0
    for x in points:  # points ascend: the region holding x advances monotonically
        while region < len(kinks) and kinks[region] < x:
            region += 1
        slope, intercept = maps[region]
        diff.append(slope * x + intercept - tent_power(x, m))
    tail, tail_max = Fraction(0), Fraction(0)
    if last < 2**m:
        tail = (2**m - last) * Fraction(1, 2**m) * (c * c + (1 - c) ** 2) / 2
        tail_max = max(c, 1 - c)
    l1 = Fraction(0)
    for (x0, d0), (x1, d1) in zip(zip(points, diff), zip(points[1:], diff[1:])):
        h = x1 - x0
        if d0 * d1 >= 0:
            l1 += (abs(d0) + abs(d1)) / 2 * h
        else:
            l1 += (d0 * d0 + d1 * d1) / (2 * (abs(d0) + abs(d1))) * h
    return l1 + tail, max(max(abs(d) for d in diff), tail_max)


def family_pieces(widths: list[int]) -> tuple[int, str]:
    """Pieces on [0, 1] of :func:`family_construction` for these widths, and whether they attain Serra's 1-D
    bound prod(n_l + 1) ("attained") or not ("open"): fold layers (n >= 3) before a last zigzag layer of any
    width attain it; a tent layer (n = 2) doubles the pieces (3 would be the bound); a width-1 layer passes
    its input on.  Depth 1 always attains."""
    if len(widths) == 1 or all(n >= 3 for n in widths[:-1]):
        return serra(1, widths), "attained"
    pieces = widths[-1] + 1
    for n in widths[:-1]:
        pieces *= n + 1 if n >= 3 else 2 if n == 2 else 1
    return pieces, "open"


def family_construction(widths: list[int]) -> FFN:
    """The package's best explicit FFN with these per-layer widths on [0, 1] (see :func:`family_pieces`)."""
    if len(widths) == 1 or all(n >= 3 for n in widths[:-1]):
        return serra_attaining_ffn(widths)
    layers = [fold_zigzag(n) if n >= 3 else tooth_zigzag(2) if n == 2 else IDENTITY_ZIGZAG for n in widths[:-1]]
    return compose_zigzags([*layers, zigzag_layer(widths[-1])], "mixed-" + "-".join(map(str, widths)))


def balanced_widths(m: int, depth: int) -> list[int]:
    """Per-layer widths with prod(n_l + 1) >= 2^m and the fewest neurons among widths n_l + 1 in {k, k+1},
    k = floor(2^(m/L)) (AM-GM: balanced factors minimise the sum for a given product); the larger widths
    come first.  Widths below 3 (k < 4) are raised to 3 where the fold needs it, keeping depth L."""
    root, exact = integer_root(2**m, depth)
    if exact:
        factors = [root] * depth
    else:
        k = root
        factors = [k + 1] * depth
        for j in range(depth + 1):
            trial = [k + 1] * j + [k] * (depth - j)
            if math.prod(trial) >= 2**m:
                factors = trial
                break
    widths = [max(a - 1, 1) for a in factors]
    if any(n < 3 for n in widths[:-1]):
        # small factors: fold layers of width 3 (x4 each) and a last layer for the rest, width-1 identities before
        fours = max(0, (m - 1) // 2)
        rest = 2 ** (m - 2 * fours)  # 2 or 4 (or 1 when m = 0)
        layers = [3] * fours + [max(rest - 1, 1)]
        widths = [1] * (depth - len(layers)) + layers if len(layers) <= depth else widths
    return widths


@dataclass
class DepthRow:
    depth: int
    bound_at_max_width: int
    ratio_to_deq: float
    l1_lower_bound: Fraction
    min_width_to_match: int
    status: str
    constructed_width: int | None = None
    constructed_regions: int | None = None
    constructed_method: str | None = None  # "exact" or "approximate" (see docs/exactness.md)
    #: why the uniform construction at the width needed was not counted (budget, time), when it was not
    constructed_not_counted: str | None = None
    best_in_family: dict[str, Any] = field(default_factory=dict)
    smallest_match: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "bound_at_max_width": self.bound_at_max_width,
            "ratio_to_deq": self.ratio_to_deq,
            "l1_lower_bound": float(self.l1_lower_bound),
            "min_width_to_match": self.min_width_to_match,
            "status": self.status,
            "constructed_width": self.constructed_width,
            "constructed_regions": self.constructed_regions,
            "constructed_method": self.constructed_method,
            "constructed_not_counted": self.constructed_not_counted,
            "best_in_family": self.best_in_family,
            "smallest_match": self.smallest_match,
        }


@dataclass
class CompareRow:
    m: int
    deq_regions: int
    deq_seconds: float
    max_depth: int
    max_width: int
    best_ffn_bound: int
    separated: bool
    same_neurons_bound: int
    depths: list[DepthRow]
    trained: list[dict[str, Any]] = field(default_factory=list)
    l1_error: dict[str, Any] = field(default_factory=dict)
    linf_error: dict[str, Any] = field(default_factory=dict)

    def verdict(self) -> str:
        """What this row shows, in words (every number counted or proved)."""
        top = max(self.depths, key=lambda d: d.best_in_family.get("pieces_by_construction", 0)).best_in_family
        if top.get("regions") is not None:
            how = "counted" if top.get("method") == "exact" else \
                f"counted approximately: {top.get('doubtful_decisions', 0):,} decisions left to rounding"
            best = f"the best in-family FFN built has {top['regions']:,} regions ({how}, {top['status']})"
        else:
            best = f"the best in-family construction has {top.get('pieces_by_construction', 0):,} pieces (not counted)"
        if not self.separated:
            return (f"not separated at m = {self.m}: the family's bound {self.best_ffn_bound:,} reaches the DEQ's "
                    f"{self.deq_regions:,} counted regions; {best}")
        lower = self.l1_error.get("lower_bound", 0.0)
        return (f"separated at m = {self.m}: the DEQ has {self.deq_regions:,} regions (counted), every in-family FFN "
                f"at most {self.best_ffn_bound:,} (Serra's bound); {best}; every in-family FFN is at least "
                f"{lower:.4f} from T^m in L1")

    def to_json(self) -> dict[str, Any]:
        return {
            "m": self.m,
            "deq_regions": self.deq_regions,
            "deq_seconds": self.deq_seconds,
            "max_depth": self.max_depth,
            "max_width": self.max_width,
            "best_ffn_bound": self.best_ffn_bound,
            "best_ratio_to_deq": float(Fraction(self.best_ffn_bound, self.deq_regions)),
            "separated": self.separated,
            "same_neurons_bound": self.same_neurons_bound,
            "depths": [d.to_json() for d in self.depths],
            "l1_error": self.l1_error,
            "linf_error": self.linf_error,
            "verdict": self.verdict(),
            "trained": self.trained,
        }


def depth_row(m: int, depth: int, max_width: int, construct_budget: int, device: str,
              allowance: CountAllowance | None = None) -> DepthRow:
    """Bound at w_max, the width needed to reach 2^m, its status, and (within the piece budget and the time
    ``allowance``) built FFNs counted exactly."""
    allowance = allowance if allowance is not None else CountAllowance(float("inf"), device)
    target = 2**m
    bound = serra(1, [max_width] * depth)
    needed = min_width_to_match(m, depth)
    if bound < target:
        status = "impossible in family"
    elif construction_pieces(needed, depth) >= target:
        status = "constructible"
    else:
        status = "open"
    row = DepthRow(depth, bound, float(Fraction(bound, target)), l1_lower_bound(m, bound), needed, status)
    row.best_in_family = _built_and_counted([max_width] * depth, construct_budget, allowance, linear_pieces=True)
    match = balanced_widths(m, depth)
    row.smallest_match = _built_and_counted(match, construct_budget, allowance, linear_pieces=False)
    needed_pieces = construction_pieces(needed, depth)
    if needed_pieces >= target:
        # the uniform-width construction at the width needed (the smallest match when that is uniform)
        if match == [needed] * depth:
            if row.smallest_match["regions"] is not None:
                row.constructed_regions, row.constructed_method = (row.smallest_match["regions"],
                                                                   row.smallest_match["method"])
                row.constructed_width = needed
        else:
            uniform = _built_and_counted([needed] * depth, construct_budget, allowance, linear_pieces=False,
                                         build=lambda: constructed_ffn(needed, depth), pieces=needed_pieces)
            if uniform["regions"] is not None:
                row.constructed_regions, row.constructed_method = uniform["regions"], uniform["method"]
                row.constructed_width = needed
            else:
                row.constructed_not_counted = uniform["not_counted"]
    row.smallest_match["neurons"] = sum(match)
    row.smallest_match["width_over_cap"] = max(match) / max_width if max_width else float("inf")
    row.smallest_match["reaches_2m"] = row.smallest_match["pieces_by_construction"] >= target
    return row


class CountAllowance:
    """Seconds of exact FFN counting a ``compare`` row may still spend, by the cost model
    :func:`construction_seconds`; each count is taken (and its estimate subtracted) only when it fits."""

    def __init__(self, seconds: float | None, device: str) -> None:
        from ..core.devices import resolve_device

        self.device = device
        self.kind = resolve_device(device).type
        self.seconds_left = default_construct_seconds(self.kind) if seconds is None else seconds

    def take(self, estimate: float) -> bool:
        if estimate > self.seconds_left:
            return False
        self.seconds_left -= estimate
        return True


#: Work (pieces x widest hidden layer: the walk carries each piece's hidden state) per second of the exact
#: count of a family construction, conservative for a 2-core CPU and an NVIDIA H100 (measured: a 2,047^2
#: net with 4.2e6 pieces, 8.6e9 units, in 19 s on a 16-thread Xeon; 4.4e12 units in ~150 s on the H100).
FFN_COUNT_RATE = {"cpu": 2e8, "cuda": 1e10}
#: A single hidden layer is counted by sorting its kinks: about this many work units per piece.
ONE_LAYER_UNITS_PER_PIECE = 128
#: Seconds per weight or bias to build a construction (its layers are derived in exact rationals).
BUILD_SECONDS_PER_PARAMETER = 2e-6
#: Largest construction (weights and biases) ``compare`` builds: 2^25 float64 values, 256 MiB.
MAX_BUILT_PARAMETERS = 2**25


def default_construct_seconds(device: str) -> float:
    """The default time allowance per ``compare`` width m on ``device`` ("auto", "cpu", "cuda")."""
    from ..core.devices import resolve_device

    return DEFAULT_CONSTRUCT_SECONDS.get(resolve_device(device).type, DEFAULT_CONSTRUCT_SECONDS["cpu"])


def construction_parameters(widths: list[int]) -> int:
    """Weights and biases of a 1 -> widths -> 1 FFN."""
    return sum(a * b + b for a, b in zip([1] + widths, widths + [1]))


def construction_seconds(widths: list[int], pieces: int, kind: str) -> float:
    """Estimated seconds to build and count a family construction with these hidden ``widths`` and
    ``pieces`` on a device of this ``kind`` (``docs/theory.md``, "Cost of the family search")."""
    units = ONE_LAYER_UNITS_PER_PIECE if len(widths) == 1 else max(widths)
    return (pieces * units / FFN_COUNT_RATE.get(kind, FFN_COUNT_RATE["cpu"])
            + construction_parameters(widths) * BUILD_SECONDS_PER_PARAMETER)


def _may_count(widths: list[int], pieces: int, budget: int, allowance: CountAllowance) -> str | None:
    """Why a construction is not counted (None: it is, and its estimate is taken from ``allowance``)."""
    if pieces > budget:
        return f"{pieces:,} pieces over the construct budget {budget:,}"
    parameters = construction_parameters(widths)
    if parameters > MAX_BUILT_PARAMETERS:
        return f"{parameters:,} parameters, over the {MAX_BUILT_PARAMETERS:,} that compare builds"
    estimate = construction_seconds(widths, pieces, allowance.kind)
    if not allowance.take(estimate):
        return (f"counting would take about {estimate:.3g} s on {allowance.kind}, over the "
                f"{max(allowance.seconds_left, 0.0):.3g} s left of the time limit")
    return None


def _built_and_counted(widths: list[int], budget: int, allowance: CountAllowance, linear_pieces: bool,
                       build: Callable[[], FFN] | None = None, pieces: int | None = None) -> dict[str, Any]:
    """Build a construction for ``widths`` (the family's, or ``build()`` with its known ``pieces``) and count
    it exactly when it fits the piece ``budget`` and the time ``allowance``; ``not_counted`` says why
    otherwise."""
    bound = serra(1, widths)
    entry: dict[str, Any] = {"widths": widths, "bound": bound, "regions": None, "pieces": None,
                             "method": None}
    if build is None or pieces is None:
        pieces, status = family_pieces(widths)
        build = build or (lambda: family_construction(widths))
    else:
        status = "constructed"
    entry["pieces_by_construction"] = pieces
    entry["status"] = status
    reason = _may_count(widths, pieces, budget, allowance)
    if reason is None:
        result = count_segment(build(), interval=(0.0, 1.0), device=allowance.device, linear_pieces=linear_pieces)
        entry["regions"], entry["pieces"], entry["method"] = (result.activation_regions, result.linear_pieces,
                                                              result.method)
        entry["doubtful_decisions"] = result.doubtful_decisions
    else:
        entry["not_counted"] = reason
    return entry


def compare_width(m: int, alpha: Fraction, *, construct_budget: int = DEFAULT_CONSTRUCT_BUDGET,
                  device: str = "auto", construct_seconds: float | None = None) -> CompareRow:
    """One row of ``regioncount compare``: the DEQ counted exactly against the FFN family's bounds.

    Family constructions are built and counted exactly when they have at most ``construct_budget`` pieces
    and their estimated counting times (:func:`construction_seconds`) fit ``construct_seconds`` together
    (None: :data:`~regioncount.core.settings.DEFAULT_CONSTRUCT_SECONDS` of the device)."""
    if m < 1:
        raise RegionCountError(f"widths must be at least 1, got {m}")
    if m > MAX_EXACT_DEQ_WIDTH:
        raise RegionCountError(f"width {m} exceeds {MAX_EXACT_DEQ_WIDTH}: the DEQ cannot be counted exactly "
                               "in float64 (use `regioncount bound` for bounds alone)")
    start = time.perf_counter()
    deq = count_segment(theorem1_deq(m), interval=(0.0, 1.0), linear_pieces=False, device=device,
                        known_regions=2**m, max_regions=None)
    deq_seconds = time.perf_counter() - start
    max_depth, max_width = depth_cap(m, alpha), width_cap(m, alpha)
    allowance = CountAllowance(construct_seconds, device)
    depths = [depth_row(m, L, max_width, construct_budget, device, allowance) for L in range(1, max_depth + 1)]
    best = max(d.bound_at_max_width for d in depths)
    row = CompareRow(m, deq.activation_regions, deq_seconds, max_depth, max_width, best,
                     best < deq.activation_regions, same_neurons_max(m), depths)
    lower = l1_lower_bound(m, best)
    row.l1_error = {"lower_bound": float(lower), "exact_lower_bound": str(lower)}
    row.linf_error = {"lower_bound": float(linf_lower_bound(m, best))}
    if max_width >= 2 and m >= 2:
        net, k = teeth_approximant(m, max_depth, max_width)
        l1, linf = exact_errors_to_sawtooth(net, m)
        widths = [int(w.shape[0]) for w in net.weights[:-1]]
        row.l1_error |= {"constructed": float(l1), "constructed_exact": str(l1), "constructed_widths": widths,
                         "constructed_teeth": 2**k}
        row.linf_error["constructed"] = float(linf)
    else:  # the constant 1/2 (all weights zero) is always in the family
        row.l1_error |= {"constructed": 0.25, "constructed_exact": "1/4", "constructed_widths": [1] * max_depth,
                         "constructed_teeth": 0}
        row.linf_error["constructed"] = 0.5
    return row


#: Most DEQ widths one ``compare`` takes.
MAX_WIDTH_LIST = 1000
#: Regions per second of the exact DEQ count used to estimate ``compare``'s time before it starts
#: (measured, docs/benchmarks.md: 2-core CPU ~1.5e7/s; NVIDIA H100 ~3e9/s), and the default time limit.
DEQ_RATE = {"cpu": 1.5e7, "cuda": 3e9}


def check_compare_cost(widths: list[int], device: str, max_seconds: float) -> float:
    """Refuse, before any work, widths beyond the float64 limit or DEQ counts estimated to take longer than
    ``max_seconds`` in all; returns the estimate in seconds."""
    from ..core.devices import resolve_device

    if max(widths) > MAX_EXACT_DEQ_WIDTH:
        raise RegionCountError(f"width {max(widths)} exceeds {MAX_EXACT_DEQ_WIDTH}: the DEQ cannot be counted exactly "
                               "in float64 (use `regioncount bound` for bounds alone)")
    kind = resolve_device(device).type
    seconds = sum(2.0**m for m in widths) / DEQ_RATE.get(kind, DEQ_RATE["cpu"])
    if seconds > max_seconds:
        raise RegionCountError(f"counting the DEQs of widths up to {max(widths)} would take about {seconds:.3g} s on "
                               f"{kind} (limit {max_seconds:g} s); raise `max_seconds`, use `device='cuda'` or "
                               "fewer widths")
    return seconds


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
