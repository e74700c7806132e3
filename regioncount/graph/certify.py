"""Rigorous float64 proof of a graph walk's pieces: forward-error bounds through the operators.

For the states of each piece, every node's maps ``(c, s)`` are evaluated in float64 together with bounds
``(E_c, E_s)`` on their distance from the exact maps: an affine operator ``y = L x + b`` computed in any order
satisfies ``|fl(y) - y| <= |L| E_x + gamma_n (|L| |x~| + |b|)`` (``n`` its fan-in; ``|L|`` the operator with
absolute coefficients, applied as an operator; 0 where every input it reads is an exact 0), a piecewise
operator with fixed states passes the bounds through its selected slopes, and every bound is inflated to
cover its own rounding (``docs/graphs.md``).

The boundary between two pieces at which exactly one unit changes state is the exact root of that unit's
quantity, the same affine function of t on both sides (every state it depends on is equal there); its float
root lies within ``delta = (E_c + |x~| E_s) / (|s~| - E_s) + 2 u |x~|``.  A piece is proven when its two
binding quantities have certain slopes (falling at its right end, rising at its left), its ends are certainly
ordered, and every other quantity is certainly positive over the hull of the ends' enclosures (or exactly
zero where zero is allowed).  What is not proven here is decided in rational arithmetic
(:mod:`regioncount.graph.proof`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.rounding import INFLATE, SMALLEST_SUBNORMAL, UNIT_ROUNDOFF, gamma
from .model import GraphModel
from .ops import Affine, Elementwise, MaxGroups, Piecewise

#: Pieces whose float maps and bounds are built at once.
CERTIFY_CHUNK = 512

Maps = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # c, s, E_c, E_s


def affine_bounds(op: Affine, ins: list[tuple[torch.Tensor, ...]], directions: int = 1, exact_zeros: bool = False
                  ) -> tuple[torch.Tensor, ...]:
    """An affine operator on maps with bounds: each input ``(c, s_1 .. s_k, E_c, E_1 .. E_k)`` (k =
    ``directions``), the output in the same layout (module docstring).  ``exact_zeros``: also give the bound
    0 to every output that reads only exact zeros (one more pass of the operator per component)."""
    k = directions
    values = [op.forward([m[0] for m in ins])] + [op.linear([m[1 + i] for m in ins]) for i in range(k)]
    if op.fan_in == 0:  # moves numbers only: the bounds move with them
        return (*values, *(op.linear([m[k + 1 + i] for m in ins]) for i in range(k + 1)))
    g, tiny = gamma(op.fan_in), (op.fan_in + 2) * SMALLEST_SUBNORMAL
    errors = []
    for i in range(k + 1):
        value, error = (m[i] for m in ins), (m[k + 1 + i] for m in ins)
        # |L| E + gamma |L| |x~| = |L| (E + gamma |x~|): one pass of the operator per component
        bound = op.magnitude([e + g * x.abs() for x, e in zip(value, error)])
        if i == 0:
            bound = bound + g * op.bias_magnitude()
        bound = INFLATE * bound + tiny
        if exact_zeros:  # an output that reads only exact zeros is exact (0 times a weight, plus the bias as stored)
            reads = op.magnitude([((m[i] != 0) | (m[k + 1 + i] != 0)).to(m[i].dtype) for m in ins])
            bound = bound.masked_fill(reads == 0, 0.0)
        errors.append(bound)
    return (*values, *errors)


def float_maps(model: GraphModel, states: list[torch.Tensor], p: torch.Tensor, v: torch.Tensor
               ) -> tuple[list[tuple[torch.Tensor, ...]], Maps]:
    """For B patterns along ``p + t v``: every piecewise node's constraint quantities with their bounds
    (qc, qs, E_qc, E_qs, strict), each (B, m) in the layout of ``Piecewise.constraints``, and the output maps
    with their bounds (B, k)."""
    B = states[0].shape[0] if states else 1
    shape = model.input_shape
    zero = torch.zeros(B, *shape, dtype=p.dtype, device=p.device)
    maps: dict[int, Maps] = {0: (p.reshape(1, *shape).expand(B, *shape), v.reshape(1, *shape).expand(B, *shape),
                                 zero, zero)}
    constraints: list[tuple[torch.Tensor, ...]] = []
    for index, node in enumerate(model.nodes[1:], 1):
        op = node.op
        if isinstance(op, Piecewise):
            c, s, ec, es = (m.reshape(B, -1) for m in maps[node.inputs[0]])
            st = states[len(constraints)]
            constraints.append(op.float_constraints(c, s, ec, es, st))
            oc, os_ = op.select(c, s, st)
            oec, oes = op.select_errors(c, s, ec, es, st)
            maps[index] = tuple(m.reshape(B, *node.shape) for m in (oc, os_, oec, oes))  # type: ignore[assignment]
        else:
            assert isinstance(op, Affine)
            maps[index] = affine_bounds(op, [maps[i] for i in node.inputs])  # type: ignore[assignment]
        for i in [i for i in maps if model.last_use[i] <= index]:
            del maps[i]
    out = tuple(m.reshape(B, -1) for m in maps[model.output])
    return constraints, out  # type: ignore[return-value]


@dataclass
class Bindings:
    """Per boundary between pieces k and k + 1 (P - 1,): the constraint index that binds at piece k's right
    end and at piece k + 1's left end, the graph node whose state changes there and the output unit of that
    node that changes (-1 everywhere where more than one unit changes state)."""

    right: torch.Tensor
    left: torch.Tensor
    node: torch.Tensor
    unit: torch.Tensor


def bindings(model: GraphModel, states: list[torch.Tensor]) -> Bindings:
    """Which single quantity changes sign at each boundary, from the states on both sides."""
    P = states[0].shape[0] if states else 1
    right = torch.full((max(P - 1, 0),), -1, dtype=torch.long)
    left = right.clone()
    node, unit = right.clone(), right.clone()
    flips = torch.zeros(max(P - 1, 0), dtype=torch.long)
    offset = 0
    for index, st in zip(model.piecewise, states):
        op = model.nodes[index].op
        changed = st[1:] != st[:-1]
        flips += changed.sum(1)
        rows, units = torch.nonzero(changed, as_tuple=True)
        node[rows], unit[rows] = index, units
        a, b = st[:-1][rows, units], st[1:][rows, units]
        if isinstance(op, Elementwise):
            n = st.shape[1]
            step = (a - b).abs() == 1
            at = offset + torch.minimum(a, b) * n + units
            right[rows] = torch.where(step, at, -1)
            left[rows] = torch.where(step, at, -1)
            offset += len(op.thresholds) * n
        else:
            assert isinstance(op, MaxGroups)
            K = op.index.shape[1]
            right[rows] = offset + units * K + b
            left[rows] = offset + units * K + a
            offset += st.shape[1] * K
    single = flips == 1
    return Bindings(*(torch.where(single, x, -1) for x in (right, left, node, unit)))


@dataclass
class FloatProof:
    """``proven`` (P,): pieces proven by the float bounds; ``differ`` / ``equal`` (P - 1,): neighbours whose
    output maps certainly differ / are certainly equal (the rest are compared exactly); ``bindings``: the
    single quantity of each boundary."""

    proven: torch.Tensor
    differ: torch.Tensor
    equal: torch.Tensor
    bindings: Bindings


def _enclosures(qc: torch.Tensor, qs: torch.Tensor, eqc: torch.Tensor, eqs: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float roots, their radii, and whether the slope is certainly negative (the quantity falls)."""
    root = -qc / qs
    radius = INFLATE * ((eqc + root.abs() * eqs) / (qs.abs() - eqs) + 2 * UNIT_ROUNDOFF * root.abs())
    falls = qs < -eqs
    return root, torch.where(falls & torch.isfinite(radius), radius, torch.inf), falls


def _certain_positive(qc: torch.Tensor, qs: torch.Tensor, eqc: torch.Tensor, eqs: torch.Tensor,
                      strict: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """(B, m): the quantity is certainly > 0 on [lo, hi] (B,), or exactly zero where zero is allowed."""
    reach = torch.maximum(lo.abs(), hi.abs())[:, None]
    low = torch.minimum(qc + qs * lo[:, None], qc + qs * hi[:, None])
    error = INFLATE * (eqc + eqs * reach + 4 * UNIT_ROUNDOFF * (qc.abs() + qs.abs() * reach))
    zero = (qc == 0) & (qs == 0) & (eqc == 0) & (eqs == 0) & ~strict
    return (low > error) | zero


def certify_walk(model: GraphModel, states: list[torch.Tensor], p: torch.Tensor, v: torch.Tensor,
                 t_low: float, t_high: float) -> FloatProof:
    """Prove what the float bounds can of the pieces with these states (module docstring)."""
    P = states[0].shape[0] if states else 1
    bind = bindings(model, states)
    proven = torch.zeros(P, dtype=torch.bool)
    differ = torch.zeros(max(P - 1, 0), dtype=torch.bool)
    a_lo = a_hi = torch.tensor([t_low], dtype=torch.float64)  # the left end's enclosure
    last_out = None
    for start in range(0, P, CERTIFY_CHUNK):
        rows = torch.arange(start, min(P, start + CERTIFY_CHUNK))
        constraints, out = float_maps(model, [s[rows] for s in states], p, v)
        qc, qs, eqc, eqs = (torch.cat([c[i] for c in constraints], 1) for i in range(4)) if constraints else \
            (torch.zeros(len(rows), 0, dtype=torch.float64),) * 4
        strict = torch.cat([c[4] for c in constraints], 1) if constraints else torch.zeros(len(rows), 0, dtype=torch.bool)
        proven[rows], (a_lo, a_hi) = _check_chunk(rows, P, bind, (qc, qs, eqc, eqs, strict), (a_lo, a_hi), t_high)
        differ_rows, last_out = _outputs_differ(out, last_out)
        if start > 0:
            differ[start - 1:start - 1 + differ_rows.shape[0]] = differ_rows
        else:
            differ[:differ_rows.shape[0]] = differ_rows
    open_pairs = torch.nonzero(~differ & (bind.node >= 0)).squeeze(1)
    equal = torch.zeros_like(differ)
    if open_pairs.numel():
        equal[open_pairs] = ~reaches_output(model, [s[open_pairs] for s in states], bind.node[open_pairs],
                                             bind.unit[open_pairs])
    return FloatProof(proven, differ, equal, bind)


def reaches_output(model: GraphModel, states: list[torch.Tensor], start: torch.Tensor, unit: torch.Tensor
                    ) -> torch.Tensor:
    """(S,): whether a change of output ``unit`` of node ``start`` can reach the model's output, for the
    fixed states given (one row per case): its support is pushed through the operators with absolute
    coefficients, and stops at a unit whose selected slope is 0 or a maximum that selects another entry.
    Where it cannot, the output maps on both sides of the boundary are equal, exactly."""
    S = start.shape[0]
    masks: dict[int, torch.Tensor] = {0: torch.zeros(S, *model.input_shape, dtype=torch.float64)}
    seen = 0
    for index, node in enumerate(model.nodes[1:], 1):
        op = node.op
        if isinstance(op, Piecewise):
            inner = masks[node.inputs[0]].reshape(S, -1)
            mask = op.select(inner, inner, states[seen])[1].abs().reshape(S, -1)
            seen += 1
        else:
            assert isinstance(op, Affine)
            mask = op.magnitude([masks[i] for i in node.inputs]).reshape(S, -1)
        here = torch.nonzero(start == index).squeeze(1)
        mask[here] = 0.0
        mask[here, unit[here]] = 1.0
        masks[index] = (mask > 0).to(torch.float64).reshape(S, *node.shape)
        for i in [i for i in masks if model.last_use[i] <= index]:
            del masks[i]
    return masks[model.output].reshape(S, -1).any(dim=1)


def _check_chunk(rows: torch.Tensor, P: int, bind: Bindings, q: tuple[torch.Tensor, ...],
                 carry: tuple[torch.Tensor, torch.Tensor], t_high: float
                 ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Proven pieces of one chunk, and the enclosure of the chunk's last right end."""
    qc, qs, eqc, eqs, strict = q
    B, M = qc.shape
    last = rows == P - 1
    r_index = torch.where(last, -1, bind.right[rows.clamp(max=max(P - 2, 0))] if P > 1 else -1)
    l_index = torch.full((B,), -1, dtype=torch.long)
    if P > 1:
        l_index = torch.where(rows == 0, -1, bind.left[(rows - 1).clamp(min=0)])
    pick = r_index.clamp(min=0)[:, None]
    root, radius, falls = _enclosures(*(torch.gather(x, 1, pick).squeeze(1) for x in (qc, qs, eqc, eqs)))
    has_right = r_index >= 0
    b_lo = torch.where(last, t_high, torch.where(has_right, root - radius, torch.nan))
    b_hi = torch.where(last, t_high, torch.where(has_right, root + radius, torch.nan))
    a_lo = torch.cat([carry[0], b_lo[:-1]])
    a_hi = torch.cat([carry[1], b_hi[:-1]])
    left_pick = l_index.clamp(min=0)[:, None]
    rises = torch.gather(qs, 1, left_pick).squeeze(1) > torch.gather(eqs, 1, left_pick).squeeze(1)
    first = rows == 0
    ends_ok = (first | (l_index >= 0) & rises) & (last | has_right & falls) & (a_hi < b_lo)
    certain = _certain_positive(qc, qs, eqc, eqs, strict, a_lo, b_hi)
    columns = torch.arange(M)[None, :]
    excused = (columns == l_index[:, None]) | (columns == r_index[:, None])
    distinct = (l_index != r_index) | (l_index < 0)
    proven = ends_ok & distinct & (certain | excused).all(1) & torch.isfinite(a_lo) & torch.isfinite(b_hi)
    return proven, (b_lo[-1:], b_hi[-1:])


def maps_apart(x: torch.Tensor, ex: torch.Tensor, y: torch.Tensor, ey: torch.Tensor) -> torch.Tensor:
    """(B,): rows of computed maps ``x``, ``y`` (B, k), within ``ex``, ``ey`` of exact ones, whose exact maps
    certainly differ in some entry (a gap beyond both bounds and the gap's own rounding)."""
    return ((x - y).abs() > INFLATE * (ex + ey + 2 * UNIT_ROUNDOFF * (x.abs() + y.abs()))).any(1)


def _outputs_differ(out: Maps, last: Maps | None) -> tuple[torch.Tensor, Maps]:
    """Neighbouring output maps that certainly differ (including the previous chunk's last piece)."""
    c, s, ec, es = out
    if last is not None:
        c, s, ec, es = (torch.cat([a, b]) for a, b in zip(last, (c, s, ec, es)))
    differ = maps_apart(c[1:], ec[1:], c[:-1], ec[:-1]) | maps_apart(s[1:], es[1:], s[:-1], es[:-1])
    return differ, tuple(x[-1:] for x in (c, s, ec, es))  # type: ignore[return-value]
