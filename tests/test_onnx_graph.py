"""Graph models from ONNX files (convolutions, pooling, residual sums, leaky ReLU): read, counted, refused."""

from __future__ import annotations

import warnings

import pytest
import torch
from random_nets import run_cli
from torch import nn

pytest.importorskip("onnx")

from regioncount import count_segment, from_module, load_model  # noqa: E402
from regioncount.core.errors import ModelFormatError  # noqa: E402
from regioncount.graph.model import GraphModel  # noqa: E402


class Residual(nn.Module):
    def __init__(self, activation: nn.Module | None = None) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1)
        self.bn, self.pool, self.fc = nn.BatchNorm2d(3), nn.MaxPool2d(2), nn.Linear(12, 2)
        self.act = activation or nn.LeakyReLU(0.125)

    def forward(self, x):
        h = torch.relu(self.c1(x))
        h = h + self.act(self.bn(self.c2(h)))
        return self.fc(torch.flatten(self.pool(h), 1))


def _export(module: nn.Module, path, shape=(1, 1, 4, 4)) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(*shape),), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"])


def test_an_exported_residual_net_is_the_graph_from_module_reads(tmp_path):
    torch.manual_seed(0)
    module = Residual().eval()
    _export(module, tmp_path / "res.onnx")
    graph = load_model(tmp_path / "res.onnx")
    assert isinstance(graph, GraphModel) and graph.input_shape == (1, 4, 4)
    x = torch.rand(9, 16, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(graph(x), module(x.float().reshape(9, 1, 4, 4)).double(), atol=1e-5)
    p, q = (torch.rand(16, dtype=torch.float64).tolist() for _ in range(2))
    a = count_segment(graph, segment=(p, q))
    b = count_segment(from_module(module.double(), input_shape=(1, 4, 4)), segment=(p, q))
    assert a.method == "exact"
    # the exporter folds the batch norm into the convolution in float32: the same regions here
    assert a.activation_regions == b.activation_regions


def test_the_command_line_counts_an_onnx_graph(tmp_path):
    torch.manual_seed(1)
    _export(Residual().eval(), tmp_path / "res.onnx")
    zero, one = ",".join(["0"] * 16), ",".join(["1"] * 16)
    half = ",".join(["0.5"] * 8 + ["0"] * 8)
    out = run_cli("count", str(tmp_path / "res.onnx"), "--segment", zero, one, "--json")
    assert out.exit_code == 0, out.output
    assert '"method": "exact"' in out.output
    plane = run_cli("count", str(tmp_path / "res.onnx"), "--plane", "--through", zero, one, half, "--json")
    assert plane.exit_code == 0 and '"activation_regions"' in plane.output


def test_unread_onnx_operations_are_one_line_errors(tmp_path):
    _export(Residual(nn.Sigmoid()).eval(), tmp_path / "sig.onnx")
    with pytest.raises(ModelFormatError, match="the operation Sigmoid is not read") as info:
        load_model(tmp_path / "sig.onnx")
    assert "\n" not in str(info.value)
    out = run_cli("count", str(tmp_path / "sig.onnx"), "--segment", "0", "1")
    assert out.exit_code == 2 and "Sigmoid" in out.output and "Traceback" not in out.output
