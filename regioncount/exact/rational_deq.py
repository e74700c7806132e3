"""Exact-rational 1-D walk of a DEQ with any well-posed W: no tolerance anywhere (``docs/exactness.md``).

On an activation pattern D the pre-activations along x(t) = p + t v are ``u(t) = g t + h`` with
``(I - W D) [g h] = [U v, U p + b]``, solved exactly (:class:`PatternMaps`: the float64 weights are dyadic
rationals, eliminated on integers).  The pattern just after a point t is the strict
one, active iff ``(u_j(t), g_j) > 0`` lexicographically; it is settled by Murty's least-index rule (flip the
smallest unit of the wrong sign), which ends for every P-matrix ``I - W`` - the matrices every certificate
of :mod:`regioncount.models.wellposed` proves.  The walk goes from the pattern after ``t_low`` to the smallest
zero of a unit leaving it, settles there, and so on to ``t_high``.  Cost: about ``m^3`` rational operations
per new pattern (solves are cached by pattern), see :func:`general_rational_cost`.

It is the exact second opinion of the float64 pattern walk (:mod:`regioncount.line.deq_general`) and the
reference the tests compare it with.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from ..core.errors import NotWellPosedError
from ..core.integer_linalg import solve_square
from ..models.networks import DEQ
from .rational1d import Affine, ExactCount, compose, fractions_of, input_maps, line_maps

Pattern = tuple[int, ...]


class PatternMaps:
    """Exact pre-activations of a DEQ on each activation pattern D, cached: u^D = (I - W D)^-1 (U x + b) as
    affine maps of coordinates y, where x = origin + sum_i y_i directions[i] (default x = y), i.e. the solution
    [a | c] of (I - W D) [a | c] = [U P | U o + b] (integer Bareiss elimination, exact)."""

    def __init__(self, model: DEQ, origin: Sequence[float] | None = None,
                 directions: Sequence[Sequence[float]] | None = None) -> None:
        self.W = fractions_of(model.W)
        self.m = len(self.W)
        n_in = model.U.shape[1]
        self.d = n_in if directions is None else len(directions)
        inputs = input_maps(n_in, self.d, origin, directions)
        self.rhs = [[*a, c] for a, c in compose(fractions_of(model.U), fractions_of(model.b), inputs)]
        self.cache: dict[tuple, list[Affine] | None] = {}

    def __call__(self, pattern: Sequence[int] | Sequence[bool]) -> list[Affine] | None:
        """Every unit's (a, c) on ``pattern`` (0/1 or bool per unit), or None when I - W D is singular."""
        key = tuple(pattern)
        if key not in self.cache:
            m = self.m
            rows = [[Fraction(int(i == j)) - (self.W[i][j] if key[j] else 0) for j in range(m)] + self.rhs[i]
                    for i in range(m)]
            X = solve_square(rows, m)
            self.cache[key] = None if X is None else [(tuple(row[:self.d]), row[self.d]) for row in X]
        return self.cache[key]


class ExactPatterns:
    """Exact affine pre-activations ``(g, h)`` of a DEQ along one line, per activation pattern (cached)."""

    def __init__(self, model: DEQ, p: list[float], v: list[float]) -> None:
        self.maps = PatternMaps(model, p, [v])
        self.m = self.maps.m
        P, V = [Fraction(x) for x in p], [Fraction(x) for x in v]
        self.A = fractions_of(model.A)
        self.skip = line_maps(fractions_of(model.B), fractions_of(model.c), P, V)  # (B v, B p + c)
        self.cache: dict[Pattern, tuple[list[Fraction], list[Fraction]]] = {}

    def affine(self, pattern: Pattern) -> tuple[list[Fraction], list[Fraction]]:
        """(g, h) with u(t) = g t + h on ``pattern``; a singular ``I - W D`` raises NotWellPosedError."""
        if pattern not in self.cache:
            maps = self.maps(pattern)
            if maps is None:
                raise NotWellPosedError(f"I - W D is singular (exactly) for the activation pattern {pattern}: "
                                        "the DEQ is not well-posed")
            self.cache[pattern] = ([a[0] for a, _ in maps], [c for _, c in maps])
        return self.cache[pattern]

    def output_slope(self, pattern: Pattern) -> tuple[Fraction, ...]:
        """dy/dt on ``pattern``: ``A (d * g) + B v``."""
        g, _ = self.affine(pattern)
        return tuple(sum((a * gj for a, gj, dj in zip(row, g, pattern) if dj), Fraction(0)) + s
                     for row, (s, _) in zip(self.A, self.skip))

    def output_intercept(self, pattern: Pattern) -> tuple[Fraction, ...]:
        """y at t = 0 on ``pattern``: ``A (d * h) + B p + c``."""
        _, h = self.affine(pattern)
        return tuple(sum((a * hj for a, hj, dj in zip(row, h, pattern) if dj), Fraction(0)) + s
                     for row, (_, s) in zip(self.A, self.skip))

    def settle(self, pattern: Pattern, t: Fraction, max_flips: int) -> Pattern:
        """The strict pattern just after ``t``, from a starting guess, by least-index flips."""
        current = list(pattern)
        for _ in range(max_flips):
            g, h = self.affine(tuple(current))
            wrong = None
            for j in range(self.m):
                value = g[j] * t + h[j]
                wanted = value > 0 or (value == 0 and g[j] > 0)
                if wanted != bool(current[j]):
                    wrong = j
                    break
            if wrong is None:
                return tuple(current)
            current[wrong] ^= 1
        raise NotWellPosedError(f"the exact pattern walk could not settle the pattern at t = {float(t):.17g} "
                                f"in {max_flips} flips (is I - W a P-matrix?)")


def exact_general_count(model: DEQ, p: list[float], v: list[float], t_low: float, t_high: float,
                        start: Pattern | None = None, max_flips: int | None = None) -> ExactCount:
    """Exact regions and pieces of a general-W DEQ along x(t) = p + t v, t in [t_low, t_high].

    ``start`` is a guess of the pattern just after ``t_low`` (any guess is corrected exactly); without it
    the walk starts from the all-inactive pattern."""
    exact = ExactPatterns(model, p, v)
    m = exact.m
    limit = max_flips if max_flips is not None else 8 * m * m + 16
    t, end = Fraction(t_low), Fraction(t_high)
    pattern = exact.settle(start if start is not None else (0,) * m, t, limit)
    patterns, breakpoints = [pattern], []
    while True:
        nxt, crossing = _next_exit(*exact.affine(pattern), pattern, t)
        if nxt is None or nxt >= end:
            break
        settled = exact.settle(tuple(a ^ c for a, c in zip(pattern, crossing)), nxt, limit)
        t = nxt
        if settled != pattern:  # a unit touching zero without changing sign does not split a region
            patterns.append(settled)
            breakpoints.append(nxt)
        pattern = settled
    outputs = [(exact.output_slope(pat), exact.output_intercept(pat)) for pat in patterns]
    slopes = [slope for slope, _ in outputs]
    changes = sum(1 for a, b in zip(slopes, slopes[1:]) if a != b)
    return ExactCount(activation_regions=len(patterns), linear_pieces=changes + 1,
                      breakpoints=breakpoints, patterns=patterns, outputs=outputs)


def _next_exit(g: list[Fraction], h: list[Fraction], pattern: Pattern, t: Fraction
               ) -> tuple[Fraction | None, list[int]]:
    """The first t' > t where a unit's pre-activation g_j t' + h_j (on ``pattern``) reaches zero while heading
    out of its side (an active unit falling, an inactive one rising), and which units do so there
    (0/1 per unit); (None, []) when none does."""
    leaving = {j: -h[j] / g[j] for j in range(len(g)) if g[j] != 0 and (g[j] < 0) == bool(pattern[j])}
    nxt = min((x for x in leaving.values() if x > t), default=None)
    if nxt is None:
        return None, []
    return nxt, [int(leaving.get(j) == nxt) for j in range(len(g))]


def general_rational_cost(model: DEQ, regions: float) -> float:
    """Rational operations of :func:`exact_general_count` for about ``regions`` regions (an estimate: one
    elimination with two right-hand sides per pattern, plus the settling evaluations)."""
    m = model.width
    return float(regions) * (m**3 / 3.0 + 4.0 * m * m + 2.0 * m * model.A.shape[0]) * 2.0
