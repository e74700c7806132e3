"""The limits a count honours, in one place: regions, memory, seconds and the device.

:class:`Limits` is built once (by a command, or by a script) and handed whole to the entry point; each
entry point honours every limit or refuses it in one line.  ``max_seconds`` has one meaning everywhere: a
**deadline** for the whole call, counted from its start.  Where the cost can be projected (a timed pilot of
the 1-D walk, the first batch of a sampled count) a count projected past it is refused before it runs; a count
that still reaches the deadline stops there with a :class:`~regioncount.core.errors.CostLimitError`
(split counts cancel their outstanding tasks).  Importing this module does not import torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .errors import CostLimitError
from .settings import DEFAULT_MAX_REGIONS

#: A count limit that never binds (what ``max_regions=None`` means).
NO_LIMIT = 2**62


class Deadline:
    """A point in time ``seconds`` after its creation (None: never).  ``check(doing)`` raises a one-line
    :class:`~regioncount.core.errors.CostLimitError` once it has passed."""

    def __init__(self, seconds: float | None) -> None:
        if seconds is not None and not seconds > 0:
            raise CostLimitError(f"the time limit must be positive, got {seconds!r} s")
        self.seconds = seconds
        self.started = time.perf_counter()
        self.end = None if seconds is None else self.started + seconds

    def remaining(self) -> float | None:
        """Seconds left (negative once the deadline has passed; None without a limit)."""
        if self.end is None:
            return None
        return self.end - time.perf_counter()

    def passed(self) -> bool:
        return self.end is not None and time.perf_counter() >= self.end

    def check(self, doing: str) -> None:
        """Raise when the deadline has passed, saying what was being done."""
        if self.passed():
            raise CostLimitError(self.message(doing))

    def message(self, doing: str) -> str:
        return f"{doing} ran past the time limit of {self.seconds:g} s; raise `max_seconds` or ask for less"

    def task_seconds(self) -> float | None:
        """The time limit to hand a task started now: what is left (at least a millisecond)."""
        left = self.remaining()
        return None if left is None else max(left, 1e-3)


@dataclass(frozen=True)
class Limits:
    """What a count may use: ``max_regions`` (default ``DEFAULT_MAX_REGIONS`` = 2^34, every entry point's
    default too; None: no limit), ``memory_limit`` in bytes (None: half the
    RAM, or of the GPU's memory on CUDA), ``max_seconds`` (None: no deadline), ``device`` ("auto", "cpu" or
    "cuda").  ``kwargs()`` gives them as the keyword arguments that every entry point takes
    (``count_segment``, ``count_along``, ``count_segment_split``, ``sample_regions``, ``sample_regions_split``,
    ``partition_box``, ``partition_plane``, ``count_all_space``, ``chord_statistics``), with the same meaning
    in each: ``count_segment(model, interval=(0, 1), **Limits(max_seconds=60).kwargs())``."""

    max_regions: int | None = DEFAULT_MAX_REGIONS
    memory_limit: int | None = None
    max_seconds: float | None = None
    device: str = "auto"

    def kwargs(self) -> dict[str, Any]:
        return {"max_regions": self.max_regions, "memory_limit": self.memory_limit,
                "max_seconds": self.max_seconds, "device": self.device}
