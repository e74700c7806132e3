"""Networks with known region counts: the Theorem 1 DEQ and sawtooth / fold FFNs.

All weights are built exactly (dyadic rationals for the DEQ, tent and w-tooth nets, so float64 holds them
without rounding; the (n+1)-fold net uses 1/(2n+1) and is rounded once; its stored counts are checked
against an exact rational count in the tests).  See ``docs/exactness.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import accumulate

import torch

from ..core.errors import CostLimitError, RegionCountError
from ..core.geometry import Domain
from ..core.settings import READOUTS  # noqa: E402  (re-exported)
from ..models.networks import DEQ, DTYPE, FFN

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
    """The width-m DEQ of Theorem 1 (``docs/theory.md``); only x_1 is used.

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


def theorem1_expected_on_interval(m: int, readout: str, interval: tuple[float, float]) -> tuple[int, int | None]:
    """Known counts of the Theorem 1 DEQ on [A, B]: 1 + #{k/2^m in (A, B), 0 < k < 2^m}.

    Readouts (a), (b), (d) change slope at every breakpoint; for (c) the piece count is known only when
    [A, B] contains [0, 1].
    """
    a, b = (Fraction(v) for v in interval)
    scale = 2**m
    lo = max(1, int((a * scale) // 1) + 1)
    hi = min(scale - 1, -int((-b * scale) // 1) - 1)
    regions = 1 + max(0, hi - lo + 1)
    if readout != "c":
        return regions, regions
    return regions, theorem1_expected(m, "c")[1] if a <= 0 and b >= 1 else None


@dataclass(frozen=True)
class Zigzag:
    """One zigzag layer y -> Z(y) = sum_k out_k relu(sigma_k (y - p_k)) + kappa, mapping [0, 1] onto [0, 1]."""

    sigma: tuple[Fraction, ...]
    points: tuple[Fraction, ...]
    out: tuple[Fraction, ...]
    kappa: Fraction


#: A zigzag layer of one unit that passes [0, 1] on unchanged: relu(y).
IDENTITY_ZIGZAG = Zigzag((Fraction(1),), (Fraction(0),), (Fraction(1),), Fraction(0))


def _tensor(values: Sequence[Fraction]) -> torch.Tensor:
    return torch.tensor([float(v) for v in values], dtype=DTYPE)


def compose_zigzags(layers: Sequence[Zigzag], name: str) -> FFN:
    """The FFN computing Z_L(...Z_1(x)): layer l+1's units read ``out_l . h_l + kappa_l``.

    W_1 = sigma_1, b_1 = -sigma_1 * p_1; W_(l+1) = sigma_(l+1) out_l^T, b_(l+1) = sigma_(l+1) * (kappa_l - p_(l+1));
    readout out_L, kappa_L.  Pieces multiply when every zigzag maps [0, 1] onto [0, 1].
    """
    if not layers:
        raise RegionCountError("a zigzag net needs at least one layer")
    first = layers[0]
    weights = [_tensor(first.sigma)[:, None]]
    biases = [_tensor([-s * p for s, p in zip(first.sigma, first.points)])]
    for prev, cur in zip(layers, layers[1:]):
        weights.append(_tensor(cur.sigma)[:, None] * _tensor(prev.out)[None, :])
        biases.append(_tensor([s * (prev.kappa - p) for s, p in zip(cur.sigma, cur.points)]))
    weights.append(_tensor(layers[-1].out)[None, :])
    biases.append(_tensor([layers[-1].kappa]))
    return FFN(weights, biases, name=name, domain=Domain((0.0,), (1.0,)))


def dyadic_tooth_widths(teeth: int) -> list[Fraction]:
    """w tooth widths, powers of two summing to 1: 2^(k-1) equal teeth (2^(k-1) < w <= 2^k), of which the
    first w - 2^(k-1) are halved.  Uniform 1/w when w is a power of two."""
    _check_width(teeth, "teeth")
    if teeth == 1:
        return [Fraction(1)]
    half = 1 << ((teeth - 1).bit_length() - 1)  # 2^(k-1) < w <= 2^k
    split = teeth - half
    widths: list[Fraction] = []
    for j in range(half):
        if j < split:
            widths += [Fraction(1, 2 * half)] * 2
        else:
            widths.append(Fraction(1, half))
    return widths


def tooth_zigzag(teeth: int) -> Zigzag:
    """w teeth of dyadic widths (:func:`dyadic_tooth_widths`), each mapped onto [0, 1] with slope
    +-1/width: units relu(y - p_j) at the tooth starts, output weights the slope changes.  Every weight is
    dyadic, so the stored float64 net is exactly this map (w = 2: the tent map)."""
    widths = dyadic_tooth_widths(teeth)
    points = [Fraction(0)] + list(accumulate(widths[:-1]))
    slopes = [Fraction((-1) ** j) / widths[j] for j in range(teeth)]
    out = [slopes[0]] + [slopes[j] - slopes[j - 1] for j in range(1, teeth)]
    return Zigzag(tuple(Fraction(1) for _ in range(teeth)), tuple(points), tuple(out), Fraction(0))


def fold_zigzag(units: int) -> Zigzag:
    """(n+1) monotone pieces from n >= 3 units (``docs/theory.md``): widths 2u (u for piece 3),
    u = 1/(2n+1); units 2 and 3 face left so that the first piece gets its slope."""
    n = units
    if n < 3:
        raise RegionCountError("the fold construction needs n >= 3 units per layer (use tent_ffn for n = 2)")
    u = Fraction(1, 2 * n + 1)
    widths = [u if k == 3 else 2 * u for k in range(n + 1)]
    points = list(accumulate(widths[:-1]))
    slopes = [Fraction((-1) ** k) / widths[k] for k in range(n + 1)]
    jumps = [slopes[k] - slopes[k - 1] for k in range(1, n + 1)]
    sigma = [Fraction(-1) if k in (2, 3) else Fraction(1) for k in range(1, n + 1)]
    kappa = -sum((c * p for c, p, s in zip(jumps, points, sigma) if s < 0), Fraction(0))
    return Zigzag(tuple(sigma), tuple(points), tuple(jumps), kappa)


def sawtooth_ffn(teeth: int, depth: int) -> FFN:
    """The w-tooth zigzag FFN of depth L: exactly ``w^L`` regions and pieces on [0, 1], as stored.

    Each layer maps each of its w teeth onto [0, 1]; the teeth have dyadic widths (uniform 1/w when w is a
    power of two, else a mix of two powers of two: :func:`dyadic_tooth_widths`), so every weight is a
    dyadic rational and float64 stores the net without rounding.  (Uniform teeth j/w for other w would
    round: such a stored net has more regions, e.g. 27 instead of 25 for w = 5, L = 2.)  ``teeth = 2`` is
    the tent map T.
    """
    _check_width(depth, "depth")
    return compose_zigzags([tooth_zigzag(teeth)] * depth, f"sawtooth-w{teeth}-L{depth}")


def tent_ffn(depth: int) -> FFN:
    """Telgarsky's tent map T composed L times with 2 ReLUs per layer: ``2^L`` pieces on [0, 1]."""
    _check_width(depth, "depth")
    return compose_zigzags([tooth_zigzag(2)] * depth, f"tent-L{depth}")


def fold_ffn(units: int | Sequence[int], depth: int | None = None) -> FFN:
    """The (n+1)-fold zigzag FFN: exactly ``prod_l (n_l + 1)`` pieces on [0, 1], every n_l >= 3.

    ``fold_ffn(n, L)`` uses n units in each of L layers; ``fold_ffn([n_1, ..., n_L])`` one width per layer.
    This attains the 1-D upper bound prod(n_l + 1) of Serra et al.
    """
    if isinstance(units, int):
        _check_width(units, "units per layer")
        if depth is None:
            raise RegionCountError("fold_ffn(n, depth): give the depth")
        _check_width(depth, "depth")
        widths = [units] * depth
    else:
        widths = [int(n) for n in units]
    for n in widths:
        _check_width(n, "units per layer")
    label = f"n{widths[0]}-L{len(widths)}" if len(set(widths)) == 1 else "-".join(map(str, widths))
    return compose_zigzags([fold_zigzag(n) for n in widths], f"fold-{label}")


def zigzag_layer(width: int) -> Zigzag:
    """One layer of ``width`` units whose readout has ``width + 1`` pieces on [0, 1] (not onto [0, 1]).

    Kinks at the dyadic points j / 2^k, j = 1..width (2^k > width).  For width >= 2 unit 2 faces left
    (as in the fold), so that no piece is flat: slopes 2, 4, 2, -2, 2, -2, ...; composed after fold
    layers, neighbouring pieces then never merge and regions = pieces = prod(n_l + 1).  For width 1 the
    slopes are 0 and 2.  As the last layer after fold layers it attains Serra's 1-D bound.
    """
    _check_width(width)
    scale = 1 << width.bit_length()  # 2^k > width
    points = tuple(Fraction(j, scale) for j in range(1, width + 1))
    if width == 1:
        return Zigzag((Fraction(1),), points, (Fraction(2),), Fraction(0))
    slopes = [Fraction(2), Fraction(4), Fraction(2)] + [Fraction(2 * (-1) ** k) for k in range(3, width + 1)]
    out = [slopes[2], -slopes[0]] + [slopes[k] - slopes[k - 1] for k in range(3, width + 1)]
    sigma = [Fraction(1), Fraction(-1)] + [Fraction(1)] * (width - 2)
    kappa = -sum((o * p for o, p, sg in zip(out, points, sigma) if sg < 0), Fraction(0))
    return Zigzag(tuple(sigma), points, tuple(out), kappa)


def serra_attaining_ffn(widths: Sequence[int]) -> FFN:
    """An FFN attaining Serra's 1-D bound prod(n_l + 1) on [0, 1]: fold layers (every n_l >= 3, l < L),
    then a last layer of any width n_L with n_L + 1 pieces on each fold piece.

    Raises when a non-last width is below 3 (no construction for it is known to the package).
    """
    widths = [int(n) for n in widths]
    for n in widths:
        _check_width(n, "units per layer")
    if any(n < 3 for n in widths[:-1]):
        raise RegionCountError("the attaining construction needs every width but the last >= 3")
    layers = [fold_zigzag(n) for n in widths[:-1]] + [zigzag_layer(widths[-1])]
    return compose_zigzags(layers, "serra-" + "-".join(map(str, widths)))


def constructed_ffn(width: int, depth: int) -> FFN:
    """The tool's best explicit FFN with ``depth`` layers of ``width`` units on [0, 1].

    Its pieces are :func:`regioncount.theory.bounds.construction_pieces`: one layer of w units kinking at
    j/(w+1) (w+1 pieces); the fold for w >= 3 ((w+1)^L); the tent for w = 2 (2^L); a single kink for w = 1.
    """
    _check_width(width)
    _check_width(depth, "depth")
    if depth == 1:
        j = torch.arange(1, width + 1, dtype=DTYPE)
        out = torch.where(j % 2 == 0, 2.0, -2.0)
        return FFN([torch.ones(width, 1, dtype=DTYPE), out[None, :]],
                   [-(j / (width + 1)), torch.zeros(1, dtype=DTYPE)],
                   name=f"one-layer-w{width}", domain=Domain((0.0,), (1.0,)))
    if width >= 3:
        return fold_ffn(width, depth)
    if width == 2:
        return tent_ffn(depth)
    kink = Zigzag((Fraction(1),), (Fraction(1, 2),), (Fraction(1),), Fraction(0))
    identity = Zigzag((Fraction(1),), (Fraction(0),), (Fraction(1),), Fraction(0))
    return compose_zigzags([kink] + [identity] * (depth - 1), f"chain-L{depth}")
