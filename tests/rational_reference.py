"""The exact-rational reference counter lives in the library (``regioncount.exact.rational1d``): the fast
float64 kernels are checked against it, and it is their exact second opinion."""

from regioncount.exact.rational1d import ExactCount, exact_count

__all__ = ["ExactCount", "exact_count"]
