"""A sampled count split into ranges of its sample stream, run as tasks and merged by an exact union of the
distinct-pattern multisets (``docs/scale.md``): the same distinct counts, f1/f2, coverage and Chao1 as one run."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..core.errors import RegionCountError
from ..core.limits import Deadline
from ..core.settings import DEFAULT_MAX_REGIONS
from ..models.networks import Model
from ..sampling.sampled import SampledCount
from .engine import Engine, deadline_at, with_time_left
from .payload import model_from_payload, model_payload


def sample_part(payload: dict[str, Any], low: tuple[float, ...], high: tuple[float, ...], seed: int, per_dim: int,
                start: int, stop: int, options: dict[str, Any]) -> dict[str, Any]:
    """Task: the distinct patterns of the sample stream's points ``start .. stop - 1`` (see
    :class:`~regioncount.sampling.sampled.SamplePoints`) as ``{"rows": (K, W) int64, "counts": (K,) int64,
    "failures", "collisions"}``; ``options``: device, dtype, batch, memory_limit, watch_memory."""
    from ..core.devices import resolve_device
    from ..core.patterns import DistinctPatterns
    from ..sampling.sampled import DTYPES, Box, PatternFunction, SamplePoints, check_sampled_memory, sample_range

    model = model_from_payload(payload)
    dev, dtype = resolve_device(options["device"]), DTYPES[options["dtype"]]
    patterns = PatternFunction(model, dev, dtype)
    distinct = DistinctPatterns(patterns.n_words, dev)
    points = SamplePoints(Box(tuple(low), tuple(high)), seed, per_dim, dev, dtype)

    deadline = Deadline(with_time_left(options).get("max_seconds"))

    def after_batch(done: int) -> None:
        if options["watch_memory"]:
            check_sampled_memory(distinct, done, options["memory_limit"])
        deadline.check(f"a sampling task (at {done:,} points)")

    sample_range(patterns, points, start, stop, options["batch"], distinct, after_batch)
    counts = distinct.counts
    return {"rows": distinct.rows.cpu().numpy(), "counts": counts.cpu().numpy(), "failures": patterns.failures,
            "collisions": distinct.collisions}


def sample_regions_split(model: Model, low: Sequence[float] | float | None = None,
                         high: Sequence[float] | float | None = None, *, samples: int = 10**6, grid: bool = False,
                         seed: int = 0, tasks: int, engine: Engine | None = None, batch: int | None = None,
                         device: str | torch.device = "cpu", dtype: str = "float64", assume_well_posed: bool = False,
                         progress: Callable[[float], None] | None = None, memory_limit: int | None = None,
                         max_seconds: float | None = None, max_regions: int | None = DEFAULT_MAX_REGIONS) -> SampledCount:
    """:func:`~regioncount.sampling.sampled.sample_regions`, its sample stream cut into ``tasks`` ranges run on
    ``engine`` (default: this process); the distinct-pattern multisets are merged by an exact union as they
    arrive, so distinct counts, f1/f2, coverage and Chao1 equal a single run's with the same seed.
    ``max_seconds``: a deadline for the whole call (each task stops by itself when it passes);
    ``max_regions``: stop once the merged distinct patterns exceed it."""
    from ..core.patterns import DistinctPatterns
    from ..models.networks import pattern_words
    from ..sampling.sampled import check_sampled_memory, check_sampled_regions, plan_sampling, summarize

    if tasks < 1:
        raise RegionCountError(f"`tasks` must be at least 1, got {tasks}")
    engine = engine or Engine()
    deadline = Deadline(max_seconds)
    started = time.perf_counter()
    plan = plan_sampling(model, low, high, samples=samples, grid=grid, batch=batch, device=device, dtype=dtype,
                         assume_well_posed=assume_well_posed, memory_limit=memory_limit)
    union = DistinctPatterns(pattern_words(model), torch.device("cpu"))
    failures = collisions = 0
    options = {"device": plan.device.type, "dtype": dtype, "batch": plan.batch, "memory_limit": plan.memory_limit,
               "watch_memory": plan.watch_memory} | deadline_at(deadline)
    bounds = [plan.total * k // tasks for k in range(tasks + 1)]
    payload = model_payload(model)
    args = [(payload, plan.box.low, plan.box.high, seed, plan.per_dim, lo, hi, options)
            for lo, hi in zip(bounds, bounds[1:]) if hi > lo]
    done = 0

    def merge(part: dict[str, Any]) -> None:
        nonlocal failures, collisions, done
        union.add_counted(torch.from_numpy(part["rows"]), torch.from_numpy(part["counts"]))
        failures += part["failures"]
        collisions += part["collisions"]
        done += int(part["counts"].sum())
        if plan.watch_memory:
            check_sampled_memory(union, done, plan.memory_limit)
        check_sampled_regions(union, done, max_regions)

    engine.reduce(sample_part, args, merge, progress, deadline)
    union.collisions += collisions
    result = summarize(model, union, failures, box=plan.box, grid=grid, seed=seed, dtype=dtype, device=plan.device,
                       seconds=time.perf_counter() - started)
    return dataclasses.replace(result, engine=engine.describe(len(args)))


def sample_model(payload: dict[str, Any], options: dict[str, Any]) -> SampledCount:
    """Task: :func:`~regioncount.sampling.sampled.sample_regions` of one model (``options``: its keyword arguments)."""
    from ..sampling.sampled import sample_regions

    return sample_regions(model_from_payload(payload), **with_time_left(options))
