"""A graph model: a directed acyclic graph of affine and piecewise-linear operators (``docs/graphs.md``).

Nodes are kept in a topological order: node 0 is the input (per-sample shape ``input_shape``; points are given
flat, ``(B, prod(input_shape))``), every other node names the earlier nodes it reads.  The output node's
values are flattened to ``(B, output_dim)``.  The activation pattern of a point is the tuple of the states of
every piecewise-linear node (:mod:`regioncount.graph.ops`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.errors import ModelFormatError
from ..core.geometry import Domain
from .ops import Affine, Piecewise

Operator = Affine | Piecewise


@dataclass(frozen=True)
class GraphNode:
    """One operator: ``op`` applied to the outputs of the earlier nodes ``inputs``; ``shape`` per sample."""

    name: str
    op: Operator | None  # None: the input
    inputs: tuple[int, ...]
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _check_nodes(nodes: list[GraphNode]) -> None:
    """Node 0 is the input; every other node has an operator and reads earlier nodes (one, if piecewise)."""
    if not nodes or nodes[0].op is not None:
        raise ModelFormatError("a graph model starts with its input node")
    for index, node in enumerate(nodes[1:], 1):
        if node.op is None or not node.inputs or any(not 0 <= i < index for i in node.inputs):
            raise ModelFormatError(f"graph node {node.name!r}: needs an operator and earlier inputs")
        if node.op.piecewise and len(node.inputs) != 1:
            raise ModelFormatError(f"graph node {node.name!r}: a piecewise-linear operator reads one input")


class GraphModel:
    """A network of operators, evaluated on float64 batches; ``nodes[0]`` is the input."""

    def __init__(self, nodes: list[GraphNode], output: int | None = None, *, name: str | None = None,
                 domain: Domain | None = None) -> None:
        _check_nodes(nodes)
        self.nodes = list(nodes)
        self.output = len(nodes) - 1 if output is None else output
        self.name = name
        self.domain = domain
        self.input_shape = nodes[0].shape
        self.input_dim = nodes[0].size
        self.output_dim = nodes[self.output].size
        self.piecewise = [i for i, node in enumerate(nodes) if node.op is not None and node.op.piecewise]
        #: the last node that reads each node's output (itself for the output node)
        self.last_use = {i: i for i in range(len(nodes))}
        for index, node in enumerate(nodes):
            for i in node.inputs:
                self.last_use[i] = max(self.last_use[i], index)
        self.last_use[self.output] = len(nodes)

    def describe(self) -> str:
        kinds: dict[str, int] = {}
        for node in self.nodes[1:]:
            label = getattr(node.op, "label", None) or getattr(node.op, "name", None) or type(node.op).__name__
            kinds[label] = kinds.get(label, 0) + 1
        ops = ", ".join(f"{k} x{v}" if v > 1 else k for k, v in kinds.items())
        return (f"graph {'x'.join(map(str, self.input_shape))} -> {self.output_dim} ({ops}; "
                f"{self.piecewise_units()} piecewise units)")

    def piecewise_units(self) -> int:
        """Units with a state: the outputs of every piecewise node."""
        return sum(self.nodes[i].size for i in self.piecewise)

    def pattern_bits(self) -> int:
        """Bits of a pattern: each unit's state k as the bits (k > i), i < the operator's ``state_bits``."""
        return sum(self.nodes[i].size * getattr(self.nodes[i].op, "state_bits", 0) for i in self.piecewise)

    def activation_size(self) -> int:
        """Numbers one evaluation holds per point, at most (every node's output)."""
        return sum(node.size for node in self.nodes)

    def pattern_code(self, points: torch.Tensor) -> torch.Tensor:
        """The patterns of points (B, d) as bits (B, pattern_bits()): the bijective code of the states."""
        _, states = self.forward(points, patterns=True)
        return self.code_of_states(states, points.shape[0])

    def code_of_states(self, states: list[torch.Tensor], rows: int) -> torch.Tensor:
        """The bits (B, pattern_bits()) of the states of every piecewise node (a list of (B, units))."""
        codes = []
        for index, st in zip(self.piecewise, states):
            bits = getattr(self.nodes[index].op, "state_bits", 0)
            levels = torch.arange(bits, device=st.device)
            codes.append((st.unsqueeze(-1) > levels).reshape(st.shape[0], -1))
        return torch.cat(codes, 1) if codes else torch.zeros(rows, 1, dtype=torch.bool)

    def macs(self) -> int:
        """Multiply-adds of one evaluation (affine operators), per sample."""
        return sum(node.op.macs for node in self.nodes[1:] if node.op is not None)

    def _check_points(self, points: torch.Tensor) -> torch.Tensor:
        points = torch.as_tensor(points, dtype=torch.float64)
        if points.dim() != 2 or points.shape[1] != self.input_dim:
            raise ModelFormatError(f"points must have shape (B, {self.input_dim}), got {tuple(points.shape)}")
        return points

    def forward(self, points: torch.Tensor, patterns: bool = False) -> torch.Tensor | tuple:
        """Outputs (B, output_dim) at points (B, input_dim); with ``patterns``, also the states of every
        piecewise node, a list of (B, units) int64 tensors."""
        x = self._check_points(points)
        values: dict[int, torch.Tensor] = {0: x.reshape(x.shape[0], *self.input_shape)}
        states = []
        for index, node in enumerate(self.nodes[1:], 1):
            ins = [values[i] for i in node.inputs]
            assert node.op is not None
            if isinstance(node.op, Piecewise):
                u = ins[0].reshape(x.shape[0], -1)
                st = node.op.states(u)
                out, _ = node.op.select(u, torch.zeros_like(u), st)
                states.append(st)
                values[index] = out.reshape(x.shape[0], *node.shape)
            else:
                values[index] = node.op.forward(ins)
        out = values[self.output].reshape(x.shape[0], -1)
        return (out, states) if patterns else out

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        out = self.forward(points)
        assert isinstance(out, torch.Tensor)
        return out
