"""What ``regioncount compare`` may afford: the time its DEQ counts take (refused past ``max_seconds``) and
the allowance of pieces and seconds for building and counting the family's FFNs."""

from __future__ import annotations

from ..core.errors import RegionCountError
from ..core.settings import DEFAULT_CONSTRUCT_SECONDS  # noqa: E402  (re-exported)
from .constructions import (
    MAX_EXACT_DEQ_WIDTH,
)


class CountAllowance:
    """Seconds of exact FFN counting a ``compare`` row may still spend, by the cost model
    :func:`construction_seconds`; each count is taken (and its estimate subtracted) only when it fits."""

    def __init__(self, seconds: float | None, device: str) -> None:
        from ..core.devices import resolve_device

        self.device = device
        self.kind = resolve_device(device).type
        self.seconds_left = default_construct_seconds(self.kind) if seconds is None else seconds

    def take(self, estimate: float) -> bool:
        if estimate > self.seconds_left:
            return False
        self.seconds_left -= estimate
        return True


#: Work (pieces x widest hidden layer: the walk carries each piece's hidden state) per second of the exact
#: count of a family construction, conservative for a 2-core CPU and an NVIDIA H100 (measured: a 2,047^2
#: net with 4.2e6 pieces, 8.6e9 units, in 19 s on a 16-thread Xeon; 4.4e12 units in ~150 s on the H100).
FFN_COUNT_RATE = {"cpu": 2e8, "cuda": 1e10}


#: A single hidden layer is counted by sorting its kinks: about this many work units per piece.
ONE_LAYER_UNITS_PER_PIECE = 128


#: Seconds per weight or bias to build a construction (its layers are derived in exact rationals).
BUILD_SECONDS_PER_PARAMETER = 2e-6


#: Largest construction (weights and biases) ``compare`` builds: 2^25 float64 values, 256 MiB.
MAX_BUILT_PARAMETERS = 2**25


def default_construct_seconds(device: str) -> float:
    """The default time allowance per ``compare`` width m on ``device`` ("auto", "cpu", "cuda")."""
    from ..core.devices import resolve_device

    return DEFAULT_CONSTRUCT_SECONDS.get(resolve_device(device).type, DEFAULT_CONSTRUCT_SECONDS["cpu"])


def construction_parameters(widths: list[int]) -> int:
    """Weights and biases of a 1 -> widths -> 1 FFN."""
    return sum(a * b + b for a, b in zip([1] + widths, widths + [1]))


def construction_seconds(widths: list[int], pieces: int, kind: str) -> float:
    """Estimated seconds to build and count a family construction with these hidden ``widths`` and
    ``pieces`` on a device of this ``kind`` (``docs/theory.md``, "Cost of the family search")."""
    units = ONE_LAYER_UNITS_PER_PIECE if len(widths) == 1 else max(widths)
    return (pieces * units / FFN_COUNT_RATE.get(kind, FFN_COUNT_RATE["cpu"])
            + construction_parameters(widths) * BUILD_SECONDS_PER_PARAMETER)


def _may_count(widths: list[int], pieces: int, budget: int, allowance: CountAllowance) -> str | None:
    """Why a construction is not counted (None: it is, and its estimate is taken from ``allowance``)."""
    if pieces > budget:
        return f"{pieces:,} pieces over the construct budget {budget:,}"
    parameters = construction_parameters(widths)
    if parameters > MAX_BUILT_PARAMETERS:
        return f"{parameters:,} parameters, over the {MAX_BUILT_PARAMETERS:,} that compare builds"
    estimate = construction_seconds(widths, pieces, allowance.kind)
    if not allowance.take(estimate):
        return (f"counting would take about {estimate:.3g} s on {allowance.kind}, over the "
                f"{max(allowance.seconds_left, 0.0):.3g} s left of the time limit")
    return None


#: Regions per second of the exact DEQ count used to estimate ``compare``'s time before it starts
#: (measured, docs/benchmarks.md: 2-core CPU ~1.5e7/s; NVIDIA H100 ~3e9/s), and the default time limit.
DEQ_RATE = {"cpu": 1.5e7, "cuda": 3e9}


def check_compare_cost(widths: list[int], device: str, max_seconds: float) -> float:
    """Refuse, before any work, widths beyond the float64 limit or DEQ counts estimated to take longer than
    ``max_seconds`` in all; returns the estimate in seconds."""
    from ..core.devices import resolve_device

    if max(widths) > MAX_EXACT_DEQ_WIDTH:
        raise RegionCountError(f"width {max(widths)} exceeds {MAX_EXACT_DEQ_WIDTH}: the DEQ cannot be counted exactly "
                               "in float64 (use `regioncount bound` for bounds alone)")
    kind = resolve_device(device).type
    seconds = sum(2.0**m for m in widths) / DEQ_RATE.get(kind, DEQ_RATE["cpu"])
    if seconds > max_seconds:
        raise RegionCountError(f"counting the DEQs of widths up to {max(widths)} would take about {seconds:.3g} s on "
                               f"{kind} (limit {max_seconds:g} s); raise `max_seconds`, use `device='cuda'` or "
                               "fewer widths")
    return seconds
