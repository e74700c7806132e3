"""ONNX tensors (initializers, Constant values) as arrays, their size checked before anything is allocated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ModelFormatError

#: Most elements of one weight tensor read from an ONNX file.
MAX_ELEMENTS = 2**28


def _tensor(proto: Any, path: Path) -> np.ndarray:
    """An initializer or Constant as an array: its element count checked from its dims before anything is
    allocated, a tensor whose data does not match its dims refused."""
    from onnx import numpy_helper

    count = int(np.prod([int(v) for v in proto.dims], dtype=object)) if len(proto.dims) else 1
    if count > MAX_ELEMENTS:
        raise ModelFormatError(f"{path}: the ONNX tensor {proto.name!r} declares {count:,} elements, above "
                               f"{MAX_ELEMENTS:,}")
    try:
        return numpy_helper.to_array(proto)
    except Exception as exc:  # noqa: BLE001 - data that does not fit its dims, or an unknown type
        raise ModelFormatError(f"{path}: the ONNX tensor {proto.name!r} is malformed "
                               f"({str(exc).splitlines()[0][:120]})") from None
