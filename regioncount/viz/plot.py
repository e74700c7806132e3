"""PNG figures drawn with matplotlib's object API (``Figure``): no pyplot, no global backend switch, so
importing this module changes nothing in the process; PNGs are rendered by the Agg canvas."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..core.atomic import atomic_output, check_output_path
from ..core.errors import RegionCountError


def _check_png(path: str | Path) -> Path:
    return check_output_path(path, (".png",), "a plot (PNG)")


#: Largest figure rendered (pixels): 12,000 x 12,000 (about 0.6 GB of RGBA buffer).
MAX_PIXELS = 144_000_000


def check_figure(size: tuple[float, float], dpi: int) -> None:
    """Refuse, before any work, a figure whose pixel buffer would not fit (size in inches times dpi)."""
    pixels = size[0] * dpi * size[1] * dpi
    if not pixels <= MAX_PIXELS:
        raise RegionCountError(f"a {size[0]:g} x {size[1]:g} inch figure at {dpi} dpi has {pixels:,.0f} pixels, above "
                               f"the limit of {MAX_PIXELS:,} (lower `dpi` or `size`)")


def _save(fig, path: Path, dpi: int) -> None:
    with atomic_output(path) as temp:
        fig.savefig(temp, dpi=dpi, format="png")


def _tex(text: str, exponent: bool = False) -> str:
    """A number typed by the user (``0.5``, ``1/3``) as mathtext: fractions as \\frac, or kept as a/b in an
    exponent (where a stacked fraction is too small to read)."""
    if "/" in text and not exponent:
        num, den = text.split("/", 1)
        return rf"\frac{{{num}}}{{{den}}}"
    return text


def fit_caption(text: str, width_inches: float, fontsize: float = 9) -> str:
    """``text`` with each line wrapped to the figure's width (about 1.9 characters per inch per point of
    font size below 10), so captions are not cut at the figure's edge."""
    import textwrap

    per_line = max(20, int(width_inches * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.fill(line, per_line) for line in text.split("\n"))


def plot_separation(rows: Sequence, alpha: str, path: str | Path, *, dpi: int = 150,
                    size: tuple[float, float] = (8.0, 8.4)) -> None:
    """Top: log2(regions) against m: the DEQ (counted), the family's best bound, the best in-family FFN and
    the smallest match (built and counted), and trained FFNs.  Bottom: the L1 error bracket of the family
    against T^m (lower bound, explicit in-family FFN)."""
    path = _check_png(path)
    check_figure(size, dpi)
    fig = Figure(figsize=size)
    ax, err = fig.subplots(2, 1, gridspec_kw={"height_ratios": [2.2, 1]})
    _draw_separation_regions(ax, rows, alpha)
    _draw_error_bracket(err, rows)
    fig.tight_layout()
    _save(fig, path, dpi)


def _counted_points(rows: Sequence) -> list[tuple[str, list[tuple[int, int]], dict[str, Any]]]:
    """The counted constructions of the separation rows as (label, [(m, regions)], style): the best in-family
    FFN of each row (its deepest-reaching construction), the smallest match of depth L_max and the trained
    FFNs; rows where one was not counted are left out."""
    tops = [(row.m, max(row.depths, key=lambda d: d.best_in_family.get("pieces_by_construction", 0)).best_in_family)
            for row in rows]
    best = [(m, top["regions"]) for m, top in tops if top.get("regions")]
    match = [(row.m, row.depths[-1].smallest_match.get("regions")) for row in rows]
    trained = [(row.m, max(1, t["linear_pieces"])) for row in rows for t in row.trained]
    return [("best in-family FFN, built and counted", best, {"marker": "D", "color": "tab:red", "ms": 5}),
            ("smallest match of depth L_max (outside the family), built and counted",
             [(m, r) for m, r in match if r], {"marker": "^", "color": "tab:green", "ms": 7}),
            ("trained FFNs in the family (exact pieces)", trained, {"marker": "x", "color": "tab:purple", "ms": 8})]


def _draw_separation_regions(ax: Any, rows: Sequence, alpha: str) -> None:
    """log2(regions) against m: the DEQ, the family's bounds and the counted constructions."""
    ms = [row.m for row in rows]
    ax.plot(ms, [math.log2(row.deq_regions) for row in rows], "o-", color="tab:blue", lw=2,
            label=r"Theorem 1 DEQ, counted exactly ($2^m$)")
    # hollow squares: a counted construction that attains the bound shows inside its square, not under it
    ax.plot(ms, [math.log2(row.best_ffn_bound) for row in rows], "s--", color="tab:red", ms=9,
            markerfacecolor="none", label=rf"best FFN bound, depth $\leq m^{{{_tex(alpha, True)}}}$, width "
                  rf"$\leq 2^{{m^{{1-{_tex(alpha, True)}}}-1}}$")
    ax.plot(ms, [math.log2(row.same_neurons_bound) for row in rows], ":", color="tab:gray",
            label="best FFN bound with m ReLUs in total")
    for label, points, style in _counted_points(rows):
        if points:
            ax.plot([p[0] for p in points], [math.log2(p[1]) for p in points], ls="none", label=label, zorder=3,
                    **style)
    ax.set_xlabel("DEQ width m")
    ax.set_ylabel(r"$\log_2$(linear regions on [0, 1])")
    ax.set_title(rf"DEQ vs FFN separation, $\alpha = {_tex(alpha)}$")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, loc="upper left", frameon=False)


def _draw_error_bracket(err: Any, rows: Sequence) -> None:
    """The L1 error bracket of the family against T^m: the lower bound and the explicit in-family FFN."""
    bracket = [(row.m, row.l1_error["lower_bound"], row.l1_error["constructed"]) for row in rows if row.l1_error]
    if bracket:
        err.fill_between([b[0] for b in bracket], [b[1] for b in bracket], [b[2] for b in bracket],
                         color="tab:orange", alpha=0.25, label="L1 error of the best in-family FFN lies here")
        err.plot([b[0] for b in bracket], [b[1] for b in bracket], "-", color="tab:orange",
                 label="lower bound (every in-family FFN)")
        err.plot([b[0] for b in bracket], [b[2] for b in bracket], "--", color="tab:brown",
                 label="explicit in-family FFN (exact)")
    err.set_xlabel("DEQ width m")
    err.set_ylabel(r"$L^1$ error to $T^m$")
    err.set_ylim(0, 0.26)
    err.grid(alpha=0.3)
    err.xaxis.set_major_locator(MaxNLocator(integer=True))
    err.legend(fontsize=7, loc="lower right", frameon=False)


def plot_steep(rows: Sequence, path: str | Path, *, dpi: int = 150, size: tuple[float, float] = (8.0, 5.6)) -> None:
    """log2 of the largest weight against m (delta = 2^-m): per depth, the certified lower bound for any FFN at
    the width cap (solid) and the constructed width-2 FFN (dashed); the DEQ's constant weights (flat)."""
    path = _check_png(path)
    check_figure(size, dpi)
    fig = Figure(figsize=size)
    ax = fig.subplots()
    ms = [row.m for row in rows]
    colours = ["tab:red", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
    for k, depth in enumerate(d.depth for d in rows[0].depths):
        colour = colours[k % len(colours)]
        bounds = [max(row.depths[k].weight_lower_bound, 1e-300) for row in rows]
        ax.plot(ms, [math.log2(b) for b in bounds], "-", color=colour, lw=1.8,
                label=rf"FFN depth {depth}: certified lower bound (width $\leq$ {rows[0].depths[k].width_cap:,})")
        ax.plot(ms, [math.log2(row.depths[k].constructed_max_abs_weight) for row in rows], "--", color=colour,
                lw=1.0, label=f"FFN depth {depth}: constructed, width 2, exact")
    ax.plot(ms, [math.log2(row.deq_max_abs_weight) for row in rows], "o-", color="tab:blue", lw=2,
            label=r"DEQ, width 2: exact, every $|w| \leq 1$")
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_xlabel(r"$m$  (ramp width $\delta = 2^{-m}$)")
    ax.set_ylabel(r"$\log_2$ of the largest $|w|$")
    ax.set_title(fit_caption(r"Steep ramp: weights an FFN needs ($L^\infty$ error $\leq \varepsilon$) against the DEQ's",
                             size[0], 10))
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    fig.tight_layout()
    _save(fig, path, dpi)


def plot_track(steps: Sequence[int], regions: Sequence[int], pieces: Sequence[int | None], path: str | Path, *,
               title: str, regions_label: str = "activation regions", dpi: int = 150,
               size: tuple[float, float] = (8.0, 4.5)) -> None:
    """Regions (and linear pieces, where counted) against the training step of each checkpoint; ``steps``
    ascending."""
    path = _check_png(path)
    check_figure(size, dpi)
    fig = Figure(figsize=size)
    ax = fig.subplots()
    ax.plot(steps, regions, "o-", color="tab:blue", lw=1.8, ms=4, label=regions_label)
    if pieces and all(p is not None for p in pieces):
        ax.plot(steps, [float(p) for p in pieces if p is not None], "s--", color="tab:orange", lw=1.2, ms=3,
                label="linear pieces")
    ax.set_xlabel("training step")
    ax.set_ylabel("count")
    ax.set_title(fit_caption(title, size[0], 10), fontsize=10)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    _save(fig, path, dpi)


def region_colours(n_regions: int, pairs: Sequence[tuple[int, int]] | None = None):
    """(R, 3) RGB colours, one per region, all different, and neighbours far apart in hue.

    Neighbours get different greedy-colouring classes, each class its own hue (golden-ratio spacing);
    within a class, saturation and value vary per region so that every region's colour is unique.
    """
    import colorsys

    import networkx as nx
    import numpy as np

    classes = np.arange(n_regions)
    if pairs is not None and len(pairs):
        graph = nx.Graph()
        graph.add_nodes_from(range(n_regions))
        graph.add_edges_from(pairs)
        colouring = nx.greedy_color(graph, strategy="largest_first")
        classes = np.array([colouring[r] for r in range(n_regions)])
    from matplotlib import colormaps

    golden = 0.6180339887498949
    base = [colorsys.rgb_to_hsv(*c[:3]) for c in colormaps["tab10"](np.arange(10))]
    colours = np.empty((n_regions, 3))
    for r in range(n_regions):
        c = int(classes[r])
        hue = base[c % 10][0] if c < 10 else (c * golden) % 1.0
        sat = 0.30 + 0.40 * ((r * golden * 7) % 1.0)
        val = 0.72 + 0.26 * ((r * golden * 13) % 1.0)
        colours[r] = colorsys.hsv_to_rgb(hue, sat, val)
    return colours


def plot_segment(result, xs=None, ys=None, path: str | Path = "", *, title: str, dpi: int = 150,
                 size: tuple[float, float] = (8.0, 4.5), envelope=None) -> None:
    """The output along a segment: the exact piecewise-linear curve through its breakpoints, every
    breakpoint marked and the activation regions shaded; with many pieces, per pixel column the range of the
    curve's vertices there, the breakpoints per column, and an inset of the first 32 regions.

    Either ``xs``/``ys``, the curve at [t_low, breakpoints..., t_high] (exact: it is linear in between), or
    ``envelope``, a :class:`~regioncount.line.envelope.ColumnEnvelope` filled by the walk (the curve itself
    when it kept every vertex)."""
    import numpy as np

    path = _check_png(path)
    check_figure(size, dpi)
    columns = max(50, int(size[0] * dpi * 0.8))
    if envelope is not None:
        if envelope.complete and envelope.vertices <= columns // 2:
            xs, ys = envelope.head_t, envelope.head_y
        else:
            _plot_columns(result, envelope, path, title=title, dpi=dpi, size=size)
            return
    assert xs is not None and ys is not None
    if len(xs) > columns // 2:  # more than a vertex per two pixels: reduced to columns as a walk's envelope is
        from ..line.envelope import ColumnEnvelope

        reduced = ColumnEnvelope(float(xs[0]), float(xs[-1]), columns, 0, lambda t: t, keep=64)
        reduced.absorb(np.asarray(xs), np.asarray(ys))
        _plot_columns(result, reduced, path, title=title, dpi=dpi, size=size)
        return
    _plot_curve(result, np.asarray(xs), np.asarray(ys), path, title=title, dpi=dpi, size=size)


def _plot_curve(result, xs, ys, path: Path, *, title: str, dpi: int, size: tuple[float, float]) -> None:
    """A segment plot with every vertex: the curve, the regions shaded, the breakpoints marked (up to 400)."""
    import numpy as np
    from matplotlib.collections import LineCollection, PolyCollection

    fig = Figure(figsize=size)
    ax, rug = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [5, 1]})
    ax.plot(xs, ys, color="black", lw=0.8)
    breakpoints = xs[1:-1]
    lo, hi = float(ys.min()), float(ys.max())
    pad = 0.05 * (hi - lo or 1.0)
    regions = len(xs) - 1
    if regions <= 2000:
        shades = [[(xs[i], lo - pad), (xs[i + 1], lo - pad), (xs[i + 1], hi + pad), (xs[i], hi + pad)]
                  for i in range(0, regions, 2)]
        ax.add_collection(PolyCollection(shades, facecolors="tab:blue", alpha=0.10, edgecolors="none"))
    if len(breakpoints) <= 400:
        segments = np.stack([np.stack([breakpoints, np.full_like(breakpoints, lo - pad)], 1),
                             np.stack([breakpoints, np.full_like(breakpoints, hi + pad)], 1)], 1)
        lines = LineCollection(segments, colors="tab:red", linewidths=0.4, alpha=0.6)  # type: ignore[arg-type]
        ax.add_collection(lines)
    ax.set_ylim(lo - pad, hi + pad)
    if regions > 400:
        _inset(ax, xs, ys, regions)
    columns = max(50, int(size[0] * dpi * 0.8))
    hist, edges = np.histogram(breakpoints, bins=columns, range=(xs[0], xs[-1]))
    _finish_segment(fig, ax, rug, result, hist, edges, title, size, path, dpi)


def _plot_columns(result, envelope, path: Path, *, title: str, dpi: int, size: tuple[float, float]) -> None:
    """A segment plot from a column envelope: per column the range of the vertex values (filled), the
    breakpoints per column, and the first 32 regions drawn exactly in an inset."""
    import numpy as np

    fig = Figure(figsize=size)
    ax, rug = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [5, 1]})
    edges = envelope.edges()
    low, high = envelope.low.numpy().copy(), envelope.high.numpy().copy()
    empty = ~np.isfinite(low)
    low[empty], high[empty] = np.nan, np.nan  # a column without a vertex: one piece crosses it
    mids = (edges[:-1] + edges[1:]) / 2
    dense = float(np.nanmax(high - low)) > 0.25 * float(np.nanmax(high) - np.nanmin(low) or 1.0)
    # a curve that sweeps most of its range inside a column fills it: drawn as a grey band, with the mean
    # vertex value per column where the columns hold many vertices, so that its level stays visible
    ax.fill_between(mids, low, high, color="0.6" if dense else "black", linewidth=0.6, step="mid",
                    label=f"range per pixel column ({envelope.vertices - 1:,} pieces in {envelope.columns:,} columns)"
                    if dense else None)
    if dense and envelope.vertices >= 4 * envelope.columns:
        ax.plot(mids, envelope.mean.numpy(), color="black", lw=0.7, drawstyle="steps-mid",
                label="mean of the vertices per column")
    if dense:
        ax.legend(loc="upper left", fontsize=7, frameon=False)
    lo, hi = float(np.nanmin(low)), float(np.nanmax(high))
    pad = 0.05 * (hi - lo or 1.0)
    ax.set_ylim(lo - pad, hi + pad)
    regions = envelope.vertices - 1
    head_t, head_y = envelope.head_t, envelope.head_y
    if regions > 400 and len(head_t) >= 33:
        _inset(ax, head_t, head_y, regions)
    _finish_segment(fig, ax, rug, result, envelope.breakpoints.numpy(), edges, title, size, path, dpi)


def _inset(ax, xs, ys, regions: int) -> None:
    """The first 32 regions, exactly as computed, in an inset of the main axes."""
    k = 32
    inset = ax.inset_axes([0.6, 0.12, 0.38, 0.5])
    low_k, high_k = float(ys[: k + 1].min()), float(ys[: k + 1].max())
    inset.plot(xs[: k + 1], ys[: k + 1], color="black", lw=0.8)
    inset.vlines(xs[1:k], low_k, high_k, colors="tab:red", linewidths=0.4, alpha=0.6)
    inset.set_xlim(xs[0], xs[k])
    inset.set_ylim(low_k - 0.25 * (high_k - low_k or 1.0), high_k + 0.1 * (high_k - low_k or 1.0))
    inset.tick_params(labelsize=6, length=2, pad=1)
    inset.set_xticks([xs[0], xs[k]], [f"{xs[0]:.3g}", f"{xs[k]:.3g}"])
    inset.set_yticks([low_k, high_k], [f"{low_k:.3g}", f"{high_k:.3g}"])
    inset.set_title(f"zoom: first {k} of {regions:,} regions", fontsize=7, pad=2)
    inset.set_facecolor("white")


def _finish_segment(fig, ax, rug, result, per_column, edges, title: str, size: tuple[float, float], path: Path,
                    dpi: int) -> None:
    """Labels, the breakpoints-per-column strip (every breakpoint counted), layout and the file."""
    import numpy as np

    ax.set_ylabel("output")
    ax.set_title(fit_caption(title, size[0]), fontsize=9)
    per_column = np.asarray(per_column, dtype=float)
    rug.stairs(per_column, edges, color="tab:red", linewidth=0.8)
    positive = per_column[per_column > 0]
    if positive.size and positive.max() > 20 * positive.min():  # densities over decades: a log scale
        rug.set_yscale("log")
    rug.set_ylim(bottom=0.5 if rug.get_yscale() == "log" else 0)
    rug.set_ylabel("breakpoints\nper column", fontsize=7)
    rug.set_xlabel("t" if result.segment["kind"] == "segment" else "x")
    rug.set_xlim(edges[0], edges[-1])
    fig.tight_layout()
    _save(fig, path, dpi)


def plot_partition(partition, path: str | Path, *, output: int = 0, level: float | None = None,
                   colour: str = "region", dpi: int = 150, size: tuple[float, float] = (6.5, 6.0),
                   boundary=None) -> list[str]:  # noqa: ANN001 - a DecisionBoundary
    """Every region of a plane partition filled with its own colour, boundaries drawn, optionally the
    level set ``y_output = level``, a decision boundary (:func:`regioncount.partition.decision.decision_boundary`,
    drawn thick) and a colouring by the local gradient norm.  Returns the notices written on the picture (a
    level set that the slice does not reach), for the caller to repeat."""
    from matplotlib.collections import LineCollection, PolyCollection

    path = _check_png(path)
    polys = partition.polygons
    xy = polys.xy.cpu().numpy()
    n = polys.n.cpu().numpy()
    region = partition.region.cpu().numpy()
    k = partition.gradients.shape[1]
    if not 0 <= output < k:
        raise RegionCountError(f"output {output} does not exist: the model has {k} output(s)")
    verts = [xy[i, : n[i]] for i in range(len(n))]
    notices: list[str] = []
    check_figure(size, dpi)
    fig = Figure(figsize=size)
    ax = fig.subplots()
    if colour == "gradient":
        norms = partition.gradients[:, output].norm(dim=1).cpu().numpy()
        collection = PolyCollection(verts, array=norms[region], cmap="viridis", edgecolors="black",
                                    linewidths=0.15 if len(verts) < 20000 else 0.0)
        ax.add_collection(collection)
        from mpl_toolkits.axes_grid1 import make_axes_locatable

        # a colour bar exactly as tall as the (equal-aspect) axes
        bar_axes = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.08)
        fig.colorbar(collection, cax=bar_axes, label=rf"$|\nabla y_{{{output}}}|$ in the plane")
    elif colour == "region":
        colours = region_colours(partition.activation_regions, partition.pairs.tolist())
        ax.add_collection(PolyCollection(verts, facecolors=colours[region], edgecolors="black",
                                         linewidths=0.3 if len(verts) < 5000 else 0.1))
    else:
        raise RegionCountError(f"unknown colouring {colour!r}; choose region or gradient")
    if level is not None:
        notices += _draw_level(ax, partition, xy, n, region, output, level)
    if boundary is not None and len(boundary.segments):
        ax.add_collection(LineCollection(boundary.segments, colors="white", linewidths=3.0))
        ax.add_collection(LineCollection(boundary.segments, colors="crimson", linewidths=1.6))
    plane = partition.plane
    ax.set_xlim(plane.low[0], plane.high[0])
    ax.set_ylim(plane.low[1], plane.high[1])
    ax.set_aspect("equal" if 0.2 < (plane.high[1] - plane.low[1]) / (plane.high[0] - plane.low[0]) < 5 else "auto")
    ax.set_xlabel("s" if plane.u != (1.0, 0.0) else "x1")
    ax.set_ylabel("t" if plane.w != (0.0, 1.0) else "x2")
    level_text = "" if level is None else f", level y_{output} = {level:g}"
    if boundary is not None:
        level_text += f"; decision boundary: {len(boundary.segments):,} segments, length {boundary.length:.4g}"
    ax.set_title(fit_caption(f"{partition.model}\n{partition.activation_regions:,} regions, "
                             f"{partition.linear_pieces:,} linear pieces ({partition.method}, float64{level_text})",
                             size[0]), fontsize=9)
    fig.tight_layout()
    _save(fig, path, dpi)
    return notices


def _draw_level(ax, partition, xy, n, region, output: int, level: float) -> list[str]:  # noqa: ANN001
    """Draw the level set ``y_output = level`` of a plane partition; the notice when the slice misses it."""
    import numpy as np
    from matplotlib.collections import LineCollection

    notices: list[str] = []
    grads = partition.gradients[:, output].cpu().numpy()[region]  # (P, 2)
    offs = partition.offsets[:, output].cpu().numpy()[region]
    vals = xy[..., 0] * grads[:, :1] + xy[..., 1] * grads[:, 1:] + offs[:, None] - level
    V = xy.shape[1]
    idx = np.arange(V)[None]
    nxt = np.where(idx + 1 < n[:, None], idx + 1, 0)
    vn = np.take_along_axis(vals, nxt, 1)
    cross = (vals * vn < 0) & (idx < n[:, None])
    lam = np.where(cross, vals / np.where(cross, vals - vn, 1.0), 0.0)
    pts = xy + lam[..., None] * (np.take_along_axis(xy, nxt[..., None].repeat(2, 2), 1) - xy)
    segments = [pts[i][cross[i]][:2] for i in range(len(n)) if cross[i].sum() >= 2]
    if segments:
        ax.add_collection(LineCollection(segments, colors="white", linewidths=2.2))
        ax.add_collection(LineCollection(segments, colors="black", linewidths=1.0))
    else:  # say so on the picture: an empty level set is an answer, not a failure to draw
        live = vals[np.arange(vals.shape[1])[None] < n[:, None]] + level
        notice = (f"level set y_{output} = {level:g} not reached in this slice "
                  f"(y_{output} in [{live.min():.4g}, {live.max():.4g}])")
        notices.append(notice)
        ax.text(0.5, 0.02, notice, transform=ax.transAxes, ha="center", va="bottom", fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
    return notices
