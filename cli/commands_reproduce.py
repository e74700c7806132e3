"""``regioncount reproduce``: the paper's training experiments, every trained net counted (``docs/reproduction.md``)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from statistics import mean
from typing import TYPE_CHECKING

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .common import guard
from .render import print_json, stderr_console, stdout_console

if TYPE_CHECKING:
    from regioncount.experiments.gotu_runs import GotuResult
    from regioncount.experiments.runner import ExperimentResult


@contextlib.contextmanager
def _run_bar(enabled: bool, label: str) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich bar over an experiment's runs (``update(label, done, total)``), or None when not ``enabled``."""
    if not enabled:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=stderr_console(), transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda text, done, total: progress.update(task, description=text, completed=done, total=total)


def _summary(result: ExperimentResult, figure: str) -> Table:
    """Per target and net: mean test loss and mean exact region count over the seeds."""
    e = result.experiment
    table = Table(title=f"{e.figure}: {e.name}{' (quick)' if e.quick else ''}; {len(e.seeds)} seed(s), "
                        f"{e.steps} steps; figure {figure}", title_justify="left")
    for column in ("target", "net", "FLOPs/iter", "test loss", "regions (exact)", "pieces"):
        table.add_column(column, justify="left" if column in ("target", "net") else "right")
    groups: dict[tuple[int, str], list] = {}
    for run in result.runs:
        groups.setdefault((run.m, run.label), []).append(run)
    for (m, label), runs in groups.items():
        exact = all(run.count_method == "exact" for run in runs)
        table.add_row(f"T^{m} ({2 ** m} pieces)", label, str(runs[0].flops), f"{mean(r.test_loss for r in runs):.3g}",
                      f"{mean(r.regions for r in runs):,.1f}{'' if exact else ' (approx.)'}",
                      f"{mean(r.pieces for r in runs):,.1f}")
    table.caption = f"{len(result.runs)} runs ({result.reused} read back from {result.folder}/runs)"
    return table


def _list(experiments: list, as_json: bool) -> None:
    """The experiments by name: the paper's figure, what is quoted, and how many runs the setting trains."""
    from regioncount.experiments import GotuExperiment, SteepExperiment

    def runs(e) -> int:  # noqa: ANN001 - any experiment type
        if isinstance(e, GotuExperiment):
            return len(e.seeds)
        if isinstance(e, SteepExperiment):
            return 2 * len(e.dims) * len(e.seeds)
        return len(e.targets) * len(e.nets) * len(e.seeds)

    rows = [{"name": e.name, "figure": e.figure, "quoted": e.quoted, "runs": runs(e), "quick": e.quick}
            for e in experiments]
    if as_json:
        print_json({"experiments": rows})
        return
    table = Table(title="experiments (regioncount reproduce NAME)", title_justify="left")
    for column in ("name", "figure", "runs", "quoted"):
        table.add_column(column, justify="right" if column == "runs" else "left")
    for row in rows:
        table.add_row(row["name"], row["figure"], str(row["runs"]), row["quoted"])
    stdout_console().print(table)


def _steep_cells(result, d: int, kind: str) -> list[str]:  # noqa: ANN001 - a SteepResult
    """One row of the steep table: means over the seeds (the proven error: the largest; the bound: the least)."""
    e = result.experiment
    runs = [r for r in result.runs if r.d == d and r.kind == kind]
    proven = [r.proven_error for r in runs if r.proven_error is not None]
    bounds = [r.ffn_log2_bound_at_error for r in runs if r.ffn_log2_bound_at_error is not None]
    net = "DEQ, bisection" if kind == "deq" else f"FFN {e.ffn_depth} x {e.ffn_width}"
    proven_text = f"{max(proven):.3g}" if proven else "-"
    bound_text = f"{min(bounds):.2f}" if bounds else "-"
    return [str(d), net, f"{mean(r.sup_error for r in runs):.3g}", proven_text, f"{mean(r.test_mse for r in runs):.2g}",
            f"{mean(r.max_abs_weight for r in runs):.3g}", bound_text, f"{mean(r.regions for r in runs):,.1f}"]


def _steep_summary(result, figure: str) -> Table:  # noqa: ANN001 - a SteepResult
    """Per dimension and kind: means over the seeds of the errors, largest weight and exact regions."""
    e = result.experiment
    table = Table(title=f"{e.figure}: {e.name}{' (quick)' if e.quick else ''}; steep target g_d, {len(e.seeds)} "
                        f"seed(s), {e.steps} steps; figure {figure}", title_justify="left")
    for column in ("d", "net", "sup error", "proven <=", "MSE", "max |w|", "FFN bound log2", "regions on x_1"):
        table.add_column(column, justify="left" if column == "net" else "right")
    for d in e.dims:
        for kind in ("deq", "ffn"):
            table.add_row(*_steep_cells(result, d, kind))
    table.caption = ("FFN bound: log2 of the largest weight any FFN of this shape needs at the row's measured sup "
                     "error (docs/steep.md); the DEQ's weights are at most 1 by construction")
    return table


def _gotu_summary(result: GotuResult, figure: str) -> Table:
    """Per model and target: GOTU error (trained or the flow's limit, closed form) and training loss."""
    e = result.experiment
    table = Table(title=f"{e.figure}: {e.name}{' (quick)' if e.quick else ''}; GOTU on {{-1, 1}}^{e.dim}, "
                        f"{len(e.seeds)} seed(s), {e.steps} steps; figure {figure}", title_justify="left")
    for column in ("model", "target", "GOTU error", "closed form", "train loss"):
        table.add_column(column, justify="left" if column in ("model", "target") else "right")
    for row in result.rows:
        error = f"{row.trained:.3g}" + (f" +- {row.spread:.2g}" if row.spread else "")
        table.add_row(row.model, row.target, error, "-" if row.closed_form is None else f"{row.closed_form:.3g}",
                      "-" if row.train_loss is None else f"{row.train_loss:.1e}")
    table.caption = "feature densities: " + ", ".join(f"{m.model.split(' (')[0]} {m.density:.2f}" for m in result.maps)
    return table


@click.command()
@click.argument("names", nargs=-1)
@click.option("--quick", is_flag=True, help="Small budgets (every experiment in a few minutes on 2 CPU cores).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reproduction", show_default=True,
              help="Output folder: NAME/results.json, NAME/NAME.png, NAME/runs and NAME/models per experiment.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True,
              help="Device of the exact counts (training runs on the CPU).")
@click.option("--list", "list_only", is_flag=True, help="List the shipped experiments and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@guard
def reproduce(names: tuple[str, ...], quick: bool, out_dir: str, device: str, list_only: bool, as_json: bool) -> None:
    """Train the nets of the paper's experiments (NAMES: shipped experiments or TOML files; default: every
    shipped one), save each, count its linear regions exactly on [0, 1], and draw each figure with its counted
    companion.  Finished runs are read back, not trained again."""
    from regioncount.experiments import builtin_names, load_experiment, plot_experiment, run_experiment

    experiments = [load_experiment(name, quick) for name in (names or builtin_names())]
    if list_only:
        _list(experiments, as_json)
        return
    results = []
    for experiment in experiments:
        with _run_bar(not as_json and sys.stderr.isatty(), experiment.name) as update:
            result = run_experiment(experiment, out_dir, device, progress=update)
        figure = plot_experiment(result, result.folder / f"{experiment.name}.png")
        results.append((result, figure))
    if as_json:
        print_json({"experiments": [r.to_json() | {"figure_file": str(f)} for r, f in results]})
        return
    console = stdout_console()
    for result, figure in results:
        from regioncount.experiments import GotuResult, SteepResult

        if isinstance(result, GotuResult):
            console.print(_gotu_summary(result, str(figure)))
        elif isinstance(result, SteepResult):
            console.print(_steep_summary(result, str(figure)))
        else:
            console.print(_summary(result, str(figure)))
