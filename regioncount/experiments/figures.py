"""The figures of ``regioncount reproduce``: each experiment's test losses with their counted companion
(the exact linear regions of every trained net on [0, 1]) underneath, as one PNG per experiment (matplotlib's
object API: no pyplot, no backend switch)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import mean

from matplotlib.figure import Figure

from ..core.atomic import atomic_output
from .gotu_runs import GotuResult
from .runner import ExperimentResult
from .runs import RunResult
from .steep_runs import SteepResult


def _series(runs: list[RunResult], field: str) -> dict[str, dict[int, list[float]]]:
    """Values of ``field`` by line (DEQs, or FFNs of one depth) and width."""
    lines: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        line = "DEQ" if run.kind == "deq" else f"FFN, depth {len(run.widths)}"
        lines[line][run.widths[0]].append(float(getattr(run, field)))
    return lines


def _draw_lines(ax, runs: list[RunResult], field: str) -> None:
    """Mean over seeds (markers and line) and the seeds' range (band) against width, one line per family."""
    for line, by_width in sorted(_series(runs, field).items()):
        widths = sorted(by_width)
        ax.plot(widths, [mean(by_width[w]) for w in widths], marker="o" if line == "DEQ" else "s",
                lw=2.2 if line == "DEQ" else 1.2, label=line)
        ax.fill_between(widths, [min(by_width[w]) for w in widths], [max(by_width[w]) for w in widths], alpha=0.15)


def _plot_widths(result: ExperimentResult, path: Path) -> None:
    targets = result.experiment.targets
    along = any(run.along_training for run in result.runs)
    fig = Figure(figsize=(3.6 * len(targets) + 0.6, 9.4 if along else 6.4), layout="constrained")
    axes = fig.subplots(3 if along else 2, len(targets), squeeze=False)
    for col, m in enumerate(targets):
        runs = [run for run in result.runs if run.m == m]
        top, bottom = axes[0][col], axes[1][col]
        _draw_lines(top, runs, "test_loss")
        top.set_yscale("log")
        top.set_title(f"target $T^{{{m}}}$ ($2^{{{m}}}$ pieces)")
        top.set_xlabel("width")
        _draw_lines(bottom, runs, "regions")
        bottom.axhline(2 ** m, color="k", ls="--", lw=0.8, label=f"$2^{{{m}}}$ (target)")
        bottom.set_yscale("log", base=2)
        bottom.set_xlabel("width")
        if along:
            _draw_along_training(axes[2][col], runs, m)
        if col == 0:
            top.set_ylabel("test loss (MSE)")
            bottom.set_ylabel("linear regions on [0, 1] (exact count)")
            top.legend(fontsize=8)
            bottom.legend(fontsize=8)
    _finish(fig, result, path)


def _draw_along_training(ax, runs: list[RunResult], m: int) -> None:
    """Exact regions of the snapshots against the training step: the widest net of each family, mean over
    seeds."""
    families: dict[str, list[RunResult]] = defaultdict(list)
    for run in runs:
        families["DEQ" if run.kind == "deq" else f"FFN, depth {len(run.widths)}"].append(run)
    for family, members in sorted(families.items()):
        widest = max(run.widths[0] for run in members)
        chosen = [run for run in members if run.widths[0] == widest and run.along_training]
        if not chosen:
            continue
        steps = [row["step"] for row in chosen[0].along_training]
        regions = [mean(run.along_training[i]["regions"] for run in chosen) for i in range(len(steps))]
        ax.plot(steps, regions, marker="o" if family == "DEQ" else "s", ms=3, label=f"{family}, width {widest}")
    ax.axhline(2 ** m, color="k", ls="--", lw=0.8)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("training step")
    ax.set_ylabel("regions along training (exact)")
    ax.legend(fontsize=7)


def _plot_bars(result: ExperimentResult, path: Path) -> None:
    labels = list(dict.fromkeys(run.label for run in result.runs))
    fig = Figure(figsize=(1.3 * len(labels) + 3, 6.4), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    for ax, field, name in ((top, "test_loss", "test loss (MSE)"), (bottom, "regions", "linear regions (exact)")):
        for i, label in enumerate(labels):
            values = [float(getattr(run, field)) for run in result.runs if run.label == label]
            ax.bar(i, mean(values), color="C1" if label.startswith("DEQ") else "C0", alpha=0.8)
            ax.plot([i] * len(values), values, "k.", ms=4)
        ax.set_xticks(range(len(labels)))
        flops = {run.label: run.flops for run in result.runs}
        ax.set_xticklabels([f"{label}\n{flops[label]} FLOPs" for label in labels], fontsize=8)
        ax.set_ylabel(name)  # a linear scale from 0: bar lengths mean what they show
    bottom.axhline(2 ** result.experiment.targets[0], color="k", ls="--", lw=0.8, label="target pieces")
    bottom.legend(fontsize=8)
    _finish(fig, result, path)


def _finish(fig: Figure, result: ExperimentResult, path: Path) -> None:
    e = result.experiment
    fig.suptitle(f"{e.figure} (reproduced{', quick setting' if e.quick else ''}): {e.name}, "
                 f"{len(e.seeds)} seed(s), {e.steps} Adam steps", fontsize=10)
    with atomic_output(path) as temp:
        fig.savefig(temp, dpi=150, format="png")


def _plot_gotu(result: GotuResult, path: Path) -> None:
    """GOTU errors by model and target, the trained baselines' final training losses, and the feature heat
    maps (the drawing of ``regioncount bias``)."""
    from ..viz.bias_plot import draw_features, draw_gotu

    fig = Figure(figsize=(20, 4.8), layout="constrained")
    axes = fig.subplots(1, 2 + len(result.maps), width_ratios=[1.4, 0.9] + [1.0] * len(result.maps))
    draw_gotu(axes[0], result.rows)
    trained = [row for row in result.rows if row.train_loss is not None]
    labels = [f"{row.model.split(' (')[0]}, {row.target}" for row in trained]
    axes[1].barh(range(len(trained)), [max(row.train_loss or 0.0, 1e-300) for row in trained], color="C2")
    axes[1].set_yticks(range(len(trained)), labels, fontsize=7)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("final training loss (largest over seeds)")
    axes[1].set_title("training on the seen half")
    draw_features(fig, axes[2:], result.maps)
    e = result.experiment
    fig.suptitle(f"{e.figure} (reproduced{', quick setting' if e.quick else ''}): GOTU on {{-1, 1}}^{e.dim}, "
                 f"{len(e.seeds)} seed(s), {e.steps} Adam steps", fontsize=10)
    with atomic_output(path) as temp:
        fig.savefig(temp, dpi=150, format="png")


def _steep_means(result: SteepResult, kind: str, field: str) -> tuple[list[int], list[float]]:
    dims = list(result.experiment.dims)
    values = []
    for d in dims:
        found = [getattr(r, field) for r in result.runs if r.d == d and r.kind == kind and getattr(r, field) is not None]
        values.append(mean(found) if found else float("nan"))
    return dims, values


def _plot_steep(result: SteepResult, path: Path) -> None:
    """Errors, log2 of the largest |parameter| (with the FFN bound at the FFN's measured error) and exact
    regions along x_1, against the dimension; means over the seeds."""
    import math

    fig = Figure(figsize=(15, 4.6), layout="constrained")
    errors, weights, regions = fig.subplots(1, 3)
    for kind, marker, colour in (("deq", "o", "C1"), ("ffn", "s", "C0")):
        label = "DEQ (bisection, trained knots)" if kind == "deq" else "FFN"
        dims, sup = _steep_means(result, kind, "sup_error")
        errors.plot(dims, sup, marker=marker, color=colour, label=f"{label}: sup error")
        dims, mse = _steep_means(result, kind, "test_mse")
        errors.plot(dims, mse, marker=marker, color=colour, ls=":", label=f"{label}: MSE")
        dims, largest = _steep_means(result, kind, "max_abs_weight")
        weights.plot(dims, [math.log2(v) for v in largest], marker=marker, color=colour, label=label)
        dims, count = _steep_means(result, kind, "regions")
        regions.plot(dims, count, marker=marker, color=colour, label=label)
    dims, bound = _steep_means(result, "ffn", "ffn_log2_bound_at_error")
    weights.plot(dims, bound, "k--", lw=1, label="any FFN of this shape at the FFN's error: lower bound")
    errors.set_yscale("log")
    errors.set_title("error against g_d (measured on a grid)")
    weights.set_title("log2 of the largest |parameter|")
    regions.set_title("linear regions along x_1 (exact)")
    for ax in (errors, weights, regions):
        ax.set_xlabel("dimension d (slope 2^d)")
        ax.legend(fontsize=7)
    e = result.experiment
    fig.suptitle(f"{e.figure} (reproduced{', quick setting' if e.quick else ''}): steep target, "
                 f"{len(e.seeds)} seed(s), {e.steps} Adam steps", fontsize=10)
    with atomic_output(path) as temp:
        fig.savefig(temp, dpi=150, format="png")


def plot_experiment(result: ExperimentResult | GotuResult | SteepResult, path: str | Path) -> Path:
    """Write the experiment's figure (layout by its task and its configuration's ``plot``) to ``path``."""
    target = Path(path)
    if isinstance(result, GotuResult):
        _plot_gotu(result, target)
    elif isinstance(result, SteepResult):
        _plot_steep(result, target)
    else:
        (_plot_bars if result.experiment.plot == "bars" else _plot_widths)(result, target)
    return target
