"""Exact second opinions for the d-D partition (``docs/exact-dd.md``): a vertex value that falls inside the
zero tolerance is decided again in rational arithmetic.

Float64 weights are dyadic rationals, so on a cell with known activation bits every unit's pre-activation
is an exact affine function a . x + c with rational a, c (FFN: the layers composed with their masks;
triangular DEQ: forward substitution, z_s = r_s / (1 - W_ss) on active units).  A vertex is the exact
solution of the constraints tight at it (box faces and unit hyperplanes, from its incidence bits), and the
value of the unit in question there is an exact rational: zero means the vertex lies on the hyperplane
(the tolerance's answer, now proven), anything else leaves the decision to the tolerance (the count is then
labelled approximate).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction

from ..exact.rational1d import Affine, compose, fractions_of, input_maps, solve_unique
from ..models.networks import DEQ, FFN, Model
from .polytopes import bit_mask

#: Most doubtful decisions re-decided in rational arithmetic per partition: measured at 0.3-0.6 ms each for
#: d <= 4 (central arrangements with every hyperplane doubled, all decisions exact), so about a minute at
#: most; the partition's time limit also stops it.
EXACT_BUDGET = 100_000


class ExactCells:
    """Exact unit hyperplanes and vertices of the cells of one model in a box of dimension ``d``.

    ``bits`` arguments are a cell's activation bits (units in global order, as the partition numbers them),
    of which only the units decided before the one asked about are read."""

    def __init__(self, model: Model, low: Sequence[float], high: Sequence[float],
                 embedding: tuple[Sequence[float], Sequence[Sequence[float]]] | None = None) -> None:
        """``embedding`` = (origin, directions): the cells hold coordinates y of the input points
        x = origin + sum_i y_i directions[i] (a plane through the input space); default x = y."""
        self.model = model
        self.d = d = len(low)
        self.low, self.high = [Fraction(v) for v in low], [Fraction(v) for v in high]
        self._cache: dict[tuple, list[Affine]] = {}
        n_in = model.weights[0].shape[1] if isinstance(model, FFN) else model.U.shape[1]
        self.inputs = input_maps(n_in, d, *(embedding or (None, None)))
        if isinstance(model, FFN):
            self.W = [fractions_of(w) for w in model.weights[:-1]]
            self.b = [fractions_of(b) for b in model.biases[:-1]]
            starts = [0]
            for w in model.hidden_widths:
                starts.append(starts[-1] + w)
            self.starts = starts
        else:
            assert isinstance(model, DEQ) and model.unit_order is not None
            self.Wd = fractions_of(model.W)
            # each unit's input part U x + b as an affine map of the cell coordinates
            maps = compose(fractions_of(model.U), fractions_of(model.b), self.inputs)
            self.U = [list(a) for a, _ in maps]
            self.bd = [c for _, c in maps]
            self.order = list(model.unit_order)
            self.position = {t: i for i, t in enumerate(self.order)}

    # --- unit hyperplanes --------------------------------------------------------------------------------

    def ffn_layer(self, layer: int, bits: Sequence[bool]) -> list[Affine]:
        """Pre-activations of FFN layer ``layer`` (0-based) as exact affine maps, given the earlier bits."""
        key = ("ffn", layer, tuple(bits[:self.starts[layer]]))
        if key not in self._cache:
            d = self.d
            if layer == 0:
                h: list[Affine] = self.inputs
            else:
                prev = self.ffn_layer(layer - 1, bits)
                first = self.starts[layer - 1]
                zero: Affine = ((Fraction(0),) * d, Fraction(0))
                h = [p if bits[first + i] else zero for i, p in enumerate(prev)]
            out = []
            for row, bias in zip(self.W[layer], self.b[layer]):
                a = [Fraction(0)] * d
                c = bias
                for w, (ha, hc) in zip(row, h):
                    if w:
                        a = [ai + w * hi for ai, hi in zip(a, ha)]
                        c += w * hc
                out.append((tuple(a), c))
            self._cache[key] = out
        return self._cache[key]

    def _deq_r(self, unit: int, bits: Sequence[bool]) -> Affine:
        """r_t of a triangular DEQ unit as an exact affine map, given the bits of the units before it."""
        before = self.order[:self.position[unit]]
        key = ("deq", unit, tuple(bits[s] for s in before))
        if key not in self._cache:
            d = self.d
            a, c = list(self.U[unit]), self.bd[unit]
            for s in before:
                w = self.Wd[unit][s]
                if w and bits[s]:
                    ra, rc = self._deq_r(s, bits)
                    scale = w / (1 - self.Wd[s][s])
                    a = [ai + scale * x for ai, x in zip(a, ra)]
                    c += scale * rc
            self._cache[key] = [(tuple(a[:d]), c)]
        return self._cache[key][0]

    def unit(self, unit: int, bits: Sequence[bool]) -> Affine:
        """The exact pre-activation (sign-equivalent r_t for a DEQ) of global unit ``unit`` on a cell."""
        if isinstance(self.model, FFN):
            layer = next(i for i in range(len(self.starts) - 1) if unit < self.starts[i + 1])
            return self.ffn_layer(layer, bits)[unit - self.starts[layer]]
        return self._deq_r(unit, bits)

    # --- vertices ----------------------------------------------------------------------------------------

    def constraint(self, bit: int, bits: Sequence[bool]) -> Affine:
        """Constraint ``bit`` as a . x + c = 0: box faces first (:func:`box_face`), then the units."""
        if bit < 2 * self.d:
            return box_face(bit, self.low, self.high)
        return self.unit(bit - 2 * self.d, bits)

    def vertex(self, tight_words: Sequence[int], bits: Sequence[bool], constraints: int) -> tuple[Fraction, ...] | None:
        """The exact point where every constraint of ``tight_words`` holds, or None when they do not meet in
        exactly one point (inconsistent incidences)."""
        return solve_vertex(tight_words, constraints, lambda bit: self.constraint(bit, bits), self.d)


def box_face(bit: int, low: Sequence[Fraction], high: Sequence[Fraction]) -> Affine:
    """Box constraint ``bit`` as a . x + c = 0: 2i is x_i = low_i, 2i + 1 is x_i = high_i."""
    i, side = divmod(bit, 2)
    return tuple(Fraction(int(k == i)) for k in range(len(low))), -(high[i] if side else low[i])


def solve_vertex(tight_words: Sequence[int], constraints: int, constraint: Callable[[int], Affine | None],
                 d: int) -> tuple[Fraction, ...] | None:
    """The exact point in R^d where every constraint whose bit is set in ``tight_words`` (among the first
    ``constraints``) holds, ``constraint(bit)`` giving each as (a, c); None when one is unknown or they do
    not meet in exactly one point."""
    rows = []
    for bit in range(constraints):
        word, mask = bit_mask(bit)
        if word < len(tight_words) and tight_words[word] & mask:
            affine = constraint(bit)
            if affine is None:
                return None
            rows.append([*affine[0], -affine[1]])
    solution = solve_unique(rows, d)
    return None if solution is None else tuple(x for x, in solution)


def value_at(affine: Affine, x: Sequence[Fraction]) -> Fraction:
    """a . x + c, exactly."""
    a, c = affine
    return sum((ai * xi for ai, xi in zip(a, x)), c)
