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

import numpy as np
import torch
from torch import nn

from .exact1d import count_segment
from .models import DTYPE, FFN


def sawtooth(x: torch.Tensor, m: int) -> torch.Tensor:
    """T^m(x) for x in [0, 1] (exact in float64: 2y and 2 - 2y are exact for y in [0, 1])."""
    y = x.clone()
    for _ in range(m):
        y = torch.where(y <= 0.5, 2 * y, 2 - 2 * y)
    return y


def exact_errors(model: FFN, m: int) -> tuple[float, float, int, int]:
    """(L1 error, L-infinity error, activation regions, linear pieces) of ``model`` against T^m on [0, 1]."""
    count = count_segment(model, interval=(0.0, 1.0), keep_breakpoints=True)
    points = np.union1d(np.concatenate([[0.0, 1.0], count.breakpoints]), np.arange(1, 2**m) / 2**m)
    x = torch.from_numpy(points)[:, None]
    diff = (sawtooth(x, m) - model.forward(x))[:, 0].numpy()
    h = np.diff(points)
    left, right = diff[:-1], diff[1:]
    same_sign = left * right >= 0
    area = np.where(same_sign, (np.abs(left) + np.abs(right)) / 2 * h,
                    (left**2 + right**2) / (2 * np.maximum(np.abs(left) + np.abs(right), 1e-300)) * h)
    assert count.linear_pieces is not None  # counted with linear pieces (the default)
    return float(area.sum()), float(np.abs(diff).max()), count.activation_regions, count.linear_pieces


@dataclass
class TrainedNet:
    depth: int
    width: int
    steps: int
    seconds: float
    model: FFN


def train_sawtooth_ffn(m: int, depth: int, width: int, *, steps: int = 3000, time_budget: float = 10.0,
                       seed: int = 0, device: str | torch.device = "cpu", lr: float = 3e-3,
                       progress: Callable[[float], None] | None = None) -> TrainedNet:
    """Fit an FFN (``depth`` hidden layers of ``width``) to T^m on [0, 1] with Adam on an MSE loss.

    Float32 training on a uniform grid of max(4096, 2^(m+3)) points plus the kinks k / 2^m; stops after
    ``steps`` steps or ``time_budget`` seconds, whichever comes first; returns the float64 model.
    """
    torch.manual_seed(seed)
    device = torch.device(device)
    layers: list[nn.Module] = []
    fan_in = 1
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 1))
    net = nn.Sequential(*layers).to(device)
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
    linears = [layer for layer in net if isinstance(layer, nn.Linear)]
    model = FFN([layer.weight.detach().cpu().double() for layer in linears],
                [layer.bias.detach().cpu().double() for layer in linears], name=f"trained-L{depth}-w{width}")
    return TrainedNet(depth, width, done, time.perf_counter() - start, model)


def training_settings(max_depth: int, max_width: int, width_cap: int = 64) -> list[tuple[int, int]]:
    """A few (L, w) inside the family: depths 1, the middle and L_max, at width min(w_max, width_cap)."""
    width = max(1, min(max_width, width_cap))
    depths = sorted({1, max(1, math.ceil(max_depth / 2)), max_depth})
    return [(depth, width) for depth in depths]
