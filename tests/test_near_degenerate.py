"""Exact d-D counts of near-parallel and near-concurrent arrangements against an exact reference.

The nets come from :mod:`arrangements` (integer normals of 20, 40 and 53 bits, angles down to 2^-50,
misses down to 2^-62), as 2-layer FFNs and as triangular DEQs; the reference counts regions by
Zaslavsky's theorem over exact flats, never building a cell.  Every count labelled exact must equal it,
and (the point of the rigorous vertex bounds) almost none may be labelled approximate: the share is
printed and bounded."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
import torch
from arrangements import Arrangement, counts_of, generic_check, near_degenerate, reference_counts, sliced

from regioncount import count_all_space, partition_box
from regioncount.partition.plane2d import partition_plane

#: Largest share of counts that may end approximate (the issue's bound).
MOST_APPROXIMATE = 0.05


def test_reference_meets_closed_forms():
    rng = random.Random(5)
    for d in (2, 3):
        for n in (1, 3, 5):
            normals = torch.tensor([[rng.gauss(0, 1) for _ in range(d)] for _ in range(n)], dtype=torch.float64)
            offsets = torch.tensor([rng.gauss(0, 0.1) for _ in range(n)], dtype=torch.float64)
            ref = reference_counts(Arrangement(normals, offsets, -1e6, 1e6, "generic"))
            assert ref.all_space == ref.in_box == generic_check(n, d)
            assert ref.bounded == (math.comb(n - 1, d) if n >= d else 0)
    # three lines through one point (6 regions, none bounded), a duplicated and a rescaled line, a dead row
    normals = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    offsets = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    ref = reference_counts(Arrangement(normals, offsets, -1.0, 1.0, "central"))
    assert (ref.in_box, ref.all_space, ref.bounded) == (6, 6, 0)
    # two parallel lines outside the box: 3 regions of the plane, 1 in the box
    normals = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    offsets = torch.tensor([-2.0, -3.0], dtype=torch.float64)
    ref = reference_counts(Arrangement(normals, offsets, -1.0, 1.0, "parallel"))
    assert (ref.in_box, ref.all_space, ref.bounded) == (1, 3, 0)


def test_the_near_parallel_triangle_is_counted():
    """Lines y = 0 and x + 2^19 y = 0 (20-bit coefficients, an angle of about 2^-19) and x + y = 2^-43,
    missing their crossing by about 2^-43: 7 regions, 1 bounded (the tiny triangle), labelled exact."""
    normals = torch.tensor([[0.0, 1.0], [1.0, 2.0**19], [1.0, 1.0]], dtype=torch.float64)
    offsets = torch.tensor([0.0, 0.0, -(2.0**-43)], dtype=torch.float64)
    arr = Arrangement(normals, offsets, -1.0, 1.0, "issue")
    for model in (arr.ffn(), arr.deq()):
        box = partition_box(model, (-1.0, -1.0), (1.0, 1.0), device="cpu")
        assert (box.method, box.activation_regions, int(box.bounded.sum())) == ("exact", 7, 1)
        plane = partition_plane(model, (-1.0, -1.0), (1.0, 1.0), device="cpu")
        assert (plane.method, plane.activation_regions) == ("exact", 7)
    space = count_all_space(arr.ffn(), device="cpu")
    assert (space.method, space.activation_regions, space.bounded_regions) == ("exact", 7, 1)


def test_plane_slices_of_near_degenerate_3d_arrangements():
    """A plane through a 3-D arrangement (the slice model's first layer is the rounded fold of the plane
    into the weights; the proof carries that rounding, the exact decisions read the stored weights): every
    slice labelled exact has the regions of the exactly sliced line arrangement."""
    approximate = 0
    for seed in range(40):
        rng = random.Random(500 + seed)
        arr = near_degenerate(rng, 3, rng.choice((20, 40, 53)))
        origin = [rng.randint(-8, 8) / 64 for _ in range(3)]
        u = [rng.uniform(-1, 1) for _ in range(3)]
        w = [rng.uniform(-1, 1) for _ in range(3)]
        truth = counts_of(sliced(arr, origin, u, w), 2, Fraction(-1), Fraction(1)).in_box
        for model in (arr.ffn(), arr.deq()):
            part = partition_plane(model, origin=origin, dirs=(u, w), extent=1.0, device="cpu")
            if part.method != "exact":
                approximate += 1
                continue
            assert part.activation_regions == truth, (seed, arr.label)
    assert approximate <= MOST_APPROXIMATE * 80


def _check(seeds: range, dims: tuple[int, ...], all_space_every: int) -> None:
    counts = approximate = 0
    for seed in seeds:
        rng = random.Random(seed)
        d = dims[seed % len(dims)]
        arr = near_degenerate(rng, d, rng.choice((20, 40, 53)))
        ref = reference_counts(arr)
        for model in (arr.ffn(), arr.deq()):
            box = partition_box(model, (arr.low,) * d, (arr.high,) * d, device="cpu", chebyshev=False)
            counts += 1
            if box.method != "exact":
                approximate += 1
            else:
                assert box.activation_regions == ref.in_box, (seed, arr.label, "box")
            if d == 2:
                plane = partition_plane(model, (arr.low,) * 2, (arr.high,) * 2, device="cpu")
                counts += 1
                if plane.method != "exact":
                    approximate += 1
                else:
                    assert plane.activation_regions == ref.in_box, (seed, arr.label, "plane")
        if seed % all_space_every == 0:
            space = count_all_space(arr.ffn(), device="cpu")
            counts += 1
            if space.method != "exact":
                approximate += 1
            else:
                assert (space.activation_regions, space.bounded_regions) == (ref.all_space, ref.bounded), \
                    (seed, arr.label, "all space")
    print(f"near-degenerate arrangements: {counts} counts, {approximate} approximate "
          f"({approximate / counts:.1%})")
    assert approximate <= MOST_APPROXIMATE * counts


def test_near_degenerate_arrangements_quick():
    _check(range(60), (2, 3), all_space_every=4)


@pytest.mark.slow
def test_near_degenerate_arrangements_many():
    _check(range(60, 660), (2, 3), all_space_every=4)


def test_adjacency_of_the_tiny_triangle_comes_from_incidences():
    """Probes across facet means step over a triangle 2^-43 wide; the facets' own constraints do not: the
    9 adjacent pairs of 3 lines in general position, each differing in exactly one unit."""
    normals = torch.tensor([[0.0, 1.0], [1.0, 2.0**19], [1.0, 1.0]], dtype=torch.float64)
    offsets = torch.tensor([0.0, 0.0, -(2.0**-43)], dtype=torch.float64)
    part = partition_box(Arrangement(normals, offsets, -1.0, 1.0, "issue").ffn(), (-1.0, -1.0), (1.0, 1.0),
                         device="cpu")
    patterns = part.patterns[:, 0].tolist()
    pairs = part.pairs.tolist()
    assert len(pairs) == 9 and not part.notes
    assert all(bin(patterns[a] ^ patterns[b]).count("1") == 1 for a, b in pairs)


def test_adjacency_across_a_unit_that_wakes_up():
    """A second-layer unit that is identically zero where its only input is inactive, and active across that
    input's line: the neighbour's pattern differs in both units, and the pair is still found."""
    from regioncount import FFN

    f64 = torch.float64
    net = FFN([torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=f64), torch.tensor([[1.0, 0.0]], dtype=f64),
               torch.ones(1, 1, dtype=f64)],
              [torch.tensor([0.0, -0.5], dtype=f64), torch.zeros(1, dtype=f64), torch.zeros(1, dtype=f64)])
    part = partition_box(net, (-1.0, -1.0), (1.0, 1.0), device="cpu")
    assert part.activation_regions == 4 and len(part.pairs) == 4
    patterns = part.patterns.tolist()  # one word per layer
    flips = sorted(sum(bin(x ^ y).count("1") for x, y in zip(patterns[a], patterns[b])) for a, b in part.pairs.tolist())
    assert flips == [1, 1, 2, 2]
