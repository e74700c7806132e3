"""The command line through click's test runner: output, --json keys, files, exit codes, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from random_nets import run_cli

JSON_KEYS = {"model", "method", "activation_regions", "linear_pieces", "dtype", "device", "seconds"}


run = run_cli


def test_deq_table():
    result = run("deq", "--width", 12)
    assert result.exit_code == 0, result.output
    for text in ("4,096", "exact", "float64", "cpu", "yes", "regions/s"):
        assert text in result.output


def test_deq_json_keys_and_values():
    result = run("deq", "--width", 10, "--readout", "c", "--json", "--device", "cpu")
    data = json.loads(result.output)
    assert JSON_KEYS <= set(data)
    assert data["activation_regions"] == 1024 and data["linear_pieces"] == 3 * 256 + 1
    assert data["method"] == "exact" and data["dtype"] == "float64" and data["agrees"] is True
    assert data["expected_regions"] == 1024 and data["width"] == 10


def test_deq_on_another_interval():
    data = json.loads(run("deq", "--width", 6, "--interval", -1, 0.5, "--json").output)
    assert data["activation_regions"] == data["expected_regions"] == 32
    data = json.loads(run("deq", "--width", 6, "--interval", 0.25, 0.75, "--json").output)
    assert data["activation_regions"] == 32 and data["agrees"]


def test_save_model_then_count_it(tmp_path):
    path = tmp_path / "deq.json"
    assert run("deq", "-m", 8, "--readout", "a", "--save-model", path).exit_code == 0
    data = json.loads(run("count", path, "--json").output)
    assert data["activation_regions"] == 256 and data["linear_pieces"] == 256
    assert data["segment"]["interval"] == [0.0, 1.0]


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_breakpoints_file(tmp_path, suffix):
    path = tmp_path / f"bp{suffix}"
    assert run("deq", "-m", 7, "--breakpoints", path).exit_code == 0
    values = np.load(path) if suffix == ".npy" else np.loadtxt(path, skiprows=1)
    assert values.tolist() == [k / 128 for k in range(1, 128)]


def test_count_segment_for_two_dimensional_input(tmp_path):
    path = tmp_path / "m.json"
    doc = {"type": "ffn", "layers": [{"weight": [[1.0, 0.0], [0.0, 1.0]], "bias": [-0.5, -0.5]},
                                     {"weight": [[1.0, 1.0]], "bias": [0.0]}]}
    path.write_text(json.dumps(doc))
    data = json.loads(run("count", path, "--segment", "0,0", "1,1", "--json").output)
    assert data["activation_regions"] == 2
    data = json.loads(run("count", path, "--segment", "0,0", "1,1/4", "--json").output)
    assert data["activation_regions"] == 2
    table = run("count", path, "--segment", "0,0", "1,1").output
    assert "activation regions" in table


def test_count_negative_interval(tmp_path):
    path = tmp_path / "m.json"
    run("deq", "-m", 4, "--save-model", path)
    data = json.loads(run("count", path, "--interval", -3, 3, "--json").output)
    assert data["activation_regions"] == 16


def one_line_error(result, pattern):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert pattern in lines[0], lines[0]


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.json"
    run("deq", "-m", 3, "--save-model", good)
    nodomain = tmp_path / "nodomain.json"
    data = json.loads(good.read_text())
    data.pop("domain")
    nodomain.write_text(json.dumps(data))
    two_d = tmp_path / "two_d.json"
    two_d.write_text(json.dumps({"type": "ffn", "layers": [{"weight": [[1.0, 1.0]], "bias": [0]},
                                                           {"weight": [[1.0]], "bias": [0]}]}))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    nan = tmp_path / "nan.json"
    nan.write_text('{"type": "ffn", "layers": [{"weight": [[NaN]], "bias": [0]}]}')
    cyclic = tmp_path / "cyclic.json"
    cyclic.write_text(json.dumps({"type": "deq", "W": [[0, 2, 0], [2, 0, 0], [0, 0, 0]], "U": [[1], [1], [1]],
                                  "b": [0, 0, 0], "A": [[1, 1, 1]]}))
    diag = tmp_path / "diag.json"
    diag.write_text(json.dumps({"type": "deq", "W": [[1.5]], "U": [[1]], "b": [0], "A": [[1]]}))
    shape = tmp_path / "shape.json"
    shape.write_text(json.dumps({"type": "deq", "W": [[0]], "U": [[1], [2]], "b": [0], "A": [[1]]}))
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"type": "ffn", "layer": []}))
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"type": "ffn", "layers": [{"weight": [[1e200]], "bias": [0]},
                                                          {"weight": [[1e200]], "bias": [0]}]}))
    return dict(good=good, nodomain=nodomain, two_d=two_d, bad_json=bad_json, nan=nan, cyclic=cyclic,
                diag=diag, shape=shape, unknown=unknown, huge=huge, missing=tmp_path / "missing.json",
                tmp=tmp_path)


@pytest.mark.parametrize(
    "args, pattern",
    [
        (("count", "{missing}"), "no such file"),
        (("count", "{bad_json}"), "invalid JSON"),
        (("count", "{unknown}"), "unknown key"),
        (("count", "{nan}"), "not finite"),
        (("count", "{cyclic}"), "{1,2}"),
        (("count", "{cyclic}", "--interval", "0", "1"), "||W||_2 = 2"),
        (("count", "{diag}"), ">= 1"),
        (("count", "{shape}"), "U must have shape"),
        (("count", "{nodomain}"), "--interval A B"),
        (("count", "{two_d}"), "--segment P Q"),
        (("count", "{good}", "--interval", "1", "0"), "A < B"),
        (("count", "{good}", "--interval", "0", "0"), "A < B"),
        (("count", "{two_d}", "--segment", "0,0,0", "1,1"), "coordinates"),
        (("count", "{two_d}", "--segment", "0,a", "1,1"), "comma-separated"),
        (("count", "{two_d}", "--interval", "0", "1"), "--segment"),
        (("count", "{huge}", "--interval", "0", "1"), "too large"),
        (("count", "{good}", "--breakpoints", "{tmp}/bp.txt"), ".npy or .csv"),
        (("deq", "--width", "0"), "not in the range x>=1"),
        (("deq", "--width", "-3"), "not in the range x>=1"),
        (("deq", "--width", "41"), "m <= 40"),
        (("deq", "--width", "100000"), "m <= 40"),
        (("deq", "--width", "35"), "above the limit"),
        (("deq", "--width", "16", "--max-regions", "1000"), "6.554e+04 regions (known in advance)"),
        (("deq", "--width", "24", "--breakpoints", "{tmp}/b.npy", "--max-memory", "0.01"), "GiB"),
        (("deq", "--width", "4", "--interval", "2", "1"), "A < B"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(files, args, pattern):
    result = run(*(a.format(**files) for a in args))
    one_line_error(result, pattern)


def test_cuda_request_without_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    one_line_error(run("deq", "-m", 4, "--device", "cuda"), "no CUDA device")


def test_version_and_help():
    assert run("--version").exit_code == 0
    assert "count" in run("--help").output


def test_library_errors_name_parameters_and_the_command_line_names_flags():
    import pytest

    from regioncount import count_segment, theorem1_deq
    from regioncount.core.errors import CostLimitError

    with pytest.raises(CostLimitError, match="raise `max_regions`"):
        count_segment(theorem1_deq(14), interval=(0, 1), max_regions=100)
    result = run("deq", "--width", 14, "--max-regions", 100)
    assert result.exit_code != 0
    assert "--max-regions" in result.output and "`" not in result.output and "max_regions" not in result.output


def test_segment_ends_from_files(tmp_path):
    """`--segment img0.npy img1.txt`: long points from files count like the same points typed out; bad
    files are one-line errors."""
    import numpy as np
    from random_nets import gaussian_ffn

    from regioncount import save_model

    model = tmp_path / "net.json"
    save_model(gaussian_ffn([64, 16, 16, 1], 0), model)
    rng = np.random.default_rng(0)
    p, q = rng.uniform(-1, 1, 64).tolist(), rng.uniform(-1, 1, 64).tolist()
    np.save(tmp_path / "p.npy", np.array(p).reshape(8, 8))  # any shape: flattened
    (tmp_path / "q.txt").write_text("\n".join(" ".join(repr(v) for v in q[i:i + 8]) for i in range(0, 64, 8)))
    typed = json.loads(run("count", model, "--segment", ",".join(map(repr, p)), ",".join(map(repr, q)),
                           "--json").output)
    from_files = json.loads(run("count", model, "--segment", tmp_path / "p.npy", tmp_path / "q.txt", "--json").output)
    assert from_files["activation_regions"] == typed["activation_regions"] > 1
    assert from_files["segment"] == typed["segment"]
    (tmp_path / "bad.txt").write_text("1 2 three")
    bad = run("count", model, "--segment", tmp_path / "bad.txt", tmp_path / "q.txt")
    assert bad.exit_code == 2 and "not a point file" in bad.output and len(bad.output.strip().splitlines()) == 1
    np.save(tmp_path / "short.npy", np.array(p[:3]))
    short = run("count", model, "--segment", tmp_path / "short.npy", tmp_path / "q.txt")
    assert short.exit_code == 2 and "coordinates" in short.output


@pytest.mark.parametrize("args", [
    ("count", "/nonexistent/model.json", "--interval", "0", "1"),
    ("count", "MODEL", "--interval", "1", "0"),
    ("deq", "--width", "0"),
    ("deq", "--interval", "1", "0"),
    ("plot", "/nonexistent/model.json", "--out", "x.png"),
])
def test_argument_errors_are_caught_before_torch_is_imported(args, tmp_path):
    """A missing model, an empty interval or a zero width is refused while the arguments are parsed: one line,
    exit 2, and torch never imported (so it takes a fraction of a second, not torch's start-up)."""
    import subprocess
    import sys

    model = tmp_path / "m.json"
    model.write_text('{"format": "regioncount-v1", "type": "ffn", "weights": [[[1.0]], [[1.0]]], "biases": [[0.0], [0.0]]}')
    argv = [str(model) if a == "MODEL" else a for a in args]
    script = ("import sys\nfrom regioncount_cli.main import main\n"
              f"try:\n    main({argv!r}, standalone_mode=True)\nexcept SystemExit as exc:\n"
              "    print('exit', exc.code, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "exit 2 False", (out.stdout, out.stderr)
    assert out.stderr.strip().startswith("Error:") and len(out.stderr.strip().splitlines()) == 1, out.stderr
