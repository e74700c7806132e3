"""A 1-D walk's output reduced to pixel columns while it walks (``docs/algorithms.md``): what a plot of
2^26 pieces needs, in memory that does not grow with the pieces.

The output is continuous and affine on each final piece, so its lowest and highest value over a column of
the segment are attained at the vertices of the pieces inside the column or at the column's edges.
:class:`ColumnEnvelope` receives each batch of final pieces in increasing t with their output slopes
(dy/dt); the output at the batch's first vertex is evaluated from the model, and the values at the other
vertices follow by summing slope times length along the batch (re-anchored every batch, so the rounding
stays that of one batch's sum, about ``pieces x 2^-53`` of the values).  It keeps per column the lowest
and highest value (at the vertices inside it and at its edges, where the curve is interpolated on its
piece), the mean vertex value (where a dense curve sits inside its range) and the number of breakpoints,
and the first ``keep`` vertices exactly; when the walk had no more vertices than that, they are the whole
curve.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..core.geometry import Segment
from ..models.networks import DEQ, DTYPE, Model


def output_along(model: Model, seg: Segment, output: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """t (N,) -> output ``output`` of ``model`` at origin + t direction (N,), in float64 (a general-W DEQ by
    its checked fixed-point solve)."""
    origin = torch.tensor(seg.origin, dtype=DTYPE)
    direction = torch.tensor(seg.direction, dtype=DTYPE)

    def evaluate(t: torch.Tensor) -> torch.Tensor:
        x = origin[None] + t.detach().to("cpu", DTYPE)[:, None] * direction[None]
        if isinstance(model, DEQ) and model.unit_order is None:
            from ..models.fixedpoint import solve_fixed_points

            z = solve_fixed_points(model, x).z
            return (z @ model.A.T + x @ model.B.T + model.c)[:, output]
        return model.forward(x)[:, output]

    return evaluate


class ColumnEnvelope:
    """Per column of [t_low, t_high] split into ``columns`` equal columns: the lowest and highest value of one
    output at the vertices of the walk's pieces there (``low``, ``high``, NaN where a column holds no vertex),
    the breakpoints in it (``breakpoints``), and the first ``keep`` vertices (``head_t``, ``head_y``).
    ``evaluate(t)`` gives the output at points t (see :func:`output_along`)."""

    def __init__(self, t_low: float, t_high: float, columns: int, output: int,
                 evaluate: Callable[[torch.Tensor], torch.Tensor], keep: int | None = None) -> None:
        if columns < 1 or not t_high > t_low:
            raise ValueError("an envelope needs at least one column of a non-empty interval")
        self.t_low, self.t_high, self.columns, self.output = t_low, t_high, columns, output
        self.evaluate = evaluate
        self.keep = 8 * columns if keep is None else keep
        self.reset()

    def reset(self) -> None:
        """Forget every piece (a walk that starts again)."""
        self.low = torch.full((self.columns,), torch.inf, dtype=DTYPE)
        self.high = torch.full((self.columns,), -torch.inf, dtype=DTYPE)
        self.breakpoints = torch.zeros(self.columns, dtype=torch.int64)
        self._sum = torch.zeros(self.columns, dtype=DTYPE)  # vertex values and vertices per column (the mean)
        self._count = torch.zeros(self.columns, dtype=torch.int64)
        self.vertices = 0
        self._head_t: list[np.ndarray] = []
        self._head_y: list[np.ndarray] = []
        self.kept = 0

    def add(self, left: torch.Tensor, right: torch.Tensor, slopes: torch.Tensor) -> None:
        """A batch of final pieces, contiguous and in increasing t: ends (P,) and output slopes dy/dt (P, k)."""
        left, right = left.detach().to("cpu", DTYPE), right.detach().to("cpu", DTYPE)
        slope = slopes[:, self.output].detach().to("cpu", DTYPE)
        first = self.evaluate(left[:1]).to(DTYPE)  # (1,): the batch is re-anchored on the model itself
        ts = torch.cat([left[:1], right])
        ys = torch.cat([first, first + torch.cumsum(slope * (right - left), 0)])
        fresh = 0 if self.vertices else 1  # a later batch's first vertex is the previous batch's last
        column = self._column(ts)
        self._reduce(column, ys)
        self._edges_inside(ts, ys)
        inner = right < self.t_high
        self.breakpoints += torch.bincount(column[1:][inner], minlength=self.columns)
        if self.kept < self.keep:
            take = ts[1 - fresh:][: self.keep - self.kept], ys[1 - fresh:][: self.keep - self.kept]
            self._head_t.append(take[0].numpy())
            self._head_y.append(take[1].numpy())
            self.kept += int(take[0].shape[0])
        self.vertices += int(ts.shape[0]) - (1 - fresh)

    def absorb(self, ts: np.ndarray, ys: np.ndarray) -> None:
        """Every vertex of a curve known in full (ts ascending from t_low to t_high, values ys), as a walk would
        have added them."""
        t, y = torch.from_numpy(np.ascontiguousarray(ts, dtype=np.float64)), torch.from_numpy(
            np.ascontiguousarray(ys, dtype=np.float64))
        column = self._column(t)
        self._reduce(column, y)
        self._edges_inside(t, y)
        self.breakpoints += torch.bincount(column[1:-1], minlength=self.columns)
        self._head_t, self._head_y = [t[: self.keep].numpy()], [y[: self.keep].numpy()]
        self.kept, self.vertices = min(self.keep, int(t.shape[0])), int(t.shape[0])

    def _column(self, ts: torch.Tensor) -> torch.Tensor:
        return ((ts - self.t_low) / (self.t_high - self.t_low) * self.columns).long().clamp(0, self.columns - 1)

    def _edges_inside(self, ts: torch.Tensor, ys: torch.Tensor) -> None:
        """The curve's values at the column edges strictly inside [ts[0], ts[-1]] (linear on each piece) go to
        the low and high of both columns they bound: a column crossed by a piece without a vertex in it, or
        with few, gets its true range."""
        edges = torch.from_numpy(self.edges())[1:-1]  # edge j (1 .. columns - 1) bounds columns j - 1 and j
        index = ((edges > ts[0]) & (edges < ts[-1])).nonzero().flatten()
        if index.numel() == 0:
            return
        inside = edges[index]
        right = torch.searchsorted(ts, inside).clamp(1, ts.shape[0] - 1)
        t0, t1, y0, y1 = ts[right - 1], ts[right], ys[right - 1], ys[right]
        width = t1 - t0
        values = torch.where(width > 0, y0 + (y1 - y0) * (inside - t0) / torch.where(width > 0, width, 1.0), y0)
        for side in (index, index + 1):
            self.low.scatter_reduce_(0, side, values, "amin")
            self.high.scatter_reduce_(0, side, values, "amax")

    def _reduce(self, column: torch.Tensor, values: torch.Tensor) -> None:
        self.low.scatter_reduce_(0, column, values, "amin")
        self.high.scatter_reduce_(0, column, values, "amax")
        self._sum.index_add_(0, column, values)
        self._count += torch.bincount(column, minlength=self.columns)

    @property
    def mean(self) -> torch.Tensor:
        """(columns,) the mean vertex value per column (NaN where none): where a dense curve sits within its
        column's range."""
        return self._sum / self._count.to(DTYPE)

    @property
    def complete(self) -> bool:
        """Every vertex of the walk is among the kept ones (the exact curve is known)."""
        return 0 < self.vertices <= self.keep

    @property
    def head_t(self) -> np.ndarray:
        return np.concatenate(self._head_t) if self._head_t else np.zeros(0)

    @property
    def head_y(self) -> np.ndarray:
        return np.concatenate(self._head_y) if self._head_y else np.zeros(0)

    def edges(self) -> np.ndarray:
        """(columns + 1,) the columns' edges in t."""
        return np.linspace(self.t_low, self.t_high, self.columns + 1)
