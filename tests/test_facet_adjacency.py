"""Region adjacency from facets (``regioncount.partition.facet_adjacency``): facets that several units'
hyperplanes contain (coincident units of different layers, units whose map vanishes on the cell) get their
neighbour in rational arithmetic (``facet_crossing``), never by a probe; checked against the LP reference
and on a sliver that a probe would jump."""

from __future__ import annotations

import random

import pytest
import torch
from lp_reference import bfs_regions, reference_linear_pieces
from random_nets import random_deq, random_ffn

from regioncount import DEQ, FFN
from regioncount.partition.box_partition import partition_box
from regioncount.partition.facet_crossing import LayeredCrossing, PatternCrossing, crossing_rule, unit_ranks
from regioncount.partition.plane2d import partition_plane

SQUARE = ([-1.0, -1.0], [1.0, 1.0])


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def coincident_ffn() -> FFN:
    """Layer 1: x, -x, y, x + y - 0.3; layer 2: relu(x) - 2 relu(-x) (zero on x = 0, with both layer-1 units),
    relu(y) and 3 relu(y) (zero on the whole half y < 0), and one generic unit."""
    W2 = t([[1, -2, 0, 0], [0, 0, 1, 0], [0.5, 0.25, -1, 1], [0, 0, 3, 0]])
    return FFN([t([[1, 0], [-1, 0], [0, 1], [1, 1]]), W2, t([[1, 1, 1, 1]])],
               [t([0, 0, 0, -0.3]), t([0, 0, 0.1, 0]), t([0])], name="coincident")


def probed(part) -> bool:
    return any("probe" in note for note in part.notes)


def pattern_pairs(part) -> set[frozenset]:
    return {frozenset((tuple(part.patterns[i].tolist()), tuple(part.patterns[j].tolist())))
            for i, j in part.pairs.tolist()}


def test_coincident_units_of_different_layers_are_crossed_exactly():
    """The box and the plane partition of the same net: every facet's neighbour proven (no probe), the
    pairs and linear pieces those of the LP reference."""
    model = coincident_ffn()
    ref = bfs_regions(model, *SQUARE)
    for part in (partition_box(model, *SQUARE, device="cpu"), partition_plane(model, *SQUARE, device="cpu")):
        assert part.method == "exact" and not probed(part), part.notes
        assert part.activation_regions == len(ref["patterns"]) == 10
        assert part.pairs.shape[0] == len(ref["edges"]) == 14
        assert part.linear_pieces == reference_linear_pieces(model, ref)


def test_a_probe_would_jump_the_sliver_the_exact_crossing_does_not():
    """x = 0 is the hyperplane of x, of -x and of relu(x) - 2 relu(-x) (three units, two layers); a fourth
    unit's line x = 2^-50 leaves a sliver beside it.  The region left of x = 0 touches only the sliver; a probe
    1e-7 across x = 0 would land beyond the sliver and join it to the region on the right."""
    sliver = 2.0**-50
    model = FFN([t([[1, 0], [-1, 0], [1, 0]]), t([[1, -2, 0]]), t([[1]])], [t([0, 0, -sliver]), t([0]), t([0])])
    part = partition_box(model, *SQUARE, device="cpu")
    assert part.method == "exact" and not probed(part), part.notes
    assert part.activation_regions == 3
    thin = int(torch.as_tensor(part.volumes).argmin())
    assert part.pairs.shape[0] == 2 and all(thin in pair for pair in part.pairs.tolist())


@pytest.mark.parametrize("seed", [*range(12), *(pytest.param(s, marks=pytest.mark.slow) for s in range(12, 60))])
def test_degenerate_dyadic_nets_need_no_probe(seed):
    """Duplicated, rescaled and dead rows, small dyadic weights (FFNs and triangular DEQs, d = 2 and 3): no
    facet is probed, and the pairs equal the LP reference's (before the exact crossing, 34 of 150 such nets
    probed some facet)."""
    rng = random.Random(7000 + seed)
    d = 2 if seed % 2 else 3
    model = random_ffn(rng, d, -1.0) if seed % 3 else random_deq(rng, d, -1.0)
    box = ([-1.0] * d, [1.0] * d)
    part = partition_box(model, *box, device="cpu", chebyshev=False)
    ref = bfs_regions(model, *box)
    assert not probed(part), part.notes
    assert part.activation_regions == len(ref["patterns"]) and part.pairs.shape[0] == len(ref["edges"])


def silent_unit_deq() -> DEQ:
    """A cyclic W (units 0 and 1 feed each other) and unit 2 with no input of its own: u_2 = z_0, so its map
    vanishes wherever unit 0 is inactive and its hyperplane is unit 0's: facets with two zero units."""
    W = t([[0, 0.25, 0], [-0.25, 0, 0], [1, 0, 0]])
    return DEQ(W=W, U=t([[1, 0.5], [0.5, -1], [0, 0]]), b=t([0.1, 0, 0]), A=t([[1, -1, 2]]), name="silent-unit")


def test_a_general_w_deq_with_a_vanishing_unit_is_crossed_exactly():
    model = silent_unit_deq()
    assert model.unit_order is None
    ref = bfs_regions(model, *SQUARE)
    for part in (partition_box(model, *SQUARE, device="cpu"), partition_plane(model, *SQUARE, device="cpu")):
        assert part.method == "exact" and not probed(part), part.notes
        assert part.activation_regions == len(ref["patterns"])
        assert part.pairs.shape[0] == len(ref["edges"])
        assert part.linear_pieces == reference_linear_pieces(model, ref)


def test_the_rules_directly():
    """The layered rule settles units in order; the general rule finds the one consistent pattern; both
    answer None without a nonconstant zero unit to cross by."""
    model = coincident_ffn()
    rule = crossing_rule(model, *SQUARE)
    assert isinstance(rule, LayeredCrossing) and unit_ranks(model) == [0] * 4 + [1] * 4
    # the cell x > 0, y < 0: units x, -x and relu(x) - 2 relu(-x) vanish on x = 0; relu(y), 3 relu(y) throughout
    bits = [True, False, False, False, True, False, True, False]
    assert rule(bits, [0, 1, 4, 5, 7]) == [False, True, False, False, False, False, True, False]
    assert rule(bits, [5, 7]) is None  # no unit with a nonconstant map: no direction to cross by
    general = crossing_rule(silent_unit_deq(), *SQUARE)
    assert isinstance(general, PatternCrossing)
    assert general([True, False, True], [0, 2]) == [False, False, False]
    assert general([False, False, False], [0, 2]) == [True, False, True]
