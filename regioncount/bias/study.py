"""The whole implicit-bias study behind ``regioncount bias`` (``docs/bias.md``): the theory checked on random
instances, gradient descent against the flow, the comparison that shows the bias, GOTU and feature density.
:func:`run_study` returns a :class:`BiasReport` (rich table and ``--json`` in the CLI, a figure in
:func:`regioncount.viz.bias_plot.plot_bias`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .features import TrainedModel, density, diagonal_deq_features, train_ffn, train_linear_deq
from .flows import FlowResult, deq_gradient_descent, deq_gradient_flow, diagonal_network_flow, least_l1, least_l2
from .gotu import TARGETS, GotuRow, coefficients, gotu_data, linear_rows
from .instances import BiasInputError, Instance, check_instance, random_instance
from .potential import DERIVED, QUOTED, kkt_residual, minimise, potential_gradient

Progress = Callable[[str], None]


def _relative_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), np.finfo(float).tiny))


@dataclass
class TheoryRow:
    """Gradient flow against the predicted minimiser on one instance (relative distance, KKT residuals of
    the flow's limit under both signs, the closed-form relation's largest deviation along the path)."""

    instance: str
    flow_status: str
    time: float
    train_residual: float
    distance: float | None
    kkt_derived: float
    kkt_quoted: float
    relation_error: float
    quoted_minimiser: str

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class DescentRow:
    """Gradient descent with one step size: its status and distance to the flow's limit."""

    step: float
    status: str
    steps: int
    distance_to_flow: float | None

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ComparisonRow:
    """One model's interpolant on one planted instance: l1, l2, effective sparsity ``(l1 / l2)^2`` (the number
    of equal entries with those norms), entries above 1% of the largest, and relative recovery error."""

    planted: str
    model: str
    l1: float
    l2: float
    effective_sparsity: float
    support: int
    recovery_error: float
    status: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)


def comparison_row(planted: str, model: str, theta: np.ndarray, truth: np.ndarray, status: str = "") -> ComparisonRow:
    l1, l2 = float(np.abs(theta).sum()), float(np.linalg.norm(theta))
    return ComparisonRow(planted, model, l1, l2, (l1 / l2) ** 2 if l2 > 0 else 0.0,
                         int((np.abs(theta) >= 0.01 * np.abs(theta).max()).sum()),
                         _relative_distance(theta, truth), status)


@dataclass
class FeatureMap:
    """One model's feature magnitudes (N, F) on unseen inputs and their density."""

    model: str
    magnitudes: np.ndarray
    density: float
    note: str = ""

    def to_json(self) -> dict:
        return {"model": self.model, "density": self.density, "note": self.note,
                "mean_magnitudes": np.abs(self.magnitudes).mean(0).tolist()}


@dataclass
class BiasReport:
    """Everything :func:`run_study` measured, with the settings used."""

    settings: dict[str, Any]
    theory: list[TheoryRow]
    descent: list[DescentRow]
    descent_instance: str
    comparison: list[ComparisonRow]
    gotu: list[GotuRow]
    features: list[FeatureMap]
    trajectories: dict[str, FlowResult] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def worst_distance(self) -> float | None:
        """The largest relative distance between a flow's limit and its minimiser (None if none converged)."""
        values = [r.distance for r in self.theory if r.distance is not None]
        return max(values) if values else None

    def to_json(self) -> dict:
        """Everything as JSON types; a number that is not finite (a KKT residual where the flow did not
        converge, a share a trained model has none of) becomes null."""
        return _finite_or_null({"settings": self.settings, "sign": "derived: q(x) = 1/(2 x^2) + beta0^-3 x",
                "worst_distance": self.worst_distance,
                "theory": [r.to_json() for r in self.theory],
                "descent": {"instance": self.descent_instance, "rows": [r.to_json() for r in self.descent]},
                "comparison": [r.to_json() for r in self.comparison],
                "gotu": [r.to_json() for r in self.gotu],
                "features": [f.to_json() for f in self.features], "seconds": self.seconds})


def _finite_or_null(value: Any) -> Any:
    """``value`` with every float that is NaN or infinite (in nested dicts and lists) replaced by None."""
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def theory_row(inst: Instance) -> tuple[TheoryRow, FlowResult]:
    """Gradient flow on ``inst`` against both potentials' minimisers."""
    check_instance(inst)
    flow = deq_gradient_flow(inst)
    best = minimise(inst, DERIVED)
    quoted = minimise(inst, QUOTED)
    distance = None
    kkt_d = kkt_q = float("nan")
    if flow.converged and flow.beta is not None:
        kkt_d = kkt_residual(inst.A, potential_gradient(flow.beta, inst.beta0, DERIVED))
        kkt_q = kkt_residual(inst.A, potential_gradient(flow.beta, inst.beta0, QUOTED))
        if best.beta is not None:
            distance = _relative_distance(flow.beta, best.beta)
    quoted_text = quoted.status if quoted.beta is None or flow.beta is None else \
        f"{quoted.status}; distance to the flow {_relative_distance(flow.beta, quoted.beta):.2e}"
    return TheoryRow(inst.name, flow.status, flow.time, flow.residual, distance, kkt_d, kkt_q, flow.relation_error,
                     quoted_text), flow


def descent_rows(inst: Instance, flow: FlowResult, steps: list[float], max_steps: int) -> list[DescentRow]:
    rows = []
    for step in steps:
        gd = deq_gradient_descent(inst, step, max_steps=max_steps)
        distance = None if gd.beta is None or flow.beta is None or not np.all(np.isfinite(gd.beta)) else \
            _relative_distance(gd.beta, flow.beta)
        rows.append(DescentRow(step, gd.status, gd.steps, distance))
    return rows


def comparison_rows(inst: Instance, flow: FlowResult, planted: str, alphas: tuple[float, float]
                    ) -> tuple[list[ComparisonRow], dict[str, FlowResult]]:
    assert inst.planted is not None
    truth = inst.planted
    rows = [comparison_row(planted, "diagonal linear DEQ (gradient flow)", flow.theta, truth, flow.status)]
    paths = {f"{planted}: diagonal linear DEQ": flow}
    for alpha in alphas:
        net = diagonal_network_flow(inst, alpha)
        rows.append(comparison_row(planted, f"diagonal network u^2 - v^2, alpha {alpha:g}", net.theta, truth,
                                   net.status))
        paths[f"{planted}: diagonal network, alpha {alpha:g}"] = net
    l2, l1 = least_l2(inst), least_l1(inst)
    rows.append(comparison_row(planted, "least l2 (regression from 0)", l2, truth))
    rows.append(comparison_row(planted, "least l1 (LP)", l1, truth))
    paths[f"{planted}: least l2"] = FlowResult(l2, None, 0.0, 0.0, True, "closed form")
    paths[f"{planted}: least l1"] = FlowResult(l1, None, 0.0, 0.0, True, "LP")
    paths[f"{planted}: planted"] = FlowResult(truth, None, 0.0, 0.0, True, "planted")
    return rows, paths


def feature_maps(data, seeds: list[int], steps: int = 1500, lr: float = 3e-3
                 ) -> tuple[list[GotuRow], list[FeatureMap]]:
    """The trained baselines on both GOTU targets (errors over seeds, ``steps`` Adam steps at ``lr``) and the
    feature maps on f1 (seed 0)."""
    rows, maps = [], []
    for name in TARGETS:
        for trainer in (train_ffn, train_linear_deq):
            runs: list[TrainedModel] = [trainer(data, name, seed, steps, lr) for seed in seeds]
            errors = np.array([r.gotu_error for r in runs])
            loss = max(r.train_loss for r in runs)
            rows.append(GotuRow(runs[0].name, name, float("nan"), float(errors.mean()), None,
                                float(errors.std()), f"{len(seeds)} seeds; train loss <= "
                                f"{loss:.1e}; {runs[0].note}".rstrip("; "), train_loss=loss))
            if name == "f1":
                maps.append(FeatureMap(runs[0].name, runs[0].features, density(runs[0].features), runs[0].note))
    return rows, maps


def run_study(n: int = 10, d: int = 30, scales: tuple[float, ...] = (0.5, 1.0, 2.0), seed: int = 0,
              steps: tuple[float, ...] = (0.03, 0.01, 0.003, 0.001), max_steps: int = 100_000,
              alphas: tuple[float, float] = (1e-3, 10.0), gotu_dim: int = 20, seeds: int = 2,
              progress: Progress | None = None) -> BiasReport:
    """The study with these settings (``progress(label)`` is called before each part)."""
    import time

    if not 1 <= n <= d:
        raise BiasInputError(f"the result is about n <= d; got n = {n}, d = {d}")
    if not scales or min(scales) <= 0:
        raise BiasInputError("the initialisation scales beta(0) must be positive")
    if any(s <= 0 for s in steps) or not 1 <= seeds <= 20:
        raise BiasInputError("step sizes must be positive and seeds in 1 .. 20")
    start = time.perf_counter()
    tell = progress or (lambda label: None)
    theory, flows = [], {}
    for kind in ("sparse", "dense"):
        for scale in scales:
            tell(f"gradient flow: {kind}, beta(0) = {scale:g}")
            row, flow = theory_row(random_instance(n, d, kind=kind, scale=scale, seed=seed))
            theory.append(row)
            flows[(kind, scale)] = flow
    tell("gradient descent against the flow")
    reference = 1.0 if 1.0 in scales else scales[0]
    descent_inst = random_instance(n, d, kind="dense", scale=reference, seed=seed)
    descent = descent_rows(descent_inst, flows[("dense", reference)], list(steps), max_steps)
    comparison, paths = [], {}
    for kind in ("sparse", "dense"):
        tell(f"the comparison: {kind} planted coefficients")
        rows, found = comparison_rows(random_instance(n, d, kind=kind, scale=reference, seed=seed),
                                      flows[(kind, reference)], kind, alphas)
        comparison += rows
        paths.update(found)
    tell("GOTU: linear models")
    data = gotu_data(gotu_dim, seed=seed)
    gotu = [row for name in TARGETS for row in linear_rows(data, name)]
    tell("GOTU: trained FFNs and linear DEQs")
    trained, maps = feature_maps(data, list(range(seeds)))
    gotu += trained
    maps.insert(0, diagonal_deq_map(data))
    settings = {"n": n, "d": d, "scales": list(scales), "seed": seed, "steps": list(steps), "max_steps": max_steps,
                "alphas": list(alphas), "gotu_dim": gotu_dim, "seeds": seeds,
                "loss": "||X theta - y||^2 / 2", "deq": "z = diag(w) z + x, f = signs . z, beta = 1 / (1 - w)"}
    return BiasReport(settings, theory, descent, descent_inst.name, comparison, gotu, maps, paths,
                      time.perf_counter() - start)


def diagonal_deq_map(data) -> FeatureMap:
    """The diagonal linear DEQ's feature map on GOTU target f1 (its predicted minimiser's features)."""
    features = diagonal_deq_features(data, _gotu_deq_beta(data), np.ones(data.d))
    return FeatureMap("diagonal linear DEQ + bias", features, density(features))


def _gotu_deq_beta(data) -> np.ndarray:
    """The diagonal DEQ's beta on GOTU target f1 (the predicted minimiser, equal to the flow's limit)."""
    from .gotu import _reduced, target

    ones = np.ones((data.seen.shape[0], 1))
    X, y, plain = _reduced(data.seen, target("f1", data.seen), ones)
    signs = np.concatenate([[1.0], np.sign(coefficients(data.d))])
    best = minimise(Instance(X, y, np.ones(data.d), signs, plain=plain))
    if best.beta is None:
        raise BiasInputError(f"the GOTU DEQ has no minimiser: {best.status}")
    return best.beta
