"""Reading graph models from ONNX files: convolutions, pooling, batch norm, residual sums, other activations.

An ONNX graph that is not a plain chain of ``Gemm``/``MatMul``/``Relu`` (those are read as FFNs by
:mod:`regioncount.io.onnx_io`) and uses any of ``GRAPH_ONLY`` is read node by node into a
:class:`~regioncount.graph.model.GraphModel` (``docs/graphs.md``): ``Conv`` (symmetric pads), ``MaxPool``,
``AveragePool`` (whole windows or ``count_include_pad``), ``GlobalAveragePool``, ``BatchNormalization``
(folded in float64), ``Relu``, ``LeakyRelu``, ``PRelu``, ``Abs``, ``Clip``, ``Add``/``Sub`` of two tensors or of
a constant, ``Mul``/``Div`` by a scalar constant, ``Concat``, ``Flatten``, ``Reshape``, ``Gemm``, ``MatMul``,
``Identity`` and inference ``Dropout``.  Any other operation is refused by name; nothing in the file is run.
The per-sample input shape comes from the graph input's type (its first dimension is the batch).
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import ModelFormatError
from ..graph.model import GraphModel, GraphNode
from ..graph.ops import ChannelAffine, Combination, Concat, Conv, Dense, Elementwise, MaxGroups, Offset, Reshape, WindowAverage
from .graph_fx import _window_groups, abs_op, clamp_op, prelu_op, relu_op
from .onnx_tensors import _tensor

#: Operations only a graph model has: their presence sends an ONNX file here.
GRAPH_ONLY = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization", "LeakyRelu", "PRelu",
              "Abs", "Clip", "Concat", "Sub", "Mul", "Div", "Reshape"}
PASS = {"Identity", "Dropout"}


def _float(value: np.ndarray, where: str) -> torch.Tensor:
    if value.dtype not in (np.float32, np.float64) or not np.isfinite(value).all():
        raise ModelFormatError(f"{where}: weights must be finite float32 or float64")
    return torch.tensor(value.astype(np.float64))


def _pads(attrs: dict, dims: int, where: str) -> tuple[int, int]:
    pads = list(attrs.get("pads", [0] * 2 * dims))
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise ModelFormatError(f"{where}: auto_pad {attrs['auto_pad']!r} is not read (export with explicit pads)")
    if pads[:dims] != pads[dims:]:
        raise ModelFormatError(f"{where}: asymmetric pads {pads} are not read")
    return (0, pads[0]) if dims == 1 else (pads[0], pads[1])


def _pair(values: Any, dims: int, default: int) -> tuple[int, int]:
    values = list(values) if values is not None else [default] * dims
    return (1 if default else 0, int(values[0])) if dims == 1 else (int(values[0]), int(values[1]))


class _Reader:
    def __init__(self, path: Path, constants: dict[str, np.ndarray]) -> None:
        self.path, self.constants = path, constants
        self.nodes: list[GraphNode] = []
        self.index: dict[str, int] = {}

    def shape(self, name: str) -> tuple[int, ...]:
        return self.nodes[self.index[name]].shape

    def constant(self, name: str, where: str) -> np.ndarray:
        if name not in self.constants:
            raise ModelFormatError(f"{where}: input {name!r} is neither a tensor of the network nor a constant")
        return self.constants[name]

    def add(self, name: str, where: str, op: Any, inputs: list[str]) -> None:
        for source in inputs:
            if source not in self.index:
                raise ModelFormatError(f"{where}: reads {source!r}, which is not a tensor of the network")
        if isinstance(op, Elementwise):
            shape = self.shape(inputs[0])
        elif isinstance(op, MaxGroups):
            shape = op.out_shape
        else:
            with torch.no_grad():  # the output shape, from the operator itself on zeros
                probe = [torch.zeros(1, *self.shape(s), dtype=torch.float64) for s in inputs]
                shape = tuple(op.forward(probe).shape[1:])
        self.nodes.append(GraphNode(name, op, tuple(self.index[s] for s in inputs), shape))
        self.index[name] = len(self.nodes) - 1


def _conv(r: _Reader, node: Any, attrs: dict, where: str) -> Conv:
    weight = _float(r.constant(node.input[1], where), where)
    dims = weight.dim() - 2
    if dims not in (1, 2):
        raise ModelFormatError(f"{where}: a {dims}-D convolution is not read")
    bias = _float(r.constant(node.input[2], where), where) if len(node.input) > 2 and node.input[2] else \
        torch.zeros(weight.shape[0], dtype=torch.float64)
    return Conv(weight, bias, r.shape(node.input[0]), _pair(attrs.get("strides"), dims, 1), _pads(attrs, dims, where),
                _pair(attrs.get("dilations"), dims, 1), int(attrs.get("group", 1)))


def _pool(r: _Reader, node: Any, attrs: dict, where: str, op: str) -> Any:
    shape = r.shape(node.input[0])
    dims = len(shape) - 1
    if attrs.get("ceil_mode", 0) or len(node.output) > 1 and node.output[1]:
        raise ModelFormatError(f"{where}: ceil_mode or indices are not read")
    kernel = list(attrs.get("kernel_shape", shape[1:])) if op != "GlobalAveragePool" else list(shape[1:])
    strides = list(attrs.get("strides", [1] * dims)) if op != "GlobalAveragePool" else kernel
    pads = _pads(attrs, dims, where)
    pick = (lambda v: (int(v[0]), int(v[1]))) if dims == 2 else (lambda v: int(v[0]))
    groups, out = _window_groups(shape, pick(kernel), pick(strides), pads if dims == 2 else pads[1],
                                 pick(list(attrs.get("dilations", [1] * dims))))
    if op == "MaxPool":
        pool = MaxGroups(groups)
        pool.out_shape = out
        return pool
    if any(pads) and not attrs.get("count_include_pad", 0):
        raise ModelFormatError(f"{where}: padded average pooling without count_include_pad is not read")
    return WindowAverage(groups, math.prod(kernel), out)


def _batchnorm(r: _Reader, node: Any, attrs: dict, where: str) -> ChannelAffine:
    scale, bias, mean, var = (_float(r.constant(n, where), where) for n in node.input[1:5])
    factor = scale / torch.sqrt(var + float(attrs.get("epsilon", 1e-5)))
    return ChannelAffine(factor, bias - mean * factor, len(r.shape(node.input[0])))


def _scalar(r: _Reader, name: str, where: str) -> Fraction:
    value = r.constant(name, where)
    if value.size != 1 or not np.isfinite(value).all():
        raise ModelFormatError(f"{where}: only products with one finite number are piecewise linear")
    return Fraction(float(value.reshape(-1)[0]))


def _binary(r: _Reader, node: Any, where: str, op: str) -> tuple[Any, list[str]]:
    a, b = node.input[0], node.input[1]
    if op in ("Add", "Sub") and a in r.index and b in r.index:
        return Combination((Fraction(1), Fraction(1 if op == "Add" else -1))), [a, b]
    if op in ("Add", "Sub"):
        if a not in r.index:
            raise ModelFormatError(f"{where}: the constant is the first operand; not read")
        value = _float(r.constant(b, where), where)
        shape = r.shape(a)
        try:
            offset = torch.broadcast_to(value.squeeze(0) if value.dim() > len(shape) else value, shape)
        except RuntimeError:
            raise ModelFormatError(f"{where}: a constant of shape {tuple(value.shape)} does not fit {shape}") from None
        return Offset(offset.clone() if op == "Add" else -offset.clone()), [a]
    factor = _scalar(r, b, where)
    if op == "Div":
        if factor == 0:
            raise ModelFormatError(f"{where}: division by zero")
        factor = 1 / factor
    return Combination((factor,)), [a]


def _activation(r: _Reader, node: Any, attrs: dict, where: str, op: str) -> Any:
    if op == "Relu":
        return relu_op()
    if op == "LeakyRelu":
        return relu_op("LeakyReLU", float(attrs.get("alpha", 0.01)))
    if op == "Abs":
        return abs_op()
    if op == "PRelu":
        return prelu_op(_float(r.constant(node.input[1], where), where), r.shape(node.input[0]))
    low = attrs.get("min") if len(node.input) < 2 or not node.input[1] else float(r.constant(node.input[1], where))
    high = attrs.get("max") if len(node.input) < 3 or not node.input[2] else float(r.constant(node.input[2], where))
    return clamp_op(low, high, "Clip", where)


def _affine(r: _Reader, node: Any, attrs: dict, where: str, op: str) -> Any:
    if op == "Gemm":
        if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            raise ModelFormatError(f"{where}: Gemm with transA, alpha or beta other than the defaults")
        B = _float(r.constant(node.input[1], where), where)
        weight = B if attrs.get("transB", 0) else B.T
        bias = _float(r.constant(node.input[2], where), where).reshape(-1) if len(node.input) > 2 and node.input[2] \
            else torch.zeros(weight.shape[0], dtype=torch.float64)
        return Dense(weight, torch.broadcast_to(bias, (weight.shape[0],)).clone())
    B = _float(r.constant(node.input[1], where), where)
    if B.dim() != 2:
        raise ModelFormatError(f"{where}: MatMul with a {B.dim()}-D constant is not read")
    return Dense(B.T.contiguous(), torch.zeros(B.shape[1], dtype=torch.float64))


def _shape_op(r: _Reader, node: Any, attrs: dict, where: str, op: str) -> Any:
    shape = r.shape(node.input[0])
    if op == "Flatten":
        axis = int(attrs.get("axis", 1))
        if axis != 1:
            raise ModelFormatError(f"{where}: Flatten with an axis other than 1")
        return Reshape((math.prod(shape),))
    target = [int(v) for v in r.constant(node.input[1], where).reshape(-1)]
    if not target or target[0] not in (0, -1, 1):
        raise ModelFormatError(f"{where}: a Reshape that moves the batch axis is not read")
    rest = [shape[i] if v == 0 and i < len(shape) else v for i, v in enumerate(target[1:])]
    size = math.prod(shape)
    if rest.count(-1) == 1:
        known = math.prod(v for v in rest if v != -1)
        rest[rest.index(-1)] = size // known if known else 0
    if math.prod(rest) != size:
        raise ModelFormatError(f"{where}: Reshape to {target} does not keep the {size} numbers of a sample")
    return Reshape(tuple(rest))


def _read(r: _Reader, node: Any, attrs: dict) -> None:
    op, where = node.op_type, f"{r.path}: {node.name or node.op_type!r} ({node.op_type})"
    if op in PASS:
        r.index[node.output[0]] = r.index[node.input[0]]
        return
    single = [node.input[0]]
    if op == "Conv":
        r.add(node.output[0], where, _conv(r, node, attrs, where), single)
    elif op in ("MaxPool", "AveragePool", "GlobalAveragePool"):
        r.add(node.output[0], where, _pool(r, node, attrs, where, op), single)
    elif op == "BatchNormalization":
        r.add(node.output[0], where, _batchnorm(r, node, attrs, where), single)
    elif op in ("Relu", "LeakyRelu", "PRelu", "Abs", "Clip"):
        r.add(node.output[0], where, _activation(r, node, attrs, where, op), single)
    elif op in ("Add", "Sub", "Mul", "Div"):
        operator, inputs = _binary(r, node, where, op)
        r.add(node.output[0], where, operator, inputs)
    elif op in ("Gemm", "MatMul"):
        r.add(node.output[0], where, _affine(r, node, attrs, where, op), single)
    elif op in ("Flatten", "Reshape"):
        r.add(node.output[0], where, _shape_op(r, node, attrs, where, op), single)
    elif op == "Concat":
        axis = int(attrs.get("axis", 1))
        if axis == 0:
            raise ModelFormatError(f"{where}: Concat along the batch axis is not read")
        rank = len(r.shape(node.input[0]))
        r.add(node.output[0], where, Concat(axis - 1 if axis > 0 else rank + axis), list(node.input))
    else:
        raise ModelFormatError(f"{where}: the operation {op} is not read (affine maps and continuous "
                               "piecewise-linear activations only)")


def load_onnx_graph(path: Path, graph: Any, constants: dict[str, np.ndarray]) -> GraphModel:
    """The graph model of a parsed ONNX graph (see the module docstring)."""
    from onnx import helper

    inputs = [i for i in graph.input if i.name not in constants]
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(int(d.dim_value) for d in list(dims)[1:])
    if not shape or any(v <= 0 for v in shape):
        raise ModelFormatError(f"{path}: the ONNX input {inputs[0].name!r} needs fixed dimensions after the batch")
    r = _Reader(path, constants)
    r.nodes.append(GraphNode(inputs[0].name, None, (), shape))
    r.index[inputs[0].name] = 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Constant":
            constants[node.output[0]] = _tensor(attrs["value"], path)
            continue
        _read(r, node, attrs)
    out = graph.output[0].name
    if out not in r.index:
        raise ModelFormatError(f"{path}: the ONNX graph's output is not computed by its nodes")
    return GraphModel(r.nodes, r.index[out], name=f"{path.name} (ONNX graph)")
