"""Float helpers shared by the 1-D walks: the zeros of a batch of affine maps inside their pieces, sorted,
merged by the tolerance rule or ordered exactly, and the split of pieces at them."""

from __future__ import annotations

import torch


def _count_near(x: torch.Tensor, tl: torch.Tensor, tr: torch.Tensor, tau: float,
                include_ends: bool = False) -> torch.Tensor:
    """Zeros strictly inside (tl, tr) but within tau of an end: decided by the tolerance, not exactly.
    With ``include_ends``, zeros exactly on an end count too (the cheap first-pass test)."""
    if include_ends:
        near = ((x >= tl) & (x <= tl + tau)) | ((x <= tr) & (x >= tr - tau))
    else:
        near = ((x > tl) & (x <= tl + tau)) | ((x < tr) & (x >= tr - tau))
    return near.sum()


def _split_once(tl: torch.Tensor, tr: torch.Tensor, x: torch.Tensor, inside: torch.Tensor, n_split: int):
    """Split each piece [tl, tr] (P,) at x where ``inside``; children in t order with their parent index,
    and masks of the children whose left (right) end is the new cut (None when nothing was split)."""
    P = tl.shape[0]
    if n_split == 0:
        return tl, tr, torch.arange(P, device=tl.device), None, None
    counts = inside.long() + 1
    parent = torch.repeat_interleave(torch.arange(P, device=tl.device), counts, output_size=P + n_split)
    first = torch.cumsum(counts, 0) - counts
    is_right_child = torch.zeros(P + n_split, dtype=torch.bool, device=tl.device)
    is_right_child[first[inside] + 1] = True
    xp = x[parent]
    right_cut = inside[parent] & ~is_right_child
    left = torch.where(is_right_child, xp, tl[parent])
    right = torch.where(right_cut, xp, tr[parent])
    return left, right, parent, is_right_child, right_cut


_VELTKAMP = 134217729.0  # 2^27 + 1


def _two_product(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Error-free product (Dekker): a * b = hi + lo exactly, hi = fl(a * b); canonical, so two products
    are equal as real numbers iff their (hi, lo) pairs are equal.  Needs |a|, |b| < 1e290."""
    def split(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = _VELTKAMP * v
        high = c - (c - v)
        return high, v - high

    hi = a * b
    a1, a2 = split(a)
    b1, b2 = split(b)
    lo = ((a1 * b1 - hi) + a1 * b2 + a2 * b1) + a2 * b2
    return hi, lo


def _count_float_equal_distinct(zs: torch.Tensor, zc: torch.Tensor, order: torch.Tensor, xs: torch.Tensor,
                                finite: torch.Tensor) -> torch.Tensor:
    """Among neighbouring sorted zeros that are bitwise equal in float64, count those whose exact values
    -zc/zs differ (zc1 * zs2 != zc2 * zs1, decided exactly): slivers float64 cannot represent."""
    equal = finite[:, 1:] & (xs[:, 1:] == xs[:, :-1])
    if not bool(equal.any()):
        return equal.sum()
    rows, cols = equal.nonzero(as_tuple=True)
    first, second = order[rows, cols], order[rows, cols + 1]
    return (_exact_order(zc[rows, first], zs[rows, first], zc[rows, second], zs[rows, second]) != 0).sum()


def _exact_order(c1: torch.Tensor, s1: torch.Tensor, c2: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """(N,) int: the exact sign of (-c1/s1) - (-c2/s2), i.e. of (c2 s1 - c1 s2) / (s1 s2).

    Products are error-free (hi + lo); rounding is monotone, so hi parts that differ order the products,
    and equal hi parts leave the (exact) lo parts to decide.  Values above 1e290 count as different.
    """
    h1, l1 = _two_product(c1, s2)
    h2, l2 = _two_product(c2, s1)
    diff = torch.where(h1 != h2, torch.sign(h2 - h1), torch.sign(l2 - l1))
    huge = torch.maximum(torch.maximum(c1.abs(), c2.abs()), torch.maximum(s1.abs(), s2.abs())) > 1e290
    order = (diff * torch.sign(s1) * torch.sign(s2)).to(torch.int64)
    return torch.where(huge, torch.ones_like(order), order)


def _count_end_slivers(x: torch.Tensor, zc: torch.Tensor, zs: torch.Tensor, tl: torch.Tensor, tr: torch.Tensor,
                       ends: torch.Tensor) -> torch.Tensor:
    """Zeros bitwise equal to a piece end but exactly inside the piece: slivers below float64 resolution.

    ``x``, ``zc``, ``zs``: (P, n) or (P,) zeros and their pre-activation intercepts/slopes; ``ends``:
    (P, 4) = (c, s) of the left end and (c, s) of the right end, each end being exactly -c/s.  A zero on
    the left end counts when it is exactly right of it, one on the right end when exactly left of it, so
    a zero seen from both neighbouring pieces is counted once.
    """
    if x.dim() == 1:
        x, zc, zs = x[:, None], zc[:, None], zs[:, None]
    total = x.new_zeros((), dtype=torch.int64)
    for side, end, inward in ((0, tl, 1), (2, tr, -1)):
        hit = x == end[:, None]
        if bool(hit.any()):
            rows, cols = hit.nonzero(as_tuple=True)
            order = _exact_order(zc[rows, cols], zs[rows, cols], ends[rows, side], ends[rows, side + 1])
            total = total + (order == inward).sum()
    return total


def _sorted_zeros(x: torch.Tensor, valid: torch.Tensor, n_valid: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each piece's valid zeros in increasing order: (n_valid (P,), values (P, c) padded with +inf, their
    units (P, c)), from the dense zeros ``x`` (P, n) and mask ``valid`` (P, n) (``n_valid = valid.sum(1)``)."""
    P = x.shape[0]
    c_max = int(n_valid.max()) if P else 0
    if c_max == 0:
        return n_valid, x.new_empty((P, 0)), torch.zeros(P, 0, dtype=torch.long, device=x.device)
    xs = torch.where(valid, x, torch.inf)
    if c_max == 1:
        value, unit = xs.min(1, keepdim=True)
        return n_valid, value, unit
    if c_max <= 16:
        xs, order = torch.topk(xs, c_max, dim=1, largest=False, sorted=True)
        return n_valid, xs, order
    xs, order = torch.sort(xs, dim=1)
    return n_valid, xs[:, :c_max], order[:, :c_max]


def _sorted_zeros_sparse(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n_valid: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """As :func:`_sorted_zeros`, from the valid zeros listed as entries: piece ``rows`` (K,, non-decreasing),
    unit ``cols`` (K,), value ``values`` (K,); ``n_valid`` (P,) the entries per piece."""
    P = n_valid.shape[0]
    c_max = int(n_valid.max()) if P else 0
    if c_max == 0:
        return n_valid, values.new_empty((P, 0)), torch.zeros(P, 0, dtype=torch.long, device=values.device)
    first = torch.cumsum(n_valid, 0) - n_valid
    position = torch.arange(rows.shape[0], device=rows.device) - first[rows]
    xs = torch.full((P, c_max), torch.inf, dtype=values.dtype, device=values.device)
    xs[rows, position] = values
    units = torch.zeros((P, c_max), dtype=torch.long, device=values.device)
    units[rows, position] = cols
    if c_max == 1:
        return n_valid, xs, units
    xs, order = torch.sort(xs, dim=1, stable=True)
    return n_valid, xs, units.gather(1, order)


def _dedupe_sorted(n_valid: torch.Tensor, xs: torch.Tensor, order: torch.Tensor, tl: torch.Tensor, tau: float,
                   zs: torch.Tensor, zc: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sorted distinct zeros per piece, from each piece's sorted valid zeros ``xs`` (P, c) (+inf padded) and
    their units ``order`` (P, c): returns counts (P,), a (P, c_max) matrix padded with +inf, the unit of each
    kept zero (P, c_max), and the number of flagged zeros (0-d tensor: tolerance merges and float-equal but
    exactly distinct zeros).

    Zeros of one layer that are equal in float64 are one breakpoint; when their exact values differ (a
    sliver below float64 resolution, decided exactly with error-free products) it is flagged.
    """
    P, c_max = xs.shape
    none = xs.new_zeros((), dtype=torch.int64)
    if c_max <= 1:  # valid zeros lie more than tau inside their piece: nothing to merge
        return n_valid, xs, order, none
    prev = torch.cat([tl[:, None], xs[:, :-1]], 1)
    finite = torch.isfinite(xs)
    flagged = _count_float_equal_distinct(zs, zc, order, xs, finite)
    keep = finite & (xs > prev + tau)
    # a zero can also be swallowed by a kept zero two places back in a chain; the rule is stated
    # against the previous sorted zero, which is what this implements
    flagged = flagged + (finite & ~keep & (xs != prev)).sum()
    counts = keep.sum(1)
    c_max = int(counts.max())
    if bool((counts == n_valid).all()):
        return counts, xs[:, :c_max], order[:, :c_max], flagged
    position = torch.where(keep, torch.cumsum(keep, 1) - 1, c_max)
    packed = torch.full((P, c_max + 1), torch.inf, dtype=xs.dtype, device=xs.device)
    packed.scatter_(1, position, torch.where(keep, xs, torch.inf))
    units = torch.zeros((P, c_max + 1), dtype=torch.long, device=xs.device)
    units.scatter_(1, position, order)
    return counts, packed[:, :c_max], units[:, :c_max], flagged


def _split_many(tl: torch.Tensor, tr: torch.Tensor, kept: torch.Tensor, counts: torch.Tensor,
                n_children: int, end_attrs: torch.Tensor | None, kept_attrs: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Split piece p at its ``counts[p]`` sorted zeros ``kept[p, :counts[p]]``; children in t order.

    Each cut point may carry k attributes that the children inherit at their ends: ``end_attrs`` (P, 2k)
    for each piece's left and right end, ``kept_attrs`` (P, c_max, k) for the zeros (both None: none).  The
    exact (c, s) of tracked ends (k = 2) and the error radii of a certified walk (k = 1) travel this way.
    Returns the children's left, right ends, parent index and their ends' attributes (P', 2k) or None.
    """
    P = tl.shape[0]
    if kept.shape[1] == 0:
        return tl, tr, torch.arange(P, device=tl.device), end_attrs
    ends = torch.cat([tl[:, None], kept, torch.full_like(tl[:, None], torch.inf)], 1)  # (P, c_max + 2)
    ends.scatter_(1, (counts + 1)[:, None], tr[:, None])
    sizes = counts + 1
    parent = torch.repeat_interleave(torch.arange(P, device=tl.device), sizes, output_size=n_children)
    first = torch.cumsum(sizes, 0) - sizes
    k = torch.arange(n_children, device=tl.device) - first[parent]
    child_attrs = None
    if end_attrs is not None:
        assert kept_attrs is not None
        width = kept_attrs.shape[2]
        left, right = end_attrs[:, None, :width], end_attrs[:, None, width:]
        attrs = torch.cat([left, kept_attrs, right], 1)  # (P, c_max + 2, k)
        attrs.scatter_(1, (counts + 1)[:, None, None].expand(-1, 1, width), right)
        child_attrs = torch.cat([attrs[parent, k], attrs[parent, k + 1]], 1)
    return ends[parent, k], ends[parent, k + 1], parent, child_attrs
