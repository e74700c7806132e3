"""The FFN family of Theorem 1 in closed form (``docs/theory.md``): the depth and width caps (exact integers,
sympy for the irrational width cap), lower bounds on any in-family FFN's L1 and Linf distance to T^m, the
explicit approximants that reach them (with their exact errors), and the constructions that attain
Serra's bound."""

from __future__ import annotations

import math
from fractions import Fraction

from ..core.errors import RegionCountError
from ..exact.rational1d import ExactCount
from ..models.networks import FFN
from .bounds import integer_root, serra
from .constructions import (
    IDENTITY_ZIGZAG,
    Zigzag,
    compose_zigzags,
    fold_zigzag,
    serra_attaining_ffn,
    tooth_zigzag,
    zigzag_layer,
)


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
    """A lower bound (``docs/theory.md``; attained at N = 1, not sharp in general): every continuous g with
    N linear pieces on [0, 1] has int_0^1 |T^m - g| >= (2^m - 2N + 2) / 2^(m+2) (0 when that is negative)."""
    return max(Fraction(0), Fraction(2**m - 2 * pieces + 2, 2 ** (m + 2)))


#: Teeth exponent of the approximant a training run starts from (its trained copies are counted exactly).
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


def clamped_teeth_zigzag(teeth_exponent: int, a: Fraction, cap: Fraction) -> Zigzag:
    """One layer of 2^s + 1 units computing T^s(min(x / a, cap)) on [0, 1] (s = ``teeth_exponent``, a <= 1,
    cap in the last piece of T^s): 2^s teeth of width a / 2^s and slopes +-2^s / a, then flat.  Units
    relu(x - p) at 0, at every junction of teeth and at the clamp a cap, output weights the slope changes;
    all dyadic when a and cap are."""
    n = 2**teeth_exponent
    slope = Fraction(n) / a
    points = [Fraction(0)] + [a * j / n for j in range(1, n)] + [a * cap]
    slopes = [slope * (-1) ** j for j in range(n)] + [Fraction(0)]
    out = [slopes[0]] + [slopes[j] - slopes[j - 1] for j in range(1, n + 1)]
    return Zigzag(tuple(Fraction(1) for _ in points), tuple(points), tuple(out), Fraction(0))


def rising_clamp_zigzag(teeth_exponent: int, a: Fraction, level: Fraction) -> Zigzag:
    """One layer of 2^s - 1 units computing T^s(x / a) up to its last rising piece, clamped in that piece
    where it reaches ``level``, then flat at ``level``: the junctions of its first 2^s - 2 pieces as units
    facing right, and the clamp as one unit facing left, relu(x_c - x), which also gives the first piece its
    slope (the clamp's change of slope, -2^s / a, is minus that slope).  All dyadic when a and level are."""
    n = 2**teeth_exponent
    slope = Fraction(n) / a
    rising = n - 2  # the last rising piece of T^s
    clamp = a * (rising + level) / n
    points = [a * j / n for j in range(1, rising + 1)] + [clamp]
    out = [-2 * slope * (-1) ** (j - 1) for j in range(1, rising + 1)] + [-slope]
    sigma = [Fraction(1)] * rising + [Fraction(-1)]
    return Zigzag(tuple(sigma), tuple(points), tuple(out), slope * clamp)


def teeth_approximant(m: int, depth: int, width: int, max_teeth_exponent: int | None = None) -> tuple[FFN, int]:
    """An FFN of ``depth`` hidden layers and width <= ``width`` (>= 2) equal to T^m on [0, x_c] and flat at
    1/2 after it, where x_c lies half-way up (or down) the piece of T^m after its first N whole pieces
    (``docs/theory.md``).  Every later layer computes 2^s teeth (T^s, 2^s <= width), r = s (depth - 1) in all;
    the first layer the clamp and the teeth of T^(s1) at once, in the better of two forms: 2^s1 teeth and the
    clamp in the last, falling piece (2^s1 + 1 units, N = 2^(s1 + r) - 1), or the clamp in the last rising
    piece with one unit facing left (2^s1 - 1 units, N = (2^s1 - 2) 2^r).  s1 + r is at most m - 1 in the
    first form and m in the second (and ``max_teeth_exponent``).  Its exact errors are :func:`teeth_errors`.
    Returns the FFN and N."""
    if width < 2 or depth < 1:
        raise RegionCountError("the teeth approximant needs width >= 2 and depth >= 1")
    later = width.bit_length() - 1  # 2^s <= width
    options = []
    for form, first in (("falling", (width - 1).bit_length() - 1), ("rising", (width + 1).bit_length() - 1)):
        # the falling form needs k < m (its clamp is in the piece after the matched ones); the rising one k <= m
        cap = m - 1 if form == "falling" else m
        k = min(first + later * (depth - 1), cap if max_teeth_exponent is None else min(cap, max_teeth_exponent))
        take = [min(first, k)]
        for _ in range(depth - 1):
            take.append(min(later, k - sum(take)))
        r = k - take[0]
        matched = 2**k - 1 if form == "falling" else (2 ** take[0] - 2) * 2**r
        if matched >= 0 and (form == "falling" or take[0] >= 2):
            options.append((matched, form, take, k))
    matched, form, take, k = max(options)
    a = Fraction(1, 2 ** (m - k))
    r = k - take[0]
    if form == "falling":
        first_layer = clamped_teeth_zigzag(take[0], a, 1 - Fraction(1, 2 ** (k + 1)))
    else:  # T^r(2^-(r+1)) = 1/2: the later layers take the clamp's level to 1/2
        first_layer = rising_clamp_zigzag(take[0], a, Fraction(1, 2 ** (r + 1)))
    zigzags = [first_layer] + [tooth_zigzag(2**t) if t else IDENTITY_ZIGZAG for t in take[1:]]
    return compose_zigzags(zigzags, f"teeth-m{m}-L{depth}-N{matched}"), matched


def teeth_errors(m: int, matched: int) -> tuple[Fraction, Fraction]:
    """Exact (L1, L-infinity) distance from T^m of :func:`teeth_approximant` that matches T^m on its first
    N = ``matched`` whole pieces (N < 2^m), in closed form (``docs/theory.md``): it follows the next piece to
    1/2 and stays at 1/2, so the rest of that piece against 1/2 costs h / 8 (h = 2^-m) and each of the
    2^m - N - 1 pieces after it h / 4: L1 = h / 8 + (2^m - N - 1) h / 4, L-infinity 1/2."""
    if not 0 <= matched < 2**m:
        raise RegionCountError(f"the teeth approximant matches 0 <= N < 2^m pieces, got N = {matched}, m = {m}")
    h = Fraction(1, 2**m)
    return h / 8 + (2**m - matched - 1) * h / 4, Fraction(1, 2)


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
