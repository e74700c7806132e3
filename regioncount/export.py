"""Writing arrays (breakpoints) to .npy or .csv files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import RegionCountError


def write_array(values: np.ndarray, path: str | Path, header: str = "t") -> None:
    """Write a 1-D float64 array as ``.npy`` (exact) or ``.csv`` (one value per line, 17 significant digits)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            np.save(path, np.asarray(values, dtype=np.float64))
        elif suffix == ".csv":
            np.savetxt(path, np.asarray(values, dtype=np.float64), fmt="%.17g", header=header, comments="")
        else:
            raise RegionCountError(f"{path}: unknown file type {suffix or '(none)'}; use .npy or .csv")
    except OSError as exc:
        raise RegionCountError(f"{path}: cannot write ({exc.strerror or exc})") from None
