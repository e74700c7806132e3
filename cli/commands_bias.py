"""``regioncount bias``: the implicit bias of gradient flow on diagonal linear DEQs (``docs/bias.md``)."""

from __future__ import annotations

import click

from .common import guard, interactive, working


def parse_floats(text: str, flag: str) -> list[float]:
    """Positive finite numbers, comma-separated (a one-line usage error otherwise)."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.UsageError(f"{flag}: expected comma-separated numbers, got {text!r}") from None
    if not values or not all(0 < v < float("inf") for v in values):
        raise click.UsageError(f"{flag}: expected positive finite numbers, got {text!r}")
    return values


@click.command()
@click.option("--samples", "n", type=click.IntRange(min=1, max=500), default=10, show_default=True,
              help="n: training samples of each random instance (n <= d).")
@click.option("--features", "d", type=click.IntRange(min=1, max=500), default=30, show_default=True,
              help="d: features of each random instance.")
@click.option("--scales", "scales_text", default="0.5,1,2", show_default=True,
              help="Initialisation scales beta(0) (the DEQ's 1 / (1 - w(0))), comma-separated.")
@click.option("--steps", "steps_text", default="0.03,0.01,0.003,0.001", show_default=True,
              help="Gradient-descent step sizes compared with the flow.")
@click.option("--max-steps", type=click.IntRange(min=1, max=10**7), default=100_000, show_default=True,
              help="Most gradient-descent steps per step size.")
@click.option("--gotu-dim", type=click.IntRange(min=2, max=64), default=20, show_default=True,
              help="Dimension of the Boolean GOTU task (20 features are shown).")
@click.option("--seeds", type=click.IntRange(min=1, max=20), default=2, show_default=True,
              help="Seeds of the trained FFNs and linear DEQs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random instances.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False),
              help="Write the figure (coefficients, trajectories, GOTU errors, feature heat maps) to FILE.png.")
@guard
def bias(n: int, d: int, scales_text: str, steps_text: str, max_steps: int, gotu_dim: int, seeds: int, seed: int,
         as_json: bool, plot_file: str | None) -> None:
    """Implicit bias of gradient flow on a diagonal linear DEQ z = diag(w) z + x, f = signs . z: the flow's
    limit against the minimiser of sum 1/(2 beta^2) + beta / beta0^3 over the interpolants (both signs of the
    linear term checked), gradient descent against the flow, the DEQ against diagonal networks and least
    norms, generalisation on an unseen half of the Boolean cube (GOTU) and feature density."""
    if plot_file is not None:
        from regioncount.core.atomic import check_output_path

        check_output_path(plot_file, (".png",), "the plot")
    scales = parse_floats(scales_text, "--scales")
    steps = parse_floats(steps_text, "--steps")
    if n > d:
        raise click.UsageError(f"--samples {n} > --features {d}: the result is about the over-parameterised "
                               "regime n <= d")
    from regioncount.bias.study import run_study

    with working(interactive(as_json), "the implicit-bias study") as update:
        report = run_study(n, d, tuple(scales), seed, tuple(steps), max_steps, gotu_dim=gotu_dim, seeds=seeds,
                           progress=update)
    if plot_file is not None:
        from regioncount.viz.bias_plot import plot_bias  # deferred: matplotlib costs 0.35 s to import

        plot_bias(report, plot_file)
    from .tables import render

    render(report, as_json=as_json)
