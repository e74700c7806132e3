"""``regioncount steep``: the steep-ramp separation (bounded-weight DEQ against weight-hungry FFNs)."""

from __future__ import annotations

import math
import sys

import click
from rich.table import Table

from .common import guard, progress_bar
from .render import print_json, stdout_console


@click.command()
@click.option("--widths", "widths_text", default="8:40", show_default=True,
              help="Steepness m (ramp width delta = 2^-m): A:B, A:B:step or a,b,c.")
@click.option("--depths", "depths_text", default="1:6", show_default=True, help="FFN depths L (hidden layers).")
@click.option("--max-width", type=click.IntRange(min=1, max=2**40), default=2**16, show_default=True,
              help="Width cap of the FFNs the lower bound covers.")
@click.option("--eps", "eps_text", default="0.25", show_default=True,
              help="L-infinity error allowed to the FFN, in [0, 1/2) (decimal or fraction).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False),
              help="Write log2(largest weight) against m to FILE.png.")
@guard
def steep(widths_text: str, depths_text: str, max_width: int, eps_text: str, as_json: bool,
          plot_file: str | None) -> None:
    """Steep ramp clip((x - 1/2) 2^m, 0, 1): a width-2 DEQ with weights <= 1 represents it exactly; an FFN of
    depth L and width <= w with error <= eps needs weights B with B^(L+1) >= (1 - 2 eps) 2^m / w^L."""
    from regioncount.separation import parse_widths
    from regioncount.steep import MAX_STEEPNESS, parse_eps, steep_row

    if plot_file is not None:
        from regioncount.atomic import check_output_path

        check_output_path(plot_file, (".png",), "the plot")
    ms = parse_widths(widths_text)
    depths = parse_widths(depths_text)
    if max(ms) > MAX_STEEPNESS:
        raise click.UsageError(f"--widths: steepness m at most {MAX_STEEPNESS}, got {max(ms)}")
    if max(depths) > 64:
        raise click.UsageError(f"--depths: at most 64 hidden layers, got {max(depths)}")
    eps = parse_eps(eps_text)
    rows = []
    with progress_bar(not as_json and sys.stderr.isatty(), "steep ramps") as progress:
        for i, m in enumerate(ms):
            rows.append(steep_row(m, depths, max_width, eps))
            if progress is not None:
                progress((i + 1) / len(ms))
    if plot_file is not None:
        from regioncount.plot import plot_steep  # deferred: matplotlib costs 0.35 s to import

        plot_steep(rows, plot_file)
    if as_json:
        print_json({"target": "clip((x - 1/2) / delta, 0, 1) on [0, 1], delta = 2^-m", "eps": float(eps),
                    "eps_exact": str(eps), "max_width": max_width, "rows": [row.to_json() for row in rows]})
        return
    table = Table(title=f"Steep ramp, delta = 2^-m: log2 of the largest |weight|. FFNs with error <= {eps}: "
                        f"certified lower bound at width <= {max_width:,} (cap) and at width 2, and the "
                        "constructed width-2 FFN (built, exact)",
                  title_justify="left")
    table.add_column("m", justify="right")
    table.add_column("DEQ max|w| (error)", justify="right")
    for depth in depths:
        table.add_column(f"L={depth}\ncap | w=2 | built", justify="right")
    for row in rows:
        cells = [str(row.m), f"{row.deq_max_abs_weight:g} ({float(row.deq_linf_error):g})"]
        for d in row.depths:
            cap, two = (f"{math.log2(b):.1f}" if b > 0 else "-" for b in (d.weight_lower_bound, d.width2_lower_bound))
            cells.append(f"{cap} | {two} | {math.log2(d.constructed_max_abs_weight):.0f}")
        table.add_row(*cells)
    console = stdout_console()
    console.print(table)
    last = rows[-1]
    needing = [d.depth for d in last.depths if d.weight_lower_bound > 1]
    console.print(
        f"DEQ: width 2, every |weight| <= 1, exact error 0 at every m (fixed point solved exactly). FFN: at m = "
        f"{last.m}, every FFN of depth {', '.join(map(str, needing)) or '(none listed)'} and width <= {max_width:,} "
        f"with error <= {eps} needs some |weight| > 1, growing like 2^(m / (L + 1)); the constructed width-2 FFNs "
        "(exact, error 0) come within a factor 2^(1 + L/(L+1)) of the width-2 bound. Bound: Lip(g) <= B (w B)^L "
        "against Lip >= (1 - 2 eps) / delta (docs/steep.md).")
