"""One cost model: the peak memory a count will need, predicted before it starts.

Every estimate is bytes above the process's baseline (imports, model), from the quantities that drive the
allocations, with constants measured by ``benchmarks/bench_memory.py`` (which prints predicted against
measured peaks on a grid of nets; see ``docs/algorithms.md``, "Cost model"):

* exact 1-D walk of an FFN: a batch holds at most ``S = 64 * max_pieces`` state values (pieces x units),
  each needing about ``FFN_BYTES_PER_STATE_VALUE`` bytes with its temporaries, plus one live copy of the
  pre-activation maps per layer on the depth-first stack; never more values than pieces x units;
* exact 1-D walk of a triangular DEQ: ``max_pieces`` pieces of ``m`` columns (slopes and intercepts);
* kept breakpoints: ``KEPT_BYTES_PER_REGION`` per region;
* sampled counts: the batch's activations, plus the distinct-pattern set, whose buffered rows grow with
  the number of samples until they are merged: ``SAMPLED_BYTES_PER_WORD`` per sample and pattern word.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import CostLimitError
from .models import DEQ, FFN, Model
from .walk1d import KEPT_BYTES_PER_REGION

#: bytes per state value of an FFN batch (maps, zeros, sorting, children, certification temporaries)
FFN_BYTES_PER_STATE_VALUE = 64
#: bytes per (piece, unit) of a triangular-DEQ batch
DEQ_BYTES_PER_PIECE_UNIT = 40
#: bytes per sample and 64-bit pattern word of the distinct-pattern set (buffered rows, sorting copies)
SAMPLED_BYTES_PER_WORD = 11
#: bytes per distinct pattern and word (the merged set, its keys and the copies made while sorting)
DISTINCT_BYTES_PER_WORD = 30


@dataclass(frozen=True)
class CostEstimate:
    """Predicted peak bytes (above the baseline) of one piece of work, with what it is for."""

    what: str
    bytes: int

    def check(self, limit: int) -> None:
        """Refuse (:class:`CostLimitError`, one line with the estimate) when above ``limit`` bytes."""
        if self.bytes > limit:
            raise CostLimitError(f"{self.what} needs about {self.bytes / 2**30:.3g} GiB (estimated), above the "
                                 f"memory limit of {limit / 2**30:.3g} GiB")


def default_max_pieces(device: str | torch.device) -> int:
    """Pieces per batch of the exact walk: small enough to stay in cache on a CPU, large enough to fill a GPU."""
    return 2**23 if torch.device(device).type == "cuda" else 2**16


def estimate_exact(model: Model, *, linear_pieces: bool, keep_breakpoints: bool, regions: float | None,
                   device: str | torch.device = "cpu", max_pieces: int | None = None) -> CostEstimate:
    """Peak bytes of an exact 1-D count of ``model`` with about ``regions`` regions (None: the guaranteed
    bound ``prod(n_l + 1)`` or ``2^m``)."""
    pieces = max_pieces or default_max_pieces(device)
    if isinstance(model, FFN):
        widths = model.hidden_widths or [1]
        bound = regions if regions is not None else _product(n + 1 for n in widths)
        # pieces entering layer l: at most the regions of the layers before it (and of the whole net); the
        # last layer's children are built only when pieces or breakpoints are asked for
        values, before = 0.0, 1.0
        for n in widths:
            values = max(values, min(before, bound) * n)
            before *= n + 1
        if linear_pieces or keep_breakpoints:
            values = max(values, bound * widths[-1])
        values = min(64 * pieces, values)
        live = min(len(widths), 3)  # pieces grow with depth: the live maps of all levels add up to ~3 batches
        walk = values * (FFN_BYTES_PER_STATE_VALUE + 16 * live)
        what = f"the exact walk of {' x '.join(map(str, widths))} hidden units"
    else:
        assert isinstance(model, DEQ)
        bound = regions if regions is not None else float(2**model.width)  # noqa: F841
        walk = min(pieces, bound) * model.width * DEQ_BYTES_PER_PIECE_UNIT
        what = f"the exact walk of a width-{model.width} DEQ"
    kept = KEPT_BYTES_PER_REGION * bound if keep_breakpoints else 0
    if keep_breakpoints:
        what += f" keeping the breakpoints of {bound:.3g} regions"
    return CostEstimate(what, int(walk + kept))


def estimate_sampled(model: Model, *, samples: int, distinct: float | None = None, batch: int | None = None,
                     device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64) -> CostEstimate:
    """Peak bytes of a sampled count of ``samples`` points: the batch's activations, the buffered pattern
    rows (``SAMPLED_BYTES_PER_WORD`` per sample and word) and the distinct set with its sorting copies
    (``DISTINCT_BYTES_PER_WORD`` per distinct pattern and word).  ``distinct``: the expected number of
    distinct patterns (e.g. extrapolated from the first batch); None: every sample distinct."""
    from .sampled import default_batch

    dev = torch.device(device)
    batch = batch or default_batch(model, dtype, dev)
    widths = [model.width] if isinstance(model, DEQ) else (model.hidden_widths or [1])
    words = sum((n + 63) // 64 for n in widths) + 2
    distinct = float(samples) if distinct is None else min(float(samples), float(distinct))
    total = batch * max(widths) * 24 + samples * words * SAMPLED_BYTES_PER_WORD \
        + distinct * words * DISTINCT_BYTES_PER_WORD
    return CostEstimate(f"a sampled count of {samples:,} points ({sum(widths)} units, about {distinct:.3g} "
                        "distinct patterns)", int(total))


def _product(values) -> float:
    out = 1.0
    for v in values:
        out *= v
        if out > 2.0**62:
            return 2.0**62
    return out
