"""``regioncount`` command line: one small function per command, rich output, ``--json`` for scripts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from regioncount import __version__
from regioncount.core.settings import DEFAULT_MAX_REGIONS, DEVICE_CHOICES, READOUTS

if TYPE_CHECKING:
    from regioncount.core.results import SegmentCount

from .commands_bias import bias
from .commands_plane import plane_options, segment_envelope, segment_plot
from .commands_reproduce import reproduce
from .commands_steep import steep
from .commands_theory import bound, check, compare
from .common import (
    UserError,
    check_outputs,
    guard,
    interactive,
    max_memory_bytes,
    model_paths,
    ordered_pair,
    parse_point,
    progress_bar,
    split_requested,
)
from .render import (
    FINITE,
    FiniteFloat,
    fmt_int,
    model_label,
    stdout_console,
)
from .tables import render, segment_text


def figure_options(func: Callable) -> Callable:
    options = [
        click.option("--output", "output_index", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Which output to plot."),
        click.option("--dpi", type=click.IntRange(min=10, max=1200), default=150, show_default=True),
        click.option("--size", nargs=2, type=FiniteFloat(min=0.5, max=100), default=None, metavar="W H",
                     help="Figure size in inches."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def limit_options(func: Callable) -> Callable:
    """``--max-regions``, ``--max-memory`` and ``--max-seconds``: the limits every counting command takes, with
    one meaning and one default each (``regioncount.core.limits.Limits``)."""
    options = [
        click.option("--max-regions", type=click.IntRange(min=1), default=DEFAULT_MAX_REGIONS, show_default=True,
                     help="Refuse counts estimated above this many regions."),
        click.option("--max-memory", type=FiniteFloat(min=0, min_open=True), default=None,
                     help="GiB allowed for kept breakpoints, sampled pattern sets and 2-D partitions (default: half the RAM)."),
        click.option("--max-seconds", type=FiniteFloat(min=0, min_open=True), default=3600.0, show_default=True,
                     help="A deadline for the whole command: counts projected past it (a timed pilot, a first batch) "
                          "are refused before they run, and any count still running at it stops, split ones "
                          "(--workers, --scheduler, --tasks) and several models included."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def common_count_options(func: Callable) -> Callable:
    func = limit_options(func)
    options = [
        click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True,
                     help="Where to count; auto picks CUDA when available."),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table."),
        click.option("--breakpoints", "breakpoints_file", type=click.Path(dir_okay=False),
                     help="Write the sorted breakpoints to FILE (.npy or .csv)."),
        click.option("--no-linear", is_flag=True, help="Count activation regions only (faster)."),
        click.option("--workers", type=click.IntRange(min=1, max=1024), default=None,
                     help="Split an exact 1-D count over a local Dask cluster of N single-threaded worker processes."),
        click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="Split an exact 1-D count over the Dask cluster at ADDRESS (tcp://host:port)."),
        click.option("--tasks", type=click.IntRange(min=1, max=4096), default=None,
                     help="Parts the count is split into (default: 2 per worker; without a cluster, run in turn)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def run_count(model, *, interval=None, segment=None, device: str, as_json: bool, breakpoints_file: str | None,
              no_linear: bool, max_regions: int, max_memory: float | None, workers: int | None = None,
              scheduler: str | None = None, tasks: int | None = None,
              known_regions: int | None = None, assume_well_posed: bool = False, keep: bool = False,
              max_seconds: float | None = None, envelope=None) -> SegmentCount:
    from regioncount.io.export import write_array
    from regioncount.line.exact1d import count_segment

    memory = max_memory_bytes(max_memory)
    keep = keep or breakpoints_file is not None
    split = split_requested({"workers": workers, "scheduler": scheduler, "tasks": tasks})
    if envelope is not None and split:  # the parts run elsewhere: the plot reads the merged breakpoints
        keep, envelope = True, None
    if split:
        from regioncount.parallel.segments import count_segment_split

        # the split count checks its cost before it starts a cluster, then opens (and closes) it
        with progress_bar(interactive(as_json), "counting regions (tasks)") as progress:
            result = count_segment_split(model, interval=interval, segment=segment, tasks=tasks, workers=workers,
                                         scheduler=scheduler, linear_pieces=not no_linear, keep_breakpoints=keep,
                                         device=device, max_regions=max_regions, memory_limit=memory,
                                         known_regions=known_regions, assume_well_posed=assume_well_posed,
                                         progress=progress, max_seconds=max_seconds)
    else:
        with progress_bar(interactive(as_json), "counting regions") as progress:
            result = count_segment(model, interval=interval, segment=segment, linear_pieces=not no_linear,
                                   keep_breakpoints=keep, device=device,
                                   max_regions=max_regions, memory_limit=memory, known_regions=known_regions,
                                   assume_well_posed=assume_well_posed, progress=progress, max_seconds=max_seconds,
                                   envelope=envelope)
    if breakpoints_file is not None:
        assert result.breakpoints is not None  # kept because a file was asked for
        write_array(result.breakpoints, breakpoints_file)
    return result


class OneLineErrors(click.Group):
    """A group whose every error is one line on stderr: usage errors too (click prints the usage text
    before them by default), with exit status 2; Ctrl-C exits 130."""

    def main(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - click's signature
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("Error: interrupted", err=True)
            sys.exit(130)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


#: Default torch intra-op threads of the command line (the library never changes them): one thread, the
#: fastest and the only robust choice beside other work on small machines (measured: docs/benchmarks.md).
DEFAULT_THREADS = 1


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="regioncount")
@click.option("--threads", type=click.IntRange(min=1, max=1024), default=DEFAULT_THREADS, show_default=True,
              envvar="REGIONCOUNT_THREADS", help="CPU threads for torch's operators (env REGIONCOUNT_THREADS).")
def main(threads: int) -> None:
    """Count the linear regions of ReLU networks (FFNs and DEQs) exactly."""
    from regioncount.theory.bounds import MAX_BOUND_DIGITS

    # applied by `guard` when a command really runs, so that --help never loads torch
    click.get_current_context().meta["regioncount.threads"] = threads
    if hasattr(sys, "set_int_max_str_digits"):  # exact bounds may have up to MAX_BOUND_DIGITS digits
        sys.set_int_max_str_digits(max(sys.get_int_max_str_digits(), MAX_BOUND_DIGITS + 100))


@main.command()
@click.option("--width", "-m", type=click.IntRange(min=1), required=True, help="Width m of the Theorem 1 DEQ.")
@click.option("--readout", type=click.Choice(sorted(READOUTS)), default="b", show_default=True,
              help="Output layer: " + "; ".join(f"({k}) {v}" for k, v in READOUTS.items()))
@click.option("--interval", nargs=2, type=FINITE, callback=ordered_pair, default=(0.0, 1.0), show_default=True,
              metavar="A B",
              help="Interval of x_1 to count on.")
@click.option("--save-model", type=click.Path(dir_okay=False), help="Write the model as v1 JSON.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), help="Draw the output and breakpoints to FILE.png.")
@figure_options
@common_count_options
@guard
def deq(width: int, readout: str, interval: tuple[float, float], save_model: str | None, plot_file: str | None,
        output_index: int, dpi: int, size: tuple[float, float] | None, **options) -> None:
    """Build the width-m DEQ of Theorem 1 and count its regions exactly (2^m on [0, 1])."""
    check_outputs(breakpoints=options["breakpoints_file"], plot=plot_file, model=save_model,
                  figure=(size or (8.0, 4.5), dpi))
    from regioncount.theory.constructions import theorem1_deq, theorem1_expected_on_interval

    model = theorem1_deq(width, readout)
    if save_model is not None:
        from regioncount.io.model_files import save_model as write_model

        write_model(model, save_model)
    expected_regions, expected_pieces = theorem1_expected_on_interval(width, readout, interval)
    envelope = None if plot_file is None else segment_envelope(model, interval, None, output_index, dpi,
                                                               size or (8.0, 4.5))
    result = run_count(model, interval=interval, known_regions=expected_regions,
                       keep=plot_file is not None and envelope is None, envelope=envelope, **options)
    if plot_file is not None:
        segment_plot(model, result, plot_file, output_index, dpi, size or (8.0, 4.5), envelope)
    agrees = result.activation_regions == expected_regions and (
        result.linear_pieces is None or expected_pieces is None or result.linear_pieces == expected_pieces)
    render(result, as_json=options["as_json"], title=f"Theorem 1 DEQ, width {width}",
           head=[("width m", str(width)), ("readout", f"({readout}) {READOUTS[readout]}"),
                 ("interval", segment_text(result))],
           tail=[("expected", f"{fmt_int(expected_regions)} regions, {fmt_int(expected_pieces)} pieces"),
                 ("agree", "[green]yes[/green]" if agrees else "[red]NO[/red]")],
           extra={"width": width, "readout": readout, "interval": list(interval), "expected_regions": expected_regions,
                  "expected_linear_pieces": expected_pieces, "agrees": agrees})


@main.command()
@click.argument("model_files", metavar="MODEL...", nargs=-1, required=True, type=click.Path(dir_okay=True),
                callback=model_paths)
@click.option("--interval", nargs=2, type=FINITE, callback=ordered_pair, default=None, metavar="A B",
              help="Interval for a 1-D model (default: the model's domain).")
@click.option("--segment", nargs=2, type=str, default=None, metavar="P Q",
              help="Segment end points for d-D input: comma-separated coordinates, or files (.npy, or numbers in text).")
@click.option("--box", nargs=2, type=str, default=None, metavar="LO HI",
              help="The box: a sampled d-D count, or with --plane an exact 2-D partition (comma-separated, "
                   "or one number for every coordinate).")
@click.option("--samples", type=click.IntRange(min=1), default=None, help="Points to sample (default 10^6 when sampling).")
@click.option("--grid", is_flag=True, help="Sample a regular grid of cell centres instead of uniform points.")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), default=0, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Points per batch (default: by memory).")
@click.option("--chords", "--lines", "lines", type=click.IntRange(min=2), default=None,
              help="Exact counts along this many random chords of the box (--lines is the old name).")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="Precision of sampled forward passes (exact counts are always float64).")
@click.option("--assume-well-posed", is_flag=True,
              help="Count a DEQ whose well-posedness is not certified (every solve is still checked).")
@click.option("--plane", is_flag=True, help="Exact 2-D partition: the --box of a 2-D model, or a plane.")
@click.option("--exact", "exact_box", is_flag=True,
              help="Exact d-D partition of the --box (default: the model's domain): every region, bounded ones, "
                   "volumes (d <= 3), inradii, linear pieces.")
@click.option("--all-space", is_flag=True,
              help="With --exact: every region of all of R^d, bounded and unbounded (no box).")
@plane_options
@click.option("--graph", "graph_file", type=click.Path(dir_okay=False),
              help="(--plane, --exact) adjacency graph as GraphML.")
@click.option("--polygons", "polygons_file", type=click.Path(dir_okay=False),
              help="(--plane) the polygons as .geojson or .npz.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), help="Draw the count to FILE.png.")
@figure_options
@common_count_options
@guard
def count(model_files: tuple[str, ...], interval: tuple[float, float] | None, segment: tuple[str, str] | None,
          box: tuple[str, str] | None, samples: int | None, grid: bool, seed: int, batch: int | None,
          lines: int | None, dtype: str, assume_well_posed: bool, plane: bool, exact_box: bool,
          all_space: bool, origin: str | None,
          dirs: tuple[str, str] | None, extent: float, through: tuple[str, str, str] | None,
          graph_file: str | None, polygons_file: str | None, plot_file: str | None, output_index: int, dpi: int,
          size: tuple[float, float] | None, **options) -> None:
    """Count the regions of MODEL (v1 JSON or a PyTorch state_dict): exactly along a segment, exactly in a
    2-D slice (--plane) or a d-D box (--exact), or sampled in a d-D box (--box/--samples/--grid) and along
    random chords (--chords).
    Several MODELs (e.g. checkpoints) are counted one task each: a table, or one JSON line per model."""
    _check_all_space(all_space, exact_box, box is not None or graph_file is not None)
    is_plane = any(v for v in (plane, origin is not None, dirs is not None, through is not None))
    in_box = any(v for v in (box is not None, samples is not None, grid, lines is not None, exact_box))
    along = interval is not None or segment is not None
    _check_count_flags(len(model_files), is_plane, in_box, along, sampling=samples is not None or grid, lines=lines,
                       exact_box=exact_box, plot_file=plot_file,
                       graph_file=graph_file, polygons_file=polygons_file, dtype=dtype, options=options)
    if len(model_files) > 1:
        from .commands_many import count_many

        count_many(model_files, interval=interval, segment=segment, box=box, samples=samples, grid=grid, seed=seed,
                   batch=batch, dtype=dtype, assume_well_posed=assume_well_posed, options=options)
        return
    model_file = model_files[0]
    check_outputs(breakpoints=options["breakpoints_file"], plot=plot_file, graph=graph_file, polygons=polygons_file,
                  figure=(size or (8.0, 4.5), dpi))
    from regioncount.io.model_files import load_model

    model = load_model(model_file)
    if is_plane:
        from .commands_plane import count_plane

        count_plane(model, model_file, box, origin, dirs, extent, through, assume_well_posed, options,
                    graph_file=graph_file, polygons_file=polygons_file, plot_file=plot_file,
                    output_index=output_index, dpi=dpi, size=size)
    elif exact_box:
        from .commands_plane import count_box_exact

        count_box_exact(model, model_file, box, options, graph_file=graph_file, all_space=all_space,
                        assume_well_posed=assume_well_posed, max_seconds=options["max_seconds"])
    elif in_box:
        run_box_count(model, model_file, box, samples, grid, seed, batch, lines, dtype, assume_well_posed, options,
                      options["max_seconds"])
    else:
        _count_along(model, model_file, interval, segment, assume_well_posed, options, plot_file=plot_file,
                     output_index=output_index, dpi=dpi, size=size)


def _check_all_space(all_space: bool, exact_box: bool, box_or_graph: bool) -> None:
    """--all-space is an exact count of all of R^d: with --exact, without --box or --graph."""
    if all_space and not exact_box:
        raise UserError("--all-space counts exactly: give it with --exact")
    if all_space and box_or_graph:
        raise UserError("--all-space counts all of R^d: it takes no --box (and no --graph)")


@dataclass(frozen=True)
class _CountFlags:
    """What one ``count`` invocation asked for, as the flag checks read it."""

    n_models: int
    is_plane: bool
    in_box: bool
    along: bool
    sampling: bool
    lines: int | None
    exact_box: bool
    plot_file: str | None
    graph_file: str | None
    polygons_file: str | None
    breakpoints_file: str | None
    dtype: str


def _first_given(flags: tuple[tuple[str, object], ...]) -> str | None:
    """The first flag whose value is truthy (given)."""
    return next((flag for flag, value in flags if value), None)


def _check_count_flags(n_models: int, is_plane: bool, in_box: bool, along: bool, *, sampling: bool,
                       lines: int | None, exact_box: bool,
                       plot_file: str | None, graph_file: str | None, polygons_file: str | None, dtype: str,
                       options: dict) -> None:
    """The one place where ``count``'s flags are checked against each other (one-line errors): by mode, each
    mode's clashes in a function of its own."""
    flags = _CountFlags(n_models, is_plane, in_box, along, sampling, lines, exact_box, plot_file, graph_file,
                        polygons_file, options["breakpoints_file"], dtype)
    if n_models > 1:
        _check_several_models(flags)
        return
    if split_requested(options) and (is_plane or exact_box or lines is not None):
        split = next(flag for flag, key in (("--workers", "workers"), ("--scheduler", "scheduler"),
                                            ("--tasks", "tasks")) if options[key] is not None)
        raise UserError(f"{split} splits an exact 1-D count (--interval/--segment) or a sampled count "
                        "(--samples/--grid); partitions (--plane, --exact) and --chords run in this process")
    if exact_box:
        _check_exact_box(flags)
    elif is_plane:
        if along or sampling or lines is not None:
            raise UserError("--plane is an exact 2-D count; it does not combine with --interval/--segment/"
                            "--samples/--grid/--chords")
    else:
        _check_segment_or_sampled(flags)


def _check_several_models(flags: _CountFlags) -> None:
    """Several MODELs are counted along a segment or sampled: no partition, chords, plot or output file."""
    extra = _first_given((("--plane", flags.is_plane), ("--exact", flags.exact_box), ("--chords", flags.lines),
                          ("--plot", flags.plot_file), ("--graph", flags.graph_file),
                          ("--polygons", flags.polygons_file), ("--breakpoints", flags.breakpoints_file)))
    if extra:
        raise UserError(f"{extra} takes one MODEL; several are counted along a segment or sampled")


def _check_exact_box(flags: _CountFlags) -> None:
    """--exact partitions a d-D box: no other mode, no plot, polygons or breakpoints; float64 only."""
    clash = _first_given((("--plane", flags.is_plane), ("--interval/--segment", flags.along),
                          ("--samples/--grid", flags.sampling), ("--chords", flags.lines),
                          ("--plot", flags.plot_file), ("--polygons", flags.polygons_file),
                          ("--breakpoints", flags.breakpoints_file)))
    if clash:
        raise UserError(f"--exact partitions a d-D box; it does not combine with {clash}")
    if flags.dtype != "float64":
        raise UserError("exact counts are float64 only; --dtype applies to sampled counts")


def _check_segment_or_sampled(flags: _CountFlags) -> None:
    """A count along a segment (float64 only) or sampled in a box (no plot, no segment): neither writes a
    graph or polygons."""
    if flags.graph_file is not None or flags.polygons_file is not None:
        raise UserError("--graph needs --plane or --exact; --polygons needs --plane")
    if flags.in_box:
        if flags.plot_file is not None:
            raise UserError("--plot draws a segment count or a --plane partition, not a sampled count")
        if flags.along:
            raise UserError("--interval/--segment count along a segment; --box/--samples/--chords count in a box")
        return
    if flags.dtype != "float64":
        raise UserError("exact counts are float64 only; --dtype applies to sampled counts")


def _count_along(model, model_file: str, interval, segment, assume_well_posed: bool, options: dict, *,
                 plot_file: str | None, output_index: int, dpi: int, size) -> None:
    """The exact 1-D part of ``count``: along --interval/--segment or the model's domain."""
    ends = None
    if segment is not None:
        ends = (parse_point(segment[0], "--segment P"), parse_point(segment[1], "--segment Q"))
    envelope = None if plot_file is None else segment_envelope(model, interval, ends, output_index, dpi,
                                                               size or (8.0, 4.5))
    result = run_count(model, interval=interval, segment=ends, assume_well_posed=assume_well_posed,
                       keep=plot_file is not None and envelope is None, envelope=envelope, **options)
    if plot_file is not None:
        segment_plot(model, result, plot_file, output_index, dpi, size or (8.0, 4.5), envelope)
    render(result, as_json=options["as_json"], title=f"Regions of {Path(model_file).name}",
           head=[("model", model_label(result.model, model)), ("along", segment_text(result))],
           extra={"file": str(Path(model_file))})


def run_box_count(model, model_file: str, box: tuple[str, str] | None, samples: int | None, grid: bool, seed: int,
                  batch: int | None, lines: int | None, dtype: str, assume_well_posed: bool, options: dict,
                  max_seconds: float | None = None) -> None:
    """The d-D part of ``count``: sampled distinct patterns and/or exact chord statistics."""
    from regioncount.core.geometry import resolve_box
    from regioncount.line.chords import chord_statistics

    if options["breakpoints_file"] is not None:
        raise UserError("--breakpoints applies to a segment count, not to a box")
    low = high = None
    if box is not None:
        low, high = parse_point(box[0], "--box LO"), parse_point(box[1], "--box HI")
    if samples is not None and samples <= 0:
        raise UserError(f"--samples must be positive, got {samples}")
    if lines is not None and lines < 2:
        raise UserError(f"--chords needs at least 2 chords, got {lines}")
    the_box = resolve_box(model, low, high)
    memory = max_memory_bytes(options["max_memory"])
    sampled = chords = None
    if samples is not None or grid or lines is None:
        settings = dict(samples=samples or 10**6, grid=grid, seed=seed, batch=batch, device=options["device"],
                        dtype=dtype, assume_well_posed=assume_well_posed, memory_limit=memory,
                        max_seconds=max_seconds, max_regions=options["max_regions"])
        sampled = _sampled_patterns(model, the_box, settings, options)
    if lines is not None:
        chords = chord_statistics(model, the_box, lines, seed=seed, device=options["device"],
                                  assume_well_posed=assume_well_posed, max_regions=options["max_regions"],
                                  memory_limit=memory, max_seconds=max_seconds)
    _render_box_count(model, model_file, sampled, chords, options["as_json"])


def _sampled_patterns(model, the_box, settings: dict, options: dict):
    """The sampled count of ``count --box``: split into tasks when --workers/--scheduler/--tasks ask for it,
    in this process otherwise, with a progress bar on a terminal."""
    shown = interactive(options["as_json"])
    if not split_requested(options):
        from regioncount.sampling.sampled import sample_regions

        with progress_bar(shown, "sampling patterns") as progress:
            return sample_regions(model, the_box.low, the_box.high, progress=progress, **settings)
    from regioncount.parallel.engine import open_engine
    from regioncount.parallel.samples import sample_regions_split

    with open_engine(workers=options["workers"], scheduler=options["scheduler"]) as engine, \
            progress_bar(shown, "sampling patterns (tasks)") as progress:
        return sample_regions_split(model, the_box.low, the_box.high, tasks=engine.tasks(options["tasks"]),
                                    engine=engine, progress=progress, **settings)


def _render_box_count(model, model_file: str, sampled, chords, as_json: bool) -> None:
    """The sampled table (with the chords inside its JSON) and the chords' table."""
    where = {"file": str(Path(model_file))}
    if sampled is not None:
        render(sampled, as_json=as_json, title=f"Sampled regions of {Path(model_file).name}",
               head=[("model", model_label(sampled.model, model))],
               extra=where | ({"chords": chords.to_json()} if chords is not None else {}))
    if chords is not None and (sampled is None or not as_json):
        render(chords, as_json=as_json, title="Exact counts along random chords", extra=where)


@main.command()
@click.argument("model_files", metavar="CKPT...", nargs=-1, required=True, type=click.Path(dir_okay=True),
                callback=model_paths)
@click.option("--steps", default=None, metavar="S1,S2,...",
              help="Training step of each checkpoint, in argument order (default: the last number in each file name).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Draw regions and linear pieces against the step to FILE.png.")
@click.option("--interval", nargs=2, type=FINITE, callback=ordered_pair, default=None, metavar="A B",
              help="Interval for 1-D models.")
@click.option("--segment", nargs=2, type=str, default=None, metavar="P Q", help="Segment of d-D input (points or files).")
@click.option("--box", nargs=2, type=str, default=None, metavar="LO HI", help="Sample this box instead.")
@click.option("--samples", type=click.IntRange(min=1), default=None, help="Points to sample per checkpoint.")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), default=0, show_default=True)
@click.option("--assume-well-posed", is_flag=True, help="Count DEQs whose well-posedness is not certified.")
@figure_options
@common_count_options
@guard
def track(model_files: tuple[str, ...], steps: str | None, out_file: str | None, interval, segment, box,
          samples: int | None, seed: int, assume_well_posed: bool, output_index: int, dpi: int,
          size: tuple[float, float] | None, **options) -> None:
    """Follow region counts through training: count every checkpoint CKPT (exactly along --interval/--segment
    or each model's domain, or sampled in --box), in step order, as a table or JSON lines, and plot them."""
    from .commands_many import track as run_track

    if options["breakpoints_file"] is not None:
        raise UserError("--breakpoints takes one model (count MODEL --breakpoints FILE)")
    check_outputs(plot=out_file, figure=(size or (8.0, 4.5), dpi))
    run_track(model_files, steps=steps, out_file=out_file, dpi=dpi, size=size,
              count_args={"interval": interval, "segment": segment, "box": box, "samples": samples, "grid": False,
                          "seed": seed, "batch": None, "dtype": "float64", "assume_well_posed": assume_well_posed},
              options=options)


@main.command()
@click.argument("model_file", metavar="MODEL", type=click.Path(dir_okay=True), callback=model_paths)
@click.option("--out", "out_file", type=click.Path(dir_okay=False), required=True, help="The PNG to write.")
@click.option("--interval", nargs=2, type=FINITE, callback=ordered_pair, default=None, metavar="A B",
              help="1-D: the interval.")
@click.option("--segment", nargs=2, type=str, default=None, metavar="P Q", help="A segment of d-D input.")
@click.option("--box", nargs=2, type=str, default=None, metavar="LO HI", help="2-D input: the box.")
@plane_options
@click.option("--level", type=FINITE, default=None, help="Draw the level set y_output = LEVEL (e.g. 0).")
@click.option("--boundary", is_flag=True,
              help="2-D: draw the decision boundary (where the predicted class changes; one output: y = 0).")
@click.option("--color", "colour", type=click.Choice(["region", "gradient"]), default="region", show_default=True,
              help="Fill regions with distinct colours, or by the norm of the local gradient.")
@figure_options
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True)
@click.option("--assume-well-posed", is_flag=True)
@limit_options
@guard
def plot(model_file: str, out_file: str, interval, segment, box, origin, dirs, extent, through, level, boundary: bool,
         colour, output_index: int, dpi: int, size, device: str, assume_well_posed: bool, max_regions: int,
         max_memory: float | None, max_seconds: float) -> None:
    """Draw the regions of MODEL to a PNG: the output with its breakpoints (1-D input or --segment), or
    every region of a 2-D slice in its own colour (2-D input, --box, or a plane)."""
    check_outputs(plot=out_file, figure=(size or (8.0, 4.5), dpi))
    from regioncount.io.model_files import load_model

    model = load_model(model_file)
    two_d = box is not None or origin is not None or dirs is not None or through is not None or (
        interval is None and segment is None and model.input_dim == 2)
    if two_d:
        from .commands_plane import plot_plane

        summary, method = plot_plane(model, out_file, (box, origin, dirs, extent, through), level=level,
                                     boundary=boundary, colour=colour, output_index=output_index, dpi=dpi, size=size,
                                     device=device, assume_well_posed=assume_well_posed,
                                     limits=(max_regions, max_memory_bytes(max_memory), max_seconds))
    else:
        if level is not None or colour != "region" or boundary:
            raise UserError("--level, --boundary and --color apply to 2-D plots")
        result = _plot_along(model, out_file, interval, segment, output_index, dpi, size, device, assume_well_posed,
                             {"max_regions": max_regions, "memory_limit": max_memory_bytes(max_memory),
                              "max_seconds": max_seconds})
        summary = f"{result.activation_regions:,} regions, {fmt_int(result.linear_pieces)} linear pieces"
        method = result.method
    stdout_console().print(f"wrote {out_file}: {summary} ({method}, float64)")


def _plot_along(model, out_file: str, interval, segment, output_index: int, dpi: int, size, device: str,
                assume_well_posed: bool, limits: dict) -> SegmentCount:
    """The 1-D part of ``plot``: count along the interval or segment, the walk filling the plot's envelope
    (or keeping its breakpoints, for a general-W DEQ), and draw it."""
    from regioncount.line.exact1d import count_segment

    ends = None
    if segment is not None:
        ends = (parse_point(segment[0], "--segment P"), parse_point(segment[1], "--segment Q"))
    envelope = segment_envelope(model, interval, ends, output_index, dpi, size or (8.0, 4.5))
    result = count_segment(model, interval=interval, segment=ends, keep_breakpoints=envelope is None,
                           device=device, assume_well_posed=assume_well_posed, envelope=envelope, **limits)
    segment_plot(model, result, out_file, output_index, dpi, size or (8.0, 4.5), envelope)
    return result


main.add_command(compare)
main.add_command(bound)
main.add_command(check)
main.add_command(steep)
main.add_command(bias)
main.add_command(reproduce)

if __name__ == "__main__":
    main()
