"""The next layer's maps on every polygon of a layered plane subdivision, in cache-sized blocks.

A polygon of the subdivision carries the affine map of its starting polygon ``Z[origin]`` (3, n) (rows: the
slopes in s and t, then the constant) masked by its activation pattern; the next layer's maps are
``(Z[origin] * D) W^T``.  Built whole, the masked maps are a (P, 3, n) tensor several times the size of the
cache, written once and read twice; here they are formed a block of polygons at a time and consumed while
the block is in the cache (``docs/algorithms.md``, "Plane partitions by arrangements")."""

from __future__ import annotations

import torch

from ..core.magnitudes import safe_norm

#: Bytes of masked maps formed at a time.
BLOCK_BYTES = 2**20


def masked_products(Z: torch.Tensor, origin: torch.Tensor, active: torch.Tensor, weight: torch.Tensor,
                    norms: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(Z[origin] * active) @ weight.T`` (P, q, m) for maps ``Z`` (P0, q, n) of starting polygons, the
    polygons' starting polygons ``origin`` (P,) and patterns ``active`` (P, n) (bool), and, with ``norms``, the
    masked rows' Euclidean norms (P, q) (:func:`~regioncount.core.magnitudes.safe_norm`)."""
    P = int(origin.shape[0])
    q, n = int(Z.shape[1]), int(Z.shape[2])
    rows = max(1, BLOCK_BYTES // (Z.element_size() * q * max(n, 1)))
    out = Z.new_empty(P, q, weight.shape[0])
    row_norms = Z.new_empty(P, q) if norms else None
    for start in range(0, P, rows):
        stop = min(start + rows, P)
        block = Z.index_select(0, origin[start:stop]).mul_(active[start:stop, None, :])  # (finite maps) times 0 or 1
        torch.matmul(block, weight.T, out=out[start:stop])
        if row_norms is not None:
            row_norms[start:stop] = safe_norm(block, 2)
    return out, row_norms
