"""Batched convex polytopes in R^d, described by their vertices and which constraints are tight at each,
and cut along hyperplanes all at once (``docs/exact-dd.md``).

A batch holds P polytopes: ``x`` (P, V, d) vertices (rows past ``n[p]`` are padding that repeats the first
vertex), ``n`` (P,) vertex counts and ``tight`` (P, V, K) int64 words, bit k of a vertex set when
constraint k (a box facet, or a unit's hyperplane that cut the polytope or one of its ancestors) holds with
equality there.  Vertices u, v span an edge exactly when the smallest face containing both, whose
vertices are those whose tight sets contain tight(u) & tight(v), has no third vertex.  The test is
combinatorial, so it also holds for degenerate polytopes (many hyperplanes through one vertex, a
hyperplane repeated), where counting tight constraints does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..core.patterns import group_rows, pack_bits
from .vertex_bounds import ConstraintMaps, new_vertices

#: Entries of the (pairs x vertices x words) containment test evaluated at once.
_CHUNK_ENTRIES = 1 << 22


def bit_mask(bit: int) -> tuple[int, int]:
    """(word, int64 mask) of constraint ``bit`` (64 constraints per word; bit 63 is the sign bit)."""
    word, offset = divmod(bit, 64)
    return word, (1 << offset) if offset < 63 else -(1 << 63)


def words_for(constraints: int) -> int:
    """Words per vertex that hold ``constraints`` incidence bits."""
    return max(1, -(-constraints // 64))


@dataclass
class Polytopes:
    """``fields`` holds optional per-vertex data (each (P, V, ...)), carried through selection, padding and
    cuts: ``radius`` (P, V) bounds each vertex's distance (max norm) from the exact vertex where its tight
    constraints meet; ``basis_bits`` (P, V, d) names d of those constraints that pin the vertex down (its
    basis; :mod:`regioncount.partition.vertex_bounds`)."""

    x: torch.Tensor
    n: torch.Tensor
    tight: torch.Tensor
    fields: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def radius(self) -> torch.Tensor | None:
        return self.fields.get("radius")

    @property
    def count(self) -> int:
        return int(self.x.shape[0])

    @property
    def V(self) -> int:
        return int(self.x.shape[1])

    def valid(self) -> torch.Tensor:
        """(P, V) mask of real (non-padding) vertices."""
        return torch.arange(self.V, device=self.x.device)[None, :] < self.n[:, None]

    def centres(self) -> torch.Tensor:
        """(P, d) vertex means: interior points of full-dimensional polytopes."""
        return (self.x * self.valid()[..., None]).sum(1) / self.n[:, None]

    def select(self, index: torch.Tensor) -> Polytopes:
        return Polytopes(self.x[index], self.n[index], self.tight[index],
                         {k: v[index] for k, v in self.fields.items()})

    def take(self, index: torch.Tensor, V: int) -> Polytopes:
        """Polytopes ``index`` with their first ``V`` vertex slots (V at least their largest count): a copy."""
        return Polytopes(self.x[index, :V], self.n[index], self.tight[index, :V],
                         {k: v[index, :V] for k, v in self.fields.items()})

    def padded(self, V: int) -> Polytopes:
        """The same polytopes with ``V`` vertex rows (V >= the largest count), padding repeating vertex 0."""
        if V == self.V:
            return self
        if V < self.V:
            return Polytopes(self.x[:, :V], self.n, self.tight[:, :V], {k: v[:, :V] for k, v in self.fields.items()})

        def pad(t: torch.Tensor) -> torch.Tensor:
            return torch.cat([t, t[:, :1].expand(-1, V - self.V, *t.shape[2:])], 1)

        return Polytopes(pad(self.x), self.n, pad(self.tight), {k: pad(v) for k, v in self.fields.items()})

    def has_bits(self, first: int, last: int) -> torch.Tensor:
        """(P, V) whether a real vertex has any constraint bit in [first, last) set."""
        hit = torch.zeros(self.count, self.V, dtype=torch.bool, device=self.x.device)
        for bit in range(first, last):
            word, mask = bit_mask(bit)
            hit |= (self.tight[..., word] & mask) != 0
        return hit & self.valid()


class PolytopeStore:
    """A growable batch of polytopes: rows are allocated with spare capacity (doubling), so adding the S
    children of a cut costs O(S), not a copy of every polytope (the cost of ``torch.cat`` per cut)."""

    def __init__(self, poly: Polytopes, capacity: int = 1024) -> None:
        self.count = poly.count
        cap = max(capacity, poly.count)
        self._arrays = {"x": poly.x, "n": poly.n, "tight": poly.tight, **{f"f:{k}": v for k, v in poly.fields.items()}}
        self._arrays = {k: self._allocate(v, cap) for k, v in self._arrays.items()}

    @staticmethod
    def _allocate(t: torch.Tensor, rows: int) -> torch.Tensor:
        out = torch.empty(rows, *t.shape[1:], dtype=t.dtype, device=t.device)
        out[:t.shape[0]] = t
        return out

    @property
    def V(self) -> int:
        return int(self._arrays["x"].shape[1])

    def view(self) -> Polytopes:
        """The polytopes held, as views (no copy)."""
        a, c = self._arrays, self.count
        return Polytopes(a["x"][:c], a["n"][:c], a["tight"][:c],
                         {k[2:]: v[:c] for k, v in a.items() if k.startswith("f:")})

    def widen(self, V: int) -> None:
        """Room for at least ``V`` vertices per polytope (padding repeats vertex 0), with a quarter to spare,
        so that a count growing one vertex at a time does not copy the store every time."""
        if V <= self.V:
            return
        extra = max(V, self.V + max(2, self.V // 4)) - self.V
        for k, t in self._arrays.items():
            if k != "n":
                self._arrays[k] = torch.cat([t, t[:, :1].expand(-1, extra, *t.shape[2:])], 1)

    def replace(self, slots: torch.Tensor, other: Polytopes) -> None:
        """Overwrite polytopes ``slots`` with ``other`` (padded to this store's V)."""
        other = other.padded(self.V)
        a = self._arrays
        a["x"][slots], a["n"][slots], a["tight"][slots] = other.x, other.n, other.tight
        for k, v in other.fields.items():
            if f"f:{k}" in a:
                a[f"f:{k}"][slots] = v

    def append(self, other: Polytopes) -> None:
        """Add ``other`` (padded to this store's V) after the polytopes held."""
        other = other.padded(self.V)
        need = self.count + other.count
        cap = self._arrays["x"].shape[0]
        if need > cap:
            while cap < need:
                cap *= 2
            self._arrays = {k: self._allocate(v[:self.count], cap) for k, v in self._arrays.items()}
        a, c = self._arrays, self.count
        a["x"][c:need], a["n"][c:need], a["tight"][c:need] = other.x, other.n, other.tight
        for k, v in other.fields.items():
            if f"f:{k}" in a:
                a[f"f:{k}"][c:need] = v
        self.count = need


@dataclass
class CellPartition:
    """A box cut into cells, as the partition engines return it: the cells and their patterns (P, units),
    output maps (P, d + 1, k), decisions left to the tolerance (``doubtful``), cells accepted with an
    uncuttable violation (``unresolved``), the number of constraint bits, the decisions made exactly, whether
    their budget ran out, the engine's name, and (layered subdivision) the units whose map vanishes on each
    cell (P, units)."""

    cells: Polytopes
    bits: torch.Tensor
    out: torch.Tensor
    doubtful: int
    unresolved: int
    constraints: int
    exact_decisions: int
    budget_spent: bool
    engine: str
    vanishing: torch.Tensor | None = None


def box(low: tuple[float, ...], high: tuple[float, ...], constraints: int, device: torch.device,
        dtype: torch.dtype = torch.float64) -> Polytopes:
    """The box [low, high] as one polytope: 2^d corners; constraint 2i is x_i = low_i, 2i + 1 is x_i = high_i
    (``constraints`` >= 2d sizes the incidence words)."""
    d = len(low)
    corners = torch.cartesian_prod(*[torch.tensor([0, 1], device=device)] * d).reshape(-1, d)
    lo = torch.tensor(low, dtype=dtype, device=device)
    hi = torch.tensor(high, dtype=dtype, device=device)
    x = torch.where(corners.bool(), hi, lo)
    tight = torch.zeros(x.shape[0], words_for(constraints), dtype=torch.int64, device=device)
    for i in range(d):
        for side in (0, 1):
            word, mask = bit_mask(2 * i + side)
            tight[:, word] |= torch.where(corners[:, i] == side, mask, 0)
    # each corner's basis: the d box faces through it
    V = x.shape[0]
    bits = 2 * torch.arange(d, device=device)[None] + corners.long()
    fields = {"radius": torch.zeros(1, V, dtype=dtype, device=device), "basis_bits": bits[None]}
    return Polytopes(x[None], torch.tensor([V], device=device), tight[None], fields)


def popcount(words: torch.Tensor) -> torch.Tensor:
    """Set bits per row of int64 words (..., K) -> (...,) (SWAR bit counting; torch has no popcount)."""
    x = words
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    x = (x * 0x0101010101010101) >> 56
    return (x & 0xFF).sum(-1)


def _crossing_edges(poly: Polytopes, above: torch.Tensor, below: torch.Tensor) -> torch.Tensor:
    """(E, 3) rows (polytope, u, v) of the edges from a vertex ``above`` to a vertex ``below`` the cut.

    Two vertices of an edge share at least d - 1 tight constraints (the edge's own), a cheap first test;
    the face test then runs on the pairs that pass it."""
    pairs = (above[:, :, None] & below[:, None, :]).nonzero()
    if pairs.shape[0] == 0:
        return pairs
    d = poly.x.shape[2]
    if d > 1:
        shared = popcount(poly.tight[pairs[:, 0], pairs[:, 1]] & poly.tight[pairs[:, 0], pairs[:, 2]])
        pairs = pairs[shared >= d - 1]
        if pairs.shape[0] == 0:
            return pairs
    valid = poly.valid()
    K = poly.tight.shape[2]
    is_edge = torch.empty(pairs.shape[0], dtype=torch.bool, device=pairs.device)
    step = max(1, _CHUNK_ENTRIES // (poly.V * K))
    for start in range(0, pairs.shape[0], step):
        s, u, v = pairs[start:start + step].unbind(1)
        common = poly.tight[s, u] & poly.tight[s, v]  # (c, K)
        inside = ((poly.tight[s] & common[:, None]) == common[:, None]).all(2) & valid[s]  # (c, V)
        is_edge[start:start + step] = inside.sum(1) == 2
    return pairs[is_edge]


def _assemble(poly: Polytopes, keep: torch.Tensor, owner: torch.Tensor, x_new: torch.Tensor,
              tight_new: torch.Tensor, fields_new: dict[str, torch.Tensor] | None = None) -> Polytopes:
    """Children: the kept vertices of each polytope, then its new vertices (``owner`` sorted ascending);
    the per-vertex fields that ``fields_new`` gives for the new vertices are carried, the others dropped."""
    S = poly.count
    device = poly.x.device
    kept = keep.sum(1)
    new = torch.bincount(owner, minlength=S)
    n = kept + new
    V = int(n.max())
    ks, kv = keep.nonzero().unbind(1)
    kslot = (torch.cumsum(keep.long(), 1) - 1)[ks, kv]
    first = torch.cumsum(new, 0) - new
    rank = torch.arange(owner.shape[0], device=device) - first[owner]
    nslot = kept[owner] + rank
    # one gather per array: every slot reads a kept vertex (padding: the child's first one), then the new
    # vertices are written over their slots (every child keeps a vertex: it has one on its side)
    V_old = poly.V
    flat = ks * V_old + kv
    first_kept = flat[torch.cumsum(kept, 0) - kept]  # (S,)
    source = first_kept[:, None].repeat(1, V)
    source[ks, kslot] = flat

    def place(old: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
        out = old.reshape(S * V_old, *old.shape[2:]).index_select(0, source.flatten()).view(S, V, *old.shape[2:])
        out[owner, nslot] = fresh
        return out

    fields = {k: place(v, fields_new[k]) for k, v in poly.fields.items() if fields_new and k in fields_new}
    return Polytopes(place(poly.x, x_new), n, place(poly.tight, tight_new), fields)


def split(poly: Polytopes, f: torch.Tensor, zero_tol: torch.Tensor, bit: int) -> tuple[Polytopes, Polytopes]:
    """Cut S polytopes, each with a vertex where the affine function ``f`` (S, V at the vertices) exceeds
    ``zero_tol`` (S,) and one where it is below ``-zero_tol``, into the children f >= 0 and f <= 0.

    A vertex with |f| <= zero_tol lies on the cut: it joins both children with constraint ``bit`` marked
    tight.  Every edge from a vertex above to one below gives a new vertex, the exact zero of the
    interpolated f (up to rounding), tight at the edge's common constraints and at ``bit``."""
    valid = poly.valid()
    above = (f > zero_tol[:, None]) & valid
    below = (f < -zero_tol[:, None]) & valid
    on = valid & ~above & ~below
    word, mask = bit_mask(bit)
    tight = poly.tight.clone()
    tight[..., word] |= torch.where(on, mask, 0)
    marked = Polytopes(poly.x, poly.n, tight)
    s, u, v = _crossing_edges(marked, above, below).unbind(1)
    fu, fv = f[s, u], f[s, v]  # (children carry no per-vertex fields)
    lam = (fu / (fu - fv))[:, None]
    x_new = poly.x[s, u] + (poly.x[s, v] - poly.x[s, u]) * lam
    tight_new = tight[s, u] & tight[s, v]
    tight_new[:, word] |= mask
    return (_assemble(marked, above | on, s, x_new, tight_new),
            _assemble(marked, below | on, s, x_new, tight_new))


def split_signed(poly: Polytopes, f: torch.Tensor, err: torch.Tensor, side: torch.Tensor, bit: int,
                 cut_map: torch.Tensor, cut_error: torch.Tensor, maps_of: ConstraintMaps | None = None,
                 interpolate: bool = False) -> tuple[Polytopes, Polytopes]:
    """Cut S polytopes along an affine function whose sign at every vertex is decided: ``side`` (S, V) is
    +1, 0 or -1 (proven by ``|f| > err`` or decided exactly), with ``f`` (S, V) the computed values and
    ``err`` their error bounds; ``cut_map`` (S, d + 1) is the function's map and ``cut_error`` its entrywise
    error; ``maps_of`` gives the maps of earlier constraints on a polytope (for the fresh radius bound of
    :func:`~regioncount.partition.vertex_bounds.new_vertices`).  Each polytope has a vertex on each strict side.
    Vertices with side 0 go to both children marked tight at ``bit``; each edge from a + vertex to a -
    vertex gives a new vertex, tight at the edge's common constraints and at ``bit``, placed by the
    enclosures of the two exact values and bounded by :func:`regioncount.partition.vertex_bounds.new_vertices` (its
    basis: the edge's constraints and the cut; ``interpolate``: placed at the computed zero, see
    :func:`~regioncount.partition.vertex_bounds.crossing`)."""
    valid = poly.valid()
    above = (side > 0) & valid
    below = (side < 0) & valid
    on = valid & (side == 0)
    word, mask = bit_mask(bit)
    tight = poly.tight.clone()
    tight[..., word] |= torch.where(on, mask, 0)
    marked = Polytopes(poly.x, poly.n, tight, poly.fields)
    s, u, v = _crossing_edges(marked, above, below).unbind(1)
    x_new, fields_new = new_vertices(marked.x, marked.tight, marked.fields, s, u, v, f, err, cut_map, cut_error, bit,
                                     maps_of, interpolate)
    tight_new = tight[s, u] & tight[s, v]
    tight_new[:, word] |= mask
    return (_assemble(marked, above | on, s, x_new, tight_new, fields_new),
            _assemble(marked, below | on, s, x_new, tight_new, fields_new))


def _or_over_vertices(tight: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(P, K) the bitwise OR of the words ``tight`` (P, V, K) over each polytope's real vertices."""
    words = torch.where(valid[..., None], tight, 0)
    while words.shape[1] > 1:  # halving: log2(V) large operations instead of V small ones
        half = words.shape[1] // 2
        folded = words[:, :half] | words[:, half:2 * half]
        if words.shape[1] % 2:
            folded[:, 0] |= words[:, -1]
        words = folded
    return words[:, 0]


def _facet_masks(poly: Polytopes, constraints: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct faces cut out by single constraints with at least d vertices: (F,) polytope index and
    (F, V) vertex masks; lower-dimensional faces are dropped by the caller's rank test.  Only the
    (polytope, constraint) pairs that some vertex of the polytope is tight on are examined."""
    d = poly.x.shape[2]
    valid = poly.valid()
    seen = _or_over_vertices(poly.tight, valid)  # (P, K): the constraints each polytope touches
    shifts = torch.arange(64, device=seen.device)
    touched = ((seen[..., None] >> shifts) & 1).bool().reshape(seen.shape[0], -1)[:, :constraints]
    cell, bit = touched.nonzero(as_tuple=True)
    word, value = bit // 64, torch.bitwise_left_shift(torch.ones_like(bit), bit % 64)
    owners, masks = [], []
    step = max(1, _CHUNK_ENTRIES // max(1, poly.V))
    for start in range(0, cell.shape[0], step):
        c, w, v = cell[start:start + step], word[start:start + step], value[start:start + step]
        on = ((poly.tight[c, :, w] & v[:, None]) != 0) & valid[c]  # (n, V): the vertices on the constraint
        keep = on.sum(1) >= d
        owners.append(c[keep])
        masks.append(on[keep])
    if not owners:
        return torch.zeros(0, dtype=torch.long, device=poly.x.device), valid[:0]
    owner, vertices = torch.cat(owners), torch.cat(masks)
    # two constraints with the same vertex set name one face: keep one row per (polytope, vertex set)
    packed = pack_bits(vertices)
    _, representative, _ = group_rows(torch.cat([owner[:, None], packed], 1))
    owner, vertices, packed = owner[representative], vertices[representative], packed[representative]
    keep = _maximal(owner, packed, poly.count)
    return owner[keep], vertices[keep]


def _maximal(owner: torch.Tensor, words: torch.Tensor, P: int) -> torch.Tensor:
    """Indices of the faces whose vertex set (packed ``words`` (F, W)) no other face of the same polytope
    strictly contains.  Every proper face lies in a facet and the constraints recorded at the vertices
    describe the polytope, so these are exactly its facets: a test on the incidences alone, with no
    tolerance (a face of many nearly coplanar vertices is told from a thin facet without measuring it)."""
    order = torch.argsort(owner, stable=True)
    owner, words = owner[order], words[order]
    counts = torch.bincount(owner, minlength=P)
    slot = torch.arange(owner.shape[0], device=owner.device) - (torch.cumsum(counts, 0) - counts)[owner]
    F = int(counts.max())
    table = torch.zeros(P, F, words.shape[1], dtype=torch.int64, device=owner.device)
    live = torch.zeros(P, F, dtype=torch.bool, device=owner.device)
    table[owner, slot], live[owner, slot] = words, True
    contained = torch.zeros(P, F, dtype=torch.bool, device=owner.device)
    eye = torch.eye(F, dtype=torch.bool, device=owner.device)
    step = max(1, _CHUNK_ENTRIES // max(1, F * F * words.shape[1]))
    for start in range(0, P, step):
        t = table[start:start + step]
        # inside[c, i, j]: face i's vertices are all among face j's (i != j; equal sets were merged)
        inside = ((t[:, :, None] & ~t[:, None, :]) == 0).all(3) & live[start:start + step, None, :] & ~eye
        contained[start:start + step] = inside.any(2)
    return order[~contained[owner, slot]]


@dataclass
class Facets:
    """The facets of a batch of polytopes: ``owner`` (F,) polytope, ``mask`` (F, V) its vertices,
    ``centre`` (F, d) vertex mean, ``normal`` (F, d) unit outward normal, ``offset`` (F,) with
    normal . x <= offset on the polytope, ``depth`` (F,) the distance from the polytope's vertex mean to the
    facet's plane; for d = 3, ``area`` (F,) each facet's area (measured while its vertices are gathered)."""

    owner: torch.Tensor
    mask: torch.Tensor
    centre: torch.Tensor
    normal: torch.Tensor
    offset: torch.Tensor
    depth: torch.Tensor
    area: torch.Tensor | None = None


#: Facets whose vertices are gathered at once (each padded to the largest vertex count of its chunk).
_FACET_CHUNK = 1 << 16


def facets(poly: Polytopes, constraints: int) -> Facets:
    """Every facet of every polytope (the maximal faces of single constraints, :func:`_maximal`), with its
    vertex mean and unit outward normal (the scatter matrix's least eigenvector).  Facets are taken in
    chunks sorted by vertex count, each gathering only its own vertices (a facet has far fewer than the
    largest polytope)."""
    d = poly.x.shape[2]
    owner, mask = _facet_masks(poly, constraints)
    sizes = mask.sum(1)
    order = torch.argsort(sizes, stable=True)
    owner, mask, sizes = owner[order], mask[order], sizes[order]
    inner = poly.centres()
    parts: list[tuple[torch.Tensor, torch.Tensor]] = []
    areas: list[torch.Tensor] = []
    for start in range(0, owner.shape[0], _FACET_CHUNK):
        o, m, n = owner[start:start + _FACET_CHUNK], mask[start:start + _FACET_CHUNK], sizes[start:start + _FACET_CHUNK]
        k = int(n.max())
        index = _first_columns(m, n, k)  # its vertices first
        live = (torch.arange(k, device=m.device)[None] < n[:, None]).to(poly.x.dtype)[..., None]
        pts = poly.x[o[:, None], index]  # (c, k, d)
        centre = (pts * live).sum(1) / n[:, None].to(pts.dtype)
        dev = (pts - centre[:, None]) * live
        normal = torch.linalg.eigh(dev.transpose(1, 2) @ dev)[1][:, :, 0]  # scatter matrices (c, d, d)
        sign = torch.where(((centre - inner[o]) * normal).sum(1) < 0, -1.0, 1.0).to(normal.dtype)
        parts.append((centre, normal * sign[:, None]))
        if d == 3:  # the facet's own vertices are at hand: its area now, not from a gather of every vertex slot
            areas.append(_polygon_areas(pts, live[..., 0] > 0, normal))
    if not parts:
        empty = poly.x.new_zeros(0, d)
        return Facets(owner, mask, empty, empty, poly.x.new_zeros(0), poly.x.new_zeros(0),
                      poly.x.new_zeros(0) if d == 3 else None)
    centre, normal = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    offset = (normal * centre).sum(1)
    return Facets(owner, mask, centre, normal, offset, offset - (normal * inner[owner]).sum(1),
                  torch.cat(areas) if d == 3 else None)


def _first_columns(mask: torch.Tensor, counts: torch.Tensor, k: int) -> torch.Tensor:
    """(F, k) the column indices of each row's True entries of ``mask`` (F, V), in order, padded with 0;
    ``counts`` (F,) the True entries per row (at most k)."""
    rows, cols = mask.nonzero(as_tuple=True)  # row-major: each row's entries in column order
    position = torch.arange(rows.shape[0], device=mask.device) - (counts.cumsum(0) - counts)[rows]
    index = torch.zeros(mask.shape[0], k, dtype=torch.long, device=mask.device)
    index[rows, position] = cols
    return index


def _polygon_areas(pts: torch.Tensor, mask: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """Areas of convex polygons given by unordered vertices (F, V, 3) in planes with unit ``normal``."""
    w = mask.to(pts.dtype)
    centre = (pts * w[..., None]).sum(1) / w.sum(1, keepdim=True)
    helper = torch.where((normal[:, :1].abs() < 0.9), torch.tensor([1.0, 0.0, 0.0], dtype=pts.dtype, device=pts.device),
                         torch.tensor([0.0, 1.0, 0.0], dtype=pts.dtype, device=pts.device))
    e1 = torch.linalg.cross(normal, helper)
    e1 = e1 / torch.linalg.vector_norm(e1, dim=1, keepdim=True)
    e2 = torch.linalg.cross(normal, e1)
    rel = pts - centre[:, None]
    u, v = (rel * e1[:, None]).sum(2), (rel * e2[:, None]).sum(2)
    return _shoelace(u, v, mask)


def _shoelace(u: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Areas of convex polygons from unordered vertex coordinates (F, V), relative to an interior point."""
    angle = torch.where(mask, torch.atan2(v, u), torch.full_like(u, 10.0))  # padding sorts last
    order = torch.argsort(angle, 1)
    u, v, m = torch.gather(u, 1, order), torch.gather(v, 1, order), torch.gather(mask, 1, order)
    n = m.sum(1)
    k = torch.arange(u.shape[1], device=u.device)[None]
    nxt = torch.where(k + 1 < n[:, None], k + 1, torch.zeros_like(k))
    cross = u * torch.gather(v, 1, nxt) - torch.gather(u, 1, nxt) * v
    return 0.5 * (cross * m).sum(1).abs()


def volumes(poly: Polytopes, found: Facets) -> torch.Tensor:
    """(P,) volumes for d <= 3: lengths (d = 1), shoelace areas (d = 2), and for d = 3 the sum over facets
    of area x distance to the vertex mean / 3."""
    d = poly.x.shape[2]
    valid = poly.valid()
    if d == 1:
        x = poly.x[..., 0]
        return torch.where(valid, x, -torch.inf).amax(1) - torch.where(valid, x, torch.inf).amin(1)
    if d == 2:
        rel = poly.x - poly.centres()[:, None]
        return _shoelace(rel[..., 0], rel[..., 1], valid)
    if d != 3:
        raise ValueError("volumes are computed for d <= 3")
    assert found.area is not None  # facets() measures each 2-D facet while it gathers its vertices
    return torch.zeros(poly.count, dtype=poly.x.dtype, device=poly.x.device).index_add_(
        0, found.owner, found.area * found.depth / 3)
