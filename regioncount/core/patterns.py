"""Activation patterns of many points at once, packed into integer words, and an exact distinct-set.

Packing: a pattern of N bits (a bool row, padded to a multiple of 64) is read as bytes; every 8 bools
are viewed as one int64 (one bit per byte), and 8 of those, shifted by 0..7, are summed into one 64-bit
word.  The bit positions never overlap, so the packing is a fixed bijection of the bits (not the natural
order), which is all a distinct-count needs; it costs about one pass over the bools.

Distinct counting is exact: rows are sorted by a 64-bit mix hash of their words, and every group of equal
hashes is verified word by word.  A genuine collision (two different patterns, one hash; probability
about K^2 / 2^65 for K distinct patterns) is detected, and the set then switches to sorting whole rows,
so no count ever depends on a hash being collision-free.  Memory grows with the number of distinct
patterns, not with the number of samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_MIX1 = -4658895280553007687  # 0xBF58476D1CE4E5B9 as a signed int64
_MIX2 = -7723592293110705685  # 0x94D049BB133111EB
_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15


def packed_words(n_bits: int) -> int:
    """Number of int64 words for a pattern of ``n_bits`` bits."""
    return -(-n_bits // 64)


def positive(values: torch.Tensor) -> torch.Tensor:
    """``values > 0`` for a contiguous float64 tensor, via its int64 bit pattern (1.4x faster on CPU).

    A float64 is > 0 exactly when its bit pattern, read as int64, is > 0 (+0.0 is 0, -0.0 and negatives
    have the sign bit set).  Other dtypes fall back to the plain comparison.
    """
    if values.dtype == torch.float64 and values.is_contiguous():
        return values.view(torch.int64) > 0
    return values > 0


def pack_bits(active: torch.Tensor) -> torch.Tensor:
    """(B, n) bool -> (B, ceil(n / 64)) int64, a bijective packing of each row's bits."""
    B, n = active.shape
    pad = (-n) % 64
    if pad:
        active = torch.nn.functional.pad(active, (0, pad))
    lanes = active.contiguous().view(torch.uint8).view(torch.int64).view(B, -1, 8)
    shifts = torch.arange(8, dtype=torch.int64, device=active.device)
    return (lanes << shifts).sum(-1)


def _srl(x: torch.Tensor, shift: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> shift) & ((1 << (64 - shift)) - 1)


def mix_hash(words: torch.Tensor) -> torch.Tensor:
    """(B, W) int64 -> (B,) int64 splitmix64-style hash of the rows (wrapping int64 arithmetic)."""
    h = torch.full((words.shape[0],), _GOLDEN, dtype=torch.int64, device=words.device)
    for k in range(words.shape[1]):
        h = (h ^ words[:, k]) * _MIX1
        h = h ^ _srl(h, 31)
        h = h * _MIX2
        h = h ^ _srl(h, 29)
    return h


#: Deduplicated rows buffered before a merge into the set, at least (and at least as many as the set).
BUFFER_MIN_ROWS = 1 << 16


class DistinctPatterns:
    """A running multiset of packed patterns: keys (K,), rows (K, W), counts (K,), kept sorted by key.

    ``add(rows)`` takes a batch of packed patterns; ``counts`` gives how many samples hit each distinct
    pattern.  Batches are deduplicated on their device and merged lazily (when the buffer is as large as
    the set), so the cost per sample stays about one sort.
    """

    def __init__(self, n_words: int, device: torch.device) -> None:
        self.n_words = n_words
        self.device = device
        self.by_rows = False  # becomes True after a detected hash collision
        self.keys = torch.empty(0, dtype=torch.int64, device=device)
        self.rows = torch.empty(0, n_words, dtype=torch.int64, device=device)
        self._counts = torch.empty(0, dtype=torch.int64, device=device)
        self._buffer: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._buffered = 0
        self._pending: list[torch.Tensor] = []
        self._pending_rows = 0
        self.collisions = 0

    def _key(self, rows: torch.Tensor) -> torch.Tensor:
        return row_keys(rows)

    def _reduce(self, keys: torch.Tensor, rows: torch.Tensor, counts: torch.Tensor):
        """Merge equal rows (see :func:`group_rows`), summing their counts."""
        inverse, representative, collided = group_rows(rows, keys, by_rows=self.by_rows)
        if collided:
            self.collisions += 1
            self.by_rows = True
        merged = torch.zeros(representative.shape[0], dtype=torch.int64, device=rows.device)
        merged.scatter_add_(0, inverse, counts)
        return keys[representative], rows[representative], merged

    def add(self, rows: torch.Tensor) -> None:
        """Add a batch of packed patterns (B, W); raw rows are deduplicated 2^17 at a time."""
        self._pending.append(rows)
        self._pending_rows += rows.shape[0]
        if self._pending_rows >= self.PENDING_ROWS:
            self._reduce_pending()

    PENDING_ROWS = 1 << 17

    def add_counted(self, rows: torch.Tensor, counts: torch.Tensor) -> None:
        """Add packed patterns (B, W) with multiplicities (B,), e.g. another multiset's ``rows`` and
        ``counts``: the exact multiset union (equal rows are merged and their counts summed)."""
        rows, counts = rows.to(self.device), counts.to(self.device, torch.int64)
        self._buffer_batch(self._reduce(self._key(rows), rows, counts))

    def _buffer_batch(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        """Buffer deduplicated (keys, rows, counts); merge into the set once the buffer is as large as it."""
        self._buffer.append(batch)
        self._buffered += batch[0].shape[0]
        if self._buffered >= max(self.keys.shape[0], BUFFER_MIN_ROWS):
            self._flush()

    def _reduce_pending(self) -> None:
        if not self._pending:
            return
        rows = torch.cat(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending, self._pending_rows = [], 0
        ones = torch.ones(rows.shape[0], dtype=torch.int64, device=rows.device)
        self._buffer_batch(self._reduce(self._key(rows), rows, ones))

    def _flush(self) -> None:
        self._reduce_pending()
        if not self._buffer:
            return
        keys = torch.cat([self.keys] + [b[0] for b in self._buffer])
        rows = torch.cat([self.rows] + [b[1] for b in self._buffer])
        counts = torch.cat([self._counts] + [b[2] for b in self._buffer])
        self._buffer, self._buffered = [], 0
        self.keys, self.rows, self._counts = self._reduce(keys, rows, counts)

    @property
    def counts(self) -> torch.Tensor:
        """(K,) int64: samples per distinct pattern."""
        self._flush()
        return self._counts

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held now: the merged set, the buffered batches and the raw rows not yet deduplicated."""
        held = [self.keys, self.rows, self._counts, *self._pending] + [t for b in self._buffer for t in b]
        return sum(t.element_size() * t.numel() for t in held)


def row_keys(rows: torch.Tensor) -> torch.Tensor:
    """(B,) int64 sort keys of packed rows (B, W): the word itself for one word, else :func:`mix_hash`."""
    return rows[:, 0].clone() if rows.shape[1] == 1 else mix_hash(rows)


def _representatives(inverse: torch.Tensor) -> torch.Tensor:
    """One row index per group, given each row's group id."""
    groups = int(inverse.max()) + 1 if inverse.numel() else 0
    representative = torch.empty(groups, dtype=torch.long, device=inverse.device)
    representative.scatter_(0, inverse, torch.arange(inverse.shape[0], device=inverse.device))
    return representative


def group_rows(rows: torch.Tensor, keys: torch.Tensor | None = None,
               by_rows: bool = False) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Group equal rows of (B, W) int64: (group id per row (B,), a representative row per group (G,),
    whether a hash collision was met).

    Rows are sorted by ``keys`` (default :func:`row_keys`) and every key group is verified word by word;
    on a collision, or with ``by_rows``, whole rows are sorted instead (``unique(dim=0)``), so the grouping
    never depends on the hash being collision-free.
    """
    if not by_rows:
        _, inverse = torch.unique(row_keys(rows) if keys is None else keys, return_inverse=True)
        representative = _representatives(inverse)
        if rows.shape[1] == 1 or bool((rows[representative][inverse] == rows).all()):
            return inverse, representative, False
    _, inverse = torch.unique(rows, dim=0, return_inverse=True)
    return inverse, _representatives(inverse), not by_rows


def layer_words(bits: torch.Tensor, widths: Sequence[int] | None = None) -> torch.Tensor:
    """Packed patterns (B, words) of (B, units) bits: one block of words per layer of ``widths`` (the layout
    of :class:`~regioncount.sampling.sampled.PatternFunction`), or one block for all units (``widths`` None)."""
    if bits.shape[1] == 0:
        return torch.zeros(bits.shape[0], 1, dtype=torch.int64, device=bits.device)
    if widths is None or len(widths) == 1:
        return pack_bits(bits)
    return torch.cat([pack_bits(block) for block in torch.split(bits, list(widths), 1)], 1)


def flip_masks(units: torch.Tensor, widths: Sequence[int] | None, n_units: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where bit ``units[i]`` (an index over all units, (E,)) lives in :func:`layer_words`' packing: the word
    (E,) and the one-bit int64 mask (E,) to XOR, so that flipping a unit's bit needs no unpacking.  Bit i of
    a block sits in word i // 64 at position 8 (i % 8) + (i // 8) % 8 (:func:`pack_bits`)."""
    blocks = list(widths) if widths is not None and len(widths) > 1 else [n_units]
    device = units.device
    sizes = torch.tensor(blocks, dtype=torch.long, device=device)
    starts = torch.cumsum(sizes, 0) - sizes
    word_starts = torch.cumsum((sizes + 63) // 64, 0) - (sizes + 63) // 64
    block = torch.searchsorted(torch.cumsum(sizes, 0), units, right=True)
    local = units - starts[block]
    position = 8 * (local % 8) + (local // 8) % 8
    return word_starts[block] + local // 64, torch.ones_like(units) << position


def match_rows(table: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query row (Q, W) of int64 words, the index of the equal row of ``table`` (T, W) (rows of the
    table distinct) and whether there is one; found by hash and confirmed word by word."""
    keys = mix_hash(table)
    order = torch.argsort(keys)
    sorted_keys = keys[order]
    query_keys = mix_hash(queries)
    pos = torch.searchsorted(sorted_keys, query_keys).clamp_max(len(sorted_keys) - 1)
    index = order[pos]
    found = (sorted_keys[pos] == query_keys) & (table[index] == queries).all(1)
    return index, found


def probe_pairs(owners: torch.Tensor, table: torch.Tensor, probes: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Region adjacency from probes: region ``owners[i]`` (Q,) probed a point whose packed pattern is
    ``probes[i]``; ``table`` (R, W) holds each region's pattern.  Returns the distinct pairs (E, 2) of
    different regions, smaller id first, and the number of probes whose pattern is no region's (a probe
    that landed on a boundary)."""
    index, found = match_rows(table, probes)
    pairs = torch.stack([owners[found], index[found]], 1)
    pairs = torch.sort(pairs[pairs[:, 0] != pairs[:, 1]], 1).values
    R = table.shape[0]
    code = torch.unique(pairs[:, 0] * R + pairs[:, 1])
    return torch.stack([code // R, code % R], 1), int((~found).sum())
