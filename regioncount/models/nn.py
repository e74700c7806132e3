"""``ReLUDEQ``: a ReLU deep equilibrium model as a ``torch.nn.Module``, to train and then count.

``z = relu(W z + U x + b)``, ``y = A z + c (+ B x)``, with ``Linear`` layers named ``W`` (no bias), ``U``
(its bias is b), ``A`` (its bias is c) and optionally ``B`` (no bias): the layout that
:func:`regioncount.io.model_files.deq_from_state_dict` reads, so ``torch.save(deq.state_dict(), "deq.pt")`` followed
by ``regioncount count deq.pt`` counts it, and :meth:`ReLUDEQ.to_model` gives the
:class:`~regioncount.models.networks.DEQ` to count from Python.

With ``triangular=True`` (the default, as in Theorem 1) W is masked to its strictly lower triangle, the
fixed point is computed by forward substitution (exact, and differentiable end to end) and the DEQ is
well-posed for every W.  Otherwise the forward pass solves the fixed point with the package's checked
solver (:func:`regioncount.models.fixedpoint.solve_fixed_points`, W must be certified well-posed) without
gradients and then takes one differentiable step ``z = relu(W z* + U x + b)`` (the one-step "phantom"
gradient), or hands the solve to a torchdeq solver when one is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .networks import DEQ, FFN


class ReLUDEQ(nn.Module):
    """A ReLU DEQ of width ``width`` from ``input_dim`` to ``output_dim`` (see the module docstring).

    ``solver``: optional ``solver(f, z0) -> z*`` for a non-triangular W (e.g. a torchdeq solver wrapped to
    this signature); the default is the package's checked solve.
    """

    def __init__(self, input_dim: int, width: int, output_dim: int = 1, *, triangular: bool = True,
                 skip: bool = False, dtype: torch.dtype = torch.float64,
                 solver: Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor], torch.Tensor] | None = None
                 ) -> None:
        super().__init__()
        self.triangular = triangular
        self.solver = solver
        self.W = nn.Linear(width, width, bias=False, dtype=dtype)
        self.U = nn.Linear(input_dim, width, dtype=dtype)
        self.A = nn.Linear(width, output_dim, dtype=dtype)
        self.B = nn.Linear(input_dim, output_dim, bias=False, dtype=dtype) if skip else None
        # not part of the state_dict: the file holds W as used (masked)
        self.mask: torch.Tensor
        self.register_buffer("mask", torch.ones(width, width, dtype=dtype).tril(-1), persistent=False)
        if triangular:
            with torch.no_grad():
                self.W.weight.mul_(self.mask)

    def effective_W(self) -> torch.Tensor:
        """W as the fixed point uses it: masked to the strict lower triangle when ``triangular``."""
        return self.W.weight * self.mask if self.triangular else self.W.weight

    def fixed_point(self, x: torch.Tensor) -> torch.Tensor:
        """z*(x) for inputs (N, d); (N, m), differentiable (see the module docstring)."""
        W = self.effective_W()
        q = self.U(x)
        if self.triangular:
            columns: list[torch.Tensor] = []
            for i in range(W.shape[0]):  # unit i depends on units < i only: exact forward substitution
                r = q[:, i] if i == 0 else q[:, i] + torch.stack(columns, 1) @ W[i, :i]
                columns.append(torch.relu(r))
            return torch.stack(columns, 1)
        with torch.no_grad():
            if self.solver is not None:
                z_star = self.solver(lambda z: torch.relu(z @ W.T + q), torch.zeros_like(q))
            else:
                z_star = self.to_model().fixed_point(x.detach().to(torch.float64)).to(q.dtype)
        return torch.relu(z_star @ W.T + q)  # one differentiable step from the fixed point

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.A(self.fixed_point(x))
        return y if self.B is None else y + self.B(x)

    def to_model(self, name: str | None = None) -> DEQ:
        """The :class:`~regioncount.models.networks.DEQ` computing this module's function, in float64 (the weights as
        stored, converted exactly when they are float32/float16)."""
        def f64(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(torch.float64).cpu().clone()

        k, d = self.A.weight.shape[0], self.U.weight.shape[1]
        B = f64(self.B.weight) if self.B is not None else torch.zeros(k, d, dtype=torch.float64)
        return DEQ(f64(self.effective_W()), f64(self.U.weight), f64(self.U.bias), f64(self.A.weight),
                   c=f64(self.A.bias), B=B, name=name or f"ReLUDEQ-m{self.W.weight.shape[0]}")

    def extra_repr(self) -> str:
        return f"triangular={self.triangular}"



def relu_chain(input_dim: int, widths: Sequence[int], output_dim: int = 1,
               dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """A Linear/ReLU chain ``input_dim -> widths[0] -> ... -> output_dim`` (ReLU after every hidden layer),
    with PyTorch's initialisation: the FFNs the experiments train."""
    layers: list[nn.Module] = []
    fan_in = input_dim
    for width in widths:
        layers += [nn.Linear(fan_in, width, dtype=dtype), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, output_dim, dtype=dtype))
    return nn.Sequential(*layers)


def chain_to_ffn(chain: nn.Module, name: str | None = None) -> FFN:
    """The float64 :class:`FFN` of a Linear/ReLU chain such as :func:`relu_chain`'s (float32 weights convert
    exactly), its Linear layers taken in order."""
    linears = [layer for layer in chain.modules() if isinstance(layer, nn.Linear)]
    return FFN([layer.weight.detach().cpu().double().clone() for layer in linears],
               [layer.bias.detach().cpu().double().clone() for layer in linears], name=name)


class ConvDEQ(nn.Module):
    """A convolutional ReLU DEQ: hidden state z of shape (C, H, W),

        z = relu(conv(z, s K) + conv(x, U) + b),    y = A flatten(z) + c,

    with 'same' zero padding, U a ``Conv2d`` from the input's channels (its bias is b), K a ``Conv2d`` weight
    without bias, and ``s = min(1, contraction / ||K||)`` where ``||K||`` is the operator 2-norm of the
    convolution estimated by power iteration (without gradients): the map is kept a contraction, so the
    fixed point exists and the forward iteration converges.  Inputs are images (N, C_in, H, W) or flat
    (N, C_in H W).  ``forward`` iterates ``iterations`` times, the last ``backprop`` steps with gradients (a
    truncated unrolled gradient).  :meth:`to_model` gives the :class:`~regioncount.models.networks.DEQ` of the
    same function, its convolutions written out as the (C H W)-square matrix and the (C H W) x (C_in H W)
    matrix whose entries are the effective kernel's own numbers, so the package's well-posedness
    certificates and counts apply to it as stored (``docs/graphs.md``, "Convolutional DEQs").
    """

    def __init__(self, in_channels: int, channels: int, image: tuple[int, int], output_dim: int, *,
                 kernel: int = 3, contraction: float = 0.9, iterations: int = 40, backprop: int = 8,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError("ConvDEQ needs an odd kernel ('same' padding)")
        self.in_channels, self.channels, self.image = in_channels, channels, tuple(image)
        self.contraction, self.iterations, self.backprop = contraction, iterations, backprop
        self.padding = kernel // 2
        self.K = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False, dtype=dtype)
        self.U = nn.Conv2d(in_channels, channels, kernel, padding=kernel // 2, dtype=dtype)
        self.A = nn.Linear(channels * image[0] * image[1], output_dim, dtype=dtype)

    def _conv(self, z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(z, weight, padding=self.padding)

    def operator_norm(self, steps: int = 50) -> float:
        """An estimate (power iteration on K^T K, applied as convolutions) of the convolution's 2-norm."""
        weight = self.K.weight.detach()
        with torch.no_grad():
            gen = torch.Generator().manual_seed(0)
            v = torch.randn(1, self.channels, *self.image, generator=gen, dtype=weight.dtype).to(weight.device)
            norm = 0.0
            for _ in range(steps):
                u = self._conv(v, weight)
                back = nn.functional.conv_transpose2d(u, weight, padding=self.padding)
                norm = float(back.norm().sqrt())
                v = back / back.norm().clamp_min(1e-300)
        return norm

    def effective_weight(self) -> torch.Tensor:
        """``s K``: the kernel the fixed point uses (and :meth:`to_model` writes out)."""
        scale = min(1.0, self.contraction / max(self.operator_norm(), 1e-300))
        return self.K.weight * scale

    def fixed_point(self, x: torch.Tensor) -> torch.Tensor:
        """z*(x), (N, C, H, W), by the forward iteration (module docstring)."""
        x = x.reshape(-1, self.in_channels, *self.image)
        weight, q = self.effective_weight(), self.U(x)
        z = torch.zeros_like(q)
        with torch.no_grad():
            for _ in range(max(0, self.iterations - self.backprop)):
                z = torch.relu(self._conv(z, weight) + q)
        for _ in range(min(self.backprop, self.iterations)):
            z = torch.relu(self._conv(z, weight) + q)
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.A(self.fixed_point(x).flatten(1))

    def _matrix(self, weight: torch.Tensor, channels: int) -> torch.Tensor:
        """The matrix (C H W, channels H W) of ``z -> conv(z, weight)`` ('same' zero padding), entries copied
        from the kernel (each is one kernel number or 0, so nothing is rounded)."""
        n = channels * self.image[0] * self.image[1]
        basis = torch.eye(n, dtype=weight.dtype, device=weight.device).reshape(n, channels, *self.image)
        return self._conv(basis, weight).reshape(n, -1).T

    def to_model(self, name: str | None = None) -> DEQ:
        """The :class:`~regioncount.models.networks.DEQ` of this module (float64, as stored)."""
        def f64(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(torch.float64).cpu().clone()

        with torch.no_grad():
            weight = f64(self.effective_weight())
            W = self._matrix(weight, self.channels)
            U = self._matrix(f64(self.U.weight), self.in_channels)
            assert self.U.bias is not None
            b = f64(self.U.bias).repeat_interleave(self.image[0] * self.image[1])
        return DEQ(W, U, b, f64(self.A.weight), c=f64(self.A.bias),
                   name=name or f"ConvDEQ-{self.channels}x{self.image[0]}x{self.image[1]}")
