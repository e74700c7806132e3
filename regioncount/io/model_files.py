"""Reading and writing models: the v1 JSON format and PyTorch ``state_dict`` files.

Every problem with a file becomes a :class:`ModelFormatError` whose one-line message names the file and
the problem.  PyTorch files are read with ``torch.load(weights_only=True)``: nothing is unpickled.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from ..core.atomic import atomic_output
from ..core.errors import ModelFormatError, RegionCountError
from ..core.geometry import Domain
from ..graph.model import GraphModel
from ..models.modelfile import MAX_MODEL_BYTES, parse_model, read_json, regular_file
from ..models.networks import DEQ, FFN, Model

TORCH_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt"}
#: Largest tensor (elements) accepted from a state_dict.
MAX_TENSOR_ELEMENTS = 2**28


def model_from_dict(data: Any) -> Model:
    """Build and validate a model from a parsed v1 JSON object (see ``docs/model-format.md``)."""
    parts = parse_model(data)
    domain = Domain(*parts["domain"]) if parts["domain"] is not None else None
    if parts["type"] == "ffn":
        return FFN(parts["weights"], parts["biases"], name=parts["name"], domain=domain)
    return DEQ(W=parts["W"], U=parts["U"], b=parts["b"], A=parts["A"], c=parts["c"], B=parts["B"],
               name=parts["name"], domain=domain)


def model_to_dict(model: Model) -> dict[str, Any]:
    """The v1 JSON object of a model (floats written with full float64 precision by ``json``)."""
    data: dict[str, Any] = {"type": model.kind}
    if model.name is not None:
        data["name"] = model.name
    if isinstance(model, FFN):
        data["layers"] = [
            {"weight": w.tolist(), "bias": b.tolist()} for w, b in zip(model.weights, model.biases)
        ]
    else:
        data.update(W=model.W.tolist(), U=model.U.tolist(), b=model.b.tolist(),
                    A=model.A.tolist(), c=model.c.tolist())
        if model.B.any():
            data["B"] = model.B.tolist()
    if model.domain is not None:
        data["domain"] = {"low": list(model.domain.low), "high": list(model.domain.high)}
    return data


def save_model(model: Model, path: str | Path) -> None:
    """Write a model as a v1 JSON file (atomically: the file is complete or untouched)."""
    with atomic_output(path) as temp:
        temp.write_text(json.dumps(model_to_dict(model), indent=1) + "\n", encoding="utf-8")


_PARAM_KEY = re.compile(r"^(?P<path>.+)\.(?P<param>weight|bias)$")
_INDEXED_PATH = re.compile(r"^(?P<prefix>.*?)(?P<index>\d+)$")


def model_from_state_dict(state: Any, source: str = "state_dict") -> Model:
    """An FFN from the ``state_dict`` of a ReLU network of ``Linear`` layers (a DEQ when it has ``W.weight``
    and ``U.weight``: :func:`deq_from_state_dict`).

    Keys are ``<layer>.weight`` and ``<layer>.bias``.  When every layer name is one common prefix plus an
    index (``0``, ``2``, ``net.4``: an ``nn.Sequential``), layers are taken in index order and consecutive
    indices (no room for a ReLU) are refused; otherwise (``fc1``, ``fc2``, ``out``) in the order of the file,
    which is the order the module registered them.  A state_dict stores no activations: a ReLU is assumed
    between consecutive layers, and the model's name says so.  The last layer is the readout.
    """
    if not isinstance(state, dict) or not state:
        raise ModelFormatError(f"{source}: expected a non-empty state_dict (a dict of tensors)")
    if "W.weight" in state and "U.weight" in state:
        return deq_from_state_dict(state, source)
    layers = _linear_layers(state, source)
    weights, biases = [], []
    for name in _layer_order(list(layers), source):
        weight, bias = _linear_parameters(layers[name], f"{source}: {name}")
        weights.append(weight)
        biases.append(bias)
    return FFN(weights, biases, name=f"{Path(source).name} (state_dict: ReLU assumed between layers)")


def _linear_layers(state: dict, source: str) -> dict[str, dict[str, torch.Tensor]]:
    """The state_dict's tensors by layer name and parameter (weight, bias), in the file's order; any other
    key is refused."""
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        match = _PARAM_KEY.match(str(key))
        if match is None or not isinstance(value, torch.Tensor):
            raise ModelFormatError(
                f"{source}: key {key!r} is not the weight or bias of a Linear layer (a state_dict is read as "
                "Linear layers with ReLUs between them, or as a DEQ with layers W, U and a readout A; convert "
                "other modules with regioncount.from_module)"
            )
        layers.setdefault(match["path"], {})[match["param"]] = value
    return layers


def _layer_order(names: list[str], source: str) -> list[str]:
    """Layer names in index order when they are one prefix plus an index (an ``nn.Sequential``; adjacent
    indices leave no room for a ReLU and are refused), else in the given (registration) order."""
    matches = [m for m in map(_INDEXED_PATH.match, names) if m is not None]
    if len(matches) != len(names) or len({m["prefix"] for m in matches}) != 1:
        return names
    by_index = sorted((int(m["index"]), name) for m, name in zip(matches, names))
    for (prev, _), (cur, _) in zip(by_index, by_index[1:]):
        if cur - prev < 2:
            raise ModelFormatError(f"{source}: Linear layers {prev} and {cur} are adjacent; a ReLU must separate "
                                   "Linear layers")
    return [name for _, name in by_index]


def _linear_parameters(params: dict[str, torch.Tensor], label: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A Linear layer's float64 weight matrix and bias (zeros when it has none), checked finite and sized."""
    if "weight" not in params:
        raise ModelFormatError(f"{label} has a bias but no weight")
    for param, tensor in params.items():
        _check_tensor(tensor, f"{label}.{param}")
    weight = params["weight"].detach().to(torch.float64)
    if weight.dim() != 2:
        raise ModelFormatError(f"{label}.weight has shape {tuple(weight.shape)}, expected a matrix")
    bias = params.get("bias")
    return weight, (torch.zeros(weight.shape[0], dtype=torch.float64) if bias is None
                    else bias.detach().to(torch.float64))


#: readout layer names of a DEQ module's state_dict, in order of preference
DEQ_READOUTS = ("A", "readout", "out", "head", "fc")


def deq_from_state_dict(state: dict, source: str = "state_dict") -> DEQ:
    """A DEQ ``z = relu(W z + U x + b)``, ``y = A z + B x + c`` from the state_dict of a DEQ module with
    ``Linear`` layers named ``W`` (m x m; a bias, if any, is added to b), ``U`` (m x d, its bias is b), a
    readout ``A`` (or ``readout``, ``out``, ``head``, ``fc``; its bias is c) and optionally ``B`` (k x d,
    no bias), as torchdeq-style modules name them.  Other keys are refused by name."""
    def tensor(key: str) -> torch.Tensor:
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise ModelFormatError(f"{source}: {key} is not a tensor")
        _check_tensor(value, f"{source}: {key}")
        return value.detach().to(torch.float64)

    readout = next((name for name in DEQ_READOUTS if f"{name}.weight" in state), None)
    if readout is None:
        raise ModelFormatError(f"{source}: a DEQ state_dict (W.weight, U.weight) needs a readout layer named one of "
                               f"{', '.join(DEQ_READOUTS)}")
    known = {"W.weight", "W.bias", "U.weight", "U.bias", f"{readout}.weight", f"{readout}.bias", "B.weight"}
    extra = sorted(str(key) for key in state if key not in known)
    if extra:
        raise ModelFormatError(f"{source}: key {extra[0]!r} is not part of a ReLU DEQ (W, U, {readout}, B); "
                               "convert other modules with regioncount.from_module")
    W, U = tensor("W.weight"), tensor("U.weight")
    m = W.shape[0]
    b = tensor("U.bias") if "U.bias" in state else torch.zeros(m, dtype=torch.float64)
    if "W.bias" in state:
        b = b + tensor("W.bias")
    A = tensor(f"{readout}.weight")
    k, d = A.shape[0] if A.dim() == 2 else 0, U.shape[1] if U.dim() == 2 else 0
    c = tensor(f"{readout}.bias") if f"{readout}.bias" in state else torch.zeros(k, dtype=torch.float64)
    B = tensor("B.weight") if "B.weight" in state else torch.zeros(k, d, dtype=torch.float64)
    return DEQ(W, U, b, A, c=c, B=B, name=f"{Path(source).name} (DEQ state_dict: ReLU fixed point assumed)")


def _check_tensor(tensor: torch.Tensor, where: str) -> None:
    """Refuse, before materialising anything, tensors that are not plain real floating arrays of a sane size."""
    if tensor.layout != torch.strided:
        raise ModelFormatError(f"{where}: a {str(tensor.layout).replace('torch.', '')} tensor; only dense tensors are read")
    if tensor.is_quantized or not tensor.is_floating_point():
        raise ModelFormatError(f"{where}: dtype {str(tensor.dtype).replace('torch.', '')}; weights must be real "
                               "floating point (float16/32/64, bfloat16)")
    if tensor.numel() > MAX_TENSOR_ELEMENTS:
        raise ModelFormatError(f"{where}: {tensor.numel():,} elements, above the limit of {MAX_TENSOR_ELEMENTS:,}")
    if tensor.numel() and tensor.untyped_storage().nbytes() < tensor.numel() * tensor.element_size():
        raise ModelFormatError(f"{where}: an expanded (stride-0 / overlapping) tensor declaring {tensor.numel():,} "
                               "elements on a smaller storage; save a contiguous copy")


def _load_torch(path: Path) -> Model:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc) or "GLOBAL" in str(exc):
            raise ModelFormatError(
                f"{path}: refusing to unpickle a whole module (only tensors are loaded, weights_only=True); "
                "save the weights instead with torch.save(model.state_dict(), path)"
            ) from None
        raise ModelFormatError(f"{path}: not a readable PyTorch file ({text})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return model_from_state_dict(state, str(path))


#: dtypes a safetensors file may hold for weights (real floating point), by the names of its header
SAFETENSORS_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}
#: largest safetensors header read (the JSON that lists names, dtypes, shapes and offsets)
MAX_SAFETENSORS_HEADER = 2**24


def _check_safetensors_entry(path: Path, name: str, entry: object) -> None:
    """Refuse a safetensors header entry without a shape, of a dtype that is not real floating point, or of
    more than MAX_TENSOR_ELEMENTS elements."""
    if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list):
        raise ModelFormatError(f"{path}: tensor {name!r} has no shape in the header")
    if entry.get("dtype") not in SAFETENSORS_FLOAT_DTYPES:
        raise ModelFormatError(f"{path}: {name}: dtype {entry.get('dtype')}; weights must be real floating point "
                               "(F16, BF16, F32, F64)")
    count = 1
    for dim in entry["shape"]:
        if not isinstance(dim, int) or dim < 0:
            raise ModelFormatError(f"{path}: {name}: bad shape {entry['shape']}")
        count *= dim
    if count > MAX_TENSOR_ELEMENTS:
        raise ModelFormatError(f"{path}: {name}: {count:,} elements, above the limit of {MAX_TENSOR_ELEMENTS:,}")


def _load_safetensors(path: Path, size: int) -> Model:
    """A state_dict stored as ``.safetensors`` (weights only, no code, no pickle): its header is checked (real
    floating dtypes, element counts) before any tensor is read; the tensors are then read, and their offsets
    checked, by the ``safetensors`` library (``pip install "regioncount[safetensors]"``)."""
    import json
    import struct

    with path.open("rb") as handle:
        raw = handle.read(8)
        length = struct.unpack("<Q", raw)[0] if len(raw) == 8 else -1
        if not 2 <= length <= min(MAX_SAFETENSORS_HEADER, size - 8):
            raise ModelFormatError(f"{path}: not a safetensors file (header length {length})")
        try:
            header = json.loads(handle.read(length))
        except (ValueError, RecursionError):
            raise ModelFormatError(f"{path}: not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelFormatError(f"{path}: not a safetensors file (its header is not a JSON object)")
    for name, entry in header.items():
        if name != "__metadata__":
            _check_safetensors_entry(path, name, entry)
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:
        raise ModelFormatError(f"{path}: reading .safetensors needs the safetensors package: "
                               "pip install 'regioncount[safetensors]'") from None
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFormatError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None
    return model_from_state_dict(state, str(path))


def _is_safetensors(head: bytes, path: Path) -> bool:
    """A safetensors file: an 8-byte little-endian header length (its high bytes zero), then a JSON object."""
    return path.suffix.lower() == ".safetensors" or (len(head) > 9 and head[8:9] == b"{" and head[7:8] == b"\x00")


def _zip_is_pt2(path: Path) -> bool:
    """Whether a zip file is a torch.export archive (read without unpickling, :mod:`regioncount.io.pt2_io`)."""
    import zipfile

    from .pt2_io import is_pt2

    try:
        with zipfile.ZipFile(path) as archive:
            return is_pt2(archive)
    except (zipfile.BadZipFile, OSError):
        return False


def load_network(path: str | Path) -> Model:
    """:func:`load_model` for callers that need an FFN or a DEQ (a graph model is refused in one line)."""
    model = load_model(path)
    if isinstance(model, GraphModel):
        raise ModelFormatError(f"{path}: a graph model (convolutions, pooling, ...), where an FFN or a DEQ is needed")
    return model


def load_model(path: str | Path, max_bytes: int = MAX_MODEL_BYTES) -> Model | GraphModel:
    """Load a model from a v1 JSON file, a PyTorch ``state_dict`` file, a ``.safetensors`` state_dict, an
    ``.onnx`` graph or a ``torch.export`` archive (``.pt2``, read without unpickling) (chosen by content and
    suffix).

    Only regular files up to ``max_bytes`` are read (devices, FIFOs and sockets are refused before they
    are opened); every problem is a one-line :class:`ModelFormatError` naming the file.
    """
    path = Path(path)
    size, head = regular_file(path, max_bytes)
    if path.suffix.lower() == ".onnx":
        from .onnx_io import load_onnx

        return load_onnx(path)
    if head.startswith(b"PK\x03\x04") and (path.suffix.lower() == ".pt2" or _zip_is_pt2(path)):
        from .pt2_io import load_pt2

        return load_pt2(path)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return _load_torch(path)
    if _is_safetensors(head, path):
        return _load_safetensors(path, size)
    if path.suffix.lower() in TORCH_SUFFIXES:
        if head.lstrip()[:1] in (b"{", b"["):
            raise ModelFormatError(f"{path}: not a PyTorch file but JSON text; name it .json to read it as a v1 model")
        raise ModelFormatError(f"{path}: not a PyTorch file (neither a zip archive nor a pickle)")
    try:
        return model_from_dict(read_json(path))
    except RegionCountError as exc:
        message = str(exc)
        raise type(exc)(message if message.startswith(str(path)) else f"{path}: {message}") from None
