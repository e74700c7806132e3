"""The exact rational walk of a graph model along a segment: the reference every graph count is checked with.

The same breakpoint propagation as :mod:`regioncount.graph.walk`, in exact arithmetic: maps are
:class:`~regioncount.graph.scaled.Scaled` integers, piece ends are Fractions, the kinks inside a piece are
found and ordered exactly, and the states of each child are read at its exact midpoint.  It loops over pieces
in Python, so it is meant for small nets, for tests, and as the second opinion of a walk whose proof failed,
within a budget (``docs/graphs.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from ..core.errors import CostLimitError
from ..core.limits import Deadline
from .model import GraphModel
from .ops import Affine, Piecewise
from .scaled import Scaled


@dataclass
class ExactGraphCount:
    """Activation regions, linear pieces and the exact region boundaries inside (t_low, t_high)."""

    regions: int
    linear_pieces: int
    breakpoints: list[Fraction]


def _inside(num: np.ndarray, den: np.ndarray, low: Fraction, high: Fraction) -> list[Fraction]:
    """The distinct sorted t = num / den (den > 0) strictly inside (low, high)."""
    keep = (num * low.denominator > low.numerator * den) & (num * high.denominator < high.numerator * den)
    return sorted({Fraction(int(n), int(d)) for n, d in zip(num[keep], den[keep])})


def _at(c: Scaled, s: Scaled, points: list[Fraction]) -> tuple[np.ndarray, np.ndarray]:
    """Values c + s t at one t per row, as integers over per-row denominators ((B, n), (B, 1))."""
    num = np.array([[t.numerator] for t in points], dtype=object)
    den = np.array([[t.denominator] for t in points], dtype=object)
    return c.ints * s.den * den + s.ints * c.den * num, den * c.den * s.den


class _ExactWalk:
    def __init__(self, model: GraphModel, p: torch.Tensor, v: torch.Tensor, t_low: float, t_high: float) -> None:
        shape = model.input_shape
        self.model = model
        self.ends = [(Fraction(t_low), Fraction(t_high))]
        P, V = Scaled.of_tensor(p.reshape(1, -1)), Scaled.of_tensor(v.reshape(1, -1))
        self.maps = {0: (P.reshape(1, *shape), V.reshape(1, *shape))}

    def piecewise(self, index: int) -> None:
        node = self.model.nodes[index]
        op = node.op
        assert isinstance(op, Piecewise)
        c, s = self.maps[node.inputs[0]]
        B = c.shape[0]
        c, s = c.reshape(B, -1), s.reshape(B, -1)
        parent, ends = [], []
        for row, (low, high) in enumerate(self.ends):
            num, den = op.exact_kinks(Scaled(c.ints[row:row + 1], c.den), Scaled(s.ints[row:row + 1], s.den))
            cuts = [low, *_inside(num, den, low, high), high]
            parent += [row] * (len(cuts) - 1)
            ends += list(zip(cuts[:-1], cuts[1:]))
        rows = np.array(parent, dtype=np.int64)
        cc, ss = Scaled(c.ints[rows], c.den), Scaled(s.ints[rows], s.den)
        states = op.exact_states(*_at(cc, ss, [(a + b) / 2 for a, b in ends]))
        keep = [0] + [k for k in range(1, len(ends))
                      if parent[k] != parent[k - 1] or (states[k] != states[k - 1]).any()]
        last = keep[1:] + [len(ends)]
        self.ends = [(ends[k][0], ends[j - 1][1]) for k, j in zip(keep, last)]
        chosen = rows[keep]
        self.maps = {i: (Scaled(a.ints[chosen], a.den), Scaled(b.ints[chosen], b.den)) for i, (a, b) in self.maps.items()}
        out_c, out_s = op.exact_select(Scaled(cc.ints[keep], cc.den), Scaled(ss.ints[keep], ss.den), states[keep])
        self.maps[index] = (out_c.reshape(len(keep), *node.shape), out_s.reshape(len(keep), *node.shape))


def exact_walk(model: GraphModel, p: torch.Tensor, v: torch.Tensor, t_low: float, t_high: float, *,
               max_pieces: int | None = None, deadline: Deadline | None = None) -> ExactGraphCount:
    """Count the regions and linear pieces of ``model`` along ``p + t v``, t in [t_low, t_high], exactly."""
    deadline = deadline or Deadline(None)
    walk = _ExactWalk(model, p, v, t_low, t_high)
    for index, node in enumerate(model.nodes[1:], 1):
        if isinstance(node.op, Piecewise):
            walk.piecewise(index)
        else:
            assert isinstance(node.op, Affine)
            ins = [walk.maps[i] for i in node.inputs]
            walk.maps[index] = (node.op.exact([a for a, _ in ins], True), node.op.exact([b for _, b in ins], False))
        for i in [i for i in walk.maps if model.last_use[i] <= index]:
            del walk.maps[i]
        if max_pieces is not None and len(walk.ends) > max_pieces:
            raise CostLimitError(f"the exact graph walk passed {max_pieces:,} pieces")
        deadline.check("the exact graph walk")
    out_c, out_s = walk.maps[model.output]
    c, s = out_c.reshape(len(walk.ends), -1).ints, out_s.reshape(len(walk.ends), -1).ints
    changes = int(((c[1:] != c[:-1]).any(axis=1) | (s[1:] != s[:-1]).any(axis=1)).sum()) if len(walk.ends) > 1 else 0
    return ExactGraphCount(len(walk.ends), 1 + changes, [a for a, _ in walk.ends[1:]])
