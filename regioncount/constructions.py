"""Networks with known region counts: the Theorem 1 DEQ and sawtooth / fold FFNs.

All weights are built exactly (dyadic rationals for the DEQ, tent and w-tooth nets, so float64 holds them
without rounding; the (n+1)-fold net uses 1/(2n+1) and is rounded once).  See paper-notes.md §2-3 and
algorithms.md §4.2.
"""

from __future__ import annotations

from fractions import Fraction

import torch

from .errors import CostLimitError, RegionCountError
from .models import DEQ, DTYPE, FFN, Domain

READOUTS = {
    "a": "y = T^m(x_1) = 2^m x_1 - sum_i 2^(m-i+1) z_i (sawtooth; uses an input skip)",
    "b": "y = -sum_i 2^(m-i+1) z_i (staircase of slopes 0 and -2^(m+1))",
    "c": "y = z_m (adjacent zero pieces merge)",
    "d": "y = sum_i z_i",
}

#: Largest width for which float64 resolves the breakpoints k / 2^m of the Theorem 1 DEQ with margin:
#: every slope, intercept and breakpoint is a dyadic rational with at most m + 2 significant bits, and
#: the enumerator's merge tolerance is 2^-46 of the interval, so m <= 40 keeps neighbouring breakpoints
#: 64 tolerances apart.
MAX_EXACT_DEQ_WIDTH = 40


def _check_width(m: int, what: str = "width") -> None:
    if isinstance(m, bool) or not isinstance(m, int):
        raise RegionCountError(f"{what} must be an integer, got {m!r}")
    if m < 1:
        raise RegionCountError(f"{what} must be at least 1, got {m}")


def theorem1_deq(m: int, readout: str = "b", input_dim: int = 1) -> DEQ:
    """The width-m DEQ of Theorem 1 (paper-notes.md §2); only x_1 is used.

    Units t = 1..m: ``W[t, i] = -2^(t-i+1)`` (i < t), ``U[t, 1] = 2^t``, ``b[t] = -1``, so
    ``z_t(x) = relu(2 T^(t-1)(x_1) - 1)`` with T the tent map, and the breakpoints on [0, 1] are exactly
    ``k / 2^m``: 2^m activation regions.  ``readout`` picks the output layer (``READOUTS``).
    """
    _check_width(m)
    _check_width(input_dim, "input dimension")
    if m > MAX_EXACT_DEQ_WIDTH:
        raise CostLimitError(
            f"width {m} exceeds {MAX_EXACT_DEQ_WIDTH}: float64 cannot resolve the breakpoints k/2^{m} "
            f"reliably (the limit is m <= {MAX_EXACT_DEQ_WIDTH})"
        )
    if readout not in READOUTS:
        raise RegionCountError(f"unknown readout {readout!r}; choose one of {sorted(READOUTS)}")
    t = torch.arange(1, m + 1, dtype=DTYPE)
    diff = t[:, None] - t[None, :]
    W = torch.where(diff > 0, -torch.pow(2.0, diff + 1), torch.zeros((), dtype=DTYPE))
    U = torch.zeros(m, input_dim, dtype=DTYPE)
    U[:, 0] = torch.pow(2.0, t)
    b = -torch.ones(m, dtype=DTYPE)
    B = torch.zeros(1, input_dim, dtype=DTYPE)
    if readout in ("a", "b"):
        A = -torch.pow(2.0, m - t + 1)[None, :]
        if readout == "a":
            B[0, 0] = 2.0**m
    elif readout == "c":
        A = torch.zeros(1, m, dtype=DTYPE)
        A[0, -1] = 1.0
    else:
        A = torch.ones(1, m, dtype=DTYPE)
    domain = Domain((0.0,) * input_dim, (1.0,) * input_dim)
    return DEQ(W=W, U=U, b=b, A=A, B=B, name=f"theorem1-deq-m{m}-readout-{readout}", domain=domain)


def theorem1_expected(m: int, readout: str = "b") -> tuple[int, int]:
    """Known (activation regions, linear pieces) of :func:`theorem1_deq` on [0, 1]."""
    regions = 2**m
    if readout == "c":
        return regions, 2 if m == 1 else 3 * 2 ** (m - 2) + 1
    return regions, regions


def _zigzag_ffn(unit_weight: list[Fraction], unit_bias: list[Fraction], out: list[Fraction],
                out_bias: Fraction, depth: int, name: str) -> FFN:
    """Compose one zigzag layer ``depth`` times: layer 1 reads x, layer l+1 reads ``out . h + out_bias``."""
    _check_width(depth, "depth")
    sigma = torch.tensor([float(v) for v in unit_weight], dtype=DTYPE)
    bias = torch.tensor([float(v) for v in unit_bias], dtype=DTYPE)
    readout = torch.tensor([float(v) for v in out], dtype=DTYPE)
    weights = [sigma[:, None]]
    biases = [bias]
    for _ in range(depth - 1):
        weights.append(sigma[:, None] * readout[None, :])
        biases.append(bias + sigma * float(out_bias))
    weights.append(readout[None, :])
    biases.append(torch.tensor([float(out_bias)], dtype=DTYPE))
    return FFN(weights, biases, name=name, domain=Domain((0.0,), (1.0,)))


def sawtooth_ffn(teeth: int, depth: int) -> FFN:
    """The w-tooth zigzag FFN of depth L (paper-notes.md §3): exactly ``w^L`` pieces on [0, 1].

    Layer units ``relu(y - j/w)``, j = 0..w-1, and ``y' = w h_0 - 2w h_1 + 2w h_2 - ...``, so each tooth
    maps onto [0, 1].  ``teeth = 2`` is the tent map T.
    """
    _check_width(teeth, "teeth")
    w = teeth
    out = [Fraction(w)] + [Fraction(2 * w * (-1) ** j) for j in range(1, w)]
    return _zigzag_ffn([Fraction(1)] * w, [Fraction(-j, w) for j in range(w)], out, Fraction(0), depth,
                       f"sawtooth-w{w}-L{depth}")


def tent_ffn(depth: int) -> FFN:
    """Telgarsky's tent map T composed L times with 2 ReLUs per layer: ``2^L`` pieces on [0, 1]."""
    net = sawtooth_ffn(2, depth)
    net.name = f"tent-L{depth}"
    return net


def fold_ffn(units: int, depth: int) -> FFN:
    """The (n+1)-fold zigzag FFN with n >= 3 units per layer: exactly ``(n+1)^L`` pieces on [0, 1].

    Construction of algorithms.md §4.2: piece widths 2u (and u for piece 3), u = 1/(2n+1); units 2 and 3
    face left so that the first piece gets its slope; every piece maps onto [0, 1].
    """
    _check_width(units, "units per layer")
    n = units
    if n < 3:
        raise RegionCountError("the fold construction needs n >= 3 units per layer (use tent_ffn for n = 2)")
    u = Fraction(1, 2 * n + 1)
    widths = [u if k == 3 else 2 * u for k in range(n + 1)]
    points = [sum(widths[:k], Fraction(0)) for k in range(1, n + 1)]
    slopes = [Fraction((-1) ** k) / widths[k] for k in range(n + 1)]
    jumps = [slopes[k] - slopes[k - 1] for k in range(1, n + 1)]
    sigma = [Fraction(-1) if k in (2, 3) else Fraction(1) for k in range(1, n + 1)]
    kappa = -sum((c * p for c, p, s in zip(jumps, points, sigma) if s < 0), Fraction(0))
    return _zigzag_ffn(sigma, [-s * p for s, p in zip(sigma, points)], jumps, kappa, depth,
                       f"fold-n{n}-L{depth}")
