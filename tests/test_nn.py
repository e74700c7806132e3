"""ReLUDEQ, the trainable DEQ module: its function is the counted DEQ's, its state_dict is read back as
that DEQ, and it trains (gradients flow) with a triangular or a general W."""

from __future__ import annotations

import json

import pytest
import torch
from random_nets import run_cli

from regioncount import ReLUDEQ, count_segment, load_model


def _train(module: ReLUDEQ, steps: int = 60) -> float:
    x = torch.linspace(0, 1, 257, dtype=torch.float64)[:, None]
    target = (x * 6).remainder(2).sub(1).abs()  # a 3-tooth sawtooth
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    loss = torch.zeros(())
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ((module(x) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
    return float(loss.detach())


def test_a_trained_triangular_deq_is_counted_as_itself(tmp_path):
    torch.manual_seed(0)
    module = ReLUDEQ(1, 8, 1)
    first = _train(module, 1)
    assert _train(module, 80) < first  # it trains
    assert torch.equal(module.effective_W(), module.effective_W().tril(-1))
    model = module.to_model()
    x = torch.rand(200, 1, dtype=torch.float64)
    assert torch.allclose(model.forward(x), module(x).detach(), rtol=0, atol=1e-12)
    torch.save(module.state_dict(), tmp_path / "deq.pt")
    loaded = load_model(tmp_path / "deq.pt")
    assert torch.equal(loaded.W, model.W) and loaded.unit_order is not None
    exact = count_segment(model, interval=(0, 1))
    data = json.loads(run_cli("count", tmp_path / "deq.pt", "--interval", 0, 1, "--json").output)
    assert data["activation_regions"] == exact.activation_regions and data["method"] == exact.method == "exact"


def test_a_general_w_deq_module_solves_and_trains():
    torch.manual_seed(1)
    module = ReLUDEQ(1, 6, 1, triangular=False)
    with torch.no_grad():
        module.W.weight.mul_(0.5 / torch.linalg.matrix_norm(module.W.weight, ord=2))  # contractive
    x = torch.rand(64, 1, dtype=torch.float64)
    y = module(x)
    y.sum().backward()
    assert module.U.weight.grad is not None and module.W.weight.grad is not None
    assert torch.allclose(module.to_model().forward(x), y.detach(), rtol=0, atol=1e-10)


def test_from_module_takes_a_deq_module():
    from regioncount import from_module

    module = ReLUDEQ(2, 5, 3)
    model = from_module(module)
    x = torch.rand(10, 2, dtype=torch.float64)
    assert torch.allclose(model.forward(x), module(x).detach(), rtol=0, atol=1e-12)


def test_a_deq_trained_with_a_torchdeq_solver_is_counted(tmp_path):
    """Train a general-W ReLUDEQ whose forward pass uses torchdeq's fixed-point solver (kept contractive by
    rescaling W), save its state_dict, and count it: the file, the module and the package's solver agree."""
    torchdeq = pytest.importorskip("torchdeq")

    core = torchdeq.get_deq(f_solver="fixed_point_iter", f_max_iter=200, f_tol=1e-13, b_max_iter=1)

    def solver(f, z0):
        z_out, _ = core(f, z0)
        return z_out[-1]

    torch.manual_seed(3)
    module = ReLUDEQ(1, 8, triangular=False, solver=solver)
    x = torch.linspace(0, 1, 64, dtype=torch.float64)[:, None]
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(40):
        with torch.no_grad():
            norm = torch.linalg.matrix_norm(module.W.weight, 2)
            module.W.weight.mul_(torch.clamp(0.9 / norm, max=1.0))
        opt.zero_grad()
        loss = ((module(x) - torch.sin(8 * x)) ** 2).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        norm = torch.linalg.matrix_norm(module.W.weight, 2)
        module.W.weight.mul_(torch.clamp(0.9 / norm, max=1.0))
    path = tmp_path / "deq.pt"
    torch.save(module.state_dict(), path)
    model = load_model(path)
    grid = torch.linspace(0, 1, 513, dtype=torch.float64)[:, None]
    assert torch.allclose(module(grid), model.forward(grid), rtol=1e-10, atol=1e-12)
    from_file = count_segment(model, interval=(0.0, 1.0), linear_pieces=True, device="cpu")
    from_module = count_segment(module.to_model(), interval=(0.0, 1.0), linear_pieces=True, device="cpu")
    assert from_file.activation_regions == from_module.activation_regions >= 1
    assert from_file.linear_pieces == from_module.linear_pieces
