"""The FFN plane partition's layer-at-once cuts (``partition/arrangement_cuts.py``): the same partition as the
line-by-line cuts of ``polygon_proofs.cut_proven`` on random nets (widths past one key word included, many
small chunks included), the same as the exact polytope route on adversarial nets (integer weights with
concurrent lines, duplicated and dead units, near-parallel slivers), and on one layer: counter-clockwise
polygons whose edges lie on their recorded lines, patterns equal to the signs at their centroids, and a
sign it cannot prove leaves nothing behind."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from random_nets import gaussian_ffn

from regioncount import FFN
from regioncount.partition import arrangement_cuts, plane2d
from regioncount.partition.arrangement_cuts import cut_arrangement
from regioncount.partition.plane2d import partition_plane
from regioncount.partition.polygon_proofs import LineTable, box_bounds, cut_proven
from regioncount.partition.polygons import rectangle, rectangle_lines
from regioncount.partition.vertex_bounds import layer_errors

BOX = ([-1.0, -1.0], [1.0, 1.0])


def adversarial_ffn(kind: str, seed: int) -> FFN:
    """Small nets whose lines meet in degenerate ways (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    dims = [2, 6 + seed % 5, 5 + seed % 4, 2]
    weights, biases = [], []
    for layer, (fan_in, fan_out) in enumerate(zip(dims, dims[1:])):
        hidden = layer < len(dims) - 2
        if kind == "integers":
            w = torch.randint(-2, 3, (fan_out, fan_in), generator=g).double()
            b = torch.randint(-2, 3, (fan_out,), generator=g).double() / 2
        else:
            w = torch.round(torch.randn(fan_out, fan_in, generator=g, dtype=torch.float64) * 8) / 8
            b = torch.round(torch.randn(fan_out, generator=g, dtype=torch.float64) * 4) / 8
            if not hidden:
                pass
            elif kind == "duplicates":
                w[1], b[1] = w[0], b[0]
                w[2], b[2] = 0.0, -1.0
            else:  # near-parallel: a second line 2^-45 from the first, at a 2^-40 relative angle
                w[1], b[1] = w[0] * (1 + 2.0**-40), b[0] + 2.0**-45
        weights.append(w)
        biases.append(b)
    return FFN(weights, biases)


def signature(part) -> list[tuple[tuple[int, ...], float]]:
    """The partition's regions as sorted (pattern, area) pairs."""
    return sorted(zip(map(tuple, part.patterns.tolist()), part.areas.tolist()))


def assert_same_partition(one, other) -> None:
    assert (one.activation_regions, one.linear_pieces, one.method) == \
        (other.activation_regions, other.linear_pieces, other.method)
    first, second = signature(one), signature(other)
    assert [p for p, _ in first] == [p for p, _ in second]
    assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15) for (_, a), (_, b) in zip(first, second))
    assert one.pairs.shape == other.pairs.shape and int(one.bounded.sum()) == int(other.bounded.sum())


def counted(monkeypatch) -> dict[str, int]:
    """Count the layers the arrangement cut and the ones it left to the line-by-line cuts."""
    calls = {"cut": 0, "left": 0}

    def wrapped(*args, **kwargs):
        cut = cut_arrangement(*args, **kwargs)
        calls["left" if cut is None else "cut"] += 1
        return cut

    monkeypatch.setattr(plane2d, "cut_arrangement", wrapped)
    return calls


@pytest.mark.parametrize("sizes, seed", [([2, 16, 16, 1], 0), ([2, 24, 24, 24, 3], 1), ([2, 150, 1], 2),
                                         ([2, 70, 70, 1], 3)])
def test_arrangement_cuts_equal_the_line_by_line_cuts(sizes, seed, monkeypatch):
    model = gaussian_ffn(sizes, seed, he=True)
    calls = counted(monkeypatch)
    fast = partition_plane(model, *BOX, device="cpu")
    assert calls == {"cut": len(sizes) - 2, "left": 0}
    assert (fast.method, fast.engine) == ("exact", "polygon subdivision (layered)")
    monkeypatch.setattr(plane2d, "cut_arrangement", lambda *args, **kwargs: None)
    assert_same_partition(fast, partition_plane(model, *BOX, device="cpu"))


def test_many_small_chunks_give_the_same_partition(monkeypatch):
    model = gaussian_ffn([2, 20, 20, 1], 4, he=True)
    once = partition_plane(model, *BOX, device="cpu")
    monkeypatch.setattr(plane2d, "cut_arrangement", functools.partial(cut_arrangement, pairs_per_chunk=3))
    assert_same_partition(once, partition_plane(model, *BOX, device="cpu"))


@pytest.mark.parametrize("kind", ["integers", "duplicates", "near-parallel"])
@pytest.mark.parametrize("seed", range(6))
def test_adversarial_slices_equal_the_exact_route(kind, seed, monkeypatch):
    model = adversarial_ffn(kind, seed)
    part = partition_plane(model, *BOX, device="cpu")
    assert part.method == "exact"
    monkeypatch.setattr(plane2d, "_ffn_partition",
                        lambda *args: plane2d.SliceCells(None, None, None, None, 0, 1, 0))  # polytopes, exact
    exact = partition_plane(model, *BOX, device="cpu")
    assert "exact second opinions" in exact.engine
    assert_same_partition(part, exact)


def first_layer(weight: torch.Tensor, bias: torch.Tensor):
    """The inputs of the first layer's cuts of the box, as ``plane2d._ffn_partition`` builds them."""
    device = torch.device("cpu")
    polys = rectangle((-1.0, -1.0), (1.0, 1.0), device)
    state = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]], dtype=torch.float64)
    Z = state @ weight.T
    Z[:, 2] += bias
    EZ = layer_errors(state, None, weight, bias)
    radius = torch.zeros(1, 4, dtype=torch.float64)
    outgoing = torch.arange(4, dtype=torch.float64)[None]
    lines = LineTable(*rectangle_lines((-1.0, -1.0), (1.0, 1.0), device))
    return polys, radius, outgoing, lines, Z, EZ, *box_bounds(polys, radius, Z, EZ)


def test_one_layer_gives_oriented_polygons_on_their_lines_with_their_patterns():
    g = torch.Generator().manual_seed(5)
    weight, bias = torch.randn(40, 2, generator=g, dtype=torch.float64), torch.randn(40, generator=g, dtype=torch.float64) * 0.5
    polys, radius, outgoing, lines, Z, EZ, bound, candidates, positive = first_layer(weight, bias)
    cut = cut_arrangement(polys, radius, outgoing, lines, Z, EZ, candidates, positive, 0, lambda count: None)
    assert cut is not None and cut.active is not None
    reference = cut_proven(*first_layer(weight, bias)[:7], candidates, 0, lambda count: None)
    assert reference is not None and cut.polys.count == reference.polys.count
    assert torch.allclose(cut.polys.areas().sort().values, reference.polys.areas().sort().values, atol=1e-14)
    assert bool((cut.polys.areas() > 0).all())  # counter-clockwise
    # each edge k -> k + 1 lies on the line recorded as vertex k's outgoing one
    coef, _ = lines.tables()
    xy, n = cut.polys.xy, cut.polys.n
    k = torch.arange(xy.shape[1])[None]
    nxt = torch.where(k + 1 < n[:, None], k + 1, 0)
    line = coef[cut.outgoing.long()]
    for ends in (xy, torch.gather(xy, 1, nxt[..., None].expand_as(xy))):
        residual = (line[..., 0] * ends[..., 0] + line[..., 1] * ends[..., 1] + line[..., 2]).abs()
        assert float(residual[k < n[:, None]].max()) < 1e-12
    centroid = cut.polys.centroids()
    assert torch.equal(cut.active, centroid @ weight.T + bias > 0)


def test_a_sign_it_cannot_prove_leaves_the_line_table_as_it_was():
    """Three lines through (1/4, 1/4): the arrangement gives up, and its reserved lines are forgotten."""
    weight = torch.tensor([[1.0, -1.0], [1.0, 1.0], [0.25, 0.75]], dtype=torch.float64)
    bias = torch.tensor([0.0, -0.5, -0.25], dtype=torch.float64)
    polys, radius, outgoing, lines, Z, EZ, bound, candidates, positive = first_layer(weight, bias)
    assert cut_arrangement(polys, radius, outgoing, lines, Z, EZ, candidates, positive, 0, lambda count: None) is None
    assert (lines.filled, lines.reserved, lines.units().shape[0]) == (4, 4, 4)


def test_the_polygon_limit_is_checked_as_chunks_finish():
    g = torch.Generator().manual_seed(6)
    weight, bias = torch.randn(30, 2, generator=g, dtype=torch.float64), torch.randn(30, generator=g, dtype=torch.float64)
    polys, radius, outgoing, lines, Z, EZ, bound, candidates, positive = first_layer(weight, bias)
    counts: list[int] = []
    cut = cut_arrangement(polys, radius, outgoing, lines, Z, EZ, candidates, positive, 0, counts.append)
    assert cut is not None and counts == [cut.polys.count]


def test_a_polygon_crossed_by_too_many_lines_is_cut_line_by_line(monkeypatch):
    monkeypatch.setattr(arrangement_cuts, "MAX_PAIRS", 10)
    calls = counted(monkeypatch)
    model = gaussian_ffn([2, 12, 1], 8, he=True)
    part = partition_plane(model, *BOX, device="cpu")
    assert calls == {"cut": 0, "left": 1} and (part.method, part.engine) == ("exact", "polygon subdivision (layered)")
    monkeypatch.setattr(arrangement_cuts, "MAX_PAIRS", 2**22)
    assert_same_partition(part, partition_plane(model, *BOX, device="cpu"))


def test_keys_pack_seven_bytes_per_word():
    units = torch.tensor([0, 7, 8, 55, 56, 63, 111, 112])
    words = arrangement_cuts._bit_words(units, 3)
    bits = arrangement_cuts._unpack(words, 120)
    assert [row.nonzero().flatten().tolist() for row in bits] == [[u] for u in units.tolist()]
    assert bool((words >= 0).all()) and bool((words < 2**56).all())
