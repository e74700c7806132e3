"""The empirical side of Theorem 1: train FFNs of the family to fit the sawtooth T^m and measure their error.

Errors are exact for the trained (float64) network: both T^m and the FFN g are continuous piecewise
linear on [0, 1], so on the union of their breakpoints (k / 2^m and g's exact breakpoints) the difference
is affine on every sub-interval and its L1 integral and maximum are computed in closed form.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch import nn

from ..line.exact1d import count_segment
from ..models.networks import DTYPE, FFN
from ..models.nn import chain_to_ffn, relu_chain


def sawtooth(x: torch.Tensor, m: int) -> torch.Tensor:
    """T^m(x) for x in [0, 1] (exact in float64: 2y and 2 - 2y are exact for y in [0, 1])."""
    y = x.clone()
    for _ in range(m):
        y = torch.where(y <= 0.5, 2 * y, 2 - 2 * y)
    return y


@dataclass(frozen=True)
class SawtoothErrors:
    """L1 and L-infinity distances of an FFN to T^m on [0, 1], its regions and pieces there.  ``exact``: the
    distances are exact rationals (rational count and closed-form integration); otherwise float64
    evaluations at the float breakpoints (when the rational count is over its budget)."""

    l1: Fraction | float
    linf: Fraction | float
    regions: int
    pieces: int
    exact: bool


#: Rational operations allowed for the exact errors of one trained net (about a second).
EXACT_ERRORS_BUDGET = 3e7


def exact_errors(model: FFN, m: int) -> SawtoothErrors:
    """The distances of ``model`` to T^m on [0, 1]: exact (:func:`regioncount.theory.family.exact_errors_to_sawtooth`
    on the rational count) when its cost fits :data:`EXACT_ERRORS_BUDGET`, else float64."""
    from ..exact.rational1d import exact_count, rational_cost
    from .family import exact_errors_to_sawtooth

    count = count_segment(model, interval=(0.0, 1.0), keep_breakpoints=True)
    assert count.linear_pieces is not None and count.breakpoints is not None  # counted with pieces, kept
    if rational_cost(model, count.activation_regions) <= EXACT_ERRORS_BUDGET:
        exact = exact_count(model, [0.0], [1.0], 0.0, 1.0)
        l1, linf = exact_errors_to_sawtooth(model, m, exact)
        return SawtoothErrors(l1, linf, exact.activation_regions, exact.linear_pieces, True)
    points = np.union1d(np.concatenate([[0.0, 1.0], count.breakpoints]), np.arange(1, 2**m) / 2**m)
    x = torch.from_numpy(points)[:, None]
    diff = (sawtooth(x, m) - model.forward(x))[:, 0].numpy()
    h = np.diff(points)
    left, right = diff[:-1], diff[1:]
    same_sign = left * right >= 0
    area = np.where(same_sign, (np.abs(left) + np.abs(right)) / 2 * h,
                    (left**2 + right**2) / (2 * np.maximum(np.abs(left) + np.abs(right), 1e-300)) * h)
    return SawtoothErrors(float(area.sum()), float(np.abs(diff).max()), count.activation_regions,
                          count.linear_pieces, False)


def _compare(a: Fraction | float, b: Fraction, exact: bool) -> int | None:
    """The sign of a - b: exact, or for a float ``a`` only when the gap exceeds its rounding (else None)."""
    if exact:
        return (a > b) - (a < b)
    margin = 1e-9 * max(abs(float(b)), 1e-300)
    return 1 if a > float(b) + margin else -1 if a < float(b) - margin else None


@dataclass
class TrainedNet:
    depth: int
    width: int
    steps: int
    seconds: float
    model: FFN


def train_sawtooth_ffn(m: int, depth: int, width: int, *, steps: int = 3000, time_budget: float = 10.0,
                       seed: int = 0, device: str | torch.device = "cpu", lr: float = 3e-3,
                       progress: Callable[[float], None] | None = None, init: FFN | None = None) -> TrainedNet:
    """Fit an FFN (``depth`` hidden layers of ``width``) to T^m on [0, 1] with Adam on an MSE loss.

    Float32 training on a uniform grid of max(4096, 2^(m+3)) points plus the kinks k / 2^m; stops after
    ``steps`` steps or ``time_budget`` seconds, whichever comes first; returns the float64 model.  ``init``:
    start from this FFN (same depth, widths <= ``width``; zero-padded, so the starting function is the same).
    """
    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's random state
        torch.manual_seed(seed)
        return _fit_sawtooth(m, depth, width, steps, time_budget, torch.device(device), lr, progress, init)


def _fit_sawtooth(m: int, depth: int, width: int, steps: int, time_budget: float, device: torch.device, lr: float,
                  progress: Callable[[float], None] | None, init: FFN | None) -> TrainedNet:
    """The body of :func:`train_sawtooth_ffn`, on the already seeded random state."""
    net = relu_chain(1, [width] * depth)
    if init is not None:
        _embed(list(net), init, width)
    net = net.to(device)
    n_points = max(4096, 2 ** (m + 3))
    x = torch.linspace(0, 1, n_points, dtype=DTYPE)[:, None]
    y = sawtooth(x, m)
    x, y = x.float().to(device), y.float().to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    start = time.perf_counter()
    done = 0
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = torch.mean((net(x) - y) ** 2)
        loss.backward()
        optimizer.step()
        done = step + 1
        elapsed = time.perf_counter() - start
        if progress is not None and step % 25 == 0:
            progress(min(1.0, max(done / steps, elapsed / time_budget)))
        if elapsed > time_budget:
            break
    if progress is not None:
        progress(1.0)
    return TrainedNet(depth, width, done, time.perf_counter() - start, chain_to_ffn(net, f"trained-L{depth}-w{width}"))


def _embed(layers: list[nn.Module], init: FFN, width: int) -> None:
    """Copy ``init``'s weights into the zero-initialised Linear layers (extra units get zero weights)."""
    linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
    if len(linears) != len(init.weights) or max(init.hidden_widths or [0]) > width:
        raise ValueError("the initial FFN does not fit the trained architecture")
    with torch.no_grad():
        for layer, w, b in zip(linears, init.weights, init.biases):
            layer.weight.zero_()
            layer.bias.zero_()
            layer.weight[: w.shape[0], : w.shape[1]] = w.float()
            layer.bias[: b.shape[0]] = b.float()


def train_in_family(m: int, depth: int, width: int, *, seeds: int = 2, steps: int = 2000, time_budget: float = 10.0,
                    device: str | torch.device = "cpu",
                    progress: Callable[[float], None] | None = None) -> dict:
    """Train the (depth, width) FFN to fit T^m from ``seeds`` random inits and from the explicit in-family
    approximant (:func:`regioncount.theory.family.teeth_approximant`); report the best by exact L1 error, where
    it lies in the family's bracket, and whether it is worse than the approximant it could have stayed at."""
    from .family import MAX_APPROXIMANT_TEETH_EXPONENT, exact_errors_to_sawtooth, teeth_approximant

    starts: list[tuple[str, FFN | None, int]] = [(f"random (seed {s})", None, s) for s in range(seeds)]
    constructed: Fraction | None = None
    if width >= 2 and m >= 2:
        approximant, _ = teeth_approximant(m, depth, width, MAX_APPROXIMANT_TEETH_EXPONENT)
        constructed = exact_errors_to_sawtooth(approximant, m)[0]
        starts.append(("constructed approximant", approximant, 0))
    results: list[dict[str, Any]] = []
    for k, (label, init, seed) in enumerate(starts):
        tick = None if progress is None else (lambda f, k=k: progress((k + f) / len(starts)))
        net = train_sawtooth_ffn(m, depth, width, steps=steps, time_budget=time_budget, seed=seed, device=device,
                                 progress=tick, init=init)
        errors = exact_errors(net.model, m)
        results.append({"init": label, "steps": net.steps, "seconds": net.seconds, "errors": errors})
    best = min(results, key=lambda r: r["errors"].l1)
    report = {"depth": depth, "width": width, **{k: v for k, v in best.items() if k != "errors"}}
    return report | _against_the_bracket(m, best["errors"], constructed) | {
        "starts": len(starts), "all_l1_errors": [float(r["errors"].l1) for r in results]}


def _against_the_bracket(m: int, err: SawtoothErrors, constructed: Fraction | None) -> dict[str, Any]:
    """The best trained net's errors against the family's L1 bracket: the lower bound every in-family FFN
    obeys and the explicit approximant's error (``constructed``, None when there is none)."""
    from .family import l1_lower_bound

    lower = l1_lower_bound(m, err.pieces)
    to_bound = _compare(err.l1, lower, err.exact)
    to_constructed = None if constructed is None else _compare(err.l1, constructed, err.exact)
    out = {"l1_error": float(err.l1), "linf_error": float(err.linf), "regions": err.regions,
           "linear_pieces": err.pieces, "errors_method": "exact" if err.exact else "float64",
           "l1_lower_bound": float(lower), "above_bound": None if to_bound is None else to_bound >= 0,
           "constructed_l1_error": None if constructed is None else float(constructed),
           "worse_than_constructed": None if to_constructed is None else to_constructed > 0}
    if err.exact:
        out["l1_error_exact"] = str(err.l1)
    if constructed is not None and constructed > lower:
        out["bracket_position"] = float((Fraction(err.l1) - lower) / (constructed - lower))
    return out


def training_settings(max_depth: int, max_width: int, width_cap: int = 64) -> list[tuple[int, int]]:
    """A few (L, w) inside the family: depths 1, the middle and L_max, at width min(w_max, width_cap)."""
    width = max(1, min(max_width, width_cap))
    depths = sorted({1, max(1, math.ceil(max_depth / 2)), max_depth})
    return [(depth, width) for depth in depths]


def compare_row(m: int, alpha: Any, *, construct_budget: int, device: str, construct_seconds: float | None,
                training: dict[str, Any] | None = None, progress: Callable[[float], None] | None = None) -> Any:
    """One row of ``regioncount compare`` (:func:`regioncount.theory.separation.compare_width`), with, when
    ``training`` is given (``max_m``, ``steps``, ``seeds``, ``time_budget``, ``width_cap``) and ``m <=
    max_m``, the FFNs of the family trained to fit T^m attached as ``row.trained``.  A plain function of
    plain data: a compare sweep runs its rows as tasks (:mod:`regioncount.parallel.many`)."""
    from .separation import compare_width

    row = compare_width(m, alpha, construct_budget=construct_budget, device=device,
                        construct_seconds=construct_seconds)
    if training is not None and m <= training["max_m"]:
        settings = training_settings(row.max_depth, row.max_width, training["width_cap"])
        n = len(settings)
        for k, (depth, width) in enumerate(settings):
            # the progress advances smoothly through each network's training
            tick = None if progress is None else (lambda f, k=k: progress((k + f) / n))
            row.trained.append(train_in_family(
                m, depth, width, seeds=training["seeds"], steps=training["steps"],
                time_budget=training["time_budget"], device=device if device != "auto" else "cpu", progress=tick))
    return row
