"""Exact linear algebra on rationals by fraction-free (Bareiss) elimination on integers
(``docs/exactness.md``).

A rational matrix times the common denominator c of its entries (a power of two for float64 data) is an
integer matrix.  Bareiss elimination keeps every entry an integer, each division exact: after step k the
pivot is the (k + 1)-th leading principal minor of the (row-swapped) matrix, the last one its
determinant.  With Python integers this is several times faster than Gaussian elimination over
``Fraction``, which reduces a gcd at every operation.  No torch: the well-posedness check of a JSON file
runs without it.
"""

from __future__ import annotations

import math
from fractions import Fraction


def integer_rows(rows: list[list[Fraction]]) -> tuple[list[list[int]], int]:
    """``rows`` times the common denominator ``c`` of all their entries: (integer rows, c)."""
    c = math.lcm(*(v.denominator for row in rows for v in row)) if rows else 1
    return [[v.numerator * (c // v.denominator) for v in row] for row in rows], c


def eliminate(M: list[list[int]], d: int, pivoting: bool = True) -> int | None:
    """Bareiss elimination of the first ``d`` columns of the integer rows ``M`` (at least d of them), in
    place, extra columns carried along.  Returns the sign of the row permutation, or None when a column has
    no usable pivot (the leading d x d block is singular; without ``pivoting``, when a leading principal
    minor is zero).  Afterwards ``M[k][k]`` is the (k + 1)-th leading principal minor (of the permuted rows)."""
    sign, previous = 1, 1
    for k in range(d):
        if pivoting:
            pivot_row = next((i for i in range(k, d) if M[i][k] != 0), None)
            if pivot_row is None:
                return None
            if pivot_row != k:
                M[k], M[pivot_row] = M[pivot_row], M[k]
                sign = -sign
        elif M[k][k] == 0:
            return None
        head, pivot = M[k], M[k][k]
        for i in range(k + 1, d):
            row, f = M[i], M[i][k]
            if f == 0:
                if pivot != previous:
                    M[i] = [v * pivot // previous for v in row]
                continue
            M[i] = [(v * pivot - f * h) // previous for v, h in zip(row, head)]
        previous = pivot
    return sign


def determinant(matrix: list[list[Fraction]]) -> Fraction:
    """The exact determinant of a square rational matrix."""
    n = len(matrix)
    if n == 0:
        return Fraction(1)
    M, c = integer_rows(matrix)
    sign = eliminate(M, n)
    return Fraction(0) if sign is None else Fraction(sign * M[n - 1][n - 1], c**n)


def positive_definite(matrix: list[list[Fraction]]) -> bool:
    """Is the symmetric rational matrix positive definite?  Sylvester's criterion: every leading principal
    minor of c A (the pivots of Bareiss elimination without pivoting) is positive."""
    M, _ = integer_rows(matrix)
    n = len(M)
    return eliminate(M, n, pivoting=False) is not None and all(M[k][k] > 0 for k in range(n))


def solve_square(rows: list[list[Fraction]], d: int) -> list[list[Fraction]] | None:
    """The solution X (d rows) of the square system ``[a | r_1 .. r_k]`` (d rows, ``a`` d x d), or None when
    ``a`` is singular: integer back substitution of X * det, exact by Cramer's rule."""
    M, _ = integer_rows(rows)
    width = len(M[0]) if M else d
    if eliminate(M, d) is None:
        return None
    det = M[d - 1][d - 1]
    if det == 0:
        return None
    Y = [[0] * (width - d) for _ in range(d)]
    for i in range(d - 1, -1, -1):
        upper = M[i]
        for c in range(width - d):
            acc = upper[d + c] * det - sum(upper[j] * Y[j][c] for j in range(i + 1, d) if upper[j])
            Y[i][c] = acc // upper[i]
    return [[Fraction(y, det) for y in r] for r in Y]
