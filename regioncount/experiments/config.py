"""Experiment configurations: one small TOML file per experiment (``configs/*.toml`` in this package, or a
file of the user's), with a ``[quick]`` table that overrides the full setting for ``--quick`` runs
(``docs/reproduction.md``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import RegionCountError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_FOLDER = Path(__file__).with_name("configs")
#: The largest settings a configuration may ask for (a typo must not start a week of training).
MAX_TARGET, MAX_WIDTH, MAX_DEPTH, MAX_STEPS, MAX_POINTS, MAX_SEEDS = 20, 512, 16, 10**6, 10**7, 100
#: Most checkpoints along one training run (each is saved and counted).
MAX_CHECKPOINTS = 100


class ConfigError(RegionCountError):
    """A malformed or out-of-range experiment configuration."""


@dataclass(frozen=True)
class NetSpec:
    """One architecture: ``kind`` "deq" (a triangular ReLU-DEQ of ``widths[0]`` units) or "ffn" (hidden
    widths ``widths``, one per layer)."""

    kind: str
    widths: tuple[int, ...]

    @property
    def label(self) -> str:
        if self.kind == "deq":
            return f"DEQ m={self.widths[0]}"
        return f"FFN {'x'.join(map(str, self.widths))}"

    @property
    def key(self) -> str:
        return f"{self.kind}-{'x'.join(map(str, self.widths))}"

    def flops(self) -> int:
        """FLOPs per iteration for one scalar input and output: the DEQ's step z <- relu(W z + U x + b) read out
        by A, 2 (m^2 + 2 m); an FFN's forward pass, 2 sum_l n_(l-1) n_l."""
        if self.kind == "deq":
            m = self.widths[0]
            return 2 * (m * m + 2 * m)
        sizes = (1, *self.widths, 1)
        return 2 * sum(a * b for a, b in zip(sizes, sizes[1:]))


@dataclass(frozen=True)
class Experiment:
    """A parsed configuration: targets T^m, seeds, training steps and grids, architectures, and what of it is
    quoted from the paper and what is chosen here; ``checkpoints``: how many evenly spaced snapshots along each
    training run (besides the start) are saved and counted."""

    name: str
    figure: str
    quoted: str
    chosen: str
    targets: tuple[int, ...]
    seeds: tuple[int, ...]
    steps: int
    lr: float
    train_points: int
    test_points: int
    nets: tuple[NetSpec, ...]
    quick: bool
    plot: str = "widths"
    checkpoints: int = 0


def _ints(value: Any, what: str, low: int, high: int) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool)
                                                             for v in value):
        raise ConfigError(f"{what}: expected a non-empty list of integers, got {value!r}")
    if not all(low <= v <= high for v in value):
        raise ConfigError(f"{what}: every value must lie in [{low}, {high}], got {value!r}")
    return tuple(value)


def _int(value: Any, what: str, low: int, high: int) -> int:
    return _ints([value], what, low, high)[0]


def _ffn_shapes(model: dict[str, Any], i: int) -> list[NetSpec]:
    """The FFNs of one ``[[models]]`` table: explicit ``shapes``, or ``depths`` x ``widths``."""
    if "shapes" not in model:
        depths = _ints(model.get("depths"), f"models[{i}].depths", 1, MAX_DEPTH)
        widths = _ints(model.get("widths"), f"models[{i}].widths", 1, MAX_WIDTH)
        return [NetSpec("ffn", (w,) * depth) for depth in depths for w in widths]
    shapes = model["shapes"]
    if not isinstance(shapes, list) or not shapes:
        raise ConfigError(f"models[{i}].shapes: expected a non-empty list of width lists")
    nets = []
    for j, shape in enumerate(shapes):
        widths = _ints(shape, f"models[{i}].shapes[{j}]", 1, MAX_WIDTH)
        if len(widths) > MAX_DEPTH:
            raise ConfigError(f"models[{i}].shapes[{j}]: at most {MAX_DEPTH} hidden layers")
        nets.append(NetSpec("ffn", widths))
    return nets


def _nets(models: Any) -> tuple[NetSpec, ...]:
    if not isinstance(models, list) or not models:
        raise ConfigError("models: expected a non-empty list of tables")
    nets: list[NetSpec] = []
    for i, model in enumerate(models):
        kind = model.get("kind") if isinstance(model, dict) else None
        if kind == "deq":
            nets += [NetSpec("deq", (w,)) for w in _ints(model.get("widths"), f"models[{i}].widths", 1, MAX_WIDTH)]
        elif kind == "ffn":
            nets += _ffn_shapes(model, i)
        else:
            raise ConfigError(f"models[{i}].kind: expected \"deq\" or \"ffn\", got {kind!r}")
    return tuple(dict.fromkeys(nets))  # in order, each once


#: Figure layouts: loss and regions against width, one line per FFN depth and one for DEQs; or bars per net.
PLOT_KINDS = ("widths", "bars")


def _plot_kind(value: Any) -> str:
    if value not in PLOT_KINDS:
        raise ConfigError(f"plot: expected one of {', '.join(PLOT_KINDS)}, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class GotuExperiment:
    """The GOTU task (``task = "gotu"``): Boolean inputs of dimension ``dim`` with the half x_1 = -1 unseen,
    the linear models of ``regioncount bias`` and its trained FFN and linear-DEQ baselines (``seeds``,
    ``steps`` Adam steps at ``lr``), and the feature heat maps."""

    name: str
    figure: str
    quoted: str
    chosen: str
    dim: int
    seeds: tuple[int, ...]
    steps: int
    lr: float
    quick: bool


@dataclass(frozen=True)
class SteepExperiment:
    """The steep task (``task = "steep"``): for each dimension in ``dims``, the bisection DEQ with ``2^knots``
    trained knots and an FFN of ``ffn_depth`` hidden layers of ``ffn_width`` units, both trained on the
    d-dimensional steep target (``seeds``, ``steps`` Adam steps at ``lr`` on ``train_points`` points)."""

    name: str
    figure: str
    quoted: str
    chosen: str
    dims: tuple[int, ...]
    knots: int
    ffn_depth: int
    ffn_width: int
    seeds: tuple[int, ...]
    steps: int
    lr: float
    train_points: int
    quick: bool


def _lr(value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
        raise ConfigError(f"lr: expected a number in (0, 1), got {value!r}")
    return float(value)


def _merged(data: dict[str, Any], quick: bool) -> dict[str, Any]:
    """The configuration with its ``[quick]`` overrides applied (when ``quick``), its texts checked."""
    quick_table = data.get("quick", {})
    if not isinstance(quick_table, dict):
        raise ConfigError("quick: expected a table")
    merged = {**data, **(quick_table if quick else {})}
    for key in ("name", "figure", "quoted", "chosen"):
        if not isinstance(merged.get(key), str) or not merged[key]:
            raise ConfigError(f"{key}: expected a non-empty string")
    return merged


#: The tasks a configuration may name (``task``; default "sawtooth").
TASKS = ("sawtooth", "gotu", "steep")


def _steep(merged: dict[str, Any], quick: bool, lr: float) -> SteepExperiment:
    return SteepExperiment(name=merged["name"], figure=merged["figure"], quoted=merged["quoted"],
                           chosen=merged["chosen"], dims=_ints(merged.get("dims"), "dims", 1, 30),
                           knots=_int(merged.get("knots"), "knots", 1, 5),
                           ffn_depth=_int(merged.get("ffn_depth"), "ffn_depth", 1, MAX_DEPTH),
                           ffn_width=_int(merged.get("ffn_width"), "ffn_width", 1, MAX_WIDTH),
                           seeds=_ints(merged.get("seeds"), "seeds", 0, 2**31 - 1)[:MAX_SEEDS],
                           steps=_int(merged.get("steps"), "steps", 1, MAX_STEPS), lr=lr,
                           train_points=_int(merged.get("train_points"), "train_points", 2, MAX_POINTS), quick=quick)


def parse_experiment(data: dict[str, Any], quick: bool) -> Experiment | GotuExperiment | SteepExperiment:
    """The experiment of a configuration's parsed TOML (``quick``: with its ``[quick]`` overrides): a sawtooth
    :class:`Experiment`, a :class:`GotuExperiment` for ``task = "gotu"``, a :class:`SteepExperiment` for
    ``task = "steep"``."""
    merged = _merged(data, quick)
    task = merged.get("task", "sawtooth")
    if task not in TASKS:
        raise ConfigError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")
    lr = _lr(merged.get("lr"))
    if task == "steep":
        return _steep(merged, quick, lr)
    if task == "gotu":
        return GotuExperiment(name=merged["name"], figure=merged["figure"], quoted=merged["quoted"],
                              chosen=merged["chosen"], dim=_int(merged.get("dim"), "dim", 2, 64),
                              seeds=_ints(merged.get("seeds"), "seeds", 0, 2**31 - 1)[:MAX_SEEDS],
                              steps=_int(merged.get("steps"), "steps", 1, MAX_STEPS), lr=lr, quick=quick)
    return Experiment(
        name=merged["name"], figure=merged["figure"], quoted=merged["quoted"], chosen=merged["chosen"],
        targets=_ints(merged.get("targets"), "targets", 1, MAX_TARGET),
        seeds=_ints(merged.get("seeds"), "seeds", 0, 2**31 - 1)[:MAX_SEEDS],
        steps=_int(merged.get("steps"), "steps", 1, MAX_STEPS), lr=lr,
        train_points=_int(merged.get("train_points"), "train_points", 2, MAX_POINTS),
        test_points=_int(merged.get("test_points"), "test_points", 2, MAX_POINTS),
        nets=_nets(merged.get("models")), quick=quick, plot=_plot_kind(merged.get("plot", "widths")),
        checkpoints=_int(merged.get("checkpoints", 0), "checkpoints", 0, MAX_CHECKPOINTS))


def builtin_names() -> list[str]:
    """The experiments that ship with the package, by name."""
    return sorted(path.stem for path in CONFIG_FOLDER.glob("*.toml"))


def load_experiment(name_or_path: str, quick: bool = False) -> Experiment | GotuExperiment | SteepExperiment:
    """A shipped experiment by name (:func:`builtin_names`) or a TOML file of the same form."""
    path = CONFIG_FOLDER / f"{name_or_path}.toml"
    if not path.is_file():
        path = Path(name_or_path)
        if path.suffix != ".toml" or not path.is_file():
            raise ConfigError(f"no experiment {name_or_path!r}: expected one of {', '.join(builtin_names())} "
                              "or a .toml file")
    if path.stat().st_size > 1 << 20:
        raise ConfigError(f"{path}: a configuration is a small file (over 1 MiB)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    return parse_experiment(data, quick)
