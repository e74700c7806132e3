"""DEQs with a general (non-triangular) W: batched fixed points and the float64 1-D pattern walk.

The walk's counts are proven afterwards by :mod:`regioncount.line.deq_proof` (rigorous error bounds) or decided
by the exact rational walk of :mod:`regioncount.exact.rational_deq` (``docs/exactness.md``).

On an activation pattern D = diag(d) the fixed point is affine: with M_D = I - W D,
``u = M_D^{-1} (U x + b)`` (pre-activations), ``z = D u`` (``docs/algorithms.md``).  A pattern is
*consistent* at x when u_j > 0 exactly where d_j = 1.

* :func:`regioncount.models.fixedpoint.solve_fixed_points` (its own module, which the model classes use): (damped)
  Picard iteration per point, stopped on each point's own residual, then an exact polish: take D from the
  iterate, solve M_D u = q, and accept only if u has the signs D (a few pattern updates are tried; points
  that still fail are reported, never hidden).
* :func:`walk_segment`: along x(t) = p + t v, u(t) = g t + h on the current pattern; the next breakpoint is
  the first t where a unit of the wrong orientation reaches zero; the pattern after it is settled by the
  lexicographic rule (a unit at zero is active iff its slope g_j > 0).  K walkers start at K cuts of the
  segment and advance in lock step; counts are stitched with
  ``R = sum r_k - (K - 1) + #{k : last pattern of k != first pattern of k+1}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..core.limits import Deadline
from ..core.tolerances import SETTLE_ZERO_RTOL
from ..models.fixedpoint import checked_solve, solve_fixed_points
from ..models.networks import DEQ, DTYPE
from .deq_proof import distinct_sequence
from .sink import merge_tolerance, slopes_differ

#: Bytes of activation patterns a walk keeps for its proof (:mod:`regioncount.line.deq_proof`); past it the walk
#: goes on without them and its decisions stay unproven.
PATTERN_MEMORY = 2**29


@dataclass
class WalkResult:
    activation_regions: int
    linear_pieces: int | None
    breakpoints: np.ndarray | None
    failures: int
    walkers: int
    steps: int
    #: decisions taken inside a tolerance band (merged or skipped near-coincident crossings, zero tests
    #: of units not meant to flip, slope comparisons within the relative tolerance)
    doubtful: int = 0
    #: the patterns met, in order along the segment, equal neighbours collapsed (N, m) bool
    #: (``keep_patterns``; None when they did not fit ``PATTERN_MEMORY``)
    sequence: torch.Tensor | None = None


class _Walkers:
    """K walkers, each on its own line x = p_k + t v_k: per-walker U v_k, U p_k + b, B v_k.

    Methods take ``idx`` (the walkers concerned) and work on their patterns (len(idx), m).
    """

    def __init__(self, model: DEQ, P: torch.Tensor, V: torch.Tensor, device: torch.device) -> None:
        model = model.to(device)
        self.W = model.W
        self.Uv = V @ model.U.T  # (K, m)
        self.Up_b = P @ model.U.T + model.b
        self.A = model.A
        self.Bv = V @ model.B.T  # (K, k)
        self.eye = torch.eye(self.W.shape[0], dtype=DTYPE, device=device)

    def affine(self, idx: torch.Tensor, active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(g, h) of the pre-activations u(t) = g t + h on each walker's pattern (K, m)."""
        M = self.eye - self.W[None] * active.to(DTYPE)[:, None, :]
        rhs = torch.stack([self.Uv[idx], self.Up_b[idx]], 2)
        sol = checked_solve(M, rhs)
        return sol[..., 0], sol[..., 1]

    def settle(self, idx: torch.Tensor, active: torch.Tensor, t: torch.Tensor, rounds: int,
               flipping: torch.Tensor | None = None):
        """Make each pattern consistent on (t, t + eps): a unit with u_j(t) ~ 0 is active iff g_j > 0.

        Returns (active, g, h, settled, doubtful): ``doubtful`` counts units other than ``flipping`` (the
        units crossing at t, (len(idx), m) bool) whose value was taken as zero by the tolerance."""
        settled = torch.zeros(active.shape[0], dtype=torch.bool, device=active.device)
        g, h = self.affine(idx, active)
        doubtful = 0
        for round_ in range(rounds):
            if round_:
                g, h = self.affine(idx, active)
            value = g * t[:, None] + h
            scale = g.abs() * t.abs()[:, None] + h.abs() + 1.0
            zero = value.abs() <= SETTLE_ZERO_RTOL * scale
            wanted = torch.where(zero, g > 0, value > 0)
            settled = (wanted == active).all(1)
            band = zero & (value != 0)
            if flipping is not None:
                band &= ~flipping
            doubtful = int(band.sum())
            if bool(settled.all()):
                break
            active = torch.where(settled[:, None], active, wanted)
        return active, g, h, settled, doubtful

    def slope(self, idx: torch.Tensor, active: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Output slope dy/dt on each walker's pattern: A (d * g) + B v, (K, k)."""
        return (g * active.to(DTYPE)) @ self.A.T + self.Bv[idx]


@dataclass
class _Walk:
    """Per-walker results of :func:`walk_lines`."""

    counts: torch.Tensor  # (K,) regions seen by each walker
    first: torch.Tensor  # (K, m) pattern just after the start
    last: torch.Tensor  # (K, m) pattern just before the end
    slope_changes: torch.Tensor | None  # (K,)
    first_slope: torch.Tensor | None  # (K, k)
    last_slope: torch.Tensor | None
    breakpoints: list[tuple[torch.Tensor, torch.Tensor]]  # (walker ids, t) per step
    failures: int
    steps: int
    doubtful: int = 0
    #: (walker ids, patterns) of the start and of every step, in order (``keep_patterns``)
    patterns: list[tuple[torch.Tensor, torch.Tensor]] | None = None


def walk_lines(model: DEQ, P: torch.Tensor, V: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor, *,
               device: torch.device, linear_pieces: bool = True, keep_breakpoints: bool = False,
               tau: float = 0.0, max_steps: int | None = None, keep_patterns: bool = False,
               deadline: Deadline | None = None) -> _Walk:
    """K walkers in lock step: walker k walks x = P_k + t V_k from t0_k to t1_k (all (K, d) / (K,)).

    Starting patterns come from :func:`solve_fixed_points` at the start points, settled by the
    lexicographic rule; each step moves every running walker to its next breakpoint.
    """
    m = model.width
    P, V = P.to(device, DTYPE), V.to(device, DTYPE)
    t, end = t0.to(device, DTYPE).clone(), t1.to(device, DTYPE)
    K = t.shape[0]
    everyone = torch.arange(K, device=device)
    state = _Walkers(model, P, V, device)
    fixed = solve_fixed_points(model, P + t[:, None] * V)
    active, g, h, settled, doubtful = state.settle(everyone, fixed.u > 0, t, m + 2)
    failures = int((~settled | ~fixed.ok).sum())
    first = active.clone()
    counts = torch.ones(K, dtype=torch.int64, device=device)
    slope_changes = torch.zeros(K, dtype=torch.int64, device=device) if linear_pieces else None
    first_slope = state.slope(everyone, active, g) if linear_pieces else None
    last_slope = first_slope.clone() if first_slope is not None else None
    running = torch.ones(K, dtype=torch.bool, device=device)
    points: list[tuple[torch.Tensor, torch.Tensor]] = []
    patterns = [(everyone, active.clone())] if keep_patterns else None
    kept = 0
    steps = 0
    limit = max_steps if max_steps is not None else 2**m + 2
    while bool(running.any()) and steps < limit:
        steps += 1
        if deadline is not None:
            deadline.check(f"the pattern walk (at step {steps:,})")
        idx = running.nonzero().flatten()
        gi, hi, ai, ti = g[idx], h[idx], active[idx], t[idx]
        leaving = torch.where(ai, gi < 0, gi > 0)
        crossing = torch.where(leaving & (gi != 0), -hi / gi, torch.full_like(hi, math.inf))
        # crossings just after t (within tau, but not on it) are skipped by the tolerance
        doubtful += int(((crossing > ti[:, None]) & (crossing <= ti[:, None] + tau)).sum())
        crossing = torch.where(crossing > ti[:, None] + tau, crossing, torch.full_like(hi, math.inf))
        nxt = crossing.amin(1)
        stop = nxt >= end[idx] - tau
        doubtful += int((stop & (nxt < end[idx])).sum())  # a crossing just before the end, dropped
        running[idx[stop]] = False
        move = idx[~stop]
        if move.numel() == 0:
            break
        t_new = nxt[~stop]
        flip = crossing[~stop] <= t_new[:, None] + tau
        doubtful += int((flip & (crossing[~stop] != t_new[:, None])).sum())  # near-coincident, merged
        new_active, g_new, h_new, ok, band = state.settle(move, active[move] ^ flip, t_new, m + 2, flip)
        doubtful += band
        failures += int((~ok).sum())
        if slope_changes is not None and last_slope is not None:
            new_slope = state.slope(move, new_active, g_new)
            differ = slopes_differ(new_slope, last_slope[move])
            doubtful += int((~differ & (new_slope != last_slope[move]).any(1)).sum())  # equal within rtol
            slope_changes[move] += differ.long()
            last_slope[move] = new_slope
        active[move], g[move], h[move], t[move] = new_active, g_new, h_new, t_new
        counts[move] += 1
        if keep_breakpoints:
            points.append((move.cpu(), t_new.cpu()))
        if patterns is not None:
            patterns.append((move, new_active))
            kept += new_active.numel() + 8 * move.numel()
            if kept > PATTERN_MEMORY:  # too many regions to prove afterwards: stop keeping them
                patterns = None
    failures += int(running.sum())
    return _Walk(counts, first, active, slope_changes, first_slope, last_slope, points, failures, steps,
                 doubtful, patterns)


def walk_segment(model: DEQ, p: torch.Tensor, v: torch.Tensor, t_low: float, t_high: float, *,
                 walkers: int = 256, device: torch.device, linear_pieces: bool = True,
                 keep_breakpoints: bool = False, max_steps: int | None = None,
                 keep_patterns: bool = False, deadline: Deadline | None = None) -> WalkResult:
    """Exact count along x(t) = p + t v, t in [t_low, t_high], of a well-posed DEQ with any W.

    ``walkers`` walkers start at equally spaced cuts and each walks to the next cut (:func:`walk_lines`);
    the counts are stitched at the cuts.  ``failures`` counts walkers whose pattern could not be settled
    (their counts are unreliable).
    """
    K = max(1, int(walkers))
    cuts = torch.linspace(t_low, t_high, K + 1, dtype=DTYPE)
    cuts[0], cuts[-1] = t_low, t_high
    tau = merge_tolerance(t_low, t_high)
    p, v = p.to(DTYPE), v.to(DTYPE)
    walk = walk_lines(model, p.expand(K, -1), v.expand(K, -1), cuts[:-1], cuts[1:], device=device,
                      linear_pieces=linear_pieces, keep_breakpoints=keep_breakpoints, tau=tau,
                      max_steps=max_steps, keep_patterns=keep_patterns, deadline=deadline)
    boundary_changes = (walk.last[:-1] != walk.first[1:]).any(1)
    regions = int(walk.counts.sum()) - (K - 1) + int(boundary_changes.sum())
    pieces = None
    if linear_pieces:
        assert walk.last_slope is not None and walk.first_slope is not None and walk.slope_changes is not None
        boundary_slope = slopes_differ(walk.last_slope[:-1], walk.first_slope[1:])
        pieces = 1 + int(walk.slope_changes.sum()) + int((boundary_changes & boundary_slope).sum())
    breakpoints = None
    if keep_breakpoints:
        inner = cuts[1:-1][boundary_changes.cpu()]
        found = [tt for _, tt in walk.breakpoints]
        breakpoints = torch.sort(torch.cat(found + [inner])).values.numpy()
    sequence = None
    if walk.patterns is not None:
        ids = torch.cat([w for w, _ in walk.patterns])
        order = torch.sort(ids, stable=True).indices  # by walker, then in walking order
        sequence = distinct_sequence(torch.cat([pat for _, pat in walk.patterns])[order])
    return WalkResult(regions, pieces, breakpoints, walk.failures, K, walk.steps, walk.doubtful, sequence)


def count_lines(model: DEQ, P: torch.Tensor, Q: torch.Tensor, *, device: torch.device,
                deadline: Deadline | None = None) -> tuple[torch.Tensor, int, int]:
    """Activation-region counts (K,) along the segments P_k -> Q_k, one walker each, all batched (float64
    walks, not proven).  Returns the counts, the number of failed walkers and of decisions taken inside the
    tolerance band."""
    K = P.shape[0]
    zeros, ones = torch.zeros(K, dtype=DTYPE), torch.ones(K, dtype=DTYPE)
    walk = walk_lines(model, P.to(DTYPE), (Q - P).to(DTYPE), zeros, ones, device=device, linear_pieces=False,
                      tau=merge_tolerance(0.0, 1.0), deadline=deadline)
    return walk.counts.cpu(), walk.failures, walk.doubtful
