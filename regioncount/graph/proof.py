"""The proof of a graph walk: every piece's pattern, by float64 bounds or in rational arithmetic.

For the states of piece k, every node's output along the segment is an exact affine map of t, and the states
hold exactly where a finite set of affine quantities ``q(t)`` is positive (strict) or non-negative
(``Piecewise.constraints``).  Piece k holds on the open interval ``(x_k, x_{k+1})`` when every quantity is
>= 0 at both ends and no strict one vanishes at both.  ``x_0 = t_low``, the last right end is ``t_high``, and
``x_{k+1}`` is the exact root of the one quantity that changes sign there (where several units change state at
once: the first root at which one of piece k's quantities turns negative).  When every piece holds and the
ends increase, the pieces are the activation regions: neighbouring patterns differ and each pattern holds on
one interval (the convexity lemma), so the count is exact for the stored weights (``docs/graphs.md``).

Most pieces are proven by the float64 forward-error bounds of :mod:`regioncount.graph.certify`; the rest are
checked here with exact maps (:class:`~regioncount.graph.scaled.Scaled` integers through the operators), and
so are neighbouring output maps that the bounds cannot tell apart, which gives the number of linear pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from ..core.limits import Deadline
from .certify import FloatProof, certify_walk
from .model import GraphModel
from .ops import Affine, Piecewise
from .scaled import Scaled, concatenate
from .walk import WalkPieces

#: Pieces whose exact maps are built at once.
PROOF_CHUNK = 64


@dataclass
class GraphProof:
    """``proven``: pieces whose pattern and interval were confirmed; ``failed``: pieces that were not;
    ``linear_pieces``: the exact number of linear pieces (None unless every piece was proven);
    ``in_rationals``: pieces the float bounds left to rational arithmetic."""

    proven: int
    failed: int
    linear_pieces: int | None
    in_rationals: int


def exact_maps(model: GraphModel, states: list[np.ndarray], p: Scaled, v: Scaled
               ) -> tuple[list[tuple[Scaled, Scaled, np.ndarray]], tuple[Scaled, Scaled]]:
    """The exact maps of a batch of B patterns along ``p + t v`` ((1, d) each): every piecewise node's
    constraint quantities (qc, qs, strict), each (B, m), and the output map (c, s), each (B, k)."""
    B = states[0].shape[0] if states else 1
    shape = model.input_shape
    maps = {0: (Scaled(np.repeat(p.ints, B, 0), p.den).reshape(B, *shape),
                Scaled(np.repeat(v.ints, B, 0), v.den).reshape(B, *shape))}
    constraints: list[tuple[Scaled, Scaled, np.ndarray]] = []
    for index, node in enumerate(model.nodes[1:], 1):
        op = node.op
        if isinstance(op, Piecewise):
            c, s = maps[node.inputs[0]]
            c, s = c.reshape(B, -1), s.reshape(B, -1)
            st = states[len(constraints)]
            constraints.append(op.constraints(c, s, st))
            c, s = op.exact_select(c, s, st)
            maps[index] = (c.reshape(B, *node.shape), s.reshape(B, *node.shape))
        else:
            assert isinstance(op, Affine)
            ins = [maps[i] for i in node.inputs]
            maps[index] = (op.exact([c for c, _ in ins], True), op.exact([s for _, s in ins], False))
        for i in [i for i in maps if model.last_use[i] <= index]:
            del maps[i]
    c, s = maps[model.output]
    return constraints, (c.reshape(B, -1), s.reshape(B, -1))


def exact_plane_inputs(model: GraphModel, states: list[np.ndarray], o: Scaled, u: Scaled, w: Scaled, upto: int
                       ) -> dict[int, tuple[Scaled, Scaled, Scaled]]:
    """For one pattern (``states``: (1, n) per piecewise node before node ``upto``) on the plane
    ``o + s u + t w`` ((1, d) each): the exact input maps (c, g_s, g_t), each (1, n), of every piecewise node
    up to ``upto``."""
    shape = model.input_shape
    maps = {0: tuple(x.reshape(1, *shape) for x in (o, u, w))}
    inputs: dict[int, tuple[Scaled, Scaled, Scaled]] = {}
    seen = 0
    for index, node in enumerate(model.nodes[1:upto + 1], 1):
        op = node.op
        if isinstance(op, Piecewise):
            c, gs, gt = (x.reshape(1, -1) for x in maps[node.inputs[0]])
            inputs[index] = (c, gs, gt)
            if index == upto:
                break
            st = states[seen]
            seen += 1
            c2, gs2 = op.exact_select(c, gs, st)
            gt2 = op.exact_select(c, gt, st)[1]
            maps[index] = tuple(x.reshape(1, *node.shape) for x in (c2, gs2, gt2))
        else:
            assert isinstance(op, Affine)
            ins = [maps[i] for i in node.inputs]
            maps[index] = (op.exact([m[0] for m in ins], True), op.exact([m[1] for m in ins], False),
                           op.exact([m[2] for m in ins], False))
    return inputs


def exact_inputs_at(model: GraphModel, points: Scaled) -> dict[int, Scaled]:
    """The exact input (B, n) of every piecewise node at exact points (B, d): one exact forward pass, each
    piecewise operator applying the states the points have."""
    B = points.shape[0]
    maps = {0: points.reshape(B, *model.input_shape)}
    inputs: dict[int, Scaled] = {}
    for index, node in enumerate(model.nodes[1:], 1):
        op = node.op
        if isinstance(op, Piecewise):
            u = maps[node.inputs[0]].reshape(B, -1)
            inputs[index] = u
            states = op.exact_states(u.ints, np.full((B, 1), u.den, dtype=object))
            value, _ = op.exact_select(u, Scaled(np.zeros_like(u.ints)), states)
            maps[index] = value.reshape(B, *node.shape)
        else:
            assert isinstance(op, Affine)
            maps[index] = op.exact([maps[i] for i in node.inputs], True)
        for i in [i for i in maps if model.last_use[i] <= index]:
            del maps[i]
    return inputs


def _right_ends(qc: Scaled, qs: Scaled) -> list[Fraction | None]:
    """Per row, the exact least root of the decreasing quantities (None: no quantity decreases)."""
    falling = qs.ints < 0
    safe = np.where(falling, qs.ints, 1)
    numerators, denominators = -qc.ints * qs.den, safe * qc.den
    roots = np.where(falling, numerators / denominators, np.inf).astype(np.float64)  # correctly rounded
    ends: list[Fraction | None] = []
    for row in range(roots.shape[0]):
        least = roots[row].min() if roots.shape[1] else np.inf
        if not np.isfinite(least):
            ends.append(None if least == np.inf else Fraction(0))  # -inf: never for finite integers
            continue
        near = np.nonzero(roots[row] <= least + 1e-9 * abs(least) + 1e-300)[0]
        ends.append(min(Fraction(int(numerators[row, j]), int(denominators[row, j])) for j in near))
    return ends


def _hold(qc: Scaled, qs: Scaled, strict: np.ndarray, a: list[Fraction], b: list[Fraction]) -> np.ndarray:
    """Per row: every quantity >= 0 at both ends a, b of its interval, and no strict one 0 at both."""
    def signs(ends: list[Fraction]) -> np.ndarray:
        num = np.array([[e.numerator] for e in ends], dtype=object)
        den = np.array([[e.denominator] for e in ends], dtype=object)
        value = qc.ints * qs.den * den + qs.ints * qc.den * num
        return (value > 0).astype(np.int64) - (value < 0).astype(np.int64)
    sa, sb = signs(a), signs(b)
    ok = (sa >= 0) & (sb >= 0) & ~(strict & (sa == 0) & (sb == 0))
    return ok.all(axis=1) if ok.shape[1] else np.ones(ok.shape[0], dtype=bool)


def _stacked(constraints: list[tuple[Scaled, Scaled, np.ndarray]], rows: int) -> tuple[Scaled, Scaled, np.ndarray]:
    """Every piecewise node's quantities side by side: qc, qs (rows, m) and strict (rows, m)."""
    if not constraints:
        empty = Scaled(np.zeros((rows, 0), dtype=object))
        return empty, empty, np.zeros((rows, 0), dtype=bool)
    return (concatenate([c for c, _, _ in constraints], 1), concatenate([s for _, s, _ in constraints], 1),
            np.concatenate([k for _, _, k in constraints], axis=1))


def _root(qc: Scaled, qs: Scaled, row: int, column: int) -> Fraction | None:
    """The exact root of quantity ``column`` of a row (None when its slope is 0)."""
    slope = qs.ints[row, column]
    if slope == 0:
        return None
    return Fraction(-int(qc.ints[row, column]) * qs.den, int(slope) * qc.den)


class _ExactPieces:
    """Decides in rational arithmetic the pieces the float bounds left open, and the neighbours whose outputs
    may be equal; the pieces are visited left to right, so a boundary where several units change state takes
    its exact place from the piece before it (then decided here too)."""

    def __init__(self, model: GraphModel, walk: WalkPieces, floats: FloatProof, p: torch.Tensor, v: torch.Tensor,
                 t_low: float, t_high: float) -> None:
        self.model, self.floats = model, floats
        self.P, self.V = Scaled.of_tensor(p.reshape(1, -1)), Scaled.of_tensor(v.reshape(1, -1))
        self.low, self.high = Fraction(t_low), Fraction(t_high)
        self.states = [s.numpy() for s in walk.states]
        self.n = walk.count
        self.failed = 0
        self.equal_outputs = 0
        self.right_end: dict[int, Fraction | None] = {}
        self.outputs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def rows(self) -> list[int]:
        doubtful = set(torch.nonzero(~self.floats.proven).squeeze(1).tolist())
        maybe_equal = torch.nonzero(~self.floats.differ & ~self.floats.equal).squeeze(1).tolist()
        return sorted(doubtful | set(maybe_equal) | {i + 1 for i in maybe_equal})

    def run(self, deadline: Deadline) -> None:
        rows = self.rows()
        for start in range(0, len(rows), PROOF_CHUNK):
            chunk = rows[start:start + PROOF_CHUNK]
            constraints, (oc, os_) = exact_maps(self.model, [s[chunk] for s in self.states], self.P, self.V)
            qc, qs, strict = _stacked(constraints, len(chunk))
            for position, row in enumerate(chunk):
                self.outputs[row] = (oc.ints[position], os_.ints[position])
                if not bool(self.floats.proven[row]):
                    self._decide(row, position, qc, qs, strict)
            deadline.check("the exact proof of the graph walk")
        for i in torch.nonzero(~self.floats.differ & ~self.floats.equal).squeeze(1).tolist():
            (c0, s0), (c1, s1) = self.outputs[i], self.outputs[i + 1]
            self.equal_outputs += int(bool((c0 == c1).all() and (s0 == s1).all()))

    def _left(self, row: int, position: int, qc: Scaled, qs: Scaled) -> Fraction | None:
        if row == 0:
            return self.low
        binding = int(self.floats.bindings.left[row - 1])
        if binding >= 0:
            return _root(qc, qs, position, binding)
        return self.right_end.get(row - 1)  # decided here just before, when several units changed state

    def _right(self, row: int, position: int, qc: Scaled, qs: Scaled) -> Fraction | None:
        if row == self.n - 1:
            return self.high
        binding = int(self.floats.bindings.right[row])
        if binding >= 0:
            return _root(qc, qs, position, binding)
        return _right_ends(Scaled(qc.ints[position:position + 1], qc.den),
                           Scaled(qs.ints[position:position + 1], qs.den))[0]

    def _decide(self, row: int, position: int, qc: Scaled, qs: Scaled, strict: np.ndarray) -> None:
        a, b = self._left(row, position, qc, qs), self._right(row, position, qc, qs)
        self.right_end[row] = b
        if a is None or b is None or not (self.low <= a < b <= self.high) or \
                (row < self.n - 1 and b >= self.high):
            self.failed += 1
            return
        one = slice(position, position + 1)
        held = _hold(Scaled(qc.ints[one], qc.den), Scaled(qs.ints[one], qs.den), strict[one], [a], [b])
        self.failed += int(not held[0])


def prove_walk(model: GraphModel, walk: WalkPieces, p: torch.Tensor, v: torch.Tensor, t_low: float,
               t_high: float, deadline: Deadline) -> GraphProof:
    """Prove every piece of ``walk``: by float64 forward-error bounds where they suffice
    (:mod:`regioncount.graph.certify`), in rational arithmetic where they do not (module docstring); the
    linear pieces likewise.  Stops at the deadline (CostLimitError)."""
    floats = certify_walk(model, walk.states, p, v, t_low, t_high)
    exact = _ExactPieces(model, walk, floats, p, v, t_low, t_high)
    exact.run(deadline)
    n = walk.count
    proven = n - exact.failed
    differ = int(floats.differ.sum()) + int((~floats.differ & ~floats.equal).sum()) - exact.equal_outputs
    complete = exact.failed == 0
    return GraphProof(proven, exact.failed, 1 + differ if complete else None, int((~floats.proven).sum()))
