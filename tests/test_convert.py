"""from_module: traced PyTorch modules become FFNs with the module's own function and region counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from regioncount import count_segment, from_module
from regioncount.core.errors import ModelFormatError


def _mlp(*dims: int, seed: int = 0, dtype=torch.float64) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).to(dtype)


def test_a_sequential_relu_net_converts_to_the_same_weights_and_counts():
    module = _mlp(1, 8, 8, 1)
    ffn = from_module(module)
    assert ffn.hidden_widths == [8, 8]
    for w, layer in zip(ffn.weights, [m for m in module if isinstance(m, nn.Linear)]):
        assert torch.equal(w, layer.weight.detach())
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)[:, None]
    assert torch.equal(ffn.forward(x), module(x).detach())
    assert count_segment(ffn, interval=(-3, 3)).activation_regions >= 1


class Named(nn.Module):
    """fc1 -> BatchNorm -> relu (functional) -> dropout -> fc2 -> x.relu() -> flatten -> Identity -> out."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.bn = nn.Linear(3, 6), nn.BatchNorm1d(6)
        self.drop, self.fc2, self.ident, self.out = nn.Dropout(0.3), nn.Linear(6, 5), nn.Identity(), nn.Linear(5, 2)

    def forward(self, x):
        x = torch.nn.functional.relu(self.bn(self.fc1(x)))
        x = self.fc2(self.drop(x)).relu()
        return self.out(self.ident(torch.flatten(x, 1)))


def test_named_layers_batchnorm_functional_relu_and_no_ops_convert_in_eval_mode():
    torch.manual_seed(1)
    module = Named().double()
    module.bn.running_mean.uniform_(-1, 1)
    module.bn.running_var.uniform_(0.5, 2)
    module.eval()
    ffn = from_module(module)
    assert ffn.hidden_widths == [6, 5] and ffn.input_dim == 3
    x = torch.randn(50, 3, dtype=torch.float64)
    assert torch.allclose(ffn.forward(x), module(x).detach(), rtol=1e-12, atol=1e-12)
    module.train()
    with pytest.raises(ModelFormatError, match="call module.eval"):
        from_module(module)


def test_consecutive_linear_layers_compose_and_a_float32_module_checks_within_its_precision():
    module = nn.Sequential(nn.Linear(2, 4), nn.Linear(4, 3), nn.ReLU(), nn.ReLU(), nn.Linear(3, 1))
    ffn = from_module(module)
    assert ffn.hidden_widths == [3] and ffn.weights[0].shape == (3, 2)


@pytest.mark.parametrize("layer, name", [(nn.Tanh(), "Tanh"), (nn.GELU(), "GELU"), (nn.Sigmoid(), "Sigmoid")])
def test_other_activations_are_refused_by_name(layer, name):
    module = nn.Sequential(nn.Linear(2, 4), layer, nn.Linear(4, 1))
    with pytest.raises(ModelFormatError, match=name):
        from_module(module)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 1)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)) + x)


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 2)

    def forward(self, x):
        if x.sum() > 0:
            return self.a(x)
        return x


def test_branches_and_untraceable_modules_are_one_line_errors():
    from regioncount.graph.model import GraphModel

    residual = from_module(Residual())  # not a chain: read as a graph of operators (tests/test_graph.py)
    assert isinstance(residual, GraphModel) and residual.input_dim == 2
    with pytest.raises(ModelFormatError, match="cannot be traced"):
        from_module(Branchy())
    with pytest.raises(ModelFormatError, match="takes 2 inputs, not 3"):
        from_module(nn.Sequential(nn.Linear(2, 1)), input_dim=3)


def test_the_forward_check_catches_a_conversion_that_differs_from_the_module():
    from regioncount.io.convert import _check_against

    module = _mlp(2, 4, 1, seed=3)
    ffn = from_module(module)
    _check_against(module, ffn, 64, 0, "same")  # agrees with itself
    other = _mlp(2, 4, 1, seed=4)
    with pytest.raises(ModelFormatError, match="differs from the module's forward pass"):
        _check_against(other, ffn, 64, 0, "other")
