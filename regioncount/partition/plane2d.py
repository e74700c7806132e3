"""Exact partitions of a 2-D slice into linear regions (``docs/algorithms.md``).

The slice is x(s, t) = o + s u + t w for (s, t) in [s0, s1] x [t0, t1]: the box itself for a 2-D model,
or a plane through a d-D input space.  Three engines, all vectorized over all cells at once:

* FFN, layered subdivision: every polygon carries the affine map of the previous layer's output; a layer's
  pre-activations are evaluated at all vertices, each unit's zero line cuts the polygons where it changes
  sign (values at new vertices are interpolated, exact for affine functions), then the pattern is read
  inside each polygon and the map is masked.  Each final polygon is one region.
* triangular DEQ, unit by unit: the layered polytope subdivision of :mod:`regioncount.partition.box_partition` on the
  slice (the plane folded into U and b), each unit's hyperplane cutting the cells where it changes sign;
  doubtful vertex values are decided in rational arithmetic from the original weights and the plane.
* DEQ with a general (certified) W, pattern refinement (:mod:`regioncount.partition.deq_cells` on the rectangle,
  embedded by x = o + s u + t w): each piece's pattern D is computed at its centre, the fixed point is
  affine on D, u = (I - W D)^-1 (U x + b); while some vertex violates one of D's sign constraints, the
  piece is cut along that constraint's line.  Final pieces lie in one region each, and by the convexity
  lemma pieces with the same pattern belong to the same region.  Zero tests inside the tolerance are
  decided exactly (:mod:`regioncount.partition.exact_refinement`).

The FFN and triangular-DEQ engines prove every sign by its own error bound (:mod:`regioncount.partition.vertex_bounds`)
and decide the rest exactly, so three lines through one point, a line along an edge or a unit identically
zero never create zero-area polygons, and a sliver between two lines 2^-50 apart is a region.  The general-W
refinement counts a value within ``DEQ_ZERO_TOL`` (1e-9, its coefficients come from linear solves) of the
scale of its function (|slope| * extent + |offset|) as zero, and decides such tests again exactly.
Regions are then joined into an adjacency graph (for the FFN polygon subdivision by flipping the unit of
each edge's line, proven; for the other engines by probing across every polygon edge), whose components of
equal affine output give the linear pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from ..core.devices import Stopwatch, default_memory_limit, resolve_device
from ..core.errors import CostLimitError, SegmentError
from ..core.geometry import Box, Plane, resolve_plane
from ..core.limits import NO_LIMIT, Deadline
from ..core.patterns import flip_masks, group_rows, layer_words, probe_pairs
from ..core.results import PlanePartition
from ..core.settings import DEFAULT_MAX_REGIONS
from ..core.tolerances import PLANE_DEQ_ZERO_TOL as DEQ_ZERO_TOL
from ..core.tolerances import PLANE_ZERO_TOL as ZERO_TOL
from ..graph.model import GraphModel
from ..line.cost import plane_polygon_bytes
from ..line.forward_error import INFLATE, SMALLEST_SUBNORMAL, gamma
from ..models.networks import DEQ, DTYPE, FFN, Model, deq_certificate, input_free_units, require_network
from .arrangement_cuts import cut_arrangement
from .deq_cells import Embedding, refine_general_deq
from .edge_probes import probe_adjacency
from .exact_cells import EXACT_BUDGET, ExactCells
from .exact_pieces import linear_piece_count, same_affine_pairs
from .facet_crossing import crossing_rule
from .polygon_proofs import LineTable, box_bounds, box_signs, cut_proven
from .polygons import Polygons, rectangle, rectangle_lines
from .polytopes import Polytopes
from .slice_maps import masked_products
from .vertex_bounds import MapErrors, centre_doubts, centre_radii, layer_errors, product_errors

#: Largest plane coordinate accepted: areas (products of two coordinates) stay finite in float64.
MAX_EXTENT = 1e100


@dataclass(frozen=True)
class PolygonLimit:
    """The most polygons a partition may hold: ``max_regions``, and what ``memory_limit`` bytes allow at
    ``bytes_each`` per polygon."""

    max_regions: int
    memory_limit: int
    bytes_each: int
    deadline: Deadline = field(default_factory=lambda: Deadline(None))

    @classmethod
    def of(cls, model: Model, max_regions: int | None, memory_limit: int, deadline: Deadline | None = None
           ) -> PolygonLimit:
        """The limits of a partition (``max_regions`` None: no limit on the polygons)."""
        return cls(NO_LIMIT if max_regions is None else max_regions, memory_limit, plane_polygon_bytes(model),
                   deadline or Deadline(None))

    def check(self, polygons: int) -> None:
        """Stop (:class:`CostLimitError`, one line with the estimate) past either limit or the deadline."""
        self.deadline.check(f"the partition (at {polygons:,} polygons)")
        if polygons > self.max_regions:
            raise CostLimitError(f"more polygons than the limit of {self.max_regions:,} regions; raise `max_regions`")
        if polygons * self.bytes_each > self.memory_limit:
            raise CostLimitError(f"the partition reached {polygons:,} polygons, about "
                                 f"{polygons * self.bytes_each / 2**30:.3g} GiB at {self.bytes_each:,} bytes each "
                                 f"(estimated), above the memory limit of {self.memory_limit / 2**30:.3g} GiB; "
                                 "raise `memory_limit` or take a smaller slice")


class SliceCells(NamedTuple):
    """What an engine returns: the cells as polygons (P,), their bits (P, units), output gradients (P, k, 2)
    and offsets (P, k), the counts of unresolved pieces, doubtful and exactly decided tests, and, where the
    engine proves them, which cells touch the slice's border (P,, from the constraints of their vertices) and
    the regions' adjacency (``adjacency(region, region_words) -> (pairs, unmatched, probed)``: edges whose
    neighbour matched no region, edges probed; None: every edge probed), and whether every cell is a region of
    its own (``distinct``: the FFN polygon subdivision, where two cells always differ in the unit of a line
    that separates them; otherwise regions are the groups of equal patterns)."""

    polys: Polygons
    bits: torch.Tensor | None
    grads: torch.Tensor | None
    offs: torch.Tensor | None
    unresolved: int
    doubtful: int
    exact: int
    touches: torch.Tensor | None = None
    adjacency: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, int, int]] | None = None
    distinct: bool = False


def _scale(coef: torch.Tensor, extent_s: float, extent_t: float) -> torch.Tensor:
    """|a_s| * max|s| + |a_t| * max|t| + |a_c| for coefficient stacks (..., 3, n) -> (..., n)."""
    return coef[..., 0, :].abs() * extent_s + coef[..., 1, :].abs() * extent_t + coef[..., 2, :].abs()


def _centre_pattern(polys: Polygons, radius: torch.Tensor, Z: torch.Tensor, EZ: MapErrors, bound: torch.Tensor,
                    origin: torch.Tensor, silent: torch.Tensor) -> torch.Tensor | None:
    """The signs (P, n) of the maps ``Z`` (P0, 3, n) of each polygon's starting polygon ``origin`` (P,) at the
    polygon's vertex mean, each proven by its error bound (None: one is not); ``silent`` units are 0."""
    valid = polys.valid()
    centre = (polys.xy * valid[..., None]).sum(1) / polys.n[:, None]  # inside a convex polygon
    radius_c = centre_radii(polys.xy, radius, valid, polys.n)
    Zo = Z.index_select(0, origin)
    pre = torch.addcmul(Zo[:, 2], centre[:, :1], Zo[:, 0]).addcmul_(centre[:, 1:], Zo[:, 1])
    if bool((centre_doubts(pre, Z, EZ, bound, origin, radius_c, 2) & ~silent).any()):
        return None
    return pre > 0


def _ffn_partition(model: FFN, plane: Plane, device: torch.device, limit: PolygonLimit) -> SliceCells:
    """The polygon subdivision of an FFN slice.  Every vertex carries a radius and every map its coefficient
    errors (:mod:`regioncount.partition.vertex_bounds`), so each sign it reads is proven by its own error
    bound, layer by layer in batches (:mod:`regioncount.partition.polygon_proofs`); at a sign it cannot prove
    (a vertex on or very near a line, a float zero included) it stops and reports one doubtful decision, and
    the caller partitions the slice again by polytopes, whose vertices know their constraints and whose
    doubtful signs are decided exactly."""
    o, u, w = (torch.tensor(v, dtype=DTYPE, device=device) for v in (plane.origin, plane.u, plane.w))
    polys = rectangle(plane.low, plane.high, device)
    state = torch.stack([u, w, o])[None]  # (P, 3, d): coefficients of s, t and the constant
    state_error: torch.Tensor | None = None  # the plane itself is exact
    lines = LineTable(*rectangle_lines(plane.low, plane.high, device))
    radius = torch.zeros(1, 4, dtype=DTYPE, device=device)  # (P, V): each vertex's radius
    outgoing = torch.arange(4, dtype=DTYPE, device=device)[None]  # (P, V): the line id of its outgoing edge
    bits: torch.Tensor | None = None
    model = model.to(device)
    silent_units = input_free_units(model)  # exactly zero everywhere: never cut, never doubtful
    first = 0
    #: the last layer's maps on its starting polygons, each polygon's starting polygon and pattern, the errors
    previous: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    for weight, bias in zip(model.weights[:-1], model.biases[:-1]):
        silent = silent_units[first:first + weight.shape[0]]
        first += weight.shape[0]
        # (P0, 3, n): the layer's pre-activations on every polygon of the layer start, and their rounding
        if previous is None:
            Z = state @ weight.T
            EZ = layer_errors(state, state_error, weight, bias)
        else:
            Z, norms = masked_products(*previous[:3], weight, norms=True)
            EZ = product_errors(3, norms, previous[3], weight, bias)  # rows: s, t, the constant
        Z[:, 2] += bias
        # the layer's whole arrangement per polygon at once; line by line where it leaves a sign unproven
        candidates, positive = box_signs(polys, radius, Z, EZ)
        cut = cut_arrangement(polys, radius, outgoing, lines, Z, EZ, candidates & ~silent, positive,
                              first - weight.shape[0], limit.check)
        if cut is None:
            bound, candidates, _ = box_bounds(polys, radius, Z, EZ)
            cut = cut_proven(polys, radius, outgoing, lines, Z, EZ, bound, candidates & ~silent,
                             first - weight.shape[0], limit.check)
            if cut is not None:
                cut = cut._replace(active=_centre_pattern(cut.polys, cut.radius, Z, EZ, bound, cut.origin, silent))
        if cut is None or cut.active is None:
            return SliceCells(polys, bits, None, None, 0, 1, 0)
        polys, origin, radius, outgoing = cut[:4]
        active = cut.active
        bits = active if bits is None else torch.cat([bits.index_select(0, origin), active], 1)
        previous = (Z, origin, active, EZ.row_max().index_select(0, origin))
    readout, out_bias = model.weights[-1], model.biases[-1]
    if bits is None:
        bits = torch.zeros(polys.count, 0, dtype=torch.bool, device=device)
    out = state @ readout.T if previous is None else masked_products(*previous[:3], readout)[0]  # (P, 3, k)
    edge_units = lines.units()[outgoing.long()]  # (P, V): the unit whose line edge k -> k + 1 lies on
    on_border = polys.valid() & (edge_units < 0)  # a vertex on the border has an edge along it (signs proven)
    return SliceCells(polys, bits, out[:, :2].transpose(1, 2), out[:, 2] + out_bias, 0, 0, 0, on_border.any(1),
                      lambda region, words: (*_adjacency_by_flips(polys, edge_units, region, words,
                                                                  model.hidden_widths), 0), distinct=True)


def _ordered(cells: Polytopes) -> Polygons:
    """2-D polytopes as polygons: vertices counter-clockwise around their mean, padded with the last."""
    valid = cells.valid()
    centre = cells.centres()
    rel = cells.x - centre[:, None]
    angle = torch.where(valid, torch.atan2(rel[..., 1], rel[..., 0]), torch.full_like(rel[..., 0], torch.inf))
    order = angle.argsort(1)
    xy = torch.gather(cells.x, 1, order[..., None].expand(-1, -1, 2))
    last = torch.gather(xy, 1, (cells.n - 1)[:, None, None].expand(-1, 1, 2))
    return Polygons(torch.where(valid[..., None], xy, last), cells.n)


def _embedding(plane: Plane) -> Embedding:
    """The slice as x = origin + P (s, t): origin (n,), P (n, 2) = [u w]."""
    return Embedding(torch.tensor(plane.origin, dtype=DTYPE), torch.tensor([plane.u, plane.w], dtype=DTYPE).T)


def _slice_model(model: Model, plane: Plane) -> Model:
    """The model restricted to the plane, x = origin + P (s, t) folded into its first affine map (float64,
    rounded: the exact second opinions read the original model and the embedding)."""
    embedding = _embedding(plane)
    origin, P = embedding.origin, embedding.directions
    if isinstance(model, FFN):
        first, bias = model.weights[0], model.biases[0]
        return FFN([first @ P] + list(model.weights[1:]), [first @ origin + bias] + list(model.biases[1:]),
                   name=model.name)
    return DEQ(W=model.W, U=model.U @ P, b=model.U @ origin + model.b, A=model.A, B=model.B @ P,
               c=model.B @ origin + model.c, name=model.name)


def _slice_error(model: Model, plane: Plane) -> torch.Tensor:
    """(3, n) entrywise bounds on the rounding of the slice model's first affine map (:func:`_slice_model`)
    against the exact composition with the plane: rows s, t and the constant."""
    embedding = _embedding(plane)
    first, bias = (model.weights[0], model.biases[0]) if isinstance(model, FFN) else (model.U, model.b)
    g = gamma(first.shape[1] + 1)
    slopes = g * (first.abs() @ embedding.directions.abs())  # (n, 2)
    constant = g * (first.abs() @ embedding.origin.abs() + bias.abs())
    error = torch.cat([slopes.T, constant[None]]) + (first.shape[1] + 2) * SMALLEST_SUBNORMAL
    return error * INFLATE


def _exact_subdivision(model: Model, plane: Plane, device: torch.device, limit: PolygonLimit, exact_budget: int
                       ) -> SliceCells:
    """The slice by the layered polytope subdivision of :mod:`regioncount.partition.box_partition` (FFNs layer by layer,
    triangular DEQs unit by unit), whose doubtful zero tests are decided in rational arithmetic (vertices from
    their tight constraints): the engine of triangular DEQs, and the exact route of an FFN slice whose
    polygon subdivision left decisions to the tolerance."""
    from .box_partition import CellLimit, subdivide  # the d-D machinery, only when it is needed
    from .facet_adjacency import region_pairs

    exact = ExactCells(model, plane.low, plane.high, (plane.origin, (plane.u, plane.w)))
    sliced, rectangle_box = _slice_model(model, plane), Box(plane.low, plane.high)
    cells, bits, out, doubtful, referee, vanishing = subdivide(
        sliced, rectangle_box, device, CellLimit.of(limit.max_regions, limit.memory_limit,
                                                    limit.deadline.task_seconds()),
        exact_budget, exact, _slice_error(model, plane))
    widths = model.hidden_widths if isinstance(model, FFN) else None

    def adjacency(region: torch.Tensor, words: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        found = region_pairs(sliced, rectangle_box, cells, bits, vanishing, region, words, widths,
                             crossing=lambda: crossing_rule(model, plane.low, plane.high, exact=exact))
        return found.pairs, found.unmatched, found.probed

    return SliceCells(_ordered(cells), bits, out[:, :2].transpose(1, 2), out[:, 2], 0, doubtful, referee.decided,
                      cells.has_bits(0, 4).any(1), adjacency if not doubtful else None)


def _deq_partition(model: DEQ, plane: Plane, device: torch.device, limit: PolygonLimit, exact_budget: int
                   ) -> SliceCells:
    """The pattern refinement of :mod:`regioncount.partition.deq_cells` on the slice's rectangle, embedded by
    x = o + s u + t w, its cells ordered as polygons."""
    from .facet_adjacency import region_pairs  # the d-D machinery, only when it is needed

    rectangle = Box(plane.low, plane.high)
    refined = refine_general_deq(model, rectangle, device,
                                 lambda count, vertices, d, words: limit.check(count), embedding=_embedding(plane),
                                 exact_budget=exact_budget)
    sliced = _slice_model(model, plane)  # the same rounded maps the refinement solved with its embedding

    def adjacency(region: torch.Tensor, words: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        embedding = (plane.origin, (plane.u, plane.w))
        found = region_pairs(sliced, rectangle, refined.cells, refined.bits, None, region, words, None,
                             refined.constraints, lambda: crossing_rule(model, plane.low, plane.high, embedding))
        return found.pairs, found.unmatched, found.probed

    out = refined.out  # (P, 3, k): s, t, constant
    return SliceCells(_ordered(refined.cells), refined.bits, out[:, :2].transpose(1, 2), out[:, 2],
                      refined.unresolved, refined.doubtful, refined.exact_decisions,
                      refined.cells.has_bits(0, 4).any(1), adjacency)


def _slice_cells(model: Model, plane: Plane, dev: torch.device, limit: PolygonLimit, exact_budget: int
                 ) -> tuple[SliceCells, str]:
    """The slice's cells by the engine of its model, and the engine's name."""
    if isinstance(model, FFN):
        cut = _ffn_partition(model, plane, dev, limit)
        if not cut.doubtful:
            return cut, "polygon subdivision (layered)"
        # decide them exactly: the same slice by polytopes, whose vertices know their lines
        return (_exact_subdivision(model, plane, dev, limit, exact_budget),
                "polytope subdivision (layered, exact second opinions)")
    if model.unit_order is not None:  # triangular: unit by unit, like the d-D partition
        return _exact_subdivision(model, plane, dev, limit, exact_budget), "polytope subdivision (unit by unit)"
    return _deq_partition(model, plane, dev, limit, exact_budget), "polygon refinement by patterns"


def _adjacency_by_flips(polys: Polygons, edge_units: torch.Tensor, region: torch.Tensor, region_words: torch.Tensor,
                        widths: Sequence[int]) -> tuple[torch.Tensor, int]:
    """Pairs of regions sharing an edge, proven, for the FFN polygon subdivision whose signs were all proven:
    each edge lies on the line of one unit (``edge_units`` (P, V); -1: the slice's border), and crossing its
    relative interior flips exactly that unit's bit (``docs/exact-dd.md``, "Adjacency"), so the region across
    is the one whose pattern is this region's with that bit flipped; each edge is probed from the side where
    its unit is active.  Returns the pairs (E, 2) and the number of edges whose flipped pattern is no region's
    (0 unless something is wrong)."""
    use = polys.valid() & (edge_units >= 0)
    owner = region[:, None].expand_as(use)[use]
    units = edge_units[use]
    if units.numel() == 0:
        return torch.zeros(0, 2, dtype=torch.long, device=region.device), 0
    word, mask = (t[units] for t in flip_masks(torch.arange(sum(widths), device=units.device), widths, sum(widths)))
    # each shared edge once: from the side where its unit is active (the other side has it inactive)
    side = ((region_words[owner, word] & mask) != 0).nonzero().flatten()
    owner, word, mask = owner[side], word[side], mask[side]
    across = region_words[owner]
    across[torch.arange(across.shape[0], device=across.device), word] ^= mask
    return probe_pairs(owner, region_words, across)


def _plane_notes(model: Model, unmatched: int, probed: int, unresolved: int, doubtful: int) -> list[str]:
    """What a plane partition's output says about its adjacency (``probed`` < 0: every edge probed) and its
    decisions left to the tolerance."""
    notes = []
    if unmatched:
        notes.append(f"{unmatched} edges found no region across them and were skipped")
    if probed:
        edges = "every edge" if probed < 0 else f"{probed} edges with several zero units"
        notes.append(f"region adjacency: {edges} by probes just across (not proven)")
    if unresolved:
        notes.append(f"{unresolved} pieces had a sign violation within rounding that could not be cut")
    if doubtful:
        tolerance = DEQ_ZERO_TOL if isinstance(model, DEQ) and model.unit_order is None else ZERO_TOL
        notes.append(f"{doubtful} zero tests inside the {tolerance:.2g} relative tolerance were not confirmed "
                     "exactly (boundaries closer than the tolerance, a sliver, are not cut; or the exact budget "
                     "was spent): approximate")
    return notes


def partition_plane(model: Model | GraphModel, low: Sequence[float] | None = None, high: Sequence[float] | None = None, *,
                    origin: Sequence[float] | None = None, dirs: tuple[Sequence[float], Sequence[float]] | None = None,
                    extent: float = 1.0, through: tuple[Sequence[float], ...] | None = None,
                    device: str | torch.device = "auto", max_regions: int | None = DEFAULT_MAX_REGIONS,
                    memory_limit: int | None = None, assume_well_posed: bool = False,
                    exact_budget: int = EXACT_BUDGET, max_seconds: float | None = None,
                    proof_seconds: float | None = None) -> PlanePartition:
    """Exact partition of a 2-D slice (see the module docstring); counts, areas, graph, linear pieces.

    The subdivision stops (:class:`~regioncount.core.errors.CostLimitError`) once it holds more than
    ``max_regions`` polygons, or more than its share of ``memory_limit`` bytes (default: half the RAM) at
    :func:`~regioncount.line.cost.plane_polygon_bytes` each; the message gives the estimate.  When the FFN polygon
    subdivision takes a zero test by the tolerance, the slice is partitioned again by polytopes whose doubtful
    tests are decided in rational arithmetic (at most ``exact_budget`` of them); what is left stays a
    tolerance decision and the partition says ``approximate``.  ``max_seconds``: a deadline for the whole call
    (:mod:`regioncount.core.limits`), checked as the subdivision grows and before each later stage.
    A graph model (:mod:`regioncount.partition.graph_plane`) has every sign proven by its float64 bound or
    decided in rational arithmetic; ``proof_seconds`` (default 60 s, never past the deadline) bounds the
    rational comparisons of neighbouring outputs, and, where a sign was left, the rational check of the whole
    partition; past it the result is labelled approximate with the estimate in its notes."""
    deadline = Deadline(max_seconds)
    if isinstance(model, GraphModel):  # operator graphs: their own subdivision and proof (docs/graphs.md)
        from .graph_plane import partition_graph_plane

        plane = resolve_plane(model, low, high, origin=origin, dirs=dirs, extent=extent, through=through)
        dev = resolve_device(device)
        most = NO_LIMIT if max_regions is None else 4 * max_regions  # a max's over-cut polygons included
        return partition_graph_plane(model, plane, dev, limit=most, deadline=deadline, proof_seconds=proof_seconds,
                                     memory_limit=memory_limit)
    require_network(model, "the plane partition")
    deq_certificate(model, assume_well_posed)
    plane = resolve_plane(model, low, high, origin=origin, dirs=dirs, extent=extent, through=through)
    reach = max(abs(v) for v in (*plane.low, *plane.high))
    if not reach <= MAX_EXTENT:
        raise SegmentError(f"the slice reaches {reach:.3g}: beyond {MAX_EXTENT:.0e} areas overflow float64 "
                           "(counts at large extents are labelled approximate well before that)")
    dev = resolve_device(device)
    limit = PolygonLimit.of(model, max_regions, default_memory_limit() if memory_limit is None else memory_limit,
                            deadline)
    watch = Stopwatch(dev)
    with torch.no_grad():
        cut, engine = _slice_cells(model, plane, dev, limit, exact_budget)
        polys, bits, grads, offs, unresolved, doubtful, exact = cut[:7]
        assert bits is not None and grads is not None and offs is not None
        partition_seconds = watch.seconds()
        deadline.check("the partition (before its regions and adjacency)")
        widths = model.hidden_widths if isinstance(model, FFN) else None
        words = layer_words(bits, widths)
        assert cut.touches is not None  # every engine that returns cells knows which touch the border
        if cut.distinct:  # one region per cell, in order
            region = torch.arange(polys.count, device=dev)
            R, areas, touched, region_words = polys.count, polys.areas(), cut.touches, words
            gradients, offsets, region_bits = grads, offs, bits
        else:
            region, representative, _ = group_rows(words)
            R = representative.shape[0]
            areas = torch.zeros(R, dtype=DTYPE, device=dev).index_add_(0, region, polys.areas())
            touched = torch.zeros(R, dtype=torch.long, device=dev).index_add_(0, region, cut.touches.long()) > 0
            region_words = words[representative]
            gradients, offsets, region_bits = grads[representative], offs[representative], bits[representative]
        if cut.adjacency is not None:
            pairs, unmatched, probed = cut.adjacency(region, region_words)
        else:
            pairs, unmatched = probe_adjacency(model, plane, polys, region, region_words)
            probed = -1  # every edge
    # continuity: equal gradients mean one affine map; doubtful comparisons are decided exactly
    deadline.check("the partition (before its linear pieces)")
    with torch.no_grad():
        decided = same_affine_pairs(model, region_bits, gradients, pairs, (plane.u, plane.w))
    same = decided.same
    seconds = watch.seconds()
    pairs = pairs.cpu()
    notes = _plane_notes(model, unmatched, probed, unresolved, doubtful)
    notes.extend(decided.notes())
    return PlanePartition(
        model=model.name or model.describe(), plane=plane, polygons=polys, region=region,
        patterns=region_words,
        gradients=gradients, offsets=offsets, areas=areas, bounded=~touched, pairs=pairs, same_affine=same,
        linear_pieces=linear_piece_count(R, pairs, same), seconds=seconds, device=dev.type,
        engine=engine, unresolved=unresolved, notes=notes, partition_seconds=partition_seconds,
        tolerance_decisions=doubtful + decided.open, exact_decisions=exact + decided.exact)
