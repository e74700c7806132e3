"""CUDA and CPU give identical exact counts (skipped cleanly where there is no GPU)."""

from __future__ import annotations

import random

import pytest
import torch
from random_nets import random_deq, random_ffn, random_segment

from regioncount import count_segment, fold_ffn, resolve_segment, theorem1_deq

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("m", [1, 8, 16, 20])
def test_theorem1_on_cuda(m):
    result = count_segment(theorem1_deq(m), interval=(0, 1), device="cuda")
    assert result.device == "cuda"
    assert (result.activation_regions, result.linear_pieces) == (2**m, 2**m)


def test_cuda_breakpoints_equal_cpu():
    for model in (theorem1_deq(12, "c"), fold_ffn(4, 4)):
        gpu = count_segment(model, interval=(0, 1), device="cuda", keep_breakpoints=True, max_pieces=1000)
        cpu = count_segment(model, interval=(0, 1), device="cpu", keep_breakpoints=True)
        assert gpu.breakpoints.tolist() == cpu.breakpoints.tolist()
        assert gpu.linear_pieces == cpu.linear_pieces


@pytest.mark.parametrize("seed", range(30))
def test_random_nets_cuda_equal_cpu(seed):
    rng = random.Random(seed)
    p, v, t_low, t_high = random_segment(rng, 1)
    model = random_ffn(rng, 1, t_low) if seed % 2 else random_deq(rng, 1, t_low)
    gpu = count_segment(model, interval=(t_low, t_high), device="cuda", keep_breakpoints=True)
    cpu = count_segment(model, interval=(t_low, t_high), device="cpu", keep_breakpoints=True)
    assert (gpu.activation_regions, gpu.linear_pieces) == (cpu.activation_regions, cpu.linear_pieces)
    assert gpu.breakpoints.tolist() == cpu.breakpoints.tolist()


def test_sampled_and_plane_on_cuda():
    from regioncount.partition.plane2d import partition_plane
    from regioncount.sampling.sampled import sample_regions

    model = theorem1_deq(6, input_dim=2)
    assert sample_regions(model, samples=50_000, device="cuda").distinct_patterns == 64
    assert partition_plane(model, device="cuda").activation_regions == 64
    gen = torch.Generator().manual_seed(0)
    from regioncount import FFN

    net = FFN([torch.randn(16, 2, generator=gen, dtype=torch.float64), torch.randn(1, 16, generator=gen,
                                                                                   dtype=torch.float64)],
              [torch.randn(16, generator=gen, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    cpu = partition_plane(net, [-1, -1], [1, 1], device="cpu")
    gpu = partition_plane(net, [-1, -1], [1, 1], device="cuda")
    assert (gpu.activation_regions, gpu.linear_pieces) == (cpu.activation_regions, cpu.linear_pieces)
    assert sample_regions(net, -1, 1, samples=100_000, device="cuda").distinct_patterns <= cpu.activation_regions


# --------------------------------------------------------------------------------------------------
# Every command's CUDA path against the CPU on the same nets (exact equality for exact counts).
# --------------------------------------------------------------------------------------------------

from regioncount.line.fused_deq import fused_available  # noqa: E402


def _fused_on_cuda() -> bool:
    return fused_available(torch.device("cuda"))


@pytest.mark.parametrize("m, readout", [(8, "a"), (12, "b"), (16, "c"), (20, "d"), (24, "b")])
def test_theorem1_fused_equals_plain_torch(m, readout):
    model = theorem1_deq(m, readout)
    counts = set()
    for fused in (0, 1, 4, 8, 11):
        result = count_segment(model, interval=(0, 1), linear_pieces=False, device="cuda", fused=fused,
                               max_regions=None)
        counts.add((result.activation_regions, result.near_coincident))
    assert counts == {(2**m, 0)}


@pytest.mark.parametrize("seed", range(40))
def test_random_deqs_fused_equals_plain_and_cpu(seed):
    rng = random.Random(1000 + seed)
    _, _, t_low, t_high = random_segment(rng, 1)
    model = random_deq(rng, 1, t_low, permute=seed % 3 == 0)
    cpu = count_segment(model, interval=(t_low, t_high), linear_pieces=False, device="cpu")
    for fused in (0, 1, 2, 5, 8):
        gpu = count_segment(model, interval=(t_low, t_high), linear_pieces=False, device="cuda", fused=fused)
        assert (gpu.activation_regions, gpu.near_coincident) == (cpu.activation_regions, cpu.near_coincident)


def test_fused_is_the_default_when_triton_is_there():
    from regioncount.line.kernels import build_kernel

    seg = resolve_segment(theorem1_deq(4), interval=(0, 1))
    kernel = build_kernel(theorem1_deq(4), seg, torch.device("cuda"))
    assert kernel.fused_levels == (4 if _fused_on_cuda() else 0)


@pytest.mark.parametrize("seed", range(6))
def test_ffn_linear_pieces_and_ends_cuda_equal_cpu(seed):
    rng = random.Random(500 + seed)
    for _ in range(5):
        _, _, t_low, t_high = random_segment(rng, 1)
        model = random_ffn(rng, 1, t_low)
        gpu = count_segment(model, interval=(t_low, t_high), device="cuda", keep_breakpoints=True)
        cpu = count_segment(model, interval=(t_low, t_high), device="cpu", keep_breakpoints=True)
        assert (gpu.activation_regions, gpu.linear_pieces, gpu.near_coincident) == \
            (cpu.activation_regions, cpu.linear_pieces, cpu.near_coincident)
        assert gpu.breakpoints.tolist() == cpu.breakpoints.tolist()
        assert gpu.region_lengths.tolist() == cpu.region_lengths.tolist()


def test_d_dimensional_segment_cuda_equal_cpu():
    rng = random.Random(7)
    for d in (2, 3, 5):
        p, v, _, _ = random_segment(rng, d)
        q = [a + b for a, b in zip(p, v)]
        for model in (random_ffn(rng, d, 0.0), random_deq(rng, d, 0.0)):
            gpu = count_segment(model, segment=(p, q), device="cuda", keep_breakpoints=True)
            cpu = count_segment(model, segment=(p, q), device="cpu", keep_breakpoints=True)
            assert (gpu.activation_regions, gpu.linear_pieces) == (cpu.activation_regions, cpu.linear_pieces)
            assert gpu.breakpoints.tolist() == cpu.breakpoints.tolist()


def test_he_init_ffn_cuda_equal_cpu():
    import math

    gen = torch.Generator().manual_seed(0)
    dims = [1, 128, 128, 128, 1]
    weights = [torch.randn(o, i, generator=gen, dtype=torch.float64) * math.sqrt(2 / i) for i, o in zip(dims, dims[1:])]
    biases = [torch.randn(o, generator=gen, dtype=torch.float64) * 0.1 for o in dims[1:]]
    from regioncount import FFN

    net = FFN(weights, biases)
    gpu = count_segment(net, interval=(-3, 3), device="cuda", keep_breakpoints=True)
    cpu = count_segment(net, interval=(-3, 3), device="cpu", keep_breakpoints=True)
    assert (gpu.activation_regions, gpu.linear_pieces) == (cpu.activation_regions, cpu.linear_pieces)
    # GEMM summation order may differ between devices: breakpoints agree to rounding
    assert torch.allclose(torch.from_numpy(gpu.breakpoints), torch.from_numpy(cpu.breakpoints), rtol=0, atol=1e-12)


def test_general_w_walk_cuda_equal_cpu():
    from test_general_deq import contractive_deq

    for seed in range(4):
        model = contractive_deq(6, 1, seed)
        gpu = count_segment(model, interval=(-3, 3), device="cuda", keep_breakpoints=True, walkers=17)
        cpu = count_segment(model, interval=(-3, 3), device="cpu", keep_breakpoints=True, walkers=17)
        assert gpu.device == "cuda"
        assert (gpu.activation_regions, gpu.linear_pieces) == (cpu.activation_regions, cpu.linear_pieces)
        assert torch.allclose(torch.from_numpy(gpu.breakpoints), torch.from_numpy(cpu.breakpoints), rtol=0,
                              atol=1e-12)


def test_chords_cuda_equal_cpu():
    from regioncount.core.geometry import resolve_box
    from regioncount.line.chords import count_chords, random_chords

    rng = random.Random(3)
    models = [theorem1_deq(7, input_dim=2), random_ffn(rng, 2, 0.0), random_deq(rng, 2, 0.0)]
    for model in models:
        box = resolve_box(model, -1.0, 1.0)
        P, Q = random_chords(box, 300, seed=1)
        cpu = count_chords(model, P, Q, device="cpu")
        gpu = count_chords(model, P, Q, device="cuda")  # the fused kernel is the CUDA default
        assert gpu.tolist() == cpu.tolist()


def test_general_w_chords_cuda_equal_cpu():
    from test_general_deq import contractive_deq

    from regioncount.core.geometry import resolve_box
    from regioncount.line.chords import count_chords, random_chords

    model = contractive_deq(5, 2, 1)
    P, Q = random_chords(resolve_box(model, -2.0, 2.0), 64, seed=2)
    assert count_chords(model, P, Q, device="cuda").tolist() == count_chords(model, P, Q, device="cpu").tolist()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sampled_grid_cuda_equal_cpu(dtype):
    from regioncount.sampling.sampled import sample_regions

    rng = random.Random(11)
    model = random_ffn(rng, 2, 0.0)
    cpu = sample_regions(model, -1, 1, samples=200_000, grid=True, device="cpu", dtype=dtype)
    gpu = sample_regions(model, -1, 1, samples=200_000, grid=True, device="cuda", dtype=dtype)
    assert gpu.device == "cuda" and gpu.dtype == dtype
    if dtype == "float64":
        assert (gpu.distinct_patterns, gpu.seen_once, gpu.seen_twice) == \
            (cpu.distinct_patterns, cpu.seen_once, cpu.seen_twice)
    else:  # float32 may decide points within ~1e-7 of a boundary differently
        assert abs(gpu.distinct_patterns - cpu.distinct_patterns) <= 2


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sampled_random_points_on_cuda_bounded_by_exact(dtype):
    from regioncount.partition.plane2d import partition_plane
    from regioncount.sampling.sampled import sample_regions

    model = theorem1_deq(5, input_dim=2)
    exact = partition_plane(model, device="cpu").activation_regions
    gpu = sample_regions(model, samples=2_000_000, device="cuda", dtype=dtype, batch=300_000)
    assert gpu.samples == 2_000_000
    assert gpu.distinct_patterns == exact == 32


def test_sampled_general_w_on_cuda():
    from test_general_deq import contractive_deq

    from regioncount.sampling.sampled import sample_regions

    model = contractive_deq(6, 2, 3)
    cpu = sample_regions(model, -1, 1, samples=40_000, grid=True, device="cpu")
    gpu = sample_regions(model, -1, 1, samples=40_000, grid=True, device="cuda")
    assert (gpu.distinct_patterns, gpu.solve_failures) == (cpu.distinct_patterns, cpu.solve_failures)


def test_plane_partitions_cuda_equal_cpu():
    from regioncount.partition.plane2d import partition_plane

    rng = random.Random(21)
    for model in (random_ffn(rng, 2, 0.0), random_deq(rng, 2, 0.0), theorem1_deq(6, "c", input_dim=2)):
        cpu = partition_plane(model, [-1, -1], [1, 1], device="cpu")
        gpu = partition_plane(model, [-1, -1], [1, 1], device="cuda")
        assert (gpu.activation_regions, gpu.linear_pieces) == (cpu.activation_regions, cpu.linear_pieces)
        assert gpu.graph.number_of_edges() == cpu.graph.number_of_edges()


def test_plots_from_cuda_results(tmp_path):
    from regioncount.partition.plane2d import partition_plane
    from regioncount.viz.plot import plot_partition

    part = partition_plane(theorem1_deq(4, input_dim=2), device="cuda")
    out = tmp_path / "p.png"
    plot_partition(part, out, dpi=50)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_cuda_equal_cpu():
    from regioncount.theory.parsing import parse_alpha
    from regioncount.theory.separation import compare_width

    for m in (4, 9, 14):
        gpu = compare_width(m, parse_alpha("1/2"), device="cuda").to_json()
        cpu = compare_width(m, parse_alpha("1/2"), device="cpu").to_json()
        for row in (gpu, cpu):
            row.pop("deq_seconds", None)
        assert gpu == cpu


@pytest.mark.parametrize("args", [
    ["deq", "--width", "18", "--device", "cuda", "--json"],
    ["deq", "--width", "10", "--readout", "a", "--device", "cuda", "--json"],
    ["count", "data/fold_n3_L5.json", "--device", "cuda", "--json"],
    ["compare", "--widths", "4:12", "--device", "cuda", "--json"],
])
def test_cli_on_cuda(args):
    import json

    from click.testing import CliRunner
    from regioncount_cli.main import main

    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    if args[0] == "compare":
        assert [row["deq_regions"] for row in payload["rows"]] == [2**m for m in range(4, 13)]
    else:
        assert payload["device"] == "cuda"


def test_cli_box_lines_plane_plot_on_cuda(tmp_path):
    import json

    from click.testing import CliRunner
    from regioncount_cli.main import main

    model_file = tmp_path / "deq2d.json"
    from regioncount import save_model

    save_model(theorem1_deq(6, input_dim=2), model_file)
    runner = CliRunner()
    for extra in (["--box", "0", "1", "--samples", "100000"], ["--box", "0", "1", "--lines", "200"],
                  ["--plane", "--box", "0", "1"]):
        result = runner.invoke(main, ["count", str(model_file), *extra, "--device", "cuda", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["device"] == "cuda"
    png = tmp_path / "plot.png"
    result = runner.invoke(main, ["plot", str(model_file), "--out", str(png), "--box", "0", "1", "--device", "cuda"])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:4] == b"\x89PNG"



@pytest.mark.parametrize("kind", ["ffn", "triangular", "general"])
def test_exact_box_partitions_cuda_equal_cpu(kind):
    """The d-D partition (and all of R^d) on CUDA: the same regions, pieces, adjacency and volumes."""
    from random_nets import gaussian_ffn
    from test_box_partition import general_deq, triangular_deq

    from regioncount.partition.all_space import count_all_space
    from regioncount.partition.box_partition import partition_box

    model = {"ffn": lambda: gaussian_ffn([3, 8, 8, 1], 0), "triangular": lambda: triangular_deq(5, 3, 400),
             "general": lambda: general_deq(5, 3, 1)}[kind]()
    gpu = partition_box(model, [-1.0] * 3, [1.0] * 3, device="cuda")
    cpu = partition_box(model, [-1.0] * 3, [1.0] * 3, device="cpu")
    assert gpu.device == "cuda" and gpu.method == cpu.method == "exact"
    assert (gpu.activation_regions, gpu.linear_pieces) == (cpu.activation_regions, cpu.linear_pieces)
    assert gpu.pairs.shape == cpu.pairs.shape
    assert torch.allclose(torch.sort(gpu.volumes.cpu()).values, torch.sort(cpu.volumes).values, rtol=1e-9, atol=1e-15)
    a, b = count_all_space(model, device="cuda"), count_all_space(model, device="cpu")
    assert (a.activation_regions, a.bounded_regions) == (b.activation_regions, b.bounded_regions)


def test_wide_layer_pieces_by_flips_cuda_equal_cpu():
    from random_nets import gaussian_ffn

    model = gaussian_ffn([1, 20_000, 1], 3)
    gpu = count_segment(model, interval=(-3.0, 3.0), device="cuda")
    cpu = count_segment(model, interval=(-3.0, 3.0), device="cpu")
    assert (gpu.activation_regions, gpu.linear_pieces) == (cpu.activation_regions, cpu.linear_pieces)


@pytest.mark.parametrize("seed", range(24))
def test_general_w_proof_on_cuda_equals_the_exact_walk(seed):
    """The a-posteriori proof of the general-W walk runs on CUDA: counts equal the exact rational walk."""
    from random_nets import random_general_deq

    from regioncount.exact.rational_deq import exact_general_count

    rng = random.Random(seed)
    p, v, t_low, t_high = random_segment(rng, 1)
    model = random_general_deq(rng, 1, t_low)
    gpu = count_segment(model, interval=(t_low, t_high), device="cuda")
    exact = exact_general_count(model, p, v, t_low, t_high)
    assert gpu.device == "cuda" and gpu.method == "exact"
    assert (gpu.activation_regions, gpu.linear_pieces) == (exact.activation_regions, exact.linear_pieces)


def test_models_move_to_cuda_once():
    model = theorem1_deq(6, "a")
    moved = model.to("cuda")
    assert moved.W.is_cuda and model.to("cuda") is moved and moved.to("cuda") is moved
    assert model.to(f"cuda:{torch.cuda.current_device()}") is moved and not model.W.is_cuda


def test_exact_second_opinions_in_partitions_cuda_equal_cpu():
    """The exact refinement decisions (slivers, coincident hyperplanes) and the exact comparison of
    neighbouring output maps give the same verdicts on CUDA as on the CPU."""
    from test_exact_pieces import kink, two_outputs
    from test_exact_refinement import BOX, sliver_deq

    from regioncount.partition.box_partition import partition_box
    from regioncount.partition.plane2d import partition_plane

    for model in (sliver_deq(2.0**-50), sliver_deq(0.0, duplicate=True), kink(2.0**-60), two_outputs(2.0**31, 1.0)):
        for run in (partition_plane, partition_box):
            gpu, cpu = run(model, *BOX, device="cuda"), run(model, *BOX, device="cpu")
            assert gpu.device == "cuda"
            assert (gpu.method, gpu.activation_regions, gpu.linear_pieces, gpu.tolerance_decisions) == \
                (cpu.method, cpu.activation_regions, cpu.linear_pieces, cpu.tolerance_decisions)


def test_split_products_on_cuda_are_proven_and_equal_cpu():
    """The second, split-product walk on the GPU: a deep He net it proves on the CPU is proven there too, with
    the same counts; the exact leading product is bitwise the same on both devices."""
    from random_nets import gaussian_ffn

    from regioncount.line.forward_error import LayerBound, split_product

    net = gaussian_ffn([1] + [256] * 16 + [1], 0, 0.1, he=True)
    gen = torch.Generator().manual_seed(1)
    gpu = count_segment(net, interval=(-3, 3), device="cuda", linear_pieces=True)
    cpu = count_segment(net, interval=(-3, 3), device="cpu", linear_pieces=True)
    assert gpu.method == cpu.method == "exact"
    assert "split products" in gpu.algorithm
    assert (gpu.activation_regions, gpu.linear_pieces) == (cpu.activation_regions, cpu.linear_pieces)
    W, b = net.weights[3], net.biases[3]
    h = torch.randn(64, 2, 256, generator=gen, dtype=torch.float64)
    z_cpu, r_cpu = split_product(h, W, b, LayerBound.of(W, b))
    z_gpu, r_gpu = split_product(h.cuda(), W.cuda(), b.cuda(), LayerBound.of(W.cuda(), b.cuda()))
    exact_gap = (z_gpu.cpu() - z_cpu).abs()
    allowed = (LayerBound.of(W, b).row_norms[None, None] * r_cpu.local[..., None]) * 2 + 1e-300
    assert bool((exact_gap <= allowed).all())
