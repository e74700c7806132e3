"""Defaults and choices shared by the library and the command line; importing this module is instant (it
imports nothing heavy), so the CLI can build its options and ``--help`` without loading torch."""

from __future__ import annotations

#: Devices a count can run on; "auto" picks CUDA when available.
DEVICE_CHOICES = ("auto", "cpu", "cuda")

#: Readouts of the Theorem 1 DEQ (``docs/theory.md``).
READOUTS = {
    "a": "y = T^m(x_1) = 2^m x_1 - sum_i 2^(m-i+1) z_i (sawtooth; uses an input skip)",
    "b": "y = -sum_i 2^(m-i+1) z_i (staircase of slopes 0 and -2^(m+1))",
    "c": "y = z_m (adjacent zero pieces merge)",
    "d": "y = sum_i z_i",
}

#: Refuse counts beyond this many regions unless asked (about 10 minutes on a 2-core CPU, ~1 min on a GPU).
DEFAULT_MAX_REGIONS = 2**34

#: Largest region count of an explicit FFN that ``compare`` builds and counts exactly.
DEFAULT_CONSTRUCT_BUDGET = 2**20
#: Estimated seconds of building and exactly counting FFN constructions per ``compare`` width m, by device
#: kind (a GPU counts the large constructions of ``--budget 2^30`` in seconds each).
DEFAULT_CONSTRUCT_SECONDS = {"cpu": 1.0, "cuda": 10.0}

#: ``compare``'s default limit on the estimated time of its DEQ counts.
DEFAULT_MAX_SECONDS = 120.0

#: Largest width for which all 2^m - 1 principal minors are computed by default (65,535 determinants).
DEFAULT_P_MATRIX_CAP = 16
