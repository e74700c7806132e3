"""Exact-rational 1-D counter: simple, slow, no tolerance anywhere (FFNs and triangular DEQs).

Weights are converted with ``Fraction(float)`` (a float64 is a dyadic rational, so this is exact), the
segment is x(t) = p + t v, and every piece carries the exact affine map (slope, intercept) of every unit
computed so far.  A unit's zero strictly inside a piece splits it; the pattern of a piece is read at its
exact midpoint (strict: active iff the pre-activation is > 0); neighbouring pieces are one linear piece
iff their exact output slopes are equal.  It is the second opinion of :func:`regioncount.count_segment`
when a float64 decision fell inside the tolerance band (``docs/exactness.md``), and the reference that the
tests compare every fast path with.  Cost: about ``regions * units * fan-in`` rational operations
(:func:`rational_cost`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..models.networks import DEQ, FFN, Model


@dataclass
class ExactCount:
    """Exact regions and pieces; ``breakpoints`` (t values), each region's ``patterns`` and its exact output
    map in t: ``outputs[i] = (slopes, intercepts)``, one entry per output."""

    activation_regions: int
    linear_pieces: int
    breakpoints: list[Fraction]
    patterns: list[tuple[int, ...]]
    outputs: list[tuple[tuple[Fraction, ...], tuple[Fraction, ...]]]


def fractions_of(tensor) -> list:  # noqa: ANN001 - a 1-D or 2-D float tensor
    """A vector or matrix of float64 values as exact rationals (nested lists of Fraction)."""
    if tensor.dim() == 1:
        return [Fraction(float(v)) for v in tensor.tolist()]
    return [[Fraction(float(v)) for v in row] for row in tensor.tolist()]


def solve_unique(rows: list[list[Fraction]], d: int) -> list[list[Fraction]] | None:
    """The unique solution X (d rows) of the system given as rows ``[a | r_1 .. r_k]`` (``a . x = r_j`` for
    every right-hand side j), by exact Gaussian elimination and back substitution; None when it has none
    or many solutions."""
    m = _eliminated([list(r) for r in rows], d)
    if m is None or any(v != 0 for row in m[d:] for v in row[d:]):
        return None  # no pivot in some column (many solutions), or inconsistent equations
    return _back_substituted(m, d)


def _eliminated(m: list[list[Fraction]], d: int) -> list[list[Fraction]] | None:
    """``m`` in row echelon form over its first ``d`` columns (in place, rows swapped to put a nonzero pivot
    on each), or None when some column has no pivot."""
    for col in range(d):
        pivot = next((i for i in range(col, len(m)) if m[i][col] != 0), None)
        if pivot is None:
            return None
        m[col], m[pivot] = m[pivot], m[col]
        head = m[col]
        inv = 1 / head[col]
        for i in range(col + 1, len(m)):
            if m[i][col] != 0:
                f = m[i][col] * inv
                m[i] = [vi - f * vh for vi, vh in zip(m[i], head)]
    return m


def _back_substituted(m: list[list[Fraction]], d: int) -> list[list[Fraction]]:
    """The solution X (d rows, one column per right-hand side) of an upper-triangular ``[a | r]`` system."""
    width = len(m[0]) - d if m else 0
    X = [[Fraction(0)] * width for _ in range(d)]
    for i in range(d - 1, -1, -1):
        for k in range(width):
            acc = m[i][d + k] - sum((m[i][j] * X[j][k] for j in range(i + 1, d)), Fraction(0))
            X[i][k] = acc / m[i][i]
    return X


Affine = tuple[tuple[Fraction, ...], Fraction]  # (a, c): a . y + c


def input_maps(n_in: int, d: int, origin: Sequence[float] | None = None,
               directions: Sequence[Sequence[float]] | None = None) -> list[Affine]:
    """The input coordinates x_k as exact affine maps of cell coordinates y, for x = origin + sum_i y_i
    directions[i] (``d`` directions of length ``n_in``); without them x = y."""
    if directions is None:
        return [(tuple(Fraction(int(i == k)) for i in range(d)), Fraction(0)) for k in range(n_in)]
    o = [0.0] * n_in if origin is None else origin
    return [(tuple(Fraction(float(column[k])) for column in directions), Fraction(float(o[k]))) for k in range(n_in)]


def compose(rows: list[list[Fraction]], offsets: list[Fraction], inputs: list[Affine]) -> list[Affine]:
    """Each ``row . x + offset`` as an exact affine map of y, through ``inputs`` (x_k as maps of y)."""
    d = len(inputs[0][0]) if inputs else 0
    return [(tuple(sum((w * a[i] for w, (a, _) in zip(row, inputs) if w), Fraction(0)) for i in range(d)),
             sum((w * c for w, (_, c) in zip(row, inputs) if w), offset)) for row, offset in zip(rows, offsets)]


def line_maps(rows: list[list[Fraction]], offsets: list[Fraction], P: list[Fraction], V: list[Fraction]
              ) -> list[tuple[Fraction, Fraction]]:
    """Each row's affine function of t along x(t) = P + t V, plus its offset: (row . V, row . P + offset)."""
    return [(sum((a * vi for a, vi in zip(row, V)), Fraction(0)),
             sum((a * pi for a, pi in zip(row, P)), Fraction(0)) + c) for row, c in zip(rows, offsets)]


def _affine_dot(row: list[Fraction], maps: list[tuple[Fraction, Fraction]]) -> tuple[Fraction, Fraction]:
    s = sum((w * m[0] for w, m in zip(row, maps)), Fraction(0))
    c = sum((w * m[1] for w, m in zip(row, maps)), Fraction(0))
    return s, c


def _split(pieces, unit_maps):
    """Split every piece at the zeros of its units' affine maps strictly inside it."""
    out = []
    for (tl, tr, state), maps in zip(pieces, unit_maps):
        cuts = sorted({-c / s for s, c in maps if s != 0 and tl < -c / s < tr})
        ends = [tl, *cuts, tr]
        for left, right in zip(ends, ends[1:]):
            out.append((left, right, state, maps))
    return out


def exact_count(model, p: list[float], v: list[float], t_low: float, t_high: float) -> ExactCount:
    """Every activation region and linear piece of ``model`` along x(t) = p + t v, t in [t_low, t_high], in
    exact rational arithmetic: the segment is split at the zeros of each layer's (FFN) or unit's (acyclic
    DEQ, in topological order) affine maps, piece by piece."""
    P = [Fraction(x) for x in p]
    V = [Fraction(x) for x in v]
    span = (Fraction(t_low), Fraction(t_high))
    if isinstance(model, FFN):
        bounds, outputs, patterns = _ffn_pieces(model, P, V, span)
    else:
        assert isinstance(model, DEQ)
        bounds, outputs, patterns = _deq_pieces(model, P, V, span)
    slopes = [slope for slope, _ in outputs]
    changes = sum(1 for a, b2 in zip(slopes, slopes[1:]) if a != b2)
    return ExactCount(
        activation_regions=len(bounds),
        linear_pieces=changes + 1,
        breakpoints=[tl for tl, _ in bounds[1:]],
        patterns=patterns,
        outputs=outputs,
    )


Outputs = tuple[tuple[Fraction, ...], tuple[Fraction, ...]]  # (slopes, intercepts) of the outputs on a piece


def _ffn_pieces(model: FFN, P: list[Fraction], V: list[Fraction], span: tuple[Fraction, Fraction]
                ) -> tuple[list[tuple[Fraction, Fraction]], list[Outputs], list[tuple]]:
    """The FFN's pieces (bounds), their outputs' affine maps of t and their patterns, layer by layer."""
    Ws, bs = [fractions_of(w) for w in model.weights], [fractions_of(b) for b in model.biases]
    # state: the current layer's inputs as affine maps of t, plus the pattern so far
    pieces: list[tuple[Fraction, Fraction, Any]] = [(span[0], span[1], ([(vi, pi) for vi, pi in zip(V, P)], ()))]
    for W, b in zip(Ws[:-1], bs[:-1]):
        pieces = _ffn_layer(pieces, W, b)
    outputs = []
    for _, _, (h, _) in pieces:
        maps = [_affine_dot(row, h) for row in Ws[-1]]
        outputs.append((tuple(sc for sc, _ in maps), tuple(c + bk for (_, c), bk in zip(maps, bs[-1]))))
    return [(tl, tr) for tl, tr, _ in pieces], outputs, [pattern for _, _, (_, pattern) in pieces]


def _ffn_layer(pieces: list[tuple[Fraction, Fraction, Any]], W: list[list[Fraction]], b: list[Fraction]
               ) -> list[tuple[Fraction, Fraction, Any]]:
    """The pieces split at the zeros of one layer's units, each with its hidden maps and pattern extended."""
    unit_maps = [[(s, c + bj) for (s, c), bj in zip((_affine_dot(row, h) for row in W), b)]
                 for _, _, (h, _) in pieces]
    new = []
    for left, right, (_h, pattern), maps in _split(pieces, unit_maps):
        mid = (left + right) / 2
        bits = tuple(int(s * mid + c > 0) for s, c in maps)
        hidden = [(s, c) if bit else (Fraction(0), Fraction(0)) for (s, c), bit in zip(maps, bits)]
        new.append((left, right, (hidden, pattern + bits)))
    return new


def _deq_pieces(model: DEQ, P: list[Fraction], V: list[Fraction], span: tuple[Fraction, Fraction]
                ) -> tuple[list[tuple[Fraction, Fraction]], list[Outputs], list[tuple]]:
    """An acyclic DEQ's pieces (bounds), outputs and patterns, unit by unit in topological order
    (``z_t = relu(r_t) / (1 - W_tt)``)."""
    W, U, b, A, B = (fractions_of(t) for t in (model.W, model.U, model.b, model.A, model.B))
    m = len(W)
    input_maps = line_maps(U, b, P, V)
    zero = (Fraction(0), Fraction(0))
    pieces: list[tuple[Fraction, Fraction, Any]] = [(span[0], span[1], ([zero] * m, [0] * m))]
    for t in _topological(W):
        scale = 1 / (1 - W[t][t])
        row = [W[t][i] if i != t else Fraction(0) for i in range(m)]
        unit_maps = [[((s + input_maps[t][0]) * scale, (c + input_maps[t][1]) * scale)]
                     for s, c in (_affine_dot(row, z) for _, _, (z, _) in pieces)]
        new = []
        for left, right, (z, pattern), maps in _split(pieces, unit_maps):
            (s, c), = maps
            bit = int(s * ((left + right) / 2) + c > 0)
            z2, pat2 = list(z), list(pattern)
            z2[t] = (s, c) if bit else zero
            pat2[t] = bit
            new.append((left, right, (z2, pat2)))
        pieces = new
    outputs = []
    skip = line_maps(B, fractions_of(model.c), P, V)
    for _, _, (z, _) in pieces:
        maps = [_affine_dot(row, z) for row in A]
        outputs.append((tuple(sc + sk for (sc, _), (sk, _) in zip(maps, skip)),
                        tuple(c + ck for (_, c), (_, ck) in zip(maps, skip))))
    return [(tl, tr) for tl, tr, _ in pieces], outputs, [tuple(pattern) for _, _, (_, pattern) in pieces]


def _ffn_at(model: FFN, point: list[Fraction], slope: list[Fraction] | None
            ) -> tuple[tuple[Fraction, ...], tuple[Fraction, ...] | None]:
    """The FFN's exact outputs at ``point`` and, with a direction ``slope``, their exact directional
    derivatives on the activation region of the point (pattern: pre-activation > 0)."""
    for w, b in zip(model.weights[:-1], model.biases[:-1]):
        W = fractions_of(w)
        z = _affine(W, point, fractions_of(b))
        if slope is not None:
            slope = [sj if zj > 0 else Fraction(0) for sj, zj in zip(_affine(W, slope), z)]
        point = [zj if zj > 0 else Fraction(0) for zj in z]
    readout = fractions_of(model.weights[-1])
    outputs = tuple(_affine(readout, point, fractions_of(model.biases[-1])))
    return outputs, None if slope is None else tuple(_affine(readout, slope))


def _affine(W: list[list[Fraction]], x: list[Fraction], bias: list[Fraction] | None = None) -> list[Fraction]:
    """``W x + bias`` (no bias: ``W x``) in exact arithmetic."""
    rows = [sum((wj * xj for wj, xj in zip(row, x)), Fraction(0)) for row in W]
    return rows if bias is None else [r + bj for r, bj in zip(rows, bias)]


def ffn_output_slope_at(model: FFN, p: list[float], v: list[float], t: float) -> tuple[Fraction, ...]:
    """Exact output slope d y / d t of ``model`` along x(t) = p + t v on the activation region containing
    the point t (which must lie strictly inside a region): the pattern is evaluated exactly at x(t) and the
    slope propagated through it.  About ``2 * parameters`` rational operations."""
    point = [Fraction(pi) + Fraction(t) * Fraction(vi) for pi, vi in zip(p, v)]
    slopes = _ffn_at(model, point, [Fraction(vi) for vi in v])[1]
    assert slopes is not None
    return slopes


def exact_output(model: Model, x: Fraction) -> tuple[Fraction, ...]:
    """The model's output at the 1-D input point ``x``, exactly (an FFN, or a DEQ whose unit graph is acyclic
    with diagonal < 1, solved by forward substitution: ``z_t = relu(r_t) / (1 - W_tt)``)."""
    if isinstance(model, FFN):
        return _ffn_at(model, [Fraction(x)], None)[0]
    W, U, b, A, B, c = (fractions_of(t) for t in (model.W, model.U, model.b, model.A, model.B, model.c))
    m = len(W)
    z = [Fraction(0)] * m
    for t in _topological(W):
        r = sum((W[t][i] * z[i] for i in range(m) if i != t), Fraction(0)) + U[t][0] * x + b[t]
        z[t] = max(Fraction(0), r) / (1 - W[t][t])
    return tuple(sum((a * zi for a, zi in zip(row, z)), Fraction(0)) + brow[0] * x + ck
                 for row, brow, ck in zip(A, B, c))


def _topological(W: list[list[Fraction]]) -> list[int]:
    m = len(W)
    done: list[int] = []
    remaining = set(range(m))
    while remaining:
        ready = [t for t in sorted(remaining) if all(W[t][i] == 0 or i in done or i == t for i in range(m))]
        assert ready, "cyclic W"
        done.append(ready[0])
        remaining.remove(ready[0])
    return done


def rational_cost(model: Model, regions: float) -> float:
    """Rational operations of :func:`exact_count` for about ``regions`` final pieces (an estimate)."""
    if isinstance(model, FFN):
        fan = sum(w.shape[0] * w.shape[1] for w in model.weights)
    else:
        fan = model.width * (model.width + model.input_dim) + model.A.numel()
    return float(regions) * float(fan) * 2.0
