"""Region-count bounds for ReLU FFNs and DEQs, as exact Python integers (``docs/theory.md``).

Notation: ``n0`` input dimension, ``widths`` = (n_1, ..., n_L) hidden widths.
"""

from __future__ import annotations

from math import comb, prod

from .errors import RegionCountError


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
