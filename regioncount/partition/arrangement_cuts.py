"""All cuts of one layer of the FFN polygon subdivision at once: the arrangement of the layer's zero lines in
each starting polygon, built from its vertices (``docs/algorithms.md``, "Plane partitions by arrangements").

The layered subdivision (:mod:`regioncount.partition.plane2d`) cuts each starting polygon ``P`` (convex,
counter-clockwise) by the zero lines of its layer's maps.  Cutting line after line costs a few dozen tensor
operations per unit; here the whole arrangement is read at once, in a fixed number of operations per layer:

* the candidate lines' signs at ``P``'s vertices say which lines cross ``P`` (the crossing lines ``C_P``);
* each crossing line ``a`` meets ``P``'s boundary at two points, on the two edges where its sign changes;
* two crossing lines ``a``, ``b`` meet inside ``P`` exactly when ``b``'s signs at ``a``'s two boundary points
  differ (``b`` separates ``a``'s chord); their crossing is a vertex inside ``P``;
* along each chord the crossings are sorted by position, the order proven for consecutive ones (order along
  a line is transitive), and each crossing's signs against the other lines follow from the chord start's by
  flipping the lines crossed before it;
* every point (``P``'s vertices, boundary points, crossings) thus has its signs against every crossing line
  of ``P``; a point on ``k`` lines is a vertex of the ``2^k`` cells that take either sign on those lines,
  and the cells are the groups of equal sign keys (``1 + |C_P| + crossings`` of them, by Euler's formula,
  which is checked), the keys also being the cells' activation patterns;
* each vertex's outgoing edge in its cell (counter-clockwise) follows from the signs and the orientation of
  its two lines, and the successor of a vertex is the cell's other vertex on that edge's line; list ranking
  orders each cell.

Every sign is proven by its own error bound (:func:`~regioncount.partition.vertex_bounds.value_errors`, the
points' radii from :func:`~regioncount.partition.vertex_bounds.line_pair_radius`), exactly as the
line-by-line cuts of :func:`~regioncount.partition.polygon_proofs.cut_proven` prove theirs; where one is not
proven (a point on or very near a third line, a line through a vertex) the layer returns None and the caller
cuts it line by line.  The result is the same partition, with the same proofs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ..core.patterns import group_rows
from .polygon_proofs import LineTable, ProvenCuts, unit_maps
from .polygons import Polygons
from .vertex_bounds import MapErrors, line_pair_radius, value_errors

#: Bits of units' signs per int64 word of a cell's key: seven bytes (unit u is bit u % 8 of byte (u % 56) // 8 of
#: word u // 56), so that keys unpack bytewise and no sum of bits comes near the sign bit.
WORD_BITS = 56
#: Pairs of candidate lines (and candidate rows) per chunk of starting polygons: bounds the memory of one
#: chunk, about 200 bytes a pair (a polygon with more is a chunk of its own).
PAIRS_PER_CHUNK = 2**20
#: The most pairs of crossing lines one chunk may hold; a layer with a polygon crossed by more lines (a first
#: layer thousands of units wide) is cut line by line instead.
MAX_PAIRS = 2**22


class _Lines(NamedTuple):
    """The crossing lines of a chunk's cut polygons, grouped by polygon: maps (K, 3) and their errors, units
    (K,), line ids (K,), group (K,) with its first row (K,) and size (K,), and the signs' values ``f`` (K, V)
    at the polygon's vertices."""

    maps: torch.Tensor
    errors: torch.Tensor
    units: torch.Tensor
    ids: torch.Tensor
    group: torch.Tensor
    first: torch.Tensor
    size: torch.Tensor
    f: torch.Tensor


class _Points(NamedTuple):
    """Points of the arrangement: coordinates (N, 2), radii (N,), and sign keys (N, W) (bits of the crossing
    lines on whose positive side each point lies)."""

    xy: torch.Tensor
    radius: torch.Tensor
    words: torch.Tensor


class _Incidences(NamedTuple):
    """Vertices of cells before grouping: the point (I,), the polygon group (I,), the key (I, W), and the line ids
    of the cell's edges leaving and entering the vertex, counter-clockwise (I,)."""

    point: torch.Tensor
    group: torch.Tensor
    words: torch.Tensor
    out: torch.Tensor
    into: torch.Tensor


def _partners(first: torch.Tensor, size: torch.Tensor, skip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For items with groups of rows ``[first, first + size)`` (N,) and local rows to leave out ``skip`` (N, k)
    (ascending in each row): every (item (M,), row (M,)) pair of an item with a row of its group not left out."""
    count = size - skip.shape[1]
    owner = torch.repeat_interleave(torch.arange(first.shape[0], device=first.device), count)
    local = torch.arange(owner.shape[0], device=first.device) - _take(torch.cumsum(count, 0) - count, owner)
    for column in range(skip.shape[1]):
        local += local >= skip[owner, column]
    return owner, _take(first, owner) + local


def _take(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``t[index]`` for an integer ``index`` of any shape, by ``index_select`` (a few times faster on the CPU)."""
    return t.index_select(0, index.reshape(-1)).view(*index.shape, *t.shape[1:])


def _values(xy: torch.Tensor, radius: torch.Tensor, maps: torch.Tensor, errors: torch.Tensor
            ) -> torch.Tensor | None:
    """The values (S, V) of maps (S, 3) at points (S, V, 2) with radii (S, V), or None where one's sign is not
    proven by its error bound (:func:`~regioncount.partition.vertex_bounds.value_errors`)."""
    f = torch.addcmul(torch.addcmul(maps[:, 2:], xy[..., 0], maps[:, :1]), xy[..., 1], maps[:, 1:2])
    return f if bool((f.abs() > value_errors(xy, radius, maps, errors)).all()) else None


def _add_bits(words: torch.Tensor, points: torch.Tensor, units: torch.Tensor) -> None:
    """Set the bits of ``units`` (M,) in the keys of ``points`` (M,) (each (point, unit) at most once)."""
    index = points * words.shape[1] + torch.div(units, WORD_BITS, rounding_mode="floor")
    words.view(-1).index_put_((index,), torch.ones_like(units) << (units % WORD_BITS), accumulate=True)


def _unpack(words: torch.Tensor, n: int) -> torch.Tensor:
    """(C, n) bool: the bits of units 0 .. n - 1 in keys (C, W)."""
    C, W = words.shape
    data = words.view(torch.uint8).view(C, W, 8)[..., :WORD_BITS // 8]  # little-endian bytes
    shifts = torch.arange(8, dtype=torch.uint8, device=words.device)
    bits = (data[..., None] >> shifts) & 1
    return bits.view(C, -1)[:, :n] == 1


def _bit_words(units: torch.Tensor, W: int) -> torch.Tensor:
    """(M, W) keys with the single bit of each unit (M,)."""
    out = torch.zeros(units.shape[0], W, dtype=torch.long, device=units.device)
    _add_bits(out, torch.arange(units.shape[0], device=units.device), units)
    return out


def cut_arrangement(polys: Polygons, radius: torch.Tensor, outgoing: torch.Tensor, lines: LineTable,
                    Z: torch.Tensor, EZ: MapErrors, candidates: torch.Tensor, positive: torch.Tensor, first_bit: int,
                    check: Callable[[int], None], pairs_per_chunk: int = PAIRS_PER_CHUNK) -> ProvenCuts | None:
    """The polygons (P0,) cut along the zero lines of the maps ``Z`` (P0, 3, n) (errors ``EZ``; ``candidates``
    (P0, n): the lines that may cross each polygon; ``positive`` (P0, n): the others' proven signs), every sign
    proven (see the module docstring); the same result as
    :func:`~regioncount.partition.polygon_proofs.cut_proven` (up to the order of the polygons and their first
    vertices), with each polygon's signs of all n maps.  Line j's pieces are registered as lines of bit
    ``first_bit + j``; ``check`` gets the polygon count as chunks finish.  None: a sign is not proven (the
    table's new lines are forgotten)."""
    mark = lines.mark()
    counts = candidates.sum(1)
    costs = counts * (counts + 1)  # pairs of candidate lines, and the candidates themselves
    ends = torch.cumsum(costs, 0)
    pieces: list[ProvenCuts] = []
    start, total, P0 = 0, 0, polys.count
    while start < P0:
        stop = int(torch.searchsorted(ends, ends[start] - costs[start] + pairs_per_chunk, right=True))
        stop = max(stop, start + 1)
        piece = _cut_chunk(polys, radius, outgoing, lines, Z, EZ, candidates, positive, first_bit,
                           torch.arange(start, min(stop, P0), device=counts.device))
        if piece is None:
            lines.rollback(mark)
            return None
        pieces.append(piece)
        total += piece.polys.count
        check(total + P0 - min(stop, P0))
        start = stop
    return _concatenate(pieces)


def _concatenate(pieces: list[ProvenCuts]) -> ProvenCuts:
    """One batch of the chunks' polygons, padded to the widest."""
    V = max(int(p.polys.xy.shape[1]) for p in pieces)

    def pad(t: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        if t.shape[1] == V:
            return t
        last = t[torch.arange(t.shape[0], device=t.device), n - 1][:, None]
        return torch.cat([t, last.expand(-1, V - t.shape[1], *t.shape[2:])], 1)

    xy = torch.cat([pad(p.polys.xy, p.polys.n) for p in pieces])
    n = torch.cat([p.polys.n for p in pieces])
    active = [p.active for p in pieces if p.active is not None]
    return ProvenCuts(Polygons(xy, n), torch.cat([p.origin for p in pieces]),
                      torch.cat([pad(p.radius, p.polys.n) for p in pieces]),
                      torch.cat([pad(p.outgoing, p.polys.n) for p in pieces]),
                      torch.cat(active) if len(active) == len(pieces) else None)


def _cut_chunk(polys: Polygons, radius: torch.Tensor, outgoing: torch.Tensor, lines: LineTable, Z: torch.Tensor,
               EZ: MapErrors, candidates: torch.Tensor, positive: torch.Tensor, first_bit: int, chunk: torch.Tensor
               ) -> ProvenCuts | None:
    """:func:`cut_arrangement` on the starting polygons ``chunk`` (Q,)."""
    signs = _take(positive, chunk)  # (Q, n): completed below with the candidates that do not cross
    crossing = _crossing_lines(polys, radius, Z, EZ, candidates, chunk, signs)
    if crossing is None:
        return None
    cut_rows, found = crossing
    uncut = chunk[~cut_rows]
    kept = ProvenCuts(Polygons(_take(polys.xy, uncut), _take(polys.n, uncut)), uncut, _take(radius, uncut),
                      _take(outgoing, uncut), signs[~cut_rows])
    if found is None:
        return kept
    cut, crossing_lines = found
    if int((crossing_lines.size - 1).sum()) > MAX_PAIRS:
        return None
    ids = lines.reserve_units(first_bit + crossing_lines.units)
    lines.fill(crossing_lines.maps, crossing_lines.errors)
    crossing_lines = crossing_lines._replace(ids=ids)
    cells = _arrangement(Polygons(_take(polys.xy, cut), _take(polys.n, cut)), _take(radius, cut),
                         _take(outgoing, cut).long(), lines, crossing_lines, Z.shape[2])
    if cells is None:
        return None
    xy, n, r, out, group, words = cells
    active = _take(signs[cut_rows], group)
    active |= _unpack(words, Z.shape[2])  # a key holds only the polygon's crossing lines, the rest are False
    return _concatenate([kept, ProvenCuts(Polygons(xy, n), _take(cut, group), r, out.to(xy.dtype), active)])


def _crossing_lines(polys: Polygons, radius: torch.Tensor, Z: torch.Tensor, EZ: MapErrors,
                    candidates: torch.Tensor, chunk: torch.Tensor, signs: torch.Tensor
                    ) -> tuple[torch.Tensor, tuple[torch.Tensor, _Lines] | None] | None:
    """Which polygons of ``chunk`` some line crosses (Q,) and, if any, those polygons (G,) and their crossing
    lines, every sign at their vertices proven (None: one is not); the candidates that do not cross set
    their sign in ``signs`` (Q, n)."""
    local, units = candidates.index_select(0, chunk).nonzero(as_tuple=True)
    cells = chunk.index_select(0, local)
    maps, errors = unit_maps(Z, cells, units), EZ.entries(cells, units)
    valid = polys.valid().index_select(0, cells)
    f = _values(polys.xy.index_select(0, cells), torch.where(valid, radius.index_select(0, cells), 0.0), maps,
                errors)
    if f is None:
        return None
    above = ((f > 0) & valid).any(1)
    across = above & ((f < 0) & valid).any(1)
    whole = (above & ~across).nonzero().flatten()
    signs[local[whole], units[whole]] = True
    rows = across.nonzero().flatten()
    cut_rows = torch.zeros(chunk.shape[0], dtype=torch.bool, device=chunk.device)
    if rows.numel() == 0:
        return cut_rows, None
    cut_rows[local[rows]] = True
    owner, group, size = torch.unique_consecutive(local[rows], return_inverse=True, return_counts=True)
    first = (torch.cumsum(size, 0) - size)[group]
    found = _Lines(maps[rows], errors[rows], units[rows], units[rows], group, first, size[group], f[rows])
    return cut_rows, (chunk[owner], found)


def _arrangement(polys: Polygons, radius: torch.Tensor, outgoing: torch.Tensor, lines: LineTable,
                 crossing: _Lines, n_units: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The cells of the polygons (G,) cut by their crossing lines: vertices (C, V, 2), counts (C,), radii
    (C, V), outgoing line ids (C, V), the polygon of each cell (C,) and its key (C, W) (the bits of the
    crossing lines it is on the positive side of); None where a sign is not proven."""
    W = (n_units + WORD_BITS - 1) // WORD_BITS
    boundary = _boundary_points(polys, outgoing, lines, crossing)
    if boundary is None:
        return None
    points_b, edge_lines, forward = boundary
    pairs = _chord_signs(points_b, crossing)
    if pairs is None:
        return None
    owner, partner, signs = pairs
    G, V0 = polys.xy.shape[:2]
    device = polys.xy.device
    words_v = torch.zeros(G * V0, W, dtype=torch.long, device=device)
    row_v, k_v = (crossing.f > 0).nonzero(as_tuple=True)
    _add_bits(words_v, crossing.group[row_v] * V0 + k_v, crossing.units[row_v])
    words_b = torch.zeros(points_b.xy.shape[0], W, dtype=torch.long, device=device)
    hit = (signs > 0).nonzero(as_tuple=True)
    _add_bits(words_b, 2 * owner[hit[0]] + hit[1], crossing.units[partner[hit[0]]])
    points_b = points_b._replace(words=words_b)
    inner = _crossings(points_b, crossing, owner, partner, signs, W)
    if inner is None:
        return None
    points_i, a, b, turn = inner
    valid = polys.valid()
    points = _Points(torch.cat([polys.xy.reshape(-1, 2), points_b.xy, points_i.xy]),
                     torch.cat([radius.reshape(-1), points_b.radius, points_i.radius]),
                     torch.cat([words_v, words_b, points_i.words]))
    incidences = _incidences(points, valid, outgoing, crossing, edge_lines, forward, a, b, turn, W)
    expected = 1 + crossing.size.new_zeros(G).index_add_(0, crossing.group, torch.ones_like(crossing.group)) \
        + crossing.size.new_zeros(G).index_add_(0, crossing.group[a], torch.ones_like(a))
    return _cells(points, incidences, expected, lines.reserved)


def _boundary_points(polys: Polygons, outgoing: torch.Tensor, lines: LineTable, crossing: _Lines
                     ) -> tuple[_Points, torch.Tensor, torch.Tensor] | None:
    """Where each crossing line (K,) meets its polygon's boundary: two points per line (2K, rows 2k and
    2k + 1, along the polygon's vertex order), with their radii; the line ids of their edges (2K,); and
    whether the line is positive at the edge's forward end (2K,).  None: not exactly two edges change sign."""
    G, V0 = polys.xy.shape[:2]
    k = torch.arange(V0, device=polys.xy.device)[None]
    n = _take(polys.n, crossing.group)[:, None]
    nxt = torch.where(k + 1 < n, k + 1, 0).expand(crossing.f.shape[0], -1)
    f_next = torch.gather(crossing.f, 1, nxt)
    change = ((crossing.f > 0) != (f_next > 0)) & (k < n)
    if not bool((change.sum(1) == 2).all()):
        return None
    row, edge = change.nonzero(as_tuple=True)  # two per row, in vertex order
    cell = _take(crossing.group, row)
    at = row * V0 + edge  # (row, edge) in the (K, V0) tables
    fu, fv, ahead = _take(crossing.f.reshape(-1), at), _take(f_next.reshape(-1), at), _take(nxt.reshape(-1), at)
    points = polys.xy.reshape(-1, 2)
    xu, xv = _take(points, cell * V0 + edge), _take(points, cell * V0 + ahead)
    xy = torch.addcmul(xu, (fu / (fu - fv))[:, None], xv - xu)
    edge_lines = _take(outgoing.reshape(-1), cell * V0 + edge)
    coef, error = lines.tables()
    r = line_pair_radius(xy, _take(coef, edge_lines), _take(error, edge_lines), _take(crossing.maps, row),
                         _take(crossing.errors, row))
    if not bool(torch.isfinite(r).all()):
        return None
    return _Points(xy, r, xy.new_zeros(0)), edge_lines, fv > 0


def _chord_signs(points_b: _Points, crossing: _Lines) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Every other crossing line of the polygon at each line's two boundary points: (line (M,), other line (M,),
    values (M, 2)), proven (None: one is not)."""
    K = crossing.maps.shape[0]
    local = torch.arange(K, device=crossing.maps.device) - crossing.first
    owner, partner = _partners(crossing.first, crossing.size, local[:, None])
    xy = _take(points_b.xy.view(K, 2, 2), owner)
    signs = _values(xy, _take(points_b.radius.view(K, 2), owner), _take(crossing.maps, partner),
                    _take(crossing.errors, partner))
    if signs is None:
        return None
    return owner, partner, signs


def _crossings(points_b: _Points, crossing: _Lines, owner: torch.Tensor, partner: torch.Tensor,
               signs: torch.Tensor, W: int) -> tuple[_Points, torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The crossings of pairs of lines inside their polygon (T,): points with radii and keys (the signs of the
    other lines there), the two lines a < b (T,) and the sign of det(a, b) (T,); None where a sign or an
    orientation is not proven.

    Along each chord ``a`` its crossings are sorted by their float position and the order is proven for
    consecutive ones (the earlier lies on the chord's start side of the later's line); walking the chord, each
    crossed line flips its sign once, so a crossing's key is the chord start's with the lines crossed before it
    flipped: no line is evaluated at a crossing but the next one along the chord."""
    meet = ((signs[:, 0] > 0) != (signs[:, 1] > 0)).nonzero().flatten()  # b crosses a's chord (both orders)
    f0, f1 = signs[meet, 0], signs[meet, 1]
    position = f0 / (f0 - f1)
    order = torch.argsort(position)
    order = order[torch.argsort(owner[meet][order], stable=True)]
    meet, f0, position = _take(meet, order), _take(f0, order), _take(position, order)
    a, b = _take(owner, meet), _take(partner, meet)
    ends = _take(points_b.xy.view(-1, 2, 2), a)
    xy = torch.addcmul(ends[:, 0], position[:, None], ends[:, 1] - ends[:, 0])
    ma, mb = _take(crossing.maps, a), _take(crossing.maps, b)
    r = line_pair_radius(xy, ma, _take(crossing.errors, a), mb, _take(crossing.errors, b))
    if not bool(torch.isfinite(r).all()):  # a finite radius also proves the sign of det(a, b)
        return None
    earlier = (a[1:] == a[:-1]).nonzero().flatten()
    later_line = b[earlier + 1]
    values = _values(_take(xy, earlier)[:, None], _take(r, earlier)[:, None], _take(crossing.maps, later_line),
                     _take(crossing.errors, later_line))
    if values is None or not bool(((values[:, 0] > 0) == (f0[earlier + 1] > 0)).all()):
        return None
    keys = _walked_keys(_take(points_b.words.view(-1, 2, W)[:, 0], a), a, _take(crossing.units, b), f0 > 0)
    once = (a < b).nonzero().flatten()
    a, b, ma, mb = _take(a, once), _take(b, once), _take(ma, once), _take(mb, once)
    turn = (ma[:, 0] * mb[:, 1] - ma[:, 1] * mb[:, 0]) > 0
    return _Points(_take(xy, once), _take(r, once), _take(keys, once)), a, b, turn


def _walked_keys(start: torch.Tensor, chord: torch.Tensor, units: torch.Tensor, start_positive: torch.Tensor
                 ) -> torch.Tensor:
    """Keys (M, W) of the crossings along chords, sorted by chord (``chord`` (M,)) and position: the chord
    start's key ``start`` (M, W) with the lines crossed before each one flipped, and its own line's bit
    cleared (the crossing is on it).  ``units`` (M,): the crossing lines; ``start_positive`` (M,): their sign
    at the chord's start.  Prefix sums run on the words' 28-bit halves, so no int64 sum can overflow."""
    half = WORD_BITS // 2
    slot = units % WORD_BITS
    column = 2 * torch.div(units, WORD_BITS, rounding_mode="floor") + (slot >= half)
    flip = torch.zeros(units.shape[0], 2 * start.shape[1], dtype=torch.long, device=units.device)
    flip[torch.arange(units.shape[0], device=units.device), column] = torch.where(start_positive, -1, 1) << (slot % half)
    total = torch.cumsum(flip, 0)
    before = total - flip
    index = torch.arange(chord.shape[0], device=chord.device)
    starts = torch.ones_like(chord, dtype=torch.bool)
    starts[1:] = chord[1:] != chord[:-1]
    first = torch.cummax(torch.where(starts, index, 0), 0).values
    walked = before - _take(before, first)
    walked = walked[:, 0::2] + (walked[:, 1::2] << half)
    own = torch.where(start_positive[:, None], _bit_words(units, start.shape[1]), 0)
    return start + walked - own


def _incidences(points: _Points, valid: torch.Tensor, outgoing: torch.Tensor, crossing: _Lines,
                edge_lines: torch.Tensor, forward: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                turn: torch.Tensor, W: int) -> _Incidences:
    """The cells' vertices: each polygon vertex in one cell, each boundary point in the two cells on either side
    of its line, each crossing in the four around it; their keys and counter-clockwise edge lines."""
    G, V0 = valid.shape
    device = valid.device
    g_v, k_v = valid.nonzero(as_tuple=True)
    n = valid.sum(1)
    previous = torch.where(k_v == 0, _take(n, g_v) - 1, k_v - 1)
    vertex = g_v * V0 + k_v
    flat_out = outgoing.reshape(-1)
    K2 = edge_lines.shape[0]
    line_b = crossing.ids.repeat_interleave(2)
    unit_b = crossing.units.repeat_interleave(2)
    point_b = G * V0 + torch.arange(K2, device=device)
    bit_b = _bit_words(unit_b, W)
    # at a boundary point the cell on the line's forward side leaves along the edge, the other along the line
    group_b = crossing.group.repeat_interleave(2)
    plus_out = torch.where(forward, edge_lines, line_b)
    minus_out = torch.where(forward, line_b, edge_lines)
    T = a.shape[0]
    point_i = G * V0 + K2 + torch.arange(T, device=device)
    bit_a, bit_bb = _bit_words(_take(crossing.units, a), W), _bit_words(_take(crossing.units, b), W)
    id_a, id_b = _take(crossing.ids, a), _take(crossing.ids, b)
    group_i = _take(crossing.group, a)
    words_b, words_i = points.words[G * V0:G * V0 + K2], points.words[G * V0 + K2:]  # the points in order
    parts = [(vertex, g_v, _take(points.words, vertex), _take(flat_out, vertex), _take(flat_out, g_v * V0 + previous)),
             (point_b, group_b, words_b + bit_b, plus_out, torch.where(forward, line_b, edge_lines)),
             (point_b, group_b, words_b, minus_out, torch.where(forward, edge_lines, line_b))]
    for sa in (True, False):
        for sb in (True, False):
            # the edge along a leaves the vertex iff sign(a) sign(b) det(a, b) < 0
            along_a = turn != (sa == sb)
            key = words_i + (bit_a if sa else 0) + (bit_bb if sb else 0)
            parts.append((point_i, group_i, key, torch.where(along_a, id_a, id_b), torch.where(along_a, id_b, id_a)))
    return _Incidences(*(torch.cat([p[i] for p in parts]) for i in range(5)))


def _cells(points: _Points, inc: _Incidences, expected: torch.Tensor, line_count: int
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Group the incidences into cells by (polygon, key), check Euler's count per polygon (``expected`` (G,)),
    chain each cell's vertices counter-clockwise and lay them out; None where the structure is not that of
    an arrangement (a sign decided wrongly cannot pass unnoticed)."""
    device = inc.point.device
    cell, representative, _ = group_rows(torch.cat([inc.group[:, None], inc.words], 1))
    C = representative.shape[0]
    per_group = torch.zeros_like(expected).index_add_(0, _take(inc.group, representative),
                                                      torch.ones_like(representative))
    count = torch.zeros(C, dtype=torch.long, device=device).index_add_(0, cell, torch.ones_like(cell))
    if not (bool((per_group == expected).all()) and bool((count >= 3).all())):
        return None
    # the successor of a vertex is the one of its cell whose incoming line is its outgoing line: the two keys
    # sorted must agree (each once), and then the i-th smallest of each are a vertex and its successor
    sorted_in, order_in = torch.sort(cell * line_count + inc.into)
    sorted_out, order_out = torch.sort(cell * line_count + inc.out)
    if not bool((sorted_in == sorted_out).all()) or bool((sorted_in[1:] == sorted_in[:-1]).any()):
        return None
    successor = torch.empty_like(order_in).index_put_((order_out,), order_in)
    position = _ranks(successor, cell, representative, count)
    if position is None:
        return None
    V = int(count.max())
    slot = torch.full((C, V), -1, dtype=torch.long, device=device)
    slot[cell, position] = torch.arange(cell.shape[0], device=device)
    columns = torch.arange(V, device=device)[None]
    last = torch.gather(slot, 1, (count - 1)[:, None])
    slot = torch.where(columns < count[:, None], slot, last)
    if bool((slot < 0).any()):
        return None
    point = _take(inc.point, slot)
    return (_take(points.xy, point), count, _take(points.radius, point), _take(inc.out, slot),
            _take(inc.group, representative), _take(inc.words, representative))


def _ranks(successor: torch.Tensor, cell: torch.Tensor, representative: torch.Tensor, count: torch.Tensor
           ) -> torch.Tensor | None:
    """Each incidence's place (I,) in its cell's cycle of successors, counted from the cell's representative;
    None unless each cell is one cycle."""
    index = torch.arange(successor.shape[0], device=successor.device)
    root = _take(representative, cell)
    at_root = index == root
    pointer = torch.where(at_root, index, successor)
    steps = (~at_root).long()
    reach = 1
    while reach < int(count.max()):
        steps = steps + _take(steps, pointer)
        pointer = _take(pointer, pointer)
        reach *= 2
    if not bool((pointer == root).all()):
        return None
    sizes = _take(count, cell)
    return (sizes - steps) % sizes
