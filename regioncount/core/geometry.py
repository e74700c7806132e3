"""Where a count looks, in one place: a model's ``Domain``, the ``Segment`` of a 1-D count, the ``Box`` of a
sampled count and the ``Plane`` of a 2-D partition, each resolved from user input (or the model's domain)
with every coordinate checked by one rule (:func:`finite_point`: the right dimension, finite floats).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import ModelFormatError, SegmentError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Domain:
    """An axis-aligned box ``[low, high]`` in input space (each a tuple of length d), stored with a model."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.low) != len(self.high):
            raise ModelFormatError(
                f"domain: low has {len(self.low)} coordinates but high has {len(self.high)}"
            )
        for i, (lo, hi) in enumerate(zip(self.low, self.high)):
            if not (lo < hi):
                raise ModelFormatError(f"domain: low[{i}] = {lo} is not below high[{i}] = {hi}")


class HasInput(Protocol):
    """What resolving a place needs of a model: its input dimension and its optional domain."""

    @property
    def input_dim(self) -> int: ...

    domain: Domain | None


def finite_point(values: Sequence[float], d: int, what: str) -> tuple[float, ...]:
    """``values`` as a tuple of d finite floats, or a :class:`SegmentError` naming ``what``."""
    point = tuple(float(v) for v in values)
    if len(point) != d:
        raise SegmentError(f"{what} has {len(point)} coordinates but the model's input has {d}")
    if not all(math.isfinite(v) for v in point):
        raise SegmentError(f"{what} must be finite")
    return point


def _ordered(low: tuple[float, ...], high: tuple[float, ...], what: str) -> None:
    for i, (a, b) in enumerate(zip(low, high)):
        if not a < b:
            raise SegmentError(f"{what} needs LO < HI in every coordinate; coordinate {i} has {a:g} >= {b:g}")


# --- segments ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """``x(t) = origin + t * direction`` for t in [t_low, t_high]; ``kind`` is "interval" or "segment"."""

    origin: tuple[float, ...]
    direction: tuple[float, ...]
    t_low: float
    t_high: float
    kind: str

    def describe(self) -> dict:
        if self.kind == "interval":
            return {"kind": "interval", "interval": [self.t_low, self.t_high]}
        end = [o + d for o, d in zip(self.origin, self.direction)]
        return {"kind": "segment", "p": list(self.origin), "q": end, "t": [0.0, 1.0]}


def resolve_segment(model: HasInput, interval: Sequence[float] | None = None,
                    segment: tuple[Sequence[float], Sequence[float]] | None = None) -> Segment:
    """The segment to count on, from an interval (1-D input), two end points, or the model's domain (its
    diagonal from ``low`` to ``high`` for d > 1)."""
    d = model.input_dim
    if interval is not None and segment is not None:
        raise SegmentError("give either an interval or a segment, not both")
    if interval is not None:
        if d != 1:
            raise SegmentError(f"the model has {d}-dimensional input: give a `segment` P Q, not an `interval`")
        if len(interval) != 2:
            raise SegmentError(f"an interval has two ends, got {len(interval)} numbers")
        (a,), (b,) = finite_point(interval[:1], 1, "the interval"), finite_point(interval[1:], 1, "the interval")
        if not a < b:
            raise SegmentError(f"the interval needs A < B, got A = {a:g}, B = {b:g}")
        return Segment((0.0,), (1.0,), a, b, "interval")
    if segment is not None:
        p, q = finite_point(segment[0], d, "the segment end P"), finite_point(segment[1], d, "the segment end Q")
        direction = tuple(b - a for a, b in zip(p, q))
        if not any(direction):
            raise SegmentError("the segment ends P and Q coincide")
        if not all(math.isfinite(v) for v in direction):
            raise SegmentError("the segment is too long for float64 (Q - P overflows)")
        return Segment(p, direction, 0.0, 1.0, "segment")
    if model.domain is None:
        option = "`interval` A B" if d == 1 else "`segment` P Q"
        raise SegmentError(f"the model has no domain: give {option}")
    if d == 1:
        return resolve_segment(model, interval=(model.domain.low[0], model.domain.high[0]))
    return resolve_segment(model, segment=(model.domain.low, model.domain.high))


# --- boxes ---------------------------------------------------------------------------------------------


@dataclass
class Box:
    """Axis-aligned box [low, high] in input space."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    @property
    def dim(self) -> int:
        return len(self.low)

    def surface(self) -> float:
        """H^(d-1) of the boundary: 2 * sum_i prod_{j != i} (high_j - low_j)."""
        sides = [h - lo for lo, h in zip(self.low, self.high)]
        return 2 * sum(math.prod(sides[:i] + sides[i + 1:]) for i in range(len(sides)))

    def to_json(self) -> dict[str, list[float]]:
        return {"low": list(self.low), "high": list(self.high)}


def _coordinates(value: Sequence[float] | float, d: int) -> list[float]:
    """One number for every coordinate, or a sequence (of length 1: repeated)."""
    values = [float(value)] * d if isinstance(value, (int, float)) else [float(v) for v in value]
    return values * d if len(values) == 1 else values


def resolve_box(model: HasInput, low: Sequence[float] | float | None = None,
                high: Sequence[float] | float | None = None) -> Box:
    """The box to sample: LO/HI as sequences or one number for every coordinate, else the model's domain."""
    d = model.input_dim
    if low is None and high is None:
        if model.domain is None:
            raise SegmentError("the model has no domain: give a box (`low, high`)")
        return Box(tuple(model.domain.low), tuple(model.domain.high))
    if low is None or high is None:
        raise SegmentError("give both LO and HI of the box")
    lo, hi = finite_point(_coordinates(low, d), d, "box LO"), finite_point(_coordinates(high, d), d, "box HI")
    _ordered(lo, hi, "the box")
    return Box(lo, hi)


# --- planes --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plane:
    """x(s, t) = origin + s u + t w, (s, t) in [low, high]."""

    origin: tuple[float, ...]
    u: tuple[float, ...]
    w: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {"origin": list(self.origin), "u": list(self.u), "w": list(self.w), "s": [self.low[0], self.high[0]],
                "t": [self.low[1], self.high[1]]}

    def points(self, st: torch.Tensor) -> torch.Tensor:
        """Input-space points (N, d) of plane coordinates (N, 2)."""
        import torch

        o, u, w = (torch.tensor(v, dtype=torch.float64, device=st.device) for v in (self.origin, self.u, self.w))
        return o + st[:, :1] * u + st[:, 1:] * w


def resolve_plane(model: HasInput, low: Sequence[float] | None = None, high: Sequence[float] | None = None, *,
                  origin: Sequence[float] | None = None, dirs: tuple[Sequence[float], Sequence[float]] | None = None,
                  extent: float = 1.0, through: tuple[Sequence[float], ...] | None = None) -> Plane:
    """The slice: a box of a 2-D model; a plane through ``origin`` spanned by ``dirs`` with (s, t) in
    [-extent, extent]^2; or the parallelogram through three points (s, t in [0, 1])."""
    d = model.input_dim
    if through is None and origin is None and dirs is None:
        return _box_plane(model, low, high)
    plane = _plane_through(through, d) if through is not None else _plane_spanned(origin, dirs, extent, d)
    directions = np.stack([np.array(plane.u), np.array(plane.w)])
    if np.linalg.matrix_rank(directions, tol=1e-12 * max(1.0, np.abs(directions).max())) < 2:
        raise SegmentError("the two plane directions are parallel (or zero)")
    return plane


def _plane_through(through: tuple[Sequence[float], ...], d: int) -> Plane:
    """The parallelogram p1 + s (p2 - p1) + t (p3 - p1), (s, t) in [0, 1]^2."""
    if len(through) != 3:
        raise SegmentError("`through` needs three points")
    p1, p2, p3 = (finite_point(p, d, "`through` point") for p in through)
    return Plane(p1, tuple(b - a for a, b in zip(p1, p2)), tuple(c - a for a, c in zip(p1, p3)), (0.0, 0.0),
                 (1.0, 1.0))


def _plane_spanned(origin: Sequence[float] | None, dirs: tuple[Sequence[float], Sequence[float]] | None,
                   extent: float, d: int) -> Plane:
    """The plane origin + s U + t V, (s, t) in [-extent, extent]^2."""
    if origin is None or dirs is None:
        raise SegmentError("a plane needs both `origin` P and `dirs` U V")
    if not (extent > 0 and math.isfinite(extent)):
        raise SegmentError(f"`extent` must be positive, got {extent}")
    return Plane(finite_point(origin, d, "`origin`"), finite_point(dirs[0], d, "`dirs` U"),
                 finite_point(dirs[1], d, "`dirs` V"), (-extent, -extent), (extent, extent))


def _box_plane(model: HasInput, low: Sequence[float] | None, high: Sequence[float] | None) -> Plane:
    """A 2-D model's own input box [low, high] (default: its domain) as the slice."""
    if model.input_dim != 2:
        raise SegmentError(f"the model has {model.input_dim}-dimensional input: give a plane (`origin` P `dirs` U V, "
                           "or `through` P1 P2 P3)")
    if low is None or high is None:
        if model.domain is None:
            raise SegmentError("the model has no domain: give a box (`low, high`)")
        low, high = model.domain.low, model.domain.high
    lo = finite_point(_coordinates(low, 2), 2, "box LO")
    hi = finite_point(_coordinates(high, 2), 2, "box HI")
    _ordered(lo, hi, "the box")
    return Plane((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), lo, hi)
