"""Every tolerance regioncount uses, in one place, with the decision it takes (``docs/exactness.md``).

Each decision taken inside one of these bands is counted where it happens, and a count with any such
decision left undecided in exact arithmetic is labelled ``approximate`` with their number.
"""

from __future__ import annotations

#: 1-D walks: two zeros closer than ``MERGE_RATIO * max(|t_low|, |t_high|, t_high - t_low)`` are one
#: breakpoint, and a zero that close to a piece end does not split the piece.
MERGE_RATIO = 2.0**-46
#: Output slopes that differ by at most this fraction of a coordinate's magnitude are doubtful (unless the
#: slopes are proven exact, when they are compared bit for bit).
SLOPE_RTOL = 1e-9
#: FFN and triangular-DEQ partitions (2-D and d-D) prove every sign by its own error bound or decide it
#: exactly; only a decision past the exact budget falls to this band: a value within this fraction of its
#: function's scale (|slope| * extent + |offset|) is then taken as zero (and counted).
PLANE_ZERO_TOL = 2.0**-40
#: DEQ pattern refinements (2-D and d-D): the same for constraints whose coefficients come from linear
#: solves; every value inside it is decided again exactly (regioncount.partition.exact_refinement).
PLANE_DEQ_ZERO_TOL = 1e-9
#: General-W DEQs: fixed-point iteration stops when a step is below this (relative to 1 + |z|).
FIXED_POINT_STEP_TOL = 1e-13
#: General-W DEQs: a polished fixed point must satisfy |relu(W z + q) - z| <= this * (1 + |z|).
FIXED_POINT_RESIDUAL_RTOL = 1e-10
#: General-W walk: a pre-activation within this fraction of its scale is zero when a pattern is settled.
SETTLE_ZERO_RTOL = 1e-11
