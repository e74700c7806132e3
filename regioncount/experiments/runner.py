"""Run an experiment into an output folder, resumably (``docs/reproduction.md``).

``FOLDER/NAME/runs/STEM.json`` holds each finished run; a run whose file exists with the same training
settings is read back instead of trained again (:mod:`regioncount.experiments.resume`), so an interrupted
``reproduce`` picks up where it stopped and ``--quick`` and full runs (different settings) never mix.
``FOLDER/NAME/results.json`` gathers the runs with the configuration, and the figures are written beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Experiment, GotuExperiment, SteepExperiment
from .gotu_runs import GotuResult, run_gotu
from .resume import run_resumably, write_json
from .runs import RunKey, RunResult, run_one, settings_of
from .steep_runs import SteepResult, run_steep


@dataclass(frozen=True)
class ExperimentResult:
    """An experiment's runs (in key order), how many were read back from earlier runs, and its folder."""

    experiment: Experiment
    runs: list[RunResult]
    reused: int
    folder: Path

    def to_json(self) -> dict[str, Any]:
        e = self.experiment
        return {"experiment": e.name, "figure": e.figure, "quoted": e.quoted, "chosen": e.chosen, "quick": e.quick,
                "settings": settings_of(e), "targets": list(e.targets), "seeds": list(e.seeds),
                "nets": [{"kind": n.kind, "widths": list(n.widths), "label": n.label, "flops": n.flops()}
                         for n in e.nets],
                "reused_runs": self.reused, "runs": [run.to_json() for run in self.runs]}


def run_keys(experiment: Experiment) -> list[RunKey]:
    """Every run of the experiment: targets x architectures x seeds."""
    return [RunKey(m, net, seed) for m in experiment.targets for net in experiment.nets for seed in experiment.seeds]


def run_experiment(experiment: Experiment | GotuExperiment | SteepExperiment, folder: str | Path, device: str = "cpu",
                   progress: Callable[[str, int, int], None] | None = None
                   ) -> ExperimentResult | GotuResult | SteepResult:
    """Every run of ``experiment`` under ``folder``/NAME (module docstring); ``progress(label, done, total)``
    after each run.  A GOTU experiment runs :func:`~regioncount.experiments.gotu_runs.run_gotu`, a steep one
    :func:`~regioncount.experiments.steep_runs.run_steep`."""
    if isinstance(experiment, GotuExperiment):
        return run_gotu(experiment, folder, progress)
    if isinstance(experiment, SteepExperiment):
        return run_steep(experiment, folder, device, progress)
    root = Path(folder) / experiment.name
    jobs = [(key.stem, f"{experiment.name}: T^{key.m}, {key.net.label}, seed {key.seed}",
             lambda key=key: run_one(key, experiment, root, device)) for key in run_keys(experiment)]
    runs, reused = run_resumably(root, jobs, RunResult, settings_of(experiment), progress)
    result = ExperimentResult(experiment, runs, reused, root)
    write_json(root / "results.json", result.to_json())
    return result
