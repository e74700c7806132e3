"""Rigorous error bounds for the float64 vertices and vertex values of the cell subdivisions
(``docs/exact-dd.md``, "Decisions proven by their own conditioning").

A computed vertex ``x~`` of a cell carries a radius ``r`` with ``|x~ - x*|_inf <= r``, where ``x*`` is the
exact vertex (the point where its tight constraints, read from the stored weights as dyadic rationals,
meet).  Box corners have radius 0.  A cell's affine map ``f = a . x + c`` of a unit is computed with
coefficient errors ``E = |(a~, c~) - (a, c)|`` (entrywise, from the rounding of the layer products,
:class:`MapErrors`).  Then the computed value ``f~(x~)`` is within

    err = (||a~||_1 + ||E_a||_1) r + E_a . |x~| + E_c + gamma_{d+2} (|a~| . |x~| + |c~|) + (d + 2) 2^-1074

of the exact value ``f(x*)`` (:func:`value_errors`), so ``|f~| > err`` proves its sign.  A new vertex on
the edge from ``u`` (f > 0) to ``v`` (f < 0) is ``x* = u* + lam* (v* - u*)`` with ``lam* = f_u / (f_u - f_v)``
of the exact values; ``lam*`` lies in an interval from the enclosures ``[f~ - err, f~ + err]`` (and the
proven signs), whose midpoint gives ``x~`` and whose half-width, times the edge length, bounds the new
vertex's error (:func:`crossing`).  The radius is thus about ``u |x| / sin(angle)`` for a hyperplane
meeting the edge at a small angle: the conditioning of the vertex decides, not a fixed band.  Every bound is
inflated by ``INFLATE`` for its own rounding; NaN or inf never proves anything (callers test ``> err``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.magnitudes import safe_norm
from ..line.forward_error import INFLATE, SMALLEST_SUBNORMAL, UNIT_ROUNDOFF, gamma

#: ``maps_of(polytopes (E,), bits (E, k))`` -> the affine maps (E, k, d + 1) of those constraints on those
#: polytopes (slopes, then the constant) and their entrywise errors (E, k, d + 1).
ConstraintMaps = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class MapErrors:
    """Entrywise bounds on the rounding of a batch of affine maps (P, q, n) (q rows: slopes, then the
    constant; n units), kept in factored form so that no (P, q, n) tensor of bounds is ever built:

        E[p, r, j] <= row[p, r] w1[j] + norm[p, r] w2[j] + shared[r, j]  (+ dense[p, r, j])

    For a layer product ``Z = s W^T + b`` (:func:`layer_errors`): ``row`` bounds the input state's entrywise
    error per row, ``w1 = sum_k |W_jk|``, ``norm = gamma ||s_r||_2``, ``w2 = ||W_j||_2`` (Cauchy-Schwarz:
    ``|s_r| . |W_j| <= ||s_r|| ||W_j||``), ``shared`` the bias's rounding and an underflow term.  Triangular
    DEQ steps keep a small ``dense`` term instead."""

    row: torch.Tensor | None
    w1: torch.Tensor | None
    norm: torch.Tensor | None
    w2: torch.Tensor | None
    shared: torch.Tensor
    dense: torch.Tensor | None = None

    def rows(self, block: slice) -> MapErrors:
        """The bounds of the maps of the cells ``block`` (a slice of the first axis)."""
        return MapErrors(None if self.row is None else self.row[block], self.w1,
                         None if self.norm is None else self.norm[block], self.w2, self.shared,
                         None if self.dense is None else self.dense[block])

    def column(self, cells: torch.Tensor, j: int) -> torch.Tensor:
        """(S, q) bounds of unit j on the cells ``cells`` (S,)."""
        out = self.shared[:, j].expand(cells.shape[0], -1)
        if self.row is not None and self.w1 is not None:
            out = torch.addcmul(out, self.row[cells], self.w1[j])
        if self.norm is not None and self.w2 is not None:
            out = torch.addcmul(out, self.norm[cells], self.w2[j])
        if self.dense is not None:
            out = out + self.dense[cells, :, j]
        return out * INFLATE

    def entries(self, cells: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
        """(N, q) bounds of unit ``units[i]`` on cell ``cells[i]`` (both (N,))."""
        out = self.shared.T.index_select(0, units)  # gathers by index_select: several times faster than [...]
        if self.row is not None and self.w1 is not None:
            out = out + self.row.index_select(0, cells) * self.w1.index_select(0, units)[:, None]
        if self.norm is not None and self.w2 is not None:
            out = out + self.norm.index_select(0, cells) * self.w2.index_select(0, units)[:, None]
        if self.dense is not None:
            out = out + self.dense[cells, :, units]
        return out * INFLATE

    def weighted(self, weights: torch.Tensor) -> torch.Tensor:
        """(P, n): ``sum_r weights[p, r] E[p, r, :]`` for non-negative ``weights`` (P, q)."""
        out = weights @ self.shared
        if self.row is not None and self.w1 is not None:
            out += (weights * self.row).sum(1, keepdim=True) * self.w1
        if self.norm is not None and self.w2 is not None:
            out += (weights * self.norm).sum(1, keepdim=True) * self.w2
        if self.dense is not None:
            out += torch.einsum("pr,prn->pn", weights, self.dense)
        return out * INFLATE

    def row_max(self) -> torch.Tensor:
        """(P, q): the largest bound of each row over the units (the entrywise error of any masked map)."""
        P = next(t.shape[0] for t in (self.row, self.norm, self.dense) if t is not None) \
            if any(t is not None for t in (self.row, self.norm, self.dense)) else 1
        out = self.shared.amax(1)[None].expand(P, -1).clone() if self.shared.shape[1] else \
            self.shared.new_zeros(P, self.shared.shape[0])
        if self.row is not None and self.w1 is not None and self.w1.numel():
            out += self.row * self.w1.max()
        if self.norm is not None and self.w2 is not None and self.w2.numel():
            out += self.norm * self.w2.max()
        if self.dense is not None:
            out += self.dense.amax(2)
        return out * INFLATE


def layer_errors(state: torch.Tensor, state_rows: torch.Tensor | None, weight: torch.Tensor, bias: torch.Tensor,
                 exact: bool = False, shared: torch.Tensor | None = None) -> MapErrors:
    """:class:`MapErrors` of ``Z = fl(state @ W^T)`` with ``b`` added to the last row, for a computed
    ``state`` (P, q, w) whose entries in row r are within ``state_rows[p, r]`` (None: exact) of the exact
    ones.  ``exact``: the product itself is known to be exact (the identity times W, plus b on a zero row);
    ``shared`` (q, n): a further error common to every cell (a plane folded into the first layer)."""
    return product_errors(int(state.shape[1]), None if exact else safe_norm(state, 2), state_rows, weight, bias,
                          shared)


def product_errors(q: int, state_norm: torch.Tensor | None, state_rows: torch.Tensor | None, weight: torch.Tensor,
                   bias: torch.Tensor, shared: torch.Tensor | None = None) -> MapErrors:
    """:func:`layer_errors` of a state of ``q`` rows from its row norms ``state_norm`` (P, q)
    (``safe_norm(state, 2)``; None: the product is exact), for a state that is never built whole
    (:func:`~regioncount.partition.slice_maps.masked_products`)."""
    n, w = weight.shape
    g = gamma(w + 1)
    extra = torch.zeros(q, n, dtype=weight.dtype, device=weight.device) if shared is None else shared.clone()
    extra += (w + 2) * SMALLEST_SUBNORMAL
    if state_norm is None:
        norm = w2 = None
    else:
        norm, w2 = g * state_norm * INFLATE, safe_norm(weight, 1) * INFLATE
        extra[-1] += g * bias.abs()
    w1 = None if state_rows is None else weight.abs().sum(1) * INFLATE
    return MapErrors(state_rows, w1, norm, w2, extra * INFLATE)


def value_errors(x: torch.Tensor, radius: torch.Tensor | None, coef: torch.Tensor, coef_error: torch.Tensor
                 ) -> torch.Tensor:
    """(S, V) bounds on ``|fl(a~ . x~ + c~) - (a . x* + c)|`` at the vertices ``x`` (S, V, d) with radii
    ``radius`` (S, V) (None: exact vertices), for maps ``coef`` (S, d + 1) (slopes, then the constant) with
    entrywise errors ``coef_error`` (S, d + 1); or (S, V, m) for m maps per polytope at once (``coef`` and
    ``coef_error`` (S, d + 1, m))."""
    d = x.shape[2]
    if coef.dim() == 2 and d > COLUMNS_UP_TO:
        return value_errors(x, radius, coef[..., None], coef_error[..., None])[..., 0]
    a, c = coef[:, :d], coef[:, d]
    ea, ec = coef_error[:, :d], coef_error[:, d]
    g = gamma(d + 1)
    if coef.dim() == 2:  # one map per polytope in few dimensions: column by column (faster than 1 x d products)
        return _value_errors_columns(x, radius, a, c, ea, ec, g)
    weights = torch.addcmul(ea, a.abs(), torch.full_like(a, g))  # (S, d, m)
    err = (x.abs() @ weights).add_((ec + g * c.abs())[:, None])  # (S, V, m)
    if radius is not None:
        err.addcmul_(radius[..., None], (a.abs().sum(1) + ea.sum(1))[:, None])
    return err.add_((d + 2) * SMALLEST_SUBNORMAL).mul_(INFLATE)


#: Largest dimension whose single-map vertex bounds are summed column by column (measured on the CPU: 25% faster
#: than the batched product at d = 2, 15% at d = 4, slower at d = 8).
COLUMNS_UP_TO = 4


def _value_errors_columns(x: torch.Tensor, radius: torch.Tensor | None, a: torch.Tensor, c: torch.Tensor,
                          ea: torch.Tensor, ec: torch.Tensor, g: float) -> torch.Tensor:
    """:func:`value_errors` for one map per polytope (slopes ``a`` (S, d), constant ``c`` (S,), their errors),
    one coordinate at a time: the same bound by elementwise operations on contiguous columns."""
    err = (ec + g * c.abs())[:, None]  # (S, 1), then (S, V)
    slopes = torch.zeros_like(c)
    for i in range(x.shape[2]):
        size = a[:, i].abs()
        err = torch.addcmul(err, x[..., i].abs(), torch.addcmul(ea[:, i], size, size.new_tensor(g))[:, None])
        slopes += size + ea[:, i]
    if radius is not None:
        err.addcmul_(radius, slopes[:, None])
    return err.add_((x.shape[2] + 2) * SMALLEST_SUBNORMAL).mul_(INFLATE)


def crossing(xu: torch.Tensor, xv: torch.Tensor, ru: torch.Tensor, rv: torch.Tensor, fu: torch.Tensor,
             fv: torch.Tensor, eu: torch.Tensor, ev: torch.Tensor, interpolate: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """New vertices on the edges from ``xu`` (E, d) (exact value > 0) to ``xv`` (exact value < 0): the
    computed point and its radius (E,).  ``fu``, ``fv`` (E,) are the computed values, ``eu``, ``ev`` their
    error bounds, ``ru``, ``rv`` the ends' radii.  The exact ``lam* = A / (A + B)`` with ``A = f_u > 0`` in
    ``[max(fu - eu, 0), fu + eu]`` and ``B = -f_v > 0`` in ``[max(-fv - ev, 0), -fv + ev]`` lies in
    ``[A_lo / (A_lo + B_hi), A_hi / (A_hi + B_lo)]``, widened for rounding and clipped to [0, 1].  The point
    is at that interval's middle, or, with ``interpolate``, at the computed zero ``fu / (fu - fv)`` clipped to
    it (the radius then covers the larger side: up to twice as wide, but the point stays on the computed
    hyperplane, where later values of the same map are near zero)."""
    a_lo, a_hi = (fu - eu).clamp_min(0), fu + eu
    b_lo, b_hi = (-fv - ev).clamp_min(0), -fv + ev
    lam_lo = a_lo / (a_lo + b_hi)
    lam_hi = a_hi / (a_hi + b_lo)
    slack = 4 * UNIT_ROUNDOFF
    lam_lo = torch.nan_to_num(lam_lo * (1 - slack), nan=0.0).clamp(0.0, 1.0)
    lam_hi = torch.nan_to_num(lam_hi * (1 + slack), nan=1.0).clamp(0.0, 1.0)
    lam_hi = torch.maximum(lam_hi, lam_lo)
    if interpolate:
        lam = torch.nan_to_num(fu / (fu - fv), nan=0.5).clamp(0.0, 1.0)
        lam = torch.minimum(torch.maximum(lam, lam_lo), lam_hi)
        reach = torch.maximum(lam - lam_lo, lam_hi - lam)
    else:
        lam = (lam_lo + lam_hi) * 0.5
        reach = (lam_hi - lam_lo) * 0.5
    edge = xv - xu
    x = xu + edge * lam[:, None]
    span = edge.abs().amax(1)
    rounding = 3 * UNIT_ROUNDOFF * (xu.abs().amax(1) + span) + SMALLEST_SUBNORMAL
    radius = (torch.maximum(ru, rv) + span * reach + rounding) * INFLATE
    return x, radius


def line_pair_radius(x: torch.Tensor, first: torch.Tensor, first_error: torch.Tensor, second: torch.Tensor,
                     second_error: torch.Tensor) -> torch.Tensor:
    """(C,) bounds on ``|x~ - x*|_inf`` for computed points ``x`` (C, 2) of the plane meant to be the crossing
    ``x*`` of two exact lines ``a s + b t + c = 0`` within entrywise ``*_error`` (C, 3) of ``first`` and
    ``second`` (C, 3): ``||M*^-1||_inf ||M* x~ + c*||_inf`` with the 2 x 2 inverse by its adjugate,
    ``||adj(M*)||_inf / |det M*|``, and ``|det M* - det M~|`` bounded by the errors (``inf`` when that bound
    does not exclude a zero determinant)."""
    # one (12, C) block of contiguous rows: many small elementwise operations on contiguous vectors
    rows = torch.cat([first, second, first_error, second_error], 1).T.contiguous()
    a1, b1, c1, a2, b2, c2, ea1, eb1, ec1, ea2, eb2, ec2 = rows
    aa1, ab1, ac1, aa2, ab2, ac2 = rows[:6].abs()
    p, q = a1 * b2, a2 * b1
    det = p - q
    # |det M* - det M~| <= (|a1| + ea1) eb2 + ea1 |b2| + (|a2| + ea2) eb1 + ea2 |b1| + the products' rounding
    slack = (aa1 + ea1) * eb2 + ea1 * ab2 + (aa2 + ea2) * eb1 + ea2 * ab1 + 3 * UNIT_ROUNDOFF * (p.abs() + q.abs())
    margin = det.abs() - slack * INFLATE
    adjugate = torch.maximum(ab2 + eb2 + ab1 + eb1, aa2 + ea2 + aa1 + ea1)
    s, t = x.T.contiguous()
    abs_s, abs_t = s.abs(), t.abs()
    g = gamma(3)
    # |a s + b t + c| of each exact line: the computed value, its rounding and the entries' errors
    first_residual = (a1 * s + b1 * t + c1).abs() + (ea1 + g * aa1) * abs_s + (eb1 + g * ab1) * abs_t + ec1 + g * ac1
    second_residual = (a2 * s + b2 * t + c2).abs() + (ea2 + g * aa2) * abs_s + (eb2 + g * ab2) * abs_t + ec2 + g * ac2
    worst = torch.maximum(first_residual, second_residual)
    radius = (adjugate / margin * (worst + 4 * SMALLEST_SUBNORMAL) + SMALLEST_SUBNORMAL) * INFLATE
    return torch.where(margin > 0, torch.nan_to_num(radius, nan=torch.inf), torch.inf)


def centre_radii(x: torch.Tensor, radius: torch.Tensor | None, valid: torch.Tensor, counts: torch.Tensor
                 ) -> torch.Tensor:
    """(P,) bounds on ``|c~ - c*|_inf`` for the vertex means of cells with vertices ``x`` (P, V, d) and radii
    ``radius`` (P, V) (None: exact vertices): the exact mean of the exact vertices is within the largest
    radius of the computed mean of the computed ones, plus the rounding of V additions and one division
    (``(V + 1) u`` times the largest coordinate)."""
    reach = torch.where(valid[..., None], x.abs(), 0.0).amax((1, 2))
    rounding = (counts.to(x.dtype) + 2) * UNIT_ROUNDOFF * reach + SMALLEST_SUBNORMAL
    if radius is None:
        return rounding * INFLATE
    return (torch.where(valid, radius, 0.0).amax(1) + rounding) * INFLATE


def inverse_norm_bounds(M: torch.Tensor, EM: torch.Tensor) -> torch.Tensor:
    """(E,) upper bounds on ``||M*^-1||_inf`` for every matrix ``M*`` within ``EM`` (E, d, d) of the computed
    ``M`` (E, d, d), or ``inf`` where none is proven: with ``R ~ M^-1``, ``alpha = ||I - R M*|| <=
    ||I - fl(R M)|| + gamma_{d+1} || |R| |M| || + || |R| EM ||``, and ``alpha < 1`` gives
    ``||M*^-1|| <= ||R|| / (1 - alpha)``."""
    d = M.shape[-1]
    R, info = torch.linalg.inv_ex(M)
    R = torch.nan_to_num(R, nan=0.0, posinf=0.0, neginf=0.0)
    eye = torch.eye(d, dtype=M.dtype, device=M.device)
    absR = R.abs()
    alpha = (eye - R @ M).abs().sum(-1).amax(-1) \
        + (gamma(d + 1) * (absR @ M.abs()) + absR @ EM).sum(-1).amax(-1)
    alpha = alpha * INFLATE
    bound = absR.sum(-1).amax(-1) / (1 - alpha) * INFLATE
    ok = (info == 0) & (alpha < 1) & torch.isfinite(bound)
    return torch.where(ok, bound, torch.inf)


def constraint_residuals(x: torch.Tensor, maps: torch.Tensor, errors: torch.Tensor) -> torch.Tensor:
    """(E, k) bounds on ``|a_i . x~ + c_i|`` for the exact maps within ``errors`` of ``maps`` (E, k, d + 1)
    at the computed points ``x`` (E, d): the computed value, its rounding and the maps' errors."""
    d = x.shape[1]
    a, c = maps[..., :d], maps[..., d]
    g = gamma(d + 1)
    value = (a @ x[..., None])[..., 0] + c
    slack = ((errors[..., :d] + g * a.abs()) @ x.abs()[..., None])[..., 0] + errors[..., d] + g * c.abs()
    return (value.abs() + slack + (d + 2) * SMALLEST_SUBNORMAL) * INFLATE


def new_vertices(points: torch.Tensor, tight: torch.Tensor, fields: dict[str, torch.Tensor], s: torch.Tensor,
                 u: torch.Tensor, v: torch.Tensor, f: torch.Tensor, err: torch.Tensor, cut_map: torch.Tensor,
                 cut_error: torch.Tensor, bit: int, maps_of: ConstraintMaps | None = None,
                 interpolate: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The vertices where a cut meets the edges (``s``, ``u``, ``v``) (E,) of a batch of polytopes with
    vertices ``points`` (S, V, d), incidence words ``tight`` and per-vertex ``fields``
    (:class:`~regioncount.partition.polytopes.Polytopes`; ``u`` on the + side), and the new vertices' fields.

    The point is :func:`crossing`'s (``interpolate`` as there).  Its radius is the smaller of two bounds:
    :func:`crossing`'s, which
    grows with every generation of cuts (each step multiplies the ends' radii by about ``1 / sin`` of the
    cut's angle with the edge), and a fresh one from the vertex's own constraints, which does not: the edge's
    d - 1 constraints (basis rows of the ends tight at both ends, their maps from ``maps_of``) and the cut
    form ``M x + c = 0``, and ``|x~ - x*|_inf <= ||M*^-1||_inf ||M* x~ + c*||_inf``
    (:func:`inverse_norm_bounds`, :func:`constraint_residuals`).  The new vertex's basis is those d
    constraints."""
    d = points.shape[2]
    xu, xv = points[s, u], points[s, v]
    radius = fields.get("radius")
    ru = radius[s, u] if radius is not None else torch.zeros_like(xu[:, 0])
    rv = radius[s, v] if radius is not None else torch.zeros_like(xu[:, 0])
    x, r_new = crossing(xu, xv, ru, rv, f[s, u], f[s, v], err[s, u], err[s, v], interpolate)
    if "basis_bits" not in fields or maps_of is None:
        return x, {"radius": r_new}
    basis_bits = fields["basis_bits"]
    cand_bits = torch.cat([basis_bits[s, u], basis_bits[s, v]], 1)  # (E, 2d)
    common = tight[s, u] & tight[s, v]  # (E, K)
    words = torch.gather(common, 1, torch.div(cand_bits, 64, rounding_mode="floor"))
    in_common = ((words >> (cand_bits % 64)) & 1) == 1
    earlier = torch.ones(2 * d, 2 * d, dtype=torch.bool, device=x.device).tril(-1)
    repeated = ((cand_bits[:, :, None] == cand_bits[:, None, :]) & earlier[None] & in_common[:, None, :]).any(2)
    usable = in_common & ~repeated
    order = torch.argsort((~usable).to(torch.int8), dim=1, stable=True)[:, :d - 1]
    enough = usable.sum(1) >= d - 1
    rows_bits = torch.gather(cand_bits, 1, order)
    bits = torch.cat([rows_bits, torch.full((rows_bits.shape[0], 1), bit, dtype=rows_bits.dtype, device=x.device)], 1)
    if x.shape[0] == 0:
        return x, {"radius": r_new, "basis_bits": bits}
    # the fresh bound only where the inherited one has grown past FRESH_RATIO of the point's size (either
    # bound is rigorous; the fresh one costs a d x d inverse per vertex and is rarely smaller)
    grown = (enough & ~(r_new <= FRESH_RATIO * x.abs().amax(1).clamp_min(1.0))).nonzero().flatten()
    if grown.numel() == 0:
        return x, {"radius": r_new, "basis_bits": bits}
    rows, rows_err = maps_of(s[grown], rows_bits[grown])  # (G, d - 1, d + 1)
    maps = torch.cat([rows, cut_map[s[grown]][:, None]], 1)  # (G, d, d + 1)
    errors = torch.cat([rows_err, cut_error[s[grown]][:, None]], 1)
    fresh = inverse_norm_bounds(maps[..., :d], errors[..., :d]) * constraint_residuals(x[grown], maps, errors).amax(1)
    r_new = r_new.clone()
    r_new[grown] = torch.minimum(r_new[grown], torch.nan_to_num(fresh * INFLATE, nan=torch.inf))
    return x, {"radius": r_new, "basis_bits": bits}


#: A new vertex's inherited radius (:func:`crossing`) above this share of its size (at least 1) is tightened
#: by the fresh bound from its own constraints (:func:`new_vertices`).
FRESH_RATIO = 2.0**-30


def centre_doubts(pre: torch.Tensor, Z: torch.Tensor, EZ: MapErrors, bound: torch.Tensor, origin: torch.Tensor,
                   radius_c: torch.Tensor, d: int) -> torch.Tensor:
    """(P, n) the unit signs at the cells' centres that their error bounds do not prove.

    A child's centre lies in its parent's bounding box, so its value's error is at most the parent's
    ``bound`` (P0, n) plus the centre's radius times ``sum_r (|Z_r| + E_r)`` over the slope rows.  A coarse
    test with each parent's largest bounds first (one pass over (P, n)), then the entries it leaves with
    their own."""
    # per parent, the largest slope magnitude over its units: each row's largest entry, summed (no (P0, n) pass)
    slopes_max = (Z[:, :d].abs().amax(2) + EZ.row_max()[:, :d]).sum(1)  # (P0,)
    coarse = bound.amax(1).index_select(0, origin) + radius_c * slopes_max.index_select(0, origin)
    rows, cols = torch.gt(pre.abs(), torch.nan_to_num(coarse, nan=torch.inf)[:, None] * INFLATE
                          ).logical_not_().nonzero(as_tuple=True)
    parent = origin[rows]
    slopes = Z[parent, :d, cols].abs().sum(1) + EZ.entries(parent, cols)[:, :d].sum(1)
    fine = (bound[parent, cols] + radius_c[rows] * slopes) * INFLATE
    doubt = torch.zeros_like(pre, dtype=torch.bool)
    doubt[rows, cols] = ~(pre[rows, cols].abs() > fine)
    return doubt
