"""CUDA and CPU give identical exact counts (skipped cleanly where there is no GPU)."""

from __future__ import annotations

import random

import pytest
import torch
from random_nets import random_deq, random_ffn, random_segment

from regioncount import count_segment, fold_ffn, theorem1_deq

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
    from regioncount.plane2d import partition_plane
    from regioncount.sampled import sample_regions

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
