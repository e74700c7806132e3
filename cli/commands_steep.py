"""``regioncount steep``: the steep-ramp separation (bounded-weight DEQ against weight-hungry FFNs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .common import guard, interactive, progress_bar


def _bounded_list(text: str, flag: str, largest: int, what: str) -> list[int]:
    """Positive integers from A:B[:step] or a,b,c (a one-line usage error beyond ``largest``)."""
    from regioncount.theory.parsing import parse_widths

    values = parse_widths(text)
    if max(values) > largest:
        raise click.UsageError(f"{flag}: {what} at most {largest}, got {max(values)}")
    return values


def _with_progress(items: list[int], make: Callable[[int], Any], label: str, as_json: bool) -> list[Any]:
    """``make(item)`` for each item, with a progress bar for people."""
    rows = []
    with progress_bar(interactive(as_json), label) as progress:
        for i, item in enumerate(items):
            rows.append(make(item))
            if progress is not None:
                progress((i + 1) / len(items))
    return rows


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
    from regioncount.theory.steep import MAX_STEEPNESS, SteepReport, parse_eps, steep_row

    if plot_file is not None:
        from regioncount.core.atomic import check_output_path

        check_output_path(plot_file, (".png",), "the plot")
    ms = _bounded_list(widths_text, "--widths", MAX_STEEPNESS, "steepness m")
    depths = _bounded_list(depths_text, "--depths", 64, "hidden layers")
    eps = parse_eps(eps_text)
    rows = _with_progress(ms, lambda m: steep_row(m, depths, max_width, eps), "steep ramps", as_json)
    if plot_file is not None:
        from regioncount.viz.plot import plot_steep  # deferred: matplotlib costs 0.35 s to import

        plot_steep(rows, plot_file)
    from .tables import render

    render(SteepReport(rows, depths, max_width, eps), as_json=as_json)


def _steep_dims(dims_text: str, knots: int, depths_text: str, max_width: int, eps_text: str, as_json: bool,
                plot_file: str | None) -> None:
    """``steep --dims``: one row per dimension (:func:`regioncount.theory.steep_dims.steep_dims_row`)."""
    from regioncount.theory.steep import parse_eps
    from regioncount.theory.steep_dims import COUNT_MAX_KNOTS_LOG2, MAX_DIMS, SteepDimsReport, steep_dims_row

    if plot_file is not None:
        raise click.UsageError("--plot draws the 1-D ramp; with --dims use --json")
    dims = _bounded_list(dims_text, "--dims", MAX_DIMS, "the dimension d")
    depths = _bounded_list(depths_text, "--depths", 64, "hidden layers")
    eps = parse_eps(eps_text)
    count = knots <= COUNT_MAX_KNOTS_LOG2
    rows = _with_progress(dims, lambda d: steep_dims_row(d, knots, depths, max_width, eps, count=count),
                          "steep targets", as_json)
    from .tables import render

    render(SteepDimsReport(rows, depths, max_width, eps), as_json=as_json)
