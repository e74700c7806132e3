"""Region-count bounds for ReLU FFNs and DEQs, as exact Python integers (``docs/theory.md``).

Notation: ``n0`` input dimension, ``widths`` = (n_1, ..., n_L) hidden widths.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb, prod
from typing import Any

from ..core.errors import RegionCountError


def _check(n0: int, widths: list[int]) -> None:
    if n0 < 1:
        raise RegionCountError(f"input dimension must be at least 1, got {n0}")
    if not widths:
        raise RegionCountError("give at least one hidden layer width")
    if any(n < 1 for n in widths):
        raise RegionCountError(f"every width must be at least 1, got {list(widths)}")


#: Limits of an exact bound computation: DP steps (big-integer operations) and decimal digits of the result.
MAX_BOUND_STEPS = 10**7
MAX_BOUND_DIGITS = 200_000
MAX_LAYERS = 10_000


def check_bound_cost(n0: int, widths: list[int]) -> None:
    """Refuse, before any work, bounds whose exact evaluation would not finish in seconds: the Serra DP
    takes about sum_l (min(n0, n_l) + 1)^2 big-integer steps, and the result has at most
    sum_l min(n0, n_l) log10(n_l + 1) + 1 digits."""
    import math

    _check(n0, widths)
    if len(widths) > MAX_LAYERS:
        raise RegionCountError(f"{len(widths):,} layers; at most {MAX_LAYERS:,}")
    steps = sum((min(n0, n) + 1) ** 2 for n in widths)
    digits = sum(min(n0, n) * math.log10(n + 1) for n in widths) + 1
    if steps > MAX_BOUND_STEPS or digits > MAX_BOUND_DIGITS:
        raise RegionCountError(f"this bound needs about {steps:.3g} big-integer steps and has up to {digits:.3g} "
                               f"digits (limits {MAX_BOUND_STEPS:.0e} steps, {MAX_BOUND_DIGITS:,} digits)")


def serra(n0: int, widths: list[int]) -> int:
    """Serra, Tjandraatmadja, Ramalingam (ICML 2018), Thm 1: sum over J of prod_l C(n_l, j_l).

    J = {0 <= j_l <= min(n0, n_1 - j_1, ..., n_(l-1) - j_(l-1), n_l)}; evaluated by a DP over the running
    minimum d (the cap), O(L * n0 * max n) big-integer operations.
    """
    _check(n0, widths)
    counts = {n0: 1}
    for n in widths:
        new: dict[int, int] = {}
        for cap, weight in counts.items():
            for j in range(min(cap, n) + 1):
                key = min(cap, n - j)
                new[key] = new.get(key, 0) + weight * comb(n, j)
        counts = new
    return sum(counts.values())


def montufar_per_layer(n0: int, widths: list[int]) -> int:
    """Montufar (2017) bottleneck bound: prod_l sum_{j=0}^{d_l} C(n_l, j), d_l = min(n0, n_1, ..., n_l)."""
    _check(n0, widths)
    total, d = 1, n0
    for n in widths:
        d = min(d, n)
        total *= sum(comb(n, j) for j in range(d + 1))
    return total


def product_1d(widths: list[int]) -> int:
    """prod_l (n_l + 1): the 1-D bound, equal to Serra's when every n_l >= 2, attained for n_l >= 3."""
    _check(1, widths)
    return prod(n + 1 for n in widths)


def telgarsky(widths: list[int]) -> int:
    """Telgarsky's (2w)^L for 1-D input, w = max width (weaker than prod(n_l + 1))."""
    _check(1, widths)
    return (2 * max(widths)) ** len(widths)


def montufar_lower(n0: int, widths: list[int]) -> int | None:
    """Montufar, Pascanu, Cho, Bengio (2014) constructive lower bound, for n_l >= n0 (else None):
    (prod_{l<L} floor(n_l / n0)^n0) * sum_{j<=n0} C(n_L, j)."""
    _check(n0, widths)
    if any(n < n0 for n in widths):
        return None
    head = prod((n // n0) ** n0 for n in widths[:-1])
    return head * sum(comb(widths[-1], j) for j in range(n0 + 1))


def deq_max(m: int) -> int:
    """2^m: the most regions of any well-posed width-m DEQ (distinct patterns), attained by Theorem 1."""
    if m < 1:
        raise RegionCountError(f"DEQ width must be at least 1, got {m}")
    return 2**m


def same_neurons_max(neurons: int) -> int:
    """Largest 1-D Serra bound over FFNs with ``neurons`` ReLUs in total (any depth and widths).

    In 1-D the DP state is a cap in {0, 1}: a layer of n >= 2 units multiplies the cap-1 weight by n + 1,
    a width-1 layer moves the cap-1 weight into cap 0, so the bound is (1 + k) * prod(n_l + 1) with k
    trailing width-1 layers: 3^(N/2) for even N, 2 * 3^((N-1)/2) for odd N.  Computed by an exact DP.
    """
    if neurons < 1:
        raise RegionCountError(f"neuron count must be at least 1, got {neurons}")
    best_products = [1] + [0] * neurons  # best prod(n_l + 1) with parts n_l >= 2 summing to exactly N
    for total in range(2, neurons + 1):
        best_products[total] = max((best_products[total - n] * (n + 1) for n in range(2, total + 1)
                                    if best_products[total - n]), default=0)
    return max((1 + k) * best_products[neurons - k] for k in range(neurons + 1) if best_products[neurons - k])


def integer_root(n: int, k: int) -> tuple[int, bool]:
    """(floor(n^(1/k)), whether it is exact) for integers n >= 0, k >= 1, by integer Newton steps."""
    if n < 0 or k < 1:
        raise RegionCountError(f"integer_root needs n >= 0 and k >= 1, got n = {n}, k = {k}")
    if n < 2 or k == 1:
        return n, True
    x = 1 << -(-n.bit_length() // k)  # 2^ceil(bits / k) >= n^(1/k)
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            break
        x = y
    return x, x**k == n


def min_width_to_match(m: int, depth: int) -> int:
    """Smallest w with (w + 1)^L >= 2^m, i.e. ceil(2^(m/L)) - 1 (exact integer roots)."""
    root, exact = integer_root(2**m, depth)
    return root - 1 if exact else root


def construction_pieces(width: int, depth: int) -> int:
    """Pieces on [0, 1] of the tool's zigzag construction with ``depth`` layers of ``width`` units:
    (w+1)^L for w >= 3 (fold) or L = 1; 2^L for w = 2 (tent); 2 for w = 1 (a single kink)."""
    if depth == 1:
        return width + 1
    if width >= 3:
        return (width + 1) ** depth
    return 2**depth if width == 2 else 2


@dataclass
class BoundReport:
    """Every bound of ``regioncount bound`` for one architecture (exact integers), whether the 1-D bound is
    attained by a construction of the package, and, when asked, that construction counted exactly; and/or
    the maximum of a width-m DEQ."""

    input_dim: int
    widths: list[int] | None
    serra: int | None = None
    montufar_per_layer: int | None = None
    product_1d: int | None = None
    telgarsky: int | None = None
    montufar_lower: int | None = None
    attained_1d: bool | None = None
    verified_regions: int | None = None
    verified_pieces: int | None = None
    verified_method: str | None = None
    deq_width: int | None = None
    deq_max: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.widths is not None:
            data = {"input_dim": self.input_dim, "widths": self.widths, "serra": self.serra,
                    "montufar_per_layer": self.montufar_per_layer, "product_1d": self.product_1d,
                    "telgarsky": self.telgarsky, "montufar_lower": self.montufar_lower,
                    "attained_1d": self.attained_1d, "verified_regions": self.verified_regions,
                    "verified_method": self.verified_method}
            if self.verified_pieces is not None:
                data["verified_pieces"] = self.verified_pieces
        if self.deq_width is not None:
            data.update(deq_max=self.deq_max, deq_width=self.deq_width)
        return data


#: Largest 1-D construction ``bound_report(..., verify=True)`` builds and counts (regions).
VERIFY_BUDGET = 2**26


def bound_report(input_dim: int, widths: list[int] | None, *, deq_width: int | None = None,
                 verify: bool = False) -> BoundReport:
    """The bounds of the FFN ``input_dim -> widths`` (``docs/theory.md``) and/or the width-``deq_width`` DEQ's
    maximum; with ``verify``, the 1-D construction attaining Serra's bound (fold layers of width >= 3, then
    any last width) is built and counted exactly."""
    report = BoundReport(input_dim, widths)
    if widths is not None:
        check_bound_cost(input_dim, widths)
        one_d = input_dim == 1
        report.serra = serra(input_dim, widths)
        report.montufar_per_layer = montufar_per_layer(input_dim, widths)
        report.product_1d = product_1d(widths) if one_d else None
        report.telgarsky = telgarsky(widths) if one_d else None
        report.montufar_lower = montufar_lower(input_dim, widths)
        report.attained_1d = all(n >= 3 for n in widths[:-1]) if one_d else None
        if verify:
            if not one_d:
                raise RegionCountError("`verify` builds a 1-D construction; use `input_dim` 1")
            if not report.attained_1d:
                raise RegionCountError("no construction in the tool attains this bound (it needs every width but "
                                       "the last >= 3)")
            assert report.product_1d is not None
            if report.product_1d > VERIFY_BUDGET:
                raise RegionCountError(f"the construction has {report.product_1d:,} regions, above the 2^26 "
                                       "`verify` budget")
            from ..line.exact1d import count_segment
            from .constructions import serra_attaining_ffn

            verified = count_segment(serra_attaining_ffn(widths), interval=(0.0, 1.0))
            report.verified_regions = verified.activation_regions
            report.verified_pieces = verified.linear_pieces
            report.verified_method = verified.method
    if deq_width is not None:
        report.deq_width, report.deq_max = deq_width, deq_max(deq_width)
    return report
