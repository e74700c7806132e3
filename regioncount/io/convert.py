"""PyTorch modules as FFNs: trace a ``torch.nn.Module`` and read off its affine maps and ReLUs.

``from_module(module)`` traces the module with ``torch.fx`` and accepts a chain (no branches) of
``Linear``, ``ReLU`` (module, ``torch.relu``, ``F.relu`` or ``x.relu()``), ``Flatten``/``flatten`` of a
batch of vectors, ``Identity``, and, in eval mode, ``Dropout`` (the identity) and ``BatchNorm1d`` (an
affine map from its running statistics).  Affine maps with no ReLU between them are composed in float64,
so the FFN has one hidden layer per ReLU; anything else is refused by name.  Before the FFN is returned it
is checked against the module's own forward pass on random inputs (``docs/model-format.md``).
"""

from __future__ import annotations

import operator
from typing import Any

import torch

from ..core.errors import ModelFormatError
from ..graph.model import GraphModel
from ..models.networks import FFN, Model
from .forward_check import CHECK_TOLERANCE, check_forward  # noqa: F401  (CHECK_TOLERANCE re-exported)
from .graph_fx import check_graph, graph_from_traced

#: Functions and tensor methods traced as a ReLU, and as a no-op on a batch of vectors.
_RELU_FUNCTIONS = {torch.relu, torch.nn.functional.relu, torch.relu_}
_RELU_METHODS = {"relu", "relu_"}
_FLATTEN_FUNCTIONS = {torch.flatten}
_FLATTEN_METHODS = {"flatten"}



class _Chain:
    """The affine maps and ReLUs read so far: ``layers`` (W, b) before each ReLU, and the pending affine map
    (W, b) since the last ReLU (None: the identity)."""

    def __init__(self) -> None:
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.pending: tuple[torch.Tensor, torch.Tensor] | None = None
        self.width: int | None = None  # the current vector length, once known
        self.last_was_relu = False

    def affine(self, weight: torch.Tensor, bias: torch.Tensor, where: str) -> None:
        """Compose ``x -> weight x + bias`` after what is pending (float64)."""
        weight, bias = weight.detach().to(torch.float64).cpu(), bias.detach().to(torch.float64).cpu()
        if self.width is not None and weight.shape[1] != self.width:
            raise ModelFormatError(f"{where}: takes {weight.shape[1]} inputs but receives {self.width}")
        if self.pending is None:
            self.pending = (weight, bias)
        else:
            w0, b0 = self.pending
            self.pending = (weight @ w0, weight @ b0 + bias)
        self.width = weight.shape[0]
        self.last_was_relu = False

    def relu(self, where: str) -> None:
        if self.last_was_relu:
            return  # relu(relu(x)) = relu(x)
        if self.width is None:
            raise ModelFormatError(f"{where}: a ReLU before any Linear layer; its width is unknown")
        if self.pending is None:
            eye = torch.eye(self.width, dtype=torch.float64)
            self.pending = (eye, torch.zeros(self.width, dtype=torch.float64))
        self.layers.append(self.pending)
        self.pending = None
        self.last_was_relu = True

    def ffn(self, name: str) -> FFN:
        if self.width is None:
            raise ModelFormatError(f"{name}: no Linear layer found")
        readout = self.pending or (torch.eye(self.width, dtype=torch.float64),
                                   torch.zeros(self.width, dtype=torch.float64))
        layers = self.layers + [readout]
        return FFN([w for w, _ in layers], [b for _, b in layers], name=name)


def _batchnorm_affine(module: torch.nn.BatchNorm1d, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode BatchNorm1d as ``x -> s * x + t`` (diagonal weight)."""
    if module.running_mean is None or module.running_var is None:
        raise ModelFormatError(f"{where}: BatchNorm1d without running statistics (track_running_stats=False)")
    var = module.running_var.detach().to(torch.float64)
    mean = module.running_mean.detach().to(torch.float64)
    scale = 1.0 / torch.sqrt(var + module.eps)
    if module.affine:
        scale = scale * module.weight.detach().to(torch.float64)
        shift = module.bias.detach().to(torch.float64) - mean * scale
    else:
        shift = -mean * scale
    return torch.diag(scale), shift


def _module_step(chain: _Chain, sub: torch.nn.Module, where: str) -> None:
    if isinstance(sub, torch.nn.Linear):
        bias = sub.bias if sub.bias is not None else torch.zeros(sub.out_features)
        chain.affine(sub.weight, bias, where)
    elif isinstance(sub, torch.nn.ReLU):
        chain.relu(where)
    elif isinstance(sub, (torch.nn.Identity, torch.nn.Flatten)):
        if isinstance(sub, torch.nn.Flatten) and (sub.start_dim, sub.end_dim) != (1, -1):
            raise ModelFormatError(f"{where}: Flatten({sub.start_dim}, {sub.end_dim}); only Flatten(1, -1) is read")
    elif isinstance(sub, torch.nn.Dropout):
        if sub.training:
            raise ModelFormatError(f"{where}: Dropout in training mode; call module.eval() first")
    elif isinstance(sub, torch.nn.BatchNorm1d):
        if sub.training:
            raise ModelFormatError(f"{where}: BatchNorm1d in training mode; call module.eval() first")
        weight, shift = _batchnorm_affine(sub, where)
        chain.affine(weight, shift, where)
    else:
        raise ModelFormatError(f"{where}: {type(sub).__name__} is not converted (only Linear, ReLU, Flatten, "
                               "Identity, and Dropout and BatchNorm1d in eval mode: a ReLU network's kinks)")


def _function_step(chain: _Chain, node: Any) -> None:
    target = node.target
    name = getattr(target, "__name__", str(target))
    if node.op == "call_function" and target in _RELU_FUNCTIONS or node.op == "call_method" and target in _RELU_METHODS:
        chain.relu(f"{node.name} ({name})")
    elif node.op == "call_function" and target in _FLATTEN_FUNCTIONS or node.op == "call_method" and \
            target in _FLATTEN_METHODS:
        if tuple(node.args[1:]) not in ((), (1,)) or node.kwargs not in ({}, {"start_dim": 1}):
            raise ModelFormatError(f"{node.name}: flatten{tuple(node.args[1:])}; only flatten(x, 1) is read")
    elif node.op == "call_function" and target is operator.getitem:
        raise ModelFormatError(f"{node.name}: indexing is not converted")
    else:
        raise ModelFormatError(f"{node.name}: {name} is not converted (only ReLU and flatten among functions; "
                               "the network must be affine maps and ReLUs)")


def from_module(module: torch.nn.Module, input_dim: int | None = None, *,
                input_shape: tuple[int, ...] | None = None, check_points: int = 256, seed: int = 0,
                name: str | None = None) -> Model | GraphModel:
    """The model computing ``module``'s function, traced with ``torch.fx``: an FFN for a chain of Linear and
    ReLU layers (see the module docstring), the DEQ of a :class:`regioncount.models.nn.ReLUDEQ`, and otherwise
    a :class:`~regioncount.graph.model.GraphModel` of its operators (convolutions, pooling, batch norm,
    residual sums, leaky ReLU, PReLU, hard-tanh, abs: :mod:`regioncount.io.graph_fx`).

    ``input_shape``: the per-sample shape of the input, e.g. (C, H, W) for images (points are then given
    flat, C H W numbers); ``input_dim``: the length of input vectors (default: the first Linear layer's
    ``in_features``).  The result is checked on ``check_points`` random inputs in [-1, 1]^d (and 10x wider)
    against ``module(x)`` within :data:`CHECK_TOLERANCE` of the module's float type, relative to the outputs'
    size; any mismatch, untraceable module or unsupported operator is a one-line :class:`ModelFormatError`.
    """
    from ..models.nn import ConvDEQ, ReLUDEQ

    if isinstance(module, (ReLUDEQ, ConvDEQ)):  # a DEQ module: its fixed point is not a traceable graph
        return module.to_model(name)
    label = name or type(module).__name__
    traced = _traced(module, label)
    if input_shape is None or len(input_shape) == 1:
        try:
            ffn = _chain_of(traced, label).ffn(label)
        except ModelFormatError:
            ffn = None  # not a chain of Linear and ReLU layers: read as a graph of operators
        if ffn is not None:
            wanted = input_dim if input_shape is None else input_shape[0]
            if wanted is not None and ffn.input_dim != wanted:
                raise ModelFormatError(f"{label}: its first layer takes {ffn.input_dim} inputs, not {wanted}")
            _check_against(module, ffn, check_points, seed, label)
            return ffn
    shape = tuple(input_shape) if input_shape is not None else _vector_input(traced, input_dim, label)
    graph = graph_from_traced(traced, shape, label)
    check_graph(module, graph, check_points, seed, label)
    return graph


def _vector_input(traced: torch.fx.GraphModule, input_dim: int | None, label: str) -> tuple[int, ...]:
    """The input shape (n,) of a module given no ``input_shape``: ``input_dim`` or the first layer's width."""
    if input_dim is not None:
        return (input_dim,)
    for node in traced.graph.nodes:
        if node.op == "call_module":
            sub = traced.get_submodule(node.target)
            if isinstance(sub, torch.nn.Linear):
                return (sub.in_features,)
            if isinstance(sub, (torch.nn.Conv1d, torch.nn.Conv2d)):
                break
    raise ModelFormatError(f"{label}: give input_shape, e.g. (C, H, W) for images; the first layer does not say")


def _traced(module: torch.nn.Module, label: str) -> torch.fx.GraphModule:
    """``module`` traced by ``torch.fx`` (an untraceable one: a one-line :class:`ModelFormatError`)."""
    try:
        return torch.fx.symbolic_trace(module)
    except Exception as exc:  # torch.fx raises TraceError, TypeError, ... for data-dependent control flow
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFormatError(f"{label}: cannot be traced with torch.fx ({reason})") from None


def _chain_of(traced: torch.fx.GraphModule, label: str) -> _Chain:
    """The layers of a traced graph that is one chain from its single input to its output, in order;
    anything else (a second input, a branch, a residual connection, an unconverted op) is refused."""
    chain = _Chain()
    previous = None
    placeholders = 0
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            placeholders += 1
            if placeholders > 1:
                raise ModelFormatError(f"{label}: takes more than one input ({node.name})")
            previous = node
            continue
        inputs = list(node.all_input_nodes)
        if node.op == "output":
            if inputs != [previous]:
                raise ModelFormatError(f"{label}: the output is not the end of one chain of layers")
            break
        if len(inputs) != 1 or inputs[0] is not previous:
            raise ModelFormatError(f"{label}: {node.name} reads {[n.name for n in inputs]}, not only the previous "
                                   "layer: branches and residual connections are not converted")
        if node.op == "call_module":
            _module_step(chain, traced.get_submodule(node.target), f"{label}.{node.target}")
        elif node.op in ("call_function", "call_method"):
            _function_step(chain, node)
        else:
            raise ModelFormatError(f"{label}: {node.op} {node.target} is not converted")
        previous = node
    return chain


def _check_against(module: torch.nn.Module, ffn: FFN, points: int, seed: int, label: str) -> None:
    """Refuse when the FFN and the module disagree on random inputs (a mislabelled conversion)."""
    check_forward(module, ffn.forward, (ffn.input_dim,), points, seed, label,
                  "the converted FFN (the module is not a plain ReLU network)")
