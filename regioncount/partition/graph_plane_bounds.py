"""Float64 error bounds of a graph model's plane walk (``docs/graphs.md``, "Planes").

On each polygon every node's output is carried as maps ``c + g_s s + g_t t`` with entrywise bounds
``(E_c, E_s, E_t)`` on their distance from the exact maps of the polygon's pattern
(:func:`regioncount.graph.certify.affine_bounds` through the affine operators, ``select_errors`` through
the piecewise ones).  From them: the lines where a piecewise operator may change state, with their own
bounds (:func:`line_maps`), and each unit's value at a polygon's centre with a bound that covers the centre's
radius (:func:`centre_values`), so the sign proofs of :mod:`regioncount.partition.polygon_proofs` apply.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..core.geometry import Plane
from ..core.rounding import INFLATE, SMALLEST_SUBNORMAL, UNIT_ROUNDOFF, gamma
from ..graph.model import GraphModel
from ..graph.ops import Elementwise, MaxGroups, Piecewise
from ..graph.proof import exact_inputs_at
from ..graph.scaled import Scaled, concatenate

#: Bound on the rounding of one float64 subtraction, relative to its result (as the operators use).
ROUND = 2.0**-52


class MaxLines(NamedTuple):
    """The lines ``x_a - x_b`` of a max, in the layout of :func:`line_maps` (L,) each: the window, the slots
    (first, second) of the pair in it, and the inputs (a, b) it compares."""

    window: torch.Tensor
    first: torch.Tensor
    second: torch.Tensor
    input_a: torch.Tensor
    input_b: torch.Tensor


def max_lines(op: MaxGroups) -> MaxLines:
    """:class:`MaxLines` of a max: every pair of real slots of every window, window by window."""
    G = op.index.shape[0]
    real = (op.index[:, op._i] >= 0) & (op.index[:, op._j] >= 0)  # pairs without padding (G, pairs)
    window = torch.arange(G)[:, None].expand(G, op._i.shape[0])[real]
    first, second = op._i[None].expand(G, -1)[real], op._j[None].expand(G, -1)[real]
    return MaxLines(window, first, second, op.index[window, first], op.index[window, second])


def line_maps(op: Piecewise, maps: tuple[torch.Tensor, ...], errors: tuple[torch.Tensor, ...] | None
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The lines (P, 3, L) where the operator may change state, per polygon: rows s-slope, t-slope and the
    constant (the layout of :mod:`regioncount.partition.polygon_proofs`), from the input maps ``(c, g_s,
    g_t)`` (P, n) each; and, when ``errors`` (their bounds) are given, the lines' entrywise bounds (P, 3, L).
    An elementwise operator has one line per unit and threshold (``u - theta``), a max one per pair of real
    slots of each window (``x_i - x_j``)."""
    c, gs, gt = maps
    if isinstance(op, Elementwise):
        Z = torch.stack([gs, gt, c], 1)
        Zs = [Z - torch.tensor([0.0, 0.0, theta], dtype=c.dtype, device=c.device)[None, :, None]
              for theta in op.thresholds]
        lines = torch.cat(Zs, 2)
        if errors is None:
            return lines, None
        ec, es, et = errors
        E = torch.stack([es, et, ec], 1)
        out = torch.cat([E] * len(op.thresholds), 2)
        out[:, 2] += ROUND * lines[:, 2].abs()
        return lines, out
    assert isinstance(op, MaxGroups)
    pair = max_lines(op)
    a, b = pair.input_a.to(c.device), pair.input_b.to(c.device)

    def pairs(x: torch.Tensor, sign: float) -> torch.Tensor:
        return torch.add(x[:, a], x[:, b], alpha=sign)

    lines = torch.stack([pairs(gs, -1.0), pairs(gt, -1.0), pairs(c, -1.0)], 1)
    if errors is None:
        return lines, None
    ec, es, et = errors
    E = torch.stack([pairs(es, 1.0), pairs(et, 1.0), pairs(ec, 1.0)], 1)
    return lines, E + ROUND * lines.abs()


def void_lines(lines: torch.Tensor, errors: torch.Tensor) -> torch.Tensor:
    """(P, L): lines that are exactly zero on the polygon (every coefficient 0 with a zero bound), e.g. a max
    over units that a ReLU switched off: never cut, their ties read as the exact rule reads them."""
    return (lines == 0).all(1) & (errors == 0).all(1)


def centre_values(maps: tuple[torch.Tensor, ...], errors: tuple[torch.Tensor, ...], centre: torch.Tensor,
                  radius: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each unit's value (P, n) at the computed centres ``centre`` (P, 2) of polygons, and a bound on its
    distance from the exact map's value at the exact centre (within ``radius`` (P,) of the computed one):
    the maps' own bounds at the point, the rounding of two multiply-adds and the radius times the slopes.
    Where both slopes are 0 the products are exact zeros and add nothing."""
    c, gs, gt, ec, es, et = (*maps, *errors)
    s, t = centre[:, :1], centre[:, 1:]
    value = torch.addcmul(torch.addcmul(c, gs, s), gt, t)
    g = gamma(3)
    abs_s, abs_t, r = s.abs(), t.abs(), radius[:, None]
    # ec + es |s| + et |t| + gamma (|c| + |gs| |s| + |gt| |t|) + r (|gs| + |gt| + es + et), grouped by term
    err = torch.addcmul(ec, c.abs(), torch.tensor(g, dtype=c.dtype))
    err.addcmul_(gs.abs(), g * abs_s + r).addcmul_(gt.abs(), g * abs_t + r)
    err.addcmul_(es, abs_s + r).addcmul_(et, abs_t + r).mul_(INFLATE)
    err.addcmul_(value.abs(), torch.tensor(4 * UNIT_ROUNDOFF, dtype=c.dtype))
    # where both slopes are 0 the products are exact zeros: nothing underflows
    moving = (gs != 0) | (gt != 0)
    err.add_(moving.to(err.dtype), alpha=4 * SMALLEST_SUBNORMAL)
    return value, err


def centre_states_proven(op: Piecewise, value: torch.Tensor, error: torch.Tensor, states: torch.Tensor
                         ) -> torch.Tensor:
    """(P,): the states read from the centre values are the exact ones: every constraint of the states is
    certainly positive there (beyond its bound), or exactly zero where zero is allowed."""
    qc, _, eqc, _, strict = op.float_constraints(value, torch.zeros_like(value), error, torch.zeros_like(error),
                                                 states)
    certain = qc > INFLATE * eqc
    zero = (qc == 0) & (eqc == 0) & ~strict
    return (certain | zero).all(1)


def kink_values(op: Elementwise, n: int) -> torch.Tensor:
    """(r, n): each unit's output where its input is at threshold i (``alpha_i theta_i + beta_i``, the same
    from both sides), where that value is a float64 exactly; NaN where it is not."""
    from fractions import Fraction

    slopes, intercepts = op.slopes.expand(-1, n), op.intercepts.expand(-1, n)
    out = torch.full((len(op.thresholds), n), torch.nan, dtype=torch.float64)
    for i, theta in enumerate(op.thresholds):
        value = slopes[i] * theta + intercepts[i]
        cache: dict[tuple[float, float], bool] = {}
        for unit, (alpha, beta, v) in enumerate(zip(slopes[i].tolist(), intercepts[i].tolist(), value.tolist())):
            key = (alpha, beta)
            if key not in cache:
                cache[key] = Fraction(alpha) * Fraction(theta) + Fraction(beta) == Fraction(v)
            if cache[key]:
                out[i, unit] = v
    return out


def exact_constants(maps: tuple[torch.Tensor, ...], errors: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """(P, n): each unit's value on each polygon where its map is an exact constant (no slope, no error), NaN
    elsewhere."""
    c, gs, gt = maps
    exact = (gs == 0) & (gt == 0) & (errors[0] == 0) & (errors[1] == 0) & (errors[2] == 0)
    return torch.where(exact, c, torch.nan)


def corner_inputs(model: GraphModel, plane: Plane) -> dict[int, Scaled]:
    """The exact input of every piecewise node at the slice's four corners (in the order of
    :func:`~regioncount.partition.polygons.rectangle`), (4, n) each."""
    o, u, w = (Scaled.of_tensor(torch.tensor(v, dtype=torch.float64).reshape(1, -1))
               for v in (plane.origin, plane.u, plane.w))
    (s0, t0), (s1, t1) = plane.low, plane.high
    rows = [o + u.times(Scaled.of_fraction(s, (1, 1))) + w.times(Scaled.of_fraction(t, (1, 1)))
            for s, t in ((s0, t0), (s1, t0), (s1, t1), (s0, t1))]
    return exact_inputs_at(model, concatenate(rows, 0))


def _equal_columns(x: Scaled, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, L): ``x[:, a[l]] == x[:, b[l]]`` exactly."""
    ints = x.ints
    return torch.from_numpy(np.asarray(ints[:, a.numpy()] == ints[:, b.numpy()], dtype=bool))


class ExactZeros:
    """Vertices that lie exactly on a line of a piecewise node, by rules that need no arithmetic on them (for
    :func:`~regioncount.partition.polygon_proofs.cut_proven`; lines are bits ``first_bit + line`` in the
    layout of :func:`line_maps`):

    * a corner of the slice is an exact point, and the node's exact input there (``corner`` (4, n) from
      :func:`corner_inputs`, the corners ``corners`` (4, 2)) says which lines pass through it (a network is
      continuous, so every polygon at the corner has those values there);
    * on one polygon the lines of a max's pairs (a, b) and (a, c) of one window meet where ``x_a = x_b = x_c``,
      so the line of (b, c), their exact difference, passes through that vertex;
    * a max's line ``x_a - x_b`` passes through a vertex where both inputs have known exact values and they are
      equal: a constant input (``constants`` (P0, n_in) from :func:`exact_constants`, NaN: not constant), or,
      when the max reads an elementwise operator's output directly (``kinks``: its lines' first bit and
      :func:`kink_values`), an input whose kink line the vertex lies on (a ReLU's output is 0 there)."""

    def __init__(self, op: Piecewise, first_bit: int, corners: torch.Tensor, corner: Scaled,
                 constants: torch.Tensor | None = None, kinks: tuple[int, torch.Tensor] | None = None) -> None:
        self.op, self.first_bit, self.corners = op, first_bit, corners
        self.constants, self.kinks = constants, kinks
        if isinstance(op, MaxGroups):
            G, K = op.index.shape
            self.window, self.first, self.second, self.input_a, self.input_b = max_lines(op)
            self.line_of = torch.full((G, K, K), -1, dtype=torch.long)
            self.line_of[self.window, self.first, self.second] = torch.arange(self.window.shape[0])
            self.corner_zero = _equal_columns(corner, self.input_a, self.input_b)  # (4, L)
        else:
            assert isinstance(op, Elementwise)
            zeros = [torch.from_numpy(np.asarray(corner.ints * theta.den == theta.ints[0] * corner.den, dtype=bool))
                     for theta in op._thresholds]
            self.corner_zero = torch.cat(zeros, 1)
        self.lines = int(self.corner_zero.shape[1])
        #: whether any vertex can be named: a max's rules, or a line through a corner
        self.needed = isinstance(op, MaxGroups) or bool(self.corner_zero.any())

    def __call__(self, j: int, origin: torch.Tensor, units: torch.Tensor, xy: torch.Tensor, exact: torch.Tensor
                 ) -> torch.Tensor:
        device = units.device
        on = torch.zeros(units.shape[:2], dtype=torch.bool, device=device)
        if bool(self.corner_zero[:, j].any()):
            at = ((xy[:, :, None, :] == self.corners.to(device)[None, None]).all(-1))  # (S, V, 4)
            on = exact & (at & self.corner_zero[:, j].to(device)[None, None]).any(-1)  # an exact point: a corner
        if isinstance(self.op, MaxGroups) and self.lines:
            on |= self._triple(j, units.cpu()).to(device)
            if self.constants is not None:
                on |= self._known(j, origin, units)
        return on

    def _triple(self, j: int, units: torch.Tensor) -> torch.Tensor:
        local = units - self.first_bit
        ours = ((local >= 0) & (local < self.lines)).all(-1)
        k = local.clamp(0, self.lines - 1)
        g, a, b = self.window[k], self.first[k], self.second[k]  # (..., 2) each
        a1, b1, a2, b2 = a[..., 0], b[..., 0], a[..., 1], b[..., 1]
        common = (a1 == a2).long() + (a1 == b2).long() + (b1 == a2).long() + (b1 == b2).long()
        x = torch.where((a1 == a2) | (a1 == b2), b1, a1)  # the first line's slot not in the second
        y = torch.where((a2 == a1) | (a2 == b1), b2, a2)  # the second line's slot not in the first
        third = self.line_of[g[..., 0], torch.minimum(x, y), torch.maximum(x, y)]
        return ours & (g[..., 0] == g[..., 1]) & (common == 1) & (third == j)

    def _pairs(self, units: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs (a, b) (S, V, 2) each of the max's lines among a vertex's two lines (-1: another line)."""
        local = units - self.first_bit
        ours = (local >= 0) & (local < self.lines)
        k = local.clamp(0, self.lines - 1).cpu()
        a, b = self.input_a[k].to(units.device), self.input_b[k].to(units.device)
        return torch.where(ours, a, -1), torch.where(ours, b, -1)

    def _value(self, unit: torch.Tensor, origin: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
        """(S, V): the exact value of input ``unit`` (S, V) at each vertex where it is known (NaN elsewhere): a
        constant input, or one whose kink line the vertex lies on."""
        assert self.constants is not None
        out = self.constants[origin[:, None], unit.clamp_min(0)].masked_fill(unit < 0, torch.nan)
        if self.kinks is not None:
            start, table = self.kinks
            r, n = table.shape
            for m in range(2):
                local = units[..., m] - start
                mine = (local >= 0) & (local < r * n) & (local % n == unit)
                out = torch.where(mine, table[(local // n).clamp(0, r - 1), unit.clamp_min(0)], out)
        return out

    def _known(self, j: int, origin: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
        """(S, V): ``x_p = x_q`` (line j's inputs) follows at the vertex from known values and the equalities
        of its own lines that are this max's: ``x_p``, ``x_q`` known and equal, or one of them equal by a line to
        an input whose value is the other's, or both equal by the two lines to inputs of equal values."""
        shape = units.shape[:2]
        p = torch.full(shape, int(self.input_a[j]), dtype=torch.long, device=units.device)
        q = torch.full(shape, int(self.input_b[j]), dtype=torch.long, device=units.device)
        a, b = self._pairs(units)

        def other(m: int, u: torch.Tensor) -> torch.Tensor:
            """The input that line m of the vertex makes equal to u (-1: none)."""
            return torch.where(a[..., m] == u, b[..., m], torch.where(b[..., m] == u, a[..., m], -1))

        def value(u: torch.Tensor) -> torch.Tensor:
            return self._value(u, origin, units)

        on = value(p) == value(q)  # NaN: never
        for m in range(2):
            on |= value(other(m, p)) == value(q)
            on |= value(other(m, q)) == value(p)
        on |= value(other(0, p)) == value(other(1, q))
        on |= value(other(1, p)) == value(other(0, q))
        return on
