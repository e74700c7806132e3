"""Reading graph models from ``torch.export`` archives (``.pt2``), without unpickling anything.

An archive whose graph is not a chain of ``aten.linear`` and ``aten.relu`` (those are read as FFNs by
:mod:`regioncount.io.pt2_io`) and uses any operation of ``GRAPH_ONLY`` is read node by node into a
:class:`~regioncount.graph.model.GraphModel` (``docs/graphs.md``): ``aten.conv1d/conv2d``,
``aten.batch_norm`` in inference (folded in float64), ``aten.max_pool1d/2d``, ``aten.avg_pool2d``,
``aten.adaptive_avg_pool2d`` with whole windows, ``aten.relu``, ``aten.leaky_relu``, ``aten.prelu``,
``aten.hardtanh``, ``aten.abs``, ``aten.clamp``, ``aten.add``/``aten.sub`` of two tensors, ``aten.mul``/``aten.div``
by a number, ``aten.cat``, ``aten.flatten``, ``aten.view``/``aten.reshape``, ``aten.linear``, and the
pass-through ``clone``/``alias``/``detach``/inference ``dropout``.  Parameters and buffers come from the raw
weight table, as :mod:`regioncount.io.pt2_io` reads them; the input's shape from the graph's tensor table.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from ..core.errors import ModelFormatError
from ..graph.model import GraphModel, GraphNode
from ..graph.ops import ChannelAffine, Combination, Concat, Conv, Dense, MaxGroups, Reshape, WindowAverage
from .graph_fx import _window_groups, abs_op, clamp_op, prelu_op, relu_op
from .onnx_graph import _Reader

_A = "torch.ops.aten."
#: Operations only a graph model has: their presence sends an archive here.
GRAPH_ONLY = {_A + name for name in (
    "conv1d.default", "conv2d.default", "batch_norm.default", "max_pool1d.default", "max_pool2d.default",
    "avg_pool2d.default", "adaptive_avg_pool2d.default", "leaky_relu.default", "prelu.default",
    "hardtanh.default", "abs.default", "clamp.default", "add.Tensor", "sub.Tensor", "mul.Tensor", "mul.Scalar",
    "div.Tensor", "div.Scalar", "cat.default", "view.default", "reshape.default")}
_PASS = {_A + name for name in ("clone.default", "alias.default", "detach.default", "dropout.default",
                                "contiguous.default")}


def _value(arg: Any) -> Any:
    """The Python value of a serialized argument (tensor arguments give their name)."""
    if not isinstance(arg, dict) or len(arg) != 1:
        return None
    kind, value = next(iter(arg.items()))
    if kind == "as_tensor":
        return value.get("name")
    if kind == "as_tensors":
        return [v.get("name") for v in value]
    if kind == "as_none":
        return None
    return value


class _Archive:
    """The node arguments and the weights of one archive's graph."""

    def __init__(self, path: Path, weight: Any, params: dict[str, str]) -> None:
        self.path, self.weight, self.params = path, weight, params

    def tensor(self, name: str | None, where: str) -> torch.Tensor:
        if name is None or name not in self.params:
            raise ModelFormatError(f"{where}: {name!r} is not a parameter or buffer of the archive")
        return self.weight(self.params[name])


def _pairs(value: Any, default: int) -> tuple[int, int]:
    values = [default, default] if value is None else list(value) if isinstance(value, list) else [value]
    return (int(values[0]), int(values[-1]))


def _conv(r: _Reader, a: _Archive, args: dict, where: str, two_d: bool) -> Conv:
    weight = a.tensor(args.get("weight"), where)
    bias = a.tensor(args["bias"], where) if args.get("bias") else torch.zeros(weight.shape[0], dtype=torch.float64)
    if isinstance(args.get("padding"), str):
        raise ModelFormatError(f"{where}: padding={args['padding']!r} is not read (export with integer padding)")
    shape = r.shape(args["input"])
    if two_d:
        return Conv(weight, bias, shape, _pairs(args.get("stride"), 1), _pairs(args.get("padding"), 0),
                    _pairs(args.get("dilation"), 1), int(args.get("groups") or 1))
    return Conv(weight, bias, shape, (1, _pairs(args.get("stride"), 1)[1]), (0, _pairs(args.get("padding"), 0)[1]),
                (1, _pairs(args.get("dilation"), 1)[1]), int(args.get("groups") or 1))


def _batchnorm(r: _Reader, a: _Archive, args: dict, where: str) -> ChannelAffine:
    if args.get("training"):
        raise ModelFormatError(f"{where}: batch norm in training mode; export the module in eval mode")
    mean, var = a.tensor(args.get("running_mean"), where), a.tensor(args.get("running_var"), where)
    scale = 1.0 / torch.sqrt(var + float(args.get("eps", 1e-5)))
    if args.get("weight"):
        scale = scale * a.tensor(args["weight"], where)
    shift = (a.tensor(args["bias"], where) if args.get("bias") else torch.zeros_like(mean)) - mean * scale
    return ChannelAffine(scale, shift, len(r.shape(args["input"])))


def _pool(r: _Reader, args: dict, where: str, target: str) -> Any:
    shape = r.shape(args["self"])
    if args.get("ceil_mode"):
        raise ModelFormatError(f"{where}: ceil_mode is not read")
    if target.endswith("adaptive_avg_pool2d.default"):
        wanted = _pairs(args.get("output_size"), 1)
        if shape[1] % wanted[0] or shape[2] % wanted[1]:
            raise ModelFormatError(f"{where}: adaptive pooling with unequal windows is not read")
        window = (shape[1] // wanted[0], shape[2] // wanted[1])
        groups, out = _window_groups(shape, window, window, (0, 0), 1)
        return WindowAverage(groups, window[0] * window[1], out)
    kernel: Any = args.get("kernel_size")
    stride: Any = args.get("stride") or kernel
    two_d = len(shape) == 3
    pick = (lambda v, d: _pairs(v, d)) if two_d else (lambda v, d: _pairs(v, d)[1])
    groups, out = _window_groups(shape, pick(kernel, 1), pick(stride, 1), pick(args.get("padding"), 0),
                                 pick(args.get("dilation"), 1))
    if "max_pool" in target:
        pool = MaxGroups(groups)
        pool.out_shape = out
        return pool
    if args.get("count_include_pad") is False and any(_pairs(args.get("padding"), 0)):
        raise ModelFormatError(f"{where}: padded average pooling without count_include_pad is not read")
    divisor = args.get("divisor_override") or math.prod(_pairs(kernel, 1))
    return WindowAverage(groups, int(divisor), out)


def _activation(a: _Archive, args: dict, where: str, target: str, shape: tuple[int, ...]) -> Any:
    name = target[len(_A):].split(".")[0]
    if name in ("relu", "relu_"):
        return relu_op()
    if name == "leaky_relu":
        return relu_op("LeakyReLU", float(args.get("negative_slope", 0.01)))
    if name == "abs":
        return abs_op()
    if name == "prelu":
        return prelu_op(a.tensor(args.get("weight"), where), shape)
    low = args.get("min_val", args.get("min", -1.0))
    high = args.get("max_val", args.get("max", 1.0))
    return clamp_op(low, high, where=where)


def _arithmetic(r: _Reader, args: dict, where: str, target: str) -> tuple[Any, list[str]]:
    a, b = args.get("self"), args.get("other")
    if target.endswith(("add.Tensor", "sub.Tensor")):
        if not (isinstance(a, str) and isinstance(b, str)) or args.get("alpha", 1) not in (1, None):
            raise ModelFormatError(f"{where}: adding a constant is not read (only sums of tensors)")
        return Combination((Fraction(1), Fraction(1 if "add" in target else -1))), [str(a), str(b)]
    if isinstance(b, str) or not isinstance(b, (int, float)):
        raise ModelFormatError(f"{where}: a product of two tensors is not piecewise linear")
    factor = Fraction(b)
    if "div" in target:
        if factor == 0:
            raise ModelFormatError(f"{where}: division by zero")
        factor = 1 / factor
    return Combination((factor,)), [str(a)]


def _shape(r: _Reader, args: dict, where: str, target: str) -> Reshape:
    shape = r.shape(args["self"])
    size = math.prod(shape)
    if target.endswith("flatten.using_ints"):
        if args.get("start_dim", 0) != 1 or args.get("end_dim", -1) not in (-1, len(shape)):
            raise ModelFormatError(f"{where}: flatten other than flatten(x, 1) is not read")
        return Reshape((size,))
    rest = [int(v) for v in (args.get("size") or args.get("shape") or [])[1:]]
    if rest.count(-1) == 1:
        known = math.prod(v for v in rest if v != -1)
        rest[rest.index(-1)] = size // known if known else 0
    if math.prod(rest) != size:
        raise ModelFormatError(f"{where}: a view that changes the batch axis is not read")
    return Reshape(tuple(rest))


def _operator(r: _Reader, a: _Archive, args: dict, where: str, target: str) -> tuple[Any, list[str]]:
    """The operator of one node and the tensors it reads."""
    name = target[len(_A):]
    family = name.split(".")[0]
    if family in ("conv2d", "conv1d"):
        return _conv(r, a, args, where, family == "conv2d"), [args["input"]]
    if name == "linear.default":
        weight = a.tensor(args.get("weight"), where)
        bias = a.tensor(args["bias"], where) if args.get("bias") else torch.zeros(weight.shape[0], dtype=torch.float64)
        return Dense(weight, bias), [args["input"]]
    if name == "batch_norm.default":
        return _batchnorm(r, a, args, where), [args["input"]]
    if "pool" in name:
        return _pool(r, args, where, target), [args["self"]]
    first = str(next(iter(args.values()), None))
    if family in ("relu", "relu_", "leaky_relu", "abs", "prelu", "hardtanh", "clamp"):
        return _activation(a, args, where, target, r.shape(first)), [first]
    if family in ("add", "sub", "mul", "div"):
        return _arithmetic(r, args, where, target)
    if name in ("flatten.using_ints", "view.default", "reshape.default"):
        return _shape(r, args, where, target), [args["self"]]
    if name == "cat.default":
        dim, parts = int(args.get("dim") or 0), args["tensors"]
        if dim == 0:
            raise ModelFormatError(f"{where}: cat along the batch axis is not read")
        return Concat(dim - 1 if dim > 0 else len(r.shape(parts[0])) + dim), parts
    raise ModelFormatError(f"{where}: the operation {target} is not read (affine maps and continuous "
                           "piecewise-linear activations only)")


def _read(r: _Reader, a: _Archive, node: dict) -> None:
    target = str(node.get("target"))
    args = {x.get("name"): _value(x.get("arg")) for x in node.get("inputs", [])}
    output = _value(node["outputs"][0])
    where = f"{a.path}: {target}"
    if target in _PASS:
        if target.endswith("dropout.default") and args.get("train"):
            raise ModelFormatError(f"{where}: dropout in training mode")
        r.index[output] = r.index[next(iter(args.values()))]
        return
    op, inputs = _operator(r, a, args, where, target)
    r.add(output, where, op, inputs)


def graph_from_program(path: Path, program: Any, weight: Any) -> GraphModel:
    """The graph model of a parsed torch.export program; ``weight(name)`` reads a parameter or buffer."""
    module = program["graph_module"]
    graph = module["graph"]
    params: dict[str, str] = {}
    users = []
    for spec in module["signature"]["input_specs"]:
        kind = next(iter(spec))
        if kind in ("parameter", "buffer"):
            params[spec[kind]["arg"]["name"]] = spec[kind]["parameter_name" if kind == "parameter" else "buffer_name"]
        elif kind == "user_input":
            users.append(spec[kind]["arg"]["as_tensor"]["name"])
        else:
            raise ModelFormatError(f"{path}: the graph takes a {kind} input; not read")
    if len(users) != 1 or len(graph["outputs"]) != 1:
        raise ModelFormatError(f"{path}: regioncount reads a network with one input and one output")
    sizes = [s.get("as_int") for s in graph["tensor_values"][users[0]]["sizes"]]
    if len(sizes) < 2 or any(not isinstance(v, int) or v <= 0 for v in sizes):
        raise ModelFormatError(f"{path}: the input's shape {sizes} is not a batch of fixed-size samples")
    r = _Reader(path, {})
    r.nodes.append(GraphNode(users[0], None, (), tuple(sizes[1:])))
    r.index[users[0]] = 0
    archive = _Archive(path, weight, params)
    for node in graph["nodes"]:
        _read(r, archive, node)
    out = _value(graph["outputs"][0])
    if out not in r.index:
        raise ModelFormatError(f"{path}: the graph's output is not computed by its nodes")
    return GraphModel(r.nodes, r.index[out], name=f"{path.name} (torch.export graph)")
