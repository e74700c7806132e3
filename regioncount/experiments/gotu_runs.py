"""The GOTU experiment of ``regioncount reproduce`` (Fig. 1(c), 1(f) and Fig. 2): the GOTU part of
``regioncount bias`` (:mod:`regioncount.bias`, one implementation) with the configuration's dimension, seeds
and training budget, stored resumably in ``FOLDER/NAME/results.json`` (``docs/reproduction.md``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bias.gotu import TARGETS, GotuRow, gotu_data, linear_rows
from ..bias.study import FeatureMap, diagonal_deq_map, feature_maps
from ..core.atomic import atomic_output
from .config import GotuExperiment


@dataclass(frozen=True)
class GotuResult:
    """The GOTU rows (linear models by their flows, trained baselines over the seeds) and the feature maps,
    whether they were read back from an earlier run, and the experiment's folder."""

    experiment: GotuExperiment
    rows: list[GotuRow]
    maps: list[FeatureMap]
    reused: int
    folder: Path

    def settings(self) -> dict[str, Any]:
        return gotu_settings(self.experiment)

    def to_json(self) -> dict[str, Any]:
        e = self.experiment
        return {"experiment": e.name, "task": "gotu", "figure": e.figure, "quoted": e.quoted, "chosen": e.chosen,
                "quick": e.quick, "settings": self.settings(), "reused_runs": self.reused,
                "gotu": [_finite(row.to_json()) for row in self.rows],
                "features": [{"model": m.model, "density": m.density, "magnitudes": np.asarray(m.magnitudes).tolist(),
                              "note": m.note} for m in self.maps]}


def gotu_settings(experiment: GotuExperiment) -> dict[str, Any]:
    """What the stored result depends on (another setting runs it again)."""
    return {"dim": experiment.dim, "seeds": list(experiment.seeds), "steps": experiment.steps, "lr": experiment.lr}


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """A row with non-finite numbers (a trained model has no bias share) as null."""
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}


def _stored(path: Path, experiment: GotuExperiment) -> tuple[list[GotuRow], list[FeatureMap]] | None:
    """The rows and maps of an earlier run with the same settings, or None."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("task") != "gotu" or data.get("settings") != gotu_settings(experiment):
            return None
        rows = [GotuRow(r["model"], r["target"], float("nan") if r["bias_share"] is None else r["bias_share"],
                        r["gotu_error_trained"], r["gotu_error_closed_form"], r["spread"], r["note"], r["train_loss"])
                for r in data["gotu"]]
        maps = [FeatureMap(m["model"], np.asarray(m["magnitudes"], dtype=float), m["density"], m["note"])
                for m in data["features"]]
    except (ValueError, KeyError, TypeError):
        return None  # damaged or older: run again
    return rows, maps


def run_gotu(experiment: GotuExperiment, folder: str | Path,
             progress: Callable[[str, int, int], None] | None = None) -> GotuResult:
    """The GOTU experiment under ``folder``/NAME (module docstring); ``progress(label, done, total)`` per part."""
    root = Path(folder) / experiment.name
    root.mkdir(parents=True, exist_ok=True)
    path = root / "results.json"
    stored = _stored(path, experiment)
    tell = progress or (lambda label, done, total: None)
    if stored is not None:
        tell(f"{experiment.name}: read back", 3, 3)
        return GotuResult(experiment, stored[0], stored[1], 1, root)
    data = gotu_data(experiment.dim, seed=0)
    tell(f"{experiment.name}: linear models by their flows", 0, 3)
    rows = [row for name in TARGETS for row in linear_rows(data, name)]
    tell(f"{experiment.name}: trained FFNs and linear DEQs", 1, 3)
    trained, maps = feature_maps(data, list(experiment.seeds), experiment.steps, experiment.lr)
    tell(f"{experiment.name}: feature maps", 2, 3)
    result = GotuResult(experiment, rows + trained, [diagonal_deq_map(data), *maps], 0, root)
    with atomic_output(path) as temp:
        temp.write_text(json.dumps(result.to_json(), indent=1) + "\n", encoding="utf-8")
    tell(f"{experiment.name}: done", 3, 3)
    return result
