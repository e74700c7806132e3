"""The figure of ``regioncount bias``: interpolants, flow trajectories, GOTU errors and feature heat maps
(``docs/bias.md``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..bias.gotu import GotuRow
    from ..bias.study import BiasReport, FeatureMap


def plot_bias(report: BiasReport, path: str | Path, dpi: int = 150) -> None:
    """Write a 2 x 4 figure: coefficients of the interpolants (sparse and dense planted), the trajectories of
    the DEQ's and the small-init diagonal network's coefficients (sparse), GOTU errors by model and target,
    and the feature heat maps of the diagonal DEQ, the FFN's last hidden layer and the full-W linear DEQ."""
    from matplotlib.figure import Figure  # the object API: no pyplot, no backend switch

    from ..core.atomic import atomic_output

    fig = Figure(figsize=(20, 9), constrained_layout=True)
    axes = fig.subplots(2, 4)
    _draw_interpolants(axes[0, :2], report)
    _draw_trajectories(axes[0, 2:], report)
    draw_gotu(axes[1, 0], report.gotu)
    draw_features(fig, axes[1, 1:], report.features)
    fig.suptitle("Implicit bias of gradient flow on diagonal linear DEQs (regioncount bias)")
    with atomic_output(path) as temp:
        fig.savefig(temp, dpi=dpi, format="png")


def _draw_interpolants(axes, report: BiasReport) -> None:
    """Coefficients of the planted vector and of each interpolant, one panel per planted kind."""
    paths = report.trajectories
    for ax, kind in zip(axes, ("sparse", "dense")):
        shown = [("planted", "k", "o"), ("diagonal linear DEQ", "C0", "s"), ("least l2", "C2", "^"),
                 ("least l1", "C3", "v")]
        alphas = [key for key in paths if key.startswith(f"{kind}: diagonal network")]
        shown += [(key.split(": ", 1)[1], f"C{4 + i}", "x") for i, key in enumerate(alphas)]
        for label, colour, marker in shown:
            result = paths.get(f"{kind}: {label}")
            if result is not None:
                ax.plot(np.arange(result.theta.size), result.theta, marker=marker, ls="none", color=colour,
                        label=label, ms=5, alpha=0.85)
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_title(f"interpolants, {kind} planted coefficients")
        ax.set_xlabel("coefficient i")
        ax.legend(fontsize=7)


def _draw_trajectories(axes, report: BiasReport) -> None:
    """theta_i(t) on a log time axis for the DEQ's flow and the first diagonal network's (sparse instance)."""
    paths = report.trajectories
    network = next((k for k in paths if k.startswith("sparse: diagonal network")), "")
    for ax, key in zip(axes, ("sparse: diagonal linear DEQ", network)):
        result = paths.get(key)
        if result is None or result.times.size < 2:
            ax.set_axis_off()
            continue
        ax.plot(np.maximum(result.times, 1e-3), result.path, lw=1)
        ax.set_xscale("log")
        ax.set_title(f"trajectories theta_i(t): {key}")
        ax.set_xlabel("time t (gradient flow)")


def _gotu_value(rows: Sequence[GotuRow], model: str, target: str, field: str, missing: float) -> float:
    """One number of the GOTU table (``field`` of the row of ``model`` and ``target``), ``missing`` if absent."""
    return next((getattr(r, field) for r in rows if r.model == model and r.target == target), missing)


def draw_gotu(ax, rows: Sequence[GotuRow]) -> None:
    """Bars of the GOTU error (mean over seeds, spread as error bars) by model, one bar per target."""
    models = list(dict.fromkeys(r.model for r in rows))
    width = 0.38
    for k, target in enumerate(("f1", "f2")):
        values = [_gotu_value(rows, m, target, "trained", np.nan) for m in models]
        spread = [_gotu_value(rows, m, target, "spread", 0.0) for m in models]
        ax.bar(np.arange(len(models)) + (k - 0.5) * width, values, width, yerr=spread, label=target)
    ax.set_xticks(np.arange(len(models)), [m.split(" (")[0].replace(" + ", "\n+ ") for m in models], fontsize=7,
                  rotation=20)
    ax.set_ylabel("GOTU error (MSE on x_1 = -1)")
    ax.set_title("generalisation on the unseen half")
    ax.legend()


def draw_features(fig, axes, maps: Sequence[FeatureMap]) -> None:
    """Heat maps of |feature| (normalised to its largest entry) on unseen inputs, one panel per model."""
    for ax, feature in zip(axes, maps):
        magnitudes = np.abs(feature.magnitudes)
        top = magnitudes.max() if magnitudes.size and magnitudes.max() > 0 else 1.0
        image = ax.imshow(magnitudes / top, aspect="auto", cmap="magma", vmin=0, vmax=1)
        ax.set_title(f"{feature.model}\ndensity {feature.density:.2f}", fontsize=9)
        ax.set_xlabel("feature")
        ax.set_ylabel("unseen input")
        fig.colorbar(image, ax=ax, shrink=0.8)
