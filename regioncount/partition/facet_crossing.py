"""The activation pattern just across a facet that several units' hyperplanes contain, decided in rational
arithmetic from the stored weights (``docs/exact-dd.md``, "Adjacency, degenerate facets").

Let F be a facet of a cell C with pattern D (not on the box's border) and Z the units whose pre-activation
is zero on all of F (coincident hyperplanes, units whose map vanishes on C).  Every unit outside Z is
nonzero on F's relative interior and keeps its sign just across F (continuity).  Every pre-activation is a
continuous function of the input, so a unit of Z is zero on F on both sides: its affine map ``a . x + c``
across F has ``a`` normal to F, and its sign just across is the sign of ``a . t`` for any direction ``t``
that leaves C through F (zero: the map vanishes there, the unit is inactive).  ``t`` is ``-s_i a_i`` for
the first unit i of Z whose map on C is not constant (s_i its sign on C): its map is the same on both sides,
since no unit before it changes.

* FFNs and triangular DEQs (:class:`LayeredCrossing`): a unit's map depends only on units decided before
  it, so the units of Z are settled in that order, each from the signs across of those before it.
* DEQs with a general W (:class:`PatternCrossing`): the pattern across is the one pattern E, equal to D off
  Z, whose exact map u(E) = (I - W D_E)^-1 (U x + b) gives every unit j of Z the sign E_j along t.  Any E
  equal to D off Z agrees with D on F (D's fixed point on F solves E's system there, since the units of Z
  are zero), so a consistent E yields a fixed point just across F, which is unique for a well-posed DEQ:
  exactly one E passes, and it is the pattern there.

Each rule answers None where it cannot decide (no unit of Z has a nonconstant map, or too many candidate
patterns); the caller then probes and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from itertools import product
from typing import Protocol

from ..exact.rational1d import Affine
from ..exact.rational_deq import PatternMaps
from ..models.networks import DEQ, FFN, Model
from .exact_cells import ExactCells

#: Most units of Z whose 2^|Z| candidate patterns :class:`PatternCrossing` tries (each an exact solve).
MAX_PATTERN_ZERO_UNITS = 8


class FacetCrossing(Protocol):
    """The pattern just across a facet: ``(bits, zero)`` -> the across pattern, or None when undecided."""

    def __call__(self, bits: Sequence[bool], zero: Sequence[int]) -> list[bool] | None: ...


def _dot(a: Sequence[Fraction], t: Sequence[Fraction]) -> Fraction:
    return sum((x * y for x, y in zip(a, t)), Fraction(0))


def _exit_direction(maps: Sequence[Affine], bits: Sequence[bool]) -> list[Fraction] | None:
    """A direction leaving the cell through the facet: ``-s a`` for the first map (in the caller's order) with
    a nonzero gradient ``a``, ``s`` the unit's sign on the cell (+1 active, -1 inactive); None if none."""
    for (a, _), active in zip(maps, bits):
        if any(a):
            return [-x for x in a] if active else list(a)
    return None


def unit_ranks(model: Model) -> list[int]:
    """The order in which the layered subdivision decides each unit (units in global order): the FFN's layer
    index, or a triangular DEQ's position in its forward-substitution order."""
    if isinstance(model, FFN):
        return [layer for layer, width in enumerate(model.hidden_widths) for _ in range(width)]
    assert isinstance(model, DEQ) and model.unit_order is not None
    rank = [0] * model.width
    for position, unit in enumerate(model.unit_order):
        rank[unit] = position
    return rank


class LayeredCrossing:
    """The rule for FFNs and triangular DEQs (``rank[unit]``: the order in which units are decided)."""

    def __init__(self, exact: ExactCells, rank: Sequence[int]) -> None:
        self.exact, self.rank = exact, list(rank)

    def __call__(self, bits: Sequence[bool], zero: Sequence[int]) -> list[bool] | None:
        order = sorted(zero, key=self.rank.__getitem__)
        exit_ = _exit_direction([self.exact.unit(j, bits) for j in order], [bits[j] for j in order])
        if exit_ is None:
            return None
        across = list(bits)
        for j in order:  # each unit's map across reads only the units decided before it
            a, _ = self.exact.unit(j, across)
            across[j] = _dot(a, exit_) > 0
        return across


class PatternCrossing:
    """The rule for DEQs with a general W: the consistent pattern among the 2^|Z| candidates."""

    def __init__(self, maps: PatternMaps) -> None:
        self.maps = maps

    def __call__(self, bits: Sequence[bool], zero: Sequence[int]) -> list[bool] | None:
        if len(zero) > MAX_PATTERN_ZERO_UNITS:
            return None
        own = self.maps(bits)
        if own is None:
            return None
        exit_ = _exit_direction([own[j] for j in zero], [bits[j] for j in zero])
        if exit_ is None:
            return None
        for choice in product((False, True), repeat=len(zero)):
            candidate = list(bits)
            for j, active in zip(zero, choice):
                candidate[j] = active
            maps = self.maps(candidate)
            if maps is not None and all((_dot(maps[j][0], exit_) > 0) == active for j, active in zip(zero, choice)):
                return candidate
        return None


def crossing_rule(model: Model, low: Sequence[float], high: Sequence[float],
                  embedding: tuple[Sequence[float], Sequence[Sequence[float]]] | None = None,
                  exact: ExactCells | None = None) -> FacetCrossing:
    """The rule for ``model``'s cells in the box [low, high] of coordinates y, x = origin + sum_i y_i
    directions[i] (``embedding``; default x = y), reusing the partition's ``exact`` maps when given."""
    if isinstance(model, DEQ) and model.unit_order is None:
        origin, directions = embedding if embedding is not None else (None, None)
        return PatternCrossing(PatternMaps(model, origin, directions))
    return LayeredCrossing(exact or ExactCells(model, low, high, embedding), unit_ranks(model))
