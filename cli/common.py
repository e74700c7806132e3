"""Helpers shared by the command modules: one-line errors, the library-error guard, output checks, point
parsing and the progress bar.  Command modules import from here (never from ``main``), so the CLI has no
import cycle."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from regioncount.core.errors import RegionCountError

from .render import flag_names, stderr_console


class UserError(click.ClickException):
    """A one-line error and exit status 2 (never a traceback)."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"Error: {self.format_message()}", err=True)


def _apply_threads() -> None:
    """Set torch's CPU threads to the group's ``--threads`` (the command line owns its process).  When torch
    is not imported yet, OMP_NUM_THREADS sets them at its import, so commands that never need torch
    (``bound``, ``--help``, argument errors) do not pay for importing it."""
    ctx = click.get_current_context(silent=True)
    threads = None if ctx is None else ctx.meta.get("regioncount.threads")
    if threads is None:
        return
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)


OUT_OF_MEMORY = "out of memory; lower --max-regions or --max-memory, or count without --breakpoints"


def guard(func: Callable) -> Callable:
    """Turn library errors (and I/O errors) raised by a command into :class:`UserError`."""

    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003
        try:
            _apply_threads()
            return func(*args, **kwargs)
        except RegionCountError as exc:
            raise UserError(flag_names(str(exc))) from None
        except BrokenPipeError:  # e.g. `regioncount ... --json | head`: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(141) from None
        except OSError as exc:
            raise UserError(f"{exc.filename or ''}: {exc.strerror or exc}".strip(": ")) from None
        except MemoryError:
            raise UserError(OUT_OF_MEMORY) from None
        except KeyboardInterrupt:  # Ctrl-C: outputs are written atomically, so nothing partial is left
            click.echo("Error: interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # last resort: one line, never a traceback (REGIONCOUNT_DEBUG=1 re-raises)
            # torch's allocators report exhaustion as a RuntimeError, not a MemoryError
            if isinstance(exc, RuntimeError) and ("can't allocate memory" in str(exc)
                                                  or "out of memory" in str(exc).lower()):
                raise UserError(OUT_OF_MEMORY) from None
            if os.environ.get("REGIONCOUNT_DEBUG"):
                raise
            raise UserError(f"internal error ({type(exc).__name__}: {exc}); please report it") from None

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


#: File types of ``--polygons`` (GeoJSON or compressed numpy arrays).
POLYGON_SUFFIXES = (".geojson", ".npz", ".json")


def check_outputs(*, breakpoints: str | None = None, plot: str | None = None, graph: str | None = None,
                  polygons: str | None = None, model: str | None = None,
                  figure: tuple[tuple[float, float], int] | None = None) -> None:
    """Refuse a bad output path (suffix, missing or unwritable folder) or a figure too large to render
    (``figure`` = (size in inches, dpi), checked when a plot is asked for) before any work starts."""
    from regioncount.core.atomic import check_output_path
    from regioncount.io.export import ARRAY_SUFFIXES

    if plot is not None and figure is not None:
        from regioncount.viz.plot import check_figure

        check_figure(*figure)
    for path, suffixes, what in ((breakpoints, ARRAY_SUFFIXES, "--breakpoints"), (plot, (".png",), "the plot (PNG)"),
                                 (graph, (".graphml",), "--graph (GraphML)"), (polygons, POLYGON_SUFFIXES, "--polygons"),
                                 (model, None, "--save-model")):
        if path is not None:
            check_output_path(path, suffixes, what)


def max_memory_bytes(max_memory_gib: float | None) -> int | None:
    """``--max-memory`` (GiB) as the bytes the library takes (None: its default, half the RAM)."""
    return None if max_memory_gib is None else int(max_memory_gib * 2**30)


def split_requested(options: dict) -> bool:
    """Whether ``--workers``, ``--scheduler`` or ``--tasks`` asked for a count split into tasks."""
    return any(options.get(key) is not None for key in ("workers", "scheduler", "tasks"))


#: Largest file read as a point (``--segment img0.npy img1.txt``).
MAX_POINT_FILE_BYTES = 2**26


def parse_point(text: str, what: str) -> tuple[float, ...]:
    """A comma-separated list of numbers (rationals like 1/3 allowed), or the name of a file holding the point:
    ``.npy`` (any shape, flattened; no pickles) or text (numbers separated by commas or whitespace)."""
    path = Path(text)
    if ("," not in text or text.endswith((".npy", ".txt", ".csv"))) and path.is_file():
        return _point_from_file(path, what)
    try:
        return tuple(float(Fraction(part.strip())) for part in text.split(","))
    except (ValueError, ZeroDivisionError):
        hint = " (or a file: .npy, or numbers in text)" if "," not in text else ""
        raise UserError(f"{what}: {text!r} is not a comma-separated list of numbers{hint}") from None


def _point_from_file(path: Path, what: str) -> tuple[float, ...]:
    import numpy as np

    size = path.stat().st_size
    if size > MAX_POINT_FILE_BYTES:
        raise UserError(f"{what}: {path} has {size:,} bytes, above the limit of {MAX_POINT_FILE_BYTES:,} for a point")
    try:
        if path.suffix.lower() == ".npy":
            values = np.load(path, allow_pickle=False)
            if not np.issubdtype(values.dtype, np.floating) and not np.issubdtype(values.dtype, np.integer):
                raise ValueError(f"dtype {values.dtype}")
            return tuple(float(v) for v in np.asarray(values, dtype=np.float64).ravel())
        words = path.read_text().replace(",", " ").split()
        return tuple(float(Fraction(word)) for word in words)
    except (ValueError, ZeroDivisionError, UnicodeDecodeError, OSError) as exc:
        raise UserError(f"{what}: {path} is not a point file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                        ".npy of numbers, or numbers in text)") from None


def interactive(as_json: bool) -> bool:
    """Whether a person watches: a table (not --json) with stderr on a terminal (progress goes there)."""
    return not as_json and sys.stderr.isatty()


@contextlib.contextmanager
def progress_bar(enabled: bool, label: str) -> Iterator[Callable[[float], None] | None]:
    """A rich progress bar on stderr driven by the covered fraction of the segment."""
    if not enabled:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                  TimeElapsedColumn(), console=stderr_console(), transient=True) as progress:
        task = progress.add_task(label, total=1.0)
        yield lambda fraction: progress.update(task, completed=fraction)


@contextlib.contextmanager
def working(enabled: bool, label: str) -> Iterator[Callable[[str], None] | None]:
    """A spinner with the elapsed time on stderr while a stage that reports no fraction runs (a partition,
    the bias study); yields ``update(label)`` to name the current part, or None when not ``enabled``."""
    if not enabled:
        yield None
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=stderr_console(),
                  transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda text: progress.update(task, description=text)


def model_paths(ctx: click.Context, param: click.Parameter, value):  # noqa: ANN201 - click's callback signature
    """Refuse, while the arguments are parsed (before torch is imported), a MODEL that is missing, a
    directory, not a regular file or too large: the same one-line errors as the loader's."""
    from pathlib import Path

    from regioncount.core.errors import ModelFormatError
    from regioncount.models.modelfile import regular_file

    for path in (value if isinstance(value, tuple) else (value,)):
        if path is None or Path(path).is_dir():  # a directory may be a checkpoint folder: the loader decides
            continue
        try:
            regular_file(Path(path))
        except ModelFormatError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


def ordered_pair(ctx: click.Context, param: click.Parameter, value):  # noqa: ANN201 - click's callback signature
    """An interval A B with A < B, checked while the arguments are parsed."""
    if value is not None and not value[0] < value[1]:
        raise click.BadParameter(f"the interval needs A < B, got A = {value[0]:g}, B = {value[1]:g}", ctx=ctx,
                                 param=param)
    return value
