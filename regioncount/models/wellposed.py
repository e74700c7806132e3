"""Well-posedness certificates for ReLU DEQs ``z = relu(W z + q)``, ``q = U x + b`` (``docs/algorithms.md``,
``docs/exactness.md``).

Writing u = W z + q, z = u+, s = u-, the fixed-point equation is the linear complementarity problem
LCP(I - W, -q).  It has exactly one solution for every q in R^m iff ``I - W`` is a P-matrix (every principal
minor > 0; Samelson-Thrall-Wesler), which is the exact criterion tested here up to a size cap.  Cheaper
sufficient conditions are tried too, each with its number:

* triangular: the unit graph (edge i -> t for W[t, i] != 0, i != t) is acyclic and diag(W) < 1; exact,
  solved by forward substitution;
* contraction: ||W||_2 < 1 (ReLU is 1-Lipschitz);
* rho(|W|) < 1 (El Ghaoui et al.);
* monotone: I - W strongly monotone, lambda_min((I - W + (I - W)^T) / 2) > 0 (monDEQ).

A failing P-matrix test names the smallest failing subset (1-based units) and its minor: then some q in
R^m has no fixed point or several (the DEQ may still be well-posed on the range of U x + b only).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import networkx as nx
import numpy as np

from ..core.errors import NotWellPosedError
from ..core.integer_linalg import determinant, integer_rows, positive_definite
from ..core.settings import DEFAULT_P_MATRIX_CAP  # noqa: E402  (re-exported)

_BORDERLINE = 1e-9
#: Up to this width a sufficient condition that the rigorous float64 test (:func:`cholesky_proves_pd`) leaves
#: open is decided in exact integer arithmetic; above it, it is "not shown".
EXACT_CONFIRM_CAP = 64
_U = 2.0**-53


#: A square float64 matrix: a numpy array, or anything numpy converts (a CPU torch tensor, nested lists).
Matrix = Any


def as_array(W: Matrix) -> np.ndarray:
    """W as a float64 numpy array (torch tensors are detached and copied to the CPU first); this module
    needs no torch, so ``regioncount check`` of a JSON file answers without importing it."""
    if hasattr(W, "detach"):
        W = W.detach().cpu().numpy()
    return np.asarray(W, dtype=np.float64)


def exact_matrix(W: Matrix) -> list[list[Fraction]]:
    """The float64 entries of W as exact rationals (a float64 is a dyadic rational)."""
    return [[Fraction(float(v)) for v in row] for row in as_array(W).tolist()]


def _gamma(n: int) -> float:
    return n * _U / (1 - n * _U)


def cholesky_proves_pd(S: np.ndarray, err: float) -> bool:
    """True only when every symmetric matrix A with ||A - S||_2 <= ``err`` is proven positive definite.

    With a shift c, B = fl(S - c I) is factored by a plain Cholesky loop (numpy dot products, any order).
    If it runs to completion, R^T R = B + dB with |dB| <= gamma_{m+1} |R^T| |R| (Demmel; Higham, *Accuracy
    and Stability*, Thm 10.3), so ||dB||_2 <= gamma_{m+1} ||R||_F^2, and
    A = R^T R - dB + c I - (B - (S - c I)) + (A - S) >= (c - gamma_{m+1} ||R||_F^2 - u max|s_ii - c| - err) I,
    positive definite when that number is > 0 (checked with every term rounded up).  A failed factorization
    or check means "not shown", never "not positive definite"."""
    m = S.shape[0]
    if m == 0:
        return True
    if not bool(np.isfinite(S).all()) or not err >= 0:
        return False
    g = _gamma(m + 1)
    diag = np.diagonal(S)
    c = 2.0 * (g * float(np.abs(diag).sum()) * (1 + 4 * g) + _U * float(np.abs(diag).max()) + err) + 1e-300
    B = S - c * np.eye(m)
    R = np.zeros_like(B)
    for j in range(m):
        pivot = B[j, j] - float(np.dot(R[:j, j], R[:j, j]))
        if not pivot > 0:
            return False
        R[j, j] = np.sqrt(pivot)
        R[j, j + 1:] = (B[j, j + 1:] - R[:j, j] @ R[:j, j + 1:]) / R[j, j]
    if not bool(np.isfinite(R).all()):
        return False
    frobenius = float(np.sum(R * R)) * (1 + _gamma(m * m + 2))
    shift_rounding = _U * float(np.abs(diag - c).max())
    return c > (g * frobenius + shift_rounding + err) * (1 + 2.0**-20)


def _contraction_proven(W: np.ndarray) -> bool:
    """||W||_2 < 1 proven in float64: I - W^T W positive definite, the Gram's rounding (at most
    gamma_m ||W||_F^2 in norm) and the subtraction's (u ||S||_F) in the error."""
    m = W.shape[0]
    S = np.eye(m) - W.T @ W
    err = (_gamma(m) * float(np.sum(W * W)) + _U * float(np.linalg.norm(S))) * (1 + 2.0**-20) * 2
    return cholesky_proves_pd(S, err)


def _monotone_proven(W: np.ndarray) -> bool:
    """sym(I - W) positive definite, proven in float64 (the sum W + W^T and the subtraction from I round by
    at most 2 u ||S||_F in norm)."""
    m = W.shape[0]
    S = np.eye(m) - (W + W.T) / 2
    return cholesky_proves_pd(S, 4 * _U * float(np.linalg.norm(S)) * (1 + 2.0**-20) + 1e-300)


def _margin(m: int, scale: float) -> float:
    """A bound on the float64 error of an eigenvalue / singular value of an m x m matrix of norm ``scale``
    (backward-stable algorithms: error <= c m u ||A||; c = 16 taken generously)."""
    return 16.0 * m * 2.0**-53 * max(scale, 1e-300)


def _identity_minus(W: list[list[Fraction]]) -> list[list[Fraction]]:
    return [[(1 if r == c else 0) - W[r][c] for c in range(len(W))] for r in range(len(W))]


def _contraction_exact(W: list[list[Fraction]]) -> bool:
    """||W||_2 < 1 exactly: I - W^T W positive definite, i.e. c^2 I - N^T N for the integer N = c W."""
    N, c = integer_rows(W)
    m = len(N)
    columns = list(zip(*N))
    gram = [[sum(x * y for x, y in zip(columns[r], columns[k])) for k in range(m)] for r in range(m)]
    return positive_definite([[Fraction((c * c if r == k else 0) - gram[r][k]) for k in range(m)] for r in range(m)])


def _monotone_exact(W: list[list[Fraction]]) -> bool:
    """(I - W + (I - W)^T) / 2 positive definite, exactly."""
    M = _identity_minus(W)
    m = len(M)
    return positive_definite([[(M[r][c] + M[c][r]) / 2 for c in range(m)] for r in range(m)])


def _spectral_radius_below_one(absW: np.ndarray) -> bool:
    """rho(|W|) < 1, proved by Collatz-Wielandt: a positive rational x with |W| x < x componentwise.

    x = (I - |W| + eps I)^{-1} 1 (in float64) is tried, then checked exactly; failure to find such an x
    means "not shown", never "shown".
    """
    m = absW.shape[0]
    try:
        x = np.linalg.solve(np.eye(m) * (1 + 1e-12) - absW, np.ones(m))
    except np.linalg.LinAlgError:
        return False
    if not bool(np.isfinite(x).all()) or not bool((x > 0).all()):
        return False
    xs = [Fraction(float(v)) for v in x.tolist()]
    N = exact_matrix(absW)
    return all(sum((N[r][c] * xs[c] for c in range(m)), Fraction(0)) < xs[r] for r in range(m))


@dataclass
class Check:
    """One criterion: ``passed`` True / False / None (not run), the number it rests on, and a sentence."""

    name: str
    passed: bool | None
    value: float | None
    text: str


@dataclass
class Certificate:
    """Outcome of :func:`certify`: ``well_posed`` True / False / None (undecided), and why."""

    width: int
    well_posed: bool | None
    method: str
    reason: str
    checks: list[Check] = field(default_factory=list)
    unit_order: list[int] | None = None
    failing_subset: list[int] | None = None
    failing_minor: float | None = None

    def to_json(self) -> dict:
        return {
            "width": self.width,
            "well_posed": self.well_posed,
            "method": self.method,
            "reason": self.reason,
            "failing_subset": self.failing_subset,
            "failing_minor": self.failing_minor,
            "checks": [{"name": c.name, "passed": c.passed, "value": c.value, "text": c.text} for c in self.checks],
        }


def acyclic_order(W: Matrix) -> list[int] | None:
    """A forward-substitution order (topological order of the unit graph), or None if it has a cycle."""
    W = as_array(W)
    m = W.shape[0]
    off = W - np.diag(np.diagonal(W))
    if not np.triu(off, k=1).any():
        return list(range(m))
    graph = nx.DiGraph()
    graph.add_nodes_from(range(m))
    rows, cols = off.nonzero()
    graph.add_edges_from(zip(cols.tolist(), rows.tolist()))
    if not nx.is_directed_acyclic_graph(graph):
        return None
    return list(nx.lexicographical_topological_sort(graph))


def p_matrix_test(M: Matrix, exact_I_minus: list[list[Fraction]] | None = None
                  ) -> tuple[bool, list[int] | None, float | None, int]:
    """Every principal minor of M positive?  Returns (ok, failing subset 0-based, its minor, #determinants).

    Minors are float64 LU determinants, batched per subset size; any within 1e-9 (relative) of zero is
    recomputed exactly over the rationals, so the sign decision is exact.  Smallest failing subsets first.
    ``exact_I_minus``: the exact rational matrix when M = I - W was rounded in float64 (I - W is formed
    exactly from W's stored values, never from the rounded difference).
    """
    M = as_array(M)
    m = M.shape[0]
    scale = max(1.0, float(np.abs(M).max()))
    count = 0
    exact = exact_I_minus if exact_I_minus is not None else [[Fraction(float(v)) for v in row] for row in M.tolist()]
    for k in range(1, m + 1):
        subsets = np.array(list(itertools.combinations(range(m), k)), dtype=np.int64)
        count += subsets.shape[0]
        for start in range(0, subsets.shape[0], 65536):
            chunk = subsets[start:start + 65536]
            blocks = M[chunk[:, :, None], chunk[:, None, :]]
            dets = np.linalg.det(blocks)
            suspicious = np.flatnonzero(dets <= _BORDERLINE * scale**k).tolist()
            for i in suspicious:
                subset = chunk[i].tolist()
                value = determinant([[exact[r][c] for c in subset] for r in subset])
                if value <= 0:
                    return False, subset, float(value), count
    return True, None, None, count


def _confirmed(proven: bool, possible: bool, exact: list[list[Fraction]] | None, exact_test) -> bool:
    """A sufficient condition: proven by the rigorous float64 test, else (when it may hold) decided exactly
    where the matrix is small enough, else not shown."""
    if proven:
        return True
    if not possible or exact is None:
        return False
    return exact_test(exact)


def _verdict(passed: bool, yes: str, no: str) -> str:
    return f" {yes}" if passed else f" {no}"


def certify(W: Matrix, p_matrix_cap: int = DEFAULT_P_MATRIX_CAP) -> Certificate:
    """Decide whether ``z = relu(W z + q)`` has exactly one fixed point for every q (see module doc)."""
    W = as_array(W)
    m = W.shape[0]
    order = acyclic_order(W)
    triangular, refusal = _triangular_check(W, order)
    if refusal is not None:
        return refusal
    exact = exact_matrix(W) if m <= EXACT_CONFIRM_CAP else None
    checks = [triangular, _contraction_check(W, exact), _spectral_radius_check(W), _monotone_check(W, exact)]
    p_check, subset, minor = _p_matrix_check(W, exact, p_matrix_cap)
    checks.append(p_check)
    first = next((c for c in checks if c.passed), None)
    if p_check.passed is False:
        assert subset is not None
        return Certificate(m, False, "P-matrix", p_check.text, checks, order, [i + 1 for i in subset], minor)
    if first is not None:
        return Certificate(m, True, first.name, first.text, checks, order)
    reason = f"cannot certify: no sufficient condition holds ({checks[1].text}) and {p_check.text}"
    if p_check.passed is None:
        reason += " (raise `p_matrix_cap`, or pass `assume_well_posed` to count with every solve checked)"
    return Certificate(m, None, "none", reason, checks, order)


def _triangular_check(W: np.ndarray, order: list[int] | None) -> tuple[Check, Certificate | None]:
    """An acyclic unit graph: well-posed iff every diagonal entry is < 1 (forward substitution); a diagonal
    entry >= 1 refuses at once (the second value: that certificate)."""
    if order is None:
        return Check("triangular", False, None, "the unit graph has a cycle"), None
    diag = np.diagonal(W)
    bad = np.flatnonzero(diag >= 1).tolist()
    if bad:
        t = bad[0]
        text = f"W[{t + 1},{t + 1}] = {diag[t].item():g} >= 1: unit {t + 1} has no fixed point or two"
        check = Check("triangular", False, float(diag[t]), text)
        return check, Certificate(W.shape[0], False, "triangular", text, [check], None, [t + 1], 1.0 - float(diag[t]))
    return Check("triangular", True, None, "acyclic unit graph with diagonal < 1: unique fixed point by forward "
                 "substitution"), None


def _contraction_check(W: np.ndarray, exact: Any) -> Check:
    """||W||_2 < 1, proven by a Cholesky factorisation of I - W^T W with error bounds or decided exactly."""
    m = W.shape[0]
    norm = float(np.linalg.norm(W, ord=2))
    possible = norm < 1 + _margin(m, norm)
    proven = possible and _contraction_proven(W)
    passed = _confirmed(proven, possible, exact, _contraction_exact)
    how = (" (I - W^T W positive definite: Cholesky with rigorous error bounds)" if proven
           else " (I - W^T W positive definite: exact LDL^T)")
    return Check("contraction", passed, norm, f"||W||_2 = {norm:.6g}" + _verdict(passed, "< 1" + how, ">= 1"))


def _spectral_radius_check(W: np.ndarray) -> Check:
    """rho(|W|) < 1, proven by a Collatz-Wielandt vector checked exactly."""
    rho = float(np.abs(np.linalg.eigvals(np.abs(W))).max())
    passed = rho < 1 and _spectral_radius_below_one(np.abs(W))
    return Check("rho(|W|)", passed, rho, f"rho(|W|) = {rho:.6g}" + _verdict(
        passed, "< 1 (Collatz-Wielandt vector checked exactly)", ">= 1" if rho >= 1 else "< 1 not proved"))


def _monotone_check(W: np.ndarray, exact: Any) -> Check:
    """sym(I - W) positive definite (a monotone operator), proven by Cholesky with error bounds or exactly."""
    m = W.shape[0]
    eye = np.eye(m)
    sym = (eye - W + (eye - W).T) / 2
    lam = float(np.linalg.eigvalsh(sym).min())
    scale = float(np.linalg.norm(sym, ord=2))
    possible = lam > -_margin(m, scale)
    proven = possible and _monotone_proven(W)
    passed = _confirmed(proven, possible, exact, _monotone_exact)
    how = " (positive definite: Cholesky with rigorous error bounds)" if proven else " (positive definite: exact LDL^T)"
    return Check("monotone", passed, lam, f"lambda_min(sym(I - W)) = {lam:.6g}" + _verdict(passed, "> 0" + how, "<= 0"))


def _p_matrix_check(W: np.ndarray, exact: Any, cap: int) -> tuple[Check, list[int] | None, float | None]:
    """I - W a P-matrix (every principal minor positive: necessary and sufficient), up to width ``cap``; with
    the failing subset and its minor."""
    m = W.shape[0]
    if m > cap:
        return Check("P-matrix", None, None,
                     f"not run: width {m} > cap {cap} (2^{m} - 1 = {2**m - 1:,} determinants)"), None, None
    ok, subset, minor, dets = p_matrix_test(np.eye(m) - W, exact_I_minus=_identity_minus(exact or exact_matrix(W)))
    if ok:
        return Check("P-matrix", ok, minor, f"every principal minor of I - W is positive ({dets:,} determinants)"), \
            subset, minor
    assert subset is not None  # a failing test names its subset
    names = "{" + ",".join(str(i + 1) for i in subset) + "}"
    text = (f"principal minor det((I - W)[{names}]) = {minor:.6g} <= 0 ({dets:,} determinants checked): "
            "some q = U x + b in R^m has no fixed point or several")
    return Check("P-matrix", ok, minor, text), subset, minor


def require_well_posed(W: Matrix, p_matrix_cap: int = DEFAULT_P_MATRIX_CAP) -> Certificate:
    """:func:`certify`, raising :class:`NotWellPosedError` (one line, with ||W||_2) unless well-posed."""
    cert = certify(W, p_matrix_cap)
    if cert.well_posed is True:
        return cert
    norm = float(np.linalg.norm(as_array(W), ord=2))
    verdict = "not well-posed" if cert.well_posed is False else "not shown to be well-posed"
    raise NotWellPosedError(f"the DEQ is {verdict}: {cert.reason} (||W||_2 = {norm:.4g})")


__all__ = ["Certificate", "Check", "acyclic_order", "certify", "p_matrix_test", "require_well_posed",
           "DEFAULT_P_MATRIX_CAP"]
