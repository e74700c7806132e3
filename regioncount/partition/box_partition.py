"""Exact partitions of a d-dimensional box into activation regions (``docs/exact-dd.md``).

Layered subdivision, the d-dimensional form of :mod:`regioncount.partition.plane2d`: every cell is a convex polytope
(:mod:`regioncount.partition.polytopes`) carrying the affine map of the units already read; each unit's zero
hyperplane cuts the cells on which it changes sign, then the unit's sign is read at each cell's vertex mean
and the map is updated.  FFNs go layer by layer (a layer's units all cut with the layer-start map);
triangular DEQs unit by unit in forward-substitution order, where u_t = r_t(x) has the sign of
r_t = (U x + b)_t + sum_{s != t} W_ts z_s and z_t = relu(r_t) / (1 - W_tt).  Each final cell is one region.

Every vertex and centre sign is proven by its own rigorous error bound (vertex radii from the conditioning
of the constraints that define each vertex, map errors from the layer products:
:mod:`regioncount.partition.vertex_bounds`) or decided in rational arithmetic (:mod:`regioncount.partition.exact_cells`); only
decisions past the exact budget fall to ``PLANE_ZERO_TOL``, and a partition with any is labelled
approximate.  Facets (faces of one constraint spanning d - 1 dimensions) give volumes (d <= 3), the region
adjacency graph (:mod:`regioncount.partition.facet_adjacency`: from each facet's own constraints, or exactly
where several units are zero on it), the
linear pieces (components of adjacent regions with equal output maps) and, by one sparse LP over all
regions, Chebyshev centres and inradii.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from ..core.devices import Stopwatch, default_memory_limit, resolve_device
from ..core.errors import CostLimitError, SegmentError
from ..core.geometry import Box, resolve_box
from ..core.limits import NO_LIMIT
from ..core.patterns import group_rows, layer_words
from ..core.results import BoxPartition
from ..core.settings import DEFAULT_MAX_REGIONS
from ..core.tolerances import PLANE_DEQ_ZERO_TOL
from ..core.tolerances import PLANE_ZERO_TOL as ZERO_TOL
from ..line.forward_error import INFLATE, SMALLEST_SUBNORMAL, UNIT_ROUNDOFF, gamma
from ..models.networks import DEQ, DTYPE, FFN, Model, deq_certificate, input_free_units, require_network
from .chebyshev import chebyshev_balls, inscribed_balls
from .deq_cells import box_extent, pattern_affine_u, refine_general_deq
from .exact_cells import EXACT_BUDGET, ExactCells, value_at
from .exact_pieces import linear_piece_count, same_affine_pairs
from .facet_adjacency import facet_pairs
from .facet_crossing import crossing_rule
from .polytopes import (
    CellPartition,
    ConstraintMaps,
    Facets,
    Polytopes,
    PolytopeStore,
    bit_mask,
    facets,
    split_signed,
    volumes,
    words_for,
)
from .polytopes import box as box_polytope
from .vertex_bounds import MapErrors, centre_doubts, centre_radii, layer_errors, value_errors

#: Most input dimensions of an exact partition (the box alone has 2^d vertices).
MAX_DIMENSION = 12
#: Largest box coordinate accepted (volumes, products of d coordinates, stay finite in float64).
MAX_EXTENT = 1e30
#: Chebyshev centres are computed by one LP when the partition holds at most this many regions.
CHEBYSHEV_MAX_REGIONS = 200_000
#: Cells per Chebyshev LP (measured: 256 is 3.5x faster than one LP for 22,000 cells).
#: Bytes per vertex word or coordinate held at once while cutting (cells, children, temporaries).
_BYTES_PER_ENTRY = 8 * 4


@dataclass(frozen=True)
class CellLimit:
    """The most cells a partition may hold: ``max_regions``, and what ``memory_limit`` bytes allow; and the
    time it may take (``deadline``, a ``time.perf_counter()`` value, or None)."""

    max_regions: int
    memory_limit: int
    deadline: float | None = None
    max_seconds: float | None = None

    @classmethod
    def of(cls, max_regions: int | None, memory_limit: int | None, max_seconds: float | None) -> CellLimit:
        """The limits of a partition starting now (cells: none when None; memory: half the RAM when None;
        time: none when None)."""
        deadline = None if max_seconds is None else time.perf_counter() + max_seconds
        return cls(NO_LIMIT if max_regions is None else max_regions,
                   default_memory_limit() if memory_limit is None else memory_limit, deadline,
                   max_seconds)

    def check_time(self, doing: str) -> None:
        """Stop (:class:`CostLimitError`) once the deadline has passed, saying what was being done."""
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise CostLimitError(f"{doing} ran past the time limit of {self.max_seconds:g} s; raise `max_seconds` "
                                 "or take a smaller box")

    def check(self, cells: Polytopes) -> None:
        """Stop (:class:`CostLimitError`, one line with the estimate) past either limit."""
        self.check_size(cells.count, cells.V, cells.x.shape[2], cells.tight.shape[2])

    def check_size(self, count: int, V: int, d: int, words: int) -> None:
        """:meth:`check` for ``count`` cells of up to ``V`` vertices in d dimensions with ``words``
        incidence words each."""
        if count > self.max_regions:
            raise CostLimitError(f"more cells than the limit of {self.max_regions:,} regions; raise `max_regions` or "
                                 "take a smaller box")
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise CostLimitError(f"the partition ran past the time limit of {self.max_seconds:g} s with {count:,} "
                                 f"cells of up to {V} vertices; raise `max_seconds` or take a smaller box")
        need = count * V * (d + words) * _BYTES_PER_ENTRY
        if need > self.memory_limit:
            raise CostLimitError(f"the partition reached {count:,} cells of up to {V} vertices, "
                                 f"about {need / 2**30:.3g} GiB (estimated), above the memory limit of "
                                 f"{self.memory_limit / 2**30:.3g} GiB; raise `memory_limit` or take a smaller box")


@dataclass
class _Step:
    """One round of cuts: ``pre`` maps the cells' states (P, d + 1, ·) to the round's pre-activation
    coefficients (P, d + 1, n) (rows: slopes, then the constant); ``pre_error`` bounds their rounding
    entrywise (:class:`~regioncount.partition.vertex_bounds.MapErrors`), given the states' own error bounds (None: exact
    states; FFN: per row (P, d + 1), DEQ: entrywise); ``after`` gives the states once the units' signs (P, n)
    are read, and ``after_error`` their error bounds (from the children's parent errors, the step's map
    errors, the children's maps, their signs and their parents' indices); ``units`` are the global unit
    indices (bit = 2d + index)."""

    units: list[int]
    pre: Callable[[torch.Tensor], torch.Tensor]
    after: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    pre_error: Callable[[torch.Tensor, torch.Tensor | None], MapErrors]
    after_error: Callable[[torch.Tensor | None, MapErrors, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _ffn_steps(model: FFN, d: int, device: torch.device, input_error: torch.Tensor | None
               ) -> tuple[torch.Tensor, list[_Step]]:
    state = torch.cat([torch.eye(d, dtype=DTYPE, device=device), torch.zeros(1, d, dtype=DTYPE, device=device)])
    steps, first = [], 0
    model = model.to(device)
    for layer, (weight, bias) in enumerate(zip(model.weights[:-1], model.biases[:-1])):

        def pre(s: torch.Tensor, weight: torch.Tensor = weight, bias: torch.Tensor = bias) -> torch.Tensor:
            Z = s @ weight.T
            Z[:, -1] += bias
            return Z

        def pre_error(s: torch.Tensor, rows: torch.Tensor | None, weight: torch.Tensor = weight,
                      bias: torch.Tensor = bias, layer: int = layer) -> MapErrors:
            # the first layer multiplies the identity: exact, but for a folded-in embedding's error
            return layer_errors(s, rows, weight, bias, exact=layer == 0,
                                shared=input_error.to(device) if layer == 0 and input_error is not None else None)

        def after_error(rows: torch.Tensor | None, EZ: MapErrors, Z: torch.Tensor, active: torch.Tensor,
                        origin: torch.Tensor) -> torch.Tensor:
            return EZ.row_max().index_select(0, origin)  # masking only removes entries

        steps.append(_Step(list(range(first, first + weight.shape[0])), pre,
                           lambda s, Z, active: Z * active[:, None, :].to(DTYPE), pre_error, after_error))
        first += weight.shape[0]
    return state[None], steps


def _deq_steps(model: DEQ, d: int, device: torch.device, input_error: torch.Tensor | None
               ) -> tuple[torch.Tensor, list[_Step]]:
    model = model.to(device)
    assert model.unit_order is not None
    W = model.W
    m = model.width
    Q = torch.cat([model.U.T, model.b[None]])  # (d + 1, m): the input part of every unit
    EQ = None if input_error is None else input_error.to(device)
    g = gamma(m + 1)
    steps = []
    for t in model.unit_order:
        row = W[t].clone()
        row[t] = 0.0
        scale = 1.0 - W[t, t]  # rounded; the true value is within u of it, relatively

        def pre(z: torch.Tensor, t: int = t, row: torch.Tensor = row) -> torch.Tensor:
            return (Q[:, t] + z @ row)[..., None]

        def pre_error(z: torch.Tensor, ez: torch.Tensor | None, t: int = t, row: torch.Tensor = row) -> MapErrors:
            load = z.abs() * g if ez is None else torch.addcmul(ez, z.abs(), torch.full_like(z, g))
            err = load @ row.abs() + g * Q[:, t].abs()
            if EQ is not None:
                err = err + EQ[:, t]
            dense = ((err + (m + 2) * SMALLEST_SUBNORMAL) * INFLATE)[..., None]
            return MapErrors(None, None, None, None, torch.zeros(d + 1, 1, dtype=DTYPE, device=device), dense)

        def after(z: torch.Tensor, r: torch.Tensor, active: torch.Tensor, t: int = t,
                  scale: torch.Tensor = scale) -> torch.Tensor:
            z = z.clone()
            z[:, :, t] = r[:, :, 0] * active[:, None, 0].to(DTYPE) / scale
            return z

        def after_error(ez: torch.Tensor | None, EZ: MapErrors, Z: torch.Tensor, active: torch.Tensor,
                        origin: torch.Tensor, t: int = t, scale: torch.Tensor = scale) -> torch.Tensor:
            # |r~ / fl(1 - w) (1 + d1) - r / (1 - w)| <= (E_r (1 + 2u) + 2.1 u |r~|) / |fl(1 - w)|
            out = torch.zeros_like(Z.expand(-1, -1, m)) if ez is None else ez.clone()
            assert EZ.dense is not None
            E_r = EZ.dense.index_select(0, origin)[:, :, 0]
            column = (E_r * (1 + 2 * UNIT_ROUNDOFF) + 2.1 * UNIT_ROUNDOFF * Z[:, :, 0].abs()) / scale.abs()
            out[:, :, t] = column * active[:, None, 0].to(DTYPE) * INFLATE
            return out

        steps.append(_Step([t], pre, after, pre_error, after_error))
    return torch.zeros(1, d + 1, model.width, dtype=DTYPE, device=device), steps


#: Points sampled before a partition starts: their distinct patterns are a proven lower bound on the regions.
PILOT_SAMPLES = 1 << 14


def check_pilot(model: Model, bx: Box, device: torch.device, limit: CellLimit) -> int | None:
    """Refuse before any cutting when a pilot of :data:`PILOT_SAMPLES` uniform points already finds more
    distinct patterns than ``max_regions``, or when that many cells (each at least d + 1 vertices) would not
    fit in the memory limit.  Returns the number of patterns found (a lower bound on the regions), or None
    when the limits are so wide that no pilot could refuse (it finds at most PILOT_SAMPLES patterns): then no
    point is sampled (for a general-W DEQ each costs a fixed-point iteration)."""
    from ..sampling.sampled import sample_regions

    d = bx.dim
    units = sum(model.hidden_widths) if isinstance(model, FFN) else model.width
    most = PILOT_SAMPLES * (d + 1) * (d + words_for(2 * d + units)) * _BYTES_PER_ENTRY
    if PILOT_SAMPLES <= limit.max_regions and most <= limit.memory_limit:
        return None
    found = sample_regions(model, bx.low, bx.high, samples=PILOT_SAMPLES, seed=0, device=device).distinct_patterns
    if found > limit.max_regions:
        raise CostLimitError(f"the box holds at least {found:,} regions ({PILOT_SAMPLES:,} sampled points already "
                             f"show that many patterns), above the limit of {limit.max_regions:,} regions; raise `max_regions` "
                             "or take a "
                             "smaller box")
    need = found * (d + 1) * (d + words_for(2 * d + units)) * _BYTES_PER_ENTRY
    if need > limit.memory_limit:
        raise CostLimitError(f"the partition needs at least {need / 2**30:.3g} GiB ({found:,} regions seen by "
                             f"sampling, at least {d + 1} vertices each), above the memory limit of "
                             f"{limit.memory_limit / 2**30:.3g} GiB; raise `memory_limit` or take a smaller box")
    return found


class _MapHistory:
    """The maps of every constraint on the cells, as the subdivision made them: each step's coefficients
    (P_s, d + 1, n_s) and their errors, kept for the cells of that step's start, and for the current cells
    the index of their ancestor at each earlier step.  A vertex's basis names constraints by bit; their maps
    on its cell are read from here (box faces are exact) to bound new vertices afresh
    (:func:`regioncount.partition.vertex_bounds.new_vertices`), without storing maps per vertex."""

    def __init__(self, bx: Box, units: int, steps: list[_Step], device: torch.device) -> None:
        d = bx.dim
        self.d = d
        self.step_of = torch.zeros(units, dtype=torch.long, device=device)
        self.local_of = torch.zeros(units, dtype=torch.long, device=device)
        for s, step in enumerate(steps):
            index = torch.tensor(step.units, dtype=torch.long, device=device)
            self.step_of[index] = s
            self.local_of[index] = torch.arange(len(step.units), device=device)
        self.low = torch.tensor(bx.low, dtype=DTYPE, device=device)
        self.high = torch.tensor(bx.high, dtype=DTYPE, device=device)
        self.Z: list[torch.Tensor] = []
        self.EZ: list[MapErrors] = []
        self.ancestors = torch.zeros(1, 0, dtype=torch.long, device=device)  # (P0, steps done)

    def begin(self, Z: torch.Tensor, EZ: MapErrors) -> None:
        self.Z.append(Z)
        self.EZ.append(EZ)

    def end(self, origin: torch.Tensor) -> None:
        """The step is done: the new cells' parent at its start is ``origin``."""
        self.ancestors = torch.cat([self.ancestors.index_select(0, origin), origin[:, None]], 1)

    def of_cells(self, parents: torch.Tensor) -> ConstraintMaps:
        """:meth:`maps` for a selection of cells whose step-start indices are ``parents``."""
        return lambda rows, bits: self.maps(parents[rows], bits)

    def maps(self, cells: torch.Tensor, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Maps (E, k, d + 1) and entrywise errors of constraints ``bits`` (E, k) on cells ``cells`` (E,)
        (indices of the current step's start)."""
        d = self.d
        E, k = bits.shape
        maps = torch.zeros(E, k, d + 1, dtype=DTYPE, device=bits.device)
        errors = torch.zeros_like(maps)
        face = bits < 2 * d
        if bool(face.any()):
            r, c = face.nonzero(as_tuple=True)
            axis, side = torch.div(bits[r, c], 2, rounding_mode="floor"), bits[r, c] % 2
            maps[r, c, axis] = 1.0
            maps[r, c, d] = -torch.where(side == 1, self.high[axis], self.low[axis])
        if bool((~face).any()):
            r, c = (~face).nonzero(as_tuple=True)
            unit = bits[r, c] - 2 * d
            step, local = self.step_of[unit], self.local_of[unit]
            current = len(self.Z) - 1
            for s in torch.unique(step).tolist():
                pick = step == s
                rows, cols, j = r[pick], c[pick], local[pick]
                owner = cells[rows] if s == current else self.ancestors[cells[rows], s]
                maps[rows, cols] = self.Z[s][owner, :, j]
                errors[rows, cols] = self.EZ[s].entries(owner, j)
        return maps, errors


#: Vertex-count classes of the cells a unit's hyperplane is tested on: each class is read with only as many
#: vertex slots as its largest cell has (the store pads every cell to the largest count, typically 5x the mean).
VERTEX_CLASSES = (16, 32, 64)


#: Candidate sets smaller than this many (cell, vertex slot) entries are read as one group (small nets pay per
#: operation, not per entry).
CLASS_MIN_ENTRIES = 1 << 16


def vertex_count_groups(idx: torch.Tensor, counts: torch.Tensor) -> list[torch.Tensor]:
    """``idx`` (S,) split by the vertex counts ``counts[idx]`` into the classes of :data:`VERTEX_CLASSES`
    (one group when there are few entries)."""
    n = counts[idx]
    largest = int(n.max())
    if largest <= VERTEX_CLASSES[0] or idx.numel() * largest < CLASS_MIN_ENTRIES:
        return [idx]
    cls = torch.bucketize(n, torch.tensor(VERTEX_CLASSES, device=n.device))
    return [idx[cls == c] for c in torch.unique(cls).tolist()]


class _UnitCuts:
    """The cuts of one step's units through the cells of the layered subdivision: each unit's sign at the
    vertices of its candidate cells, proven by :func:`~regioncount.partition.vertex_bounds.value_errors` or
    decided exactly (``referee``), incidences recorded where it touches a cell, the cells it crosses split."""

    def __init__(self, Z: torch.Tensor, EZ: MapErrors, tol: torch.Tensor, referee: _Referee, history: _MapHistory,
                 bits: torch.Tensor, vanishing: torch.Tensor, limit: CellLimit) -> None:
        self.Z, self.EZ, self.tol, self.referee, self.history = Z, EZ, tol, referee, history
        self.bits, self.vanishing, self.limit = bits, vanishing, limit
        self.doubtful = torch.zeros((), dtype=torch.int64, device=Z.device)

    def cut(self, store: PolytopeStore, cells: Polytopes, origin: torch.Tensor, j: int, unit: int, idx: torch.Tensor
            ) -> tuple[Polytopes, torch.Tensor]:
        """Unit ``unit`` (column ``j`` of the step's maps) on cells ``idx``: the store's cells and origins after."""
        for group in vertex_count_groups(idx, cells.n):
            cells, origin = self._cut_group(store, cells, origin, j, unit, group)
        return cells, origin

    def _cut_group(self, store: PolytopeStore, cells: Polytopes, origin: torch.Tensor, j: int, unit: int,
                   idx: torch.Tensor) -> tuple[Polytopes, torch.Tensor]:
        d = cells.x.shape[2]
        sub = cells.take(idx, int(cells.n[idx].max()))
        zj, ezj = self.Z[origin[idx], :, j], self.EZ.column(origin[idx], j)  # (S, d + 1)
        f = (sub.x @ zj[:, :d, None])[..., 0] + zj[:, d:]
        err = value_errors(sub.x, sub.radius, zj, ezj)
        live = sub.valid()
        side = (f > err).to(torch.int8) - (f < -err).to(torch.int8)
        doubt = (side == 0) & live  # not proven (a float zero is no proof either)
        if bool(doubt.any()):
            side, doubt = self.referee.vertex_signs(cells, idx, origin, self.bits, unit, doubt, side, f,
                                                    self.tol[origin[idx], j])
        self.doubtful += doubt.any(1).sum()
        # record the incidence also where the hyperplane touches a cell without cutting it (a face of it),
        # not where the unit vanishes on the whole cell (no face: its map is zero there)
        flat = ((side == 0) | ~live).all(1)  # zero at every vertex: the unit's map vanishes on the cell
        if bool(flat.any()):
            self.vanishing[origin[idx[flat]], unit] = True
        on = (side == 0) & live & ~flat[:, None]
        if bool(on.any()):
            word, mask = bit_mask(2 * d + unit)
            rows, cols = on.nonzero(as_tuple=True)
            cells.tight[idx[rows], cols, word] |= mask
            sub.tight[rows, cols, word] |= mask  # the copy about to be split carries them too
        cut = (((side > 0) & live).any(1) & ((side < 0) & live).any(1)).nonzero().flatten()
        if cut.numel() == 0:
            return cells, origin
        plus, minus = split_signed(sub.select(cut), f[cut], err[cut], side[cut], 2 * d + unit, zj[cut], ezj[cut],
                                   self.history.of_cells(origin[idx[cut]]))
        store.widen(max(plus.V, minus.V))
        store.replace(idx[cut], plus)
        store.append(minus)
        cells = store.view()
        self.limit.check(cells)
        return cells, torch.cat([origin, origin[idx[cut]]])


def subdivide(model: Model, bx: Box, device: torch.device, limit: CellLimit, exact_budget: int,
              exact: ExactCells | None = None, input_error: torch.Tensor | None = None):
    """The layered subdivision: final cells, their patterns (P, units) in unit order, output maps (P, d + 1, k)
    and the number of decisions taken by the tolerance.

    Every sign decision is proven by its own error bound (:mod:`regioncount.partition.vertex_bounds`: vertices carry
    radii, the maps entrywise coefficient errors) or decided again in rational arithmetic by ``exact``
    (default: the model itself on the box; a plane slice passes the original model with its embedding, and
    ``input_error`` (d + 1, units of the first map) bounds the rounding of the slice model's first affine map
    against it).  Only decisions the exact referee cannot take (its budget spent) fall to the tolerance."""
    d = bx.dim
    units = sum(model.hidden_widths) if isinstance(model, FFN) else model.width
    constraints = 2 * d + units
    extent = box_extent(bx, device)
    cells = box_polytope(bx.low, bx.high, constraints, device)
    state, steps = (_ffn_steps(model, d, device, input_error) if isinstance(model, FFN)
                    else _deq_steps(model, d, device, input_error))
    state_error: torch.Tensor | None = None  # the first states are exact
    bits = torch.zeros(1, units, dtype=torch.bool, device=device)
    vanishing = torch.zeros(1, units, dtype=torch.bool, device=device)  # units whose map is zero on the cell
    doubtful = torch.zeros((), dtype=torch.int64, device=device)
    referee = _Referee(exact or ExactCells(model, bx.low, bx.high), constraints, exact_budget, limit)
    silent = input_free_units(model).to(device)  # exactly zero everywhere: never cut anything
    g = gamma(d + 1)
    history = _MapHistory(bx, units, steps, device)
    for step in steps:
        Z = step.pre(state)  # (P0, d + 1, n) on the cells of the step's start
        EZ = step.pre_error(state, state_error)  # (P0, d + 1, n) bounds on their rounding
        history.begin(Z, EZ)
        scale = (Z[:, :d].abs() * extent[None, :, None]).sum(1) + Z[:, d].abs()
        tol = scale * ZERO_TOL  # (P0, n): only for decisions the exact referee cannot take
        valid = cells.valid()
        assert cells.radius is not None
        reach_r = torch.where(valid, cells.radius, 0.0).amax(1)[:, None]  # (P0, 1)
        lo_x = torch.where(valid[..., None], cells.x, torch.inf).amin(1) - reach_r  # (P0, d) bounding boxes,
        hi_x = torch.where(valid[..., None], cells.x, -torch.inf).amax(1) + reach_r  # widened by the radii
        low_end = Z[:, d] + torch.minimum(Z[:, :d] * lo_x[..., None], Z[:, :d] * hi_x[..., None]).sum(1)
        high_end = Z[:, d] + torch.maximum(Z[:, :d] * lo_x[..., None], Z[:, :d] * hi_x[..., None]).sum(1)
        reach = torch.maximum(lo_x.abs(), hi_x.abs())  # (P0, d)
        reach1 = torch.cat([reach, torch.ones_like(reach[:, :1])], 1)  # (P0, d + 1): the constant row's weight
        # |exact - computed| of the unit's value anywhere in the widened bounding box: map errors and rounding
        bound = (EZ.weighted(reach1) + g * ((Z[:, :d].abs() * reach[..., None]).sum(1) + Z[:, d].abs())) * INFLATE
        band = torch.nan_to_num(torch.maximum(tol, bound), nan=torch.inf)
        # unit j's hyperplane may cut cell p (its exact value may take both signs on the exact cell), or come
        # within the tolerance of it (its vertices are then tested: a sliver must not pass unseen)
        candidate = (low_end <= band) & (high_end >= -band) & ~silent[step.units][None]  # (P0, n)
        origin = torch.arange(cells.count, device=device)
        store = PolytopeStore(cells, capacity=4 * cells.count + 64)
        cells = store.view()  # the store's own rows: incidences recorded below on uncut cells must stay
        cuts = _UnitCuts(Z, EZ, tol, referee, history, bits, vanishing, limit)
        for j, unit in enumerate(step.units):
            idx = candidate[origin, j].nonzero().flatten()
            if idx.numel():
                cells, origin = cuts.cut(store, cells, origin, j, unit, idx)
        doubtful += cuts.doubtful
        cells = store.view()
        valid = cells.valid()
        centre = cells.centres()
        radius_c = centre_radii(cells.x, cells.radius, valid, cells.n)  # (P,)
        Zo = Z.index_select(0, origin)
        pre = torch.einsum("pi,pin->pn", centre, Zo[:, :d]) + Zo[:, d]
        doubt = centre_doubts(pre, Z, EZ, bound, origin, radius_c, d) & ~silent[step.units][None]
        tol_o = tol.index_select(0, origin)
        if bool(doubt.any()):
            doubt = referee.centres(cells, origin, bits, step.units, pre, doubt)
        active = torch.where(doubt, pre > tol_o, pre > 0)
        doubtful += doubt.any(1).sum()
        bits = bits.index_select(0, origin)
        bits[:, step.units] = active
        vanishing = vanishing.index_select(0, origin)
        history.end(origin)
        parent_state = state.index_select(0, origin)
        state_error = step.after_error(None if state_error is None else state_error.index_select(0, origin),
                                       EZ, Zo, active, origin)
        state = step.after(parent_state, Zo, active)
    return cells, bits, _output_maps(model, state, d, device), int(doubtful), referee, vanishing


def _output_maps(model: Model, state: torch.Tensor, d: int, device: torch.device) -> torch.Tensor:
    """(P, d + 1, k) the outputs' affine maps on each cell from its last hidden state's maps ``state``
    (P, d + 1, units): the FFN's readout, or the DEQ's ``A z + B x + c``."""
    on_device = model.to(device)
    if isinstance(on_device, FFN):
        out = state @ on_device.weights[-1].T
        out[:, d] += on_device.biases[-1]
        return out
    return state @ on_device.A.T + torch.cat([on_device.B.T, on_device.c[None]])


def partition_cells(model: Model, bx: Box, device: torch.device, limit: CellLimit,
                    exact_budget: int) -> CellPartition:
    """The cells of the box: layered subdivision (FFNs, triangular DEQs, with rational re-decisions), or
    pattern refinement for a DEQ with a general W (:mod:`regioncount.partition.deq_cells`)."""
    if isinstance(model, DEQ) and model.unit_order is None:
        return refine_general_deq(model, bx, device, limit.check_size, exact_budget=exact_budget)
    cells, bits, out, doubtful, referee, vanishing = subdivide(model, bx, device, limit, exact_budget)
    engine = "polytope subdivision (layered)" if isinstance(model, FFN) else "polytope subdivision (unit by unit)"
    return CellPartition(cells, bits, out, doubtful, 0, 2 * bx.dim + bits.shape[1], referee.decided, referee.spent,
                         engine, vanishing)


class _Referee:
    """Re-decides doubtful zero tests exactly (:class:`ExactCells`), within a budget of decisions and the
    partition's time limit (``limit``: past its deadline the partition stops, as it does between cuts)."""

    def __init__(self, exact: ExactCells, constraints: int, budget: int, limit: CellLimit | None = None) -> None:
        self.exact, self.constraints, self.left = exact, constraints, budget
        self.spent = False
        self.decided = 0
        self.limit = limit

    def _take(self) -> bool:
        if self.limit is not None and self.limit.deadline is not None and time.perf_counter() > self.limit.deadline:
            raise CostLimitError(f"the partition ran past the time limit of {self.limit.max_seconds:g} s while "
                                 f"deciding signs exactly ({self.decided:,} decided); raise `max_seconds` or take "
                                 "a smaller box")
        if self.left <= 0:
            self.spent = True
            return False
        self.left -= 1
        self.decided += 1
        return True

    def vertex_signs(self, cells: Polytopes, idx: torch.Tensor, origin: torch.Tensor, bits: torch.Tensor,
                     unit: int, doubt: torch.Tensor, side: torch.Tensor, f: torch.Tensor, tol: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """The signs (S, V) of ``unit`` at the vertices of cells ``idx`` whose float values ``f`` left them
        unproven (``doubt``): the exact value at the exact vertex decides (+1, 0, -1).  Returns the signs and
        the doubts left (budget spent, or a vertex its constraints do not pin down), which the tolerance
        ``tol`` (S,) decides: zero within it, the float sign outside."""
        left = doubt.clone()
        side = side.clone()
        for row, col in doubt.nonzero().tolist():
            if not self._take():
                break
            cell = int(idx[row])
            cell_bits = bits[int(origin[cell])].tolist()
            x = self.exact.vertex(cells.tight[cell, col].tolist(), cell_bits, self.constraints)
            if x is None:
                continue
            value = value_at(self.exact.unit(unit, cell_bits), x)
            side[row, col] = (value > 0) - (value < 0)
            left[row, col] = False
        if bool(left.any()):
            by_tolerance = torch.where(f.abs() <= tol[:, None], 0, torch.sign(f)).to(side.dtype)
            side = torch.where(left, by_tolerance, side)
        return side, left

    def centres(self, cells: Polytopes, origin: torch.Tensor, bits: torch.Tensor, units: list[int],
                pre: torch.Tensor, doubt: torch.Tensor) -> torch.Tensor:
        """Doubtful centre values ``pre`` (P, n) of the step's ``units``: the exact value at the exact vertex
        mean replaces the float one (in place) wherever every vertex is found; returns the doubts left."""
        left = doubt.clone()
        for cell, j in doubt.nonzero().tolist():
            if not self._take():
                break
            cell_bits = bits[int(origin[cell])].tolist()
            affine = self.exact.unit(units[j], cell_bits)
            value = Fraction(0)
            if any(affine[0]) or affine[1] != 0:
                points = [self.exact.vertex(cells.tight[cell, v].tolist(), cell_bits, self.constraints)
                          for v in range(int(cells.n[cell]))]
                if any(p is None for p in points):
                    continue
                centre = [sum(c) / len(points) for c in zip(*points)]  # type: ignore[misc]
                value = value_at(affine, centre)
                if value == 0:
                    continue  # a hyperplane through the middle of a cell it did not cut: left to the tolerance
            pre[cell, j] = 0.0 if value == 0 else (torch.inf if value > 0 else -torch.inf)
            left[cell, j] = False
        return left


def _pattern_constraints(model: DEQ, bx: Box, active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each region of a DEQ as {x in the box : s_j u_j(x) >= 0 for every unit}, u affine on the region's
    pattern (``active`` (R, m)): constraints (owner, unit normal, offset) for :func:`chebyshev_balls`."""
    R, d = active.shape[0], bx.dim
    coef = pattern_affine_u(model, active)  # (R, d + 1, m)
    sign = torch.where(active, 1.0, -1.0).to(DTYPE)
    a = -(coef[:, :d] * sign[:, None]).transpose(1, 2)  # (R, m, d): -s_j a_j . x <= s_j c_j
    c = (coef[:, d] * sign)
    norms = torch.linalg.vector_norm(a, dim=2)
    keep = norms > 0  # a unit constant on the region is no constraint
    owner = torch.arange(R, device=active.device)[:, None].expand(-1, active.shape[1])[keep]
    normal, offset = a[keep] / norms[keep][:, None], c[keep] / norms[keep]
    eye = torch.eye(d, dtype=DTYPE, device=active.device)
    box_normal = torch.cat([-eye, eye]).repeat(R, 1)
    box_offset = torch.tensor([-v for v in bx.low] + list(bx.high), dtype=DTYPE, device=active.device).repeat(R)
    box_owner = torch.arange(R, device=active.device).repeat_interleave(2 * d)
    return torch.cat([owner, box_owner]), torch.cat([normal, box_normal]), torch.cat([offset, box_offset])


def _chebyshev(model: Model, bx: Box, cells: Polytopes, found: Facets, bits: torch.Tensor,
               representative: torch.Tensor, wanted: bool, limit: CellLimit | None = None
               ) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """Each region's Chebyshev centre and inradius (up to CHEBYSHEV_MAX_REGIONS regions), and a note when
    they were skipped; ``limit``'s deadline is checked between the LPs' chunks."""
    R = representative.shape[0]
    check = None if limit is None else (lambda: limit.check_time("the Chebyshev centres"))
    if not wanted:
        return None, None, []
    if R <= CHEBYSHEV_MAX_REGIONS and R == cells.count:  # each region one cell: its facets
        centres, radii = inscribed_balls(found.owner, found.normal, found.offset, cells.centres(), cells.count,
                                         check=check)
        order = representative.cpu().numpy()
        return centres[order], radii[order], []
    if R <= CHEBYSHEV_MAX_REGIONS and isinstance(model, DEQ):  # regions of several cells
        centres, radii = chebyshev_balls(*_pattern_constraints(model, bx, bits[representative]), R, check=check)
        return centres, radii, []
    return None, None, [f"Chebyshev centres skipped: {R:,} regions (computed up to {CHEBYSHEV_MAX_REGIONS:,})"]


def _partition_notes(unmatched: int, probed_facets: int, unresolved: int, doubtful: int, budget_spent: bool,
                     exact_budget: int, layered: bool) -> list[str]:
    """What a box partition's output says about how its adjacency and its doubtful decisions were settled."""
    notes = []
    if unmatched:
        notes.append(f"{unmatched} facets matched no region across them and were skipped")
    if probed_facets:
        notes.append(f"{probed_facets} facets with several zero units found their neighbours by probes (the exact "
                     "crossing rule's budget was spent or it could not decide), not by their incidences or values")
    if unresolved:
        notes.append(f"{unresolved} cells had a sign violation within the tolerance that could not be cut: "
                     "approximate")
    if doubtful:
        budget = f" (the exact re-decision budget of {exact_budget:,} was spent)" if budget_spent else ""
        tolerance = ZERO_TOL if layered else PLANE_DEQ_ZERO_TOL
        notes.append(f"{doubtful} zero tests inside the {tolerance:.2g} relative tolerance were not confirmed "
                     f"exactly{budget} (boundaries closer than the tolerance, a sliver, are not cut): approximate")
    return notes


def partition_box(model: Model, low: Sequence[float] | float | None = None,
                  high: Sequence[float] | float | None = None, *, device: str | torch.device = "auto",
                  max_regions: int | None = DEFAULT_MAX_REGIONS, memory_limit: int | None = None,
                  chebyshev: bool = True, exact_budget: int = EXACT_BUDGET,
                  assume_well_posed: bool = False, max_seconds: float | None = None) -> BoxPartition:
    """Every activation region of ``model`` in the box [low, high] (default: the model's domain), exactly:
    counts, bounded regions, volumes (d <= 3), adjacency, linear pieces and (``chebyshev``, up to
    :data:`CHEBYSHEV_MAX_REGIONS` regions) Chebyshev centres and inradii.  FFNs and triangular DEQs by
    layered subdivision; DEQs with a general W, once certified well-posed (or ``assume_well_posed``), by
    pattern refinement (:mod:`regioncount.partition.deq_cells`).

    Vertex and centre values inside the zero tolerance are decided again in rational arithmetic
    (:mod:`regioncount.partition.exact_cells`), at most ``exact_budget`` of them; the rest are counted as
    decisions left to the tolerance.  Stops with :class:`~regioncount.core.errors.CostLimitError` past
    ``max_regions`` cells or the memory limit (default: half the RAM) or ``max_seconds``, with the estimate in
    the message."""
    require_network(model, "the box partition")
    certificate = deq_certificate(model, assume_well_posed)  # a general W must be shown well-posed first
    bx = resolve_box(model, low, high)
    if bx.dim > MAX_DIMENSION:
        raise SegmentError(f"exact partitions are for at most {MAX_DIMENSION} input dimensions (the box alone has "
                           f"2^d vertices; d = {bx.dim}): sample the box, or count along segments or in planes")
    reach = max(abs(v) for v in (*bx.low, *bx.high))
    if not reach <= MAX_EXTENT:
        raise SegmentError(f"the box reaches {reach:.3g}: beyond {MAX_EXTENT:.0e} volumes overflow float64")
    dev = resolve_device(device)
    limit = CellLimit.of(max_regions, memory_limit, max_seconds)
    watch = Stopwatch(dev)
    d = bx.dim
    with torch.no_grad():
        check_pilot(model, bx, dev, limit)
        part = partition_cells(model, bx, dev, limit, exact_budget)
        cells, bits, out, doubtful, unresolved = part.cells, part.bits, part.out, part.doubtful, part.unresolved
        constraints = part.constraints
        partition_seconds = watch.seconds()
        widths = model.hidden_widths if isinstance(model, FFN) else None
        words = layer_words(bits, widths)
        region, representative, _ = group_rows(words)
        R = representative.shape[0]
        limit.check_time("the partition (before its facets and volumes)")
        found = facets(cells, constraints)
        vol = None
        if d <= 3:
            vol = torch.zeros(R, dtype=DTYPE, device=dev).index_add_(0, region, volumes(cells, found))
        touches = cells.has_bits(0, 2 * d).any(1)
        touched = torch.zeros(R, dtype=torch.long, device=dev).index_add_(0, region, touches.long()) > 0
        limit.check_time("the partition (before its adjacency)")
        region_words = words[representative]
        adjacency = facet_pairs(model, bx, cells, found, bits, part.vanishing, region, region_words, widths,
                                lambda: crossing_rule(model, bx.low, bx.high))
        pairs = adjacency.pairs
    limit.check_time("the partition (before its Chebyshev centres)")
    centres, radii, notes = _chebyshev(model, bx, cells, found, bits, representative, chebyshev, limit)
    gradients = out[representative, :d].transpose(1, 2)  # (R, k, d)
    offsets = out[representative, d]
    axes = [[float(i == j) for i in range(d)] for j in range(d)]
    limit.check_time("the partition (before its linear pieces)")
    with torch.no_grad():
        decided = same_affine_pairs(model, bits[representative], gradients, pairs, axes)  # exact where doubtful
    same = decided.same
    seconds = watch.seconds()
    pairs = pairs.cpu()
    notes += _partition_notes(adjacency.unmatched, adjacency.probed, unresolved, doubtful, part.budget_spent, exact_budget,
                              certificate is None)
    notes.extend(decided.notes())
    return BoxPartition(
        model=model.name or model.describe(), box=bx, cells=cells, region=region, patterns=region_words,
        gradients=gradients, offsets=offsets, volumes=vol, bounded=~touched, pairs=pairs, same_affine=same,
        linear_pieces=linear_piece_count(R, pairs, same), centres=centres, inradii=radii,
        seconds=seconds, partition_seconds=partition_seconds, device=dev.type, engine=part.engine,
        notes=notes, tolerance_decisions=doubtful + unresolved + decided.open,
        exact_decisions=part.exact_decisions + decided.exact)

