"""Trained baselines on the GOTU task and the density of the features they learn (``docs/bias.md``,
"Feature density").

* an FFN ``d -> 64 -> 20 -> 1`` (ReLU), trained by Adam on the seen half; its last hidden layer gives 20
  features;
* a vanilla linear DEQ of width 20, ``z = W z + U x + b``, ``f = 1 . z``, with ``W = V min(1, 0.9 / ||V||_2)``
  (a contraction, so well-posed; certified afterwards by :func:`regioncount.models.wellposed.certify`);
* the diagonal linear DEQ of :mod:`regioncount.bias.gotu`, whose features are ``z_i = beta_i x_i``.

Parameters are drawn from a seeded ``torch.Generator`` (no global RNG is touched); training is float64 on
the CPU, full batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models.wellposed import certify
from .gotu import GotuData, target

#: Features shown per model.
FEATURES = 20
#: A feature counts as used when its mean magnitude is at least this share of the largest.
DENSITY_SHARE = 0.1


@dataclass
class TrainedModel:
    """A trained baseline: GOTU error on the unseen half, final training loss, the feature magnitudes (N, 20)
    on unseen inputs, and a note (the DEQ's well-posedness certificate)."""

    name: str
    gotu_error: float
    train_loss: float
    features: np.ndarray
    note: str = ""


def density(features: np.ndarray, share: float = DENSITY_SHARE) -> float:
    """The share of features (columns of |features| (N, F)) whose mean magnitude is at least ``share`` of the
    largest mean magnitude."""
    means = np.abs(features).mean(0)
    top = means.max()
    return float((means >= share * top).mean()) if top > 0 else 0.0


def _normal(gen: torch.Generator, *shape: int, scale: float) -> torch.Tensor:
    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).requires_grad_()


def _train(params: list[torch.Tensor], loss_fn, steps: int, lr: float) -> float:
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(loss_fn())


def train_ffn(data: GotuData, name: str, seed: int, steps: int = 1500, lr: float = 3e-3) -> TrainedModel:
    """The FFN baseline on target ``name`` (see the module docstring)."""
    gen = torch.Generator().manual_seed(seed)
    d = data.d
    x, xu = torch.from_numpy(data.seen), torch.from_numpy(data.unseen)
    y, yu = torch.from_numpy(target(name, data.seen)), torch.from_numpy(target(name, data.unseen))
    W1, b1 = _normal(gen, 64, d, scale=(2 / d) ** 0.5), torch.zeros(64, dtype=torch.float64, requires_grad=True)
    W2, b2 = _normal(gen, FEATURES, 64, scale=(2 / 64) ** 0.5), torch.zeros(FEATURES, dtype=torch.float64,
                                                                            requires_grad=True)
    w3, b3 = _normal(gen, FEATURES, scale=(1 / FEATURES) ** 0.5), torch.zeros((), dtype=torch.float64,
                                                                           requires_grad=True)

    def hidden(inputs: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.relu(inputs @ W1.T + b1) @ W2.T + b2)

    def loss() -> torch.Tensor:
        return ((hidden(x) @ w3 + b3 - y) ** 2).mean()

    final = _train([W1, b1, W2, b2, w3, b3], loss, steps, lr)
    with torch.no_grad():
        error = float(((hidden(xu) @ w3 + b3 - yu) ** 2).mean())
        features = hidden(xu[:32]).numpy()
    return TrainedModel(f"FFN {d} -> 64 -> {FEATURES} -> 1 (last hidden layer)", error, final, features)


def train_linear_deq(data: GotuData, name: str, seed: int, steps: int = 1500, lr: float = 3e-3) -> TrainedModel:
    """The vanilla linear DEQ of width 20 on target ``name`` (see the module docstring)."""
    gen = torch.Generator().manual_seed(seed)
    d = data.d
    x, xu = torch.from_numpy(data.seen), torch.from_numpy(data.unseen)
    y, yu = torch.from_numpy(target(name, data.seen)), torch.from_numpy(target(name, data.unseen))
    V = _normal(gen, FEATURES, FEATURES, scale=0.3 / FEATURES**0.5)
    U = _normal(gen, FEATURES, d, scale=(1 / d) ** 0.5)
    b = torch.zeros(FEATURES, dtype=torch.float64, requires_grad=True)
    eye = torch.eye(FEATURES, dtype=torch.float64)

    def feedback() -> torch.Tensor:
        return V * torch.clamp(0.9 / torch.linalg.matrix_norm(V, 2), max=1.0)

    def equilibrium(inputs: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve(eye - feedback(), (inputs @ U.T + b).T).T  # z = (I - W)^-1 (U x + b)

    def loss() -> torch.Tensor:
        return ((equilibrium(x).sum(1) - y) ** 2).mean()

    final = _train([V, U, b], loss, steps, lr)
    with torch.no_grad():
        error = float(((equilibrium(xu).sum(1) - yu) ** 2).mean())
        features = equilibrium(xu[:32]).numpy()
        cert = certify(feedback().numpy())
    note = f"well-posed: {cert.well_posed} ({cert.method})"
    return TrainedModel(f"linear DEQ, width {FEATURES} (full W)", error, final, features, note)


def diagonal_deq_features(data: GotuData, beta: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """The diagonal DEQ's features ``z_i = beta_i x_i`` (times the readout's signs) on 32 unseen inputs."""
    return data.unseen[:32] * beta[None, :]
