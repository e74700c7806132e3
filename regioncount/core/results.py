"""The results of counts, in one place, each with its JSON form: ``SegmentCount`` (exact 1-D), ``SampledCount``
(sampled d-D), ``PlanePartition`` (exact 2-D) and ``ChordStatistics`` (exact counts on random chords).  Every
result of the package (these, and the theory rows of :mod:`regioncount.theory.separation` and :mod:`regioncount.theory.steep`,
the certificates of :mod:`regioncount.models.wellposed`) satisfies :class:`Result`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import networkx as nx
import numpy as np
import torch

from .geometry import Box, Plane

if TYPE_CHECKING:  # the partitions' cell types, named in annotations only: core never imports partition code
    from ..partition.polygons import Polygons
    from ..partition.polytopes import Polytopes


@runtime_checkable
class Result(Protocol):
    """What every result of the package offers: its JSON object (the data the command line's table shows;
    ``docs/model-format.md`` names the fields of the counts)."""

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RegionEnds:
    """Lengths of a segment's first and last regions, and the shortest and longest of the regions strictly
    between them (``inf`` and 0 when there are none)."""

    first: float
    last: float
    inner_shortest: float
    inner_longest: float

    @property
    def shortest(self) -> float:
        return min(self.first, self.last, self.inner_shortest)

    @property
    def longest(self) -> float:
        return max(self.first, self.last, self.inner_longest)

    def joined(self, regions: int, right: RegionEnds, right_regions: int) -> RegionEnds:
        """The ends of this part (``regions`` regions) followed by the adjacent part ``right``, when their
        shared end lies inside one region: that region is this part's last and ``right``'s first, joined
        (and it is the first or last region of both parts together when a part holds nothing else)."""
        middle = self.last + right.first
        inner_shortest = min(self.inner_shortest, right.inner_shortest)
        inner_longest = max(self.inner_longest, right.inner_longest)
        if regions > 1 and right_regions > 1:
            inner_shortest, inner_longest = min(inner_shortest, middle), max(inner_longest, middle)
        return RegionEnds(middle if regions == 1 else self.first, middle if right_regions == 1 else right.last,
                          inner_shortest, inner_longest)


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
    #: between them, what a merge of the counts of adjacent parts needs (:mod:`regioncount.parallel.segments`)
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


GRID_NOTE = ("none for a grid: coverage and Chao1 assume independent random samples; a regular grid "
             "sees each region in proportion to its area, deterministically")

@dataclass
class SampledCount:
    """Distinct activation patterns among ``samples`` points of ``box`` (a lower bound on the regions)."""

    model: str
    samples: int
    distinct_patterns: int
    seen_once: int
    seen_twice: int
    coverage: float | None
    chao1: float | None
    chao1_interval: tuple[float, float] | None
    largest_fractions: list[float]
    histogram: dict[str, Any]
    box: Box
    grid: bool
    seed: int
    dtype: str
    device: str
    seconds: float
    solve_failures: int = 0
    hash_collisions: int = 0
    warnings: list[str] = field(default_factory=list)
    #: where the samples were drawn when the run was split into tasks (:mod:`regioncount.parallel.samples`)
    engine: dict[str, Any] | None = None

    @property
    def points_per_second(self) -> float | None:
        return self.samples / self.seconds if self.seconds > 0 else None

    @property
    def activation_regions(self) -> int:
        """The distinct patterns seen: a lower bound on the activation regions meeting the box (as in the JSON)."""
        return self.distinct_patterns

    @property
    def linear_pieces(self) -> None:
        """Sampling does not compare output maps: None, as in the JSON."""
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "method": "sampled",
            "activation_regions": self.distinct_patterns,
            "linear_pieces": None,
            "dtype": self.dtype,
            "device": self.device,
            "seconds": self.seconds,
            "points_per_second": self.points_per_second,
            "samples": self.samples,
            "distinct_patterns": self.distinct_patterns,
            "distinct_is": "a lower bound on the regions meeting the box",
            "seen_once": self.seen_once,
            "seen_twice": self.seen_twice,
            "estimate": {
                "good_turing_coverage": self.coverage,
                "chao1": self.chao1,
                "chao1_interval_95": None if self.chao1_interval is None else list(self.chao1_interval),
                "note": (GRID_NOTE if self.grid else
                         "heuristic: regions smaller than about 1/samples of the box are invisible to it"),
            },
            "largest_region_fractions": self.largest_fractions,
            "fraction_histogram": self.histogram,
            "box": self.box.to_json(),
            "grid": self.grid,
            "seed": self.seed,
            "solve_failures": self.solve_failures,
            "hash_collisions_resolved": self.hash_collisions,
            "warnings": self.warnings,
        } | ({"engine": self.engine} if self.engine is not None else {})


class RegionPartition:
    """What the exact partitions (:class:`PlanePartition`, :class:`BoxPartition`) share: regions by packed
    pattern, the pairs of adjacent regions with whether they compute one affine map, the label, and one
    builder of the adjacency graph.  Subclasses are dataclasses with ``patterns``, ``bounded``, ``pairs``,
    ``same_affine`` and ``tolerance_decisions`` (and optionally ``unresolved``)."""

    patterns: torch.Tensor
    bounded: torch.Tensor
    pairs: torch.Tensor
    same_affine: torch.Tensor
    tolerance_decisions: int

    @property
    def method(self) -> str:
        """"exact" when no decision was left to the tolerance (and nothing was left unresolved), else
        "approximate"."""
        return "exact" if self.tolerance_decisions == 0 and getattr(self, "unresolved", 0) == 0 else "approximate"

    @property
    def activation_regions(self) -> int:
        return int(self.patterns.shape[0])

    def region_graph(self, **node_data: list[Any] | None) -> nx.Graph:
        """The region adjacency graph: node = region (pattern as hex words, bounded, and each of
        ``node_data``'s per-region lists that is given), edge = shared boundary, with ``same_affine`` when both
        regions compute the same affine output map."""
        graph = nx.Graph()
        given = {key: values for key, values in node_data.items() if values is not None}
        for r, words in enumerate(self.patterns.tolist()):
            graph.add_node(r, pattern=" ".join(f"{w & (2**64 - 1):016x}" for w in words),
                           bounded=bool(self.bounded[r]), **{key: values[r] for key, values in given.items()})
        graph.add_edges_from((int(i), int(j), {"same_affine": bool(s)})
                             for (i, j), s in zip(self.pairs.tolist(), self.same_affine.tolist()))
        return graph


@dataclass
class PlanePartition(RegionPartition):
    """Exact partition of a plane slice.  Per piece: ``polygons`` (plane coordinates), ``region`` id.
    ``seconds`` covers everything (partition, ids, areas, adjacency, linear pieces); ``partition_seconds``
    the polygon subdivision alone.
    Per region: ``patterns`` (packed words), ``gradients`` (R, k, 2) and ``offsets`` (R, k) of the affine
    output y = G (s, t) + c, ``areas`` (R,), ``bounded`` (R,) not touching the slice's border."""

    model: str
    plane: Plane
    polygons: Polygons
    region: torch.Tensor
    patterns: torch.Tensor
    gradients: torch.Tensor
    offsets: torch.Tensor
    areas: torch.Tensor
    bounded: torch.Tensor
    pairs: torch.Tensor
    same_affine: torch.Tensor
    linear_pieces: int
    seconds: float
    device: str
    engine: str
    unresolved: int = 0
    notes: list[str] = field(default_factory=list)
    partition_seconds: float = 0.0
    #: zero tests decided by the tolerance band (a vertex or a centre within the zero tolerance of a line,
    #: not on it), and comparisons of neighbouring output maps the exact budget left to float64
    tolerance_decisions: int = 0
    #: doubtful decisions settled in rational arithmetic (comparisons of neighbouring output maps)
    exact_decisions: int = 0

    @property
    def graph(self) -> nx.Graph:
        """The region adjacency graph (:meth:`RegionPartition.region_graph`), each node with its area."""
        return self.region_graph(area=self.areas.tolist())

    def to_json(self) -> dict[str, Any]:
        areas = self.areas.double()
        total = (self.plane.high[0] - self.plane.low[0]) * (self.plane.high[1] - self.plane.low[1])
        return {
            "model": self.model,
            "method": self.method,
            "tolerance_decisions": self.tolerance_decisions,
            "exact_decisions": self.exact_decisions,
            "algorithm": self.engine,
            "activation_regions": self.activation_regions,
            "linear_pieces": self.linear_pieces,
            "dtype": "float64",
            "device": self.device,
            "seconds": self.seconds,
            "partition_seconds": self.partition_seconds,
            "regions_per_second": self.activation_regions / self.seconds if self.seconds > 0 else None,
            "plane": self.plane.to_json(),
            "polygons": self.polygons.count,
            "bounded_regions": int(self.bounded.sum()),
            "adjacent_pairs": int(self.pairs.shape[0]),
            "area": {"total": float(areas.sum()), "slice": total, "min": float(areas.min()),
                     "max": float(areas.max()), "mean": float(areas.mean()), "median": float(areas.median())},
            "unresolved_pieces": self.unresolved,
            "notes": self.notes,
        }


@dataclass
class BoxPartition(RegionPartition):
    """Exact partition of a d-D box into activation regions.  Per cell: ``cells`` (polytopes), ``region`` id.
    Per region: ``patterns`` (packed words), ``gradients`` (R, k, d) and ``offsets`` (R, k) of the affine
    output y = G x + c, ``volumes`` (R,) (None for d > 3), ``bounded`` (R,) not touching the box's border,
    ``centres`` (R, d) and ``inradii`` (R,) of the largest inscribed balls (None when not computed).
    ``seconds`` covers everything; ``partition_seconds`` the subdivision alone."""

    model: str
    box: Box
    cells: Polytopes
    region: torch.Tensor
    patterns: torch.Tensor
    gradients: torch.Tensor
    offsets: torch.Tensor
    volumes: torch.Tensor | None
    bounded: torch.Tensor
    pairs: torch.Tensor
    same_affine: torch.Tensor
    linear_pieces: int
    centres: np.ndarray | None
    inradii: np.ndarray | None
    seconds: float
    partition_seconds: float
    device: str
    engine: str
    notes: list[str] = field(default_factory=list)
    #: zero tests decided by the tolerance band (a vertex or a centre within the zero tolerance of a
    #: hyperplane, not proven on it)
    tolerance_decisions: int = 0
    #: zero tests inside the tolerance band decided again in rational arithmetic
    exact_decisions: int = 0

    @property
    def graph(self) -> nx.Graph:
        """The region adjacency graph (:meth:`RegionPartition.region_graph`), each node with its volume
        (d <= 3), and its Chebyshev centre and inradius when computed."""
        centres = inradii = None
        if self.centres is not None and self.inradii is not None:
            centres = [",".join(repr(float(v)) for v in row) for row in self.centres]
            inradii = [float(r) for r in self.inradii]
        return self.region_graph(volume=None if self.volumes is None else self.volumes.tolist(), centre=centres,
                                 inradius=inradii)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "method": self.method,
            "tolerance_decisions": self.tolerance_decisions,
            "exact_decisions": self.exact_decisions,
            "algorithm": self.engine,
            "activation_regions": self.activation_regions,
            "linear_pieces": self.linear_pieces,
            "bounded_regions": int(self.bounded.sum()),
            "adjacent_pairs": int(self.pairs.shape[0]),
            "dtype": "float64",
            "device": self.device,
            "seconds": self.seconds,
            "partition_seconds": self.partition_seconds,
            "regions_per_second": self.activation_regions / self.seconds if self.seconds > 0 else None,
            "box": self.box.to_json(),
            "dimension": self.box.dim,
            "cells": self.cells.count,
        }
        if self.volumes is not None:
            vols = self.volumes.double()
            out["volume"] = {"total": float(vols.sum()), "box": math.prod(h - lo for lo, h in zip(self.box.low, self.box.high)),
                             "min": float(vols.min()), "max": float(vols.max()), "median": float(vols.median())}
        if self.inradii is not None:
            out["inradius"] = {"min": float(self.inradii.min()), "median": float(np.median(self.inradii)),
                               "max": float(self.inradii.max())}
        out["notes"] = self.notes
        return out


@dataclass
class ChordStatistics:
    """Region counts along K random chords (float64 walks) and the estimates they give (means with 95%
    intervals); ``tolerance_decisions`` counts the walks' decisions inside the tolerance band."""

    model: str
    chords: int
    regions_per_chord: tuple[float, float]
    breakpoints_per_length: tuple[float, float]
    boundary_volume: tuple[float, float]
    box: Box
    seed: int
    device: str
    seconds: float
    counts: torch.Tensor
    lengths: torch.Tensor
    #: float64 decisions of the chord walks inside the tolerance band (not re-decided exactly)
    tolerance_decisions: int = 0

    @property
    def activation_regions(self) -> None:
        """Chords measure the boundary density, not the regions of the box: None, as in the JSON."""
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "method": "float64 walks along random chords",
            "activation_regions": None,
            "tolerance_decisions": self.tolerance_decisions,
            "measures": "boundary density (Crofton), not the number of regions",
            "chords": self.chords,
            "regions_per_chord": {"mean": self.regions_per_chord[0], "ci95": self.regions_per_chord[1]},
            "breakpoints_per_unit_length": {"mean": self.breakpoints_per_length[0],
                                            "ci95": self.breakpoints_per_length[1]},
            "boundary_volume": {"estimate": self.boundary_volume[0], "ci95": self.boundary_volume[1],
                                "dimension": self.box.dim - 1},
            "dtype": "float64",
            "device": self.device,
            "seconds": self.seconds,
            "seed": self.seed,
        }
