"""``regioncount plot`` and the exact partitions of ``count`` (--plane in 2-D, --exact in a d-D box): graphs, PNGs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np

from regioncount.core.atomic import atomic_output, check_output_path
from regioncount.core.errors import RegionCountError

from .common import POLYGON_SUFFIXES, interactive, max_memory_bytes, parse_point, working
from .render import FINITE, fmt_int, model_label

if TYPE_CHECKING:
    from regioncount.line.envelope import ColumnEnvelope

def plane_options(func: Callable) -> Callable:
    """Options that choose a 2-D slice: --box, --origin/--dirs/--extent, --through."""
    options = [
        click.option("--origin", type=str, default=None, metavar="P", help="Plane origin (comma-separated)."),
        click.option("--dirs", nargs=2, type=str, default=None, metavar="U V", help="Plane directions."),
        click.option("--extent", type=FINITE, default=1.0, show_default=True,
                     help="The plane slice is origin + s U + t V, (s, t) in [-extent, extent]^2."),
        click.option("--through", nargs=3, type=str, default=None, metavar="P1 P2 P3",
                     help="The slice P1 + s (P2 - P1) + t (P3 - P1), s, t in [0, 1]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def partition_from_options(model, box, origin, dirs, extent, through, device, max_regions, assume_well_posed,
                           memory_limit: int | None = None, max_seconds: float | None = None):
    from regioncount.partition.plane2d import partition_plane

    low = high = None
    if box is not None:
        low, high = parse_point(box[0], "--box LO"), parse_point(box[1], "--box HI")
    origin_p = None if origin is None else parse_point(origin, "--origin")
    dirs_p = None if dirs is None else (parse_point(dirs[0], "--dirs U"), parse_point(dirs[1], "--dirs V"))
    through_p = None if through is None else tuple(parse_point(p, "--through") for p in through)
    if box is not None and (origin is not None or through is not None):
        raise RegionCountError("give either --box (2-D input) or a plane (--origin/--dirs or --through)")
    return partition_plane(model, low, high, origin=origin_p, dirs=dirs_p, extent=extent, through=through_p,
                           device=device, max_regions=max_regions, memory_limit=memory_limit,
                           assume_well_posed=assume_well_posed, max_seconds=max_seconds)


def plot_plane(model, out_file: str, slice_options: tuple, *, level, boundary: bool, colour: str,
               output_index: int, dpi: int, size, device: str, assume_well_posed: bool, limits: tuple
               ) -> tuple[str, str]:
    """The 2-D part of ``plot``: partition the slice, draw it (with the level set or the decision boundary),
    and return the summary line and the method."""
    from regioncount.partition.decision import decision_boundary
    from regioncount.viz.plot import plot_partition

    box, origin, dirs, extent, through = slice_options
    max_regions, memory_limit, max_seconds = limits
    partition = partition_from_options(model, box, origin, dirs, extent, through, device, max_regions,
                                       assume_well_posed, memory_limit=memory_limit, max_seconds=max_seconds)
    edge = decision_boundary(partition) if boundary else None
    for notice in plot_partition(partition, out_file, output=output_index, level=level, colour=colour, dpi=dpi,
                                 size=size or (6.5, 6.0), boundary=edge):
        click.echo(f"note: {notice}", err=True)
    summary = f"{partition.activation_regions:,} regions, {partition.linear_pieces:,} linear pieces"
    if edge is not None:
        summary += (f"; decision boundary {edge.length:.6g} long, {len(edge.segments):,} segments in "
                    f"{edge.regions_crossed:,} regions")
    return summary, partition.method


def count_plane(model, model_file: str, box, origin, dirs, extent: float, through, assume_well_posed: bool,
                options: dict, *, graph_file: str | None, polygons_file: str | None, plot_file: str | None,
                output_index: int, dpi: int, size) -> None:
    """The exact 2-D part of ``count``: partition, optional GraphML/polygon/PNG outputs, table or JSON."""
    from .tables import render

    with working(interactive(options["as_json"]), "partitioning the plane exactly"):
        partition = partition_from_options(model, box, origin, dirs, extent, through, options["device"],
                                           options["max_regions"], assume_well_posed,
                                           memory_limit=max_memory_bytes(options["max_memory"]),
                                           max_seconds=options.get("max_seconds"))
    if graph_file is not None:
        write_graph(partition, graph_file)
    if polygons_file is not None:
        write_polygons(partition, polygons_file)
    if plot_file is not None:
        from regioncount.viz.plot import plot_partition

        plot_partition(partition, plot_file, output=output_index, dpi=dpi, size=size or (6.5, 6.0))
    render(partition, as_json=options["as_json"], title=f"Exact 2-D partition of {Path(model_file).name}",
           head=[("model", model_label(partition.model, model))], extra={"file": str(Path(model_file))})


def count_box_exact(model, model_file: str, box, options: dict, *, graph_file: str | None,
                    all_space: bool = False, assume_well_posed: bool = False, max_seconds: float | None = None) -> None:
    """The exact d-D part of ``count`` (--exact): partition of the box, optional GraphML, table or JSON; with
    --all-space every region of R^d."""
    from regioncount.partition.box_partition import partition_box

    from .tables import render

    if all_space:
        from regioncount.partition.all_space import count_all_space

        with working(interactive(options["as_json"]), "partitioning all of R^d exactly"):
            result = count_all_space(model, device=options["device"],
                                     max_regions=options["max_regions"],
                                     memory_limit=max_memory_bytes(options["max_memory"]),
                                     assume_well_posed=assume_well_posed, max_seconds=max_seconds)
        render(result, as_json=options["as_json"], title=f"Every region of R^{result.dimension}: {Path(model_file).name}",
               head=[("model", model_label(result.model, model))], extra={"file": str(Path(model_file))})
        return

    low = high = None
    if box is not None:
        low, high = parse_point(box[0], "--box LO"), parse_point(box[1], "--box HI")
    with working(interactive(options["as_json"]), "partitioning the box exactly"):
        partition = partition_box(model, low, high, device=options["device"],
                                  max_regions=options["max_regions"],
                                  memory_limit=max_memory_bytes(options["max_memory"]),
                                  assume_well_posed=assume_well_posed, max_seconds=max_seconds)
    if graph_file is not None:
        write_graph(partition, graph_file)
    render(partition, as_json=options["as_json"], title=f"Exact partition of a {partition.box.dim}-D box: "
           f"{Path(model_file).name}", head=[("model", model_label(partition.model, model))],
           extra={"file": str(Path(model_file))})


def write_polygons(partition, path: str) -> None:
    """Pieces as GeoJSON (plane coordinates) or .npz (padded vertex arrays, counts, region ids, areas)."""
    target = check_output_path(path, POLYGON_SUFFIXES, "the polygons file")
    xy = partition.polygons.xy.cpu().numpy()
    n = partition.polygons.n.cpu().numpy()
    region = partition.region.cpu().numpy()
    areas = partition.polygons.areas().cpu().numpy()
    with atomic_output(target) as temp:
        if target.suffix.lower() in (".geojson", ".json"):
            features = []
            for i in range(len(n)):
                ring = xy[i, : n[i]].tolist()
                features.append({"type": "Feature", "properties": {"region": int(region[i]), "area": float(areas[i])},
                                 "geometry": {"type": "Polygon", "coordinates": [ring + [ring[0]]]}})
            temp.write_text(json.dumps({"type": "FeatureCollection", "plane": partition.plane.to_json(),
                                        "features": features}))
        else:
            with open(temp, "wb") as handle:
                np.savez_compressed(handle, vertices=xy, vertex_counts=n, region=region, areas=areas,
                                    region_areas=partition.areas.cpu().numpy())


def write_graph(partition, path: str) -> None:
    import networkx as nx

    target = check_output_path(path, (".graphml",), "the adjacency graph (GraphML)")
    with atomic_output(target) as temp:
        nx.write_graphml(partition.graph, temp)


def segment_envelope(model, interval, ends, output: int, dpi: int, size) -> ColumnEnvelope | None:
    """The pixel-column envelope a segment plot is drawn from, filled by the walk itself (memory independent
    of the number of pieces); None for a general-W DEQ, whose pattern walk keeps its breakpoints instead."""
    from regioncount.core.geometry import resolve_segment
    from regioncount.line.envelope import ColumnEnvelope, output_along
    from regioncount.models.networks import DEQ

    _check_output_index(model, output)
    if isinstance(model, DEQ) and model.unit_order is None:
        return None
    seg = resolve_segment(model, interval, ends)
    columns = max(50, int(size[0] * dpi * 0.8))
    return ColumnEnvelope(seg.t_low, seg.t_high, columns, output, output_along(model, seg, output))


def _check_output_index(model, output: int) -> None:
    k = model.output_dim
    if not 0 <= output < k:
        raise RegionCountError(f"output {output} does not exist: the model has {k} output(s)")


def segment_plot(model, result, path: str, output: int, dpi: int, size: tuple[float, float],
                 envelope: ColumnEnvelope | None = None) -> None:
    """1-D plot of a segment count: from the envelope its walk filled, or (a split count, a general-W DEQ)
    from its kept breakpoints, the output evaluated there."""
    from regioncount.viz.plot import plot_segment

    title = (f"{result.model}: {result.activation_regions:,} activation regions, "
             f"{fmt_int(result.linear_pieces)} linear pieces ({result.method}, {result.dtype})")
    if envelope is not None and envelope.vertices:
        plot_segment(result, path=path, title=title, dpi=dpi, size=size, envelope=envelope)
        return
    import torch

    from regioncount.core.geometry import resolve_segment
    from regioncount.line.envelope import output_along

    _check_output_index(model, output)
    seg = result.segment
    if seg["kind"] == "interval":
        lo, hi = seg["interval"]
        line = resolve_segment(model, (lo, hi), None)
    else:
        lo, hi = 0.0, 1.0
        line = resolve_segment(model, None, (seg["p"], seg["q"]))
    ts = np.concatenate([[lo], result.breakpoints, [hi]])
    evaluate = output_along(model, line, output)
    # in chunks: the memory of the forward pass stays bounded however many breakpoints there are
    t = torch.from_numpy(ts)
    y = torch.cat([evaluate(t[start:start + 2**18]) for start in range(0, t.shape[0], 2**18)])
    plot_segment(result, ts, y.numpy(), path, title=title, dpi=dpi, size=size)
