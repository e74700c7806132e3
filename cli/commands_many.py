"""``regioncount count MODEL1 MODEL2 ...``: many models (e.g. training checkpoints), one count task each."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from .common import UserError, interactive, max_memory_bytes, parse_point, progress_bar
from .render import fmt_int, fmt_seconds, stdout_console


def _places(models: list, sampling: bool, interval, segment, box) -> tuple[list | None, list | None]:
    """Each model's box (sampling; --box, else its domain) or segment (--interval/--segment, else its domain)."""
    from regioncount.core.geometry import resolve_box, resolve_segment

    if sampling:
        low = high = None
        if box is not None:
            low, high = parse_point(box[0], "--box LO"), parse_point(box[1], "--box HI")
        return [resolve_box(model, low, high) for model in models], None
    ends = None
    if segment is not None:
        ends = (parse_point(segment[0], "--segment P"), parse_point(segment[1], "--segment Q"))
    return None, [resolve_segment(model, interval, ends) for model in models]


def count_all(model_files: Sequence[str], *, interval: tuple[float, float] | None, segment: tuple[str, str] | None,
              box: tuple[str, str] | None, samples: int | None, grid: bool, seed: int, batch: int | None, dtype: str,
              assume_well_posed: bool, options: dict[str, Any],
              show: Callable[[int, Any, dict[str, Any]], None] | None = None) -> tuple[list[Any], bool, str | None]:
    """Count every model the same way (along --interval/--segment or each model's domain, or sampled in
    --box), on a Dask cluster with --workers/--scheduler.  ``show(i, result, engine_json)`` is called as each
    count arrives.  Returns the results in file order, whether they are sampled, and the engine's line (None
    in this process)."""
    from regioncount.io.model_files import load_network
    from regioncount.parallel.engine import open_engine
    from regioncount.parallel.many import count_models

    sampling = any(v for v in (box is not None, samples is not None, grid))
    _check_many(options, sampling, interval is not None or segment is not None, dtype)
    models = [load_network(path) for path in model_files]
    memory = max_memory_bytes(options["max_memory"])
    sampled, segments = _places(models, sampling, interval, segment, box)
    results: dict[int, Any] = {}

    def arrived(index: int, result: Any) -> None:
        results[index] = result
        if show is not None:
            extra = {} if engine.client is None else engine.describe(len(models)) | {"tasks_are": "one per model"}
            show(index, result, extra)

    exact_options = {"linear_pieces": not options["no_linear"], "device": options["device"],
                     "max_regions": options["max_regions"], "memory_limit": memory,
                     "assume_well_posed": assume_well_posed}
    with open_engine(workers=options["workers"], scheduler=options["scheduler"]) as engine, \
            progress_bar(interactive(options["as_json"]), f"counting {len(models)} models") as progress:
        if sampled is not None:  # the same box for every model when --box is given, else each model's domain
            count_models(models, sampled={"samples": samples or 10**6, "grid": grid, "seed": seed, "batch": batch,
                                          "device": options["device"], "dtype": dtype,
                                          "assume_well_posed": assume_well_posed, "memory_limit": memory},
                         boxes=[(b.low, b.high) for b in sampled], engine=engine, on_result=arrived,
                         progress=progress, max_seconds=options.get("max_seconds"))
        else:
            count_models(models, segments=segments, options=exact_options, engine=engine, on_result=arrived,
                         progress=progress, max_seconds=options.get("max_seconds"))
        where = None if engine.client is None else f"engine: dask, {engine.workers} worker(s), one task per model"
    return [results[i] for i in range(len(models))], sampled is not None, where


def _check_many(options: dict[str, Any], sampling: bool, along: bool, dtype: str) -> None:
    """Several models: one task each (no --tasks), counted along a segment or sampled (not both), and exact
    counts in float64 only."""
    if options["tasks"] is not None:
        raise UserError("--tasks splits one count; several models are counted one task each")
    if sampling and along:
        raise UserError("--interval/--segment count along a segment; --box/--samples count in a box")
    if not sampling and dtype != "float64":
        raise UserError("exact counts are float64 only; --dtype applies to sampled counts")


def count_row(result: Any, sampled: bool) -> tuple[str, str, str]:
    """(regions, linear pieces, method) of one result as table cells."""
    if sampled:
        return f">= {fmt_int(result.distinct_patterns)}", "-", "sampled"
    return fmt_int(result.activation_regions), fmt_int(result.linear_pieces), result.method


def count_many(model_files: tuple[str, ...], *, interval: tuple[float, float] | None,
               segment: tuple[str, str] | None, box: tuple[str, str] | None, samples: int | None, grid: bool,
               seed: int, batch: int | None, dtype: str, assume_well_posed: bool, options: dict[str, Any]) -> None:
    """``count`` with several models: a table, or with --json one JSON line per model as its count arrives
    (each line names its file)."""
    as_json = options["as_json"]

    def show(index: int, result: Any, engine: dict[str, Any]) -> None:
        if as_json:
            data = result.to_json() | {"file": str(Path(model_files[index]))} | ({"engine": engine} if engine else {})
            print(json.dumps(data, allow_nan=False, default=str), flush=True)

    results, sampled, where = count_all(model_files, interval=interval, segment=segment, box=box, samples=samples,
                                        grid=grid, seed=seed, batch=batch, dtype=dtype,
                                        assume_well_posed=assume_well_posed, options=options, show=show)
    if as_json:
        return
    table = Table(title=f"Regions of {len(results)} models", title_justify="left")
    for column in ("file", "model", "regions", "linear pieces", "method", "seconds"):
        table.add_column(column, justify="right" if column in ("regions", "linear pieces", "seconds") else "left")
    for path, result in zip(model_files, results):
        table.add_row(Path(path).name, result.model, *count_row(result, sampled), fmt_seconds(result.seconds))
    stdout_console().print(table)
    if where is not None:
        stdout_console().print(where)


def track(model_files: tuple[str, ...], *, steps: str | None, out_file: str | None, dpi: int,
          size: tuple[float, float] | None, count_args: dict[str, Any], options: dict[str, Any]) -> None:
    """``regioncount track``: count every checkpoint, order them by training step (from the file names or
    --steps), print a table (or JSON lines with the step) and draw regions and pieces against the step."""
    from regioncount.io.series import checkpoint_steps

    found = checkpoint_steps(model_files, _given_steps(steps))  # before any count: a bad name stops at once
    results, sampled, where = count_all(model_files, options=options, **count_args)
    order = sorted(range(len(results)), key=lambda i: found[i])
    if out_file is not None:
        _plot_series(model_files, results, sampled, found, order, out_file, dpi, size)
    if options["as_json"]:
        for i in order:
            print(json.dumps(results[i].to_json() | {"file": str(Path(model_files[i])), "step": found[i]},
                             allow_nan=False, default=str), flush=True)
        return
    table = Table(title=f"Regions through training: {len(results)} checkpoints", title_justify="left")
    for column in ("step", "file", "regions", "linear pieces", "method", "seconds"):
        table.add_column(column, justify="left" if column in ("file", "method") else "right")
    for i in order:
        table.add_row(f"{found[i]:,}", Path(model_files[i]).name, *count_row(results[i], sampled),
                      fmt_seconds(results[i].seconds))
    stdout_console().print(table)
    for line in (None if out_file is None else f"plot: {out_file}", where):
        if line is not None:
            stdout_console().print(line)


def _given_steps(steps: str | None) -> list[int] | None:
    """--steps as integers (None when not given; anything else a one-line usage error)."""
    if steps is None:
        return None
    try:
        return [int(v) for v in steps.split(",")]
    except ValueError:
        raise UserError(f"--steps takes comma-separated integers, got {steps!r}") from None


def _plot_series(model_files: Sequence[str], results: list[Any], sampled: bool, found: list[int], order: list[int],
                 out_file: str, dpi: int, size: tuple[float, float] | None) -> None:
    """Regions (sampled: distinct patterns) and linear pieces against the training step, to ``out_file``."""
    from regioncount.viz.plot import plot_track

    what = "sampled distinct patterns (lower bounds)" if sampled else "exact counts"
    plot_track([found[i] for i in order],
               [results[i].distinct_patterns if sampled else results[i].activation_regions for i in order],
               [None if sampled else results[i].linear_pieces for i in order], out_file,
               title=f"{len(results)} checkpoints in {Path(model_files[order[0]]).parent.name or '.'}: "
                     f"regions through training ({what})",
               regions_label="distinct patterns (sampled)" if sampled else "activation regions",
               dpi=dpi, size=size or (8.0, 4.5))
