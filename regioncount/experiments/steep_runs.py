"""The steep experiment of ``regioncount reproduce`` (Fig. 1(b), 1(e) and Fig. 4): DEQs and FFNs trained on
the d-dimensional steep target g_d(x) = phi(x_1) (:mod:`regioncount.theory.steep_dims`), their largest
weights, errors and exact regions along x_1 (``docs/reproduction.md``).

* **The DEQ** is the bisection DEQ of ``docs/steep.md`` with trained knots: ``knots = [0, cumsum(softmax(theta))]``
  keeps them increasing in [0, 1], so every weight of the DEQ stays at most 1 whatever training does. Its
  output ``y* = H^-1(x_1)`` is found by bisection, then ``y = y* - (H(y*) - x_1) / H'(y*)`` with ``H'``
  detached. The gradient of that y is the implicit function theorem's, ``dy/dtheta = -(dH/dtheta) / H'``.
* **The FFN** is a Linear/ReLU chain of ``ffn_depth`` x ``ffn_width`` with PyTorch's initialisation.

Both train on the same points with Adam on the MSE, float64. Half the points are uniform in [0, 1]^d and
half have x_1 in the transition 1/2 +- 8 / 2^d: uniform points alone would not see a step 2^-20 wide. The
sup error is measured on a grid of x_1 (uniform on [0, 1] and dense in the transition), float64. For the DEQ
it is also bounded rigorously, from its stored weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io.model_files import load_network, save_model
from ..line.exact1d import count_segment
from ..models.networks import DEQ, DTYPE, FFN, Model
from ..models.nn import chain_to_ffn, relu_chain
from ..theory.steep_dims import analyse_inverse_deq, bisect, ffn_weight_bound, inverse_deq, target_values
from .config import SteepExperiment
from .resume import run_resumably, write_json


@dataclass(frozen=True)
class SteepRun:
    """One trained net at one dimension and seed: its test MSE, measured sup error (and the DEQ's proven
    bound), largest |parameter|, exact regions along x_1, the FFN weight bound at its measured error, and its
    model file."""

    d: int
    kind: str
    seed: int
    test_mse: float
    sup_error: float
    proven_error: float | None
    max_abs_weight: float
    regions: int
    count_method: str
    ffn_log2_bound_at_error: float | None
    seconds: float
    model_file: str
    settings: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def steep_settings(experiment: SteepExperiment) -> dict[str, Any]:
    return {"knots": experiment.knots, "ffn_depth": experiment.ffn_depth, "ffn_width": experiment.ffn_width,
            "steps": experiment.steps, "lr": experiment.lr, "train_points": experiment.train_points}


def training_points(d: int, count: int, gen: torch.Generator) -> torch.Tensor:
    """(count, d): half uniform in [0, 1]^d, half with x_1 in the transition 1/2 +- 8 / 2^d."""
    x = torch.rand(count, d, generator=gen, dtype=DTYPE)
    half = count // 2
    x[:half, 0] = 0.5 + (x[:half, 0] - 0.5) * (16.0 / 2**d)
    return x


def evaluation_grid(d: int) -> torch.Tensor:
    """x_1 values: 20,001 uniform on [0, 1] and 20,001 across the transition 1/2 +- 8 / 2^d."""
    width = 8.0 / 2**d
    return torch.cat([torch.linspace(0, 1, 20_001, dtype=DTYPE), torch.linspace(0.5 - width, 0.5 + width, 20_001,
                                                                                  dtype=DTYPE)])


class _TrainedKnots(nn.Module):
    """The bisection DEQ's output as a function of trainable knot logits (module docstring)."""

    def __init__(self, K: int, iterations: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(K, dtype=DTYPE))
        self.K, self.iterations = K, iterations

    def knots(self) -> torch.Tensor:
        return torch.cat([torch.zeros(1, dtype=DTYPE), torch.cumsum(torch.softmax(self.logits, 0), 0)])

    def forward(self, x1: torch.Tensor) -> torch.Tensor:
        knots = self.knots()
        with torch.no_grad():
            piece = torch.zeros_like(x1, dtype=torch.long)
            lo, hi = torch.zeros_like(piece), torch.full_like(piece, self.K)
            for _ in range(self.iterations):  # bisection over the pieces: H(j / K) = knots[j] increases
                mid = (lo + hi) // 2
                right = knots[mid] <= x1
                lo, hi = torch.where(right, mid, lo), torch.where(right, hi, mid)
            piece = lo.clamp(max=self.K - 1)
        a, c = knots[piece], knots[piece + 1]
        slope = (c - a) * self.K  # H' on the piece
        y_star = (piece.to(DTYPE) + ((x1 - a) / (c - a)).detach()) / self.K
        return y_star - ((a + (y_star - piece.to(DTYPE) / self.K) * slope) - x1) / slope.detach()


def _train(module: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
           experiment: SteepExperiment) -> None:
    optimizer = torch.optim.Adam(module.parameters(), lr=experiment.lr)
    for _ in range(experiment.steps):
        optimizer.zero_grad(set_to_none=True)
        loss = torch.mean((forward(x) - y) ** 2)
        loss.backward()
        optimizer.step()


def train_deq(d: int, seed: int, experiment: SteepExperiment) -> Model:
    """The bisection DEQ with trained knots, as a model (its weights <= 1)."""
    K = 2**experiment.knots
    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(seed)
        x = training_points(d, experiment.train_points, gen)
        module = _TrainedKnots(K, experiment.knots)
        _train(module, lambda p: module(p[:, 0]), x, target_values(x[:, 0], d), experiment)
    knots = module.knots().detach().tolist()
    knots[-1] = 1.0
    return inverse_deq(d, knots, name=f"steep-deq-d{d}-s{seed}").model


def train_ffn(d: int, seed: int, experiment: SteepExperiment) -> FFN:
    """The FFN of the configuration's shape, trained (float64)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        x = training_points(d, experiment.train_points, gen)
        net = relu_chain(d, [experiment.ffn_width] * experiment.ffn_depth, dtype=DTYPE)
        _train(net, lambda p: net(p)[:, 0], x, target_values(x[:, 0], d), experiment)
    return chain_to_ffn(net, f"steep-ffn-d{d}-s{seed}")


def _measure(model: Model, d: int) -> tuple[float, float]:
    """Test MSE and sup error against g_d on the evaluation grid (other coordinates at 1/2)."""
    grid = evaluation_grid(d)
    if isinstance(model, FFN):
        x = torch.full((grid.shape[0], d), 0.5, dtype=DTYPE)
        x[:, 0] = grid
        with torch.no_grad():
            out = model.forward(x)[:, 0]
    else:  # the bisection DEQ's fixed point, from its stored weights
        out = bisect(model, grid)[0]
    gap = out - target_values(grid, d)
    return float(torch.mean(gap**2)), float(gap.abs().max())


def run_steep_one(d: int, kind: str, seed: int, experiment: SteepExperiment, folder: Path, device: str) -> SteepRun:
    """Train, save, reload, measure and count one net."""
    start = time.perf_counter()
    model: Model = train_deq(d, seed, experiment) if kind == "deq" else train_ffn(d, seed, experiment)
    path = folder / "models" / f"d{d}-{kind}-s{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, path)
    saved = load_network(path)
    mse, sup = _measure(saved, d)
    if isinstance(saved, DEQ):  # regions from the lemma of docs/steep.md: exact, and cheaper than the general-W walk
        analysis = analyse_inverse_deq(d, saved)
        proven, regions, method = analysis.error_bound, analysis.regions_on_unit_interval, "exact (one per piece of H)"
    else:
        count = count_segment(saved, segment=([0.0] + [0.5] * (d - 1), [1.0] + [0.5] * (d - 1)), device=device)
        proven, regions, method = None, count.activation_regions, count.method
    params = [*saved.weights, *saved.biases] if isinstance(saved, FFN) else [saved.W, saved.U, saved.b, saved.A]
    bound = ffn_weight_bound(d, experiment.ffn_depth, experiment.ffn_width, Fraction(sup)) if sup < 0.5 else None
    return SteepRun(d, kind, seed, mse, sup, proven, max(float(t.abs().max()) for t in params), regions, method, bound,
                    time.perf_counter() - start, str(path.relative_to(folder)), steep_settings(experiment))


@dataclass(frozen=True)
class SteepResult:
    """The steep experiment's runs, how many were read back, and its folder."""

    experiment: SteepExperiment
    runs: list[SteepRun]
    reused: int
    folder: Path

    def to_json(self) -> dict[str, Any]:
        e = self.experiment
        return {"experiment": e.name, "task": "steep", "figure": e.figure, "quoted": e.quoted, "chosen": e.chosen,
                "quick": e.quick, "settings": steep_settings(e), "dims": list(e.dims), "seeds": list(e.seeds),
                "reused_runs": self.reused, "runs": [run.to_json() for run in self.runs]}


def run_steep(experiment: SteepExperiment, folder: str | Path, device: str = "cpu",
              progress: Callable[[str, int, int], None] | None = None) -> SteepResult:
    """Every (dimension, kind, seed) run under ``folder``/NAME, resumably (:mod:`regioncount.experiments.resume`)."""
    root = Path(folder) / experiment.name
    jobs = [(f"d{d}-{kind}-s{seed}", f"{experiment.name}: d = {d}, {kind.upper()}, seed {seed}",
             lambda d=d, kind=kind, seed=seed: run_steep_one(d, kind, seed, experiment, root, device))
            for d in experiment.dims for kind in ("deq", "ffn") for seed in experiment.seeds]
    runs, reused = run_resumably(root, jobs, SteepRun, steep_settings(experiment), progress)
    result = SteepResult(experiment, runs, reused, root)
    write_json(root / "results.json", result.to_json())
    return result
