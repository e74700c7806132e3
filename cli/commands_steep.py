"""``regioncount steep``: the steep-ramp separation (bounded-weight DEQ against weight-hungry FFNs)."""

from __future__ import annotations

import click

from .common import guard, interactive, progress_bar


@click.command()
@click.option("--widths", "widths_text", default="8:40", show_default=True,
              help="Steepness m (ramp width delta = 2^-m): A:B, A:B:step or a,b,c.")
@click.option("--depths", "depths_text", default="1:6", show_default=True, help="FFN depths L (hidden layers).")
@click.option("--max-width", type=click.IntRange(min=1, max=2**40), default=2**16, show_default=True,
              help="Width cap of the FFNs the lower bound covers.")
@click.option("--eps", "eps_text", default="0.25", show_default=True,
              help="L-infinity error allowed to the FFN, in [0, 1/2) (decimal or fraction).")
@click.option("--dims", "dims_text", default=None,
              help="Instead of the 1-D ramp: the d-dimensional target phi(x_1) of slope 2^d, for d in A:B[:step] "
                   "or a,b,c (docs/steep.md).")
@click.option("--knots", type=click.IntRange(min=1, max=10), default=5, show_default=True,
              help="With --dims: the DEQ's K = 2^k units (error about 2^-k); its regions are counted for k <= 5.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False),
              help="Write log2(largest weight) against m to FILE.png.")
@guard
def steep(widths_text: str, depths_text: str, max_width: int, eps_text: str, dims_text: str | None, knots: int,
          as_json: bool, plot_file: str | None) -> None:
    """Steep ramp clip((x - 1/2) 2^m, 0, 1): a width-2 DEQ with weights <= 1 represents it exactly; an FFN of
    depth L and width <= w with error <= eps needs weights B with B^(L+1) >= (1 - 2 eps) 2^m / w^L.  With
    --dims: the d-dimensional steep target, its bisection DEQ and the FFN bound."""
    if dims_text is not None:
        _steep_dims(dims_text, knots, depths_text, max_width, eps_text, as_json, plot_file)
        return
    from regioncount.theory.parsing import parse_widths
    from regioncount.theory.steep import MAX_STEEPNESS, SteepReport, parse_eps, steep_row

    if plot_file is not None:
        from regioncount.core.atomic import check_output_path

        check_output_path(plot_file, (".png",), "the plot")
    ms = parse_widths(widths_text)
    depths = parse_widths(depths_text)
    if max(ms) > MAX_STEEPNESS:
        raise click.UsageError(f"--widths: steepness m at most {MAX_STEEPNESS}, got {max(ms)}")
    if max(depths) > 64:
        raise click.UsageError(f"--depths: at most 64 hidden layers, got {max(depths)}")
    eps = parse_eps(eps_text)
    rows = []
    with progress_bar(interactive(as_json), "steep ramps") as progress:
        for i, m in enumerate(ms):
            rows.append(steep_row(m, depths, max_width, eps))
            if progress is not None:
                progress((i + 1) / len(ms))
    if plot_file is not None:
        from regioncount.viz.plot import plot_steep  # deferred: matplotlib costs 0.35 s to import

        plot_steep(rows, plot_file)
    from .tables import render

    render(SteepReport(rows, depths, max_width, eps), as_json=as_json)


def _steep_dims(dims_text: str, knots: int, depths_text: str, max_width: int, eps_text: str, as_json: bool,
                plot_file: str | None) -> None:
    """``steep --dims``: one row per dimension (:func:`regioncount.theory.steep_dims.steep_dims_row`)."""
    from regioncount.theory.parsing import parse_widths
    from regioncount.theory.steep import parse_eps
    from regioncount.theory.steep_dims import COUNT_MAX_KNOTS_LOG2, MAX_DIMS, SteepDimsReport, steep_dims_row

    if plot_file is not None:
        raise click.UsageError("--plot draws the 1-D ramp; with --dims use --json")
    dims = parse_widths(dims_text)
    depths = parse_widths(depths_text)
    if max(dims) > MAX_DIMS:
        raise click.UsageError(f"--dims: d at most {MAX_DIMS}, got {max(dims)}")
    if max(depths) > 64:
        raise click.UsageError(f"--depths: at most 64 hidden layers, got {max(depths)}")
    eps = parse_eps(eps_text)
    rows = []
    with progress_bar(interactive(as_json), "steep targets") as progress:
        for i, d in enumerate(dims):
            rows.append(steep_dims_row(d, knots, depths, max_width, eps, count=knots <= COUNT_MAX_KNOTS_LOG2))
            if progress is not None:
                progress((i + 1) / len(dims))
    from .tables import render

    render(SteepDimsReport(rows, depths, max_width, eps), as_json=as_json)
