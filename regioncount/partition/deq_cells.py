"""Exact d-D partitions for DEQs with a general (certified well-posed) W, by pattern refinement
(``docs/exact-dd.md``): the d-dimensional form of the 2-D DEQ partition in :mod:`regioncount.partition.plane2d`.

Each open cell's pattern D is solved at its vertex mean; on D the fixed point is affine,
u = (I - W D)^-1 (U x + b), so each of D's sign constraints is a hyperplane.  While some vertex violates
one (beyond the zero tolerance), the cell is cut along the most violated constraint; a cell whose vertices
all satisfy its pattern lies in that pattern's region.  Regions of a well-posed DEQ are convex, so cells
with one pattern belong to one region.  Every cut gets its own constraint bit (a unit's hyperplane depends
on the pattern, so one unit may cut a lineage along different hyperplanes).  The constraints come from
linear solves: values within ``PLANE_DEQ_ZERO_TOL`` of their scale count as zero.  Each such value must
be what the decision assumed (zero for a vertex the cut passes through; the pattern's sign, or zero, for an
accepted cell): it is structurally zero (the vertex lies on the same unit's cut on a pattern differing at
most there) or decided in rational arithmetic (:mod:`regioncount.partition.exact_refinement`); what neither settles
is a decision left to the tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.geometry import Box
from ..core.tolerances import PLANE_DEQ_ZERO_TOL
from ..models.fixedpoint import checked_solve
from ..models.networks import DEQ, DTYPE, input_free_units
from ..sampling.sampled import deq_patterns
from .exact_cells import EXACT_BUDGET
from .exact_refinement import CutRecord, ExactRefinement, structurally_zero
from .pattern_bounds import InverseBounds, pattern_affine_u_bounded
from .polytopes import CellPartition, Polytopes, split_signed, words_for
from .polytopes import box as box_polytope
from .vertex_bounds import value_errors

#: Refinement rounds before giving up (each round cuts every open cell once).
MAX_ROUNDS = 10_000


@dataclass(frozen=True)
class Embedding:
    """The cell coordinates y in the model's input space: x = origin + directions y (directions (n, d))."""

    origin: torch.Tensor
    directions: torch.Tensor


def _with_words(poly: Polytopes, words: int) -> Polytopes:
    """The same polytopes with ``words`` incidence words (new words empty)."""
    extra = words - poly.tight.shape[2]
    if extra <= 0:
        return poly
    pad = torch.zeros(poly.count, poly.V, extra, dtype=torch.int64, device=poly.x.device)
    return Polytopes(poly.x, poly.n, torch.cat([poly.tight, pad], 2), poly.fields)


def _joined(parts: list[Polytopes]) -> Polytopes:
    """The polytopes of ``parts`` in one batch, with the vertex radii (every part has them)."""
    V = max(p.V for p in parts)
    K = max(p.tight.shape[2] for p in parts)
    parts = [_with_words(p.padded(V), K) for p in parts]
    return Polytopes(torch.cat([p.x for p in parts]), torch.cat([p.n for p in parts]),
                     torch.cat([p.tight for p in parts]), {"radius": torch.cat([_radius(p) for p in parts])})


def _radius(poly: Polytopes) -> torch.Tensor:
    """(P, V) the vertices' radii (zero for exact vertices)."""
    return poly.radius if poly.radius is not None else torch.zeros_like(poly.x[..., 0])


def pattern_affine_u(model: DEQ, active: torch.Tensor, embedding: Embedding | None = None) -> torch.Tensor:
    """(P, d + 1, m) coefficients (cell coordinates, then the constant) of u on each cell's pattern."""
    device, m = active.device, model.width
    on_device = model.to(device)
    W, U, b = on_device.W, on_device.U, on_device.b
    if embedding is None:
        rhs = torch.cat([U, b[:, None]], 1)  # (m, d + 1)
    else:
        rhs = torch.cat([U @ embedding.directions.to(device), (U @ embedding.origin.to(device) + b)[:, None]], 1)
    M = torch.eye(m, dtype=DTYPE, device=device) - W[None] * active.to(DTYPE)[:, None, :]
    return checked_solve(M, rhs.expand(active.shape[0], m, rhs.shape[1])).transpose(1, 2)


def box_extent(bx: Box, device: torch.device) -> torch.Tensor:
    """(d,) the largest |x_i| on the box: the scale of the values of affine maps there."""
    return torch.tensor([max(abs(lo), abs(hi)) for lo, hi in zip(bx.low, bx.high)], dtype=DTYPE, device=device)


def zero_tolerance(coef: torch.Tensor, extent: torch.Tensor) -> torch.Tensor:
    """(P, m) the refinement's zero band for u on each cell's pattern (``coef`` (P, d + 1, m)):
    ``PLANE_DEQ_ZERO_TOL`` times the scale ``sum |a_i| extent_i + |c|`` of each unit's affine map."""
    d = extent.shape[0]
    return ((coef[:, :d].abs() * extent[None, :, None]).sum(1) + coef[:, d].abs()) * PLANE_DEQ_ZERO_TOL


class _Judge:
    """Settles the zero tests inside the tolerance: structurally zero, or decided exactly, or counted."""

    def __init__(self, model: DEQ, bx: Box, record: CutRecord, embedding: Embedding | None, budget: int) -> None:
        self.record, self.d = record, bx.dim
        origin = directions = None
        if embedding is not None:
            origin = embedding.origin.tolist()
            directions = embedding.directions.T.tolist()
        self.exact = ExactRefinement(model, bx.low, bx.high, record, origin, directions, budget)
        self.reach = self.exact.reach.to(record.units.device)
        self.doubtful = 0

    def sides(self, cells: Polytopes, lineage: torch.Tensor, patterns: torch.Tensor, cell: torch.Tensor,
              vertex: torch.Tensor, unit: torch.Tensor, computed: torch.Tensor) -> torch.Tensor:
        """The exact signs (N,) of ``unit`` on cell ``cell``'s pattern at vertex ``vertex``, for values whose
        computed signs ``computed`` (N,) their error bounds do not prove: zero where structurally zero, else
        decided in rational arithmetic; where neither settles it, the computed sign stands and the decision
        is counted as left to the tolerance."""
        out = computed.clone()
        if cell.numel() == 0:
            return out
        tight = cells.tight[cell, vertex]
        zero = structurally_zero(self.record, lineage[cell], tight, patterns[cell], unit, self.d, self.reach)
        out[zero] = 0
        rows = (~zero).nonzero().flatten().tolist()
        if not rows:
            return out
        cell_l, tight_l, unit_l = (t.tolist() for t in (cell, tight, unit))
        lineage_cpu, pattern_cpu = lineage.cpu(), patterns.cpu()
        of_cell: dict[int, tuple[list[int], tuple[bool, ...], int]] = {}  # lineage, pattern, its bit mask
        for i in rows:
            c = cell_l[i]
            if c not in of_cell:
                flags = tuple(bool(v) for v in pattern_cpu[c].tolist())
                of_cell[c] = (lineage_cpu[c].tolist(), flags, sum(1 << k for k, v in enumerate(flags) if v))
            row, flags, bits = of_cell[c]
            if self.exact.chained_zero(tight_l[i], row, bits, unit_l[i]):
                out[i] = 0
                continue
            sign = self.exact.sign(tight_l[i], row, flags, unit_l[i])
            if sign is None:
                self.doubtful += 1
            else:
                out[i] = sign
        return out


def refine_general_deq(model: DEQ, bx: Box, device: torch.device,
                       check: Callable[[int, int, int, int], None], *, embedding: Embedding | None = None,
                       exact_budget: int = EXACT_BUDGET) -> CellPartition:
    """The pattern refinement of the box (module docstring); ``check(cells, vertices, d, words)`` is called
    as the cells grow (it raises past the limits).  With ``embedding`` the box holds coordinates y of the
    points x = origin + directions y (a plane through the input space)."""
    d, m = bx.dim, model.width
    extent = box_extent(bx, device)
    open_cells = box_polytope(bx.low, bx.high, 2 * d + 64, device)
    lineage = torch.zeros(1, 0, dtype=torch.long, device=device)  # per open cell: its cut node per round
    guess: torch.Tensor | None = None  # per open cell: its parent's pattern with the cut unit on its side
    forced = torch.zeros(1, dtype=torch.bool, device=device)  # per open cell: its guess is its pattern
    record = CutRecord(m, d, device)
    judge = _Judge(model, bx, record, embedding, exact_budget)
    slice_map = None if embedding is None else (embedding.origin, embedding.directions)
    inverses = InverseBounds()  # ||(I - W D)^-1|| by pattern, across rounds
    silent = input_free_units(model).to(device)  # exactly zero everywhere: no test is needed
    done: list[tuple[Polytopes, torch.Tensor, torch.Tensor]] = []
    unresolved = 0
    bit = 2 * d
    for _ in range(MAX_ROUNDS):
        if open_cells.count == 0:
            break
        active = _cell_patterns(model, open_cells, embedding, guess, forced)
        coef, coef_error = pattern_affine_u_bounded(model, active, slice_map, inverses)  # (P, d + 1, m) each
        values = open_cells.x @ coef[:, :d] + coef[:, d:]  # (P, V, m)
        tol = zero_tolerance(coef, extent)
        # a value's sign is proven outside its error bound; inside it (or the tolerance), it is decided exactly
        # (P, V, m); NaN (an infinite bound times zero) becomes inf: unproven, never proven
        err = value_errors(open_cells.x, _radius(open_cells), coef, coef_error).nan_to_num(nan=torch.inf)
        band = torch.maximum(err, tol[:, None])
        sign = torch.where(active, 1.0, -1.0).to(DTYPE)
        valid = open_cells.valid()[..., None]
        signed = torch.where(valid, values * sign[:, None] + band, torch.zeros_like(values))
        worst, unit = signed.amin(1).min(1)
        final = worst >= 0  # no violation beyond the error bounds: the rest is decided exactly
        if bool(final.any()):
            # every value its bound does not prove is decided exactly: a cell is accepted when each has the
            # pattern's sign or is zero; one of the opposite sign (a sliver of another region) is cut there
            idx = final.nonzero().flatten()
            opposite, opposite_unit = _acceptance_violations(judge, open_cells, lineage, active, idx, values[idx],
                                                             band[idx], tol[idx], valid[idx, :, 0], silent)
            final[idx[opposite]] = False
            unit[idx[opposite]] = opposite_unit[opposite]
            idx = final.nonzero().flatten()
            done.append((open_cells.select(idx), active[idx], coef[idx]))
        idx = (~final).nonzero().flatten()
        if idx.numel() == 0:
            break
        cut_units = unit[idx]
        f = _unit_column(values[idx], cut_units)
        e = _unit_column(err[idx], cut_units)
        t = tol[idx].gather(1, cut_units[:, None])[:, 0]
        live = valid[idx, :, 0]
        side = _cut_sides(judge, open_cells, lineage, active, idx, cut_units, f, torch.maximum(e, t[:, None]), t, live)
        cuttable = ((side > 0) & live).any(1) & ((side < 0) & live).any(1)
        # a violated unit with no vertex strictly on the pattern's side: the cell lies on the other side, so its
        # pattern (read at its centre in floats) is wrong there; it is tried once with that unit flipped, then
        # accepted and counted
        retry, flipped, give_up = _stuck(idx, cuttable, forced, active, cut_units)
        if give_up.numel():
            unresolved += int(give_up.numel())
            done.append((open_cells.select(give_up), active[give_up], coef[give_up]))
        cut = cuttable.nonzero().flatten()
        if cut.numel() == 0 and retry.numel() == 0:  # every open cell was accepted: nothing is left to refine
            break
        cuts = _Cuts(idx[cut], cut_units[cut], f[cut], e[cut], side[cut])
        open_cells, lineage, guess, forced = _next_round(open_cells, lineage, active, coef, coef_error, cuts,
                                                         retry, flipped, record, bit)
        bit += 1
        held = [open_cells] + [c for c, _, _ in done]
        check(sum(c.count for c in held), max(c.V for c in held), d, max(c.tight.shape[2] for c in held))
    cells, bits, out = _accepted_cells(model, done, embedding, device)
    return CellPartition(cells, bits, out, judge.doubtful, unresolved, bit, judge.exact.decided, judge.exact.spent,
                         "polytope refinement by patterns (general W)")


def _cell_patterns(model: DEQ, cells: Polytopes, embedding: Embedding | None, guess: torch.Tensor | None,
                   forced: torch.Tensor) -> torch.Tensor:
    """(P, m) each open cell's pattern: the fixed point's at its vertex mean (the ``guess`` starts the solve;
    forward substitution when W is triangular), or its guess where ``forced`` (a sliver whose centre the
    floats put on the wrong side)."""
    centres = cells.centres()
    points = centres if embedding is None else (embedding.origin.to(centres.device)
                                                + centres @ embedding.directions.to(centres.device).T)
    active = deq_patterns(model, points, guess)
    if guess is not None and bool(forced.any()):
        active[forced] = guess[forced]
    return active


def _stuck(idx: torch.Tensor, cuttable: torch.Tensor, forced: torch.Tensor, active: torch.Tensor,
           units: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The cells ``idx`` that cannot be cut along their violated ``units``: those tried again with the unit
    flipped in their pattern (first time: cells, flipped patterns) and those given up (already forced)."""
    stuck = ~cuttable & ~forced[idx]
    flipped = active[idx[stuck]].clone()
    flipped[torch.arange(flipped.shape[0], device=idx.device), units[stuck]] ^= True
    return idx[stuck], flipped, idx[~cuttable & forced[idx]]


@dataclass
class _Cuts:
    """One round's cuts: the cells ``cells`` (S,), their cut ``units`` (S,), the units' values ``f`` at the
    vertices (S, V) with error bounds ``err`` and decided ``side`` (int8)."""

    cells: torch.Tensor
    units: torch.Tensor
    f: torch.Tensor
    err: torch.Tensor
    side: torch.Tensor


def _next_round(cells: Polytopes, lineage: torch.Tensor, active: torch.Tensor, coef: torch.Tensor,
                coef_error: torch.Tensor, cuts: _Cuts, retry: torch.Tensor, flipped: torch.Tensor,
                record: CutRecord, bit: int) -> tuple[Polytopes, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The open cells of the next round, with their lineages, pattern guesses and which guesses are forced:
    each cut cell's two children (recorded as cut ``bit``; f >= 0 with the unit active first, then f <= 0),
    then the ``retry`` cells uncut, with their ``flipped`` patterns forced."""
    d = cells.x.shape[2]
    device = cells.x.device
    parts: list[Polytopes] = []
    lineages: list[torch.Tensor] = []
    guesses: list[torch.Tensor] = []
    S = cuts.cells.numel()
    if S:
        column = cuts.units[:, None, None].expand(-1, d + 1, 1)
        planes = coef[cuts.cells].gather(2, column)[..., 0]
        nodes = record.add(cuts.units, active[cuts.cells], planes)
        pieces = _with_words(cells.select(cuts.cells), words_for(bit + 1))
        pieces.fields = {"radius": _radius(pieces)}
        parts += split_signed(pieces, cuts.f, cuts.err, cuts.side, bit, planes, coef_error[cuts.cells].gather(2, column)[..., 0],
                              interpolate=True)
        above, below = active[cuts.cells].clone(), active[cuts.cells].clone()
        rows = torch.arange(S, device=device)
        above[rows, cuts.units], below[rows, cuts.units] = True, False
        child = torch.cat([lineage[cuts.cells], nodes[:, None]], 1)
        lineages += [child, child]
        guesses += [above, below]
    if retry.numel():
        parts.append(_with_words(cells.select(retry), words_for(bit + 1)))
        lineages.append(torch.cat([lineage[retry], torch.full_like(retry, -1)[:, None]], 1))
        guesses.append(flipped)
    forced = torch.cat([torch.zeros(2 * S, dtype=torch.bool, device=device),
                        torch.ones(retry.numel(), dtype=torch.bool, device=device)])
    return _joined(parts), torch.cat(lineages), torch.cat(guesses), forced


def _acceptance_violations(judge: _Judge, cells: Polytopes, lineage: torch.Tensor, active: torch.Tensor,
                           idx: torch.Tensor, values: torch.Tensor, band: torch.Tensor, tol: torch.Tensor,
                           live: torch.Tensor, silent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For the cells ``idx`` that no value violates beyond the tolerance: which (S,) hold a vertex where a
    unit's exact sign is opposite to the pattern's (decided exactly wherever ``values`` (S, V, m) lie within
    their ``band``), and such a unit (S,) for each."""
    S = idx.shape[0]
    opposite = torch.zeros(S, dtype=torch.bool, device=idx.device)
    which = torch.zeros(S, dtype=torch.long, device=idx.device)
    near = (values.abs() <= band) & live[..., None] & ~silent
    if not bool(near.any()):
        return opposite, which
    c, v, j = near.nonzero().unbind(1)
    f = values[c, v, j]
    computed = torch.where(f.abs() <= tol[c, j], 0, torch.sign(f)).long()
    exact = judge.sides(cells, lineage, active, idx[c], v, j, computed)
    wanted = torch.where(active[idx[c], j], 1, -1)
    wrong = exact == -wanted
    opposite[c[wrong]] = True
    which[c[wrong]] = j[wrong]
    return opposite, which


def _unit_column(values: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
    """(P, V) the entries of (P, V, m) ``values`` of each cell's unit ``units`` (P,)."""
    return torch.gather(values, 2, units[:, None, None].expand(-1, values.shape[1], 1))[..., 0]


def _cut_sides(judge: _Judge, cells: Polytopes, lineage: torch.Tensor, active: torch.Tensor, idx: torch.Tensor,
               units: torch.Tensor, f: torch.Tensor, band: torch.Tensor, tol: torch.Tensor, live: torch.Tensor
               ) -> torch.Tensor:
    """(S, V) int8 sides of the vertices of cells ``idx`` for their cut units: +1 / -1 where the value ``f``
    is proven beyond its error bound ``band``, else the exact sign (0: on the cut), or, where the exact
    referee cannot decide, the tolerance's (zero within ``tol``), counted as a decision left to it."""
    side = torch.where(f.abs() <= tol[:, None], 0, torch.sign(f)).to(torch.int8)
    doubt = (f.abs() <= band) & live
    if bool(doubt.any()):
        c, v = doubt.nonzero().unbind(1)
        side[c, v] = judge.sides(cells, lineage, active, idx[c], v, units[c], side[c, v].long()).to(torch.int8)
    return side


def _accepted_cells(model: DEQ, done: list[tuple[Polytopes, torch.Tensor, torch.Tensor]],
                    embedding: Embedding | None, device: torch.device
                    ) -> tuple[Polytopes, torch.Tensor, torch.Tensor]:
    """The accepted cells joined, their patterns (P, m) and output maps (P, d + 1, k): ``A relu(u) + B x + c``
    with u affine on each cell's pattern (``done``: cells, patterns, u's coefficients), in cell coordinates."""
    cells = _joined([c for c, _, _ in done])
    bits = torch.cat([a for _, a, _ in done])
    coef = torch.cat([c for _, _, c in done])
    z = coef * bits[:, None, :].to(DTYPE)  # relu(u) on each cell's pattern
    on_device = model.to(device)
    if embedding is None:
        skip = torch.cat([on_device.B.T, on_device.c[None]])
    else:
        B = on_device.B
        skip = torch.cat([(B @ embedding.directions.to(device)).T,
                          (B @ embedding.origin.to(device) + on_device.c)[None]])
    return cells, bits, z @ on_device.A.T + skip
