"""What a general-W DEQ's 1-D count is worth: proven, recounted exactly, or approximate.

The float64 pattern walk (:mod:`regioncount.line.deq_general`) gives the patterns along the segment; the
rigorous bounds of :mod:`regioncount.line.deq_proof` prove them (and the slope changes they can separate);
open slope pairs are compared exactly (:mod:`regioncount.exact.rational_deq`); anything left open is decided by
an exact rational walk when it fits the budget, else the count is labelled approximate with the number of
open decisions (``docs/exactness.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from ..core.errors import NotWellPosedError
from ..core.geometry import Segment
from ..exact.rational_deq import ExactPatterns, exact_general_count, general_rational_cost
from ..models.networks import DEQ, DTYPE
from .deq_general import WalkResult
from .deq_proof import prove_walk


@dataclass
class GeneralVerdict:
    """The count a general-W walk is worth: ``method`` "exact" or "approximate", the open decisions, a note
    for the algorithm line, and exact breakpoints when a rational walk decided the count."""

    regions: int
    pieces: int | None
    method: str
    open_decisions: int
    note: str
    exact_breakpoints: list[Fraction] | None = None


def _proven_walk(model: DEQ, seg: Segment, walk: WalkResult, linear_pieces: bool, budget: float
                 ) -> tuple[GeneralVerdict | None, int, str]:
    """The a-posteriori proof of a walk that kept its patterns, with the slope comparisons it leaves open
    decided exactly within ``budget``: the exact verdict, or (None, open decisions, why) for the recount."""
    assert walk.sequence is not None
    p = torch.tensor(seg.origin, dtype=DTYPE)
    v = torch.tensor(seg.direction, dtype=DTYPE)
    proof = prove_walk(model, p, v, seg.t_low, seg.t_high, walk.sequence, linear_pieces)
    if proof.regions != walk.activation_regions:  # the walk's own count (and breakpoints) disagree with it
        proof.unproven += 1
    pieces = 1 + proof.slope_changes if linear_pieces else None
    spent = 0.0
    if proof.unproven == 0 and proof.open_slope_pairs:
        pair_cost = general_rational_cost(model, 2)
        if pair_cost * len(proof.open_slope_pairs) <= budget:
            patterns = ExactPatterns(model, list(seg.origin), list(seg.direction))
            rows = walk.sequence.cpu().to(torch.int64).tolist()
            assert pieces is not None
            pieces += sum(int(patterns.output_slope(tuple(rows[k])) != patterns.output_slope(tuple(rows[k + 1])))
                          for k in proof.open_slope_pairs)
            spent = pair_cost * len(proof.open_slope_pairs)
        else:
            proof.unproven += len(proof.open_slope_pairs)
    if proof.unproven == 0:
        note = "; float64 rounding bounded, every decision proven (a-posteriori error bounds)"
        if spent:
            note += f"; {len(proof.open_slope_pairs)} slope comparison(s) decided exactly"
        return GeneralVerdict(proof.regions, pieces, "exact", 0, note), 0, ""
    return None, proof.unproven, f"{proof.unproven} float64 decision(s) not proven by the error bounds"


def decide_general_walk(model: DEQ, seg: Segment, walk: WalkResult, linear_pieces: bool, budget: float
                        ) -> GeneralVerdict:
    """Prove ``walk`` (run with ``keep_patterns``), or recount exactly within ``budget`` rational operations,
    or label it approximate."""
    if walk.sequence is not None:
        proven, open_decisions, why = _proven_walk(model, seg, walk, linear_pieces, budget)
        if proven is not None:
            return proven
    else:
        why = "too many patterns to keep for the proof"
        open_decisions = max(walk.doubtful, 1)
    cost = general_rational_cost(model, walk.activation_regions)
    if cost <= budget:
        start = tuple(int(x) for x in walk.sequence[0].tolist()) if walk.sequence is not None else None
        try:
            exact = exact_general_count(model, list(seg.origin), list(seg.direction), seg.t_low, seg.t_high, start)
        except NotWellPosedError as error:
            return GeneralVerdict(walk.activation_regions, walk.linear_pieces, "approximate", open_decisions,
                                  f"; {why}; the exact walk failed ({error})")
        return GeneralVerdict(exact.activation_regions, exact.linear_pieces if linear_pieces else None, "exact",
                              open_decisions, f"; {why}: decided by an exact rational walk",
                              exact.breakpoints)
    return GeneralVerdict(walk.activation_regions, walk.linear_pieces, "approximate", open_decisions,
                          f"; {why}, left to float64 (an exact walk would take about {cost:.2g} rational "
                          f"operations, above the budget of {budget:.0e})")
