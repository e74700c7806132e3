"""Graph models from torch.export archives (.pt2), read without unpickling: conv, batch norm, pooling,
residual sums, leaky ReLU."""

from __future__ import annotations

import pytest
import torch
from random_nets import run_cli
from torch import nn

from regioncount import count_segment, from_module, load_model
from regioncount.core.errors import ModelFormatError
from regioncount.graph.model import GraphModel


class Residual(nn.Module):
    def __init__(self, act: nn.Module | None = None) -> None:
        super().__init__()
        self.c1, self.bn = nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3)
        self.pool, self.fc = nn.MaxPool2d(2), nn.Linear(12, 2)
        self.act = act or nn.LeakyReLU(0.125)

    def forward(self, x):
        h = torch.relu(self.c1(x))
        h = h + self.act(self.bn(h)) * 0.5
        return self.fc(torch.flatten(self.pool(h), 1))


def _save(module: nn.Module, path) -> None:
    torch.export.save(torch.export.export(module, (torch.zeros(1, 1, 4, 4, dtype=torch.float64),)), str(path))


def test_an_exported_residual_net_is_read_as_the_graph_from_module_reads(tmp_path):
    torch.manual_seed(0)
    module = Residual().double().eval()
    with torch.no_grad():
        module.bn.running_mean.uniform_(-0.5, 0.5)
        module.bn.running_var.uniform_(0.5, 2.0)
    _save(module, tmp_path / "res.pt2")
    graph = load_model(tmp_path / "res.pt2")
    assert isinstance(graph, GraphModel) and graph.input_shape == (1, 4, 4)
    x = torch.rand(9, 16, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(graph(x), module(x.reshape(9, 1, 4, 4)), atol=1e-12)
    p, q = (torch.rand(16, dtype=torch.float64).tolist() for _ in range(2))
    a = count_segment(graph, segment=(p, q))
    b = count_segment(from_module(module, input_shape=(1, 4, 4)), segment=(p, q))
    assert a.method == "exact" and (a.activation_regions, a.linear_pieces) == (b.activation_regions, b.linear_pieces)
    out = run_cli("count", str(tmp_path / "res.pt2"), "--segment", ",".join(map(str, p)), ",".join(map(str, q)))
    assert out.exit_code == 0 and f"{a.activation_regions}" in out.output


def test_unread_operations_in_an_archive_are_one_line_errors(tmp_path):
    _save(Residual(nn.Sigmoid()).double().eval(), tmp_path / "sig.pt2")
    with pytest.raises(ModelFormatError, match="sigmoid") as info:
        load_model(tmp_path / "sig.pt2")
    assert "\n" not in str(info.value)
