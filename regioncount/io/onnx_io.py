"""Reading ReLU FFNs from ONNX files (``docs/model-format.md``): the graph is read, not assumed.

An ONNX file carries the computation, so the activations are known: the graph must be one chain from its
single input to its single output of affine maps (``Gemm`` with alpha = beta = 1, or ``MatMul`` followed by
an optional ``Add`` of a constant bias) separated by ``Relu``, with ``Flatten`` (axis 1), ``Identity`` and
inference ``Dropout`` passed through.  Any other operation is refused by name.  Weights come from the
graph's initializers (or ``Constant`` nodes) as float32 or float64 tensors; both are exact in float64, so
the model counted is the model stored.  Parsing the protobuf runs no code from the file.  ``onnx`` is an
optional dependency (``pip install "regioncount[onnx]"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ModelFormatError
from ..graph.model import GraphModel
from ..models.networks import FFN
from .layer_chain import LayerChain
from .onnx_graph import GRAPH_ONLY, load_onnx_graph
from .onnx_tensors import MAX_ELEMENTS, _tensor  # noqa: F401  (re-exported)

#: Operations read as the identity on a batch of vectors.
PASS_THROUGH = {"Identity", "Dropout", "Flatten"}
SUPPORTED = {"Gemm", "MatMul", "Add", "Relu"} | PASS_THROUGH


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _constant(name: str, constants: dict[str, np.ndarray], chain: LayerChain, where: str) -> np.ndarray:
    if name not in constants:
        raise chain.fail(where, f"input {name!r} is neither the running value nor a constant (initializer)")
    value = constants[name]
    if value.dtype not in (np.float32, np.float64):
        raise chain.fail(where, f"a {value.dtype} tensor; only float32 and float64 weights are read")
    if not np.isfinite(value).all():
        raise chain.fail(where, "a weight is NaN or infinite")
    return value.astype(np.float64)


def _gemm(node: Any, attrs: dict[str, Any], constants: dict[str, np.ndarray], chain: LayerChain, where: str) -> None:
    if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
        raise chain.fail(where, "Gemm with transA, alpha or beta other than the defaults")
    B = _constant(node.input[1], constants, chain, where)
    weight = B if attrs.get("transB", 0) or B.ndim != 2 else B.T
    bias = None
    if len(node.input) > 2 and node.input[2]:
        C = _constant(node.input[2], constants, chain, where)
        rows = weight.shape[0] if weight.ndim == 2 else 0
        bias = np.broadcast_to(C.reshape(-1), (rows,)).copy() if C.size == 1 else C
    chain.affine(where, weight, bias)


def _check_pass_through(node: Any, op: str, attrs: dict[str, Any], constants: dict[str, np.ndarray],
                        chain: LayerChain, where: str) -> None:
    if op == "Flatten" and attrs.get("axis", 1) != 1:
        raise chain.fail(where, "Flatten with an axis other than 1")
    if op == "Dropout" and len(node.input) > 2 and node.input[2]:
        mode = constants.get(node.input[2])
        if mode is None or bool(np.asarray(mode).any()):
            raise chain.fail(where, "Dropout in training mode")


def _read_node(node: Any, current: str, constants: dict[str, np.ndarray], chain: LayerChain) -> str:
    """Add one node to the chain; returns the name of the running value after it."""
    op, where = node.op_type, f"{node.name or node.op_type!r} ({node.op_type})"
    attrs = _attributes(node)
    if op == "Constant":
        if attrs.get("value") is None:
            raise chain.fail(where, "a Constant that is not a tensor")
        constants[node.output[0]] = _tensor(attrs["value"], chain.path)
        return current
    if op not in SUPPORTED:
        raise chain.fail(where, f"the operation {op} is not supported; regioncount reads ReLU FFNs made of "
                                f"{', '.join(sorted(SUPPORTED))}")
    if not node.input or node.input[0] != current:
        if op in ("Add", "MatMul") and len(node.input) == 2 and node.input[1] == current:
            raise chain.fail(where, "the running value is the second operand; export x @ W, not W @ x")
        raise chain.fail(where, "does not continue the chain from the input (branches are not supported)")
    if op == "Gemm":
        _gemm(node, attrs, constants, chain, where)
    elif op == "MatMul":
        B = _constant(node.input[1], constants, chain, where)
        chain.affine(where, B.T if B.ndim == 2 else B, None)
    elif op == "Add":
        chain.add_bias(where, _constant(node.input[1], constants, chain, where))
    elif op == "Relu":
        chain.relu(where)
    else:
        _check_pass_through(node, op, attrs, constants, chain, where)
    return node.output[0]


def load_onnx(path: Path) -> FFN | GraphModel:
    """The ReLU FFN stored in an ONNX file (see the module docstring); one-line errors name the file."""
    try:
        import onnx
    except ImportError:
        raise ModelFormatError(f"{path}: an ONNX file; reading it needs the onnx package "
                               "(pip install \"regioncount[onnx]\")") from None
    try:
        proto = onnx.load_model_from_string(path.read_bytes())
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise ModelFormatError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    graph = proto.graph
    if graph is None or not graph.node:
        raise ModelFormatError(f"{path}: an ONNX model without a graph")
    constants = {t.name: _tensor(t, path) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelFormatError(f"{path}: the ONNX graph has {len(inputs)} inputs and {len(graph.output)} outputs; "
                               "regioncount reads a network with one input and one output")
    if any(node.op_type in GRAPH_ONLY for node in graph.node):  # not a chain of Gemm and Relu: a graph model
        return load_onnx_graph(path, graph, constants)
    chain = LayerChain(path, "ONNX")
    current = inputs[0].name
    for node in graph.node:
        current = _read_node(node, current, constants, chain)
    if current != graph.output[0].name:
        raise ModelFormatError(f"{path}: the ONNX graph's output is not the end of its chain of layers")
    return chain.model(f"{path.name} (ONNX graph, {chain.relus} Relu layers)")
