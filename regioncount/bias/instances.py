"""Regression instances for the implicit-bias study of diagonal linear DEQs (``docs/bias.md``).

An instance is over-parameterised least squares: ``X`` (n, d) of full row rank with n <= d, targets ``y``
(n,), a DEQ initialisation ``beta0`` (d,) > 0 and a readout of signs ``signs`` (d,) in {-1, +1}; the planted
coefficients ``planted`` (d,) (``y = X planted``) are kept to measure recovery.  Everything is float64 numpy:
the flows are integrated by scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import RegionCountError

#: Largest problem the study accepts (the flows' Jacobians are dense d x d).
MAX_FEATURES = 2000


class BiasInputError(RegionCountError):
    """An instance outside the setting of the implicit-bias result (one line, for the CLI)."""


@dataclass(frozen=True)
class Instance:
    """Least squares ``X theta = y`` with a diagonal-DEQ initialisation (see the module docstring)."""

    X: np.ndarray
    y: np.ndarray
    beta0: np.ndarray
    signs: np.ndarray
    planted: np.ndarray | None = None
    name: str = "instance"
    #: optional (n, k) columns with plain coefficients ``c`` trained from 0 beside the DEQ's (a bias term is a
    #: column of ones): the model is ``X theta + plain c``
    plain: np.ndarray | None = None

    @property
    def k(self) -> int:
        return 0 if self.plain is None else int(self.plain.shape[1])

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        return int(self.X.shape[1])

    @property
    def A(self) -> np.ndarray:
        """(n, d) the design in the DEQ's own coordinates: ``X theta = A beta`` with ``theta = signs * beta``."""
        return self.X * self.signs[None, :]


def check_instance(inst: Instance) -> Instance:
    """Refuse, in one line, what breaks the result's assumptions: shapes, non-finite numbers, n > d, a rank-
    deficient X, beta0 <= 0, signs other than +-1."""
    _check_shapes(inst)
    _check_values(inst)
    return inst


def _check_shapes(inst: Instance) -> None:
    """Matching shapes, 1 <= n <= d <= MAX_FEATURES, plain columns of n rows."""
    X, y, beta0, signs = inst.X, inst.y, inst.beta0, inst.signs
    if X.ndim != 2 or y.shape != (X.shape[0],) or beta0.shape != (X.shape[1],) or signs.shape != (X.shape[1],):
        raise BiasInputError(f"shapes do not match: X {X.shape}, y {y.shape}, beta0 {beta0.shape}, "
                             f"signs {signs.shape}")
    n, d = X.shape
    if n < 1 or d > MAX_FEATURES:
        raise BiasInputError(f"need 1 <= n and d <= {MAX_FEATURES}, got n = {n}, d = {d}")
    if n > d:
        raise BiasInputError(f"the result is about the over-parameterised regime n <= d; got n = {n} samples "
                             f"and d = {d} features")
    if inst.plain is not None and (inst.plain.ndim != 2 or inst.plain.shape[0] != n):
        raise BiasInputError("the plain columns must be a finite (n, k) matrix")


def _check_values(inst: Instance) -> None:
    """Finite numbers, X of full row rank, beta0 > 0, signs in {-1, +1}."""
    X, beta0 = inst.X, inst.beta0
    finite = [X, inst.y, beta0] + ([] if inst.plain is None else [inst.plain])
    if not all(np.isfinite(a).all() for a in finite):
        raise BiasInputError("X, y, beta0 and the plain columns must be finite (NaN or inf found)")
    rank = int(np.linalg.matrix_rank(X))
    if rank < X.shape[0]:
        raise BiasInputError(f"X has rank {rank} < n = {X.shape[0]}: the result assumes full row rank")
    if not (beta0 > 0).all():
        raise BiasInputError(f"beta(0) must be positive (the DEQ's 1 / (1 - w(0))), got min {beta0.min():.3g}")
    if not np.isin(inst.signs, (-1.0, 1.0)).all():
        raise BiasInputError("the readout's entries must be +1 or -1")


def random_instance(n: int, d: int, *, kind: str = "sparse", support: int = 3, scale: float = 1.0,
                    seed: int = 0) -> Instance:
    """Gaussian X (n, d) (entries N(0, 1/n)), a planted beta* and ``y = X beta*``.

    ``kind``: "sparse" (``support`` entries of magnitude U(1, 2) with random signs, the rest 0) or "dense"
    (every entry of magnitude U(0.5, 1.5), random signs).  The readout takes the planted signs (+1 where it
    is 0), so every coefficient the DEQ needs has its sign; ``beta0 = scale`` everywhere."""
    if kind not in ("sparse", "dense"):
        raise BiasInputError(f"kind must be 'sparse' or 'dense', got {kind!r}")
    if not (np.isfinite(scale) and scale > 0):
        raise BiasInputError(f"the initialisation scale must be positive, got {scale}")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) / np.sqrt(n)
    planted = np.zeros(d)
    if kind == "sparse":
        chosen = rng.choice(d, size=min(support, d), replace=False)
        planted[chosen] = rng.uniform(1.0, 2.0, chosen.size) * rng.choice([-1.0, 1.0], chosen.size)
    else:
        planted = rng.uniform(0.5, 1.5, d) * rng.choice([-1.0, 1.0], d)
    signs = np.where(planted < 0, -1.0, 1.0)
    return Instance(X, X @ planted, np.full(d, float(scale)), signs, planted,
                    name=f"{kind} n={n} d={d} beta0={scale:g} seed={seed}")
