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
import torch

from .errors import ModelFormatError
from .models import FFN

#: Operations read as the identity on a batch of vectors.
PASS_THROUGH = {"Identity", "Dropout", "Flatten"}
SUPPORTED = {"Gemm", "MatMul", "Add", "Relu"} | PASS_THROUGH


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class _Chain:
    """The affine layers read so far, and the one still open (waiting for a bias or a ReLU)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []
        self.open: list[np.ndarray] | None = None  # [W (out, in), b (out,)]
        self.open_has_bias = False
        self.relus = 0

    def fail(self, node: Any, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.path}: ONNX node {node.name or node.op_type!r} ({node.op_type}): {message}")

    def affine(self, node: Any, weight: np.ndarray, bias: np.ndarray | None) -> None:
        if self.open is not None:
            raise self.fail(node, "two affine maps without a Relu between them; regioncount reads ReLU FFNs as "
                                  "stored (fold the two maps into one before exporting)")
        if self.layers and weight.shape[1] != self.layers[-1][0].shape[0]:
            raise self.fail(node, f"takes {weight.shape[1]} inputs, the previous layer gives {self.layers[-1][0].shape[0]}")
        out = weight.shape[0]
        self.open = [weight, np.zeros(out) if bias is None else bias]
        self.open_has_bias = bias is not None

    def add_bias(self, node: Any, bias: np.ndarray) -> None:
        if self.open is None or self.open_has_bias:
            raise self.fail(node, "an Add that is not the bias of a MatMul")
        out = self.open[0].shape[0]
        if bias.size != out:
            raise self.fail(node, f"a bias of {bias.size} entries for a layer of {out} units")
        self.open[1] = bias.reshape(out)
        self.open_has_bias = True

    def relu(self, node: Any) -> None:
        if self.open is None:
            raise self.fail(node, "a Relu that does not follow an affine map")
        self.layers.append((self.open[0], self.open[1]))
        self.open = None
        self.relus += 1


def _constant(name: str, constants: dict[str, np.ndarray], chain: _Chain, node: Any) -> np.ndarray:
    if name not in constants:
        raise chain.fail(node, f"input {name!r} is neither the running value nor a constant (initializer)")
    value = constants[name]
    if value.dtype not in (np.float32, np.float64):
        raise chain.fail(node, f"a {value.dtype} tensor; only float32 and float64 weights are read")
    if not np.isfinite(value).all():
        raise chain.fail(node, "a weight is NaN or infinite")
    return value.astype(np.float64)


def load_onnx(path: Path) -> FFN:
    """The ReLU FFN stored in an ONNX file (see the module docstring); one-line errors name the file."""
    try:
        import onnx
        from onnx import numpy_helper
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
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelFormatError(f"{path}: the ONNX graph has {len(inputs)} inputs and {len(graph.output)} outputs; "
                               "regioncount reads a network with one input and one output")
    chain = _Chain(path)
    current = inputs[0].name
    for node in graph.node:
        op = node.op_type
        if op == "Constant":
            value = _attributes(node).get("value")
            if value is None:
                raise chain.fail(node, "a Constant that is not a tensor")
            constants[node.output[0]] = numpy_helper.to_array(value)
            continue
        if op not in SUPPORTED:
            raise chain.fail(node, f"the operation {op} is not supported; regioncount reads ReLU FFNs made of "
                                   f"{', '.join(sorted(SUPPORTED))}")
        if not node.input or node.input[0] != current:
            if op in ("Add", "MatMul") and len(node.input) == 2 and node.input[1] == current:
                raise chain.fail(node, "the running value is the second operand; export x @ W, not W @ x")
            raise chain.fail(node, "does not continue the chain from the input (branches are not supported)")
        attrs = _attributes(node)
        if op == "Flatten" and attrs.get("axis", 1) != 1:
            raise chain.fail(node, "Flatten with an axis other than 1")
        if op == "Dropout" and len(node.input) > 2 and node.input[2]:
            mode = constants.get(node.input[2])
            if mode is None or bool(np.asarray(mode).any()):
                raise chain.fail(node, "Dropout in training mode")
        if op == "Gemm":
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise chain.fail(node, "Gemm with transA, alpha or beta other than the defaults")
            B = _constant(node.input[1], constants, chain, node)
            if B.ndim != 2:
                raise chain.fail(node, f"a weight of shape {B.shape}")
            weight = B if attrs.get("transB", 0) else B.T
            bias = None
            if len(node.input) > 2 and node.input[2]:
                C = _constant(node.input[2], constants, chain, node)
                if C.size not in (1, weight.shape[0]):
                    raise chain.fail(node, f"a bias of {C.size} entries for {weight.shape[0]} units")
                bias = np.broadcast_to(C.reshape(-1), (weight.shape[0],)).copy()
            chain.affine(node, weight, bias)
        elif op == "MatMul":
            B = _constant(node.input[1], constants, chain, node)
            if B.ndim != 2:
                raise chain.fail(node, f"a weight of shape {B.shape}")
            chain.affine(node, B.T, None)
        elif op == "Add":
            chain.add_bias(node, _constant(node.input[1], constants, chain, node))
        elif op == "Relu":
            chain.relu(node)
        current = node.output[0]
    if current != graph.output[0].name:
        raise ModelFormatError(f"{path}: the ONNX graph's output is not the end of its chain of layers")
    if chain.open is not None:
        chain.layers.append((chain.open[0], chain.open[1]))
    else:  # ends with a Relu: the identity readout of the last hidden layer (exact)
        if not chain.layers:
            raise ModelFormatError(f"{path}: the ONNX graph has no affine layer")
        width = chain.layers[-1][0].shape[0]
        chain.layers.append((np.eye(width), np.zeros(width)))
    weights = [torch.from_numpy(np.ascontiguousarray(w, dtype=np.float64)) for w, _ in chain.layers]
    biases = [torch.from_numpy(np.ascontiguousarray(b, dtype=np.float64)) for _, b in chain.layers]
    return FFN(weights, biases, name=f"{path.name} (ONNX graph, {chain.relus} Relu layers)")
