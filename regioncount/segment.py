"""The segment a 1-D count walks: ``x(t) = origin + t direction`` for t in [t_low, t_high], resolved from an
interval (1-D input), two end points, or the model's domain, with every end checked finite."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import SegmentError
from .models import Model


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


def _finite_pair(low: float, high: float, what: str) -> tuple[float, float]:
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SegmentError(f"{what} must be finite, got [{low}, {high}]")
    if not low < high:
        raise SegmentError(f"{what} needs A < B, got A = {low:g}, B = {high:g}")
    return low, high


def resolve_segment(model: Model, interval: Sequence[float] | None = None,
                    segment: tuple[Sequence[float], Sequence[float]] | None = None) -> Segment:
    """The segment to count on, from an interval (1-D input), two end points, or the model's domain."""
    d = model.input_dim
    if interval is not None and segment is not None:
        raise SegmentError("give either an interval or a segment, not both")
    if interval is not None:
        if d != 1:
            raise SegmentError(f"the model has {d}-dimensional input: give a `segment` P Q, not an `interval`")
        if len(interval) != 2:
            raise SegmentError(f"an interval has two ends, got {len(interval)} numbers")
        a, b = _finite_pair(interval[0], interval[1], "the interval")
        return Segment((0.0,), (1.0,), a, b, "interval")
    if segment is not None:
        p, q = (tuple(float(v) for v in end) for end in segment)
        if len(p) != d or len(q) != d:
            raise SegmentError(f"the segment ends have {len(p)} and {len(q)} coordinates but the model's input has {d}")
        if not all(math.isfinite(v) for v in p + q):
            raise SegmentError("the segment ends must be finite")
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
