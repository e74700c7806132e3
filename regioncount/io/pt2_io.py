"""Reading ReLU FFNs from ``torch.export`` archives (``.pt2``) without unpickling anything
(``docs/model-format.md``).

``torch.export.load`` unpickles parts of the archive, so it is never called.  The archive is a zip file
whose graph is JSON (``<name>/models/model.json``) and whose weights are raw little-endian bytes described
by JSON (``<name>/data/weights/model_weights_config.json``); both are read here directly, with every size
checked before anything is read, and weights stored pickled are refused.  The graph must be one chain from
the single user input to the single output of ``aten.linear`` maps separated by ``aten.relu``, with
``aten.flatten`` (from dimension 1), inference ``aten.dropout`` and ``aten.clone``/``aten.alias``/
``aten.detach`` passed through; any other operation is refused by name.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import ModelFormatError
from ..graph.model import GraphModel
from ..models.networks import FFN
from .layer_chain import LayerChain
from .pt2_graph import GRAPH_ONLY, graph_from_program

#: Largest JSON member read (graph or weight table).
MAX_JSON_BYTES = 64 * 2**20
#: Largest weight tensor read (elements).
MAX_ELEMENTS = 2**28
#: torch.export's scalar type codes of real floating dtypes -> (torch dtype, bytes per element).
_FLOAT_TYPES = {6: (torch.float16, 2), 7: (torch.float32, 4), 8: (torch.float64, 8), 13: (torch.bfloat16, 2)}
_LINEAR = {"torch.ops.aten.linear.default"}
_RELU = {"torch.ops.aten.relu.default", "torch.ops.aten.relu_.default"}
_PASS = {"torch.ops.aten.clone.default", "torch.ops.aten.alias.default", "torch.ops.aten.detach.default",
         "torch.ops.aten.flatten.using_ints", "torch.ops.aten.dropout.default"}


def is_pt2(archive: zipfile.ZipFile) -> bool:
    """Whether a zip archive is a torch.export archive (it holds ``<name>/archive_format``)."""
    return any(name.endswith("/archive_format") or name == "archive_format" for name in archive.namelist())


def _member(archive: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ModelFormatError(f"{path}: a torch.export archive without {name}") from None
    if info.file_size > limit:
        raise ModelFormatError(f"{path}: {name} holds {info.file_size:,} bytes, above the limit of {limit:,}")
    return archive.read(name)


def _json(archive: zipfile.ZipFile, name: str, path: Path) -> Any:
    try:
        return json.loads(_member(archive, name, MAX_JSON_BYTES, path))
    except (ValueError, RecursionError):
        raise ModelFormatError(f"{path}: {name} is not valid JSON") from None


def _arg_name(arg: dict, what: str, path: Path) -> str:
    tensor = arg.get("as_tensor") if isinstance(arg, dict) else None
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise ModelFormatError(f"{path}: {what} is not a tensor")
    return tensor["name"]


def _weight(archive: zipfile.ZipFile, prefix: str, config: dict, name: str, path: Path) -> torch.Tensor:
    """The weight ``name`` of an archive's weight table, as float64, after its entry is checked (not pickled,
    a real floating dtype, a contiguous shape of at most MAX_ELEMENTS entries) and its bytes counted."""
    entry = config.get(name)
    if not isinstance(entry, dict):
        raise ModelFormatError(f"{path}: the weight {name!r} is missing from the weight table")
    if entry.get("use_pickle", True):
        raise ModelFormatError(f"{path}: the weight {name!r} is stored pickled; refusing to unpickle it")
    meta = entry.get("tensor_meta", {})
    dtype = _FLOAT_TYPES.get(meta.get("dtype"))
    if dtype is None:
        raise ModelFormatError(f"{path}: the weight {name!r} has dtype code {meta.get('dtype')}; only real floating "
                               "weights are read")
    sizes = _contiguous_sizes(meta, name, path)
    count = int(np.prod(sizes))
    data = _member(archive, f"{prefix}/data/weights/{entry.get('path_name')}", count * dtype[1], path)
    if len(data) != count * dtype[1]:
        raise ModelFormatError(f"{path}: the weight {name!r} holds {len(data):,} bytes, expected {count * dtype[1]:,}")
    tensor = torch.frombuffer(bytearray(data), dtype=dtype[0]).reshape(sizes).to(torch.float64)
    if not bool(torch.isfinite(tensor).all()):
        raise ModelFormatError(f"{path}: the weight {name!r} has NaN or infinite entries")
    return tensor


def _contiguous_sizes(meta: dict, name: str, path: Path) -> list[int]:
    """The sizes of a weight's tensor metadata, refused unless strided layout, contiguous from offset 0 and
    at most MAX_ELEMENTS entries."""
    sizes = [s.get("as_int") for s in meta.get("sizes", [])]
    strides = [s.get("as_int") for s in meta.get("strides", [])]
    if not sizes or any(not isinstance(s, int) or s < 0 for s in sizes) or meta.get("layout") != 7:
        raise ModelFormatError(f"{path}: the weight {name!r} has an unreadable shape or layout")
    count = int(np.prod(sizes))
    if count > MAX_ELEMENTS:
        raise ModelFormatError(f"{path}: the weight {name!r} has {count:,} entries, above {MAX_ELEMENTS:,}")
    expected = [int(np.prod(sizes[i + 1:])) for i in range(len(sizes))]
    if strides != expected or meta.get("storage_offset", {}).get("as_int", 0) != 0:
        raise ModelFormatError(f"{path}: the weight {name!r} is not stored contiguously")
    return sizes


def _contents(archive: zipfile.ZipFile, path: Path) -> tuple[str, Any, dict]:
    """(prefix, graph program, weight table) of an archive, after its layout and byte order are checked."""
    formats = [n for n in archive.namelist() if n.endswith("archive_format")]
    if not formats:
        raise ModelFormatError(f"{path}: a zip file that is not a torch.export archive")
    prefix = formats[0].rsplit("/", 1)[0] if "/" in formats[0] else ""
    if f"{prefix}/byteorder" in archive.namelist() and \
            _member(archive, f"{prefix}/byteorder", 16, path).strip() != b"little":
        raise ModelFormatError(f"{path}: weights stored big-endian are not read")
    program = _json(archive, f"{prefix}/models/model.json", path)
    table = _json(archive, f"{prefix}/data/weights/model_weights_config.json", path)
    return prefix, program, table.get("config", {}) if isinstance(table, dict) else {}


def _signature(program: Any, path: Path) -> tuple[list, dict[str, str], str, str]:
    """(nodes, parameter name of each graph argument, the user input's name, the output's name)."""
    try:
        module = program["graph_module"]
        nodes, outputs = module["graph"]["nodes"], module["graph"]["outputs"]
        specs = module["signature"]["input_specs"]
    except (KeyError, TypeError):
        raise ModelFormatError(f"{path}: the archive's graph is not in the torch.export layout") from None
    params: dict[str, str] = {}
    users = []
    for spec in specs:
        kind = next(iter(spec), None) if isinstance(spec, dict) else None
        if kind == "parameter":
            params[spec[kind]["arg"]["name"]] = spec[kind]["parameter_name"]
        elif kind == "user_input":
            users.append(_arg_name(spec[kind]["arg"], "the user input", path))
        else:
            raise ModelFormatError(f"{path}: the graph takes a {kind} input (buffers and constants are not read; "
                                   "export a Linear/ReLU network in eval mode)")
    if len(users) != 1 or len(outputs) != 1:
        raise ModelFormatError(f"{path}: the graph has {len(users)} inputs and {len(outputs)} outputs; "
                               "regioncount reads a network with one input and one output")
    return nodes, params, users[0], _arg_name(outputs[0], "the graph's output", path)


def _check_pass_through(target: str, inputs: dict, path: Path) -> None:
    if target == "torch.ops.aten.flatten.using_ints":
        start = inputs.get("start_dim", {}).get("as_int", 0)
        end = inputs.get("end_dim", {"as_int": -1}).get("as_int", -1)
        if start != 1 or end != -1:
            raise ModelFormatError(f"{path}: flatten from dimension {start} to {end}; only flatten(x, 1)")
    if target == "torch.ops.aten.dropout.default" and inputs.get("train", {}).get("as_bool", True):
        raise ModelFormatError(f"{path}: dropout in training mode")


def _read_node(node: dict, current: str, chain: LayerChain, weight: Any, path: Path) -> str:
    """Add one node to the chain (``weight(graph argument)`` reads a parameter); returns the running value."""
    target = node.get("target")
    inputs = {a.get("name"): a.get("arg") for a in node.get("inputs", [])}
    first = next(iter(inputs.values()), None)
    if target not in _LINEAR | _RELU | _PASS:
        raise ModelFormatError(f"{path}: the operation {target} is not supported; regioncount reads ReLU "
                               "FFNs made of aten.linear and aten.relu (flatten, dropout in eval mode passed)")
    if first is None or _arg_name(first, f"the input of {target}", path) != current:
        raise ModelFormatError(f"{path}: {target} does not continue the chain from the input "
                               "(branches are not supported)")
    if target in _LINEAR:
        bias_arg = inputs.get("bias")
        bias = weight(bias_arg) if isinstance(bias_arg, dict) and "as_tensor" in bias_arg else None
        chain.affine(str(target), weight(inputs["weight"]), bias)
    elif target in _RELU:
        chain.relu(str(target))
    else:
        _check_pass_through(str(target), inputs, path)
    return _arg_name(node["outputs"][0], f"the output of {target}", path)


def load_pt2(path: Path) -> FFN | GraphModel:
    """The ReLU FFN stored in a torch.export archive (see the module docstring); one-line errors."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ModelFormatError(f"{path}: not a readable torch.export archive (zip)") from None
    with archive:
        prefix, program, config = _contents(archive, path)
        graph_nodes = program.get("graph_module", {}).get("graph", {}).get("nodes", []) if isinstance(program, dict) \
            else []
        if any(isinstance(n, dict) and n.get("target") in GRAPH_ONLY for n in graph_nodes):
            try:  # convolutions, pooling, ...: a graph model
                return graph_from_program(path, program, lambda name: _weight(archive, prefix, config, name, path))
            except (KeyError, TypeError, AttributeError, IndexError, ValueError):
                raise ModelFormatError(f"{path}: the archive's graph is not in the torch.export layout") from None
        try:
            nodes, params, current, output = _signature(program, path)
            chain = LayerChain(path, "torch.export")

            def weight(arg: Any) -> np.ndarray:
                name = params.get(_arg_name(arg, "a weight", path), "")
                return _weight(archive, prefix, config, name, path).numpy()

            for node in nodes:
                current = _read_node(node, current, chain, weight, path)
        except (KeyError, TypeError, AttributeError, IndexError, ValueError):
            raise ModelFormatError(f"{path}: the archive's graph is not in the torch.export layout") from None
    if current != output:
        raise ModelFormatError(f"{path}: the graph's output is not the end of its chain of layers")
    return chain.model(f"{path.name} (torch.export graph, {chain.relus} relu layers)")
