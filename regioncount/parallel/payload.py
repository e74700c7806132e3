"""A model as plain data for a task (numpy float64 arrays and strings), and back, bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..models.networks import DEQ, FFN, Model


def model_payload(model: Model) -> dict[str, Any]:
    """The model as plain data (numpy float64 arrays, strings), what a task receives."""
    if isinstance(model, FFN):
        return {"kind": "ffn", "weights": [w.numpy() for w in model.weights],
                "biases": [b.numpy() for b in model.biases], "name": model.name}
    return {"kind": "deq", "W": model.W.numpy(), "U": model.U.numpy(), "b": model.b.numpy(), "A": model.A.numpy(),
            "B": model.B.numpy(), "c": model.c.numpy(), "name": model.name}


def model_from_payload(payload: dict[str, Any]) -> Model:
    """Inverse of :func:`model_payload` (the same float64 values, bit for bit)."""
    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a, dtype=np.float64).copy())

    if payload["kind"] == "ffn":
        return FFN([tensor(w) for w in payload["weights"]], [tensor(b) for b in payload["biases"]],
                   name=payload["name"])
    return DEQ(tensor(payload["W"]), tensor(payload["U"]), tensor(payload["b"]), tensor(payload["A"]),
               c=tensor(payload["c"]), B=tensor(payload["B"]), name=payload["name"])
