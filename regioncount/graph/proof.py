"""The exact proof of a graph walk: every piece's pattern checked in rational arithmetic.

For the states of piece k, every node's output along the segment is an exact affine map of t, computed with
:class:`~regioncount.graph.scaled.Scaled` integers through the operators, and the states hold exactly where a
finite set of affine quantities ``q(t)`` is positive (strict) or non-negative (``Piecewise.constraints``).
Piece k is proven on the open interval ``(x_k, x_{k+1})`` when every quantity is >= 0 at both ends and no
strict one vanishes at both; ``x_0 = t_low``, the last right end is ``t_high``, and every other ``x_{k+1}`` is
the exact first root at which one of piece k's quantities turns negative.  When every piece is proven and the
ends increase, the pieces are the activation regions: neighbouring patterns differ (equal patterns would have
equal right ends) and each pattern holds on one interval, so the count is exact for the stored weights
(``docs/graphs.md``).  The same pass compares the exact output maps of neighbouring pieces, which gives the
number of linear pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from ..core.limits import Deadline
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
    ``breakpoints``: the exact region boundaries (when every piece was proven)."""

    proven: int
    failed: int
    linear_pieces: int | None
    breakpoints: list[Fraction] | None


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


def _intervals(ends: list[Fraction | None], first: int, n: int, left: Fraction, high: Fraction
               ) -> tuple[list[Fraction], list[Fraction], np.ndarray, list[Fraction], Fraction]:
    """The interval (a_k, b_k) each piece of a chunk claims, from the right end of the piece before: whether
    it is well formed (a_k < b_k, only the last piece reaches t_high), the boundaries between pieces, and the
    right end of the chunk's last piece."""
    a, b, shaped, bounds = [], [], [], []
    for k, end in enumerate(ends):
        last = first + k == n - 1
        right = high if last else end
        reaches = end is None or end >= high
        shaped.append(right is not None and left < right and (reaches if last else not reaches))
        a.append(left)
        b.append(right if right is not None and left < right else left + 1)
        left = right if right is not None else high
        if not last:
            bounds.append(left)
    return a, b, np.array(shaped, dtype=bool), bounds, left


def prove_walk(model: GraphModel, walk: WalkPieces, p: torch.Tensor, v: torch.Tensor, t_low: float,
               t_high: float, deadline: Deadline) -> GraphProof:
    """Check every piece of ``walk`` exactly (module docstring); stops at the deadline (CostLimitError)."""
    P, V = Scaled.of_tensor(p.reshape(1, -1)), Scaled.of_tensor(v.reshape(1, -1))
    left, high = Fraction(t_low), Fraction(t_high)
    states = [s.cpu().numpy() for s in walk.states]
    n = walk.count
    proven = failed = changes = 0
    previous_out: tuple[np.ndarray, np.ndarray] | None = None
    bounds: list[Fraction] = []
    for start in range(0, n, PROOF_CHUNK):
        rows = slice(start, min(n, start + PROOF_CHUNK))
        constraints, (oc, os_) = exact_maps(model, [s[rows] for s in states], P, V)
        qc, qs, strict = _stacked(constraints, rows.stop - rows.start)
        a, b, shaped, inner, left = _intervals(_right_ends(qc, qs), start, n, left, high)
        bounds += inner
        good = _hold(qc, qs, strict, a, b) & shaped
        proven += int(good.sum())
        failed += int((~good).sum())
        changes += _output_changes(oc, os_, previous_out)
        previous_out = (oc.ints[-1:], os_.ints[-1:])
        deadline.check("the exact proof of the graph walk")
    complete = failed == 0
    return GraphProof(proven, failed, 1 + changes if complete else None, bounds if complete else None)


def _output_changes(oc: Scaled, os_: Scaled, previous: tuple[np.ndarray, np.ndarray] | None) -> int:
    """Neighbouring pieces (this chunk, and the last piece before it) whose exact output maps differ."""
    c, s = oc.ints, os_.ints
    if previous is not None:
        c, s = np.concatenate([previous[0], c]), np.concatenate([previous[1], s])
    differ = (c[1:] != c[:-1]).any(axis=1) | (s[1:] != s[:-1]).any(axis=1)
    return int(differ.sum())
