"""Model files: v1 JSON round trips, rationals, PyTorch state_dicts, and every malformed input."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from regioncount import (
    DEQ,
    FFN,
    count_segment,
    load_model,
    model_from_dict,
    save_model,
    theorem1_deq,
)
from regioncount.core.errors import ModelFormatError, NotWellPosedError


def write(tmp_path, data, name="model.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


FFN_DOC = {"type": "ffn", "layers": [{"weight": [[1.0], [-2.0]], "bias": [0.5, "1/3"]},
                                     {"weight": [[3.0, 1]], "bias": [0.0]}]}
DEQ_DOC = {"type": "deq", "W": [[0.0, 0.0], [-4.0, 0.0]], "U": [[2.0], [4.0]], "b": [-1.0, -1.0],
           "A": [[1.0, 1.0]], "c": [0.0], "domain": {"low": [0], "high": [1]}, "name": "m2"}


def test_json_round_trip_preserves_every_number(tmp_path):
    for model in (theorem1_deq(6, "a"), model_from_dict(FFN_DOC)):
        path = tmp_path / "m.json"
        save_model(model, path)
        again = load_model(path)
        assert type(again) is type(model)
        x = torch.linspace(-1, 2, 50, dtype=torch.float64)[:, None]
        assert torch.equal(model.forward(x), again.forward(x))


def test_rational_strings_are_read_exactly():
    model = model_from_dict(FFN_DOC)
    assert model.biases[0][1].item() == 1 / 3


def test_domain_is_the_default_interval(tmp_path):
    model = load_model(write(tmp_path, DEQ_DOC))
    assert model.name == "m2"
    assert count_segment(model).activation_regions == 4


def test_state_dict_of_a_sequential(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    path = tmp_path / "net.pt"
    torch.save(net.state_dict(), path)
    model = load_model(path)
    assert isinstance(model, FFN) and model.hidden_widths == [8, 8]
    x = torch.linspace(-2, 2, 100)[:, None]
    with torch.no_grad():
        assert torch.allclose(model.forward(x.double()).float(), net(x), atol=1e-6)
    assert count_segment(model, interval=(-2, 2)).activation_regions >= 1


def test_pickled_module_is_refused_with_advice(tmp_path):
    net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    path = tmp_path / "whole.pt"
    torch.save(net, path)
    with pytest.raises(ModelFormatError, match=r"state_dict\(\)"):
        load_model(path)


@pytest.mark.parametrize(
    "doc, message",
    [
        ("{not json", "invalid JSON"),
        ([1, 2], "JSON object"),
        ({"type": "cnn"}, '"type" must be'),
        ({**DEQ_DOC, "Wx": 1}, "unknown key"),
        ({**FFN_DOC, "layers": [{"weight": [[1.0]], "bias": [0.0], "act": "relu"}]}, "exactly the keys"),
        ({**FFN_DOC, "layers": []}, "non-empty"),
        ({**FFN_DOC, "layers": [{"weight": [[1.0, 2.0], [1.0]], "bias": [0, 0]}]}, "same non-zero length"),
        ({**FFN_DOC, "layers": [{"weight": [[1.0]], "bias": [0, 0]}]}, "bias has length 2"),
        ({"type": "ffn", "layers": [{"weight": [[1.0]], "bias": [0]}, {"weight": [[1.0, 1.0]], "bias": [0]}]},
         "columns"),
        ({**FFN_DOC, "layers": [{"weight": [["x"]], "bias": [0]}]}, "not a number"),
        ({**FFN_DOC, "layers": [{"weight": [[True]], "bias": [0]}]}, "expected a number"),
        ('{"type": "ffn", "layers": [{"weight": [[NaN]], "bias": [0]}]}', "not finite"),
        ('{"type": "ffn", "layers": [{"weight": [[1e999]], "bias": [0]}]}', "not finite"),
        ({**DEQ_DOC, "U": [[2.0], [4.0], [1.0]]}, "U must have shape"),
        ({**DEQ_DOC, "A": [[1.0]]}, "A must have shape"),
        ({**DEQ_DOC, "c": [0.0, 1.0]}, "c must have length"),
        ({k: v for k, v in DEQ_DOC.items() if k != "b"}, 'needs the key "b"'),
        ({**DEQ_DOC, "domain": {"low": [1], "high": [0]}}, "not below"),
        ({**DEQ_DOC, "domain": {"low": [0, 0], "high": [1, 1]}}, "input dimension"),
    ],
)
def test_malformed_files_give_one_line_errors(tmp_path, doc, message):
    path = write(tmp_path, doc)
    with pytest.raises((ModelFormatError, NotWellPosedError), match=message) as info:
        load_model(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFormatError, match="no such file"):
        load_model(tmp_path / "nope.json")


def test_diagonal_at_least_one_is_refused_when_counted(tmp_path):
    model = load_model(write(tmp_path, {**DEQ_DOC, "W": [[1.0, 0.0], [-4.0, 0.0]]}))
    with pytest.raises(NotWellPosedError, match=r"W\[1,1\] = 1 >= 1"):
        count_segment(model)


def test_cyclic_W_is_judged_when_counted():
    ill = DEQ(W=[[0.0, 2.0], [2.0, 0.0]], U=[[1.0], [1.0]], b=[0.0, 0.0], A=[[1.0, 1.0]])
    with pytest.raises(NotWellPosedError, match=r"not well-posed.*\{1,2\}.*\|\|W\|\|_2 = 2"):
        count_segment(ill, interval=(0, 1))
    fine = DEQ(W=[[0.0, 0.5], [0.25, 0.0]], U=[[1.0], [-1.0]], b=[0.0, 0.5], A=[[1.0, 1.0]])
    result = count_segment(fine, interval=(-1, 1))
    assert result.activation_regions == 3 and "pattern walk" in result.algorithm


def test_bad_state_dict_keys(tmp_path):
    path = tmp_path / "bad.pt"
    torch.save({"bn.running_mean": torch.zeros(2)}, path)
    with pytest.raises(ModelFormatError, match="not the weight or bias.*from_module"):
        load_model(path)
    torch.save({"conv.weight": torch.zeros(2, 1, 3, 3)}, path)
    with pytest.raises(ModelFormatError, match="expected a matrix"):
        load_model(path)
    torch.save({"0.weight": torch.zeros(2, 1), "1.weight": torch.zeros(1, 2)}, path)
    with pytest.raises(ModelFormatError, match="adjacent"):
        load_model(path)
    torch.save({"0.weight": torch.full((2, 1), float("nan")), "0.bias": torch.zeros(2)}, path)
    with pytest.raises(ModelFormatError, match="non-finite"):
        load_model(path)


def test_state_dict_with_named_layers_is_read_in_registration_order_and_says_relu_is_assumed(tmp_path):
    """fc1, fc2, out (not indexed): the file's order is the module's; counts equal the same net as JSON."""
    torch.manual_seed(0)
    net = torch.nn.Sequential()
    net.add_module("fc1", torch.nn.Linear(1, 6))
    net.add_module("act1", torch.nn.ReLU())
    net.add_module("fc2", torch.nn.Linear(6, 4))
    net.add_module("act2", torch.nn.ReLU())
    net.add_module("out", torch.nn.Linear(4, 1))
    net = net.double()
    path = tmp_path / "named.pt"
    torch.save(net.state_dict(), path)
    model = load_model(path)
    assert model.hidden_widths == [6, 4] and "ReLU assumed" in model.name
    x = torch.linspace(-2, 2, 41, dtype=torch.float64)[:, None]
    assert torch.equal(model.forward(x), net(x).detach())
    from regioncount import from_module

    same = from_module(net)
    assert count_segment(model, interval=(-2, 2)).activation_regions == \
        count_segment(same, interval=(-2, 2)).activation_regions


def test_safetensors_state_dicts_are_read_like_pt_files(tmp_path):
    """A .safetensors state_dict (weights only) counts as the same .pt file does; bad headers and dtypes are
    one-line errors naming the file, before any tensor is read."""
    safetensors_torch = pytest.importorskip("safetensors.torch")
    import torch

    from regioncount import count_segment, load_model
    from regioncount.core.errors import ModelFormatError

    gen = torch.Generator().manual_seed(0)
    state = {"fc1.weight": torch.randn(8, 1, generator=gen), "fc1.bias": torch.randn(8, generator=gen),
             "fc2.weight": torch.randn(8, 8, generator=gen), "fc2.bias": torch.randn(8, generator=gen),
             "out.weight": torch.randn(1, 8, generator=gen), "out.bias": torch.zeros(1)}
    safetensors_torch.save_file(state, tmp_path / "net.safetensors")
    torch.save(state, tmp_path / "net.pt")
    (tmp_path / "renamed.bin").write_bytes((tmp_path / "net.safetensors").read_bytes())
    a, b, c = (load_model(tmp_path / name) for name in ("net.safetensors", "net.pt", "renamed.bin"))
    for other in (b, c):
        assert all(torch.equal(x, y) for x, y in zip(a.weights, other.weights))
    assert "ReLU assumed" in a.name
    assert count_segment(a, interval=(-3, 3)).activation_regions == count_segment(b, interval=(-3, 3)).activation_regions
    safetensors_torch.save_file({"0.weight": torch.ones(3, 1, dtype=torch.int32)}, tmp_path / "ints.safetensors")
    with pytest.raises(ModelFormatError, match="ints.safetensors.*real floating"):
        load_model(tmp_path / "ints.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 8 + b"{}")
    with pytest.raises(ModelFormatError, match="bad.safetensors: not a safetensors file"):
        load_model(tmp_path / "bad.safetensors")
    huge = b'{"0.weight": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 4]}}'
    (tmp_path / "huge.safetensors").write_bytes(len(huge).to_bytes(8, "little") + huge + b"\0" * 4)
    with pytest.raises(ModelFormatError, match="above the limit"):
        load_model(tmp_path / "huge.safetensors")


def test_deq_module_state_dicts(tmp_path):
    """A torchdeq-style DEQ module (Linear layers W, U, a readout) saved as a state_dict is read as that DEQ:
    the Theorem 1 DEQ round-trips through it with its 2^m regions; stray keys are refused by name."""
    import torch
    from torch import nn

    from regioncount import count_segment, load_model, theorem1_deq
    from regioncount.core.errors import ModelFormatError

    deq = theorem1_deq(6)
    m, d, k = deq.width, deq.input_dim, deq.output_dim

    class ReLUDEQ(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.W = nn.Linear(m, m, bias=False)
            self.U = nn.Linear(d, m)
            self.A = nn.Linear(m, k)

    module = ReLUDEQ().double()
    with torch.no_grad():
        module.W.weight.copy_(deq.W)
        module.U.weight.copy_(deq.U)
        module.U.bias.copy_(deq.b)
        module.A.weight.copy_(deq.A)
        module.A.bias.copy_(deq.c)
    torch.save(module.state_dict(), tmp_path / "deq.pt")
    loaded = load_model(tmp_path / "deq.pt")
    assert torch.equal(loaded.W, deq.W) and torch.equal(loaded.b, deq.b) and "DEQ state_dict" in loaded.name
    assert count_segment(loaded, interval=(0, 1)).activation_regions == 2**6
    state = module.state_dict() | {"norm.weight": torch.ones(m, dtype=torch.float64)}
    torch.save(state, tmp_path / "extra.pt")
    with pytest.raises(ModelFormatError, match="'norm.weight' is not part of a ReLU DEQ"):
        load_model(tmp_path / "extra.pt")
    torch.save({"W.weight": deq.W, "U.weight": deq.U}, tmp_path / "noreadout.pt")
    with pytest.raises(ModelFormatError, match="needs a readout layer"):
        load_model(tmp_path / "noreadout.pt")
