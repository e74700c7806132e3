"""Linear pieces of 2-D slices and d-D boxes: neighbouring output maps compared per coordinate, doubtful
comparisons decided exactly (regioncount.partition.exact_pieces), against an exact sympy reference."""

from __future__ import annotations

import random

import pytest
import torch
from lp_reference import bfs_regions, reference_linear_pieces
from random_nets import random_ffn, random_general_deq

from regioncount import DEQ, FFN
from regioncount.partition.box_partition import partition_box
from regioncount.partition.exact_pieces import same_affine_pairs
from regioncount.partition.plane2d import partition_plane

F = torch.float64
LOW, HIGH = [0.125, 0.0], [1.0, 1.0]


def two_outputs(big: float, small: float) -> FFN:
    """y1 = big * x1, y2 = small * relu(x1 - 1/2): two regions, two pieces, whatever the scales."""
    return FFN([torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=F), torch.tensor([[big, 0.0], [0.0, small]], dtype=F)],
               [torch.tensor([0.0, -0.5], dtype=F), torch.zeros(2, dtype=F)])


def kink(size: float) -> FFN:
    """y = x1 + size * relu(x1 - 1/2): a kink of ``size`` at x1 = 1/2 (none when size is 0)."""
    return FFN([torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=F), torch.tensor([[1.0, size]], dtype=F)],
               [torch.tensor([0.0, -0.5], dtype=F), torch.zeros(1, dtype=F)])


def partitions(model):
    return (partition_plane(model, LOW, HIGH, device="cpu"), partition_box(model, LOW, HIGH, device="cpu"))


@pytest.mark.parametrize("e", [-40, -20, 0, 20, 31, 40])
def test_output_scales_far_apart_keep_their_kink(e):
    for part in partitions(two_outputs(2.0**e, 2.0**-e)):
        assert (part.activation_regions, part.linear_pieces, part.method) == (2, 2, "exact")


@pytest.mark.parametrize("size, pieces", [(2.0**-40, 2), (2.0**-60, 2), (2.0**-1000, 2), (0.0, 1)])
def test_tiny_kinks_are_decided_exactly(size, pieces):
    for part in partitions(kink(size)):
        assert (part.activation_regions, part.linear_pieces, part.method) == (2, pieces, "exact")
        assert part.exact_decisions >= (1 if size < 2.0**-30 else 0)


def test_tiny_kink_of_a_deq_readout():
    """y = x1 + 2^-60 z, z = relu(x1 - 1/2) (a DEQ with W = 0 and an input skip): float64 sums round the
    kink away, the exact Jacobians keep it; with the readout zeroed the two regions are one piece."""
    for a, pieces in ((2.0**-60, 2), (0.0, 1)):
        model = DEQ(W=torch.zeros(1, 1, dtype=F), U=torch.tensor([[1.0, 0.0]], dtype=F), b=torch.tensor([-0.5], dtype=F),
                    A=torch.tensor([[a]], dtype=F), B=torch.tensor([[1.0, 0.0]], dtype=F))
        for part in partitions(model):
            assert (part.activation_regions, part.linear_pieces, part.method) == (2, pieces, "exact")


def test_cancelling_units_are_one_piece():
    """Two copies of a unit with output weights 3 and -3 cancel exactly: one piece over two regions."""
    model = FFN([torch.tensor([[1.0, 0.5], [1.0, 0.5]], dtype=F), torch.tensor([[3.0, -3.0]], dtype=F)],
                [torch.tensor([-0.5, -0.5], dtype=F), torch.tensor([0.25], dtype=F)])
    for part in partitions(model):
        assert (part.activation_regions, part.linear_pieces, part.method) == (2, 1, "exact")


def with_scaled_outputs(model: FFN, rng: random.Random) -> FFN:
    """The same net with a second output column copied, rescaled by 2^-40 .. 2^40 or zeroed."""
    readout, bias = model.weights[-1], model.biases[-1]
    extra = readout[:1] * rng.choice([0.0, 2.0**-40, 2.0**40, 2.0**-20, -(2.0**33)])
    return FFN(model.weights[:-1] + [torch.cat([readout, extra])], model.biases[:-1] + [torch.cat([bias, bias[:1]])],
               name="scaled")


@pytest.mark.parametrize("seed", range(8))
def test_random_dyadic_nets_match_the_exact_reference(seed):
    rng = random.Random(seed)
    ffn = with_scaled_outputs(random_ffn(rng, 2, 0.0), rng)
    box = ([-1.0, -1.0], [1.0, 1.0])
    ref = bfs_regions(ffn, *box)
    expected = reference_linear_pieces(ffn, ref)
    for part in (partition_plane(ffn, *box, device="cpu"), partition_box(ffn, *box, device="cpu")):
        assert part.activation_regions == len(ref["patterns"])
        assert (part.method, part.linear_pieces) == ("exact", expected)


@pytest.mark.parametrize("seed", range(4))
def test_random_general_deqs_match_the_exact_reference(seed):
    rng = random.Random(100 + seed)
    deq = random_general_deq(rng, 2, 0.0)
    box = ([-1.0, -1.0], [1.0, 1.0])
    ref = bfs_regions(deq, *box)
    part = partition_box(deq, *box, device="cpu", assume_well_posed=True)
    assert part.activation_regions == len(ref["patterns"])
    assert (part.method, part.linear_pieces) == ("exact", reference_linear_pieces(deq, ref))


def test_spent_budget_leaves_the_comparison_to_the_tolerance():
    bits = torch.tensor([[True, False], [True, True]])
    gradients = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]]], dtype=F)  # 1 + 2^-60 rounds to 1
    pairs = torch.tensor([[0, 1]])
    decided = same_affine_pairs(kink(2.0**-60), bits, gradients, pairs, [[1.0, 0.0], [0.0, 1.0]], budget=0)
    assert (decided.exact, decided.open, bool(decided.same[0])) == (0, 1, True)
    assert "left to the float64 tolerance" in decided.notes()[0]
    decided = same_affine_pairs(kink(2.0**-60), bits, gradients, pairs, [[1.0, 0.0], [0.0, 1.0]])
    assert (decided.exact, decided.open, bool(decided.same[0])) == (1, 0, False)


def test_an_exactly_singular_pattern_is_a_one_line_error():
    """W = [[0, 1], [1, 0]] with both units active makes I - W D singular (reachable under
    assume_well_posed): the exact Jacobian of that pattern ends as NotWellPosedError, the CLI's one-line error."""
    from regioncount.core.errors import NotWellPosedError
    from regioncount.partition.exact_pieces import ExactJacobians

    model = DEQ(W=torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=F), U=torch.ones(2, 2, dtype=F),
                b=torch.zeros(2, dtype=F), A=torch.ones(1, 2, dtype=F))
    with pytest.raises(NotWellPosedError, match="singular"):
        ExactJacobians(model, [[1.0, 0.0], [0.0, 1.0]])((True, True))
