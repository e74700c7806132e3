"""The float64 walk of a graph model along a segment: breakpoint propagation through the operators.

Along ``x(t) = p + t v`` every node's output is, on each piece of the segment, an affine function
``c + s t`` of t.  The walk carries, per piece, the maps ``(c, s)`` of the nodes still to be read (affine
operators map ``c`` by their whole map and ``s`` by their linear part) and, at each piecewise node, cuts every
piece at the kinks its operator reports inside it, reads the node's states at each child's midpoint, and
merges neighbouring children of one parent whose states agree.  Every boundary left is a change of some
node's states, so the pieces are the activation regions as float64 decides them; the exact proof
(:mod:`regioncount.graph.proof`) then confirms or refutes each of them (``docs/graphs.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.errors import CostLimitError
from ..core.limits import Deadline
from .model import GraphModel
from .ops import Affine, Piecewise

#: Candidate kinks handled at once (pieces x kinks per piece), to bound the memory of the sort.
KINK_CHUNK = 1 << 22


@dataclass
class WalkPieces:
    """The pieces of a walk: ``lefts`` (P,) sorted left ends in t (the right ends are the next left ends and
    ``t_high``), the states of every piecewise node (list of (P, units) int64) and the output maps (P, k)."""

    lefts: torch.Tensor
    t_high: float
    states: list[torch.Tensor]
    out_c: torch.Tensor
    out_s: torch.Tensor

    @property
    def count(self) -> int:
        return int(self.lefts.shape[0])


def _cuts(roots: torch.Tensor, tl: torch.Tensor, tr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted distinct kinks strictly inside each piece: (P, m) candidates -> per-piece counts (P,) and the
    kinks themselves (R,), piece by piece, left to right."""
    inside = (roots > tl[:, None]) & (roots < tr[:, None])  # nan compares false
    values = torch.where(inside, roots, torch.full_like(roots, torch.inf)).sort(dim=1).values
    keep = torch.isfinite(values)
    keep[:, 1:] &= values[:, 1:] != values[:, :-1]
    return keep.sum(dim=1), values[keep]


def _children(tl: torch.Tensor, tr: torch.Tensor, counts: torch.Tensor, kinks: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Children of every piece cut at its kinks: (parent index, left end, right end), in segment order."""
    n_children = counts + 1
    parent = torch.repeat_interleave(torch.arange(tl.shape[0], device=tl.device), n_children)
    first = torch.cumsum(n_children, 0) - n_children  # position of each piece's first child
    lefts = torch.empty(parent.shape[0], dtype=tl.dtype, device=tl.device)
    lefts[first] = tl
    inner = torch.ones(parent.shape[0], dtype=torch.bool, device=tl.device)
    inner[first] = False
    lefts[inner] = kinks
    rights = torch.empty_like(lefts)
    rights[:-1] = lefts[1:]
    rights[first + counts] = tr
    return parent, lefts, rights


def _split(roots_of, tl: torch.Tensor, tr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut the pieces at their kinks, in chunks of pieces; ``roots_of(rows)`` gives the candidates of a slice."""
    counts, kinks = [], []
    step = max(1, KINK_CHUNK // max(1, roots_of(slice(0, 1)).shape[1]))
    for start in range(0, tl.shape[0], step):
        rows = slice(start, start + step)
        n, k = _cuts(roots_of(rows), tl[rows], tr[rows])
        counts.append(n)
        kinks.append(k)
    return _children(tl, tr, torch.cat(counts), torch.cat(kinks))


def _runs(parent: torch.Tensor, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge neighbouring children of one parent with equal states: indices of the first and the last child
    of every run."""
    start = torch.ones(parent.shape[0], dtype=torch.bool, device=parent.device)
    start[1:] = (parent[1:] != parent[:-1]) | (states[1:] != states[:-1]).any(dim=1)
    first = torch.nonzero(start).squeeze(1)
    last = torch.cat([first[1:] - 1, first.new_tensor([parent.shape[0] - 1])])
    return first, last


class _Walk:
    """The state of a walk between nodes: the pieces, the live maps and the states read so far."""

    def __init__(self, model: GraphModel, p: torch.Tensor, v: torch.Tensor, t_low: float, t_high: float) -> None:
        shape = model.input_shape
        self.model = model
        self.tl = p.new_tensor([t_low])
        self.tr = p.new_tensor([t_high])
        self.maps: dict[int, tuple[torch.Tensor, torch.Tensor]] = {0: (p.reshape(1, *shape), v.reshape(1, *shape))}
        self.states: list[torch.Tensor] = []

    def affine(self, index: int) -> None:
        node = self.model.nodes[index]
        ins = [self.maps[i] for i in node.inputs]
        assert isinstance(node.op, Affine)
        self.maps[index] = (node.op.forward([c for c, _ in ins]), node.op.linear([s for _, s in ins]))

    def piecewise(self, index: int) -> None:
        node = self.model.nodes[index]
        op = node.op
        assert isinstance(op, Piecewise)
        c_in, s_in = self.maps[node.inputs[0]]
        P = c_in.shape[0]
        c_in, s_in = c_in.reshape(P, -1), s_in.reshape(P, -1)
        parent, tl, tr = _split(lambda rows: op.kinks(c_in[rows], s_in[rows]), self.tl, self.tr)
        c_in, s_in = c_in[parent], s_in[parent]
        mid = (tl + tr) / 2
        states = op.states(c_in + s_in * mid[:, None])
        first, last = _runs(parent, states)
        keep = first
        self.tl, self.tr = tl[first], tr[last]
        rows = parent[keep]
        self.maps = {i: (c[rows], s[rows]) for i, (c, s) in self.maps.items()}
        self.states = [st[rows] for st in self.states] + [states[keep]]
        c, s = op.select(c_in[keep], s_in[keep], states[keep])
        self.maps[index] = (c.reshape(-1, *node.shape), s.reshape(-1, *node.shape))

    def forget(self, index: int) -> None:
        """Drop the maps no later node reads."""
        for i in [i for i in self.maps if self.model.last_use[i] <= index]:
            del self.maps[i]

    def live_floats(self) -> int:
        return sum(c[0].numel() * 2 for c, _ in self.maps.values()) + sum(s.shape[1] for s in self.states)


def walk_graph(model: GraphModel, p: torch.Tensor, v: torch.Tensor, t_low: float, t_high: float, *,
               max_regions: int | None, memory_limit: int, deadline: Deadline) -> WalkPieces:
    """Walk ``x(t) = p + t v``, t in [t_low, t_high], through the graph in float64 (p, v: (d,) tensors).

    Refuses (CostLimitError) once the pieces pass ``max_regions`` (pieces only multiply, so the count would
    too), once the pieces' maps would pass ``memory_limit`` bytes, or past the deadline."""
    walk = _Walk(model, p, v, t_low, t_high)
    for index, node in enumerate(model.nodes[1:], 1):
        assert node.op is not None
        if node.op.piecewise:
            walk.piecewise(index)
        else:
            walk.affine(index)
        walk.forget(index)
        pieces = walk.tl.shape[0]
        if max_regions is not None and pieces > max_regions:
            raise CostLimitError(f"the segment has more than {pieces:,} regions (found at node {node.name!r}), "
                                 f"past the limit of {max_regions:,}")
        need = pieces * walk.live_floats() * 8 * 3
        if need > memory_limit:
            raise CostLimitError(f"the walk's {pieces:,} pieces need about {need / 2**30:.2f} GiB at node "
                                 f"{node.name!r}, past the memory limit of {memory_limit / 2**30:.2f} GiB")
        deadline.check("the graph walk")
    out_c, out_s = walk.maps[model.output]
    return WalkPieces(walk.tl, float(t_high), walk.states, out_c.reshape(out_c.shape[0], -1),
                      out_s.reshape(out_s.shape[0], -1))
