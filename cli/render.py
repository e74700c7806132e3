"""Rich rendering of results for people, and JSON for scripts."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table


def fmt_int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1e3:.2f} ms" if value < 1 else f"{value:.3f} s"


def fmt_rate(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.3g}/s" if value < 1e4 else f"{value:.3e}/s"


#: Library messages name API parameters in backticks; these read differently on the command line (every
#: other name ``x_y`` is the flag ``--x-y``).
SPECIAL_FLAGS = {"device='cuda'": "--device cuda", "low, high": "--box LO HI", "memory_limit": "--max-memory"}


def flag_names(message: str) -> str:
    """A library message as the command line says it: each backticked API parameter becomes its flag."""
    def flag(match: re.Match) -> str:
        name = match.group(1)
        return SPECIAL_FLAGS.get(name, "--" + name.replace("_", "-"))

    return re.sub(r"`([^`]+)`", flag, message)


def key_value_table(title: str, rows: list[tuple[str, str]]) -> Table:
    """A two-column table for people; library wording (backticked API names) becomes flag names."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("quantity", style="bold")
    table.add_column("value")
    for key, value in rows:
        table.add_row(key, flag_names(value))
    return table


def print_json(data: dict[str, Any]) -> None:
    """One JSON object on stdout (big integers stay integers)."""
    print(json.dumps(data, indent=2, allow_nan=False, default=str))


#: Width of tables written to a pipe or a file (no terminal to fit): wide enough that no column is cut.
PIPE_WIDTH = 220


def stdout_console() -> Console:
    """The console for results: the terminal's width, or, when stdout is not a terminal (a pipe, a file),
    ``$COLUMNS`` or :data:`PIPE_WIDTH` columns, so that tables are not cut to 80 columns."""
    if sys.stdout.isatty():
        return Console(highlight=False)
    columns = os.environ.get("COLUMNS", "")
    return Console(highlight=False, width=int(columns) if columns.isdigit() and int(columns) > 0 else PIPE_WIDTH)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


class FiniteFloat(click.FloatRange):
    """A float option that must be finite (click's FloatRange lets NaN through: NaN fails no comparison)."""

    def _describe_range(self) -> str:
        """No range in the help when neither bound is set (click would print ``x<=None``)."""
        if self.min is None and self.max is None:
            return ""
        return super()._describe_range()

    name = "finite float"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 - click's signature
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


FINITE = FiniteFloat()


def model_label(name: str, model: object) -> str:
    """A model's name with its architecture, once: ``name (FFN 1 -> [8x8] -> 1)``, or the architecture
    alone when the name is it (an unnamed model)."""
    describe = model.describe()  # type: ignore[attr-defined]
    return describe if name == describe else f"{name} ({describe})"
