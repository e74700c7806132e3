"""Region adjacency of a DEQ with a general W, partitioned by pattern refinement
(:mod:`regioncount.partition.deq_cells`), from each facet's own values instead of probes
(``docs/exact-dd.md``, "Adjacency").

A cell accepted with pattern D has affine pre-activations ``u(D)(x)`` with ``s_i u_i(D) >= 0`` on it.
Take a facet F that is not on the box's boundary and the units whose ``u_i(D)`` is zero at every vertex
of F (the facet's zero units, Z):

* Z empty: every unit is nonzero on F's relative interior (an affine function of fixed sign on the cell
  that vanishes at a relative interior point of F vanishes on all of F), so by continuity of the fixed
  point (a well-posed DEQ) every sign holds just across F: the same pattern, the same region.
* Z = {j} and ``u_j(D)`` not zero on the whole cell: ``u_j(D)`` vanishes exactly on F's hyperplane and
  changes sign across it.  Just across F every other unit keeps its sign, so the pattern there is D or D with
  j flipped; D would give the fixed point ``u(D)``, whose ``u_j`` has the wrong sign there, and the fixed
  point is unique: it is D with j flipped.
* anything else (several units zero on the facet, a unit zero on the whole cell): not proven here; the
  caller decides those exactly (:mod:`regioncount.partition.facet_crossing`) from the facet's zero units
  (:func:`pattern_facet_zero_units`).

"Zero at a vertex" is the refinement's own test: within ``PLANE_DEQ_ZERO_TOL`` of the value's scale.  The
values inside that band at the vertices were settled by the refinement (structurally zero, decided in
rational arithmetic, or counted as decisions left to the tolerance).  Input-free units are zero
everywhere and never flip.
"""

from __future__ import annotations

import torch

from ..core.geometry import Box
from ..models.networks import DEQ, input_free_units
from .deq_cells import box_extent, pattern_affine_u, zero_tolerance
from .polytopes import Facets, Polytopes

#: Facets whose (vertex, unit) values are formed at once.
FACET_CHUNK = 1 << 14


def _zero_at_vertices(cells: Polytopes, coef: torch.Tensor, extent: torch.Tensor) -> torch.Tensor:
    """(P, V, m) whether ``u(D)`` of each cell's pattern is zero (within the refinement's tolerance) at each
    of its vertices (padding vertices count as zero, so they never decide "nonzero")."""
    d = cells.x.shape[2]
    values = cells.x @ coef[:, :d] + coef[:, d:]  # (P, V, m)
    return (values.abs() <= zero_tolerance(coef, extent)[:, None, :]) | ~cells.valid()[..., None]


def pattern_facet_neighbours(model: DEQ, bx: Box, cells: Polytopes, found: Facets, bits: torch.Tensor,
                             on_box: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pattern (F, m) across each facet where the argument of the module docstring proves it, and which
    facets those are (F,).  ``bits`` (P, m) are the cells' patterns; ``on_box`` (F,) the facets on the box's
    boundary (never proven: nothing is across)."""
    device = cells.x.device
    zero = _zero_at_vertices(cells, pattern_affine_u(model, bits), box_extent(bx, device))  # (P, V, m)
    silent = input_free_units(model).to(device)
    vanishing = (zero.all(1) & ~silent[None]).any(1)  # (P,): some unit is zero on the whole cell
    across = bits[found.owner].clone()
    proven = torch.zeros(found.owner.shape[0], dtype=torch.bool, device=device)
    for start in range(0, found.owner.shape[0], FACET_CHUNK):
        rows = slice(start, start + FACET_CHUNK)
        owner, mask = found.owner[rows], found.mask[rows]
        on_facet = (zero[owner] | ~mask[..., None]).all(1) & ~silent[None]  # (f, m): the facet's zero units
        count = on_facet.sum(1)
        ok = ~on_box[rows] & ~vanishing[owner] & (count <= 1)
        flip = on_facet & (count == 1)[:, None] & ok[:, None]
        across[rows] ^= flip
        proven[rows] = ok
    return across, proven


def pattern_facet_zero_units(model: DEQ, bx: Box, cells: Polytopes, owner: torch.Tensor, mask: torch.Tensor,
                             bits: torch.Tensor) -> torch.Tensor:
    """(f, m) the units whose ``u(D)`` (D the owner's pattern, ``bits`` (P, m)) is zero at every vertex of
    each facet (owner cell ``owner`` (f,), vertices ``mask`` (f, V)), input-free units left out."""
    if owner.numel() == 0:
        return torch.zeros(0, bits.shape[1], dtype=torch.bool, device=bits.device)
    coef = pattern_affine_u(model, bits[owner])
    sub = Polytopes(cells.x[owner], cells.n[owner], cells.tight[owner])
    zero = _zero_at_vertices(sub, coef, box_extent(bx, cells.x.device)) | ~mask[..., None]
    return zero.all(1) & ~input_free_units(model).to(bits.device)[None]
