"""Exact d-D partitions of a box against the LP-BFS reference, closed-form counts, the 1-D and 2-D counts,
and degenerate arrangements (duplicate, rescaled and dead units, many hyperplanes through one point)."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
import torch
from lp_reference import bfs_regions, reference_linear_pieces
from random_nets import gaussian_ffn, random_ffn

from regioncount import DEQ, FFN, theorem1_deq
from regioncount.core.errors import CostLimitError, NotWellPosedError, SegmentError
from regioncount.line.exact1d import count_segment
from regioncount.partition.box_partition import partition_box
from regioncount.partition.plane2d import partition_plane
from regioncount.sampling.sampled import packed_patterns_at, sample_regions


def cube(d: int, r: float = 1.0) -> tuple[list[float], list[float]]:
    return [-r] * d, [r] * d


def triangular_deq(m: int, d: int, seed: int) -> DEQ:
    gen = torch.Generator().manual_seed(seed)
    W = torch.tril(torch.randn(m, m, generator=gen, dtype=torch.float64), -1) * 1.5
    W.diagonal().copy_(torch.tensor([0.5, 0.0, -1.0, 0.0, 0.75, 0.0][:m], dtype=torch.float64))
    return DEQ(W=W, U=torch.randn(m, d, generator=gen, dtype=torch.float64) * 2,
               b=torch.randn(m, generator=gen, dtype=torch.float64) * 0.5,
               A=torch.randn(2, m, generator=gen, dtype=torch.float64),
               B=torch.randn(2, d, generator=gen, dtype=torch.float64), name=f"tri-{seed}")


def check_consistent(part, model, box) -> None:
    """Volumes fill the box, every region's Chebyshev centre lies in it (its own pattern), no probe lost."""
    if part.volumes is not None:
        total = math.prod(h - lo for lo, h in zip(*box))
        assert abs(float(part.volumes.sum()) - total) <= 1e-9 * total
        assert float(part.volumes.min()) > 0
    assert part.inradii is not None and part.centres is not None
    assert (part.inradii > 0).all()
    centres = torch.from_numpy(part.centres)
    assert torch.equal(packed_patterns_at(model, centres), part.patterns)


CASES = ([("ffn", [3, 6, 1], s) for s in range(3)] + [("ffn", [3, 5, 5, 1], s) for s in range(4)]
         + [("ffn-dead", [3, 5, 4, 2], s) for s in range(2)] + [("ffn", [4, 5, 4, 1], s) for s in range(2)]
         + [("tri", (5, 3), s) for s in range(3)] + [("tri", (4, 4), s) for s in range(1)])


@pytest.mark.parametrize("kind, arch, seed", [case if case[2] == 0 else pytest.param(*case, marks=pytest.mark.slow)
                                              for case in CASES])  # the first seed of each net in the quick run
def test_partition_equals_the_lp_reference(kind, arch, seed):
    if kind == "tri":
        model = triangular_deq(*arch, seed=400 + seed)
        d = arch[1]
    else:
        model = gaussian_ffn(arch, 500 + seed, dead_out=kind == "ffn-dead")
        d = arch[0]
    box = cube(d)
    ref = bfs_regions(model, *box)
    part = partition_box(model, *box, device="cpu")
    assert part.method == "exact" and not part.notes
    assert part.activation_regions == len(ref["patterns"])
    assert part.pairs.shape[0] == len(ref["edges"])
    assert part.linear_pieces == reference_linear_pieces(model, ref)
    check_consistent(part, model, box)
    if kind == "ffn-dead":
        assert part.linear_pieces < part.activation_regions


def general_deq(m: int, d: int, seed: int) -> DEQ:
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(m, m, generator=gen, dtype=torch.float64)
    W *= 0.85 / torch.linalg.matrix_norm(W, ord=2)
    return DEQ(W=W, U=torch.randn(m, d, generator=gen, dtype=torch.float64) * 2,
               b=torch.randn(m, generator=gen, dtype=torch.float64) * 0.5,
               A=torch.randn(1, m, generator=gen, dtype=torch.float64), name=f"general-{seed}")


@pytest.mark.parametrize("m, d, seed", [(5, 3, s) for s in range(4)] + [(4, 4, 10)])
def test_general_w_deqs_by_pattern_refinement_equal_the_lp_reference(m, d, seed):
    """A cyclic W (certified contraction): cells refined until each lies in its pattern's region; the
    regions, adjacent pairs, linear pieces and volumes agree with the LP-BFS reference."""
    model = general_deq(m, d, seed)
    assert model.unit_order is None
    box = cube(d)
    ref = bfs_regions(model, *box)
    part = partition_box(model, *box, device="cpu")
    assert part.engine.startswith("polytope refinement")
    assert part.method == "exact"
    assert part.activation_regions == len(ref["patterns"])
    assert part.pairs.shape[0] == len(ref["edges"])
    assert not any("probes" in note for note in part.notes)  # every facet's neighbour from its own values
    assert part.linear_pieces == reference_linear_pieces(model, ref)
    check_consistent(part, model, box)  # volumes fill the box; each region's Chebyshev centre lies in it


@pytest.mark.parametrize("seed", [*range(4), *(pytest.param(s, marks=pytest.mark.slow) for s in range(4, 12))])
def test_degenerate_dyadic_nets_equal_the_lp_reference(seed):
    """Dead units, duplicated and rescaled rows (the same hyperplane several times), small dyadic weights
    whose hyperplanes meet in many-fold points: vertices on a hyperplane only up to rounding are proven on
    it in rational arithmetic, and the count is exact."""
    rng = random.Random(600 + seed)
    d = 3 if seed % 3 else 4
    model = random_ffn(rng, d, -1.0)
    box = cube(d, 2.0)
    ref = bfs_regions(model, *box)
    part = partition_box(model, *box, device="cpu")
    assert part.method == "exact"
    assert part.activation_regions == len(ref["patterns"])
    assert part.linear_pieces == reference_linear_pieces(model, ref)
    check_consistent(part, model, box)


def test_rational_re_decisions_change_the_answer():
    """Without the exact second opinion (budget 0) the degenerate nets are labelled approximate."""
    labels = []
    for seed in range(12):
        rng = random.Random(600 + seed)
        d = 3 if seed % 3 else 4
        model = random_ffn(rng, d, -1.0)
        part = partition_box(model, *cube(d, 2.0), device="cpu", exact_budget=0, chebyshev=False)
        labels.append(part.method)
        if part.method == "approximate":
            assert "budget" in " ".join(part.notes)
    assert labels.count("approximate") >= 3


def test_central_arrangement_many_planes_through_one_point():
    """n planes through the origin in general position cut R^3 into 2 (C(n-1, 0) + C(n-1, 1) + C(n-1, 2))
    cones; all meet the cube, and every cut passes through the same vertex."""
    n = 7
    gen = torch.Generator().manual_seed(3)
    W = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    model = FFN([W, torch.ones(1, n, dtype=torch.float64)], [torch.zeros(n, dtype=torch.float64),
                                                            torch.zeros(1, dtype=torch.float64)])
    part = partition_box(model, *cube(3), device="cpu")
    assert part.activation_regions == 2 * (1 + (n - 1) + math.comb(n - 1, 2))
    assert part.method == "exact"
    assert int(part.bounded.sum()) == 0
    check_consistent(part, model, cube(3))


def test_one_hidden_layer_in_general_position_fills_all_space():
    """In a box holding every vertex, n generic planes in R^3 give 1 + n + C(n, 2) + C(n, 3) regions."""
    n = 6
    gen = torch.Generator().manual_seed(5)
    W = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    vertices = [np.linalg.solve(W[list(c)].numpy(), -b[list(c)].numpy()) for c in itertools.combinations(range(n), 3)]
    reach = 2 * max(np.abs(v).max() for v in vertices) + 1
    model = FFN([W, torch.ones(1, n, dtype=torch.float64)], [b, torch.zeros(1, dtype=torch.float64)])
    part = partition_box(model, *cube(3, reach), device="cpu")
    assert part.activation_regions == 1 + n + math.comb(n, 2) + math.comb(n, 3)
    assert int(part.bounded.sum()) == math.comb(n - 1, 3)  # bounded regions of a generic arrangement


def test_duplicate_and_scaled_units_cut_once():
    W = torch.tensor([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0], [-1.0, -1.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([0.5, 1.0, -0.5, 0.25], dtype=torch.float64)
    model = FFN([W, torch.ones(1, 4, dtype=torch.float64)], [b, torch.zeros(1, dtype=torch.float64)])
    part = partition_box(model, *cube(3), device="cpu")
    assert part.activation_regions == 2 and part.method == "exact"
    assert part.pairs.shape[0] == 1


def test_unit_hyperplane_on_a_box_face():
    """x_0 = 1 is the cube's face: it cuts nothing; x_0 = 0 splits the cube in two."""
    W = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([-1.0, 0.0], dtype=torch.float64)
    model = FFN([W, torch.ones(1, 2, dtype=torch.float64)], [b, torch.zeros(1, dtype=torch.float64)])
    part = partition_box(model, *cube(3), device="cpu")
    assert part.activation_regions == 2 and part.method == "exact"
    assert torch.allclose(part.volumes, torch.tensor([4.0, 4.0], dtype=torch.float64))


@pytest.mark.parametrize("seed", range(4))
def test_one_dimensional_box_equals_the_exact_segment_count(seed):
    model = gaussian_ffn([1, 8, 8, 2], 700 + seed)
    part = partition_box(model, [-2.0], [2.0], device="cpu")
    seg = count_segment(model, interval=(-2.0, 2.0), linear_pieces=True, device="cpu")
    assert part.activation_regions == seg.activation_regions
    assert part.linear_pieces == seg.linear_pieces


@pytest.mark.parametrize("seed", range(4))
def test_two_dimensional_box_equals_the_plane_partition(seed):
    model = gaussian_ffn([2, 6, 6, 1], 800 + seed, dead_out=seed % 2 == 1)
    part = partition_box(model, *cube(2), device="cpu")
    plane = partition_plane(model, *cube(2), device="cpu")
    assert part.activation_regions == plane.activation_regions
    assert part.linear_pieces == plane.linear_pieces
    assert part.pairs.shape[0] == plane.pairs.shape[0]
    assert torch.allclose(torch.sort(part.volumes).values, torch.sort(plane.areas).values, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("m", [1, 4, 7])
def test_theorem1_slabs_in_three_dimensions(m):
    model = theorem1_deq(m, input_dim=3)
    part = partition_box(model, device="cpu")
    assert part.activation_regions == part.linear_pieces == 2**m
    assert part.method == "exact"
    assert torch.allclose(part.volumes, torch.full_like(part.volumes, 2.0**-m))


@pytest.mark.parametrize("seed", range(2))
def test_sampling_never_exceeds_the_exact_partition(seed):
    model = gaussian_ffn([3, 8, 8, 1], 900 + seed)
    exact = partition_box(model, *cube(3), device="cpu").activation_regions
    assert sample_regions(model, -1, 1, samples=200_000, seed=seed, device="cpu").distinct_patterns <= exact


def test_limits_and_refusals():
    model = gaussian_ffn([3, 8, 8, 1], 1)
    with pytest.raises(CostLimitError, match="at least .* regions .*sampled points.* above the limit of 10 regions;"):
        partition_box(model, *cube(3), device="cpu", max_regions=10)  # refused by the pilot, before cutting
    from regioncount.core.geometry import Box
    from regioncount.partition.box_partition import CellLimit, check_pilot

    true = partition_box(model, *cube(3), device="cpu", chebyshev=False).activation_regions
    cube3 = Box((-1.0,) * 3, (1.0,) * 3)
    assert check_pilot(model, cube3, torch.device("cpu"), CellLimit(10**9, 2**40)) is None  # could never refuse
    seen = check_pilot(model, cube3, torch.device("cpu"), CellLimit(10**4, 2**40))
    assert seen is not None and seen <= true
    if seen < true:  # the pilot lets it start; the partition itself stops at the limit
        with pytest.raises(CostLimitError, match=f"more cells than the limit of {seen:,} regions"):
            partition_box(model, *cube(3), device="cpu", max_regions=seen)
    big = gaussian_ffn([3, 256, 256, 256, 1], 2)  # far too many regions: refused at once, not after hours
    with pytest.raises(CostLimitError, match="sampled points"):
        partition_box(big, *cube(3), device="cpu", max_regions=10_000)
    with pytest.raises(CostLimitError, match="GiB"):
        partition_box(model, *cube(3), device="cpu", memory_limit=10_000)
    W = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)  # I - W singular: not well-posed
    ill_posed = DEQ(W=W, U=torch.ones(2, 3, dtype=torch.float64), b=torch.zeros(2, dtype=torch.float64),
                    A=torch.ones(1, 2, dtype=torch.float64))
    with pytest.raises(NotWellPosedError):
        partition_box(ill_posed, *cube(3), device="cpu")
    with pytest.raises(SegmentError, match="reaches"):
        partition_box(model, *cube(3, 1e40), device="cpu")
    with pytest.raises(SegmentError, match="at most 12 input dimensions"):
        partition_box(gaussian_ffn([13, 2, 1], 0), -1.0, 1.0, device="cpu")
    with pytest.raises(CostLimitError, match="ran past the time limit of 1e-09 s"):
        partition_box(model, *cube(3), device="cpu", max_seconds=1e-9)


@pytest.fixture
def model_file(tmp_path):
    from regioncount.io.model_files import save_model

    path = tmp_path / "m3.json"
    save_model(gaussian_ffn([3, 6, 6, 1], 11), path)
    return path


def test_cli_exact_box_json_table_and_graph(model_file, tmp_path):
    import json

    import networkx as nx
    from random_nets import run_cli

    graph = tmp_path / "g.graphml"
    out = run_cli("count", model_file, "--box", "-1", "1", "--exact", "--json", "--graph", graph)
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    part = partition_box(gaussian_ffn([3, 6, 6, 1], 11), *cube(3), device="cpu")
    assert data["activation_regions"] == part.activation_regions
    assert data["linear_pieces"] == part.linear_pieces
    assert data["method"] == "exact" and data["dimension"] == 3
    assert abs(data["volume"]["total"] - 8.0) < 1e-9
    loaded = nx.read_graphml(graph)
    assert loaded.number_of_nodes() == part.activation_regions
    assert loaded.number_of_edges() == part.pairs.shape[0]
    table = run_cli("count", model_file, "--box", "-1", "1", "--exact")
    assert table.exit_code == 0 and "activation regions" in table.output and "inradii" in table.output


@pytest.mark.parametrize("args, pattern", [
    (["--exact", "--samples", "5"], "does not combine with --samples"),
    (["--exact", "--chords", "5"], "does not combine with --chords"),
    (["--exact", "--workers", "2"], "partitions"),
    (["--exact", "--plot", "x.png"], "does not combine with --plot"),
    (["--exact", "--dtype", "float32"], "float64 only"),
    (["--exact", "--max-regions", "3"], "above the limit of 3 regions;"),
    (["--exact"], "no domain"),
])
def test_cli_exact_box_refusals(model_file, args, pattern):
    from random_nets import run_cli

    box = [] if args == ["--exact"] else ["--box", "-1", "1"]
    out = run_cli("count", model_file, *box, *args)
    assert out.exit_code != 0
    assert pattern in out.output, out.output
    assert "Traceback" not in out.output


def test_cli_exact_box_of_a_general_w_deq(tmp_path):
    import json

    from random_nets import run_cli

    from regioncount.io.model_files import save_model

    path = tmp_path / "deq.json"
    model = general_deq(5, 3, 2)
    save_model(model, path)
    out = run_cli("count", path, "--box", "-1", "1", "--exact", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["activation_regions"] == partition_box(model, *cube(3), device="cpu").activation_regions
    assert data["algorithm"].startswith("polytope refinement")


@pytest.mark.parametrize("kind", ["ffn", "triangular"])
def test_a_hyperplane_within_the_tolerance_of_a_cell_is_tested(kind):
    """Two parallel boundaries 1e-15 .. 1e-6 apart (1e-14 is inside the old 2^-40 band): the second never
    crosses a cell by more than the band, yet its vertices are tested, and their values are proven by their
    own error bounds, so the sliver is a region, counted exactly.  An identically zero unit costs no exact
    decision."""
    from regioncount.partition.plane2d import partition_plane

    f64 = torch.float64
    for gap, method, regions in ((1e-15, "exact", 3), (1e-14, "exact", 3), (1e-6, "exact", 3)):
        b = torch.tensor([-0.5, -0.5 - gap, 0.0], dtype=f64)
        U = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]], dtype=f64)  # the third unit is identically zero
        if kind == "ffn":
            model = FFN([U, torch.ones(1, 3, dtype=f64)], [b, torch.zeros(1, dtype=f64)])
        else:
            model = DEQ(W=torch.zeros(3, 3, dtype=f64), U=U, b=b, A=torch.ones(1, 3, dtype=f64))
        for part in (partition_box(model, (0.0, 0.0), (1.0, 1.0), device="cpu"),
                     partition_plane(model, (0.0, 0.0), (1.0, 1.0), device="cpu")):
            assert (part.method, part.activation_regions) == (method, regions)
            if gap > 1e-9:
                assert part.exact_decisions == 0
