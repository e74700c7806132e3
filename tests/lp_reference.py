"""Slow, independent reference for exact d-D region counts: BFS over adjacent activation patterns with an
LP facet check (scipy.optimize.linprog, HiGHS), as in algorithms.md §3.2.

A region is the set {x in box : s_j (a_j . x + c_j) >= 0 for all units j} of one pattern (s_j = +1 if
active); unit j is a facet when the LP "max r s.t. a_j . x + c_j = 0, s_k (a_k . x + c_k) >= r |a_k|,
box shrunk by r" has r > 0; stepping just across the facet's Chebyshev centre gives the neighbour's
pattern.  Works for FFNs and DEQs (any well-posed W, through u = (I - W D)^-1 (U x + b)).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import sympy
from scipy.optimize import linprog

from regioncount.models.networks import FFN


def pattern_at(model, x: np.ndarray) -> tuple[int, ...]:
    """Activation pattern of one point (strict: active iff pre-activation > 0), by direct evaluation."""
    if isinstance(model, FFN):
        h, bits = x, []
        for w, b in zip(model.weights[:-1], model.biases[:-1]):
            pre = w.numpy() @ h + b.numpy()
            bits += [int(v > 0) for v in pre]
            h = np.maximum(pre, 0)
        return tuple(bits)
    W, q = model.W.numpy(), model.U.numpy() @ x + model.b.numpy()
    z = np.zeros(len(q))
    for _ in range(10000):
        new = np.maximum(W @ z + q, 0)
        if np.abs(new - z).max() < 1e-15:
            break
        z = new
    active = W @ z + q > 0
    for _ in range(20):  # polish on the pattern
        M = np.eye(len(q)) - W * active[None, :]
        u = np.linalg.solve(M, q)
        if ((u > 0) == active).all():
            break
        active = u > 0
    return tuple(int(v) for v in active)


def affine_preactivations(model, pattern: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(a, c) with pre-activation_j(x) = a_j . x + c_j on the region of ``pattern``; a is (N, d)."""
    bits = np.array(pattern, dtype=float)
    if isinstance(model, FFN):
        d = model.input_dim
        A, c = np.eye(d), np.zeros(d)
        rows_a, rows_c, offset = [], [], 0
        for w, b in zip(model.weights[:-1], model.biases[:-1]):
            w, b = w.numpy(), b.numpy()
            za, zc = w @ A, w @ c + b
            rows_a.append(za)
            rows_c.append(zc)
            mask = bits[offset:offset + len(b)]
            A, c = za * mask[:, None], zc * mask
            offset += len(b)
        return np.vstack(rows_a), np.concatenate(rows_c)
    W, U, b = model.W.numpy(), model.U.numpy(), model.b.numpy()
    Minv = np.linalg.inv(np.eye(len(b)) - W * bits[None, :])
    return Minv @ U, Minv @ b


def bfs_regions(model, low, high, tol: float = 1e-9) -> dict:
    """All regions meeting the box [low, high]: {pattern: Chebyshev centre}, and adjacency edges."""
    low, high = np.asarray(low, float), np.asarray(high, float)
    d = len(low)
    rng = np.random.default_rng(0)
    start = pattern_at(model, low + (high - low) * rng.uniform(0.3, 0.7, d))
    seen = {start: None}
    edges = set()
    queue = [start]
    while queue:
        pattern = queue.pop()
        a, c = affine_preactivations(model, pattern)
        s = np.where(np.array(pattern) == 1, 1.0, -1.0)
        norms = np.linalg.norm(a, axis=1)
        live = norms > 1e-12
        for j in np.nonzero(live)[0]:
            # prefilter: does hyperplane j meet the box at all?
            corners = c[j] + np.sum(np.where(a[j] > 0, a[j] * high, a[j] * low)), \
                c[j] + np.sum(np.where(a[j] > 0, a[j] * low, a[j] * high))
            if corners[0] < 0 or corners[1] > 0:
                continue
            # units on the same hyperplane as j (duplicated or rescaled rows) vanish with it: not constraints
            unit_j = np.concatenate([a[j], [c[j]]]) / norms[j]
            others = [k for k in np.nonzero(live)[0] if k != j and
                      np.abs(np.abs(np.concatenate([a[k], [c[k]]]) / norms[k] @ unit_j)
                             - np.linalg.norm(np.concatenate([a[k], [c[k]]]) / norms[k]) * np.linalg.norm(unit_j))
                      > 1e-12]
            # variables (x, r); maximise r
            A_ub = [np.concatenate([-s[k] * a[k], [norms[k]]]) for k in others]
            b_ub = [s[k] * c[k] for k in others]
            for i in range(d):
                e = np.zeros(d + 1)
                e[i], e[-1] = 1.0, 1.0
                A_ub.append(e)
                b_ub.append(high[i])
                e = np.zeros(d + 1)
                e[i], e[-1] = -1.0, 1.0
                A_ub.append(e)
                b_ub.append(-low[i])
            res = linprog(np.concatenate([np.zeros(d), [-1.0]]), A_ub=np.array(A_ub), b_ub=np.array(b_ub),
                          A_eq=np.concatenate([a[j], [0.0]])[None], b_eq=[-c[j]],
                          bounds=[(None, None)] * d + [(None, 1.0)], method="highs")
            if res.status != 0 or -res.fun <= tol:
                continue
            x_f, r = res.x[:d], res.x[d]
            step = -s[j] * a[j] / norms[j] * min(1e-4, 0.25 * r)
            neighbour = pattern_at(model, x_f + step)
            edges.add(frozenset((pattern, neighbour)))
            if neighbour not in seen:
                seen[neighbour] = x_f + step
                queue.append(neighbour)
    return {"patterns": set(seen), "edges": edges}


def exact_gradient(model, pattern: tuple[int, ...]) -> sympy.Matrix:
    """The output Jacobian (k, d) on ``pattern`` in exact rationals (sympy), independent of regioncount's
    own rational code: the masked chain of an FFN, A D (I - W D)^-1 U + B for a DEQ."""
    def exact(t):
        rows = t.tolist() if t.dim() == 2 else [[v] for v in t.tolist()]
        return sympy.Matrix([[sympy.Rational(v) for v in row] for row in rows])

    bits = list(pattern)
    if isinstance(model, FFN):
        J = sympy.eye(model.weights[0].shape[1])
        start = 0
        for w in model.weights[:-1]:
            n = w.shape[0]
            D = sympy.diag(*bits[start:start + n])
            start += n
            J = D * exact(w) * J
        return exact(model.weights[-1]) * J
    D = sympy.diag(*bits)
    M = sympy.eye(model.width) - exact(model.W) * D
    return exact(model.A) * D * M.LUsolve(exact(model.U)) + exact(model.B)


def reference_linear_pieces(model, ref) -> int:
    """Components of the reference adjacency graph joining regions with exactly the same output Jacobian."""
    grads = {p: exact_gradient(model, p) for p in ref["patterns"]}
    graph = nx.Graph()
    graph.add_nodes_from(ref["patterns"])
    for edge in ref["edges"]:
        p, q = tuple(edge)
        if grads[p] == grads[q]:
            graph.add_edge(p, q)
    return nx.number_connected_components(graph)
