"""Writing arrays (breakpoints) to .npy or .csv files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.atomic import atomic_output, check_output_path

ARRAY_SUFFIXES = (".npy", ".csv")


def write_array(values: np.ndarray, path: str | Path, header: str = "t") -> None:
    """Write a 1-D float64 array as ``.npy`` (exact) or ``.csv`` (one value per line, 17 significant digits),
    atomically (:func:`regioncount.core.atomic.atomic_output`)."""
    path = check_output_path(path, ARRAY_SUFFIXES, "a breakpoints file")
    with atomic_output(path) as temp:
        if path.suffix.lower() == ".npy":
            with open(temp, "wb") as handle:
                np.save(handle, np.asarray(values, dtype=np.float64))
        else:
            np.savetxt(temp, np.asarray(values, dtype=np.float64), fmt="%.17g", header=header, comments="")
