"""A ReLU FFN read node by node from a file that carries the graph (ONNX, torch.export): affine maps
separated by ReLUs, checked as they arrive (``docs/model-format.md``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.errors import ModelFormatError
from ..models.networks import FFN


class LayerChain:
    """The affine layers read so far and the one still open (waiting for its bias or its ReLU).  Weights
    are float64 numpy arrays (out, in); every problem is a :class:`ModelFormatError` naming the file and
    the node."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []
        self.open: list[np.ndarray] | None = None  # [W (out, in), b (out,)]
        self.open_has_bias = False
        self.relus = 0

    def fail(self, node: str, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.path}: {self.kind} node {node}: {message}")

    def affine(self, node: str, weight: np.ndarray, bias: np.ndarray | None) -> None:
        """An affine map y = W x (+ b); two in a row (no ReLU between them) are refused: composing them
        would round, and the counted net would not be the stored one."""
        if self.open is not None:
            raise self.fail(node, "two affine maps without a relu between them; regioncount reads ReLU FFNs as "
                                  "stored (fold the two maps into one before exporting)")
        if weight.ndim != 2:
            raise self.fail(node, f"a weight of shape {weight.shape}")
        if self.layers and weight.shape[1] != self.layers[-1][0].shape[0]:
            raise self.fail(node, f"takes {weight.shape[1]} inputs, the previous layer gives "
                                  f"{self.layers[-1][0].shape[0]}")
        out = weight.shape[0]
        if bias is not None and bias.size != out:
            raise self.fail(node, f"a bias of {bias.size} entries for a layer of {out} units")
        self.open = [weight, np.zeros(out) if bias is None else bias.reshape(out)]
        self.open_has_bias = bias is not None

    def add_bias(self, node: str, bias: np.ndarray) -> None:
        """The bias of the open affine map (a MatMul's following Add)."""
        if self.open is None or self.open_has_bias:
            raise self.fail(node, "an addition that is not the bias of a matrix product")
        weight = self.open[0]
        self.open = None
        self.affine(node, weight, bias)

    def relu(self, node: str) -> None:
        if self.open is None:
            raise self.fail(node, "a relu that does not follow an affine map")
        self.layers.append((self.open[0], self.open[1]))
        self.open = None
        self.relus += 1

    def model(self, name: str) -> FFN:
        """The FFN read; a chain that ends with a ReLU gets the identity readout of its last layer (exact)."""
        layers = list(self.layers)
        if self.open is not None:
            layers.append((self.open[0], self.open[1]))
        elif layers:
            width = layers[-1][0].shape[0]
            layers.append((np.eye(width), np.zeros(width)))
        else:
            raise ModelFormatError(f"{self.path}: the {self.kind} graph has no affine map")
        weights = [torch.from_numpy(np.ascontiguousarray(w, dtype=np.float64)) for w, _ in layers]
        biases = [torch.from_numpy(np.ascontiguousarray(b, dtype=np.float64)) for _, b in layers]
        return FFN(weights, biases, name=name)
