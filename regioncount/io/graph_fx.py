"""PyTorch modules as graph models: trace with ``torch.fx``, read every node as an operator of
:mod:`regioncount.graph.ops`.

Read: ``Linear``, ``Conv1d``/``Conv2d`` (zero padding, any stride, dilation and groups), eval-mode
``BatchNorm1d``/``BatchNorm2d`` (folded in float64 into a per-channel scale and shift), ``AvgPool1d/2d`` and
``AdaptiveAvgPool1d/2d`` with whole windows, ``MaxPool1d/2d``, ``ReLU``, ``ReLU6``, ``LeakyReLU``, ``PReLU``,
``Hardtanh``, absolute value, ``Flatten``/``view``/``reshape``, residual ``+``/``-`` of tensors, products and
quotients by Python numbers, ``torch.cat``, and ``Identity`` and eval-mode ``Dropout`` (nothing).  Every other
node is refused in one line that names it.  The graph is checked against the module's own forward pass on
random inputs before it is returned (``docs/graphs.md``).
"""

from __future__ import annotations

import math
import operator
from fractions import Fraction
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ModelFormatError
from ..graph.model import GraphModel, GraphNode
from ..graph.ops import Combination, Concat, Conv, Dense, Elementwise, MaxGroups, Reshape, WindowAverage, window_index

#: Relative agreement required between the graph and the module, by the module's float type.
CHECK_TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 1e-1}
_RELU = {torch.relu, F.relu, torch.relu_}
_ABS = {torch.abs, operator.abs}
_RESHAPE_FUNCTIONS = {torch.flatten, torch.reshape}
_RESHAPE_METHODS = {"view", "reshape", "flatten"}
_PASS_METHODS = {"contiguous"}


def _f64(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to(torch.float64).cpu()


def _pair(value: Any) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (tuple, list)) else (int(value), int(value))


def relu_op(label: str = "ReLU", slope: torch.Tensor | float = 0.0) -> Elementwise:
    """``max(u, slope u)`` (slope 0: ReLU; a (n,) tensor: one slope per unit)."""
    low = torch.as_tensor(slope, dtype=torch.float64).reshape(1, -1)
    slopes = torch.cat([low, torch.ones_like(low)])
    return Elementwise((0.0,), slopes, torch.zeros_like(slopes), label)


def abs_op() -> Elementwise:
    return Elementwise((0.0,), torch.tensor([[-1.0], [1.0]], dtype=torch.float64),
                       torch.zeros(2, 1, dtype=torch.float64), "Abs")


def clamp_op(low: float, high: float, label: str = "Hardtanh") -> Elementwise:
    if not low < high:
        raise ModelFormatError(f"{label}({low:g}, {high:g}): needs min < max")
    slopes = torch.tensor([[0.0], [1.0], [0.0]], dtype=torch.float64)
    return Elementwise((float(low), float(high)), slopes, torch.tensor([[low], [0.0], [high]], dtype=torch.float64),
                       label)


def _spatial(shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    if len(shape) not in (2, 3):
        raise ModelFormatError(f"{where}: reads a ({'x'.join(map(str, shape))}) input; (C, L) or (C, H, W) expected")
    return shape


def _lifted(value: Any, two_d: bool, neutral: int) -> tuple[int, int]:
    """A 2-D (height, width) pair of a pooling or convolution argument; 1-D ones get height ``neutral``."""
    if two_d:
        return _pair(value)
    return neutral, int(value if isinstance(value, int) else value[0])


def _window_groups(shape: tuple[int, ...], kernel: Any, stride: Any, padding: Any, dilation: Any
                   ) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Pooling windows of a (C, H, W) / (C, L) input as groups (C H' W', K) of flat indices (-1: padding)."""
    two_d = len(shape) == 3
    k, s, p, d = (_lifted(kernel, two_d, 1), _lifted(kernel if stride is None else stride, two_d, 1),
                  _lifted(padding, two_d, 0), _lifted(dilation, two_d, 1))
    cols, spatial = window_index(shape, k, s, p, d)
    C, K = shape[0], k[0] * k[1]
    groups = cols.reshape(C, K, -1).permute(0, 2, 1).reshape(-1, K)
    return groups, (C, *spatial)


_SHAPE = "regioncount_shape"


class _Shapes(torch.fx.Interpreter):
    """Runs the traced module once, recording each tensor-valued node's shape in its ``meta``."""

    def run_node(self, n: Any) -> Any:
        result = super().run_node(n)
        if isinstance(result, torch.Tensor):
            n.meta[_SHAPE] = tuple(result.shape)
        return result


class _Reader:
    """Walks the traced graph, building nodes; ``index`` maps fx nodes to graph nodes."""

    def __init__(self, traced: torch.fx.GraphModule, label: str) -> None:
        self.traced, self.label = traced, label
        self.nodes: list[GraphNode] = []
        self.index: dict[Any, int] = {}

    def shape_of(self, fx_node: Any) -> tuple[int, ...]:
        shape = fx_node.meta.get(_SHAPE)
        if shape is None:
            raise ModelFormatError(f"{self.label}: {fx_node.name} does not produce one tensor")
        return tuple(shape[1:])

    def add(self, fx_node: Any, op: Any, inputs: list[Any]) -> None:
        ids = []
        for source in inputs:
            if source not in self.index:
                raise ModelFormatError(f"{self.label}: {fx_node.name} reads {getattr(source, 'name', source)!r}, "
                                       "which is not a tensor of the network")
            ids.append(self.index[source])
        self.nodes.append(GraphNode(fx_node.name, op, tuple(ids), self.shape_of(fx_node)))
        self.index[fx_node] = len(self.nodes) - 1

    def alias(self, fx_node: Any, source: Any) -> None:
        self.index[fx_node] = self.index[source]

    def input_shape(self, source: Any) -> tuple[int, ...]:
        return self.nodes[self.index[source]].shape


def _module_op(reader: _Reader, sub: nn.Module, fx_node: Any, where: str) -> Any:  # noqa: C901 - a dispatch table
    source = fx_node.args[0]
    shape = reader.input_shape(source)
    if getattr(sub, "training", False) and isinstance(sub, (nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d)):
        raise ModelFormatError(f"{where}: {type(sub).__name__} in training mode; call module.eval() first")
    if isinstance(sub, (nn.Identity, nn.Dropout)):
        return None
    if isinstance(sub, nn.Linear):
        bias = _f64(sub.bias) if sub.bias is not None else torch.zeros(sub.out_features, dtype=torch.float64)
        return Dense(_f64(sub.weight), bias)
    if isinstance(sub, (nn.Conv1d, nn.Conv2d)):
        return _conv(sub, shape, where)
    if isinstance(sub, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return _batchnorm(sub, shape, where)
    if isinstance(sub, nn.ReLU6):
        return clamp_op(0.0, 6.0, "ReLU6")
    if isinstance(sub, nn.Hardtanh):
        return clamp_op(sub.min_val, sub.max_val)
    if isinstance(sub, nn.ReLU):
        return relu_op()
    if isinstance(sub, nn.LeakyReLU):
        return relu_op("LeakyReLU", sub.negative_slope)
    if isinstance(sub, nn.PReLU):
        weight = _f64(sub.weight)
        per_unit = weight.expand(math.prod(shape)) if weight.numel() == 1 else \
            weight.repeat_interleave(math.prod(shape[1:]))
        return relu_op("PReLU", per_unit)
    if isinstance(sub, (nn.MaxPool1d, nn.MaxPool2d)):
        if sub.ceil_mode or sub.return_indices:
            raise ModelFormatError(f"{where}: {type(sub).__name__} with ceil_mode or return_indices is not read")
        groups, _ = _window_groups(_spatial(shape, where), sub.kernel_size, sub.stride, sub.padding, sub.dilation)
        return MaxGroups(groups)
    if isinstance(sub, (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        return _average(sub, _spatial(shape, where), where)
    if isinstance(sub, nn.Flatten):
        return Reshape(reader.shape_of(fx_node))
    raise ModelFormatError(f"{where}: {type(sub).__name__} is not read (affine layers, ReLU, leaky ReLU, PReLU, "
                           "hard-tanh, abs, max and average pooling: continuous piecewise-linear networks)")


def _conv(sub: nn.Conv1d | nn.Conv2d, shape: tuple[int, ...], where: str) -> Conv:
    if sub.padding_mode != "zeros":
        raise ModelFormatError(f"{where}: padding_mode={sub.padding_mode!r}; only zero padding is read")
    two_d = isinstance(sub, nn.Conv2d)
    kernel = sub.kernel_size if two_d else (1, sub.kernel_size[0])
    dilation = _pair(sub.dilation) if two_d else (1, sub.dilation[0])
    if isinstance(sub.padding, str):
        if sub.padding == "valid":
            padding = (0, 0)
        else:  # "same": symmetric when every dilation * (k - 1) is even
            total = [d * (k - 1) for d, k in zip(dilation, kernel)]
            if any(t % 2 for t in total):
                raise ModelFormatError(f"{where}: padding='same' with an even kernel pads unevenly; not read")
            padding = (total[0] // 2, total[1] // 2)
    else:
        padding = _pair(sub.padding) if two_d else (0, sub.padding[0])
    stride = _pair(sub.stride) if two_d else (1, sub.stride[0])
    expected = 3 if two_d else 2
    if len(shape) != expected or shape[0] != sub.in_channels:
        raise ModelFormatError(f"{where}: expects {sub.in_channels} input channels ({expected - 1}-D), got a "
                               f"({'x'.join(map(str, shape))}) input")
    bias = _f64(sub.bias) if sub.bias is not None else torch.zeros(sub.out_channels, dtype=torch.float64)
    return Conv(_f64(sub.weight), bias, shape, stride, padding, dilation, sub.groups)


def _batchnorm(sub: nn.BatchNorm1d | nn.BatchNorm2d, shape: tuple[int, ...], where: str) -> Any:
    from ..graph.ops import ChannelAffine

    if sub.running_mean is None or sub.running_var is None:
        raise ModelFormatError(f"{where}: batch norm without running statistics (track_running_stats=False)")
    scale = 1.0 / torch.sqrt(_f64(sub.running_var) + sub.eps)
    mean = _f64(sub.running_mean)
    if sub.affine:
        scale = scale * _f64(sub.weight)
        shift = _f64(sub.bias) - mean * scale
    else:
        shift = -mean * scale
    if shape[0] != scale.shape[0]:
        raise ModelFormatError(f"{where}: normalises {scale.shape[0]} channels, got {shape[0]}")
    return ChannelAffine(scale, shift, len(shape))


def _average(sub: nn.Module, shape: tuple[int, ...], where: str) -> WindowAverage:
    two_d = len(shape) == 3
    have = shape[1:] if two_d else (1, shape[1])
    if isinstance(sub, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        wanted = _lifted(sub.output_size, two_d, 1) if not isinstance(sub.output_size, tuple) or \
            None not in sub.output_size else tuple(h if w is None else w for w, h in zip(sub.output_size, have))
        if any(h % w for h, w in zip(have, wanted)):
            raise ModelFormatError(f"{where}: adaptive pooling of {have} to {wanted} has unequal windows; not read")
        kernel = tuple(h // w for h, w in zip(have, wanted))
        stride, padding, divisor = kernel, (0, 0), kernel[0] * kernel[1]
    else:
        if sub.ceil_mode or not sub.count_include_pad:
            raise ModelFormatError(f"{where}: average pooling with ceil_mode or count_include_pad=False is not read")
        kernel = _lifted(sub.kernel_size, two_d, 1)
        stride = _lifted(sub.stride, two_d, 1)
        padding = _lifted(sub.padding, two_d, 0)
        override = getattr(sub, "divisor_override", None)
        divisor = int(override) if override else kernel[0] * kernel[1]
    groups, out = _window_groups(shape, kernel if two_d else kernel[1], stride if two_d else stride[1],
                                 padding if two_d else padding[1], 1)
    return WindowAverage(groups, divisor, out)


def _number(value: Any, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelFormatError(f"{where}: multiplies by {value!r}; only finite Python numbers are read")
    return Fraction(value)


def _function_op(reader: _Reader, fx_node: Any, where: str) -> tuple[Any, list[Any]]:  # noqa: C901 - dispatch
    """The operator of a call_function / call_method node and the fx nodes it reads."""
    target, args = fx_node.target, fx_node.args
    name = getattr(target, "__name__", str(target))
    tensors = [a for a in args if isinstance(a, torch.fx.Node)]
    method = fx_node.op == "call_method"
    if (not method and target in _RELU) or (method and target in ("relu", "relu_")):
        return relu_op(), tensors[:1]
    if (not method and target in _ABS) or (method and target == "abs"):
        return abs_op(), tensors[:1]
    if not method and target is F.leaky_relu:
        slope = args[1] if len(args) > 1 else fx_node.kwargs.get("negative_slope", 0.01)
        return relu_op("LeakyReLU", float(slope)), tensors[:1]
    if not method and target in (F.hardtanh, torch.clamp) or method and target == "clamp":
        low = args[1] if len(args) > 1 else fx_node.kwargs.get("min", fx_node.kwargs.get("min_val", -1.0))
        high = args[2] if len(args) > 2 else fx_node.kwargs.get("max", fx_node.kwargs.get("max_val", 1.0))
        if low is None or high is None:
            raise ModelFormatError(f"{where}: a one-sided clamp is not read (use relu)")
        return clamp_op(float(low), float(high)), tensors[:1]
    if (not method and target in _RESHAPE_FUNCTIONS) or (method and target in _RESHAPE_METHODS):
        return Reshape(reader.shape_of(fx_node)), tensors[:1]
    if method and target in _PASS_METHODS:
        return None, tensors[:1]
    if (not method and target in (operator.add, torch.add, operator.sub, torch.sub)) or \
            (method and target in ("add", "sub")):
        if len(tensors) != 2 or fx_node.kwargs.get("alpha", 1) != 1:
            raise ModelFormatError(f"{where}: {name} of a tensor and a constant is not read (only sums of tensors)")
        sign = -1 if name in ("sub",) or target in (operator.sub, torch.sub) else 1
        return Combination((Fraction(1), Fraction(sign))), tensors
    if not method and target in (operator.mul, torch.mul, operator.truediv, torch.div) or \
            (method and target in ("mul", "div")):
        if len(tensors) != 1:
            raise ModelFormatError(f"{where}: {name} of two tensors is not piecewise linear")
        other = args[1] if args[0] is tensors[0] else args[0]
        factor = _number(other, where)
        if "div" in name:
            if factor == 0 or args[0] is not tensors[0]:
                raise ModelFormatError(f"{where}: division by a tensor or by zero is not read")
            factor = 1 / factor
        return Combination((factor,)), tensors
    if not method and target is torch.cat:
        parts = list(args[0])
        dim = args[1] if len(args) > 1 else fx_node.kwargs.get("dim", 0)
        if any(not isinstance(p, torch.fx.Node) for p in parts) or dim == 0 or dim < -len(reader.shape_of(fx_node)):
            raise ModelFormatError(f"{where}: torch.cat along the batch axis is not read")
        axis = dim - 1 if dim > 0 else len(reader.shape_of(fx_node)) + dim
        return Concat(axis), parts
    if method and target == "size":
        return "skip", []
    raise ModelFormatError(f"{where}: {name} is not read (affine maps and continuous piecewise-linear "
                           "activations only)")


def graph_from_traced(traced: torch.fx.GraphModule, input_shape: tuple[int, ...], label: str) -> GraphModel:
    """The graph model of a traced module whose input has per-sample shape ``input_shape``."""
    params = list(traced.parameters())
    dtype = params[0].dtype if params else torch.float32
    try:
        with torch.no_grad():
            _Shapes(traced).run(torch.zeros(3, *input_shape, dtype=dtype))
    except Exception as exc:  # a shape mismatch inside the module
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFormatError(f"{label}: does not run on inputs of shape {tuple(input_shape)} ({reason})") from None
    reader = _Reader(traced, label)
    output = None
    for fx_node in traced.graph.nodes:
        where = f"{label}.{fx_node.target}" if fx_node.op == "call_module" else f"{label}: {fx_node.name}"
        if fx_node.op == "placeholder":
            if reader.nodes:
                raise ModelFormatError(f"{label}: takes more than one input ({fx_node.name})")
            reader.nodes.append(GraphNode(fx_node.name, None, (), tuple(input_shape)))
            reader.index[fx_node] = 0
        elif fx_node.op == "output":
            output = fx_node.args[0]
        elif fx_node.op == "call_module":
            op = _module_op(reader, traced.get_submodule(fx_node.target), fx_node, where)
            reader.alias(fx_node, fx_node.args[0]) if op is None else reader.add(fx_node, op, [fx_node.args[0]])
        elif fx_node.op in ("call_function", "call_method"):
            op, sources = _function_op(reader, fx_node, where)
            if op is None:
                reader.alias(fx_node, sources[0])
            elif op != "skip":
                reader.add(fx_node, op, sources)
        else:
            raise ModelFormatError(f"{where}: {fx_node.op} {fx_node.target} is not read")
    if not isinstance(output, torch.fx.Node) or output not in reader.index:
        raise ModelFormatError(f"{label}: the output is not one tensor computed by the network")
    return GraphModel(reader.nodes, reader.index[output], name=label)


def check_graph(module: nn.Module, graph: GraphModel, points: int, seed: int, label: str) -> None:
    """Refuse when the graph and the module disagree on random inputs in [-1, 1]^d and 10x wider."""
    params = list(module.parameters())
    dtype = params[0].dtype if params else torch.float32
    device = params[0].device if params else torch.device("cpu")
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(points, graph.input_dim, generator=gen, dtype=torch.float64) * 2 - 1
    x = torch.cat([x, 10 * x])
    with torch.no_grad():
        expected = module(x.reshape(-1, *graph.input_shape).to(dtype=dtype, device=device))
        expected = expected.to(torch.float64).cpu().reshape(x.shape[0], -1)
        got = graph(x)
    if expected.shape != got.shape:
        raise ModelFormatError(f"{label}: the module outputs {tuple(expected.shape[1:])} values, the graph "
                               f"{tuple(got.shape[1:])}")
    tolerance = CHECK_TOLERANCE.get(dtype, 1e-4)
    scale = 1.0 + float(expected.abs().max())
    error = float((expected - got).abs().max())
    if not error <= tolerance * scale:
        raise ModelFormatError(f"{label}: the graph differs from the module's forward pass by {error:.3g} "
                               f"(tolerance {tolerance:g} x {scale:.3g})")
