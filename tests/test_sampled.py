"""Sampled d-D counts: never above the exact count, reaching it with enough samples; exact packing;
estimators; random chords; bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch
from lp_reference import bfs_regions
from random_nets import gaussian_ffn, run_cli

from regioncount import count_segment, theorem1_deq
from regioncount.core.errors import RegionCountError, SegmentError
from regioncount.core.geometry import Box
from regioncount.core.patterns import DistinctPatterns, pack_bits, positive
from regioncount.line.chords import chord_statistics, count_chords, random_chords
from regioncount.sampling.sampled import chao1, sample_regions

random_ffn = gaussian_ffn



@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_sampled_never_exceeds_exact_and_reaches_it(seed):
    net = random_ffn([2, 6, 6, 1], seed)
    exact = len(bfs_regions(net, [-1, -1], [1, 1])["patterns"])
    small = sample_regions(net, -1, 1, samples=500, seed=seed, device="cpu")
    assert small.distinct_patterns <= exact
    big = sample_regions(net, -1, 1, samples=3_000_000, seed=seed, device="cpu")
    assert small.distinct_patterns <= big.distinct_patterns <= exact
    assert big.distinct_patterns >= exact - 1  # tiny slivers may stay unseen; almost all are found
    grid = sample_regions(net, -1, 1, samples=10**6, grid=True, device="cpu")
    assert grid.distinct_patterns <= exact


def test_one_layer_general_position_formula():
    """One hidden layer in R^2: regions in the box = 1 + n + #(pairwise intersections inside the box),
    when every line crosses the box."""
    net = random_ffn([2, 7, 1], 11, bias=0.3)
    W, b = net.weights[0].numpy(), net.biases[0].numpy()
    import itertools

    import numpy as np

    inside = 0
    for i, j in itertools.combinations(range(7), 2):
        point = np.linalg.solve(W[[i, j]], -b[[i, j]])
        inside += bool((np.abs(point) < 1).all())
    expected = 1 + 7 + inside
    assert len(bfs_regions(net, [-1, -1], [1, 1])["patterns"]) == expected
    assert sample_regions(net, -1, 1, samples=2_000_000, device="cpu").distinct_patterns <= expected


@pytest.mark.parametrize("m", [4, 8])
def test_theorem1_slabs_in_two_dimensions(m):
    model = theorem1_deq(m, input_dim=2)
    result = sample_regions(model, samples=200_000, seed=1, device="cpu")
    assert result.distinct_patterns == 2**m
    lo, hi = result.chao1_interval
    assert lo <= 2**m <= hi
    grid = sample_regions(model, samples=(2**m) ** 2, grid=True, device="cpu")
    assert grid.distinct_patterns == 2**m


def test_packing_is_exact_beyond_64_neurons():
    net = random_ffn([3, 70, 70, 70, 1], 5)  # 210 neurons, 4 words
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(20000, 3, generator=gen, dtype=torch.float64) * 2 - 1
    bits, h = [], x
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        pre = h @ w.T + b
        bits.append(pre > 0)
        h = pre.clamp_min(0)
    bits = torch.cat(bits, 1)
    truth = torch.unique(bits, dim=0).shape[0]
    packed = pack_bits(bits)
    assert packed.shape[1] == 4
    assert torch.unique(packed, dim=0).shape[0] == truth
    distinct = DistinctPatterns(packed.shape[1], torch.device("cpu"))
    for chunk in packed.split(3001):
        distinct.add(chunk)
    assert len(distinct) == truth and int(distinct.counts.sum()) == 20000


def test_distinct_set_survives_a_hash_collision():
    distinct = DistinctPatterns(2, torch.device("cpu"))
    distinct._key = lambda rows: torch.zeros(rows.shape[0], dtype=torch.int64)  # every row collides
    distinct.add(torch.tensor([[1, 2], [1, 2], [3, 4]]))
    distinct.add(torch.tensor([[3, 4], [5, 6]]))
    assert len(distinct) == 3 and sorted(distinct.counts.tolist()) == [1, 2, 2]
    assert distinct.collisions >= 1


def test_positive_is_strict():
    values = torch.tensor([1.0, -1.0, 0.0, -0.0, 1e-320, -1e-320, math.inf, -math.inf], dtype=torch.float64)
    assert positive(values).tolist() == (values > 0).tolist()


def test_chao1():
    est, lo, hi = chao1(100, 0, 5)
    assert est == lo == hi == 100
    est, lo, hi = chao1(100, 20, 5)
    assert lo < est < hi and lo >= 100


def test_sampled_general_deq():
    W = torch.tensor([[0.0, 0.4, 0.1], [-0.3, 0.0, 0.2], [0.2, -0.5, 0.0]], dtype=torch.float64)
    from regioncount import DEQ

    model = DEQ(W=W, U=torch.tensor([[1.0, 0.5], [-1.0, 1.0], [0.5, -1.0]], dtype=torch.float64),
                b=torch.tensor([0.1, -0.2, 0.05], dtype=torch.float64), A=torch.ones(1, 3, dtype=torch.float64))
    result = sample_regions(model, -1, 1, samples=100_000, device="cpu")
    exact = len(bfs_regions(model, [-1, -1], [1, 1])["patterns"])
    assert result.solve_failures == 0
    assert result.distinct_patterns == exact


def test_chords_batched_equal_one_by_one():
    net = random_ffn([2, 12, 12, 1], 2)
    P, Q = random_chords(Box((-1.0, -1.0), (1.0, 1.0)), 60, seed=4)
    counts = count_chords(net, P, Q, device="cpu", max_pieces=4)
    one_by_one = [count_segment(net, segment=(p.tolist(), q.tolist()), linear_pieces=False).activation_regions
                  for p, q in zip(P, Q)]
    assert counts.tolist() == one_by_one
    deq = theorem1_deq(6, input_dim=2)
    P, Q = random_chords(Box((0.0, 0.0), (1.0, 1.0)), 40, seed=1)
    assert count_chords(deq, P, Q, device="cpu").tolist() == [
        count_segment(deq, segment=(p.tolist(), q.tolist()), linear_pieces=False).activation_regions
        for p, q in zip(P, Q)]


def test_crofton_boundary_length_of_theorem1():
    """The 2-D Theorem 1 DEQ's boundaries are 2^m - 1 unit segments: boundary length 2^m - 1."""
    stats = chord_statistics(theorem1_deq(6, input_dim=2), Box((0.0, 0.0), (1.0, 1.0)), 3000, seed=2,
                             device="cpu")
    estimate, ci = stats.boundary_volume
    assert abs(estimate - 63) <= 1.5 * ci  # a 95% interval; 1.5x keeps the test stable


run = run_cli


def test_cli_sampled_and_lines(tmp_path):
    path = tmp_path / "m.json"
    doc = {"type": "deq", "W": [[0, 0], [-4, 0]], "U": [[2, 0], [4, 0]], "b": [-1, -1], "A": [[1, 1]],
           "domain": {"low": [0, 0], "high": [1, 1]}}
    path.write_text(json.dumps(doc))
    data = json.loads(run("count", path, "--samples", 10000, "--chords", 50, "--json").output)
    assert data["method"] == "sampled" and data["distinct_patterns"] == 4 and data["samples"] == 10000
    assert data["activation_regions"] == 4 and "lower bound" in data["distinct_is"]
    assert data["chords"]["chords"] == 50 and "boundary" in data["chords"]["measures"]
    out = run("count", path, "--box", "0", "1", "--samples", 1000).output
    assert "lower bound" in out and "heuristic" in out
    data = json.loads(run("count", path, "--box", "0,0", "1,1", "--grid", "--samples", 400, "--json").output)
    assert data["grid"] is True and data["samples"] == 400


@pytest.mark.parametrize("args, pattern", [
    (("--box", "1", "0", "--samples", "10"), "LO < HI"),
    (("--box", "0,0,0", "1,1,1", "--samples", "10"), "coordinates"),
    (("--samples", "0"), "x>=1"),
    (("--samples", "-5"), "x>=1"),
    (("--lines", "1"), "x>=2"),
    (("--box", "0", "x"), "comma-separated"),
])
def test_cli_sampled_bad_input(tmp_path, args, pattern):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"type": "ffn", "layers": [{"weight": [[1, 0], [0, 1]], "bias": [0, 0]},
                                                          {"weight": [[1, 1]], "bias": [0]}]}))
    result = run("count", path, *args)
    assert result.exit_code == 2 and "Traceback" not in result.output and pattern in result.output


def test_no_box_and_no_domain_is_an_error():
    with pytest.raises(SegmentError, match="`low, high`"):
        sample_regions(random_ffn([2, 3, 1], 0), samples=10)
    with pytest.raises(RegionCountError, match="positive"):
        sample_regions(random_ffn([2, 3, 1], 0), -1, 1, samples=0)


def test_grid_gives_no_richness_claims(tmp_path):
    """A grid is not a random sample: coverage and Chao1 are null (JSON) and the table says why."""
    import json


    model = theorem1_deq(6, input_dim=2)
    grid = sample_regions(model, samples=64, grid=True, device="cpu")
    assert grid.coverage is None and grid.chao1 is None and grid.chao1_interval is None
    data = grid.to_json()["estimate"]
    assert data["chao1"] is None and data["good_turing_coverage"] is None and "grid" in data["note"]
    from regioncount import save_model

    path = str(tmp_path / "m.json")
    save_model(model, path)
    out = run_cli("count", path, "--box", "0", "1", "--samples", "64", "--grid", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["estimate"]["chao1"] is None
    table = run_cli("count", path, "--box", "0", "1", "--samples", "64", "--grid")
    assert table.exit_code == 0 and "not given for a grid" in table.output


def test_chao1_bias_correction_factor():
    est_n, _, _ = chao1(10, 4, 2, n=5)
    est, _, _ = chao1(10, 4, 2)
    assert est_n == 10 + (4 / 5) * 4 * 3 / 6 and est == 10 + 4 * 3 / 6


def test_sampled_memory_is_bounded_by_the_limit_not_only_estimated():
    """A limit below what the pattern set needs stops the run with a one-line estimate; the estimate's
    buffered rows stop growing with the number of samples (they are merged into the set)."""
    from regioncount.core.errors import CostLimitError
    from regioncount.line.cost import estimate_sampled
    from regioncount.sampling.sampled import sample_regions

    net = gaussian_ffn([2, 32, 32, 1], seed=3)
    with pytest.raises(CostLimitError, match="memory limit"):
        sample_regions(net, -1, 1, samples=10**6, device="cpu", memory_limit=2**16)
    fine = sample_regions(net, -1, 1, samples=10**5, device="cpu", memory_limit=2**30)
    assert fine.distinct_patterns > 100
    small = estimate_sampled(net, samples=10**7, distinct=5000).bytes
    assert estimate_sampled(net, samples=10**12, distinct=5000).bytes == small


def test_sampled_memory_limit_from_the_cli_is_a_one_line_error():
    result = run_cli("count", "data/theorem1_deq_m4.json", "--box", "0", "1", "--samples", "1000000",
                     "--max-memory", "0.000001")
    assert result.exit_code != 0 and "memory limit" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_chord_statistics_report_tolerance_decisions():
    """Chord walks are float64 walks: two units with the same zero line computed differently (a row and
    three times it) meet near-coincident breakpoints on many chords, and the statistics say so."""
    from regioncount import FFN
    from regioncount.core.geometry import Box

    gen = torch.Generator().manual_seed(3)
    W = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    b = torch.randn(4, generator=gen, dtype=torch.float64) * 0.1
    box = Box((-1.0, -1.0), (1.0, 1.0))
    plain = FFN([W, torch.ones(1, 4, dtype=torch.float64)], [b, torch.zeros(1, dtype=torch.float64)])
    assert chord_statistics(plain, box, 200, seed=1, device="cpu").tolerance_decisions == 0
    W2, b2 = torch.cat([W, W[:1] * 3]), torch.cat([b, b[:1] * 3])
    doubled = FFN([W2, torch.ones(1, 5, dtype=torch.float64)], [b2, torch.zeros(1, dtype=torch.float64)])
    stats = chord_statistics(doubled, box, 200, seed=1, device="cpu")
    assert stats.tolerance_decisions > 0
    assert stats.to_json()["tolerance_decisions"] == stats.tolerance_decisions
    assert stats.to_json()["method"] == "float64 walks along random chords"


@pytest.mark.parametrize("widths", [None, [5], [64, 3], [70, 130, 1], [200]])
def test_a_flip_mask_flips_exactly_one_bit_of_the_layer_packing(widths):
    from regioncount.core.patterns import flip_masks, layer_words

    gen = torch.Generator().manual_seed(3)
    n = sum(widths) if widths else 77
    bits = torch.rand(300, n, generator=gen) > 0.5
    units = torch.arange(300) % n  # every unit, the 63rd bit of a word included
    word, mask = flip_masks(units, widths, n)
    flipped = layer_words(bits, widths)
    flipped[torch.arange(300), word] ^= mask
    bits[torch.arange(300), units] ^= True
    assert torch.equal(flipped, layer_words(bits, widths))
