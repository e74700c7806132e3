"""Partitions of a plane slice of a graph model (``docs/graphs.md``, "Planes").

The slice is ``x(s, t) = o + s u + t w`` over a rectangle.  On each polygon every node's output is affine in
(s, t): ``c + g_s s + g_t t``.  The walk carries these maps per polygon through the operators (affine ones map
``c`` by the whole map and the gradients by the linear part), with bounds on their rounding
(:mod:`regioncount.partition.graph_plane_bounds`), and, at each piecewise operator, cuts the polygons along
the lines where its operator may change state (``u_j = theta`` per unit and threshold; for a max,
``x_a = x_b`` for every pair of a window), one line at a time and only the polygons the line may cross, then
reads the states inside each polygon.  Every sign it reads is proven by its bound
(:func:`~regioncount.partition.polygon_proofs.cut_proven`), named exactly zero by a rule, or decided in
rational arithmetic (:mod:`regioncount.partition.graph_plane_exact`).  A max's pairs that are not the maximum
over-cut: polygons of one region then share a pattern, and regions are the distinct patterns (each pattern's
set is convex, so the polygons of one pattern are one region).  Where a sign is left undecided, the walk goes
on in float64 and the result is checked in rational arithmetic afterwards
(:mod:`regioncount.partition.graph_plane_proof`) when its cost fits the budget; otherwise the partition is
labelled approximate.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ..core.errors import CostLimitError
from ..core.geometry import Plane
from ..core.limits import Deadline
from ..core.results import PlanePartition
from ..graph.certify import affine_bounds
from ..graph.model import GraphModel
from ..graph.ops import Affine, Elementwise, Piecewise
from .graph_plane_bounds import (
    ExactZeros,
    centre_states_proven,
    centre_values,
    corner_inputs,
    exact_constants,
    kink_values,
    line_maps,
    void_lines,
)
from .graph_plane_exact import ExactSigns
from .polygon_proofs import LineTable, box_bounds, cut_proven, vertex_lines
from .polygons import Polygons, PolygonStore, rectangle, rectangle_lines
from .vertex_bounds import MapErrors, centre_radii

#: Lines whose crossings are tested at once (polygons x lines x vertices values).
LINE_CHUNK = 256
#: Polygons below this share of the slice's area are dropped after each operator's cuts (module docstring).
SLIVER_AREA = 1e-14

Maps = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # c, g_s, g_t per polygon


def _crossed(polys: Polygons, lines: torch.Tensor) -> torch.Tensor:
    """(P, L): the line (``lines`` (P, 3, L): s-slope, t-slope, constant) changes sign strictly inside polygon
    p (some vertex above it, some below), in float64."""
    valid = polys.valid()
    x, y = polys.xy[..., 0], polys.xy[..., 1]
    out = []
    for start in range(0, lines.shape[2], LINE_CHUNK):
        s, t, c = lines[:, :, start:start + LINE_CHUNK].unbind(1)
        f = c[:, None, :] + s[:, None, :] * x[..., None] + t[:, None, :] * y[..., None]  # (P, V, L)
        above = ((f > 0) & valid[..., None]).any(1)
        below = ((f < 0) & valid[..., None]).any(1)
        out.append(above & below)
    return torch.cat(out, 1) if out else torch.zeros(polys.count, 0, dtype=torch.bool)


class _PlaneWalk:
    """The walk's state: the polygons, the maps of the nodes still needed (with their bounds while every
    decision so far is proven), the states of the piecewise nodes passed, and the proof's vertex radii and
    edge lines."""

    def __init__(self, model: GraphModel, plane: Plane, device: torch.device, limit: int, deadline: Deadline
                 ) -> None:
        shape = model.input_shape

        def as_map(v: tuple[float, ...]) -> torch.Tensor:
            return torch.tensor(v, dtype=torch.float64, device=device).reshape(1, *shape)

        self.model, self.limit, self.deadline = model, limit, deadline
        self.polys = rectangle(plane.low, plane.high, device)
        self.area = (plane.high[0] - plane.low[0]) * (plane.high[1] - plane.low[1])
        self.maps: dict[int, Maps] = {0: (as_map(plane.origin), as_map(plane.u), as_map(plane.w))}
        zero = torch.zeros(1, *shape, dtype=torch.float64, device=device)
        #: bounds of the maps while every decision is proven (None once one is not: the walk goes on in float64)
        self.errors: dict[int, Maps] | None = {0: (zero, zero, zero)}
        self.states: list[torch.Tensor] = []
        self.lines = LineTable(*rectangle_lines(plane.low, plane.high, device))
        self.radius = torch.zeros(1, 4, dtype=torch.float64, device=device)
        self.outgoing = torch.arange(4, dtype=torch.float64, device=device)[None]
        self.bits = 0  # line ids handed out so far (the lines' "units" in the table)
        self.first_bit: dict[int, int] = {}  # the first line bit of each piecewise node cut with proofs
        self.line_count: dict[int, int] = {}  # and its number of lines
        self.deciders: dict[int, ExactSigns] = {}  # the exact decider of the node being cut, if it needs one
        self.decided = 0  # signs and states decided in rational arithmetic at the nodes passed
        self.plane = plane
        self.corners = self.polys.xy[0]
        self.corner_inputs = corner_inputs(model, plane)

    @property
    def proven(self) -> bool:
        return self.errors is not None

    def affine(self, index: int) -> None:
        node = self.model.nodes[index]
        op = node.op
        assert isinstance(op, Affine)
        if self.errors is None:
            ins = [self.maps[i] for i in node.inputs]
            self.maps[index] = (op.forward([m[0] for m in ins]), op.linear([m[1] for m in ins]),
                                op.linear([m[2] for m in ins]))
            return
        out = affine_bounds(op, [(*self.maps[i], *self.errors[i]) for i in node.inputs], directions=2,
                            exact_zeros=True)
        self.maps[index], self.errors[index] = out[:3], out[3:]  # type: ignore[assignment]

    def _check(self, name: str) -> Callable[[int], None]:
        def check(count: int) -> None:
            if count > self.limit:
                raise CostLimitError(f"the plane partition holds more than {self.limit:,} polygons (at node "
                                     f"{name!r}); raise `max_regions`")
            self.deadline.check("the graph plane partition")
        return check

    def piecewise(self, index: int) -> None:
        """Cut the polygons along the node's lines, read its states per polygon and select its output maps."""
        node = self.model.nodes[index]
        op = node.op
        assert isinstance(op, Piecewise)
        P = self.polys.count
        maps = tuple(m.reshape(P, -1) for m in self.maps[node.inputs[0]])
        errors = None if self.errors is None else tuple(m.reshape(P, -1) for m in self.errors[node.inputs[0]])
        lines, line_errors = line_maps(op, maps, errors)
        parent = self._proven_cuts(index, lines, line_errors, maps, errors) if line_errors is not None else None
        if parent is None:
            self.errors = None
            parent = self._float_cuts(lines, node.name)
        picked = tuple(m[parent] for m in maps)
        picked_errors = None if self.errors is None or errors is None else tuple(e[parent] for e in errors)
        states = self._states(index, picked, picked_errors, parent)
        self.states = [s[parent] for s in self.states] + [states]
        self._select(index, picked, picked_errors, states, parent)
        done = self.deciders.pop(index, None)  # its exact maps are no longer needed
        self.decided += 0 if done is None else done.decided

    def _select(self, index: int, maps: tuple[torch.Tensor, ...], errors: tuple[torch.Tensor, ...] | None,
                states: torch.Tensor, parent: torch.Tensor) -> None:
        """Carry every kept map to the new polygons (``parent``) and add the node's output maps for its states
        (with their bounds while the walk is proven)."""
        node = self.model.nodes[index]
        op = node.op
        assert isinstance(op, Piecewise)
        self.maps = {i: tuple(x[parent] for x in m) for i, m in self.maps.items()}  # type: ignore[misc]
        out, out_errors = op.select_plane(maps, errors if self.errors is not None else None, states)
        self.maps[index] = tuple(x.reshape(-1, *node.shape) for x in out)  # type: ignore[assignment]
        if self.errors is None or out_errors is None:
            return
        self.errors = {i: tuple(x[parent] for x in m) for i, m in self.errors.items()}  # type: ignore[misc]
        self.errors[index] = tuple(x.reshape(-1, *node.shape) for x in out_errors)  # type: ignore[assignment]

    def _states(self, index: int, maps: tuple[torch.Tensor, ...], errors: tuple[torch.Tensor, ...] | None,
                parent: torch.Tensor) -> torch.Tensor:
        """The node's states (P, n_states) read at each polygon's vertex mean (inside it), from its input maps
        ``maps`` (P, n) each: proven by their bounds (``errors``, None: the walk is no longer proven), the rest
        decided exactly; where that is not possible, the walk goes on unproven."""
        op = self.model.nodes[index].op
        assert isinstance(op, Piecewise)
        valid = self.polys.valid()
        centre = (self.polys.xy * valid[..., None]).sum(1) / self.polys.n[:, None]  # inside a convex polygon
        if errors is None:
            return op.states(maps[0] + maps[1] * centre[:, :1] + maps[2] * centre[:, 1:])
        value, error = centre_values(maps, errors, centre, centre_radii(self.polys.xy, self.radius, valid, self.polys.n))
        states = op.states(value)
        proven = centre_states_proven(op, value, error, states)
        if not bool(proven.all()) and not self._exact_states(index, states, parent, ~proven):
            self.errors = None
        return states

    def _proven_cuts(self, index: int, lines: torch.Tensor, errors: torch.Tensor, maps: tuple[torch.Tensor, ...],
                     map_errors: tuple[torch.Tensor, ...] | None) -> torch.Tensor | None:
        """Cut along the lines with every sign proven (:func:`~regioncount.partition.polygon_proofs.cut_proven`):
        the parent of each new polygon, or None (nothing changed) when a sign is not proven."""
        node = self.model.nodes[index]
        EZ = MapErrors(None, None, None, None, torch.zeros(3, lines.shape[2], dtype=lines.dtype,
                                                            device=lines.device), dense=errors)
        bound, candidates, _ = box_bounds(self.polys, self.radius, lines, EZ)
        assert isinstance(node.op, Piecewise)
        constants = exact_constants(maps, map_errors) if map_errors is not None else None
        zeros = ExactZeros(node.op, self.bits, self.corners, self.corner_inputs[index], constants,
                           self._kinks(node.inputs[0]))
        rule = zeros if zeros.needed else None
        self.first_bit[index], self.line_count[index] = self.bits, int(lines.shape[2])
        cuts = candidates & ~void_lines(lines, errors)
        mark = self.lines.mark()
        cut = cut_proven(self.polys, self.radius, self.outgoing, self.lines, lines, EZ, bound, cuts, self.bits,
                         self._check(node.name), rule)
        if cut is None:  # again, each sign proven as it is read and the doubtful ones decided exactly
            self.lines.rollback(mark)
            cut = cut_proven(self.polys, self.radius, self.outgoing, self.lines, lines, EZ, bound, cuts, self.bits,
                             self._check(node.name), rule, self._exact(index))
        self.bits += lines.shape[2]
        if cut is None:
            return None
        self.polys, parent, self.radius, self.outgoing = cut[:4]
        return parent

    def _exact_states(self, index: int, states: torch.Tensor, parent: torch.Tensor, rows: torch.Tensor) -> bool:
        """Replace the states of the polygons ``rows`` (P,) bool, whose centre did not prove them, by their exact
        states (:meth:`~regioncount.partition.graph_plane_exact.ExactSigns.polygon_states`); False: not possible."""
        decide = self._exact(index)
        lines = vertex_lines(self.outgoing.long(), self.polys.n)
        for row in rows.nonzero().flatten().tolist():
            exact = decide.polygon_states(int(parent[row]), lines[row, :int(self.polys.n[row])])
            if exact is None:
                return False
            states[row] = exact.to(states.device)
        return True

    def _exact(self, index: int) -> ExactSigns:
        """The exact decider of node ``index``'s signs and states, one while the node is cut: the cut's doubtful
        signs and the states its centres leave share the exact maps of their starting polygons."""
        if index not in self.deciders:
            self.deciders[index] = ExactSigns(self.model, self.plane, index, self.states, self.first_bit,
                                              self.line_count, self.lines)
        return self.deciders[index]

    @property
    def exact_decisions(self) -> int:
        """Signs and states decided in rational arithmetic so far."""
        return self.decided + sum(decide.decided for decide in self.deciders.values())

    def _kinks(self, source: int) -> tuple[int, torch.Tensor] | None:
        """The first line bit and :func:`~regioncount.partition.graph_plane_bounds.kink_values` of node
        ``source`` when it is an elementwise operator whose lines were cut with proofs (else None)."""
        op = self.model.nodes[source].op
        if not isinstance(op, Elementwise) or source not in self.first_bit:
            return None
        return self.first_bit[source], kink_values(op, self.model.nodes[source].size).to(self.polys.xy.device)

    def _float_cuts(self, lines: torch.Tensor, name: str) -> torch.Tensor:
        """Cut along the lines where float64 says they cross, one line at a time and only the polygons the line
        crosses; drop polygons of no area (module docstring).  The parent of each new polygon."""
        # cuts through a vertex leave polygons of no area, whose centroid reads no state: drop them (a true
        # region that thin is then missing, and the exact proof's areas say so), before and after the cuts
        kept = self._drop_slivers()
        crossed = _crossed(self.polys, lines[kept])
        store = PolygonStore(self.polys, channels=0)
        check = self._check(name)
        for line in torch.nonzero(crossed.any(0)).squeeze(1).tolist():
            self._cut(store, crossed[:, line], lines[kept, :, line])
            check(store.count)
        parent = kept[store.origin[:store.count]]
        self.polys = store.polygons()
        return parent[self._drop_slivers()]

    def _drop_slivers(self) -> torch.Tensor:
        """Keep the polygons above ``SLIVER_AREA`` of the slice: their indices."""
        keep = torch.nonzero(self.polys.areas() > SLIVER_AREA * self.area).squeeze(1)
        self.polys = self.polys.select(keep)
        return keep

    @staticmethod
    def _cut(store: PolygonStore, crossed: torch.Tensor, line: torch.Tensor) -> None:
        """Cut the polygons (children of crossed parents) that the line (P0, 3) crosses."""
        P = store.count
        idx = torch.nonzero(crossed[store.origin[:P]]).squeeze(1)
        if idx.numel() == 0:
            return
        parent = store.origin[idx]
        xy, n = store.xy[idx], store.n[idx]
        a, b, c = (line[parent, k, None] for k in range(3))
        f = c + a * xy[..., 0] + b * xy[..., 1]
        # values within rounding of 0 are 0 (a line through a vertex of several cuts would otherwise see the
        # rounding's signs alternate around the polygon)
        f = torch.where(f.abs() <= 1e-13 * (c.abs() + a.abs() * xy[..., 0].abs() + b.abs() * xy[..., 1].abs()), 0.0, f)
        valid = torch.arange(xy.shape[1], device=xy.device)[None] < n[:, None]
        both = ((f > 0) & valid).any(1) & ((f < 0) & valid).any(1)
        if bool(both.any()):
            store.split(idx[both], f[both])

    def forget(self, index: int) -> None:
        for i in [i for i in self.maps if self.model.last_use[i] <= index]:
            del self.maps[i]
            if self.errors is not None:
                del self.errors[i]

    def bytes_held(self) -> int:
        """Bytes of the polygons, their states and the maps kept per polygon (three numbers per value, and
        three bounds while the proof holds)."""
        P = self.polys.count
        per_value = 6 if self.proven else 3
        per_polygon = sum(per_value * m[0][0].numel() for m in self.maps.values()) + sum(s.shape[1] for s in self.states)
        return P * (8 * per_polygon + 16 * self.polys.xy.shape[1])


class PlaneWalk(NamedTuple):
    """What :func:`walk_plane` returns: the polygons (P,), the states of every piecewise node per polygon, the
    output maps (c, g_s, g_t) each (P, k), their bounds when every decision was proven (else None), and the
    number of signs and states decided in rational arithmetic."""

    polys: Polygons
    states: list[torch.Tensor]
    out: Maps
    out_errors: Maps | None
    exact_decisions: int = 0


def walk_plane(model: GraphModel, plane: Plane, device: torch.device, *, limit: int, deadline: Deadline,
               memory_limit: int | None = None) -> PlaneWalk:
    """The polygons of the slice and what they carry (:class:`PlaneWalk`).  Refuses (CostLimitError) once the
    polygons and their maps would hold more than ``memory_limit`` bytes (default: half the RAM)."""
    from ..core.devices import default_memory_limit

    most = default_memory_limit() if memory_limit is None else memory_limit
    walk = _PlaneWalk(model, plane, device, limit, deadline)
    for index, node in enumerate(model.nodes[1:], 1):
        if isinstance(node.op, Piecewise):
            walk.piecewise(index)
        else:
            walk.affine(index)
        walk.forget(index)
        held = walk.bytes_held()
        if held > most:
            raise CostLimitError(f"the plane partition's {walk.polys.count:,} polygons and their maps need about "
                                 f"{held / 2**30:.2f} GiB at node {node.name!r}, past the memory limit of "
                                 f"{most / 2**30:.2f} GiB")
    P = walk.polys.count
    out = tuple(m.reshape(P, -1) for m in walk.maps[model.output])
    errors = None if walk.errors is None else tuple(m.reshape(P, -1) for m in walk.errors[model.output])
    return PlaneWalk(walk.polys, walk.states, out, errors, walk.exact_decisions)  # type: ignore[arg-type]


class PlaneRegions(NamedTuple):
    """Regions as distinct patterns: the region of each polygon (P,), a representative polygon per region
    (R,), packed pattern words (R, words), output gradients (R, k, 2) and offsets (R, k), areas (R,)."""

    region: torch.Tensor
    representative: torch.Tensor
    words: torch.Tensor
    gradients: torch.Tensor
    offsets: torch.Tensor
    areas: torch.Tensor


def regions_of(model: GraphModel, polys: Polygons, states: list[torch.Tensor], out: Maps) -> PlaneRegions:
    """The regions of a walked slice (:class:`PlaneRegions`)."""
    from ..core.patterns import group_rows, pack_bits

    words = pack_bits(model.code_of_states(states, polys.count))
    region, representative, _ = group_rows(words)
    c, gs, gt = (m[representative] for m in out)
    areas = torch.zeros(representative.shape[0], dtype=torch.float64, device=polys.xy.device
                        ).index_add_(0, region, polys.areas())
    return PlaneRegions(region, representative, words[representative], torch.stack([gs, gt], 2), c, areas)


#: Seconds the exact proof of a graph plane partition may take (estimated before it starts), unless the
#: caller's deadline leaves less.
PROOF_SECONDS = 60.0


def partition_graph_plane(model: GraphModel, plane: Plane, device: torch.device, *, limit: int,
                          deadline: Deadline, proof_seconds: float | None = None,
                          memory_limit: int | None = None) -> PlanePartition:
    """The :class:`~regioncount.core.results.PlanePartition` of a graph model's slice (module docstring)."""
    from ..core.devices import Stopwatch
    from .edge_probes import probe_adjacency
    from .exact_pieces import linear_piece_count

    watch = Stopwatch(device)
    with torch.no_grad():
        walked = walk_plane(model, plane, device, limit=limit, deadline=deadline, memory_limit=memory_limit)
        polys, states = walked.polys, walked.states
        partition_seconds = watch.seconds()
        found = regions_of(model, polys, states, walked.out)
        region = found.region
        pairs, unmatched = probe_adjacency(model, plane, polys, region, found.words,
                                           retries=((0.25, 1e-7), (0.75, 1e-7), (0.5, 1e-11), (0.25, 1e-11),
                                                    (0.75, 1e-11)))
        pairs = torch.unique(torch.cat([pairs, shared_edge_pairs(polys, region)]), dim=0).cpu()
    left = deadline.remaining()
    wanted = PROOF_SECONDS if proof_seconds is None else proof_seconds
    budget = wanted if left is None else max(0.0, min(wanted, left))
    notes = ["region adjacency: every edge by probes just across (not proven)"]
    if unmatched:
        notes.append(f"{unmatched} edges found no region across them and were skipped")
    cpu_states = [s.cpu() for s in states]
    operators = len(model.nodes) - 1
    if walked.out_errors is not None:
        same, undecided, exact, engine = _proven_outputs(model, plane, walked, found, pairs, budget, notes)
    else:
        same, undecided, engine = _rational_proof(model, plane, polys, cpu_states, found, pairs, budget, notes)
        exact = 0
    R = found.words.shape[0]
    touched = _touches_border(polys, plane, region, R)
    return PlanePartition(
        model=model.name or model.describe(), plane=plane, polygons=polys, region=region, patterns=found.words,
        gradients=found.gradients, offsets=found.offsets, areas=found.areas, bounded=~touched, pairs=pairs,
        same_affine=same, linear_pieces=linear_piece_count(R, pairs, same), seconds=watch.seconds(),
        device=device.type, engine=f"graph plane subdivision (float64, {operators} operators); {engine}",
        unresolved=0, notes=notes, partition_seconds=partition_seconds, tolerance_decisions=undecided,
        exact_decisions=exact)


def _proven_outputs(model: GraphModel, plane: Plane, walked: PlaneWalk, found: PlaneRegions, pairs: torch.Tensor,
                    budget: float, notes: list[str]) -> tuple[torch.Tensor, int, int, str]:
    """Every sign of the walk was proven: the regions are exact; neighbours' outputs are compared by their
    bounds, the support rule, and rational arithmetic within the budget.  (same, left to tolerance, settled
    exactly, the engine's words)."""
    from .graph_plane_proof import compare_outputs

    assert walked.out_errors is not None
    compared = compare_outputs(model, plane, [s.cpu() for s in walked.states], found.representative.cpu(), pairs,
                               walked.out, walked.out_errors, budget)
    if compared.left:
        notes.append(f"{compared.left} comparisons of neighbouring output maps were left to float64 within a "
                     f"tolerance (their exact cost was past the budget of {budget:.3g} s; raise `proof_seconds`): "
                     "the linear pieces are approximate, the regions exact")
    engine = "every sign proven by its float64 error bound"
    if walked.exact_decisions:
        engine += f" or decided in rational arithmetic ({walked.exact_decisions})"
    return compared.same, compared.left, compared.exact + walked.exact_decisions, engine


def _rational_proof(model: GraphModel, plane: Plane, polys: Polygons, states: list[torch.Tensor], found: PlaneRegions,
                    pairs: torch.Tensor, budget: float, notes: list[str]) -> tuple[torch.Tensor, int, str]:
    """Some sign of the walk was not proven by its bound: the whole partition checked in rational arithmetic
    (:func:`~regioncount.partition.graph_plane_proof.prove_plane`) when it fits the budget.  (same, decisions
    left to tolerance, the engine's words)."""
    from .graph_plane_proof import prove_plane

    proof = prove_plane(model, plane, polys.select(torch.arange(polys.count)), states, found.region.cpu(), pairs,
                        budget)
    if proof.done and proof.covered:
        assert proof.same is not None
        return proof.same, 0, "every region proven in rational arithmetic, hulls cover the slice"
    gradients, offsets = found.gradients, found.offsets
    scale = 1e-9 * (1 + gradients.abs().amax() + offsets.abs().amax())
    a, b = pairs[:, 0], pairs[:, 1]
    same = ((gradients[a] - gradients[b]).abs() <= scale).all(dim=(1, 2)) & \
        ((offsets[a] - offsets[b]).abs() <= scale).all(dim=1)
    R = found.words.shape[0]
    undecided = max(1, proof.failed) if proof.done else R
    why = (f"the exact proof failed for {proof.failed} regions" if proof.done and proof.failed else
           "the exact hull areas do not cover the slice" if proof.done else
           f"the exact proof was estimated at {proof.seconds_estimate:.3g} s, past its budget of {budget:.3g} s "
           "(raise `proof_seconds`)")
    notes.append(f"not proven: {why}; regions and linear pieces as float64 decides them (approximate)")
    return same, undecided, "unproven"


def _touches_border(polys: Polygons, plane: Plane, region: torch.Tensor, R: int) -> torch.Tensor:
    """(R,): some polygon of the region has a vertex on the rectangle's border."""
    xy, valid = polys.xy, polys.valid()
    on = ((xy[..., 0] == plane.low[0]) | (xy[..., 0] == plane.high[0]) | (xy[..., 1] == plane.low[1]) |
          (xy[..., 1] == plane.high[1])) & valid
    return torch.zeros(R, dtype=torch.long, device=xy.device).index_add_(0, region, on.any(1).long()) > 0


def shared_edge_pairs(polys: Polygons, region: torch.Tensor) -> torch.Tensor:
    """Pairs of regions (E, 2) whose polygons share an edge with bitwise equal end points (the two sides of a
    cut, which the subdivision writes with the same numbers): what probes across edges can miss where a
    neighbour is thinner than the probe's step."""
    V = polys.xy.shape[1]
    k = torch.arange(V, device=polys.xy.device)[None]
    nxt = torch.where(k + 1 < polys.n[:, None], k + 1, 0)
    a, b = polys.xy, torch.gather(polys.xy, 1, nxt[..., None].expand(-1, -1, 2))
    valid = polys.valid() & (a != b).any(2)
    first = torch.where(((a[..., 0] < b[..., 0]) | (a[..., 0] == b[..., 0]) & (a[..., 1] < b[..., 1]))[..., None], a, b)
    second = torch.where(((a[..., 0] < b[..., 0]) | (a[..., 0] == b[..., 0]) & (a[..., 1] < b[..., 1]))[..., None], b, a)
    edges = torch.cat([first, second], 2)[valid]  # (E, 4), end points in a fixed order
    owners = region[:, None].expand(-1, V)[valid]
    if edges.shape[0] == 0:
        return torch.zeros(0, 2, dtype=torch.long, device=region.device)
    _, inverse = torch.unique(edges, dim=0, return_inverse=True)
    order = torch.argsort(inverse, stable=True)
    same = inverse[order][1:] == inverse[order][:-1]
    left, right = owners[order][:-1][same], owners[order][1:][same]
    pairs = torch.stack([torch.minimum(left, right), torch.maximum(left, right)], 1)
    return pairs[pairs[:, 0] != pairs[:, 1]]
