"""The check every reader of a live module ends with: the converted model against the module's own forward
pass on random inputs, within the module's float precision."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..core.errors import ModelFormatError

#: Relative agreement required between a conversion and the module, by the module's float type.
CHECK_TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 1e-1}


def check_forward(module: torch.nn.Module, evaluate: Callable[[torch.Tensor], torch.Tensor],
                  input_shape: tuple[int, ...], points: int, seed: int, label: str, what: str) -> None:
    """Refuse (one line) when ``evaluate`` (flat float64 points (N, d) -> (N, k)) and ``module`` (inputs of
    per-sample shape ``input_shape``) disagree on ``points`` random inputs in [-1, 1]^d and 10x wider, relative
    to the outputs' size; ``what`` names the conversion in the message."""
    params = list(module.parameters())
    dtype = params[0].dtype if params else torch.float32
    device = params[0].device if params else torch.device("cpu")
    d = 1
    for n in input_shape:
        d *= n
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(points, d, generator=gen, dtype=torch.float64) * 2 - 1
    x = torch.cat([x, 10 * x])
    with torch.no_grad():
        expected = module(x.reshape(-1, *input_shape).to(dtype=dtype, device=device))
        expected = expected.to(torch.float64).cpu().reshape(x.shape[0], -1)
        got = evaluate(x)
    if expected.shape != got.shape:
        raise ModelFormatError(f"{label}: the module outputs {tuple(expected.shape[1:])} values, {what} "
                               f"{tuple(got.shape[1:])}")
    tolerance = CHECK_TOLERANCE.get(dtype, 1e-4)
    scale = 1.0 + float(expected.abs().max())
    error = float((expected - got).abs().max())
    if not error <= tolerance * scale:
        raise ModelFormatError(f"{label}: {what} differs from the module's forward pass by {error:.3g} "
                               f"(tolerance {tolerance:g} x {scale:.3g})")
