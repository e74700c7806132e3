"""``regioncount compare``, ``bound`` and ``check``: the separation, region bounds, DEQ certificates."""

from __future__ import annotations

import click

from regioncount.core.settings import (
    DEFAULT_CONSTRUCT_BUDGET,
    DEFAULT_CONSTRUCT_SECONDS,
    DEFAULT_MAX_SECONDS,
    DEFAULT_P_MATRIX_CAP,
    DEVICE_CHOICES,
)
from regioncount.theory.bounds import (
    MAX_LAYERS,
)

from .common import UserError, guard, interactive, model_paths, progress_bar
from .render import FiniteFloat, print_json


@click.command()
@click.option("--alpha", default="0.5", show_default=True,
              help="Depth exponent alpha in (0, 1), e.g. 0.5 or 1/3, or a comma list (1/4,1/3,1/2) to see the "
                   "verdict as alpha varies.")
@click.option("--widths", "widths_text", default="4:20", show_default=True, help="DEQ widths m: A:B, A:B:step or a,b,c.")
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), help="Write log2(regions) vs m to FILE.png.")
@click.option("--construct-budget", "--budget", "construct_budget", type=click.IntRange(min=1),
              default=DEFAULT_CONSTRUCT_BUDGET, show_default=True,
              help="Build and count explicit FFNs with at most this many regions.")
@click.option("--construct-seconds", type=FiniteFloat(min=0),
              help="Estimated seconds per width m for building and counting FFN constructions "
                   f"[default: {DEFAULT_CONSTRUCT_SECONDS['cpu']:g} on a CPU, {DEFAULT_CONSTRUCT_SECONDS['cuda']:g} on CUDA].")
@click.option("--train", is_flag=True, help="Train a few FFNs of the family to fit T^m; report exact errors.")
@click.option("--train-max-m", type=click.IntRange(min=1), default=10, show_default=True,
              help="Train only for widths m up to this.")
@click.option("--train-steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--train-seeds", type=click.IntRange(min=1, max=32), default=2, show_default=True,
              help="Random initialisations per trained net (plus one at the explicit in-family approximant).")
@click.option("--time-budget", type=FiniteFloat(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds of training per network at most.")
@click.option("--train-width-cap", type=click.IntRange(min=1), default=64, show_default=True,
              help="Widest trained network (the family's width cap can be huge).")
@click.option("--max-seconds", type=FiniteFloat(min=0, min_open=True), default=DEFAULT_MAX_SECONDS, show_default=True,
              help="Time limit in all: refuse DEQ counts estimated to exceed it; FFN constructions are "
                   "counted only within what the DEQs leave (estimated).")
@click.option("--workers", type=click.IntRange(min=1, max=1024), default=None,
              help="Run the rows (alpha, m) as tasks on a local Dask cluster of N single-threaded worker processes.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Run the rows on the Dask cluster at ADDRESS.")
@click.option("--wide", is_flag=True, help="Every column, however narrow the terminal (default: below 150 columns "
                                             "the main ones).")
@guard
def compare(alpha: str, widths_text: str, device: str, as_json: bool, plot_file: str | None, construct_budget: int,
            construct_seconds: float | None, train: bool, train_max_m: int, train_steps: int, train_seeds: int,
            time_budget: float, train_width_cap: int, max_seconds: float, workers: int | None,
            scheduler: str | None, wide: bool) -> None:
    """The DEQ-vs-FFN separation of Theorem 1: 2^m against FFNs of depth <= m^alpha."""
    from regioncount.theory.compare_cost import check_compare_cost, default_construct_seconds
    from regioncount.theory.parsing import parse_alphas, parse_widths
    from regioncount.theory.separation import SeparationReport, separated_from

    if plot_file is not None:
        from regioncount.core.atomic import check_output_path

        check_output_path(plot_file, (".png",), "the plot")
    alphas = parse_alphas(alpha)
    widths = parse_widths(widths_text)
    deq_seconds = check_compare_cost(widths * len(alphas), device, max_seconds)
    # what the DEQ counts leave of the limit is shared by the rows' exact counts of FFN constructions
    if construct_seconds is None:
        construct_seconds = default_construct_seconds(device)
    construct_seconds = min(construct_seconds, max(max_seconds - deq_seconds, 0.0) / (len(widths) * len(alphas)))
    training = dict(max_m=train_max_m, steps=train_steps, seeds=train_seeds, time_budget=time_budget,
                    width_cap=train_width_cap) if train else None
    settings = dict(device=device, construct_budget=construct_budget, construct_seconds=construct_seconds,
                    training=training)
    with progress_bar(interactive(as_json),
                      ("comparing and training" if train else "comparing")
                      + (" (tasks)" if workers is not None or scheduler is not None else "")) as progress:
        by_alpha = _all_rows(alphas, widths, settings, workers, scheduler, progress)
    results = [(a, rows, separated_from(rows)) for a, rows in zip(alphas, by_alpha)]
    if plot_file is not None:
        from regioncount.viz.plot import plot_separation  # deferred: matplotlib costs 0.35 s to import

        for a, rows, _ in results:
            plot_separation(rows, str(a), _alpha_path(plot_file, a) if len(alphas) > 1 else plot_file)
    from .tables import render

    render(SeparationReport([(a, rows) for a, rows, _ in results]), as_json=as_json, wide=wide)


def _all_rows(alphas: list, widths: list[int], settings: dict, workers: int | None, scheduler: str | None,
              progress) -> list[list]:
    """The rows of every alpha: as tasks on a Dask engine with --workers/--scheduler, else one after another
    in this process (``settings``: device, construct_budget, construct_seconds, training)."""
    if workers is not None or scheduler is not None:
        from regioncount.parallel.engine import open_engine

        with open_engine(workers=workers, scheduler=scheduler) as engine:
            return _compare_rows_on(engine, alphas, widths, settings["device"], settings["construct_budget"],
                                    settings["construct_seconds"], settings["training"], progress)
    by_alpha = []
    for j, a in enumerate(alphas):
        tick = None if progress is None else (lambda f, j=j: progress((j + f) / len(alphas)))
        by_alpha.append(_compare_rows(a, widths, settings["device"], settings["construct_budget"],
                                      settings["construct_seconds"], settings["training"], tick))
    return by_alpha


def _compare_rows(a, widths: list[int], device: str, construct_budget: int, construct_seconds: float,
                  training: dict | None, progress) -> list:
    """The rows of one alpha (``compare_row`` per m, with the trained FFNs of ``--train`` attached)."""
    from regioncount.theory.training import compare_row

    rows = []
    for i, m in enumerate(widths):
        tick = None if progress is None else (lambda f, i=i: progress((i + f) / len(widths)))
        rows.append(compare_row(m, a, construct_budget=construct_budget, device=device,
                                construct_seconds=construct_seconds, training=training, progress=tick))
        if progress is not None:
            progress((i + 1) / len(widths))
    return rows


def _compare_rows_on(engine, alphas: list, widths: list[int], device: str, construct_budget: int,
                     construct_seconds: float, training: dict | None, progress) -> list[list]:
    """Every (alpha, m) row as one task on a Dask ``engine``; rows regrouped by alpha, in order of m."""
    from functools import partial

    from regioncount.theory.training import compare_row

    task = partial(compare_row, construct_budget=construct_budget, device=device,
                   construct_seconds=construct_seconds, training=training)
    rows = engine.map(task, [(m, a) for a in alphas for m in widths], progress)
    return [rows[j * len(widths):(j + 1) * len(widths)] for j in range(len(alphas))]


def _alpha_path(path: str, a) -> str:
    """FILE.png -> FILE_alpha-1_3.png: one plot per alpha."""
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}_alpha-{a.numerator}_{a.denominator}{dot}{suffix}"


@click.command()
@click.option("--input-dim", type=click.IntRange(min=1), default=1, show_default=True, help="Input dimension n_0.")
@click.option("--widths", "widths_text", help="Hidden widths n_1,...,n_L (comma-separated).")
@click.option("--depth", type=click.IntRange(min=1), help="Depth L (with --width).")
@click.option("--width", type=click.IntRange(min=1), help="Width of every layer (with --depth).")
@click.option("--deq-width", type=click.IntRange(min=1), help="Also give 2^m, the maximum for a width-m DEQ.")
@click.option("--verify", is_flag=True, help="Build the attaining construction and count it exactly (1-D).")
@click.option("--json", "as_json", is_flag=True)
@guard
def bound(input_dim: int, widths_text: str | None, depth: int | None, width: int | None, deq_width: int | None,
          verify: bool, as_json: bool) -> None:
    """Upper and lower bounds on the regions of an FFN architecture, as exact integers."""
    from regioncount.theory.bounds import bound_report

    from .tables import render

    widths = _bound_widths(widths_text, depth, width, deq_width)
    render(bound_report(input_dim, widths, deq_width=deq_width, verify=verify), as_json=as_json,
           title="Region bounds (exact integers)")


def _bound_widths(widths_text: str | None, depth: int | None, width: int | None, deq_width: int | None
                  ) -> list[int] | None:
    """The hidden widths from --widths n1,n2,... or --depth L --width w (None with --deq-width alone)."""
    if widths_text is not None and (depth is not None or width is not None):
        raise UserError("give either --widths or --depth with --width, not both")
    if widths_text is not None:
        try:
            return [int(v) for v in widths_text.split(",")]
        except ValueError:
            raise UserError(f"--widths must be comma-separated integers, got {widths_text!r}") from None
    if depth is not None and width is not None:
        if depth > MAX_LAYERS:
            raise UserError(f"--depth {depth:,}: at most {MAX_LAYERS:,} layers")
        return [width] * depth
    if deq_width is not None:
        return None
    raise UserError("give --widths n1,n2,... or --depth L --width w (or --deq-width m)")


@click.command()
@click.argument("model_file", metavar="MODEL", type=click.Path(dir_okay=True), callback=model_paths)
@click.option("--p-matrix-cap", type=click.IntRange(min=0), default=DEFAULT_P_MATRIX_CAP, show_default=True,
              help="Run the exact P-matrix test (2^m - 1 minors) up to this width.")
@click.option("--json", "as_json", is_flag=True)
@guard
def check(model_file: str, p_matrix_cap: int, as_json: bool) -> None:
    """Is a DEQ well-posed (one fixed point for every input), and why.  Exit 1 when it is not shown to be."""
    from regioncount.models.modelfile import json_model
    from regioncount.models.wellposed import certify

    parsed = json_model(model_file)  # a v1 JSON file is checked without torch
    if parsed is not None:
        kind, W, name = parsed["type"], parsed.get("W"), parsed["name"]
        describe = (f"DEQ width {len(parsed['W'])}, input {len(parsed['U'][0])} -> output {len(parsed['A'])}"
                    if kind == "deq" else "FFN")
    else:
        from regioncount.io.model_files import load_model
        from regioncount.models.networks import DEQ

        model = load_model(model_file)
        kind, name, describe = ("deq" if isinstance(model, DEQ) else "ffn"), model.name, model.describe()
        W = model.W if isinstance(model, DEQ) else None
    if kind != "deq":
        if as_json:
            print_json({"well_posed": True, "method": "ffn", "reason": "a feed-forward network has no fixed point "
                        "to solve: it is always well-defined"})
        else:
            click.echo(f"{model_file}: an FFN, always well-defined (no fixed point to solve)")
        return
    cert = certify(W, p_matrix_cap)
    from .tables import render

    render(cert, as_json=as_json, title="DEQ well-posedness", head=[("model", f"{name or model_file} ({describe})")])
    if cert.well_posed is not True:
        raise click.exceptions.Exit(1)

