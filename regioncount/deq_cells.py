"""Exact d-D partitions for DEQs with a general (certified well-posed) W, by pattern refinement
(``docs/exact-dd.md``): the d-dimensional form of the 2-D DEQ partition in :mod:`regioncount.plane2d`.

Each open cell's pattern D is solved at its vertex mean; on D the fixed point is affine,
u = (I - W D)^-1 (U x + b), so each of D's sign constraints is a hyperplane.  While some vertex violates
one (beyond the zero tolerance), the cell is cut along the most violated constraint; a cell whose vertices
all satisfy its pattern lies in that pattern's region.  Regions of a well-posed DEQ are convex, so cells
with one pattern belong to one region.  Every cut gets its own constraint bit (a unit's hyperplane depends
on the pattern, so one unit may cut a lineage along different hyperplanes).  The constraints come from
linear solves: values within ``PLANE_DEQ_ZERO_TOL`` of their scale count as zero, and a cell accepted with
a vertex on the wrong side beyond ``PLANE_ROUNDING_BAND`` (rounding of its own cuts ends there) is a
decision left to the tolerance; there is no rational second opinion for a general W.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .fixedpoint import checked_solve, solve_fixed_points
from .geometry import Box
from .models import DEQ, DTYPE
from .polytopes import Polytopes, split, words_for
from .polytopes import box as box_polytope
from .tolerances import PLANE_DEQ_ZERO_TOL, PLANE_ROUNDING_BAND

#: Refinement rounds before giving up (each round cuts every open cell once).
MAX_ROUNDS = 10_000


@dataclass
class RefinedCells:
    """Final cells, their patterns (P, m), output maps (P, d + 1, k), decisions left to the tolerance and
    cells whose violation could not be cut (accepted as they are)."""

    cells: Polytopes
    bits: torch.Tensor
    out: torch.Tensor
    doubtful: int
    unresolved: int
    constraints: int


def _with_words(poly: Polytopes, words: int) -> Polytopes:
    """The same polytopes with ``words`` incidence words (new words empty)."""
    extra = words - poly.tight.shape[2]
    if extra <= 0:
        return poly
    pad = torch.zeros(poly.count, poly.V, extra, dtype=torch.int64, device=poly.x.device)
    return Polytopes(poly.x, poly.n, torch.cat([poly.tight, pad], 2))


def _joined(parts: list[Polytopes]) -> Polytopes:
    V = max(p.V for p in parts)
    K = max(p.tight.shape[2] for p in parts)
    parts = [_with_words(p.padded(V), K) for p in parts]
    return Polytopes(torch.cat([p.x for p in parts]), torch.cat([p.n for p in parts]),
                     torch.cat([p.tight for p in parts]))


def pattern_affine_u(model: DEQ, active: torch.Tensor) -> torch.Tensor:
    """(P, d + 1, m) coefficients (x, then the constant) of u on each cell's pattern."""
    device, m = active.device, model.width
    on_device = model.to(device)
    W, U, b = on_device.W, on_device.U, on_device.b
    rhs = torch.cat([U, b[:, None]], 1)  # (m, d + 1)
    M = torch.eye(m, dtype=DTYPE, device=device) - W[None] * active.to(DTYPE)[:, None, :]
    return checked_solve(M, rhs.expand(active.shape[0], m, rhs.shape[1])).transpose(1, 2)


def refine_general_deq(model: DEQ, bx: Box, device: torch.device,
                       check: Callable[[int, int, int, int], None]) -> RefinedCells:
    """The pattern refinement of the box (module docstring); ``check(cells, vertices, d, words)`` is called
    as the cells grow (it raises past the limits)."""
    d = bx.dim
    extent = torch.tensor([max(abs(lo), abs(hi)) for lo, hi in zip(bx.low, bx.high)], dtype=DTYPE, device=device)
    open_cells = box_polytope(bx.low, bx.high, 2 * d + 64, device)
    done: list[tuple[Polytopes, torch.Tensor, torch.Tensor]] = []
    doubtful = unresolved = 0
    bit = 2 * d
    for _ in range(MAX_ROUNDS):
        if open_cells.count == 0:
            break
        fixed = solve_fixed_points(model, open_cells.centres())
        active = fixed.u > 0
        coef = pattern_affine_u(model, active)  # (P, d + 1, m)
        values = open_cells.x @ coef[:, :d] + coef[:, d:]  # (P, V, m)
        tol = ((coef[:, :d].abs() * extent[None, :, None]).sum(1) + coef[:, d].abs()) * PLANE_DEQ_ZERO_TOL
        sign = torch.where(active, 1.0, -1.0).to(DTYPE)
        valid = open_cells.valid()[..., None]
        signed = torch.where(valid, values * sign[:, None] + tol[:, None], torch.zeros_like(values))
        worst, unit = signed.amin(1).min(1)
        final = worst >= 0
        if bool(final.any()):
            idx = final.nonzero().flatten()
            beyond = (values[idx] * sign[idx, None] < -(PLANE_ROUNDING_BAND / PLANE_DEQ_ZERO_TOL) * tol[idx, None])
            doubtful += int((beyond & valid[idx]).any(2).any(1).sum())
            done.append((open_cells.select(idx), active[idx], coef[idx]))
        idx = (~final).nonzero().flatten()
        if idx.numel() == 0:
            break
        f = torch.gather(values[idx], 2, unit[idx][:, None, None].expand(-1, values.shape[1], 1))[..., 0]
        t = tol[idx].gather(1, unit[idx][:, None])[:, 0]
        live = valid[idx, :, 0]
        cuttable = ((f > t[:, None]) & live).any(1) & ((f < -t[:, None]) & live).any(1)
        if not bool(cuttable.all()):  # a violation within the tolerance that cannot be cut: accept it, count it
            stuck = idx[~cuttable]
            unresolved += int(stuck.numel())
            done.append((open_cells.select(stuck), active[stuck], coef[stuck]))
        cut = cuttable.nonzero().flatten()
        if cut.numel() == 0:  # every open cell was accepted: nothing is left to refine
            break
        pieces = _with_words(open_cells.select(idx[cut]), words_for(bit + 1))
        plus, minus = split(pieces, f[cut], t[cut], bit)
        bit += 1
        open_cells = _joined([plus, minus])
        held = [open_cells] + [c for c, _, _ in done]
        check(sum(c.count for c in held), max(c.V for c in held), d, max(c.tight.shape[2] for c in held))
    cells = _joined([c for c, _, _ in done])
    bits = torch.cat([a for _, a, _ in done])
    coef = torch.cat([c for _, _, c in done])
    z = coef * bits[:, None, :].to(DTYPE)  # relu(u) on each cell's pattern
    on_device = model.to(device)
    out = z @ on_device.A.T + torch.cat([on_device.B.T, on_device.c[None]])
    return RefinedCells(cells, bits, out, doubtful, unresolved, bit)
