"""The operators of a graph model: affine ones and piecewise-linear ones, each on float64 batches and exactly.

Every tensor carries a leading batch axis; a node's per-sample shape is fixed when the graph is built.
Affine operators (``y = L(x) + b``) offer ``forward`` (the whole map), ``linear`` (``L`` alone, what a
direction goes through) and ``exact`` (either, on :class:`~regioncount.graph.scaled.Scaled` integers).
Convolutions run as ``torch.nn.functional`` convolutions on floats and, exactly, as integer products of their
weight with gathered input windows; no operator is ever densified into a matrix.

Piecewise-linear operators act on the flattened units of one input:

* :class:`Elementwise`: ``y_j = alpha_k u_j + beta_k`` where ``k = #{i : u_j > theta_i}`` counts the
  thresholds below ``u_j`` (ReLU, leaky ReLU, PReLU, absolute value, hard-tanh); the unit's state is ``k``.
* :class:`MaxGroups`: ``y_g = max_k x[index[g, k]]`` (max pooling, maxout); the state is the first index
  attaining the maximum.

A state read on an open set is the pattern of ``docs/graphs.md``; ``constraints`` gives, for fixed states, the
affine quantities that must be positive (strict) or non-negative there, exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F

from .scaled import Scaled, concatenate

Tensor = torch.Tensor
#: Relative bound on one float64 rounding (with room for the bound's own rounding).
ROUND = 2.0**-52


def window_index(shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int], dilation: tuple[int, int]) -> tuple[Tensor, tuple[int, ...]]:
    """Flat input indices of every sliding window of a (C, H, W) or (C, L) input: (C * kh * kw, H' W') with
    -1 where the window reads padding (channel-major rows, as ``F.unfold``), and the output's (H', W')."""
    image = shape if len(shape) == 3 else (shape[0], 1, shape[1])
    numbers = torch.arange(1, math.prod(image) + 1, dtype=torch.float64).reshape(1, *image)
    cols = F.unfold(numbers, kernel, dilation=dilation, padding=padding, stride=stride)[0]
    h_out = (image[1] + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    w_out = (image[2] + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    out = (h_out, w_out) if len(shape) == 3 else (w_out,)
    return cols.round().long() - 1, out


def _padded(x: Tensor, fill: float) -> Tensor:
    """(B, N) -> (B, N + 1): a last column ``fill`` that index -1 reads."""
    return torch.cat([x, x.new_full((x.shape[0], 1), fill)], dim=1)


def _padded_exact(x: Scaled) -> Scaled:
    return Scaled(np.concatenate([x.ints, np.zeros((x.ints.shape[0], 1), dtype=object)], axis=1), x.den)


# --------------------------------------------------------------------------------------------- affine


class Affine:
    """An affine operator ``y = L(x_1, ..., x_n) + b``."""

    piecewise = False
    macs = 0  # multiply-adds per sample
    #: terms of the longest sum behind one output (its rounding bound is gamma(fan_in) times the magnitudes);
    #: 0: the operator only moves numbers (no rounding at all)
    fan_in = 1

    def forward(self, xs: list[Tensor]) -> Tensor:
        raise NotImplementedError

    def linear(self, xs: list[Tensor]) -> Tensor:
        return self.forward(xs)

    def magnitude(self, xs: list[Tensor]) -> Tensor:
        """``|L|`` applied to non-negative inputs: the linear part with every coefficient made absolute."""
        return self.linear(xs)

    def bias_magnitude(self) -> Tensor | float:
        """``|b|``, broadcastable to the output (B, *shape)."""
        return 0.0

    def exact(self, xs: list[Scaled], constant: bool) -> Scaled:
        raise NotImplementedError


@dataclass
class Dense(Affine):
    """``y = x W^T + b`` on the last axis; weight (o, n), bias (o,)."""

    weight: Tensor
    bias: Tensor
    name: str = "Linear"

    def __post_init__(self) -> None:
        self.macs = self.weight.numel()
        self.fan_in = self.weight.shape[1] + 1
        self._w, self._b = Scaled.of_tensor(self.weight.T), Scaled.of_tensor(self.bias)

    def magnitude(self, xs: list[Tensor]) -> Tensor:
        return F.linear(xs[0], self.weight.abs())

    def bias_magnitude(self) -> Tensor:
        return self.bias.abs()

    def forward(self, xs: list[Tensor]) -> Tensor:
        return F.linear(xs[0], self.weight, self.bias)

    def linear(self, xs: list[Tensor]) -> Tensor:
        return F.linear(xs[0], self.weight)

    def exact(self, xs: list[Scaled], constant: bool) -> Scaled:
        product = Scaled(np.matmul(xs[0].ints, self._w.ints), xs[0].den * self._w.den)
        return product + self._b if constant else product


@dataclass
class Conv(Affine):
    """``torch.nn.functional.conv1d/conv2d`` of a (C, L) or (C, H, W) input: weight (O, C / groups, *kernel)."""

    weight: Tensor
    bias: Tensor
    in_shape: tuple[int, ...]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    out_shape: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        two_d = self.weight.dim() == 4
        kernel = (self.weight.shape[2], self.weight.shape[3]) if two_d else (1, self.weight.shape[2])
        self._index, spatial = window_index(self.in_shape, kernel, self.stride, self.padding, self.dilation)
        self.out_shape = (self.weight.shape[0], *spatial)
        self.macs = self.weight[0].numel() * math.prod(self.out_shape)
        self.fan_in = self.weight[0].numel() + 1
        self._w = Scaled.of_tensor(self.weight.reshape(self.weight.shape[0], -1))
        self._b = Scaled.of_tensor(self.bias.reshape(-1, 1))

    def _conv(self, x: Tensor, bias: Tensor | None, weight: Tensor | None = None) -> Tensor:
        weight = self.weight if weight is None else weight
        if weight.dim() == 4:
            return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)
        return F.conv1d(x, weight, bias, self.stride[1], self.padding[1], self.dilation[1], self.groups)

    def magnitude(self, xs: list[Tensor]) -> Tensor:
        return self._conv(xs[0], None, self.weight.abs())

    def bias_magnitude(self) -> Tensor:
        return self.bias.abs().reshape((-1,) + (1,) * (self.weight.dim() - 2))

    def forward(self, xs: list[Tensor]) -> Tensor:
        return self._conv(xs[0], self.bias)

    def linear(self, xs: list[Tensor]) -> Tensor:
        return self._conv(xs[0], None)

    def exact(self, xs: list[Scaled], constant: bool) -> Scaled:
        x = xs[0]
        cols = _padded_exact(x.reshape(x.shape[0], -1)).ints[:, self._index.numpy()]  # (B, C k, L)
        groups, rows = self.groups, self._w.ints.shape[0] // self.groups
        width = cols.shape[1] // groups
        parts = [np.matmul(self._w.ints[g * rows:(g + 1) * rows], cols[:, g * width:(g + 1) * width])
                 for g in range(groups)]
        product = Scaled(np.concatenate(parts, axis=1), x.den * self._w.den)
        if constant:
            product = product + self._b
        return product.reshape(x.shape[0], *self.out_shape)


@dataclass
class ChannelAffine(Affine):
    """``y[c, ...] = scale[c] x[c, ...] + shift[c]`` (an eval-mode batch norm, folded in float64)."""

    scale: Tensor
    shift: Tensor
    ndim: int

    def __post_init__(self) -> None:
        view = (-1,) + (1,) * (self.ndim - 1)
        self._scale, self._shift = self.scale.reshape(view), self.shift.reshape(view)
        self._s, self._t = Scaled.of_tensor(self._scale), Scaled.of_tensor(self._shift)

    def forward(self, xs: list[Tensor]) -> Tensor:
        return xs[0] * self._scale + self._shift

    def linear(self, xs: list[Tensor]) -> Tensor:
        return xs[0] * self._scale

    def magnitude(self, xs: list[Tensor]) -> Tensor:
        return xs[0] * self._scale.abs()

    def bias_magnitude(self) -> Tensor:
        return self._shift.abs()

    def exact(self, xs: list[Scaled], constant: bool) -> Scaled:
        product = xs[0].times(self._s)
        return product + self._t if constant else product


@dataclass
class WindowAverage(Affine):
    """Average pooling: ``y_j = (sum_k x[index[j, k]]) / divisor`` (padding reads 0); index (n_out, K)."""

    index: Tensor
    divisor: int
    out_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        self.fan_in = self.index.shape[1] + 1

    def forward(self, xs: list[Tensor]) -> Tensor:
        x = xs[0].reshape(xs[0].shape[0], -1)
        return (_padded(x, 0.0)[:, self.index].sum(dim=2) / self.divisor).reshape(-1, *self.out_shape)

    def exact(self, xs: list[Scaled], constant: bool) -> Scaled:
        x = xs[0].reshape(xs[0].shape[0], -1)
        sums = _padded_exact(x).ints[:, self.index.numpy()].sum(axis=2)
        return Scaled(sums, x.den * self.divisor).reshape(-1, *self.out_shape)


@dataclass
class Combination(Affine):
    """``y = sum_i a_i x_i`` with exact rational coefficients (residual additions, differences, scalings)."""

    coefficients: tuple[Fraction, ...]

    def __post_init__(self) -> None:
        self.fan_in = len(self.coefficients) + 1  # + 1: a coefficient like 1/3 is itself rounded

    def magnitude(self, xs: list[Tensor]) -> Tensor:
        total = xs[0] * abs(float(self.coefficients[0]))
        for a, x in zip(self.coefficients[1:], xs[1:]):
            total = total + x * abs(float(a))
        return total

    def forward(self, xs: list[Tensor]) -> Tensor:
        total = xs[0] * float(self.coefficients[0]) if self.coefficients[0] != 1 else xs[0]
        for a, x in zip(self.coefficients[1:], xs[1:]):
            total = total + (x * float(a) if a != 1 else x)
        return total

    def exact(self, xs: list[Scaled], constant: bool) -> Scaled:
        parts = [Scaled(x.ints * a.numerator, x.den * a.denominator) for a, x in zip(self.coefficients, xs)]
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total


@dataclass
class Offset(Affine):
    """``y = x + b`` with a constant b of the per-sample shape (a bias added on its own)."""

    value: Tensor

    def __post_init__(self) -> None:
        self._b = Scaled.of_tensor(self.value.unsqueeze(0))

    def forward(self, xs: list[Tensor]) -> Tensor:
        return xs[0] + self.value.to(xs[0].device)

    def linear(self, xs: list[Tensor]) -> Tensor:
        return xs[0]

    def bias_magnitude(self) -> Tensor:
        return self.value.abs()

    def exact(self, xs: list[Scaled], constant: bool) -> Scaled:
        return xs[0] + self._b if constant else xs[0]


@dataclass
class Concat(Affine):
    """Concatenation along a per-sample axis (0: channels)."""

    axis: int
    fan_in = 0

    def forward(self, xs: list[Tensor]) -> Tensor:
        return torch.cat(xs, dim=self.axis + 1)

    def exact(self, xs: list[Scaled], constant: bool) -> Scaled:
        return concatenate(xs, axis=self.axis + 1)


@dataclass
class Reshape(Affine):
    """A new per-sample shape (flatten, view, reshape) of the same entries in the same order."""

    shape: tuple[int, ...]
    fan_in = 0

    def forward(self, xs: list[Tensor]) -> Tensor:
        return xs[0].reshape(xs[0].shape[0], *self.shape)

    def exact(self, xs: list[Scaled], constant: bool) -> Scaled:
        return xs[0].reshape(xs[0].shape[0], *self.shape)


# --------------------------------------------------------------------------------------------- piecewise


class Piecewise:
    """A continuous piecewise-linear operator of one input, with a state per output unit."""

    piecewise = True
    macs = 0
    state_bits = 1  # bits of one unit's state in a pattern: (state > i) for i < state_bits

    def states(self, u: Tensor) -> Tensor:
        """(B, n_in) -> (B, n_states) int64: the state of every unit at the points u."""
        raise NotImplementedError

    def kinks(self, c: Tensor, s: Tensor) -> Tensor:
        """Where the state may change along ``u(t) = c + s t``: (B, n_in) -> (B, m) t values (nan: none)."""
        raise NotImplementedError

    def select(self, c: Tensor, s: Tensor, states: Tensor) -> tuple[Tensor, Tensor]:
        """The output map ``(c', s')`` (B, n_out) for fixed states."""
        raise NotImplementedError

    def exact_select(self, c: Scaled, s: Scaled, states: np.ndarray) -> tuple[Scaled, Scaled]:
        raise NotImplementedError

    def constraints(self, c: Scaled, s: Scaled, states: np.ndarray) -> tuple[Scaled, Scaled, np.ndarray]:
        """Quantities ``q = qc + qs t`` (B, m) that the states require to be > 0 where ``strict`` (B, m) and
        >= 0 elsewhere, on the open interval where the states hold."""
        raise NotImplementedError

    def select_errors(self, c: Tensor, s: Tensor, ec: Tensor, es: Tensor, states: Tensor
                      ) -> tuple[Tensor, Tensor]:
        """Bounds (B, n_out) on the errors of ``select``'s output maps, from the input maps' bounds."""
        raise NotImplementedError

    def float_constraints(self, c: Tensor, s: Tensor, ec: Tensor, es: Tensor, states: Tensor
                          ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``constraints`` in float64, laid out the same: qc, qs (B, m), their error bounds, and strict."""
        raise NotImplementedError

    def exact_kinks(self, c: Scaled, s: Scaled) -> tuple[np.ndarray, np.ndarray]:
        """Every t where a state may change along the exact map of one piece (c, s: (1, n)): numerators and
        denominators (m,) of the candidates, denominators positive (none where the map is parallel)."""
        raise NotImplementedError

    def exact_states(self, values: np.ndarray, dens: np.ndarray) -> np.ndarray:
        """The states (B, n_states) at exact points: input values ``values / dens`` ((B, n) ints, (B, 1) ints)."""
        raise NotImplementedError

    def forward(self, xs: list[Tensor]) -> Tensor:
        u = xs[0].reshape(xs[0].shape[0], -1)
        out, _ = self.select(u, torch.zeros_like(u), self.states(u))
        return out

    def select_plane(self, maps: tuple[Tensor, ...], errors: tuple[Tensor, ...] | None, states: Tensor
                     ) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...] | None]:
        """``select`` and ``select_errors`` of plane maps ``(c, g_s, g_t)`` (B, n_in) each and their bounds
        (None: no bounds), at once."""
        c, gs, gt = maps
        oc, ogs = self.select(c, gs, states)
        out = (oc, ogs, self.select(c, gt, states)[1])
        if errors is None:
            return out, None
        ec, es, et = errors
        oec, oes = self.select_errors(c, gs, ec, es, states)
        return out, (oec, oes, self.select_errors(c, gt, ec, et, states)[1])


def _fractions(num: np.ndarray, den: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop zero denominators and make the others positive."""
    keep = den != 0
    num, den = num[keep], den[keep]
    negative = den < 0
    return np.where(negative, -num, num), np.where(negative, -den, den)


@dataclass
class Elementwise(Piecewise):
    """``y = alpha_k u + beta_k`` with ``k = #{i : u > theta_i}``; slopes and intercepts (r + 1, n) per unit."""

    thresholds: tuple[float, ...]
    slopes: Tensor
    intercepts: Tensor
    label: str = "ReLU"

    def __post_init__(self) -> None:
        self.state_bits = len(self.thresholds)
        self._theta = torch.tensor(self.thresholds, dtype=torch.float64)
        self._alpha, self._beta = Scaled.of_tensor(self.slopes), Scaled.of_tensor(self.intercepts)
        self._thresholds = [Scaled.of_tensor(torch.tensor([theta], dtype=torch.float64)) for theta in self.thresholds]
        # alpha c + beta is exact for alpha = 0 (the intercept as stored) and for the identity (1, 0): the states
        # whose output adds no rounding
        self._rounding = ROUND * ((self.slopes != 0) & ((self.slopes != 1) | (self.intercepts != 0))).to(torch.float64)

    def states(self, u: Tensor) -> Tensor:
        out = (u > self.thresholds[0]).long()
        for theta in self.thresholds[1:]:
            out += u > theta
        return out

    def kinks(self, c: Tensor, s: Tensor) -> Tensor:
        theta = self._theta.to(c.device)
        return ((theta - c.unsqueeze(-1)) / s.unsqueeze(-1)).reshape(c.shape[0], -1)  # s = 0: inf or nan

    def select(self, c: Tensor, s: Tensor, states: Tensor) -> tuple[Tensor, Tensor]:
        alpha = self._pick(self.slopes.to(c.device), states)
        beta = self._pick(self.intercepts.to(c.device), states)
        return alpha * c + beta, alpha * s

    @staticmethod
    def _pick(table: Tensor, states: Tensor) -> Tensor:
        """table (r + 1, n or 1), states (B, n) -> table[states[b, j], j] (B, n)."""
        if table.shape[0] <= 4:  # a few states: selects, cheaper than a gather
            out = torch.where(states == 1, table[1], table[0])
            for k in range(2, table.shape[0]):
                out = torch.where(states == k, table[k], out)
            return out
        n = states.shape[1]
        return table.reshape(-1)[states * n + torch.arange(n, device=states.device)]

    def exact_select(self, c: Scaled, s: Scaled, states: np.ndarray) -> tuple[Scaled, Scaled]:
        alpha = _pick_exact(self._alpha.ints, states)
        beta = _pick_exact(self._beta.ints, states)
        slope = Scaled(alpha * s.ints, self._alpha.den * s.den)
        value = Scaled(alpha * c.ints, self._alpha.den * c.den) + Scaled(beta, self._beta.den)
        return value, slope

    def constraints(self, c: Scaled, s: Scaled, states: np.ndarray) -> tuple[Scaled, Scaled, np.ndarray]:
        qc, qs, strict = [], [], []
        for i, theta in enumerate(self._thresholds):
            above = states > i  # u > theta_i required; else u <= theta_i, i.e. theta_i - u >= 0
            sign = np.where(above, 1, -1).astype(object)
            diff = c - Scaled(np.full((1, 1), theta.ints[0], dtype=object), theta.den)
            qc.append(Scaled(diff.ints * sign, diff.den))
            qs.append(Scaled(s.ints * sign, s.den))
            strict.append(above)
        return concatenate(qc, 1), concatenate(qs, 1), np.concatenate(strict, axis=1)


    def select_errors(self, c: Tensor, s: Tensor, ec: Tensor, es: Tensor, states: Tensor
                      ) -> tuple[Tensor, Tensor]:
        alpha = self._pick(self.slopes.abs().to(c.device), states)
        value, slope = self._selected_bounds(alpha, None, c, ec, [(s, es)], states)
        return value, slope

    def select_plane(self, maps: tuple[Tensor, ...], errors: tuple[Tensor, ...] | None, states: Tensor
                     ) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...] | None]:
        c, gs, gt = maps
        alpha = self._pick(self.slopes.to(c.device), states)
        beta = self._pick(self.intercepts.to(c.device), states)
        out = (alpha * c + beta, alpha * gs, alpha * gt)
        if errors is None:
            return out, None
        ec, es, et = errors
        return out, self._selected_bounds(alpha.abs(), beta.abs(), c, ec, [(gs, es), (gt, et)], states)

    def _selected_bounds(self, size: Tensor, beta: Tensor | None, c: Tensor, ec: Tensor,
                         slopes: list[tuple[Tensor, Tensor]], states: Tensor) -> tuple[Tensor, ...]:
        """Bounds of ``alpha c + beta`` and of ``alpha s`` for each (s, its bound) of ``slopes``, given
        ``size`` = |alpha| (and |beta|, picked here if None) of each entry's state: |alpha| times the input's
        bounds, plus the rounding of the states whose output is not exact."""
        if not bool(self._rounding.any()):  # every state's output is exact: only the input's bounds pass
            return (size * ec, *(size * e for _, e in slopes))
        rounds = self._pick(self._rounding.to(c.device), states)
        if beta is None:
            beta = self._pick(self.intercepts.abs().to(c.device), states)
        return (size * ec + rounds * (size * c.abs() + beta),
                *(size * e + rounds * size * s.abs() for s, e in slopes))

    def float_constraints(self, c: Tensor, s: Tensor, ec: Tensor, es: Tensor, states: Tensor
                          ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        qc, qs, eqc, strict = [], [], [], []
        for i, theta in enumerate(self.thresholds):
            above = states > i
            sign = torch.where(above, 1.0, -1.0).to(c.dtype)
            diff = c - theta
            qc.append(diff * sign)
            qs.append(s * sign)
            eqc.append(ec + ROUND * diff.abs())
            strict.append(above)
        return torch.cat(qc, 1), torch.cat(qs, 1), torch.cat(eqc, 1), es.repeat(1, len(self.thresholds)), \
            torch.cat(strict, 1)

    def exact_kinks(self, c: Scaled, s: Scaled) -> tuple[np.ndarray, np.ndarray]:
        nums, dens = [], []
        for theta in self._thresholds:  # u = theta: t = (theta - c) / s
            nums.append((theta.ints[0] * c.den - c.ints[0] * theta.den) * s.den)
            dens.append(s.ints[0] * theta.den * c.den)
        return _fractions(np.concatenate(nums), np.concatenate(dens))

    def exact_states(self, values: np.ndarray, dens: np.ndarray) -> np.ndarray:
        states = np.zeros(values.shape, dtype=np.int64)
        for theta in self._thresholds:
            states += (values * theta.den > theta.ints[0] * dens).astype(np.int64)
        return states


def _pick_exact(table: np.ndarray, states: np.ndarray) -> np.ndarray:
    """table (r + 1, n or 1) of ints, states (B, n) -> table[states[b, j], j]."""
    table = np.broadcast_to(table, (table.shape[0], states.shape[1]))
    return table[states, np.arange(states.shape[1])[None, :]]


@dataclass
class MaxGroups(Piecewise):
    """``y_g = max_k x[index[g, k]]`` over the flat input, index (G, K) with -1 for padding (never the max)."""

    index: Tensor
    label: str = "MaxPool"
    #: the per-sample shape of the output (set by the readers; (G,) when unknown)
    out_shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        K = self.index.shape[1]
        self.state_bits = K - 1
        pairs = torch.combinations(torch.arange(K), 2)
        self._i, self._j = pairs[:, 0], pairs[:, 1]
        self._pad = self.index < 0

    def _windows(self, x: Tensor, fill: float) -> Tensor:
        return _padded(x, fill)[:, self.index.to(x.device)]  # (B, G, K)

    def states(self, u: Tensor) -> Tensor:
        return self._windows(u, -math.inf).argmax(dim=2)  # the first index of the maximum

    def kinks(self, c: Tensor, s: Tensor) -> Tensor:
        cw, sw = self._windows(c, 0.0), self._windows(s, 0.0)
        i, j = self._i.to(c.device), self._j.to(c.device)
        t = (cw[:, :, j] - cw[:, :, i]) / (sw[:, :, i] - sw[:, :, j])
        pad = self._pad.to(c.device)
        t = t.masked_fill((pad[:, i] | pad[:, j]).unsqueeze(0), math.nan)
        return t.reshape(c.shape[0], -1)

    def select(self, c: Tensor, s: Tensor, states: Tensor) -> tuple[Tensor, Tensor]:
        chosen = torch.gather(self.index.to(c.device).unsqueeze(0).expand(states.shape[0], -1, -1), 2,
                              states.unsqueeze(-1)).squeeze(-1)
        return torch.gather(c, 1, chosen), torch.gather(s, 1, chosen)

    def select_errors(self, c: Tensor, s: Tensor, ec: Tensor, es: Tensor, states: Tensor
                      ) -> tuple[Tensor, Tensor]:
        return self.select(ec, es, states)

    def float_constraints(self, c: Tensor, s: Tensor, ec: Tensor, es: Tensor, states: Tensor
                          ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        B, K = c.shape[0], self.index.shape[1]
        take = states.unsqueeze(-1)
        real = (self.index >= 0).to(c.device).unsqueeze(0)
        slot = torch.arange(K, device=c.device).view(1, 1, K)
        keep = (slot != take) & real
        out = []
        for x in (c, s):
            w = self._windows(x, 0.0)
            out.append(torch.where(keep, torch.gather(w, 2, take) - w, torch.zeros_like(w)))
        errors = []
        for e in (ec, es):
            w = self._windows(e, 0.0)
            errors.append(torch.where(keep, torch.gather(w, 2, take) + w, torch.zeros_like(w)))
        errors[0] = errors[0] + ROUND * out[0].abs()
        errors[1] = errors[1] + ROUND * out[1].abs()
        strict = (slot < take) & keep
        return (out[0].reshape(B, -1), out[1].reshape(B, -1), errors[0].reshape(B, -1), errors[1].reshape(B, -1),
                strict.reshape(B, -1))

    def _chosen(self, states: np.ndarray) -> np.ndarray:
        return self.index.numpy()[np.arange(states.shape[1])[None, :], states]

    def exact_select(self, c: Scaled, s: Scaled, states: np.ndarray) -> tuple[Scaled, Scaled]:
        chosen = self._chosen(states)
        rows = np.arange(states.shape[0])[:, None]
        return Scaled(c.ints[rows, chosen], c.den), Scaled(s.ints[rows, chosen], s.den)

    def exact_kinks(self, c: Scaled, s: Scaled) -> tuple[np.ndarray, np.ndarray]:
        index = self.index.numpy()
        i, j = self._i.numpy(), self._j.numpy()
        real = (index[:, i] >= 0) & (index[:, j] >= 0)
        cw, sw = c.ints[0][index], s.ints[0][index]  # padding reads the last entry; masked out below
        num = ((cw[:, j] - cw[:, i]) * s.den)[real]
        den = ((sw[:, i] - sw[:, j]) * c.den)[real]
        return _fractions(num, den)

    def exact_states(self, values: np.ndarray, dens: np.ndarray) -> np.ndarray:
        index = self.index.numpy()
        windows = values[:, index]  # (B, G, K)
        floor = values.min(axis=1, initial=0).reshape(-1, 1, 1) - 1
        windows = np.where(index[None] >= 0, windows, floor)
        return np.argmax(windows, axis=2).astype(np.int64)  # the first index of the maximum

    def constraints(self, c: Scaled, s: Scaled, states: np.ndarray) -> tuple[Scaled, Scaled, np.ndarray]:
        index = self.index.numpy()
        B, G, K = states.shape[0], index.shape[0], index.shape[1]
        rows = np.arange(B)[:, None, None]
        cw = _padded_exact(c).ints[rows, index[None]]  # (B, G, K)
        sw = _padded_exact(s).ints[rows, index[None]]
        take = states[:, :, None]
        qc = np.take_along_axis(cw, take, 2) - cw
        qs = np.take_along_axis(sw, take, 2) - sw
        slot = np.arange(K)[None, None, :]
        strict = np.broadcast_to(slot < take, (B, G, K))
        keep = np.broadcast_to((slot != take) & (index[None] >= 0), (B, G, K))
        # Padding never wins; the chosen slot's own difference is 0: neither is a constraint (q = 0 >= 0 holds).
        qc, qs = np.where(keep, qc, 0), np.where(keep, qs, 0)
        strict = strict & keep
        return (Scaled(qc.reshape(B, -1), c.den), Scaled(qs.reshape(B, -1), s.den), strict.reshape(B, -1))
