"""A graph model that is a chain of affine operators and ReLUs, densified into an FFN.

Each affine operator's matrix is read off by applying its linear part to the identity basis (a convolution of
C H W inputs becomes a (C' H' W') x (C H W) matrix), consecutive affine operators are composed in float64, and
a ReLU closes a layer.  This is the reference the operator form is tested and benchmarked against; float64
composition rounds, so exact comparisons use weights whose products are exact (small integers, powers of two).
"""

from __future__ import annotations

import torch

from ..core.errors import ModelFormatError
from ..models.networks import FFN
from .model import GraphModel
from .ops import Affine, Elementwise


def _is_relu(op: object) -> bool:
    return isinstance(op, Elementwise) and op.thresholds == (0.0,) and bool((op.slopes[0] == 0).all()) and \
        bool((op.slopes[1] == 1).all()) and bool((op.intercepts == 0).all())


def dense_ffn(model: GraphModel) -> FFN:
    """The FFN of a chain graph (each node reads the one before it) of affine operators and ReLUs."""
    n = model.input_dim
    weight = torch.eye(n, dtype=torch.float64)
    bias = torch.zeros(n, dtype=torch.float64)
    weights, biases = [], []
    for index, node in enumerate(model.nodes[1:], 1):
        if node.inputs != (index - 1,):
            raise ModelFormatError(f"graph node {node.name!r}: not a chain; only chains are densified")
        if _is_relu(node.op):
            weights.append(weight)
            biases.append(bias)
            weight, bias = torch.eye(node.size, dtype=torch.float64), torch.zeros(node.size, dtype=torch.float64)
            continue
        if not isinstance(node.op, Affine):
            raise ModelFormatError(f"graph node {node.name!r}: {node.op!r} is not affine or a ReLU")
        shape = model.nodes[node.inputs[0]].shape
        width = weight.shape[0]
        basis = torch.eye(width, dtype=torch.float64).reshape(width, *shape)
        matrix = node.op.linear([basis]).reshape(width, -1).T  # (out, in)
        offset = node.op.forward([torch.zeros(1, *shape, dtype=torch.float64)]).reshape(-1)
        weight, bias = matrix @ weight, matrix @ bias + offset
    weights.append(weight)
    biases.append(bias)
    return FFN(weights, biases, name=f"{model.name or 'graph'} (densified)")
