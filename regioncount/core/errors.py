"""Exception types raised by the library.

Every error a user can cause (bad model file, ill-posed DEQ, a count that would not fit) is a
:class:`RegionCountError`; its message is one line that names the problem, so a front end can print it
as is.
"""

from __future__ import annotations


class RegionCountError(Exception):
    """Base class of every error meant to be shown to the user as a one-line message."""


class ModelFormatError(RegionCountError):
    """A model file or in-memory model is malformed: wrong shapes, unknown keys, non-finite values."""


class NotWellPosedError(RegionCountError):
    """A DEQ whose fixed point is not known to be unique (or that this version cannot handle)."""


class SegmentError(RegionCountError):
    """An interval or segment that does not fit the model (A >= B, wrong dimension, ...)."""


class CostLimitError(RegionCountError):
    """A count whose estimated cost (regions, memory, precision) exceeds the configured limit."""
