"""Partitions of a plane slice of a graph model (``docs/graphs.md``, "Planes").

The slice is ``x(s, t) = o + s u + t w`` over a rectangle.  On each polygon every node's output is affine in
(s, t): ``c + g_s s + g_t t``.  The walk carries these maps per polygon through the operators (affine ones map
``c`` by the whole map and the gradients by the linear part) and, at each piecewise operator, cuts every
polygon along the lines where its operator may change state (``u_j = theta`` per unit and threshold; for a
max, ``f_i = f_j`` for every pair of a window), one line at a time and only the polygons the line crosses,
then reads the states at each polygon's centroid.  A max's pairs that are not the maximum over-cut: polygons
of one region then share a pattern, and regions are the distinct patterns (each pattern's set is convex, so
the polygons of one pattern are one region).  The proof (:mod:`regioncount.partition.graph_plane_proof`)
checks the result in rational arithmetic when its cost fits the budget; otherwise the partition is labelled
approximate.
"""

from __future__ import annotations

import torch

from ..core.errors import CostLimitError
from ..core.geometry import Plane
from ..core.limits import Deadline
from ..core.results import PlanePartition
from ..graph.model import GraphModel
from ..graph.ops import Affine, Elementwise, MaxGroups, Piecewise
from .polygons import Polygons, PolygonStore, rectangle

#: Lines whose crossings are tested at once (polygons x lines x vertices values).
LINE_CHUNK = 256
#: Polygons below this share of the slice's area are dropped after each operator's cuts (module docstring).
SLIVER_AREA = 1e-14

Maps = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # c, g_s, g_t per polygon


def _lines(op: Piecewise, c: torch.Tensor, gs: torch.Tensor, gt: torch.Tensor) -> Maps:
    """The lines (P, L) where the operator may change state: coefficients (constant, s, t) per polygon."""
    if isinstance(op, Elementwise):
        return (torch.cat([c - theta for theta in op.thresholds], 1), gs.repeat(1, len(op.thresholds)),
                gt.repeat(1, len(op.thresholds)))
    assert isinstance(op, MaxGroups)
    real = (op.index[:, op._i] >= 0) & (op.index[:, op._j] >= 0)  # pairs without padding (G, pairs)
    out = []
    for x in (c, gs, gt):
        w = op._windows(x, 0.0)
        out.append((w[:, :, op._i] - w[:, :, op._j])[:, real])
    return out[0], out[1], out[2]


def _crossed(polys: Polygons, lines: Maps) -> torch.Tensor:
    """(P, L): the line changes sign strictly inside polygon p (some vertex above it, some below)."""
    valid = polys.valid()
    x, y = polys.xy[..., 0], polys.xy[..., 1]
    out = []
    for start in range(0, lines[0].shape[1], LINE_CHUNK):
        c, s, t = (m[:, start:start + LINE_CHUNK] for m in lines)
        f = c[:, None, :] + s[:, None, :] * x[..., None] + t[:, None, :] * y[..., None]  # (P, V, L)
        above = ((f > 0) & valid[..., None]).any(1)
        below = ((f < 0) & valid[..., None]).any(1)
        out.append(above & below)
    return torch.cat(out, 1) if out else torch.zeros(polys.count, 0, dtype=torch.bool)


class _PlaneWalk:
    def __init__(self, model: GraphModel, plane: Plane, device: torch.device) -> None:
        shape = model.input_shape

        def as_map(v: tuple[float, ...]) -> torch.Tensor:
            return torch.tensor(v, dtype=torch.float64, device=device).reshape(1, *shape)

        self.model = model
        self.polys = rectangle(plane.low, plane.high, device)
        self.area = (plane.high[0] - plane.low[0]) * (plane.high[1] - plane.low[1])
        self.maps: dict[int, Maps] = {0: (as_map(plane.origin), as_map(plane.u), as_map(plane.w))}
        self.states: list[torch.Tensor] = []

    def affine(self, index: int) -> None:
        node = self.model.nodes[index]
        op = node.op
        assert isinstance(op, Affine)
        ins = [self.maps[i] for i in node.inputs]
        self.maps[index] = (op.forward([m[0] for m in ins]), op.linear([m[1] for m in ins]),
                            op.linear([m[2] for m in ins]))

    def piecewise(self, index: int, limit: int, deadline: Deadline) -> None:
        node = self.model.nodes[index]
        op = node.op
        assert isinstance(op, Piecewise)
        P = self.polys.count
        c, gs, gt = (m.reshape(P, -1) for m in self.maps[node.inputs[0]])
        lines = _lines(op, c, gs, gt)
        crossed = _crossed(self.polys, lines)
        store = PolygonStore(self.polys, channels=0)
        for line in torch.nonzero(crossed.any(0)).squeeze(1).tolist():
            self._cut(store, crossed[:, line], tuple(m[:, line] for m in lines))  # type: ignore[arg-type]
            if store.count > limit:
                raise CostLimitError(f"the plane partition holds more than {limit:,} polygons (at node "
                                     f"{node.name!r}); raise `max_regions`")
            deadline.check("the graph plane partition")
        parent = store.origin[:store.count].clone()
        self.polys = store.polygons()
        # cuts through a vertex leave polygons of no area, whose centroid reads no state: drop them (a true
        # region that thin is then missing, and the proof's areas say so)
        keep = torch.nonzero(self.polys.areas() > SLIVER_AREA * self.area).squeeze(1)
        self.polys, parent = self.polys.select(keep), parent[keep]
        centre = self.polys.centroids()
        u = c[parent] + gs[parent] * centre[:, :1] + gt[parent] * centre[:, 1:]
        states = op.states(u)
        self.maps = {i: tuple(x[parent] for x in m) for i, m in self.maps.items()}  # type: ignore[misc]
        self.states = [s[parent] for s in self.states] + [states]
        oc, ogs = op.select(c[parent], gs[parent], states)
        ogt = op.select(c[parent], gt[parent], states)[1]
        self.maps[index] = tuple(x.reshape(-1, *node.shape) for x in (oc, ogs, ogt))  # type: ignore[assignment]

    @staticmethod
    def _cut(store: PolygonStore, crossed: torch.Tensor, line: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
             ) -> None:
        """Cut the polygons (children of crossed parents) that the line crosses."""
        P = store.count
        idx = torch.nonzero(crossed[store.origin[:P]]).squeeze(1)
        if idx.numel() == 0:
            return
        parent = store.origin[idx]
        xy, n = store.xy[idx], store.n[idx]
        f = line[0][parent, None] + line[1][parent, None] * xy[..., 0] + line[2][parent, None] * xy[..., 1]
        valid = torch.arange(xy.shape[1], device=xy.device)[None] < n[:, None]
        both = ((f > 0) & valid).any(1) & ((f < 0) & valid).any(1)
        if bool(both.any()):
            store.split(idx[both], f[both])

    def forget(self, index: int) -> None:
        for i in [i for i in self.maps if self.model.last_use[i] <= index]:
            del self.maps[i]

    def bytes_held(self) -> int:
        """Bytes of the polygons, their states and the maps kept per polygon (three numbers per value)."""
        P = self.polys.count
        per_polygon = sum(3 * m[0][0].numel() for m in self.maps.values()) + sum(s.shape[1] for s in self.states)
        return P * (8 * per_polygon + 16 * self.polys.xy.shape[1])


def walk_plane(model: GraphModel, plane: Plane, device: torch.device, *, limit: int, deadline: Deadline,
               memory_limit: int | None = None) -> tuple[Polygons, list[torch.Tensor], Maps]:
    """The polygons of the slice, the states of every piecewise node per polygon, and the output maps
    (c, g_s, g_t), each (P, k).  Refuses (CostLimitError) once the polygons and their maps would hold more
    than ``memory_limit`` bytes (default: half the RAM)."""
    from ..core.devices import default_memory_limit

    most = default_memory_limit() if memory_limit is None else memory_limit
    walk = _PlaneWalk(model, plane, device)
    for index, node in enumerate(model.nodes[1:], 1):
        if isinstance(node.op, Piecewise):
            walk.piecewise(index, limit, deadline)
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
    return walk.polys, walk.states, out  # type: ignore[return-value]


def regions_of(model: GraphModel, polys: Polygons, states: list[torch.Tensor], out: Maps
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Regions as distinct patterns: region id per polygon (P,), packed pattern words (R, words), output
    gradients (R, k, 2) and offsets (R, k) of a representative polygon, and areas (R,)."""
    from ..core.patterns import group_rows, pack_bits

    words = pack_bits(model.code_of_states(states, polys.count))
    region, representative, _ = group_rows(words)
    c, gs, gt = (m[representative] for m in out)
    areas = torch.zeros(representative.shape[0], dtype=torch.float64, device=polys.xy.device
                        ).index_add_(0, region, polys.areas())
    return region, words[representative], torch.stack([gs, gt], 2), c, areas


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
    from .graph_plane_proof import prove_plane

    watch = Stopwatch(device)
    with torch.no_grad():
        polys, states, out = walk_plane(model, plane, device, limit=limit, deadline=deadline,
                                        memory_limit=memory_limit)
        partition_seconds = watch.seconds()
        region, words, gradients, offsets, areas = regions_of(model, polys, states, out)
        pairs, unmatched = probe_adjacency(model, plane, polys, region, words,
                                           retries=((0.25, 1e-7), (0.75, 1e-7), (0.5, 1e-11), (0.25, 1e-11),
                                                    (0.75, 1e-11)))
        pairs = torch.unique(torch.cat([pairs, shared_edge_pairs(polys, region)]), dim=0)
    left = deadline.remaining()
    wanted = PROOF_SECONDS if proof_seconds is None else proof_seconds
    budget = wanted if left is None else max(0.0, min(wanted, left))
    proof = prove_plane(model, plane, polys.select(torch.arange(polys.count)), [s.cpu() for s in states],
                        region.cpu(), pairs.cpu(), budget)
    R = words.shape[0]
    notes = ["region adjacency: every edge by probes just across (not proven)"]
    if unmatched:
        notes.append(f"{unmatched} edges found no region across them and were skipped")
    if proof.done and proof.covered:
        assert proof.same is not None
        same, undecided = proof.same, 0
        engine = (f"graph plane subdivision (float64, {len(model.nodes) - 1} operators); every region proven in "
                  "rational arithmetic, hulls cover the slice")
    else:
        scale = 1e-9 * (1 + gradients.abs().amax() + offsets.abs().amax())
        a, b = pairs[:, 0], pairs[:, 1]
        same = ((gradients[a] - gradients[b]).abs() <= scale).all(dim=(1, 2)) & \
            ((offsets[a] - offsets[b]).abs() <= scale).all(dim=1)
        undecided = max(1, proof.failed) if proof.done else R
        why = (f"the exact proof failed for {proof.failed} regions" if proof.done and proof.failed else
               "the exact hull areas do not cover the slice" if proof.done else
               f"the exact proof was estimated at {proof.seconds_estimate:.3g} s, past its budget of {budget:.3g} s "
               "(raise `proof_seconds`)")
        notes.append(f"not proven: {why}; regions and linear pieces as float64 decides them (approximate)")
        engine = f"graph plane subdivision (float64, {len(model.nodes) - 1} operators); unproven"
    touched = _touches_border(polys, plane, region, R)
    return PlanePartition(
        model=model.name or model.describe(), plane=plane, polygons=polys, region=region, patterns=words,
        gradients=gradients, offsets=offsets, areas=areas, bounded=~touched, pairs=pairs.cpu(), same_affine=same,
        linear_pieces=linear_piece_count(R, pairs, same), seconds=watch.seconds(), device=device.type,
        engine=engine, unresolved=0, notes=notes, partition_seconds=partition_seconds,
        tolerance_decisions=undecided, exact_decisions=0)


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
