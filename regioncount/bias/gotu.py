"""Generalisation on the unseen (GOTU): Boolean inputs, a half of the cube never seen in training
(``docs/bias.md``, "GOTU"; the targets are our reconstruction).

Inputs ``x`` in {-1, 1}^d; training points have ``x_1 = +1``, the unseen domain is ``x_1 = -1``.  On the seen
half the feature x_1 equals the constant 1, so a model with a bias term learns only ``b + theta_1``; how it
splits that sum is decided by its implicit bias alone, and decides its error on the unseen half.  Two
targets agree on the seen half and differ on the unseen one:

* ``f1(x) = s x_1 + sum_{i >= 2} c_i x_i`` (the constant of the seen half belongs to x_1),
* ``f2(x) = s + sum_{i >= 2} c_i x_i`` (it belongs to the bias),

with ``s = 3/2`` and fixed nonzero ``c_i``.  A linear model that puts a share p of ``s`` on the bias has
GOTU error (mean squared error on the unseen half) ``(2 p s)^2`` on f1 and ``(2 (1 - p) s)^2`` on f2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flows import deq_gradient_flow, diagonal_network_flow
from .instances import BiasInputError, Instance
from .potential import minimise

#: The constant of the seen half (on x_1 for f1, on the bias for f2).
SHIFT = 1.5
TARGETS = ("f1", "f2")
#: Largest dimension whose cube is enumerated; beyond it the halves are sampled.
ENUMERATE_UP_TO = 12


def coefficients(d: int) -> np.ndarray:
    """The fixed coefficients ``c_2 .. c_d`` (d - 1,): magnitudes 0.5, 0.75, 1.0, 1.25 cycling, alternating
    signs (all nonzero, so every model can interpolate without driving a coefficient to 0)."""
    i = np.arange(d - 1)
    return (0.5 + 0.25 * (i % 4)) * np.where(i % 2 == 0, 1.0, -1.0)


def target(name: str, x: np.ndarray) -> np.ndarray:
    """f1 or f2 at the points ``x`` (N, d)."""
    rest = x[:, 1:] @ coefficients(x.shape[1])
    if name == "f1":
        return SHIFT * x[:, 0] + rest
    if name == "f2":
        return SHIFT + rest
    raise BiasInputError(f"unknown GOTU target {name!r} (f1 or f2)")


@dataclass(frozen=True)
class GotuData:
    """Seen (x_1 = +1) training points (n, d) and unseen (x_1 = -1) test points (m, d)."""

    seen: np.ndarray
    unseen: np.ndarray

    @property
    def d(self) -> int:
        return int(self.seen.shape[1])


def gotu_data(d: int, samples: int = 256, seed: int = 0) -> GotuData:
    """Both halves of {-1, 1}^d: every point for d <= :data:`ENUMERATE_UP_TO`, else ``samples`` random points
    of each half."""
    if not 2 <= d <= 64:
        raise BiasInputError(f"the GOTU dimension must be in 2 .. 64, got {d}")
    if d <= ENUMERATE_UP_TO:
        codes = np.arange(2 ** (d - 1))
        rest = np.where((codes[:, None] >> np.arange(d - 1)) & 1, 1.0, -1.0)
    else:
        rest = np.random.default_rng(seed).choice([-1.0, 1.0], size=(samples, d - 1))
    ones = np.ones((rest.shape[0], 1))
    return GotuData(np.concatenate([ones, rest], 1), np.concatenate([-ones, rest], 1))


def _reduced(features: np.ndarray, y: np.ndarray, plain: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The same interpolation constraints with full row rank: ``Q^T [F, P] theta = Q^T y`` with Q an
    orthonormal basis of the range of ``[F, P]``.  Gradient flow on the least squares loss is unchanged
    (its gradient ``F^T r`` only sees ``Q Q^T r``) when y lies in that range, as it does for these targets."""
    both = features if plain is None else np.concatenate([features, plain], 1)
    U, S, _ = np.linalg.svd(both, full_matrices=False)
    rank = int((S > S[0] * max(both.shape) * np.finfo(float).eps).sum())
    Q = U[:, :rank]
    return Q.T @ features, Q.T @ y, None if plain is None else Q.T @ plain


def bias_share(bias: float, theta1: float) -> float:
    """The share p of the seen half's constant that a model put on its bias."""
    return bias / (bias + theta1)


def gotu_error(name: str, data: GotuData, theta: np.ndarray, bias: float) -> float:
    """Mean squared error of ``x -> theta . x + bias`` on the unseen half against target ``name``."""
    return float(np.mean((data.unseen @ theta + bias - target(name, data.unseen)) ** 2))


@dataclass(frozen=True)
class GotuRow:
    """One model on one target: its bias share, GOTU error from training (the flow's limit, or the mean
    over seeds with its spread) and in closed form (from the implicit bias; None where none is known), and
    for trained baselines the largest final training loss over the seeds."""

    model: str
    target: str
    bias_share: float
    trained: float
    closed_form: float | None
    spread: float = 0.0
    note: str = ""
    train_loss: float | None = None

    def to_json(self) -> dict:
        return {"model": self.model, "target": self.target, "bias_share": self.bias_share,
                "gotu_error_trained": self.trained, "gotu_error_closed_form": self.closed_form,
                "spread": self.spread, "note": self.note, "train_loss": self.train_loss}


def linear_rows(data: GotuData, name: str, alpha: float = 0.01) -> list[GotuRow]:
    """The linear models on target ``name``: the diagonal DEQ with a bias term (``z = diag(w) z + x``,
    ``f = signs . z + b``, beta0 = 1, b from 0), the diagonal network with a bias feature (u = v = alpha) and
    least squares with a bias from 0 (least l2)."""
    seen, y = data.seen, target(name, data.seen)
    signs = np.concatenate([[1.0], np.sign(coefficients(data.d))])
    ones = np.ones((seen.shape[0], 1))
    X, y_r, plain = _reduced(seen, y, ones)
    deq = Instance(X, y_r, np.ones(data.d), signs, name=f"GOTU {name}", plain=plain)
    flow = deq_gradient_flow(deq)
    assert flow.plain is not None
    best = minimise(deq)
    closed = None if best.beta is None or best.plain is None else \
        gotu_error(name, data, signs * best.beta, float(best.plain[0]))
    rows = [GotuRow("diagonal linear DEQ + bias", name, bias_share(float(flow.plain[0]), float(flow.theta[0])),
                    gotu_error(name, data, flow.theta, float(flow.plain[0])), closed, note=flow.status)]
    augmented = np.concatenate([ones, seen], 1)
    Xa, ya, _ = _reduced(augmented, y)
    net = diagonal_network_flow(Instance(Xa, ya, np.ones(data.d + 1), np.ones(data.d + 1)), alpha)
    # the bias and x_1 columns coincide on the seen half and start equal: the flow keeps them equal (p = 1/2)
    rows.append(GotuRow(f"diagonal linear network + bias (alpha {alpha:g})", name,
                        bias_share(float(net.theta[0]), float(net.theta[1])),
                        gotu_error(name, data, net.theta[1:], float(net.theta[0])),
                        gotu_error(name, data, np.r_[SHIFT / 2, coefficients(data.d)], SHIFT / 2), note=net.status))
    least = np.linalg.lstsq(augmented, y, rcond=None)[0]
    rows.append(GotuRow("least squares + bias (least l2)", name, bias_share(float(least[0]), float(least[1])),
                        gotu_error(name, data, least[1:], float(least[0])),
                        gotu_error(name, data, np.r_[SHIFT / 2, coefficients(data.d)], SHIFT / 2)))
    return rows
