"""Which neighbouring regions compute the same affine output map, decided exactly where float64 doubts
(``docs/exactness.md``, "linear pieces in 2-D and d-D").

The output is continuous, so two regions that share a facet compute one affine map exactly when their
output Jacobians (k outputs x q input directions) are equal.  The float64 Jacobians are compared per
coordinate, each on its own scale: a pair is *clearly different* when some coordinate differs by more than
``SLOPE_RTOL`` of that coordinate's magnitude.  The magnitude includes the size of the terms summed into it
(|W_L| D |W_{L-1}| ... D |W_1| |V| for an FFN, |A| D |X| + |B| |V| for a DEQ with X = (I - W D)^-1 U V),
so that a coordinate obtained by cancellation is not compared on the scale of its tiny result; for a DEQ
the difference must also exceed the two Jacobians' proven error bounds (an ill-conditioned I - W D makes
them wide: :func:`deq_jacobian_bounds`).  Every other
pair, bitwise equal ones included (rounding can hide a kink of 2^-60), is decided again from the exact
rational Jacobians of the two patterns, within a budget of rational operations; what the budget leaves
open is counted as a decision left to the tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from ..core.errors import NotWellPosedError
from ..core.tolerances import SLOPE_RTOL
from ..exact.rational1d import fractions_of
from ..exact.rational_deq import PatternMaps
from ..line.forward_error import INFLATE, gamma
from ..models.networks import DEQ, DTYPE, FFN, Model
from .exact_cells import ExactCells
from .pattern_bounds import pattern_affine_u_bounded

#: Estimated rational operations spent on exact Jacobians per partition (about a second of Python).
EXACT_PIECE_BUDGET = 4e6

Jacobian = tuple[tuple[Fraction, ...], ...]  # (k, q)


@dataclass(frozen=True)
class PieceDecisions:
    """``same`` (E,) bool: the pair computes one affine map; ``exact`` pairs decided in rational arithmetic,
    ``open`` pairs left to the float64 comparison (budget spent)."""

    same: torch.Tensor
    exact: int
    open: int

    def notes(self) -> list[str]:
        """The warning the output owes its reader: comparisons left to the tolerance, if any."""
        out = []
        if self.open:
            out.append(f"{self.open} comparisons of neighbouring output maps left to the float64 tolerance "
                       f"(exact budget spent): linear pieces approximate")
        return out


def _masks(model: Model, bits: torch.Tensor) -> list[torch.Tensor]:
    """Per hidden layer (FFN) or the one DEQ layer: the activation masks (R, n) as float64."""
    if isinstance(model, FFN):
        out, start = [], 0
        for width in model.hidden_widths:
            out.append(bits[:, start:start + width].to(DTYPE))
            start += width
        return out
    return [bits.to(DTYPE)]


def jacobian_magnitudes(model: Model, bits: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """(R, k, q) magnitudes of the terms summed into each region's output Jacobian along ``directions``
    (d, q): the same chain as the Jacobian with every factor replaced by its absolute value."""
    model = model.to(bits.device)
    V = directions.abs()
    if isinstance(model, FFN):
        h = V.expand(bits.shape[0], -1, -1)  # (R, d, q)
        for (weight, mask) in zip(model.weights[:-1], _masks(model, bits)):
            h = (weight.abs() @ h) * mask[:, :, None]
        return model.weights[-1].abs() @ h
    return deq_jacobian_bounds(model, bits, directions)[0]


def deq_jacobian_bounds(model: DEQ, bits: torch.Tensor, directions: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """For a DEQ's regions (patterns ``bits`` (R, m)): the magnitudes (R, k, q) of the terms of each output
    Jacobian ``A D X + B V`` along ``directions`` (d, q), X = (I - W D)^-1 U V, and a bound (R, k, q) on the
    computed Jacobian's distance from the exact one: ``|A| D E_X`` from the verified solve's bound E_X on X
    (:func:`~regioncount.partition.pattern_bounds.pattern_affine_u_bounded`), plus the rounding of the
    products and the sum (gamma_(m + d + 1) times the magnitude)."""
    model = model.to(bits.device)
    mask = bits.to(DTYPE)
    q = directions.shape[1]
    origin = torch.zeros(model.U.shape[1], dtype=DTYPE, device=bits.device)
    coef, coef_error = pattern_affine_u_bounded(model, bits, (origin, directions))
    X, E = coef[:, :q].transpose(1, 2), coef_error[:, :q].transpose(1, 2)  # (R, m, q)
    magnitude = model.A.abs() @ (X.abs() * mask[:, :, None]) + (model.B.abs() @ directions.abs())[None]
    rounding = gamma(model.width + directions.shape[0] + 1) * magnitude
    return magnitude, ((model.A.abs() @ (E * mask[:, :, None]) + rounding) * INFLATE).nan_to_num(nan=torch.inf)


class ExactJacobians:
    """Exact output Jacobians (k x q) along exact ``directions`` per activation pattern, cached: the masked
    layer chain of an FFN (:meth:`ExactCells.ffn_layer` with the directions as the embedding), or
    ``A D a + B V`` for a DEQ with ``a`` the exact slopes of u^D (:class:`PatternMaps`)."""

    def __init__(self, model: Model, directions: Sequence[Sequence[float]]) -> None:
        self.model = model
        q = len(directions)
        self.V = [[Fraction(float(v)) for v in column] for column in directions]  # q columns of length d
        self.cache: dict[tuple[bool, ...], Jacobian] = {}
        if isinstance(model, FFN):
            self.cells = ExactCells(model, [0.0] * q, [0.0] * q, ([0.0] * len(self.V[0]), directions))
            self.readout = fractions_of(model.weights[-1])
            self.cost = q * sum(w.numel() for w in model.weights)
        else:
            assert isinstance(model, DEQ)
            self.maps = PatternMaps(model, None, directions)
            self.A = fractions_of(model.A)
            self.BV = [[sum((b * v for b, v in zip(row, col)), Fraction(0)) for col in self.V]
                       for row in fractions_of(model.B)]
            m = model.width
            self.cost = m ** 3 // 3 + m * m * q + model.A.numel() * q

    def _ffn(self, bits: tuple[bool, ...]) -> Jacobian:
        q = len(self.V)
        if not self.cells.starts[-1]:  # no hidden layer: the readout alone
            last: list[tuple[Fraction, ...]] = [tuple(col[k] for col in self.V) for k in range(len(self.V[0]))]
        else:
            layer = len(self.cells.starts) - 2
            first = self.cells.starts[layer]
            last = [a if bits[first + i] else (Fraction(0),) * q
                    for i, (a, _) in enumerate(self.cells.ffn_layer(layer, bits))]
        return tuple(tuple(sum((w * a[c] for w, a in zip(row, last) if w), Fraction(0)) for c in range(q))
                     for row in self.readout)

    def _deq(self, bits: tuple[bool, ...]) -> Jacobian:
        maps = self.maps(bits)
        if maps is None:  # excluded by a certificate; possible under assume_well_posed
            raise NotWellPosedError("I - W D is singular (exactly) for an activation pattern of the partition: "
                                    "the DEQ is not well-posed")
        return tuple(tuple(sum((w * maps[j][0][c] for j, w in enumerate(row) if w and bits[j]), self.BV[i][c])
                           for c in range(len(self.V))) for i, row in enumerate(self.A))

    def __call__(self, bits: tuple[bool, ...]) -> Jacobian:
        if bits not in self.cache:
            self.cache[bits] = self._ffn(bits) if isinstance(self.model, FFN) else self._deq(bits)
        return self.cache[bits]


def same_affine_pairs(model: Model, bits: torch.Tensor, gradients: torch.Tensor, pairs: torch.Tensor,
                      directions: Sequence[Sequence[float]], budget: float = EXACT_PIECE_BUDGET) -> PieceDecisions:
    """Decide for each adjacent pair (E, 2) of regions whether they compute the same affine map.

    ``bits`` (R, H) are the regions' activation patterns (hidden units in the model's order), ``gradients``
    (R, k, q) their float64 output Jacobians along the q ``directions`` (each a length-d input vector).
    """
    E = pairs.shape[0]
    if E == 0:
        return PieceDecisions(torch.zeros(0, dtype=torch.bool), 0, 0)
    device = gradients.device
    V = torch.tensor([list(map(float, col)) for col in directions], dtype=DTYPE, device=device).T  # (d, q)
    i, j = pairs[:, 0].to(device), pairs[:, 1].to(device)
    a, b = gradients[i].flatten(1), gradients[j].flatten(1)
    diff = (a - b).abs()
    scale = torch.maximum(a.abs(), b.abs())
    if isinstance(model, FFN):  # first pass: the all-active chain bounds every pattern's magnitudes
        everything = torch.ones(1, bits.shape[1], dtype=torch.bool, device=device)
        scale = torch.maximum(scale, jacobian_magnitudes(model, everything, V).flatten(1))
    same = ~(diff > SLOPE_RTOL * scale).any(1)
    if isinstance(model, DEQ) or bool(same.any()):  # the pairs left: each region's own magnitudes
        close = same.nonzero().flatten() if isinstance(model, FFN) else torch.arange(E, device=device)
        involved, where = torch.unique(torch.cat([i[close], j[close]]), return_inverse=True)
        n = close.numel()
        if isinstance(model, DEQ):  # a proven difference: beyond both Jacobians' error bounds (and the band)
            magnitude, error = (t.flatten(1) for t in deq_jacobian_bounds(model, bits.to(device)[involved], V))
            floor = error[where[:n]] + error[where[n:]]
        else:
            magnitude = jacobian_magnitudes(model, bits.to(device)[involved], V).flatten(1)
            floor = torch.zeros_like(diff[close])
        local = torch.maximum(torch.maximum(a[close].abs(), b[close].abs()),
                              torch.maximum(magnitude[where[:n]], magnitude[where[n:]]))
        same[close] = ~(diff[close] > torch.maximum(SLOPE_RTOL * local, floor)).any(1)
    doubtful = same.nonzero().flatten().tolist()
    if not doubtful:
        return PieceDecisions(same.cpu(), 0, 0)
    exact_jacobians = ExactJacobians(model, directions)  # exact weights: only when some pair needs them
    spent, decided = 0.0, 0
    rows = bits.cpu()
    pair_list = pairs.cpu()
    for e in doubtful:
        left, right = (tuple(bool(v) for v in rows[int(r)].tolist()) for r in pair_list[e].tolist())
        cost = exact_jacobians.cost * ((left not in exact_jacobians.cache) + (right not in exact_jacobians.cache))
        if spent + cost > budget:
            break
        spent += cost
        same[e] = exact_jacobians(left) == exact_jacobians(right)
        decided += 1
    return PieceDecisions(same.cpu(), decided, len(doubtful) - decided)


def linear_piece_count(regions: int, pairs: torch.Tensor, same: torch.Tensor) -> int:
    """Linear pieces of a partition into ``regions`` regions: the connected components of the graph whose
    edges are the adjacent pairs (E, 2) that compute one affine map (``same`` (E,))."""
    from scipy.sparse import coo_matrix  # the C connected components: 82k regions in 5 ms (networkx: 120 ms)
    from scipy.sparse.csgraph import connected_components

    joined = pairs[same].cpu().numpy()
    graph = coo_matrix((np.ones(joined.shape[0], dtype=np.int8), (joined[:, 0], joined[:, 1])),
                       shape=(regions, regions))
    return int(connected_components(graph, directed=False)[0])
