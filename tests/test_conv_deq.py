"""ConvDEQ: a convolutional ReLU DEQ module, trained like any module and counted as the DEQ it computes."""

from __future__ import annotations

import torch

from regioncount import DEQ, count_segment, from_module, sample_regions
from regioncount.models.networks import deq_certificate
from regioncount.models.nn import ConvDEQ


def _module(seed: int = 0) -> ConvDEQ:
    torch.manual_seed(seed)
    return ConvDEQ(1, 2, (4, 4), 3, iterations=200, backprop=2)


def test_the_deq_is_the_module_written_out_exactly():
    module = _module()
    deq = from_module(module)
    assert isinstance(deq, DEQ) and deq.width == 2 * 16 and deq.input_dim == 16
    x = torch.rand(20, 16, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(deq.forward(x), module(x), atol=1e-10)
    kernel = module.effective_weight().detach()
    # every entry of the written-out W is one number of the effective kernel, or 0 (nothing was rounded)
    values = set(kernel.flatten().tolist()) | {0.0}
    assert set(deq.W.flatten().tolist()) <= values
    assert "< 1" in deq_certificate(deq)  # the contraction is proven, not assumed


def test_a_conv_deq_is_counted_exactly_and_sampled():
    deq = from_module(_module(1))
    gen = torch.Generator().manual_seed(0)
    p, q = torch.rand(16, generator=gen, dtype=torch.float64), torch.rand(16, generator=gen, dtype=torch.float64)
    result = count_segment(deq, segment=((p * 4 - 2).tolist(), (q * 4 - 2).tolist()))
    assert result.method == "exact" and result.activation_regions >= 2
    sampled = sample_regions(deq, [-2.0] * 16, [2.0] * 16, samples=2000, seed=0)
    assert sampled.distinct_patterns >= 2


def test_training_moves_the_kernel_and_keeps_the_contraction():
    module = _module(2)
    before = module.K.weight.detach().clone()
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    x, y = torch.rand(32, 16, dtype=torch.float64), torch.randint(0, 3, (32,))
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(x), y).backward()
        opt.step()
    assert not torch.equal(before, module.K.weight)
    assert module.operator_norm() * min(1.0, module.contraction / module.operator_norm()) <= 0.9 + 1e-9
