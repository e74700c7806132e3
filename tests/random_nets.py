"""Random small networks with dyadic weights (float64 holds them exactly) and degenerate features.

Degenerate features on purpose: dead units (zero rows), duplicated and rescaled rows (coincident
breakpoints), biases that put a breakpoint exactly on an interval end, zero output weights (linear
pieces < activation regions), units that are identically zero on whole pieces.
"""

from __future__ import annotations

import random

import torch

from regioncount.models.networks import DEQ, FFN

DYADIC_SCALES = (1, 2, 4)
DIAGONALS = (0.0, 0.0, 0.5, 0.75, -1.0, -3.0)  # 1 - w is a power of two: exact normalization


def dyadic(rng: random.Random, span: int = 4, zero_p: float = 0.15) -> float:
    if rng.random() < zero_p:
        return 0.0
    return rng.randint(-span, span) / rng.choice(DYADIC_SCALES)


def _degenerate_rows(rng: random.Random, W: torch.Tensor, b: torch.Tensor) -> None:
    n = W.shape[0]
    for j in range(n):
        roll = rng.random()
        if roll < 0.1:
            W[j] = 0.0  # dead unit (constant pre-activation)
        elif roll < 0.25 and j > 0:
            k = rng.randrange(j)
            factor = rng.choice((1.0, 2.0, 0.5, -1.0))
            W[j], b[j] = W[k] * factor, b[k] * factor  # coincident zero (same hyperplane)


def random_segment(rng: random.Random, d: int) -> tuple[list[float], list[float], float, float]:
    """(p, v, t_low, t_high): an integer interval for d = 1, a dyadic segment t in [0, 1] otherwise."""
    if d == 1:
        a = rng.randint(-3, 2)
        return [0.0], [1.0], float(a), float(rng.randint(a + 1, 3))
    p = [rng.randint(-4, 4) / 2 for _ in range(d)]
    q = [rng.randint(-4, 4) / 2 for _ in range(d)]
    if p == q:
        q[0] += 1.0
    return p, [qi - pi for pi, qi in zip(p, q)], 0.0, 1.0


def random_ffn(rng: random.Random, d: int, t_low: float) -> FFN:
    depth = rng.randint(1, 4)
    widths = [d] + [rng.randint(1, 6) for _ in range(depth)] + [rng.randint(1, 2)]
    weights, biases = [], []
    for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        W = torch.tensor([[dyadic(rng) for _ in range(n_in)] for _ in range(n_out)], dtype=torch.float64)
        b = torch.tensor([dyadic(rng) for _ in range(n_out)], dtype=torch.float64)
        if i < depth:
            _degenerate_rows(rng, W, b)
            if i == 0 and d == 1 and rng.random() < 0.5:
                j = rng.randrange(n_out)
                b[j] = -W[j, 0] * t_low  # a zero exactly at the left end of the interval
        weights.append(W)
        biases.append(b)
    return FFN(weights, biases, name="random-ffn")


def random_deq(rng: random.Random, d: int, t_low: float, permute: bool = False) -> DEQ:
    m = rng.randint(1, 7)
    W = torch.zeros(m, m, dtype=torch.float64)
    for t in range(m):
        for i in range(t):
            W[t, i] = dyadic(rng, span=3, zero_p=0.3)
        W[t, t] = rng.choice(DIAGONALS)
    U = torch.tensor([[dyadic(rng) for _ in range(d)] for _ in range(m)], dtype=torch.float64)
    b = torch.tensor([dyadic(rng) for _ in range(m)], dtype=torch.float64)
    for t in range(m):
        if rng.random() < 0.1:
            U[t] = 0.0
    if d == 1 and rng.random() < 0.5:
        j = rng.randrange(m)
        b[j] = -U[j, 0] * t_low
    k = rng.randint(1, 2)
    A = torch.tensor([[dyadic(rng, zero_p=0.3) for _ in range(m)] for _ in range(k)], dtype=torch.float64)
    B = torch.tensor([[dyadic(rng, zero_p=0.5) for _ in range(d)] for _ in range(k)], dtype=torch.float64)
    if permute and m > 1:
        perm = torch.randperm(m, generator=torch.Generator().manual_seed(rng.randrange(10**6)))
        W, U, b, A = W[perm][:, perm], U[perm], b[perm], A[:, perm]
    return DEQ(W=W, U=U, b=b, A=A, B=B, name="random-deq")


def random_general_deq(rng: random.Random, d: int, t_low: float) -> DEQ:
    """A DEQ with a cyclic (non-triangular) dyadic W of ||W||_2 < 1, and degenerate units: duplicated and
    rescaled rows (coincident breakpoints), dead units, input-only units with a zero at ``t_low`` (for
    d = 1), zero output columns."""
    m = rng.randint(2, 7)
    while True:
        W = torch.tensor([[rng.randint(-3, 3) / 8 if rng.random() < 0.6 else 0.0 for _ in range(m)]
                          for _ in range(m)], dtype=torch.float64) / m
        W[0, m - 1] = W[0, m - 1] or 1 / 8  # a cycle through every unit
        for j in range(1, m):
            W[j, j - 1] = W[j, j - 1] or -1 / 8
        if float(torch.linalg.matrix_norm(W, ord=2)) < 0.99:
            break
    U = torch.tensor([[dyadic(rng) for _ in range(d)] for _ in range(m)], dtype=torch.float64)
    b = torch.tensor([dyadic(rng) for _ in range(m)], dtype=torch.float64)
    for j in range(1, m):
        roll = rng.random()
        k = rng.randrange(j)
        if roll < 0.15:  # u_j = c u_k: the same zero
            c = rng.choice((1.0, 2.0, 0.5))
            W[j], U[j], b[j] = W[k] * c, U[k] * c, b[k] * c
        elif roll < 0.25:  # dead: constant pre-activation
            W[j], U[j] = 0.0, 0.0
        elif roll < 0.35 and d == 1:  # depends on x only, with its zero at the left end
            W[j] = 0.0
            U[j, 0] = U[j, 0] or 1.0
            b[j] = -U[j, 0] * t_low
    k = rng.randint(1, 2)
    A = torch.tensor([[dyadic(rng, zero_p=0.3) for _ in range(m)] for _ in range(k)], dtype=torch.float64)
    B = torch.tensor([[dyadic(rng, zero_p=0.5) for _ in range(d)] for _ in range(k)], dtype=torch.float64)
    return DEQ(W=W, U=U, b=b, A=A, B=B, name="random-general-deq")


def gaussian_deq(m: int, seed: int, triangular: bool, name: str | None = None) -> DEQ:
    """A 2-D-input DEQ with Gaussian weights: strictly lower-triangular W (scaled 1.5) or a general W scaled to
    ||W||_2 = 0.85; U ~ 2 N(0, 1), b ~ N(0, 1/4), A ~ N(0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    if triangular:
        W = torch.tril(torch.randn(m, m, generator=gen, dtype=torch.float64), -1) * 1.5
    else:
        W = torch.randn(m, m, generator=gen, dtype=torch.float64)
        W *= 0.85 / torch.linalg.matrix_norm(W, ord=2)
    return DEQ(W=W, U=torch.randn(m, 2, generator=gen, dtype=torch.float64) * 2,
               b=torch.randn(m, generator=gen, dtype=torch.float64) * 0.5,
               A=torch.randn(1, m, generator=gen, dtype=torch.float64), name=name or f"deq-{seed}")


def gaussian_ffn(dims: list[int], seed: int, bias: float = 0.5, *, he: bool = False, dead_out: bool = False,
                 name: str | None = None) -> FFN:
    """Gaussian FFN (float64): weights N(0, 1) (``he``: N(0, 2 / fan_in)), biases N(0, bias^2);
    ``dead_out`` zeroes every second output weight (linear pieces < regions)."""
    import math

    gen = torch.Generator().manual_seed(seed)
    weights = [torch.randn(o, i, generator=gen, dtype=torch.float64) * (math.sqrt(2 / i) if he else 1.0)
               for i, o in zip(dims, dims[1:])]
    biases = [torch.randn(o, generator=gen, dtype=torch.float64) * bias for o in dims[1:]]
    if dead_out:
        weights[-1][:, ::2] = 0.0
    return FFN(weights, biases, name=name or f"ffn{dims}-{seed}")


def run_cli(*args):
    """Invoke the command line in-process (click's runner); every argument is passed as a string.  Tables
    are drawn at the pipe width whatever ``$COLUMNS`` the test process inherited (xdist workers set it)."""
    from click.testing import CliRunner
    from regioncount_cli.main import main
    from regioncount_cli.render import PIPE_WIDTH

    return CliRunner(env={"COLUMNS": str(PIPE_WIDTH)}).invoke(main, [str(a) for a in args])
