"""Checkpoint series: the training step of each checkpoint, from its file name or given (``regioncount track``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import RegionCountError

_DIGITS = re.compile(r"\d+")


def step_from_name(path: str | Path) -> int | None:
    """The last run of digits in a file's name without its suffixes (``ckpt_001200.pt`` -> 1200,
    ``epoch3-step500.safetensors`` -> 500), or None when there is none."""
    stem = Path(path).name.split(".")[0]
    runs = _DIGITS.findall(stem)
    return int(runs[-1]) if runs else None


def checkpoint_steps(paths: Sequence[str | Path], steps: Sequence[int] | None = None) -> list[int]:
    """One step per checkpoint: ``steps`` when given (as many as paths), else read from the file names;
    refuses names without a number and two checkpoints at one step."""
    if steps is not None:
        if len(steps) != len(paths):
            raise RegionCountError(f"{len(steps)} steps given for {len(paths)} checkpoints")
        found = list(steps)
    else:
        found = []
        for path in paths:
            step = step_from_name(path)
            if step is None:
                raise RegionCountError(f"{Path(path).name}: no step number in the file name; give the steps "
                                       "(e.g. --steps 0,100,200)")
            found.append(step)
    if len(set(found)) != len(found):
        twice = sorted({s for s in found if found.count(s) > 1})
        raise RegionCountError(f"two checkpoints at step {twice[0]}; give the steps (e.g. --steps 0,100,200)")
    return found
