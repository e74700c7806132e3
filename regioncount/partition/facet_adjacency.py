"""Region adjacency of a cell partition from its facets (``docs/exact-dd.md``, "Adjacency").

Two regions are adjacent when they share a facet.  The region across a facet is found, in order of cost:

* from the facet's incidences (layered subdivision: the facet's own unit, or coincident units of one layer,
  flip; :func:`facet_neighbours`) or its values (pattern refinement:
  :func:`~regioncount.partition.pattern_adjacency.pattern_facet_neighbours`);
* where several units of different layers are zero on the facet, or a unit's map vanishes on the cell, from
  the exact rule of :mod:`regioncount.partition.facet_crossing` (rational arithmetic, at most
  :data:`CROSSING_BUDGET` distinct cases);
* by a probe just across the facet's vertex mean only where neither decides (the rule's budget spent, a
  partition whose signs were left to the tolerance), and the partition says how many.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ..core.geometry import Box
from ..core.patterns import layer_words, match_rows, probe_pairs
from ..models.networks import DEQ, DTYPE, FFN, Model
from ..sampling.sampled import packed_patterns_at
from .facet_crossing import FacetCrossing, unit_ranks
from .pattern_adjacency import pattern_facet_neighbours, pattern_facet_zero_units
from .polytopes import Facets, Polytopes, facets, popcount

#: Most distinct (pattern, zero units) cases per partition whose crossing is decided in rational arithmetic
#: (each a few exact layer maps, cached); past it the rest are probed.
CROSSING_BUDGET = 20_000


def unpack_bits(words: torch.Tensor, first: int, count: int) -> torch.Tensor:
    """(F, count) bool: bits ``first .. first + count - 1`` of rows of int64 words (F, K)."""
    shifts = torch.arange(64, device=words.device)
    bits = ((words[..., None] >> shifts) & 1).bool().reshape(words.shape[0], -1)
    return bits[:, first:first + count]


def and_over(tight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(F, K) the bitwise AND of the words ``tight`` (F, V, K) over the vertices in ``mask`` (F, V)."""
    if tight.shape[1] == 0:
        return tight.new_full((tight.shape[0], tight.shape[2]), -1)
    words = torch.where(mask[..., None], tight, -1)
    while words.shape[1] > 1:  # halving: log2(V) large operations instead of V small ones
        half = words.shape[1] // 2
        folded = words[:, :half] & words[:, half:2 * half]
        if words.shape[1] % 2:
            folded[:, 0] &= words[:, -1]
        words = folded
    return words[:, 0]


def facet_neighbours(model: Model, d: int, cells: Polytopes, found: Facets, bits: torch.Tensor,
                      vanishing: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pattern (F, units) across each facet where it is proven, which facets those are (F,), and which
    lie on the box's boundary (no neighbour).  For the layered subdivision, whose constraint bits are the
    box faces and then the units.

    The units whose constraints hold on the whole facet but not on the whole cell are the facet's own.  If
    none is a box face and they are one unit, or (FFN) units of one layer, crossing the facet flips exactly
    them: every other unit is nonzero on the facet's relative interior (an affine function of fixed sign on
    the open cell, not zero at every vertex) and keeps its sign by continuity, and the facet's units have the
    same affine maps on both sides (the earlier layers' signs do not change) and vanish on the facet, so
    they change sign.  Not proven this way: a facet of coincident units from different layers (or DEQ
    positions: a later unit's map bends at the earlier one's hyperplane), and a cell on which a later unit's
    map vanishes (``vanishing`` (P, units); across the facet its map may not)."""
    units = bits.shape[1]
    facet_tight = and_over(cells.tight[found.owner], found.mask)
    cell_tight = and_over(cells.tight, cells.valid())[found.owner]
    own = facet_tight & ~cell_tight  # (F, K); bits 0 .. 2d - 1 (word 0, d <= 12) are the box's faces
    box_bits = (1 << (2 * d)) - 1
    on_box = (own[:, 0] & box_bits) != 0
    own[:, 0] &= ~box_bits
    count = popcount(own)
    rank = torch.tensor(unit_ranks(model), dtype=torch.long, device=bits.device)
    across = bits[found.owner]
    first = torch.zeros_like(count)
    single = (count == 1).nonzero().flatten()  # the usual facet: one unit's, found from its lowest set bit
    if single.numel():
        word = (own[single] != 0).long().argmax(1)
        low = own[single].gather(1, word[:, None])[:, 0]
        low = low & -low
        unit = word * 64 + torch.frexp(low.double().abs()).exponent.long() - 1 - 2 * d
        across[single, unit] ^= True
        first[single] = rank[unit]
    proven = ~on_box & (count == 1)
    several = (count > 1).nonzero().flatten()  # coincident units: proven when they are decided together
    if several.numel():
        flips = unpack_bits(own[several], 2 * d, units)
        lowest = torch.where(flips, rank[None], units).amin(1)
        together = ~(flips & (rank[None] != lowest[:, None])).any(1)
        across[several] ^= flips
        first[several] = lowest
        proven[several] = ~on_box[several] & together
    if vanishing is not None and units:
        later = vanishing[found.owner] & (rank[None] > first[:, None])
        proven &= ~later.any(1)
    return across, proven, on_box


def probed_pairs(model: Model, bx: Box, cells: Polytopes, found: Facets, region: torch.Tensor,
               region_words: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Pairs of regions sharing a facet: a probe just across each facet's vertex mean, looked up by pattern.
    Returns the pairs (E, 2) and the number of probes that matched no region."""
    device = cells.x.device
    size = max(h - lo for lo, h in zip(bx.low, bx.high))
    step = torch.minimum(found.depth * 1e-3, torch.full_like(found.depth, 1e-7 * size))
    probe = found.centre + found.normal * step[:, None]
    lo = torch.tensor(bx.low, dtype=DTYPE, device=device)
    hi = torch.tensor(bx.high, dtype=DTYPE, device=device)
    inside = ((probe > lo) & (probe < hi)).all(1)
    owners = region[found.owner[inside]]
    if owners.numel() == 0:
        return torch.zeros(0, 2, dtype=torch.long, device=device), 0
    return probe_pairs(owners, region_words, packed_patterns_at(model, probe[inside]))


class FacetPairs(NamedTuple):
    """Region adjacency from facets: the distinct pairs (E, 2) of regions sharing a facet (smaller id first),
    the facets whose neighbour matched no region, the facets probed, and those decided exactly."""

    pairs: torch.Tensor
    unmatched: int
    probed: int
    exact: int


def _zero_units(model: Model, bx: Box, cells: Polytopes, found: Facets, rows: torch.Tensor, bits: torch.Tensor,
                vanishing: torch.Tensor | None) -> torch.Tensor:
    """(f, units) the units zero on all of facets ``rows``: tight at every vertex (layered subdivision), or with
    its map vanishing on the cell; for a pattern refinement, zero at every vertex by the refinement's test."""
    owner, mask = found.owner[rows], found.mask[rows]
    if isinstance(model, DEQ) and model.unit_order is None:
        return pattern_facet_zero_units(model, bx, cells, owner, mask, bits)
    units = bits.shape[1]
    zero = unpack_bits(and_over(cells.tight[owner], mask), 2 * bx.dim, units)
    return zero if vanishing is None else zero | vanishing[owner]


def _exact_crossings(crossing: FacetCrossing, bits: torch.Tensor, zero: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The patterns across (f, units) of facets whose owners' patterns are ``bits`` (f, units) and whose zero
    units are ``zero`` (f, units), by the exact rule; which were decided (f,), and the exact cases taken
    (distinct (pattern, zero) pairs, at most :data:`CROSSING_BUDGET`)."""
    across = bits.clone()
    decided = torch.zeros(bits.shape[0], dtype=torch.bool, device=bits.device)
    answers: dict[tuple[tuple[bool, ...], tuple[int, ...]], list[bool] | None] = {}
    for row, (pattern, zeros) in enumerate(zip(bits.tolist(), zero.tolist())):
        key = (tuple(pattern), tuple(j for j, z in enumerate(zeros) if z))
        if key not in answers:
            if len(answers) >= CROSSING_BUDGET:
                continue
            answers[key] = crossing(key[0], key[1]) if key[1] else None
        answer = answers[key]
        if answer is not None:
            across[row] = torch.tensor(answer, dtype=torch.bool)
            decided[row] = True
    return across, decided, len(answers)


def _matched_pairs(region: torch.Tensor, owner: torch.Tensor, region_words: torch.Tensor, across: torch.Tensor,
                   widths: list[int] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs (owner's region, region whose pattern is ``across``) and which rows found such a region."""
    index, matched = match_rows(region_words, layer_words(across, widths))
    return torch.stack([region[owner][matched], index[matched]], 1), matched


def facet_pairs(model: Model, bx: Box, cells: Polytopes, found: Facets, bits: torch.Tensor,
                vanishing: torch.Tensor | None, region: torch.Tensor, region_words: torch.Tensor,
                widths: list[int] | None, crossing: Callable[[], FacetCrossing] | None = None) -> FacetPairs:
    """The regions sharing each facet (module docstring): from the facets' incidences or values where they
    prove the neighbour, by the exact rule ``crossing()`` (built only when needed; None: none) where several
    zero units leave them silent, by probes across the rest."""
    dev = cells.x.device
    R = region_words.shape[0]
    if isinstance(model, FFN) or model.unit_order is not None:  # constraint bits name the units
        across, proven, on_box = facet_neighbours(model, bx.dim, cells, found, bits, vanishing)
    else:  # pattern refinement: a fresh bit per cut, so the facets' own values name the flipped unit
        assert isinstance(model, DEQ)
        box_bits = (1 << (2 * bx.dim)) - 1
        on_box = (and_over(cells.tight[found.owner], found.mask)[:, 0] & box_bits) != 0
        across, proven = pattern_facet_neighbours(model, bx, cells, found, bits, on_box)
    found_pairs = [torch.zeros(0, 2, dtype=torch.long, device=dev)]
    if bool(proven.any()):
        rows = proven.nonzero().flatten()
        pairs, matched = _matched_pairs(region, found.owner[rows], region_words, across[rows], widths)
        found_pairs.append(pairs)
        proven[rows[~matched]] = False  # no such region (it cannot happen when the argument holds): probe
    exact = 0
    rows = (~proven & ~on_box).nonzero().flatten()
    if rows.numel() and crossing is not None:
        zero = _zero_units(model, bx, cells, found, rows, bits, vanishing)
        crossed, decided, exact = _exact_crossings(crossing(), bits[found.owner[rows]].cpu(), zero.cpu())
        rows, crossed = rows[decided.to(dev)], crossed[decided].to(dev)
        pairs, matched = _matched_pairs(region, found.owner[rows], region_words, crossed, widths)
        found_pairs.append(pairs)
        proven[rows[matched]] = True
    probe = ~proven & ~on_box
    rest = Facets(found.owner[probe], found.mask[probe], found.centre[probe], found.normal[probe],
                  found.offset[probe], found.depth[probe])
    probed, unmatched = probed_pairs(model, bx, cells, rest, region, region_words)
    pairs = torch.sort(torch.cat([*found_pairs, probed]), 1).values
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    code = torch.unique(pairs[:, 0] * R + pairs[:, 1])  # distinct pairs in lexicographic order (fast 1-D)
    return FacetPairs(torch.stack([code // R, code % R], 1), unmatched, int(probe.sum()), exact)


def region_pairs(model: Model, bx: Box, cells: Polytopes, bits: torch.Tensor, vanishing: torch.Tensor | None,
                 region: torch.Tensor, region_words: torch.Tensor, widths: list[int] | None,
                 constraints: int | None = None, crossing: Callable[[], FacetCrossing] | None = None
                 ) -> FacetPairs:
    """:func:`facet_pairs` on the cells' own facets.  ``constraints``: the cells' constraint bits (default
    2d + units, the layered subdivision's; a pattern refinement has one per cut)."""
    count = 2 * bx.dim + bits.shape[1] if constraints is None else constraints
    return facet_pairs(model, bx, cells, facets(cells, count), bits, vanishing, region, region_words, widths,
                       crossing)
