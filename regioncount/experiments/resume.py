"""Resumable runs: each finished run is a JSON file in ``ROOT/runs``, read back instead of run again when it ran
with the same settings and its model file is still there (``docs/reproduction.md``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..core.atomic import atomic_output


class StoredRun(Protocol):
    """What a resumable run keeps: the settings it ran with, its model file (relative to ROOT), its JSON."""

    @property
    def settings(self) -> dict[str, Any]: ...

    @property
    def model_file(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


Run = TypeVar("Run", bound=StoredRun)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """``data`` as indented JSON at ``path``, atomically."""
    with atomic_output(path) as temp:
        temp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def stored_run(path: Path, kind: Callable[..., Run], settings: dict[str, Any]) -> Run | None:
    """The run stored at ``path`` (``kind(**fields)``) if it ran with ``settings`` and its model file is still
    there; None for a missing, damaged or older file (it is run again)."""
    if not path.is_file():
        return None
    try:
        run = kind(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        return None
    if run.settings != settings or not (path.parent.parent / run.model_file).is_file():
        return None
    return run


def run_resumably(root: Path, jobs: Sequence[tuple[str, str, Callable[[], Run]]], kind: Callable[..., Run],
                  settings: dict[str, Any], progress: Callable[[str, int, int], None] | None = None
                  ) -> tuple[list[Run], int]:
    """Each job (file stem, label, run it) read back from ``root``/runs/STEM.json or run and stored there; the
    runs in job order and how many were read back.  ``progress(label, done, total)`` after each."""
    (root / "runs").mkdir(parents=True, exist_ok=True)
    runs, reused = [], 0
    for i, (stem, label, job) in enumerate(jobs):
        path = root / "runs" / f"{stem}.json"
        run = stored_run(path, kind, settings)
        if run is None:
            run = job()
            write_json(path, run.to_json())
        else:
            reused += 1
        runs.append(run)
        if progress is not None:
            progress(label, i + 1, len(jobs))
    return runs, reused
