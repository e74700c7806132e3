"""Chebyshev centres: the largest ball inside each region of a partition (``docs/exact-dd.md``).

For a polytope {x : n_f . x <= o_f} with unit normals n_f, the largest inscribed ball solves the LP
``max r  s.t.  n_f . x + r <= o_f``.  Partitions hold tens of thousands of such LPs of d + 1 variables and a
few dozen constraints each, so :func:`inscribed_balls` solves them all at once: a batched primal-dual
interior-point method (Mehrotra's predictor-corrector) whose Newton systems are (d + 1) x (d + 1) per
polytope, started from a point known to be inside each polytope (its vertex mean) in coordinates centred
there and scaled by the polytope's own size, so that a sliver is solved to the same relative accuracy as a
large cell.  Polytopes it does not settle (an interior point that is not strictly inside in floats, or no
convergence) go to :func:`chebyshev_balls`, sparse LPs solved by scipy's HiGHS, which also serves regions
given by constraints alone; of HiGHS's ball (whose centre can lie a feasibility tolerance, ~1e-7 of the data,
outside a sliver) and the interior-point method's, the larger is kept.  Either way the reported radius is
the distance from the returned centre to the nearest facet (0 if none is inside), so centre and radius
describe a ball inside the polytope up to rounding; where the method converged, the radius is optimal to
about 1e-11 of itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

#: Polytopes per sparse LP of :func:`chebyshev_balls` (measured: 64 and 1,024 are slower).
CHEBYSHEV_CHUNK = 256
#: Polytopes per batch of the interior-point method (bounds its (batch, facets, d + 1) arrays).
IPM_BATCH = 16_384
#: Interior-point iterations before a polytope is handed to the LP solver.
IPM_MAX_ITERATIONS = 60
#: Convergence: the duality gap relative to the radius, and the residuals (coordinates scaled to the polytope's
#: size), below this.
IPM_TOLERANCE = 1e-11


def inscribed_balls(owner: torch.Tensor, normal: torch.Tensor, offset: torch.Tensor, inner: torch.Tensor, P: int,
                    check: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Chebyshev centres (P, d) and radii (P,) of P polytopes given by their facets ``normal`` (F, d, unit) and
    ``offset`` (F,), with normal . x <= offset inside, ``owner`` (F,) naming each facet's polytope, and a
    point ``inner`` (P, d) inside each (e.g. its vertex mean).  Batched interior-point method; the polytopes
    it does not settle are solved by :func:`chebyshev_balls`.  ``check()`` is called before each batch."""
    d = normal.shape[1]
    centres = torch.empty(P, d, dtype=normal.dtype, device=normal.device)
    radii = torch.empty(P, dtype=normal.dtype, device=normal.device)
    settled = torch.zeros(P, dtype=torch.bool, device=normal.device)
    order = torch.argsort(owner, stable=True)
    owner, normal, offset = owner[order], normal[order], offset[order]
    counts = torch.bincount(owner, minlength=P)
    starts = torch.cumsum(counts, 0) - counts
    for first in range(0, P, IPM_BATCH):
        if check is not None:
            check()
        last = min(P, first + IPM_BATCH)
        lo, hi = int(starts[first]), int(starts[last - 1] + counts[last - 1])
        got = _ipm_batch(owner[lo:hi] - first, normal[lo:hi], offset[lo:hi], inner[first:last], last - first)
        centres[first:last], radii[first:last], settled[first:last] = got
    rest = (~settled).nonzero().flatten()
    if rest.numel():
        keep = (~settled)[owner]
        renumber = torch.full((P,), -1, dtype=torch.long, device=owner.device)
        renumber[rest] = torch.arange(rest.numel(), device=owner.device)
        c, _ = chebyshev_balls(renumber[owner[keep]], normal[keep], offset[keep], rest.numel(), check=check)
        lp_centre = centres.clone()
        lp_centre[rest] = torch.from_numpy(c).to(centres)
        lp_radius = _nearest_facet(owner, normal, offset, lp_centre, P)
        # the larger of the two balls (HiGHS's centre can lie a feasibility tolerance outside a sliver)
        better = ~settled & ~(radii.nan_to_num(-torch.inf) >= lp_radius)
        centres[better], radii[better] = lp_centre[better], lp_radius[better]
    return centres.cpu().numpy(), radii.clamp_min(0.0).cpu().numpy() + 0.0


def _nearest_facet(owner: torch.Tensor, normal: torch.Tensor, offset: torch.Tensor, centre: torch.Tensor, P: int
                   ) -> torch.Tensor:
    """(P,) the distance from each polytope's ``centre`` to its nearest facet (negative outside): the radius
    of the largest ball about it inside the polytope."""
    gap = offset - (normal * centre[owner]).sum(1)
    return torch.full((P,), torch.inf, dtype=gap.dtype, device=gap.device).scatter_reduce_(0, owner, gap, "amin")


def _ipm_batch(owner: torch.Tensor, normal: torch.Tensor, offset: torch.Tensor, inner: torch.Tensor, P: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch of :func:`inscribed_balls` (facets sorted by ``owner``): centres (P, d), radii (P,), and
    which polytopes were settled (P,)."""
    d = normal.shape[1]
    dt, dev = normal.dtype, normal.device
    counts = torch.bincount(owner, minlength=P)
    slot = torch.arange(owner.shape[0], device=dev) - (torch.cumsum(counts, 0) - counts)[owner]
    Fmax = max(int(counts.max()), 1) if owner.numel() else 1
    mask = torch.zeros(P, Fmax, dtype=torch.bool, device=dev)
    mask[owner, slot] = True
    depth = offset - (normal * inner[owner]).sum(1)  # distance from the inner point to each facet's plane
    scale = torch.zeros(P, dtype=dt, device=dev).scatter_reduce_(0, owner, depth, "amax")
    nearest = torch.full((P,), torch.inf, dtype=dt, device=dev).scatter_reduce_(0, owner, depth, "amin")
    usable = (nearest > 0) & (counts > d) & torch.isfinite(scale)
    A = torch.zeros(P, Fmax, d + 1, dtype=dt, device=dev)
    A[owner, slot, :d] = normal
    A[owner, slot, d] = 1.0
    b = torch.ones(P, Fmax, dtype=dt, device=dev)
    b[owner, slot] = depth / torch.where(usable, scale, 1.0)[owner]
    z, converged = _mehrotra(A, b, mask, usable)
    centre = inner + z[:, :d] * torch.where(usable, scale, 0.0)[:, None]
    radius = _nearest_facet(owner, normal, offset, centre, P)  # the ball about the centre
    # settled: converged, and the ball at the returned centre is as large as the LP's optimum says
    settled = usable & converged & (radius >= (z[:, d] - 1e-9) * scale)
    return centre, radius, settled


@dataclass
class _LPs:
    """The LPs ``max y_last s.t. A y <= b`` still iterated: their data ``A`` (m, F, k) (padding rows zero, with
    ``b`` = 1 and ``live`` = 0), the iterates y (m, k), slacks s and multipliers lam (m, F), and ``rows``,
    their indices in the batch."""

    rows: torch.Tensor
    A: torch.Tensor
    b: torch.Tensor
    live: torch.Tensor
    y: torch.Tensor
    s: torch.Tensor
    lam: torch.Tensor

    @property
    def facets(self) -> torch.Tensor:
        return self.live.sum(1).clamp_min(1.0)

    def residuals(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Dual residual A^T lam - e_last (m, k), primal residual A y + s - b (m, F), and the mean
        complementarity mu (m,)."""
        rd = (self.A.transpose(1, 2) @ (self.lam * self.live)[..., None])[..., 0]
        rd[:, -1] -= 1.0
        rp = ((self.A @ self.y[..., None])[..., 0] + self.s - self.b) * self.live
        return rd, rp, (self.s * self.lam * self.live).sum(1) / self.facets

    def only(self, keep: torch.Tensor) -> _LPs:
        return _LPs(*(v[keep] for v in (self.rows, self.A, self.b, self.live, self.y, self.s, self.lam)))

    def newton(self, rd: torch.Tensor, rp: torch.Tensor, L: torch.Tensor, rc: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The Newton direction (dy, ds, dlam) for the complementarity target s lam = s lam - rc, from the
        Cholesky factor L of A^T (lam / s) A (normal equations)."""
        A, s, lam, live = self.A, self.s, self.lam, self.live
        D = lam / s * live
        rhs = -rd - (A.transpose(1, 2) @ (D * rp - rc / s * live)[..., None])[..., 0]
        dy = torch.cholesky_solve(rhs[..., None], L)[..., 0]
        dlam = (D * ((A @ dy[..., None])[..., 0] + rp) - rc / s) * live
        ds = -(rc + s * dlam) / lam * live
        return dy, ds, dlam

    def factor(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Cholesky factors of the normal matrices A^T (lam / s) A (m, k, k), slightly regularised, and
        which failed (singular)."""
        D = self.lam / self.s * self.live
        M = self.A.transpose(1, 2) @ (self.A * D[..., None])
        k = M.shape[1]
        ridge = 1e-300 + 1e-15 * M.diagonal(dim1=1, dim2=2).amax(1)
        L, info = torch.linalg.cholesky_ex(M + torch.eye(k, dtype=M.dtype, device=M.device) * ridge[:, None, None])
        return L, info != 0

    def advance(self, rd: torch.Tensor, rp: torch.Tensor, mu: torch.Tensor, L: torch.Tensor) -> None:
        """One predictor-corrector step (Mehrotra): the affine direction, the centring sigma = (mu_aff /
        mu)^3, the corrected direction, and steps of 0.995 of the way to the boundary."""
        s, lam, live = self.s, self.lam, self.live
        dy, ds, dlam = self.newton(rd, rp, L, s * lam * live)
        ap, ad = _step(s, ds, 1.0), _step(lam, dlam, 1.0)
        mu_aff = ((s + ap[:, None] * ds) * (lam + ad[:, None] * dlam) * live).sum(1) / self.facets
        sigma = (mu_aff / mu.clamp_min(1e-300)).clamp(0.0, 1.0) ** 3
        dy, ds, dlam = self.newton(rd, rp, L, (s * lam + ds * dlam - (sigma * mu)[:, None]) * live)
        ap, ad = _step(s, ds, 0.995), _step(lam, dlam, 0.995)
        self.y = self.y + ap[:, None] * dy
        self.s = s + ap[:, None] * ds
        self.lam = lam + ad[:, None] * dlam


def _mehrotra(A: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, usable: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """max y_last s.t. A y <= b for a batch (P, F, k) of LPs, rows outside ``mask`` padding (A = 0, b = 1),
    by Mehrotra's predictor-corrector from the strictly feasible y = (0, ..., 0, min b / 2), iterating only
    on the ``usable`` LPs not yet converged.  Returns y (P, k) and which LPs converged: the duality gap
    relative to the objective, and the residuals, below :data:`IPM_TOLERANCE`."""
    P, F, k = A.shape
    live = mask.to(A.dtype)
    y_out = torch.zeros(P, k, dtype=A.dtype, device=A.device)
    y_out[:, -1] = 0.5 * torch.where(mask, b, torch.inf).amin(1).clamp_max(1.0)
    converged = torch.zeros(P, dtype=torch.bool, device=A.device)
    rows = usable.nonzero().flatten()
    lps = _LPs(rows, A[rows], b[rows], live[rows], y_out[rows], torch.empty(0), torch.empty(0))
    lps.s = (lps.b - (lps.A @ lps.y[..., None])[..., 0]) * lps.live + (1 - lps.live)
    lps.lam = lps.live / lps.facets[:, None] + (1 - lps.live)
    for _ in range(IPM_MAX_ITERATIONS):
        rd, rp, mu = lps.residuals()
        objective = lps.y[:, -1].abs().clamp_min(1e-300)
        done = ((mu * lps.facets <= IPM_TOLERANCE * objective) & (rd.abs().amax(1) <= IPM_TOLERANCE)
                & (rp.abs().amax(1) <= IPM_TOLERANCE * objective))
        L, singular = lps.factor()
        finished = done | singular | ~torch.isfinite(lps.y).all(1)  # singular systems stay unconverged
        if bool(finished.any()):
            y_out[lps.rows[finished]] = lps.y[finished]
            converged[lps.rows[finished]] = done[finished]
            keep = ~finished
            lps, rd, rp, mu, L = lps.only(keep), rd[keep], rp[keep], mu[keep], L[keep]
        if lps.rows.numel() == 0:
            break
        lps.advance(rd, rp, mu, L)
    y_out[lps.rows] = lps.y  # out of iterations: unconverged
    return y_out, converged


def _step(v: torch.Tensor, dv: torch.Tensor, fraction: float) -> torch.Tensor:
    """(P,) the largest step <= 1 keeping v + step dv > 0 (times ``fraction``), per row."""
    ratio = torch.where(dv < 0, -v / dv, torch.inf).amin(1)
    return (fraction * ratio).clamp(max=1.0)


def chebyshev_balls(owner_t: torch.Tensor, normal_t: torch.Tensor, offset_t: torch.Tensor, P: int,
                    chunk: int = CHEBYSHEV_CHUNK, check: Callable[[], None] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Largest inscribed balls of P polytopes {x : normal_f . x <= offset_f, f of polytope p} (unit normals;
    ``owner_t`` (F,) names each constraint's polytope): maximise r_p subject to normal_f . x_p + r_p <=
    offset_f, by sparse LPs over ``chunk`` polytopes at a time (scipy's HiGHS; one LP per polytope would pay
    the solver's overhead per polytope, one LP for all grows faster than linearly); ``check()`` is called
    before each chunk (a deadline raises there).  Returns centres (P, d) and radii (P,)."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    d = normal_t.shape[1]
    owner = owner_t.cpu().numpy()
    order = np.argsort(owner, kind="stable")
    owner = owner[order]
    normal = normal_t.cpu().numpy()[order]
    offset = offset_t.cpu().numpy()[order]
    starts = np.searchsorted(owner, np.arange(0, P + chunk, chunk).clip(max=P))
    solution = np.empty((P, d + 1))
    for block, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
        first = block * chunk
        count = min(P, first + chunk) - first
        if count <= 0:
            break
        if check is not None:
            check()
        F = b - a
        rows = np.repeat(np.arange(F), d + 1)
        cols = ((owner[a:b] - first)[:, None] * (d + 1) + np.arange(d + 1)[None]).reshape(-1)
        vals = np.concatenate([normal[a:b], np.ones((F, 1))], 1).reshape(-1)
        A = coo_matrix((vals, (rows, cols)), shape=(F, count * (d + 1))).tocsr()
        cost = np.zeros(count * (d + 1))
        cost[d::d + 1] = -1.0
        low = np.full(count * (d + 1), -np.inf)
        low[d::d + 1] = 0.0
        res = linprog(cost, A_ub=A, b_ub=offset[a:b], bounds=np.stack([low, np.full_like(low, np.inf)], 1),
                      method="highs-ds")
        if res.status != 0:
            raise RuntimeError(f"the Chebyshev LP did not solve: {res.message}")
        solution[first:first + count] = res.x.reshape(count, d + 1)
    # the radius is >= 0 by its bound; the solver may return -0.0 or a tiny negative, which would print as "-0"
    return solution[:, :d], np.maximum(solution[:, d], 0.0) + 0.0
