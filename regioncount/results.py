"""Result objects returned by the counting functions, with their JSON form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RegionEnds:
    """Lengths of a segment's first and last regions, and the shortest and longest of the regions strictly
    between them (``inf`` and 0 when there are none)."""

    first: float
    last: float
    inner_shortest: float
    inner_longest: float


def region_ends(lengths: np.ndarray) -> RegionEnds:
    """The :class:`RegionEnds` of a segment's region lengths (in order)."""
    inner = lengths[1:-1]
    return RegionEnds(float(lengths[0]), float(lengths[-1]), float(inner.min()) if inner.size else math.inf,
                      float(inner.max()) if inner.size else 0.0)


@dataclass
class SegmentCount:
    """Exact count of the linear regions of a model along a segment ``x(t) = p + t v, t in [t_low, t_high]``.

    For a 1-D model counted on an interval [a, b], ``p = 0, v = 1`` and t is x itself.

    * ``activation_regions``: maximal open sub-intervals with one activation pattern.
    * ``linear_pieces``: maximal sub-intervals on which the output is one affine map (None when not asked).
    * ``breakpoints``: sorted t values of the region boundaries inside (t_low, t_high), float64 (None unless
      kept); ``region_lengths``: the lengths of the regions in t (None unless kept).
    * ``near_coincident``: crossings that the merge tolerance decided (closer than ``tolerance`` to another
      breakpoint without being equal in float64); the exact count may differ from the reported one by at
      most this number.
    * ``doubtful_decisions``: float64 decisions inside the tolerance band (breakpoint merges, slivers,
      slope comparisons).  When non-zero and ``method == "exact"`` they were re-decided by an exact
      rational recount; ``method == "approximate"`` means they were left to the tolerance.
    """

    model: str
    activation_regions: int
    linear_pieces: int | None
    segment: dict[str, Any]
    method: str = "exact"
    dtype: str = "float64"
    device: str = "cpu"
    seconds: float = 0.0
    tolerance: float = 0.0
    near_coincident: int = 0
    doubtful_decisions: int = 0
    breakpoints: np.ndarray | None = field(default=None, repr=False)
    region_lengths: np.ndarray | None = field(default=None, repr=False)
    shortest_region: float | None = None
    longest_region: float | None = None
    estimate: dict[str, Any] | None = None
    algorithm: str = "breakpoint propagation"
    #: when region lengths are tracked: the first and last regions' lengths and the extremes of those
    #: between them, what a merge of the counts of adjacent parts needs (:mod:`regioncount.distributed`)
    end_regions: RegionEnds | None = field(default=None, repr=False)
    #: where the count ran when it was split into tasks: ``{"engine", "workers", "tasks", ...}``
    engine: dict[str, Any] | None = None

    @property
    def regions_per_second(self) -> float | None:
        return self.activation_regions / self.seconds if self.seconds > 0 else None

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``docs/model-format.md`` (integers stay Python ints, however large)."""
        data: dict[str, Any] = {
            "model": self.model,
            "method": self.method,
            "algorithm": self.algorithm,
            "activation_regions": int(self.activation_regions),
            "linear_pieces": None if self.linear_pieces is None else int(self.linear_pieces),
            "dtype": self.dtype,
            "device": self.device,
            "seconds": self.seconds,
            "regions_per_second": self.regions_per_second,
            "segment": self.segment,
            "tolerance": self.tolerance,
            "near_coincident": self.near_coincident,
            "doubtful_decisions": self.doubtful_decisions,
            "shortest_region": self.shortest_region,
            "longest_region": self.longest_region,
        }
        if self.estimate is not None:
            data["estimate"] = self.estimate
        if self.engine is not None:
            data["engine"] = self.engine
        return data
