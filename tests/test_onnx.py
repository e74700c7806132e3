"""ONNX graphs: read as the ReLU FFN they compute (same counts as the JSON model, exact weights), other
operations refused by name, malformed files refused in one line."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from random_nets import gaussian_ffn, run_cli

from regioncount.core.errors import ModelFormatError
from regioncount.io.model_files import load_model, save_model
from regioncount.line.exact1d import count_segment

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def graph_file(tmp_path, nodes, initializers, d: int, name: str = "m.onnx"):
    graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, d])],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.DOUBLE, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    path = tmp_path / name
    path.write_bytes(helper.make_model(graph).SerializeToString())
    return path


def gemm_chain(model, *, trans_b: bool = True, matmul: bool = False, extras: bool = False):
    """Nodes and initializers of ``model`` as Gemm (or MatMul + Add) layers separated by Relu."""
    nodes, inits, current = [], {}, "x"
    if extras:
        nodes.append(helper.make_node("Flatten", [current], ["flat"], axis=1))
        current = "flat"
    L = len(model.weights)
    for i, (w, b) in enumerate(zip(model.weights, model.biases)):
        W, bias = w.numpy(), b.numpy()
        if matmul:
            inits[f"W{i}"], inits[f"b{i}"] = W.T.copy(), bias
            nodes += [helper.make_node("MatMul", [current, f"W{i}"], [f"m{i}"]),
                      helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"])]
            current = f"a{i}"
        else:
            inits[f"W{i}"], inits[f"b{i}"] = (W if trans_b else W.T.copy()), bias
            nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"b{i}"], [f"a{i}"], transB=int(trans_b)))
            current = f"a{i}"
        if i < L - 1:
            nodes.append(helper.make_node("Relu", [current], [f"r{i}"]))
            current = f"r{i}"
            if extras:
                nodes.append(helper.make_node("Dropout", [current], [f"d{i}"]))
                nodes.append(helper.make_node("Identity", [f"d{i}"], [f"i{i}"]))
                current = f"i{i}"
    return nodes, inits


@pytest.mark.parametrize("variant", [{"trans_b": True}, {"trans_b": False}, {"matmul": True},
                                     {"matmul": True, "extras": True}])
def test_graph_round_trips_against_the_json_model(tmp_path, variant):
    model = gaussian_ffn([3, 7, 5, 2], 31)
    path = graph_file(tmp_path, *gemm_chain(model, **variant), d=3)
    loaded = load_model(path)
    for a, b in zip(loaded.weights + loaded.biases, model.weights + model.biases):
        assert torch.equal(a, b)  # float64 initializers are the stored weights, bit for bit
    json_path = tmp_path / "m.json"
    save_model(model, json_path)
    seg = {"segment": ([-1.0, 0.5, 0.0], [1.0, -0.5, 0.25]), "linear_pieces": True, "device": "cpu"}
    assert count_segment(loaded, **seg).activation_regions == count_segment(load_model(json_path), **seg).activation_regions
    out = run_cli("count", path, "--segment", "-1,0.5,0", "1,-0.5,0.25", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["linear_pieces"] == count_segment(model, **seg).linear_pieces


def test_torch_onnx_export_is_read(tmp_path):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 6), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                              torch.nn.Linear(6, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1)).double().eval()
    path = tmp_path / "net.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.zeros(1, 2, dtype=torch.float64),), str(path), dynamo=False)
    except Exception as exc:  # noqa: BLE001 - an exporter that is not installed is not our failure
        pytest.skip(f"torch.onnx.export unavailable here: {type(exc).__name__}")
    model = load_model(path)
    x = torch.rand(100, 2, dtype=torch.float64) * 4 - 2
    assert torch.allclose(model.forward(x), net(x), rtol=1e-12, atol=1e-12)


def test_a_graph_ending_in_relu_gets_an_exact_identity_readout(tmp_path):
    model = gaussian_ffn([1, 5, 1], 3)
    nodes, inits = gemm_chain(model)
    nodes.append(helper.make_node("Relu", [nodes[-1].output[0]], ["y"]))
    loaded = load_model(graph_file(tmp_path, nodes, inits, d=1))
    assert loaded.hidden_widths == [5, 1]
    assert torch.equal(loaded.weights[-1], torch.ones(1, 1, dtype=torch.float64))
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)[:, None]
    assert torch.equal(loaded.forward(x), torch.relu(model.forward(x)))


def test_other_operations_are_refused_by_name(tmp_path):
    model = gaussian_ffn([2, 4, 1], 5)
    nodes, inits = gemm_chain(model)
    nodes[1] = helper.make_node("Tanh", [nodes[0].output[0]], ["r0"])
    with pytest.raises(ModelFormatError, match="the operation Tanh is not supported"):
        load_model(graph_file(tmp_path, nodes, inits, d=2))
    out = run_cli("count", tmp_path / "m.onnx", "--segment", "0,0", "1,1")
    assert out.exit_code != 0 and "Tanh" in out.output and "Traceback" not in out.output


@pytest.mark.parametrize("change, pattern", [
    ("two_affine", "two affine maps without a relu"),
    ("alpha", "alpha or beta"),
    ("branch", "does not continue the chain"),
    ("int_weights", "only float32 and float64"),
])
def test_graphs_that_are_not_a_relu_chain(tmp_path, change, pattern):
    model = gaussian_ffn([2, 4, 3, 1], 6)
    nodes, inits = gemm_chain(model)
    if change == "two_affine":
        del nodes[1]
        nodes[1] = helper.make_node("Gemm", ["a0", "W1", "b1"], ["a1"], transB=1)
    elif change == "alpha":
        nodes[0] = helper.make_node("Gemm", ["x", "W0", "b0"], ["a0"], transB=1, alpha=2.0)
    elif change == "branch":
        nodes[2] = helper.make_node("Gemm", ["x", "W1", "b1"], ["a1"], transB=1)
    else:
        inits["W0"] = np.ones((4, 2), dtype=np.int64)
    with pytest.raises(ModelFormatError, match=pattern):
        load_model(graph_file(tmp_path, nodes, inits, d=2))


def test_malformed_onnx_files(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    with pytest.raises(ModelFormatError, match="bad.onnx"):
        load_model(bad)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="empty.onnx"):
        load_model(empty)


def test_malformed_initializers_are_refused_before_allocation(tmp_path):
    """A tensor declaring 10^10 elements is refused from its dims; data that does not fit its dims is a
    one-line error, not a reshape traceback."""
    huge = TensorProto()
    huge.name, huge.data_type = "W0", TensorProto.DOUBLE
    huge.dims.extend([100_000, 100_000])
    short = TensorProto()
    short.name, short.data_type = "W0", TensorProto.DOUBLE
    short.dims.extend([2, 2])
    short.raw_data = b"\x00" * 8
    for tensor, pattern in ((huge, "declares 10,000,000,000 elements"), (short, "'W0' is malformed")):
        graph = helper.make_graph([helper.make_node("Gemm", ["x", "W0"], ["y"], transB=1)], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 2])],
                                  [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)], [tensor])
        path = tmp_path / "m.onnx"
        path.write_bytes(helper.make_model(graph).SerializeToString())
        with pytest.raises(ModelFormatError, match=pattern):
            load_model(path)
