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
from .forward_check import check_forward


def _f64(tensor: torch.Tensor) -> torch.Tensor:
    value = tensor.detach().to(torch.float64).cpu()
    if not bool(torch.isfinite(value).all()):
        raise ModelFormatError("a weight or buffer of the module is NaN or infinite")
    return value


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


def clamp_op(low: float | None, high: float | None, label: str = "Hardtanh", where: str = "") -> Elementwise:
    """The clamp to [low, high] as an elementwise operator; a bound that is missing (None) is refused in one line
    (a one-sided clamp is a shifted ReLU, not read as one)."""
    if low is None or high is None:
        raise ModelFormatError(f"{where or label}: a one-sided clamp is not read (use relu)")
    low, high = float(low), float(high)
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


def prelu_op(slope: torch.Tensor, shape: tuple[int, ...]) -> Elementwise:
    """A PReLU on a (C, ...) input: one slope for every unit, or one per channel (C,)."""
    slope = slope.reshape(-1)
    per_unit = slope.expand(math.prod(shape)) if slope.numel() == 1 else slope.repeat_interleave(math.prod(shape[1:]))
    return relu_op("PReLU", per_unit)


def _prelu(sub: nn.PReLU, shape: tuple[int, ...]) -> Elementwise:
    return prelu_op(_f64(sub.weight), shape)


def _max_pool(sub: nn.MaxPool1d | nn.MaxPool2d, shape: tuple[int, ...], where: str) -> MaxGroups:
    if sub.ceil_mode or sub.return_indices:
        raise ModelFormatError(f"{where}: {type(sub).__name__} with ceil_mode or return_indices is not read")
    groups, _ = _window_groups(_spatial(shape, where), sub.kernel_size, sub.stride, sub.padding, sub.dilation)
    return MaxGroups(groups)


def _linear(sub: nn.Linear) -> Dense:
    bias = _f64(sub.bias) if sub.bias is not None else torch.zeros(sub.out_features, dtype=torch.float64)
    return Dense(_f64(sub.weight), bias)


#: Module types and how each becomes an operator: f(module, input shape, where, output shape) (None: nothing).
_MODULES: list[tuple[tuple[type, ...], Any]] = [
    ((nn.Identity, nn.Dropout), lambda sub, shape, where, out: None),
    ((nn.Linear,), lambda sub, shape, where, out: _linear(sub)),
    ((nn.Conv1d, nn.Conv2d), lambda sub, shape, where, out: _conv(sub, shape, where)),
    ((nn.BatchNorm1d, nn.BatchNorm2d), lambda sub, shape, where, out: _batchnorm(sub, shape, where)),
    ((nn.ReLU6,), lambda sub, shape, where, out: clamp_op(0.0, 6.0, "ReLU6")),
    ((nn.Hardtanh,), lambda sub, shape, where, out: clamp_op(sub.min_val, sub.max_val)),
    ((nn.ReLU,), lambda sub, shape, where, out: relu_op()),
    ((nn.LeakyReLU,), lambda sub, shape, where, out: relu_op("LeakyReLU", sub.negative_slope)),
    ((nn.PReLU,), lambda sub, shape, where, out: _prelu(sub, shape)),
    ((nn.MaxPool1d, nn.MaxPool2d), lambda sub, shape, where, out: _max_pool(sub, shape, where)),
    ((nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d),
     lambda sub, shape, where, out: _average(sub, _spatial(shape, where), where)),
    ((nn.Flatten,), lambda sub, shape, where, out: Reshape(out)),
]


def _module_op(reader: _Reader, sub: nn.Module, fx_node: Any, where: str) -> Any:
    """The operator of a call_module node (None: the identity)."""
    if getattr(sub, "training", False) and isinstance(sub, (nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d)):
        raise ModelFormatError(f"{where}: {type(sub).__name__} in training mode; call module.eval() first")
    for types, make in _MODULES:
        if isinstance(sub, types):
            return make(sub, reader.input_shape(fx_node.args[0]), where, reader.shape_of(fx_node))
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


def _adaptive_window(sub: nn.Module, shape: tuple[int, ...], where: str) -> tuple[int, int]:
    """The window of an adaptive average pool whose output size divides its input's."""
    two_d = len(shape) == 3
    have = shape[1:] if two_d else (1, shape[1])
    size: Any = sub.output_size
    if isinstance(size, tuple) and None in size:
        size = tuple(h if w is None else w for w, h in zip(size, have))
    wanted = _lifted(size, two_d, 1)
    if any(h % w for h, w in zip(have, wanted)):
        raise ModelFormatError(f"{where}: adaptive pooling of {have} to {wanted} has unequal windows; not read")
    return have[0] // wanted[0], have[1] // wanted[1]


def _average(sub: nn.Module, shape: tuple[int, ...], where: str) -> WindowAverage:
    two_d = len(shape) == 3
    if isinstance(sub, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        kernel = _adaptive_window(sub, shape, where)
        stride, padding, divisor = kernel, (0, 0), kernel[0] * kernel[1]
    else:
        if sub.ceil_mode or not sub.count_include_pad:
            raise ModelFormatError(f"{where}: average pooling with ceil_mode or count_include_pad=False is not read")
        kernel, stride = _lifted(sub.kernel_size, two_d, 1), _lifted(sub.stride, two_d, 1)
        padding = _lifted(sub.padding, two_d, 0)
        override = getattr(sub, "divisor_override", None)
        divisor = int(override) if override else kernel[0] * kernel[1]
    pick = (lambda pair: pair) if two_d else (lambda pair: pair[1])
    groups, out = _window_groups(shape, pick(kernel), pick(stride), pick(padding), 1)
    return WindowAverage(groups, divisor, out)


def _number(value: Any, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelFormatError(f"{where}: multiplies by {value!r}; only finite Python numbers are read")
    return Fraction(value)


def _tensors(fx_node: Any) -> list[Any]:
    return [a for a in fx_node.args if isinstance(a, torch.fx.Node)]


def _leaky(reader: _Reader, fx_node: Any, where: str) -> tuple[Any, list[Any]]:
    args = fx_node.args
    slope = args[1] if len(args) > 1 else fx_node.kwargs.get("negative_slope", 0.01)
    return relu_op("LeakyReLU", float(slope)), _tensors(fx_node)[:1]


def _clamp(reader: _Reader, fx_node: Any, where: str) -> tuple[Any, list[Any]]:
    args, kwargs = fx_node.args, fx_node.kwargs
    low = args[1] if len(args) > 1 else kwargs.get("min", kwargs.get("min_val", -1.0))
    high = args[2] if len(args) > 2 else kwargs.get("max", kwargs.get("max_val", 1.0))
    return clamp_op(low, high, where=where), _tensors(fx_node)[:1]


def _sum(sign: int):  # noqa: ANN202 - a handler factory
    def handler(reader: _Reader, fx_node: Any, where: str) -> tuple[Any, list[Any]]:
        tensors = _tensors(fx_node)
        if len(tensors) != 2 or fx_node.kwargs.get("alpha", 1) != 1:
            raise ModelFormatError(f"{where}: adding a tensor and a constant is not read (only sums of tensors)")
        return Combination((Fraction(1), Fraction(sign))), tensors
    return handler


def _scaling(divide: bool):  # noqa: ANN202 - a handler factory
    def handler(reader: _Reader, fx_node: Any, where: str) -> tuple[Any, list[Any]]:
        tensors, args = _tensors(fx_node), fx_node.args
        if len(tensors) != 1:
            raise ModelFormatError(f"{where}: a product of two tensors is not piecewise linear")
        if divide and args[0] is not tensors[0]:
            raise ModelFormatError(f"{where}: division by a tensor is not read")
        factor = _number(args[1] if args[0] is tensors[0] else args[0], where)
        if divide and factor == 0:
            raise ModelFormatError(f"{where}: division by zero")
        return Combination((1 / factor if divide else factor,)), tensors
    return handler


def _cat(reader: _Reader, fx_node: Any, where: str) -> tuple[Any, list[Any]]:
    parts = list(fx_node.args[0])
    dim = fx_node.args[1] if len(fx_node.args) > 1 else fx_node.kwargs.get("dim", 0)
    rank = len(reader.shape_of(fx_node))
    if any(not isinstance(p, torch.fx.Node) for p in parts) or dim == 0 or dim < -rank:
        raise ModelFormatError(f"{where}: torch.cat along the batch axis is not read")
    return Concat(dim - 1 if dim > 0 else rank + dim), parts


def _one(make):  # noqa: ANN001, ANN202 - an operator of the node's first tensor
    return lambda reader, fx_node, where: (make(), _tensors(fx_node)[:1])


def _reshape(reader: _Reader, fx_node: Any, where: str) -> tuple[Any, list[Any]]:
    return Reshape(reader.shape_of(fx_node)), _tensors(fx_node)[:1]


#: call_function targets and call_method names, each with its handler f(reader, node, where) -> (op, inputs).
_FUNCTIONS: dict[Any, Any] = {
    **{f: _one(relu_op) for f in (torch.relu, F.relu, torch.relu_)},
    **{f: _one(abs_op) for f in (torch.abs, operator.abs)},
    F.leaky_relu: _leaky, F.hardtanh: _clamp, torch.clamp: _clamp,
    torch.flatten: _reshape, torch.reshape: _reshape,
    operator.add: _sum(1), torch.add: _sum(1), operator.sub: _sum(-1), torch.sub: _sum(-1),
    operator.mul: _scaling(False), torch.mul: _scaling(False), operator.truediv: _scaling(True),
    torch.div: _scaling(True), torch.cat: _cat,
}
_METHODS: dict[str, Any] = {
    "relu": _one(relu_op), "relu_": _one(relu_op), "abs": _one(abs_op), "clamp": _clamp,
    "view": _reshape, "reshape": _reshape, "flatten": _reshape,
    "contiguous": lambda reader, fx_node, where: (None, _tensors(fx_node)[:1]),
    "size": lambda reader, fx_node, where: ("skip", []),
    "add": _sum(1), "sub": _sum(-1), "mul": _scaling(False), "div": _scaling(True),
}


def _function_op(reader: _Reader, fx_node: Any, where: str) -> tuple[Any, list[Any]]:
    """The operator of a call_function / call_method node and the fx nodes it reads (None: the identity;
    "skip": not a tensor)."""
    table = _METHODS if fx_node.op == "call_method" else _FUNCTIONS
    try:
        handler = table.get(fx_node.target)
    except TypeError:  # an unhashable target
        handler = None
    if handler is None:
        name = getattr(fx_node.target, "__name__", str(fx_node.target))
        raise ModelFormatError(f"{where}: {name} is not read (affine maps and continuous piecewise-linear "
                               "activations only)")
    return handler(reader, fx_node, where)


def _record_shapes(traced: torch.fx.GraphModule, input_shape: tuple[int, ...], label: str) -> None:
    params = list(traced.parameters())
    dtype = params[0].dtype if params else torch.float32
    try:
        with torch.no_grad():
            _Shapes(traced).run(torch.zeros(3, *input_shape, dtype=dtype))
    except Exception as exc:  # a shape mismatch inside the module
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFormatError(f"{label}: does not run on inputs of shape {tuple(input_shape)} ({reason})") from None


def _read_node(reader: _Reader, fx_node: Any, input_shape: tuple[int, ...]) -> None:
    """Add the graph node of one fx node (or alias it to its input)."""
    label, traced = reader.label, reader.traced
    where = f"{label}.{fx_node.target}" if fx_node.op == "call_module" else f"{label}: {fx_node.name}"
    if fx_node.op == "placeholder":
        if reader.nodes:
            raise ModelFormatError(f"{label}: takes more than one input ({fx_node.name})")
        reader.nodes.append(GraphNode(fx_node.name, None, (), tuple(input_shape)))
        reader.index[fx_node] = 0
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


def graph_from_traced(traced: torch.fx.GraphModule, input_shape: tuple[int, ...], label: str) -> GraphModel:
    """The graph model of a traced module whose input has per-sample shape ``input_shape``."""
    _record_shapes(traced, input_shape, label)
    reader = _Reader(traced, label)
    output = None
    for fx_node in traced.graph.nodes:
        if fx_node.op == "output":
            output = fx_node.args[0]
        else:
            _read_node(reader, fx_node, input_shape)
    if not isinstance(output, torch.fx.Node) or output not in reader.index:
        raise ModelFormatError(f"{label}: the output is not one tensor computed by the network")
    return GraphModel(reader.nodes, reader.index[output], name=label)


def check_graph(module: nn.Module, graph: GraphModel, points: int, seed: int, label: str) -> None:
    """Refuse when the graph and the module disagree on random inputs in [-1, 1]^d and 10x wider."""
    check_forward(module, graph, graph.input_shape, points, seed, label, "the graph")
