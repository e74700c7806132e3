"""One training run of an experiment: fit a net to the sawtooth T^m on [0, 1], measure its test loss, save it,
and count its linear regions exactly on [0, 1] (``docs/reproduction.md``).

Training is float32 Adam on the MSE over a uniform grid of ``train_points`` points (its ends included), from
a first layer whose kinks lie at uniform random points of [0, 1] (:func:`_module`); the
test loss is the float64 MSE of the saved float64 net on the midpoints of a grid of ``test_points`` cells
(points the training grid does not contain).  The count is :func:`~regioncount.line.exact1d.count_segment`
of the saved file's model: what a reader recounts from the file is what the run reports.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io.model_files import load_network, save_model
from ..line.exact1d import count_segment
from ..models.networks import DTYPE, FFN, Model
from ..models.nn import ReLUDEQ, chain_to_ffn, relu_chain
from ..theory.training import sawtooth
from .config import Experiment, NetSpec


@dataclass(frozen=True)
class RunKey:
    """Which run: target T^m, architecture and seed (with the experiment's training settings, which decide
    whether a saved run can be reused)."""

    m: int
    net: NetSpec
    seed: int

    @property
    def stem(self) -> str:
        return f"m{self.m}-{self.net.key}-s{self.seed}"


@dataclass(frozen=True)
class RunResult:
    """A finished run, as stored in its JSON file (``settings``: the training settings it ran with)."""

    m: int
    kind: str
    widths: list[int]
    label: str
    seed: int
    steps: int
    train_loss: float
    test_loss: float
    regions: int
    pieces: int
    count_method: str
    target_pieces: int
    flops: int
    parameters: int
    seconds: float
    model_file: str
    settings: dict[str, Any]
    along_training: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def settings_of(experiment: Experiment) -> dict[str, Any]:
    """The settings a run's result depends on (a stored run with other settings is run again)."""
    return {"steps": experiment.steps, "lr": experiment.lr, "train_points": experiment.train_points,
            "test_points": experiment.test_points, "checkpoints": experiment.checkpoints}


def _module(net: NetSpec) -> nn.Module:
    """A fresh float32 module of the architecture, a triangular :class:`ReLUDEQ` or a Linear/ReLU chain, whose
    first map puts the kinks of its units at uniform random points of [0, 1] (weight +-1, bias -+k, k ~ U(0, 1));
    the rest keeps PyTorch's default initialisation.  (With the default first layer too, almost no kink falls
    inside [0, 1] and every net stays near the constant 1/2.)"""
    if net.kind == "deq":
        module: nn.Module = ReLUDEQ(1, net.widths[0], dtype=torch.float32)
        first = module.U
    else:
        module = relu_chain(1, net.widths)
        first = module[0]
    assert isinstance(first, nn.Linear)
    with torch.no_grad():
        n = first.weight.shape[0]
        sign = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
        first.weight.copy_(sign[:, None])
        first.bias.copy_(-sign * torch.rand(n))
    return module


def _as_model(module: nn.Module, name: str) -> Model:
    """The trained module as a float64 model (its float32 weights converted exactly)."""
    return module.to_model(name) if isinstance(module, ReLUDEQ) else chain_to_ffn(module, name)


def checkpoint_steps(experiment: Experiment) -> list[int]:
    """The steps whose snapshots are kept: 0 and ``checkpoints`` evenly spaced ones up to the last (none
    when ``checkpoints`` is 0)."""
    k = experiment.checkpoints
    return [] if k == 0 else sorted({round(i * experiment.steps / k) for i in range(k + 1)})


def train(net: NetSpec, m: int, seed: int, experiment: Experiment
          ) -> tuple[Model, float, int, list[tuple[int, Model, float]]]:
    """Fit ``net`` to T^m (module docstring): the float64 model, its last training loss, the steps taken, and
    the snapshots (step, model, training loss there) at :func:`checkpoint_steps`.  Seeded by ``seed`` on a
    forked random state (the caller's is left as it was)."""
    keep = set(checkpoint_steps(experiment))
    snapshots: list[tuple[int, Model, float]] = []
    name = f"{net.key}-m{m}-s{seed}"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = _module(net)
        x = torch.linspace(0.0, 1.0, experiment.train_points, dtype=DTYPE)[:, None]
        y = sawtooth(x, m)
        x, y = x.float(), y.float()
        optimizer = torch.optim.Adam(module.parameters(), lr=experiment.lr)
        loss = torch.zeros(())
        for step in range(experiment.steps + 1):
            loss = torch.mean((module(x) - y) ** 2)
            if step in keep:
                snapshots.append((step, _as_model(module, f"{name}-step{step}"), loss.item()))
            if step == experiment.steps:
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return _as_model(module, name), loss.item(), experiment.steps, snapshots


def _along_training(snapshots: list[tuple[int, Model, float]], stem: str, folder: Path, device: str
                    ) -> list[dict[str, Any]]:
    """Each snapshot saved (``folder``/models/STEM-stepN.json, a series ``regioncount track`` reads) and its
    regions and pieces on [0, 1] counted exactly from the file."""
    rows = []
    for step, model, loss in snapshots:
        path = folder / "models" / f"{stem}-step{step}.json"
        save_model(model, path)
        count = count_segment(load_network(path), interval=(0.0, 1.0), device=device)
        rows.append({"step": step, "train_loss": loss, "regions": count.activation_regions,
                     "pieces": count.linear_pieces, "count_method": count.method,
                     "model_file": str(path.relative_to(folder))})
    return rows


def test_loss(model: Model, m: int, points: int) -> float:
    """Float64 MSE of ``model`` against T^m at the midpoints (i + 1/2) / points, i = 0 .. points - 1."""
    x = ((torch.arange(points, dtype=DTYPE) + 0.5) / points)[:, None]
    with torch.no_grad():
        return float(torch.mean((model.forward(x) - sawtooth(x, m)) ** 2))


def run_one(key: RunKey, experiment: Experiment, folder: Path, device: str = "cpu") -> RunResult:
    """Train, save (``folder``/models/STEM.json), reload, test and count one run."""
    start = time.perf_counter()
    model, train_loss, steps, snapshots = train(key.net, key.m, key.seed, experiment)
    model_file = folder / "models" / f"{key.stem}.json"
    model_file.parent.mkdir(parents=True, exist_ok=True)
    along = _along_training(snapshots, key.stem, folder, device)
    save_model(model, model_file)
    saved = load_network(model_file)  # the file is the result: test and count what a reader will load
    count = count_segment(saved, interval=(0.0, 1.0), device=device)
    assert count.linear_pieces is not None  # pieces are counted by default
    parameters = sum(t.numel() for t in (saved.weights + saved.biases)) if isinstance(saved, FFN) else \
        sum(t.numel() for t in (saved.W, saved.U, saved.b, saved.A, saved.c))
    return RunResult(m=key.m, kind=key.net.kind, widths=list(key.net.widths), label=key.net.label, seed=key.seed,
                     steps=steps, train_loss=train_loss, test_loss=test_loss(saved, key.m, experiment.test_points),
                     regions=count.activation_regions, pieces=count.linear_pieces, count_method=count.method,
                     target_pieces=2 ** key.m, flops=key.net.flops(), parameters=int(parameters),
                     seconds=time.perf_counter() - start, model_file=str(model_file.relative_to(folder)),
                     settings=settings_of(experiment), along_training=along)
