"""Many models counted one task each (checkpoints through training, ``regioncount track``), on any engine."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ..core.geometry import Segment
from ..core.limits import Deadline
from ..models.networks import Model
from .engine import Engine, _indexed, deadline_at
from .payload import model_payload
from .samples import sample_model
from .segments import count_part


def count_models(models: Sequence[Model], *, segments: Sequence[Segment] | None = None,
                 sampled: dict[str, Any] | None = None, boxes: Sequence[tuple[Sequence[float], Sequence[float]]] | None = None,
                 options: dict[str, Any] | None = None,
                 engine: Engine | None = None, on_result: Callable[[int, Any], None],
                 progress: Callable[[float], None] | None = None, max_seconds: float | None = None) -> None:
    """Count many models, one task each, on ``engine`` (default: this process): exactly along
    ``segments[i]`` (with :func:`~regioncount.line.exact1d.count_along`'s ``options``), or, with ``sampled`` (the
    keyword arguments of :func:`~regioncount.sampling.sampled.sample_regions`), by sampling ``boxes[i]`` (low, high;
    None: each model's domain).  ``on_result(i, result)``
    is called as each count arrives (in order in this process, in any order on a cluster).  ``max_seconds``:
    a deadline for all of them (each task is given the time left when it is submitted)."""
    engine = engine or Engine()
    deadline = Deadline(max_seconds)
    limit = deadline_at(deadline)
    args: list[tuple] = []
    for i, model in enumerate(models):
        payload = model_payload(model)
        if sampled is not None:
            where = {} if boxes is None else {"low": tuple(boxes[i][0]), "high": tuple(boxes[i][1])}
            args.append((i, sample_model, (payload, sampled | where | limit)))
        else:
            assert segments is not None
            args.append((i, count_part, (payload, dataclasses.asdict(segments[i]), (options or {}) | limit)))
    engine.reduce(_indexed, args, lambda pair: on_result(*pair), progress, deadline)
