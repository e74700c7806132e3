"""When is float64 arithmetic exact along a segment?  A static test for the 1-D kernels.

Every float64 is a dyadic rational ``M 2^e``.  Call ``lo(x)`` the exponent of its lowest set bit.  A sum
of products of dyadics is a multiple of ``2^lo`` with ``lo`` the smallest ``lo`` of its terms, and it is
computed exactly (every partial sum too) when its magnitude bound, the same sum taken over absolute
values, is below ``2^(lo + 53)``.  Propagating ``(lo, magnitude)`` through the layers (or the units of a
triangular DEQ, in forward-substitution order) bounds every slope and intercept the walk computes; if all
pass, every slope, intercept and output slope of every piece is the exact rational value, so equal
slopes are equal floats and the zero comparisons with error-free products are exact.  The breakpoints
themselves (``-c / s``) are still rounded: only decisions inside the tolerance band are doubtful then.
See ``docs/exactness.md``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.networks import DEQ, FFN, Model

_INF = np.inf


def low_bit_exponent(x: torch.Tensor) -> np.ndarray:
    """Elementwise exponent of the lowest set bit of each float64 (``+inf`` for zeros)."""
    a = x.detach().to(torch.float64).cpu().numpy()
    mant, exp = np.frexp(a)
    ints = np.abs(mant * 2.0**53).astype(np.int64)
    low = ints & -ints
    with np.errstate(divide="ignore"):
        tz = np.where(ints != 0, np.log2(np.where(low > 0, low, 1)).round(), 0)
    return np.where(a != 0, exp - 53 + tz, _INF)


def _matvec_lo(W_lo: np.ndarray, v_lo: np.ndarray) -> np.ndarray:
    """lo of W @ v: min over j of lo(W_ij) + lo(v_j) (+inf where every term is zero)."""
    if W_lo.size == 0:
        return np.full(W_lo.shape[0], _INF)
    return np.min(W_lo + v_lo[None, :], axis=1)


#: The exponent of the smallest subnormal float64: a dyadic with a lower set bit is not representable.
_LOWEST_BIT = -1074


def _ok(lo: np.ndarray, mag: np.ndarray) -> bool:
    """Every value (lowest-bit exponents ``lo``, magnitude bounds ``mag``) is held exactly: its bits span
    fewer than 53 places and none lies below the subnormal range (a product of tiny weights underflows)."""
    finite = np.isfinite(lo)
    return bool(np.all(mag[finite] < np.exp2(lo[finite] + 52)) and np.all(lo[finite] >= _LOWEST_BIT))


def exact_arithmetic(model: Model, origin: torch.Tensor, direction: torch.Tensor) -> bool:
    """True when every slope and intercept of the 1-D walk along ``origin + t direction`` is computed
    exactly in float64 (see the module docstring); False means rounding may occur, not that it does."""
    v_lo, v_mag = low_bit_exponent(direction), direction.abs().numpy()
    p_lo, p_mag = low_bit_exponent(origin), origin.abs().numpy()
    if isinstance(model, FFN):
        s_lo, s_mag, c_lo, c_mag = v_lo, v_mag, p_lo, p_mag
        for w, b in zip(model.weights, model.biases):
            w_lo, w_abs = low_bit_exponent(w), w.abs().numpy()
            s_lo, s_mag = _matvec_lo(w_lo, s_lo), w_abs @ s_mag
            c_lo = np.minimum(_matvec_lo(w_lo, c_lo), low_bit_exponent(b))
            c_mag = w_abs @ c_mag + b.abs().numpy()
            if not (_ok(s_lo, s_mag) and _ok(c_lo, c_mag)):
                return False
        return True
    assert isinstance(model, DEQ)
    static = _deq_static(model, origin, direction)
    if static is None:
        return False
    wn = static["wn"]
    s_mag, c_mag = static["s0"].copy(), static["c0"].copy()
    for t in range(1, model.width):  # forward substitution: unit t adds the contributions of units i < t
        s_mag[t] += float(wn[t, :t] @ s_mag[:t])
        c_mag[t] += float(wn[t, :t] @ c_mag[:t])
    if not (_ok(static["s_lo"], s_mag) and _ok(static["c_lo"], c_mag)):
        return False
    return _ok(static["out_lo"], static["a"] @ s_mag + static["out0"])


def _deq_static(model: DEQ, origin: torch.Tensor, direction: torch.Tensor) -> dict | None:
    """Lowest-bit exponents of every quantity of the triangular-DEQ walk, or None when the normalization
    by 1 - W_tt is not exact (then nothing can be proven)."""
    order = model.unit_order
    if order is None:
        return None
    idx = torch.tensor(order)
    W = model.W[idx][:, idx]
    one_minus = 1.0 - torch.diagonal(W)
    mant, _ = np.frexp(one_minus.numpy())
    if not np.all(np.abs(mant) == 0.5) or not torch.equal(1.0 - one_minus, torch.diagonal(W)):
        return None
    scale = 1.0 / one_minus
    Wn = torch.tril(W, diagonal=-1) * scale[:, None]
    Un, bn = model.U[idx] * scale[:, None], model.b[idx] * scale
    v_lo, p_lo = low_bit_exponent(direction), low_bit_exponent(origin)
    wn_lo = low_bit_exponent(Wn)
    s_lo = _matvec_lo(low_bit_exponent(Un), v_lo)
    c_lo = np.minimum(_matvec_lo(low_bit_exponent(Un), p_lo), low_bit_exponent(bn))
    for t in range(1, model.width):
        s_lo[t] = min(s_lo[t], float(np.min(wn_lo[t, :t] + s_lo[:t])))
        c_lo[t] = min(c_lo[t], float(np.min(wn_lo[t, :t] + c_lo[:t])))
    A = model.A[:, idx]
    a_lo = low_bit_exponent(A)
    out_lo = np.minimum(_matvec_lo(a_lo, s_lo), _matvec_lo(low_bit_exponent(model.B), v_lo))
    s0 = Un.abs().numpy() @ direction.abs().numpy()
    c0 = Un.abs().numpy() @ origin.abs().numpy() + bn.abs().numpy()
    out0 = model.B.abs().numpy() @ direction.abs().numpy()
    return {"wn": Wn.abs().numpy(), "wn_lo": wn_lo, "s_lo": s_lo, "c_lo": c_lo, "a": A.abs().numpy(), "a_lo": a_lo,
            "out_lo": out_lo, "s0": s0, "c0": c0, "out0": out0}


def _below(value: np.ndarray, lo: np.ndarray) -> bool:
    """Every |value| < 2^(lo + 53) where lo is finite (an exactly representable multiple of 2^lo)."""
    finite = np.isfinite(lo)
    return bool(np.all(value[finite] < np.exp2(lo[finite] + 53)))


def deq_walk_proven_exact(model: DEQ, origin: torch.Tensor, direction: torch.Tensor,
                          measured: dict[int, np.ndarray], linear: bool) -> bool:
    """A posteriori proof that no float64 operation of a triangular-DEQ walk rounded (``docs/exactness.md``).

    ``measured[t]`` = (max |us_t|, max |uc_t|): the largest complete slope and intercept of unit t over all
    pieces, recorded by the walk for every step it did in torch (the fused kernel's last levels are not
    measured).  Every value of the walk is a multiple of 2^lo (lo from the weights), and each partial sum
    of unit j is bounded by |u0_j| + sum_i |Wn_ji| M_i, with M_i the measured maximum of unit i (or, for
    unmeasured units, the same bound recursively).  A product or sum whose magnitude stays below 2^(lo + 53)
    is exact, because rounding is monotone and 2^(lo + 53) is a float; by induction over the operations,
    all checks passing proves that every slope, intercept and output slope equals its exact rational value.
    """
    static = _deq_static(model, origin, direction)
    if static is None:
        return False
    wn, wn_lo, s_lo, c_lo = static["wn"], static["wn_lo"], static["s_lo"], static["c_lo"]
    if not (_below(static["s0"], s_lo) and _below(static["c0"], c_lo) and _below(static["out0"], static["out_lo"])):
        return False
    m = model.width
    max_s, max_c = np.zeros(m), np.zeros(m)
    for j in range(m):
        # every partial sum of unit j is at most the sum of the absolute values of its terms
        bound_s = static["s0"][j] + float(wn[j, :j] @ max_s[:j])
        bound_c = static["c0"][j] + float(wn[j, :j] @ max_c[:j])
        products_ok = (_below(wn[j, :j] * max_s[:j], wn_lo[j, :j] + s_lo[:j])
                       and _below(wn[j, :j] * max_c[:j], wn_lo[j, :j] + c_lo[:j]))
        if not (products_ok and _below(np.array([bound_s]), s_lo[j:j + 1])
                and _below(np.array([bound_c]), c_lo[j:j + 1])):
            return False
        if j in measured:  # the measured maxima are exact values (by induction) and never above the bound
            max_s[j], max_c[j] = min(bound_s, measured[j][0]), min(bound_c, measured[j][1])
        else:
            max_s[j], max_c[j] = bound_s, bound_c
    if linear:
        a, a_lo = static["a"], static["a_lo"]
        if not _below(a * max_s[None, :], a_lo + s_lo[None, :]):
            return False
        if not _below(static["out0"] + a @ max_s, static["out_lo"]):
            return False
    return True
