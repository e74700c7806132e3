"""torch.export archives (.pt2) read without unpickling: the graph's chain, weights bit for bit, refusals."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import pytest
import torch

from regioncount.core.errors import ModelFormatError
from regioncount.io.model_files import load_model
from regioncount.line.exact1d import count_segment


def export(module: torch.nn.Module, d: int, path, dtype=torch.float64):
    program = torch.export.export(module.eval(), (torch.zeros(1, d, dtype=dtype),))
    torch.export.save(program, str(path))
    return path


def mlp(dtype=torch.float64) -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 6), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                               torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_exported_mlp_is_read_bit_for_bit_without_unpickling(tmp_path, monkeypatch, dtype):
    net = mlp(dtype)
    path = export(net, 2, tmp_path / "net.pt2", dtype)

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling was attempted")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    model = load_model(path)
    monkeypatch.undo()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for layer, w, b in zip(linears, model.weights, model.biases):
        assert torch.equal(w, layer.weight.detach().double()) and torch.equal(b, layer.bias.detach().double())
    x = torch.rand(200, 2, dtype=torch.float64) * 4 - 2
    assert torch.allclose(model.forward(x), net.double()(x), rtol=1e-12, atol=1e-12)
    assert count_segment(model, segment=([-2.0, -1.0], [2.0, 1.5]), device="cpu").method == "exact"


def test_a_graph_ending_in_relu_and_a_zip_named_otherwise(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.ReLU()).double()
    path = export(net, 1, tmp_path / "net.zip")  # recognised by content, not by suffix
    model = load_model(path)
    assert model.hidden_widths == [4]
    x = torch.linspace(-2, 2, 50, dtype=torch.float64)[:, None]
    assert torch.equal(model.forward(x), net(x))


@pytest.mark.parametrize("module, pattern", [
    (torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)), "aten.tanh"),
    (torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)),
     "two affine maps"),
])
def test_other_graphs_are_refused_by_name(tmp_path, module, pattern):
    path = export(module.double(), 2, tmp_path / "m.pt2")
    with pytest.raises(ModelFormatError, match=pattern):
        load_model(path)


def test_an_eval_mode_batch_norm_is_read_as_a_graph_model(tmp_path):
    from regioncount.graph.model import GraphModel

    module = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    model = load_model(export(module.double(), 2, tmp_path / "m.pt2"))
    assert isinstance(model, GraphModel)
    x = torch.rand(5, 2, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(model(x), module(x), atol=1e-12)


def _rewrite(path, out, edit):
    """Copy a .pt2 archive, passing the weight table through ``edit``."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("model_weights_config.json"):
                table = json.loads(data)
                edit(table["config"])
                data = json.dumps(table).encode()
            dst.writestr(name, data)
    return out


@pytest.mark.parametrize("edit, pattern", [
    (lambda c: c["1.weight"].update(use_pickle=True), "stored pickled"),
    (lambda c: c["1.weight"]["tensor_meta"].update(dtype=5), "only real floating"),
    (lambda c: c["1.weight"]["tensor_meta"].update(sizes=[{"as_int": 2**20}, {"as_int": 2**20}]), "entries"),
    (lambda c: c["1.weight"]["tensor_meta"].update(sizes=[{"as_int": 600}, {"as_int": 2}],
                                                   strides=[{"as_int": 2}, {"as_int": 1}]), "bytes"),
    (lambda c: c.pop("1.bias"), "missing"),
])
def test_forged_weight_tables_are_refused_before_reading(tmp_path, edit, pattern):
    path = export(mlp(), 2, tmp_path / "net.pt2")
    forged = _rewrite(path, tmp_path / "forged.pt2", edit)
    with pytest.raises(ModelFormatError, match=pattern):
        load_model(forged)


def test_broken_archives(tmp_path):
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(ModelFormatError, match="bad.pt2"):
        load_model(bad)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("net/archive_format", "pt2")
    other = tmp_path / "other.pt2"
    other.write_bytes(buffer.getvalue())
    with pytest.raises(ModelFormatError, match="without"):
        load_model(other)


def test_a_graph_with_missing_fields_is_refused(tmp_path):
    path = export(mlp(), 2, tmp_path / "net.pt2")
    broken = tmp_path / "broken.pt2"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("models/model.json"):
                program = json.loads(data)
                for node in program["graph_module"]["graph"]["nodes"]:
                    node.pop("outputs", None)
                data = json.dumps(program).encode()
            dst.writestr(name, data)
    with pytest.raises(ModelFormatError, match="not in the torch.export layout"):
        load_model(broken)
