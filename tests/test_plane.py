"""Exact 2-D partitions against the LP-BFS reference, degenerate arrangements, exports and PNG plots."""

from __future__ import annotations

import itertools
import json

import networkx as nx
import numpy as np
import pytest
import torch
from lp_reference import bfs_regions, reference_linear_pieces
from PIL import Image
from random_nets import gaussian_deq, gaussian_ffn, run_cli

from regioncount import DEQ, FFN, theorem1_deq
from regioncount.core.errors import SegmentError
from regioncount.partition.plane2d import partition_plane
from regioncount.sampling.sampled import sample_regions
from regioncount.viz.plot import plot_partition, region_colours

BOX = ([-1.0, -1.0], [1.0, 1.0])


random_ffn = gaussian_ffn


random_deq = gaussian_deq


CASES = ([("ffn", [2, 6, 1], s) for s in range(6)] + [("ffn", [2, 5, 5, 1], s) for s in range(8)]
         + [("ffn-dead", [2, 5, 5, 1], s) for s in range(4)] + [("ffn", [2, 4, 3, 3, 2], s) for s in range(4)]
         + [("tri", 5, s) for s in range(5)] + [("gen", 4, s) for s in range(5)])


@pytest.mark.parametrize("kind, arch, seed", [case if case[2] < 2 else pytest.param(*case, marks=pytest.mark.slow)
                                              for case in CASES])  # two seeds of each net in the quick run
def test_partition_equals_the_lp_reference(kind, arch, seed):
    if kind.startswith("ffn"):
        model = random_ffn(arch, 100 + seed, dead_out=kind == "ffn-dead")
    else:
        model = random_deq(arch, 200 + seed, triangular=kind == "tri")
    ref = bfs_regions(model, *BOX)
    part = partition_plane(model, *BOX, device="cpu")
    assert part.activation_regions == len(ref["patterns"])
    assert part.pairs.shape[0] == len(ref["edges"])
    assert part.linear_pieces == reference_linear_pieces(model, ref)
    assert abs(float(part.areas.sum()) - 4.0) < 1e-12
    assert float(part.polygons.areas().min()) > 0  # no zero-area polygons
    assert part.unresolved == 0 and not part.notes
    if kind == "ffn-dead":
        assert part.linear_pieces < part.activation_regions


def test_one_hidden_layer_general_position():
    model = random_ffn([2, 9, 1], 7, bias=0.3)
    W, b = model.weights[0].numpy(), model.biases[0].numpy()
    inside = sum(bool((np.abs(np.linalg.solve(W[[i, j]], -b[[i, j]])) < 1).all())
                 for i, j in itertools.combinations(range(9), 2))
    crossing = sum(bool(abs(b[i]) < np.abs(W[i]).sum()) for i in range(9))  # lines that meet the box
    assert crossing >= 7
    assert partition_plane(model, *BOX, device="cpu").activation_regions == 1 + crossing + inside


@pytest.mark.parametrize("m", [1, 5, 9])
def test_theorem1_slabs(m):
    part = partition_plane(theorem1_deq(m, input_dim=2), device="cpu")
    assert part.activation_regions == part.linear_pieces == 2**m
    assert torch.allclose(part.areas, torch.full_like(part.areas, 2.0**-m))
    assert part.pairs.shape[0] == 2**m - 1


@pytest.mark.parametrize("seed", range(3))
def test_sampled_never_exceeds_the_exact_partition(seed):
    model = random_ffn([2, 8, 8, 1], 300 + seed)
    exact = partition_plane(model, *BOX, device="cpu").activation_regions
    for n in (100, 10_000, 1_000_000):
        assert sample_regions(model, -1, 1, samples=n, seed=seed, device="cpu").distinct_patterns <= exact


def test_three_lines_through_one_point_and_a_line_along_an_edge():
    # units x, y, x + y (all through the origin), x + 1 (zero along the box edge x = -1),
    # and a second-layer unit equal to the first unit (its line coincides with x = 0)
    W1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    b1 = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    W2 = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)  # copy; and a dead unit
    b2 = torch.tensor([0.0, -1.0], dtype=torch.float64)
    model = FFN([W1, W2, torch.ones(1, 2, dtype=torch.float64)], [b1, b2, torch.zeros(1, dtype=torch.float64)])
    part = partition_plane(model, *BOX, device="cpu")
    # known answer: three lines through the origin cut the box into 6 sectors; the line x = -1 lies on
    # the border, the copied unit adds no boundary, the dead unit none.  (The LP reference cannot be used
    # here: two units sharing one line leave its facet LP without strict slack.)
    assert part.activation_regions == 6 and part.polygons.count == 6
    assert float(part.polygons.areas().min()) > 0.1
    assert part.pairs.shape[0] == 6  # a cycle of sectors around the origin


def test_unit_identically_zero_on_a_polygon():
    # second layer reads only unit 0, which is dead for x < 0: there the unit is identically zero
    W1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    W2 = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    model = FFN([W1, W2, torch.ones(1, 1, dtype=torch.float64)],
                [torch.zeros(2, dtype=torch.float64), torch.tensor([-1.0], dtype=torch.float64),
                 torch.zeros(1, dtype=torch.float64)])
    part = partition_plane(model, *BOX, device="cpu")
    # quadrants of x, y; then 2 relu(x) - 1 > 0 splits both right quadrants at x = 1/2: 6 regions
    assert part.activation_regions == len(bfs_regions(model, *BOX)["patterns"]) == 6


def test_planes_in_three_dimensions():
    model = random_ffn([3, 7, 7, 1], 8)
    through = partition_plane(model, through=([0, 0, 0], [1, 0, 0], [0, 1, 1]), device="cpu")
    spanned = partition_plane(model, origin=[0, 0, 0], dirs=([1, 0, 0], [0, 1, 1]), extent=1.0, device="cpu")
    # the parallelogram [0,1]^2 is a quarter of [-1,1]^2 of the same plane: never more regions
    assert 1 <= through.activation_regions <= spanned.activation_regions
    with pytest.raises(SegmentError, match="parallel"):
        partition_plane(model, origin=[0, 0, 0], dirs=([1, 0, 0], [2, 0, 0]))
    with pytest.raises(SegmentError, match="plane"):
        partition_plane(model, -1, 1)


def test_region_colours_are_unique_and_neighbours_differ():
    pairs = [(i, i + 1) for i in range(199)]
    colours = region_colours(200, pairs)
    assert len({tuple(np.round(c, 6)) for c in colours}) == 200
    assert all(np.abs(colours[i] - colours[j]).max() > 0.05 for i, j in pairs)


run = run_cli


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "net.json"
    model = random_ffn([2, 5, 5, 1], 3)
    doc = {"type": "ffn", "layers": [{"weight": w.tolist(), "bias": b.tolist()}
                                     for w, b in zip(model.weights, model.biases)],
           "domain": {"low": [-1, -1], "high": [1, 1]}}
    path.write_text(json.dumps(doc))
    return path


def test_cli_plane_json_and_exports(model_file, tmp_path):
    graph, geo, npz = tmp_path / "g.graphml", tmp_path / "p.geojson", tmp_path / "p.npz"
    result = run("count", model_file, "--plane", "--json", "--graph", graph, "--polygons", geo)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["method"] == "exact" and data["activation_regions"] >= 1 and data["linear_pieces"] >= 1
    assert {"bounded_regions", "area", "adjacent_pairs", "dtype", "device", "seconds"} <= set(data)
    loaded = nx.read_graphml(graph)
    assert loaded.number_of_nodes() == data["activation_regions"]
    assert loaded.number_of_edges() == data["adjacent_pairs"]
    features = json.loads(geo.read_text())["features"]
    assert len(features) == data["polygons"]
    assert run("count", model_file, "--plane", "--polygons", npz).exit_code == 0
    assert np.load(npz)["vertices"].shape[0] == data["polygons"]


def test_plot_png_is_a_real_picture(model_file, tmp_path):
    png = tmp_path / "regions.png"
    result = run("plot", model_file, "--out", png, "--dpi", 80, "--size", 5, 4, "--level", 0)
    assert result.exit_code == 0, result.output
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape[:2] == (320, 400)
    regions = json.loads(run("count", model_file, "--plane", "--json").output)["activation_regions"]
    assert len(np.unique(image.reshape(-1, 3), axis=0)) >= regions
    gradient = tmp_path / "gradient.png"
    assert run("plot", model_file, "--out", gradient, "--color", "gradient").exit_code == 0


def test_one_dimensional_plots(tmp_path):
    png = tmp_path / "deq.png"
    assert run("deq", "-m", 12, "--plot", png, "--dpi", 60).exit_code == 0
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.std() > 5  # not blank
    model = tmp_path / "m.json"
    run("deq", "-m", 5, "--save-model", model)
    assert run("plot", model, "--out", tmp_path / "p.png").exit_code == 0
    assert run("count", model, "--plot", tmp_path / "c.png").exit_code == 0


@pytest.mark.parametrize("args, pattern", [
    (("--plane", "--samples", "10"), "does not combine"),
    (("--graph", "x.graphml"), "needs --plane"),
    (("--plane", "--graph", "x.txt"), "GraphML"),
    (("--plane", "--polygons", "x.txt"), ".geojson or .npz"),
    (("--plane", "--plot", "x.jpg"), "PNG"),
    (("--origin", "0,0", "--dirs", "1,0", "2,0"), "parallel"),
    (("--plane", "--box", "1", "0"), "LO < HI"),
])
def test_cli_plane_bad_input(model_file, args, pattern):
    result = run("count", model_file, *args)
    assert result.exit_code == 2 and "Traceback" not in result.output and pattern in result.output


@pytest.mark.parametrize("offset, regions", [(0.0, 6), (2.0**-40, 7), (2.0**-60, 7), (2.0**-1000, 7)])
def test_partition_labels_tolerance_decisions(offset, regions):
    """Three lines: x = 0, y = 0 and x + y = offset.  Through the vertex (offset 0) every zero test is exact;
    2^-40 .. 2^-1000 beside it, the tiny triangle is a region: its vertices' signs are proven by their error
    bounds or decided exactly, and the count is exact."""
    from regioncount import FFN
    from regioncount.partition.plane2d import partition_plane

    W = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([0.0, 0.0, -offset], dtype=torch.float64)
    net = FFN([W, torch.ones(1, 3, dtype=torch.float64)], [b, torch.zeros(1, dtype=torch.float64)])
    part = partition_plane(net, [-1, -1], [1, 1], device="cpu")
    assert part.method == "exact" and part.to_json()["method"] == "exact"
    assert part.tolerance_decisions == 0 and part.activation_regions == regions
    assert sum(1 for b in part.bounded.tolist() if b) == (regions == 7)


def test_large_extents_are_labelled_or_refused_never_nan():
    import math
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from bench_plane import he_ffn

    from regioncount.core.errors import SegmentError
    from regioncount.partition.plane2d import partition_plane

    net = he_ffn(16, 3)
    small = partition_plane(net, [-100, -100], [100, 100], device="cpu")
    for extent in (1e4, 1e8, 1e12):
        part = partition_plane(net, [-extent, -extent], [extent, extent], device="cpu")
        data = part.to_json()
        assert all(math.isfinite(v) for v in data["area"].values())
        # a larger slice contains the smaller: fewer regions can only come from tolerance decisions
        if part.activation_regions < small.activation_regions:
            assert part.method == "approximate" and part.tolerance_decisions > 0
    with pytest.raises(SegmentError, match="overflow"):
        partition_plane(net, [-1e200, -1e200], [1e200, 1e200], device="cpu")


def test_deq_partitions_count_lines_closer_than_the_tolerance():
    """Two DEQ units whose lines are very close.  A triangular W, cut unit by unit, and a cyclic W, refined
    by patterns, both prove each vertex sign by its own error bound or decide it exactly, so a sliver of
    1e-14 or 1e-11 is a region (exact, 3), as it is further apart."""
    cyclic = torch.zeros(4, 4, dtype=torch.float64)
    cyclic[2, 3], cyclic[3, 2] = 1 / 8, -1 / 8  # a cycle of two units far from the slice's lines
    cases = ((torch.zeros(2, 2, dtype=torch.float64), 1e-14, "exact"),
             (torch.zeros(2, 2, dtype=torch.float64), 1e-11, "exact"),
             (cyclic, 1e-14, "exact"), (cyclic, 1e-11, "exact"), (cyclic, 1e-3, "exact"))
    for W, gap, method in cases:
        m = W.shape[0]
        U = [[1.0, 0.0], [1.0, 0.0]] + [[0.0, 0.0]] * (m - 2)
        b = [-0.5, -0.5 - gap] + [-1.0] * (m - 2)  # the cycle's units are dead on the slice
        model = DEQ(W=W, U=U, b=b, A=[[1.0] * m])
        part = partition_plane(model, low=(0, 0), high=(1, 1), device="cpu")
        assert part.method == method, (m, gap)
        if method == "exact":
            assert part.activation_regions == 3


@pytest.mark.parametrize("seed", [1, 2])
def test_large_extents_keep_their_regions(seed):
    """Nested boxes of extent 1 .. 1e6 (each contains the previous one): counts labelled exact never
    decrease, and up to 1e4 they are exact (the zero tolerance is relative to the scale: 2^-40)."""
    model = random_ffn([2, 16, 16, 1], seed)
    previous = 0
    for extent in (1.0, 1e2, 1e4, 1e6, 1e8, 1e12):
        part = partition_plane(model, low=(-extent, -extent), high=(extent, extent), device="cpu")
        assert not torch.isnan(part.areas).any()
        if extent <= 1e4:
            assert part.method == "exact"
        if part.method == "exact":
            assert part.activation_regions >= previous
            previous = part.activation_regions
        else:
            assert part.tolerance_decisions > 0


def test_partition_memory_is_bounded_with_an_estimate(model_file):
    """The subdivision stops, with the estimate, once its polygons need more than the memory limit; the same
    net counts normally under the default limit."""
    from regioncount.core.errors import CostLimitError
    from regioncount.line.cost import plane_polygon_bytes

    net = gaussian_ffn([2, 32, 32, 1], 0)
    full = partition_plane(net, [-2, -2], [2, 2], device="cpu")
    assert full.polygons.count > 100
    limit = 50 * plane_polygon_bytes(net)
    with pytest.raises(CostLimitError, match=r"polygons, about .* GiB .* above the memory limit"):
        partition_plane(net, [-2, -2], [2, 2], device="cpu", memory_limit=limit)
    result = run("count", model_file, "--plane", "--max-memory", "1e-6")
    assert result.exit_code == 2 and "memory limit" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_level_set_the_slice_does_not_reach_is_reported(tmp_path):
    model = random_ffn([2, 6, 1], 41)
    part = partition_plane(model, *BOX, device="cpu")
    far = plot_partition(part, tmp_path / "far.png", level=1e6)
    assert len(far) == 1 and "not reached" in far[0]
    inside = float(part.offsets[:, 0].median())  # some region's value at the origin: reached
    assert plot_partition(part, tmp_path / "near.png", level=float(model.forward(torch.zeros(1, 2))[0, 0])) == []
    assert isinstance(inside, float)


def test_captions_are_wrapped_to_the_figure():
    from regioncount.viz.plot import fit_caption

    text = "x" * 30 + " " + "y" * 30 + " " + "z" * 30 + "\nshort"
    wrapped = fit_caption(text, 3.0)
    assert all(len(line) <= max(20, int(3.0 * 72 / (0.55 * 9))) for line in wrapped.split("\n"))
    assert wrapped.replace("\n", " ").split() == text.replace("\n", " ").split()


def test_tables_written_to_a_pipe_are_not_cut():
    """At 80 columns the compare table's cells were cut to "…"; written to a pipe it is drawn in full."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run([sys.executable, "-m", "regioncount", "compare", "--alpha", "0.5", "--widths", "4:5"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert "…" not in out.stdout and "smallest match" in out.stdout


def concurrent_lines(a: float = 0.7, c: float = 0.1) -> FFN:
    """Three lines through (c, c) in exact arithmetic (x1 = x2, x1 + x2 = 2c, a x1 + (1 - a) x2 = c, with
    1 - a exact): float64 cuts put the vertex 1e-17 off the third line."""
    W1 = torch.tensor([[1.0, -1.0], [1.0, 1.0], [a, 1 - a]], dtype=torch.float64)
    return FFN([W1, torch.tensor([[1.0, 2.0, -3.0]], dtype=torch.float64)],
               [torch.tensor([0.0, -2 * c, -c], dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])


def test_doubtful_ffn_slices_are_decided_exactly():
    part = partition_plane(concurrent_lines(), *BOX, device="cpu")
    assert (part.method, part.activation_regions, part.tolerance_decisions) == ("exact", 6, 0)
    assert part.exact_decisions > 0 and "exact second opinions" in part.engine
    assert abs(float(part.areas.sum()) - 4.0) < 1e-12
    assert part.activation_regions == len(bfs_regions(concurrent_lines(), *BOX)["patterns"])


def test_a_slice_through_a_higher_dimensional_input_is_decided_exactly():
    """The same three concurrent lines, as planes of a 3-D input seen on the slice x3 = 1/4."""
    net = concurrent_lines()
    first = torch.cat([net.weights[0], torch.tensor([[4.0], [-8.0], [2.0]], dtype=torch.float64)], 1)
    bias = net.biases[0] - torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)  # minus 0.25 * the new column
    model = FFN([first, net.weights[1]], [bias, net.biases[1]])
    part = partition_plane(model, origin=[0.0, 0.0, 0.25], dirs=([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]), extent=1.0,
                           device="cpu")
    assert (part.method, part.activation_regions) == ("exact", 6)


def test_a_sliver_of_an_ffn_slice_is_a_region():
    """Two parallel lines 2^-50 apart: the sliver between them is cut (its vertices' signs proven by their
    own error bounds), so the slice has 3 regions, exactly."""
    W1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    model = FFN([W1, torch.ones(1, 2, dtype=torch.float64)],
                [torch.tensor([-(2.0**-10), -(2.0**-10) - 2.0**-50], dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    part = partition_plane(model, *BOX, device="cpu")
    assert (part.method, part.activation_regions, part.tolerance_decisions) == ("exact", 3, 0)


def test_proofs_in_many_small_batches_give_the_same_partition(monkeypatch):
    """The polygon subdivision proves its signs in batches (``polygon_proofs``): with a batch after every
    few decisions the partition, its engine and its label are the ones of a single batch per layer."""
    from regioncount.partition import polygon_proofs

    model = random_ffn([2, 12, 12, 1], 7)
    once = partition_plane(model, *BOX, device="cpu")
    monkeypatch.setattr(polygon_proofs, "FLUSH_AT", 8)
    often = partition_plane(model, *BOX, device="cpu")
    assert (often.activation_regions, often.linear_pieces, often.engine, often.method) == \
        (once.activation_regions, once.linear_pieces, once.engine, once.method) == \
        (once.activation_regions, once.linear_pieces, "polygon subdivision (layered)", "exact")
    assert torch.equal(once.patterns, often.patterns)


def test_an_unproven_sign_in_a_late_batch_sends_the_slice_to_the_exact_route(monkeypatch):
    """A vertex exactly on a later line (three concurrent lines) is found however the proofs are batched."""
    from regioncount.partition import polygon_proofs

    monkeypatch.setattr(polygon_proofs, "FLUSH_AT", 1)
    part = partition_plane(concurrent_lines(), *BOX, device="cpu")
    assert (part.method, part.activation_regions) == ("exact", 6) and "exact second opinions" in part.engine


def test_the_neighbours_of_a_sliver_are_proven_not_probed():
    """Two parallel lines 2^-50 apart: the regions on either side touch only the sliver between them.  A
    probe 1e-7 across an edge would jump the sliver and join them; flipping each edge's unit does not."""
    W1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    model = FFN([W1, torch.ones(1, 2, dtype=torch.float64)],
                [torch.tensor([-(2.0**-10), -(2.0**-10) - 2.0**-50], dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    part = partition_plane(model, *BOX, device="cpu")
    assert part.activation_regions == 3 and part.pairs.shape[0] == 2
    sliver = int(part.areas.argmin())
    assert sorted(sliver in pair for pair in part.pairs.tolist()) == [True, True]
    assert part.linear_pieces == 3 and not part.notes


@pytest.mark.parametrize("m, d, seed", [(5, 2, 1), (6, 3, 2), (7, 4, 3)])
def test_general_w_slices_take_their_neighbours_from_the_facets_values(m, d, seed, monkeypatch):
    """A general-W DEQ's slice (pattern refinement): the region pairs, border contact and linear pieces from
    each edge's own zero units equal those found by probing across every edge."""
    import regioncount.partition.plane2d as plane2d

    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(m, m, generator=gen, dtype=torch.float64)
    model = DEQ(W=W * 0.85 / torch.linalg.matrix_norm(W, ord=2), U=torch.randn(m, d, generator=gen, dtype=torch.float64),
                b=torch.randn(m, generator=gen, dtype=torch.float64) * 0.5,
                A=torch.randn(1, m, generator=gen, dtype=torch.float64))
    plane = dict(origin=[0.1] * d, dirs=([1.0] + [0.3] * (d - 1), [0.2, -1.0] + [0.5] * (d - 2)), device="cpu")

    def pairs(part):
        return {frozenset((tuple(part.patterns[i].tolist()), tuple(part.patterns[j].tolist())))
                for i, j in part.pairs.tolist()}

    proven = partition_plane(model, [-1.0, -1.0], [1.0, 1.0], **plane)
    assert proven.engine == "polygon refinement by patterns" and proven.method == "exact"
    refine = plane2d._deq_partition
    monkeypatch.setattr(plane2d, "_deq_partition", lambda *a, **k: refine(*a, **k)._replace(adjacency=None))
    probed = partition_plane(model, [-1.0, -1.0], [1.0, 1.0], **plane)
    assert len(pairs(proven)) > 0 and pairs(proven) == pairs(probed)
    assert proven.linear_pieces == probed.linear_pieces
    # border contact from the vertices' constraint bits equals a measurement: a vertex within 1e-9 of the border
    xy, valid = proven.polygons.xy, proven.polygons.valid()
    near = (((xy + 1.0).abs() <= 2e-9) | ((xy - 1.0).abs() <= 2e-9)).any(2) & valid
    touched = torch.zeros(proven.bounded.shape[0], dtype=torch.long).index_add_(0, proven.region, near.any(1).long())
    assert torch.equal(proven.bounded, touched == 0)
