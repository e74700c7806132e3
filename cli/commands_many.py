"""``regioncount count MODEL1 MODEL2 ...``: many models (e.g. training checkpoints), one count task each."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.table import Table

from .common import UserError, max_memory_bytes, parse_point, progress_bar
from .render import fmt_int, fmt_seconds, stdout_console


def _places(models: list, sampling: bool, interval, segment, box) -> tuple[list | None, list | None]:
    """Each model's box (sampling; --box, else its domain) or segment (--interval/--segment, else its domain)."""
    from regioncount.geometry import resolve_box, resolve_segment

    if sampling:
        low = high = None
        if box is not None:
            low, high = parse_point(box[0], "--box LO"), parse_point(box[1], "--box HI")
        return [resolve_box(model, low, high) for model in models], None
    ends = None
    if segment is not None:
        ends = (parse_point(segment[0], "--segment P"), parse_point(segment[1], "--segment Q"))
    return None, [resolve_segment(model, interval, ends) for model in models]


def count_many(model_files: tuple[str, ...], *, interval: tuple[float, float] | None,
               segment: tuple[str, str] | None, box: tuple[str, str] | None, samples: int | None, grid: bool,
               seed: int, batch: int | None, dtype: str, assume_well_posed: bool, options: dict[str, Any]) -> None:
    """Count every model the same way (along --interval/--segment or each model's domain, or sampled in
    --box), on a Dask cluster with --workers/--scheduler; print a table, or with --json one JSON line per
    model as its count arrives (each line names its file)."""
    from regioncount.distributed import count_models, open_engine
    from regioncount.io import load_model

    if options["tasks"] is not None:
        raise UserError("--tasks splits one count; several models are counted one task each")
    models = [load_model(path) for path in model_files]
    sampling = box is not None or samples is not None or grid
    if sampling and (interval is not None or segment is not None):
        raise UserError("--interval/--segment count along a segment; --box/--samples count in a box")
    if not sampling and dtype != "float64":
        raise UserError("exact counts are float64 only; --dtype applies to sampled counts")
    memory = max_memory_bytes(options["max_memory"])
    sampled, segments = _places(models, sampling, interval, segment, box)
    as_json = options["as_json"]
    results: dict[int, Any] = {}

    def show(index: int, result: Any) -> None:
        results[index] = result
        if as_json:
            data = result.to_json() | {"file": str(Path(model_files[index]))}
            if engine.client is not None:
                data["engine"] = engine.describe(len(models)) | {"tasks_are": "one per model"}
            print(json.dumps(data, allow_nan=False, default=str), flush=True)

    exact_options = {"linear_pieces": not options["no_linear"], "device": options["device"],
                     "max_regions": options["max_regions"], "memory_limit": memory,
                     "assume_well_posed": assume_well_posed}
    with open_engine(workers=options["workers"], scheduler=options["scheduler"]) as engine, \
            progress_bar(not as_json and sys.stderr.isatty(), f"counting {len(models)} models") as progress:
        if sampled is not None:  # the same box for every model when --box is given, else each model's domain
            count_models(models, sampled={"samples": samples or 10**6, "grid": grid, "seed": seed, "batch": batch,
                                          "device": options["device"], "dtype": dtype,
                                          "assume_well_posed": assume_well_posed, "memory_limit": memory},
                         boxes=[(b.low, b.high) for b in sampled], engine=engine, on_result=show,
                         progress=progress)
        else:
            count_models(models, segments=segments, options=exact_options, engine=engine, on_result=show,
                         progress=progress)
    if as_json:
        return
    table = Table(title=f"Regions of {len(models)} models", title_justify="left")
    for column in ("file", "model", "regions", "linear pieces", "method", "seconds"):
        table.add_column(column, justify="right" if column in ("regions", "linear pieces", "seconds") else "left")
    for index in range(len(models)):
        result = results[index]
        if sampled is not None:
            table.add_row(Path(model_files[index]).name, result.model, f">= {fmt_int(result.distinct_patterns)}",
                          "-", "sampled", fmt_seconds(result.seconds))
        else:
            table.add_row(Path(model_files[index]).name, result.model, fmt_int(result.activation_regions),
                          fmt_int(result.linear_pieces), result.method, fmt_seconds(result.seconds))
    stdout_console().print(table)
    if engine.client is not None:
        stdout_console().print(f"engine: dask, {engine.workers} worker(s), one task per model")
