"""The DEQ-vs-FFN separation of Theorem 1, evaluated exactly (``docs/theory.md``).

For a width m and alpha in (0, 1): the Theorem 1 DEQ has 2^m regions on [0, 1] (counted exactly here);
the FFN family of the theorem has depth L <= L_max = floor(m^alpha) and width <= w_max =
floor(2^(m^(1-alpha) - 1)).  For 1-D input an FFN of widths n_1..n_L has at most Serra's bound
(= prod(n_l + 1) for n_l >= 2) pieces, so the family reaches 2^m only if that bound does at w_max.
All integers are exact (Python ints; sympy for the irrational width cap), however large m is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..core.errors import RegionCountError
from ..core.settings import DEFAULT_CONSTRUCT_BUDGET  # noqa: E402  (re-exported)
from ..line.exact1d import count_segment
from ..models.networks import FFN
from .bounds import construction_pieces, min_width_to_match, same_neurons_max, serra
from .compare_cost import CountAllowance, _may_count
from .constructions import (
    MAX_EXACT_DEQ_WIDTH,
    constructed_ffn,
    theorem1_deq,
)
from .family import (
    balanced_widths,
    depth_cap,
    family_construction,
    family_pieces,
    l1_lower_bound,
    linf_lower_bound,
    teeth_approximant,
    teeth_errors,
    width_cap,
)


def separated_from(rows: list[CompareRow]) -> int | None:
    """The smallest m of ``rows`` from which every row is separated (None when the last one is not)."""
    unseparated = [row.m for row in rows if not row.separated]
    return next((row.m for row in rows if row.m > max(unseparated, default=0)), None)


def alpha_summary(alpha: Fraction, rows: list[CompareRow]) -> dict[str, Any]:
    """One alpha at the largest m of ``rows``: the caps, the family's bound over 2^m, how far outside the
    family the smallest match of depth L_max lies, the L1 lower bound, and where separation starts."""
    last = rows[-1]
    return {"alpha": float(alpha), "alpha_exact": str(alpha), "m": last.m, "max_depth": last.max_depth,
            "max_width": last.max_width, "best_ratio_to_deq": float(last.best_ffn_bound / last.deq_regions),
            "smallest_match_width_over_cap": last.depths[-1].smallest_match["width_over_cap"],
            "l1_lower_bound": last.l1_error["lower_bound"], "separated_from_m": separated_from(rows)}


@dataclass
class SeparationReport:
    """``compare``'s result: per alpha, its rows (:class:`CompareRow`, one per m) and the smallest m from which
    every row is separated.  JSON: one alpha's object, or ``{"alphas": [...], "summary": [...]}``."""

    alphas: list[tuple[Fraction, list[CompareRow]]]

    def separated_from(self, index: int) -> int | None:
        return separated_from(self.alphas[index][1])

    def to_json(self) -> dict[str, Any]:
        objects = [{"alpha": float(a), "alpha_exact": str(a), "separated_from_m": separated_from(rows),
                    "rows": [row.to_json() for row in rows]} for a, rows in self.alphas]
        if len(objects) == 1:
            return objects[0]
        return {"alphas": objects, "summary": [alpha_summary(a, rows) for a, rows in self.alphas]}


@dataclass
class DepthRow:
    depth: int
    bound_at_max_width: int
    ratio_to_deq: float
    l1_lower_bound: Fraction
    min_width_to_match: int
    status: str
    constructed_width: int | None = None
    constructed_regions: int | None = None
    constructed_method: str | None = None  # "exact" or "approximate" (see docs/exactness.md)
    #: why the uniform construction at the width needed was not counted (budget, time), when it was not
    constructed_not_counted: str | None = None
    best_in_family: dict[str, Any] = field(default_factory=dict)
    smallest_match: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "bound_at_max_width": self.bound_at_max_width,
            "ratio_to_deq": self.ratio_to_deq,
            "l1_lower_bound": float(self.l1_lower_bound),
            "min_width_to_match": self.min_width_to_match,
            "status": self.status,
            "constructed_width": self.constructed_width,
            "constructed_regions": self.constructed_regions,
            "constructed_method": self.constructed_method,
            "constructed_not_counted": self.constructed_not_counted,
            "best_in_family": self.best_in_family,
            "smallest_match": self.smallest_match,
        }


@dataclass
class CompareRow:
    m: int
    deq_regions: int
    deq_seconds: float
    max_depth: int
    max_width: int
    best_ffn_bound: int
    separated: bool
    same_neurons_bound: int
    depths: list[DepthRow]
    trained: list[dict[str, Any]] = field(default_factory=list)
    l1_error: dict[str, Any] = field(default_factory=dict)
    linf_error: dict[str, Any] = field(default_factory=dict)

    def verdict(self) -> str:
        """What this row shows, in words (every number counted or proved)."""
        top = max(self.depths, key=lambda d: d.best_in_family.get("pieces_by_construction", 0)).best_in_family
        if top.get("regions") is not None:
            how = "counted" if top.get("method") == "exact" else \
                f"counted approximately: {top.get('doubtful_decisions', 0):,} decisions left to rounding"
            best = f"the best in-family FFN built has {top['regions']:,} regions ({how}, {top['status']})"
        else:
            best = f"the best in-family construction has {top.get('pieces_by_construction', 0):,} pieces (not counted)"
        if not self.separated:
            return (f"not separated at m = {self.m}: the family's bound {self.best_ffn_bound:,} reaches the DEQ's "
                    f"{self.deq_regions:,} counted regions; {best}")
        lower = self.l1_error.get("lower_bound", 0.0)
        return (f"separated at m = {self.m}, as the family's caps imply for every m >= 2 ((w_max + 1)^L_max < "
                f"2^m, docs/theory.md): the DEQ has {self.deq_regions:,} regions (counted), every in-family FFN "
                f"at most {self.best_ffn_bound:,} (Serra's bound); {best}; every in-family FFN is at least "
                f"{lower:.4f} from T^m in L1")

    def to_json(self) -> dict[str, Any]:
        return {
            "m": self.m,
            "deq_regions": self.deq_regions,
            "deq_seconds": self.deq_seconds,
            "max_depth": self.max_depth,
            "max_width": self.max_width,
            "best_ffn_bound": self.best_ffn_bound,
            "best_ratio_to_deq": float(Fraction(self.best_ffn_bound, self.deq_regions)),
            "separated": self.separated,
            "same_neurons_bound": self.same_neurons_bound,
            "depths": [d.to_json() for d in self.depths],
            "l1_error": self.l1_error,
            "linf_error": self.linf_error,
            "verdict": self.verdict(),
            "trained": self.trained,
        }


def depth_row(m: int, depth: int, max_width: int, construct_budget: int, device: str,
              allowance: CountAllowance | None = None) -> DepthRow:
    """Bound at w_max, the width needed to reach 2^m, its status, and (within the piece budget and the time
    ``allowance``) built FFNs counted exactly."""
    allowance = allowance if allowance is not None else CountAllowance(float("inf"), device)
    target = 2**m
    bound = serra(1, [max_width] * depth)
    needed = min_width_to_match(m, depth)
    if bound < target:
        status = "impossible in family"
    elif construction_pieces(needed, depth) >= target:
        status = "constructible"
    else:
        status = "open"
    row = DepthRow(depth, bound, float(Fraction(bound, target)), l1_lower_bound(m, bound), needed, status)
    row.best_in_family = _built_and_counted([max_width] * depth, construct_budget, allowance, linear_pieces=True)
    match = balanced_widths(m, depth)
    row.smallest_match = _built_and_counted(match, construct_budget, allowance, linear_pieces=False)
    needed_pieces = construction_pieces(needed, depth)
    if needed_pieces >= target:
        # the uniform-width construction at the width needed (the smallest match when that is uniform)
        if match == [needed] * depth:
            if row.smallest_match["regions"] is not None:
                row.constructed_regions, row.constructed_method = (row.smallest_match["regions"],
                                                                   row.smallest_match["method"])
                row.constructed_width = needed
        else:
            uniform = _built_and_counted([needed] * depth, construct_budget, allowance, linear_pieces=False,
                                         build=lambda: constructed_ffn(needed, depth), pieces=needed_pieces)
            if uniform["regions"] is not None:
                row.constructed_regions, row.constructed_method = uniform["regions"], uniform["method"]
                row.constructed_width = needed
            else:
                row.constructed_not_counted = uniform["not_counted"]
    row.smallest_match["neurons"] = sum(match)
    row.smallest_match["width_over_cap"] = max(match) / max_width if max_width else float("inf")
    row.smallest_match["reaches_2m"] = row.smallest_match["pieces_by_construction"] >= target
    return row


def _built_and_counted(widths: list[int], budget: int, allowance: CountAllowance, linear_pieces: bool,
                       build: Callable[[], FFN] | None = None, pieces: int | None = None) -> dict[str, Any]:
    """Build a construction for ``widths`` (the family's, or ``build()`` with its known ``pieces``) and count
    it exactly when it fits the piece ``budget`` and the time ``allowance``; ``not_counted`` says why
    otherwise."""
    bound = serra(1, widths)
    entry: dict[str, Any] = {"widths": widths, "bound": bound, "regions": None, "pieces": None,
                             "method": None}
    if build is None or pieces is None:
        pieces, status = family_pieces(widths)
        build = build or (lambda: family_construction(widths))
    else:
        status = "constructed"
    entry["pieces_by_construction"] = pieces
    entry["status"] = status
    reason = _may_count(widths, pieces, budget, allowance)
    if reason is None:
        result = count_segment(build(), interval=(0.0, 1.0), device=allowance.device, linear_pieces=linear_pieces)
        entry["regions"], entry["pieces"], entry["method"] = (result.activation_regions, result.linear_pieces,
                                                              result.method)
        entry["doubtful_decisions"] = result.doubtful_decisions
    else:
        entry["not_counted"] = reason
    return entry


def compare_width(m: int, alpha: Fraction, *, construct_budget: int = DEFAULT_CONSTRUCT_BUDGET,
                  device: str = "auto", construct_seconds: float | None = None) -> CompareRow:
    """One row of ``regioncount compare``: the DEQ counted exactly against the FFN family's bounds.

    Family constructions are built and counted exactly when they have at most ``construct_budget`` pieces
    and their estimated counting times (:func:`construction_seconds`) fit ``construct_seconds`` together
    (None: :data:`~regioncount.core.settings.DEFAULT_CONSTRUCT_SECONDS` of the device)."""
    if m < 1:
        raise RegionCountError(f"widths must be at least 1, got {m}")
    if m > MAX_EXACT_DEQ_WIDTH:
        raise RegionCountError(f"width {m} exceeds {MAX_EXACT_DEQ_WIDTH}: the DEQ cannot be counted exactly "
                               "in float64 (use `regioncount bound` for bounds alone)")
    start = time.perf_counter()
    deq = count_segment(theorem1_deq(m), interval=(0.0, 1.0), linear_pieces=False, device=device,
                        known_regions=2**m, max_regions=None)
    deq_seconds = time.perf_counter() - start
    max_depth, max_width = depth_cap(m, alpha), width_cap(m, alpha)
    allowance = CountAllowance(construct_seconds, device)
    depths = [depth_row(m, L, max_width, construct_budget, device, allowance) for L in range(1, max_depth + 1)]
    best = max(d.bound_at_max_width for d in depths)
    row = CompareRow(m, deq.activation_regions, deq_seconds, max_depth, max_width, best,
                     best < deq.activation_regions, same_neurons_max(m), depths)
    lower = l1_lower_bound(m, best)
    row.l1_error = {"lower_bound": float(lower), "exact_lower_bound": str(lower)}
    row.linf_error = {"lower_bound": float(linf_lower_bound(m, best))}
    if max_width >= 2 and m >= 2:
        net, matched = teeth_approximant(m, max_depth, max_width)
        l1, linf = teeth_errors(m, matched)  # closed form; tests check it against exact_errors_to_sawtooth
        widths = [int(w.shape[0]) for w in net.weights[:-1]]
        row.l1_error |= {"constructed": float(l1), "constructed_exact": str(l1), "constructed_widths": widths,
                         "constructed_teeth": matched + 1}
        row.linf_error["constructed"] = float(linf)
    else:  # the constant 1/2 (all weights zero) is always in the family
        row.l1_error |= {"constructed": 0.25, "constructed_exact": "1/4", "constructed_widths": [1] * max_depth,
                         "constructed_teeth": 0}
        row.linf_error["constructed"] = 0.5
    return row
