"""The parts of reading a model that need no torch (``docs/model-format.md``): checking that a path is a
regular file of bounded size, parsing and validating v1 JSON into plain lists, and checking the shapes of
FFN and DEQ parameters.  :mod:`regioncount.io.model_files` and :mod:`regioncount.models.networks` build tensors on top of
these; ``regioncount check`` of a JSON file uses them alone, so it answers without importing torch.
"""

from __future__ import annotations

import json
import math
import stat
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..core.errors import ModelFormatError

FFN_KEYS = {"type", "layers", "name", "domain"}
DEQ_KEYS = {"type", "W", "U", "b", "A", "c", "B", "name", "domain"}  # "B": readout input skip (extension)
LAYER_KEYS = {"weight", "bias"}
#: Largest model file read (bytes).
MAX_MODEL_BYTES = 2**31


def number(value: Any, where: str) -> float:
    """A JSON number, or a string holding an exact rational (``"-1/3"``), as the nearest float64."""
    if isinstance(value, bool) or value is None:
        raise ModelFormatError(f"{where}: expected a number, got {json.dumps(value)}")
    if isinstance(value, (int, float)):
        result = float(value) if not isinstance(value, int) or abs(value) < 2**1023 else math.inf
    elif isinstance(value, str):
        try:
            result = float(Fraction(value.strip()))
        except (ValueError, ZeroDivisionError):
            raise ModelFormatError(f"{where}: {value!r} is not a number or a rational like '-1/3'") from None
        except OverflowError:
            result = math.inf
    else:
        raise ModelFormatError(f"{where}: expected a number, got {type(value).__name__}")
    if not math.isfinite(result):
        text = repr(value)
        shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
        raise ModelFormatError(f"{where}: value {shown} is not finite or too large for float64")
    return result


def vector(value: Any, where: str) -> list[float]:
    if not isinstance(value, list):
        raise ModelFormatError(f"{where}: expected a list of numbers")
    return [number(v, f"{where}[{i}]") for i, v in enumerate(value)]


def matrix(value: Any, where: str) -> list[list[float]]:
    if not isinstance(value, list) or not value:
        raise ModelFormatError(f"{where}: expected a non-empty list of rows")
    rows = [vector(row, f"{where}[{i}]") for i, row in enumerate(value)]
    lengths = {len(row) for row in rows}
    if len(lengths) != 1 or 0 in lengths:
        raise ModelFormatError(f"{where}: rows have lengths {sorted(lengths)}; all rows need the same non-zero length")
    return rows


def check_layer_counts(weights: int, biases: int) -> None:
    """An FFN has at least one layer, and as many bias vectors as weight matrices."""
    if weights == 0:
        raise ModelFormatError("an FFN needs at least one layer")
    if weights != biases:
        raise ModelFormatError(f"{weights} weight matrices but {biases} bias vectors")


def check_ffn_shapes(weights: Sequence[tuple[int, int]], biases: Sequence[int]) -> None:
    """Layer l has a weight of shape (out_l, in_l) and a bias of length out_l; in_{l+1} = out_l."""
    check_layer_counts(len(weights), len(biases))
    for i, ((rows, cols), length) in enumerate(zip(weights, biases)):
        if rows == 0 or cols == 0:
            raise ModelFormatError(f"layers[{i}].weight has an empty shape {(rows, cols)}")
        if length != rows:
            raise ModelFormatError(f"layers[{i}].bias has length {length} but layers[{i}].weight has {rows} rows")
        if i > 0 and cols != weights[i - 1][0]:
            raise ModelFormatError(f"layers[{i}].weight has {cols} columns but layers[{i - 1}] outputs "
                                   f"{weights[i - 1][0]} values")


def check_deq_shapes(W: tuple[int, int], U: tuple[int, int], b: int, A: tuple[int, int], c: int | None,
                     B: tuple[int, int] | None) -> None:
    """W (m, m), U (m, d), b (m,), A (k, m), c (k,), B (k, d); ``c``/``B`` None when absent (zero)."""
    m = W[0]
    if m == 0 or W[1] != m:
        raise ModelFormatError(f"W must be square and non-empty, got shape {W}")
    if U[0] != m or U[1] == 0:
        raise ModelFormatError(f"U must have shape ({m}, d) with d >= 1, got {U}")
    if b != m:
        raise ModelFormatError(f"b must have length {m} (the width of W), got {b}")
    if A[1] != m or A[0] == 0:
        raise ModelFormatError(f"A must have shape (k, {m}) with k >= 1, got {A}")
    k, d = A[0], U[1]
    if c is not None and c != k:
        raise ModelFormatError(f"c must have length {k} (the rows of A), got {c}")
    if B is not None and B != (k, d):
        raise ModelFormatError(f"B must have shape ({k}, {d}), got {B}")


def check_domain(low: Sequence[float] | None, input_dim: int) -> None:
    if low is not None and len(low) != input_dim:
        raise ModelFormatError(f"domain has {len(low)} coordinates but the model's input dimension is {input_dim}")


def _shape(rows: list[list[float]]) -> tuple[int, int]:
    return len(rows), len(rows[0])


def parse_model(data: Any) -> dict[str, Any]:
    """A parsed v1 JSON object checked and converted to plain lists (keys, numbers, shapes): ``type``,
    ``name``, ``domain`` ((low, high) or None) and ``weights``/``biases`` (FFN) or ``W, U, b, A, c, B``
    (DEQ; ``c``/``B`` None when absent)."""
    kind = _model_kind(data)
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ModelFormatError('"name" must be a string')
    domain = _parsed_domain(data)
    out: dict[str, Any] = {"type": kind, "name": name, "domain": domain}
    parts = _ffn_parts(data) if kind == "ffn" else _deq_parts(data)
    first = parts["weights"][0] if kind == "ffn" else parts["U"]
    check_domain(domain[0] if domain else None, len(first[0]))
    return out | parts


def _model_kind(data: Any) -> str:
    """The model's "type" ("ffn" or "deq"), after refusing a non-object and keys the type does not allow."""
    if not isinstance(data, dict):
        raise ModelFormatError("the model must be a JSON object")
    kind = data.get("type")
    if kind not in ("ffn", "deq"):
        raise ModelFormatError(f'"type" must be "ffn" or "deq", got {json.dumps(kind)}')
    allowed = FFN_KEYS if kind == "ffn" else DEQ_KEYS
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ModelFormatError(f"unknown key(s) {unknown} for a {kind} model; allowed: {sorted(allowed)}")
    return kind


def _parsed_domain(data: dict) -> tuple[tuple, tuple] | None:
    """The optional "domain" {"low": [...], "high": [...]} as (low, high) tuples."""
    if "domain" not in data:
        return None
    value = data["domain"]
    if not isinstance(value, dict) or set(value) != {"low", "high"}:
        raise ModelFormatError('domain: expected {"low": [...], "high": [...]}')
    return tuple(vector(value["low"], "domain.low")), tuple(vector(value["high"], "domain.high"))


def _ffn_parts(data: dict) -> dict[str, Any]:
    """An FFN's "layers" as ``weights`` and ``biases`` lists, shapes checked."""
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ModelFormatError('"layers" must be a non-empty list of {"weight", "bias"} objects')
    weights, biases = [], []
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or set(layer) != LAYER_KEYS:
            raise ModelFormatError(f'layers[{i}] must be an object with exactly the keys "weight" and "bias"')
        weights.append(matrix(layer["weight"], f"layers[{i}].weight"))
        biases.append(vector(layer["bias"], f"layers[{i}].bias"))
    check_ffn_shapes([_shape(w) for w in weights], [len(b) for b in biases])
    return {"weights": weights, "biases": biases}


def _deq_parts(data: dict) -> dict[str, Any]:
    """A DEQ's W, U, b, A and the optional c, B (None when absent), shapes checked."""
    for key in ("W", "U", "b", "A"):
        if key not in data:
            raise ModelFormatError(f'a deq model needs the key "{key}"')
    parts: dict[str, Any] = {"W": matrix(data["W"], "W"), "U": matrix(data["U"], "U"), "b": vector(data["b"], "b"),
                             "A": matrix(data["A"], "A"), "c": vector(data["c"], "c") if "c" in data else None,
                             "B": matrix(data["B"], "B") if "B" in data else None}
    check_deq_shapes(_shape(parts["W"]), _shape(parts["U"]), len(parts["b"]), _shape(parts["A"]),
                     None if parts["c"] is None else len(parts["c"]), None if parts["B"] is None else _shape(parts["B"]))
    return parts


def regular_file(path: Path, max_bytes: int = MAX_MODEL_BYTES) -> tuple[int, bytes]:
    """(size, first 64 bytes) of a model file, after refusing what is not a regular file of at most
    ``max_bytes`` (devices, FIFOs and sockets are refused before they are opened)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: no such file") from None
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ModelFormatError(f"{path}: is a directory, expected a model file")
    if not stat.S_ISREG(info.st_mode):
        raise ModelFormatError(f"{path}: not a regular file (a device, FIFO or socket); refusing to read it")
    if info.st_size > max_bytes:
        raise ModelFormatError(f"{path}: {info.st_size:,} bytes, above the limit of {max_bytes:,} for a model file")
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return info.st_size, head


def read_json(path: Path) -> Any:
    """The parsed JSON of a file, every failure a one-line :class:`ModelFormatError` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelFormatError(f"{path}: not UTF-8 text (a PyTorch file should end in .pt or .pth)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise ModelFormatError(f"{path}: JSON nested too deeply (a v1 model is at most 4 levels deep)") from None
    except ValueError as exc:  # e.g. an integer literal past Python's 4,300-digit limit
        reason = "a number with more than 4,300 digits" if "digits" in str(exc) else str(exc).splitlines()[0]
        raise ModelFormatError(f"{path}: invalid JSON ({reason})") from None


#: Suffixes of files that are not v1 JSON (read by :func:`regioncount.io.model_files.load_model` with torch).
BINARY_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".onnx", ".pt2"}


def json_model(path: str | Path) -> dict[str, Any] | None:
    """The checked plain-list model of a v1 JSON file (:func:`parse_model`), or None when the file is not
    JSON text (a PyTorch, safetensors, ONNX or torch.export file: read it with ``load_model``)."""
    path = Path(path)
    _, head = regular_file(path)
    if path.suffix.lower() in BINARY_SUFFIXES or head.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        return parse_model(read_json(path))
    except ModelFormatError as exc:
        message = str(exc)
        raise ModelFormatError(message if message.startswith(str(path)) else f"{path}: {message}") from None
