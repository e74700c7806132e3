"""Hostile inputs: every one ends with one line on stderr starting with "Error:", a non-zero exit, no
"internal error", in bounded time and memory; outputs are never left partial, and a previous file
survives a failed write."""

from __future__ import annotations

import os
import sys

import pytest
import torch
from random_nets import run_cli

from regioncount import theorem1_deq
from regioncount.core.atomic import atomic_output
from regioncount.core.errors import RegionCountError

run = run_cli


def assert_one_line_error(result, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "internal error" not in result.output


@pytest.fixture
def files(tmp_path):
    paths = {}
    expanded = torch.ones(1, 1).expand(50_000, 40_000)
    torch.save({"0.weight": expanded, "0.bias": torch.zeros(50_000), "2.weight": torch.ones(1, 50_000),
                "2.bias": torch.zeros(1)}, tmp_path / "expanded.pt")
    small_expanded = torch.ones(1, 1).expand(300, 1)
    torch.save({"0.weight": small_expanded, "0.bias": torch.zeros(300)}, tmp_path / "expanded_small.pt")
    torch.save({"0.weight": torch.ones(3, 1, dtype=torch.complex64), "0.bias": torch.zeros(3)}, tmp_path / "complex.pt")
    torch.save({"0.weight": torch.ones(3, 1, dtype=torch.bool), "0.bias": torch.zeros(3)}, tmp_path / "bool.pt")
    torch.save({"0.weight": torch.ones(3, 1).to_sparse(), "0.bias": torch.zeros(3)}, tmp_path / "sparse.pt")
    (tmp_path / "json.pt").write_text('{"type": "ffn"}')
    (tmp_path / "random.pt").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (tmp_path / "bigint.json").write_text('{"type": "ffn", "layers": [{"weight": [[' + "9" * 5000 + ']], "bias": [0]}]}')
    os.mkfifo(tmp_path / "fifo")
    for name in ("expanded.pt", "expanded_small.pt", "complex.pt", "bool.pt", "sparse.pt", "json.pt", "random.pt",
                 "deep.json", "bigint.json", "fifo"):
        paths[name] = str(tmp_path / name)
    paths["/dev/zero"] = "/dev/zero"
    return paths


@pytest.mark.parametrize("name, message", [
    ("expanded.pt", "above the limit"), ("expanded_small.pt", "expanded"), ("complex.pt", "complex64"),
    ("bool.pt", "bool"), ("sparse.pt", "sparse"), ("json.pt", "JSON text"), ("random.pt", "not a PyTorch file"),
    ("deep.json", "nested too deeply"), ("bigint.json", "4,300 digits"), ("fifo", "not a regular file"),
    ("/dev/zero", "not a regular file"),
])
def test_hostile_model_files(files, name, message):
    result = run("count", files[name], "--interval", "0", "1")
    assert_one_line_error(result)
    if name == "bigint.json":  # refused by the JSON parser, or (after the CLI raised Python's digit limit) as too large
        assert message in result.output or "too large for float64" in result.output
        assert len(result.output) < 400
    else:
        assert message in result.output


@pytest.mark.parametrize("args", [
    ["deq", "--width", "8", "--interval", "nan", "1"],
    ["deq", "--width", "8", "--interval", "0", "inf"],
    ["deq", "--width", "8", "--max-memory", "nan"],
    ["count", "data/theorem1_deq_m4.json", "--box", "0", "1", "--samples", "100", "--seed", "9" * 30],
    ["count", "data/theorem1_deq_m4.json", "--box", "0", "1", "--samples", "0"],
    ["count", "data/theorem1_deq_m4.json", "--box", "0", "1", "--lines", "1"],
    ["compare", "--alpha", "0.3333333333333333", "--widths", "4:6"],
    ["deq", "--width", "8", "--breakpoints", "out.txt"],
    ["deq", "--width", "8", "--breakpoints", "no/such/folder/bp.npy"],
    ["deq", "--width", "8", "--plot", "figure.pdf"],
    ["nosuchcommand"],
    ["deq", "--nosuchoption"],
])
def test_hostile_options_are_one_line_errors(args):
    assert_one_line_error(run(*args))


def test_bad_output_path_is_refused_before_the_count(monkeypatch):
    import regioncount.line.exact1d as exact1d

    def no_count(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("the count must not start")

    monkeypatch.setattr(exact1d, "count_segment", no_count)
    assert_one_line_error(run("deq", "--width", "8", "--breakpoints", "bp.txt"))


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "bp.csv"
    target.write_text("previous\n")
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as temp:
        temp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bp.csv"]  # no partial file left


def test_outputs_are_complete_after_a_run(tmp_path):
    bp = tmp_path / "bp.npy"
    result = run("deq", "--width", "6", "--breakpoints", str(bp), "--json")
    assert result.exit_code == 0
    import numpy as np

    assert np.load(bp).shape == (63,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bp.npy"]


def test_ctrl_c_exits_130(monkeypatch):
    import regioncount.line.exact1d as exact1d

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003
        raise KeyboardInterrupt

    monkeypatch.setattr(exact1d, "count_segment", interrupted)
    result = run("deq", "--width", "8")
    assert result.exit_code == 130 and "interrupted" in result.output


def test_torch_allocation_failures_are_out_of_memory_errors(monkeypatch):
    """torch reports an exhausted allocator as a RuntimeError: it ends as the one-line out-of-memory error."""
    import regioncount.line.exact1d as exact1d

    def exhausted(*args, **kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                           "memory: you tried to allocate 2097152 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(exact1d, "count_segment", exhausted)
    result = run("deq", "--width", "8")
    assert_one_line_error(result)
    assert "out of memory" in result.output


def test_the_default_memory_limit_respects_the_address_space_limit():
    """Under `ulimit -v` the default limit is at most half of what is left, so estimates refuse first."""
    import subprocess

    code = ("import resource\n"
            "resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))\n"
            "from regioncount.core.devices import default_memory_limit, physical_memory_bytes\n"
            "print(default_memory_limit(), physical_memory_bytes())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    limit, ram = (int(v) for v in out.stdout.split())
    assert 0 <= limit <= 1.5 * 2**30 and limit <= ram // 2


def test_check_on_an_ffn_is_not_an_error():
    result = run("check", "data/fold_n3_L5.json")
    assert result.exit_code == 0 and "always well-defined" in result.output


def test_python_api_raises_only_package_errors(files):
    from regioncount import load_model

    for name in ("expanded.pt", "complex.pt", "deep.json", "fifo", "random.pt"):
        with pytest.raises(RegionCountError, match=name if name != "/dev/zero" else "zero"):
            load_model(files[name])
    assert sys.getrecursionlimit() > 0  # the process state is untouched
    assert theorem1_deq(3).width == 3


@pytest.mark.slow
def test_one_wide_layer_counts_in_bounded_memory():
    """1 -> 20000 -> 1 with linear pieces: one piece splits into ~16,000 children; their (children, 2, n)
    maps are built in chunks, so the peak stays far below the 5 GB a single batch would take."""
    import subprocess

    code = (
        "import resource, torch\n"
        "from regioncount import FFN, count_segment\n"
        "g = torch.Generator().manual_seed(0)\n"
        "n = 20000\n"
        "net = FFN([torch.randn(n, 1, generator=g, dtype=torch.float64), torch.randn(1, n, generator=g, dtype=torch.float64)],"
        " [torch.randn(n, generator=g, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])\n"
        "r = count_segment(net, interval=(-3, 3))\n"
        "print(r.activation_regions, r.linear_pieces, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    regions, pieces, peak_kib = (int(v) for v in out.stdout.split())
    assert regions == pieces == 15912
    assert peak_kib < 1.5 * 2**20  # < 1.5 GiB


@pytest.mark.parametrize("args, message", [
    (["compare", "--widths", "4:100"], "exceeds 40"),
    (["compare", "--widths", "4:34"], "would take about"),
    (["compare", "--widths", "1:1000000000"], "at most"),
    (["bound", "--input-dim", "1000000", "--widths", "1000000,1000000"], "big-integer steps"),
    (["bound", "--depth", "1000000000", "--width", "3"], "at most"),
])
def test_hostile_sizes_are_refused_before_work(args, message):
    result = run(*args)
    assert_one_line_error(result)
    assert message in result.output


def test_huge_exact_bounds_print():
    import json

    result = run("bound", "--depth", "3000", "--width", "1000", "--json")
    assert result.exit_code == 0
    assert len(str(json.loads(result.output)["serra"])) > 4300
    table = run("bound", "--depth", "3000", "--width", "1000")
    assert table.exit_code == 0 and "e9001" in table.output


@pytest.mark.parametrize("args, message", [
    (["count", "data/theorem1_deq_m4.json", "--box", "0", "1", "--samples", "1000", "--batch", str(10**12)], "GiB"),
    (["count", "data/theorem1_deq_m4.json", "--box", "0", "1", "--lines", str(10**12)], "GiB"),
    (["deq", "--width", "6", "--plot", "p.png", "--dpi", "1200", "--size", "100", "100"], "pixels"),
    (["count", "data/theorem1_deq_m4.json", "--box", "0", "1", "--samples", str(10**12)], "would take about"),
])
def test_hostile_sizes_are_refused_with_an_estimate(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    import shutil
    from pathlib import Path

    Path("data").mkdir()
    shutil.copy(Path(__file__).parent.parent / "data" / "theorem1_deq_m4.json", "data/theorem1_deq_m4.json")
    result = run(*args)
    assert_one_line_error(result)
    assert message in result.output
    assert not Path("p.png").exists()


def test_help_does_not_load_torch():
    import subprocess

    code = ("import sys\nfrom click.testing import CliRunner\nfrom regioncount_cli.main import main\n"
            "for args in ([\"--help\"], [\"deq\", \"--help\"], [\"count\", \"--help\"], [\"compare\", \"--help\"]):\n"
            "    assert CliRunner().invoke(main, args).exit_code == 0\n"
            "assert 'torch' not in sys.modules, 'torch imported'\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


#: address-space limit of each hostile run in its own process (torch's CPU build maps ~1.5 GiB at import)
HOSTILE_MEMORY = 3 * 2**30
HOSTILE_SECONDS = 120


@pytest.mark.slow
def test_hostile_inputs_in_bounded_processes(files, tmp_path):
    """Each hostile input runs as its own `regioncount` process under an address-space limit and a time
    limit: exit status 2, one line on stderr starting with "Error:", no "internal error", nothing written;
    except the plot of 2^26 pieces, which once was refused by its memory estimate and is now drawn from
    pixel columns within the limits."""
    import resource
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    out = tmp_path / "out"
    out.mkdir()
    model = "data/theorem1_deq_m4.json"
    cases = [
        ["count", files["/dev/zero"], "--interval", "0", "1"],
        ["count", files["fifo"], "--interval", "0", "1"],
        ["count", files["expanded.pt"], "--interval", "0", "1"],
        ["count", files["deep.json"], "--interval", "0", "1"],
        ["count", files["bigint.json"], "--interval", "0", "1"],
        ["count", model, "--box", "0", "1", "--samples", str(10**12)],
        ["count", model, "--box", "0", "1", "--lines", str(10**9)],
        ["count", model, "--box", "0", "1", "--samples", "1000", "--batch", str(10**10)],
        ["compare", "--widths", "4:100"],
        ["bound", "--input-dim", "1000000", "--widths", "1000000,1000000"],
        ["deq", "--width", "26", "--plot", str(out / "deq.png")],
        ["deq", "--width", "12", "--plot", str(out / "big.png"), "--dpi", "1200", "--size", "100", "100"],
        ["deq", "--width", "30", "--breakpoints", str(out / "bp.npy"), "--max-memory", "0.5"],
    ]

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (HOSTILE_MEMORY, HOSTILE_MEMORY))

    def run_limited(args: list[str]) -> tuple[list[str], subprocess.CompletedProcess]:
        done = subprocess.run([sys.executable, "-m", "regioncount_cli.main", *args], capture_output=True, text=True,
                              preexec_fn=limits, timeout=HOSTILE_SECONDS, env=os.environ | {"REGIONCOUNT_THREADS": "1"})
        return args, done

    with ThreadPoolExecutor(max_workers=2) as pool:
        for args, done in pool.map(run_limited, cases):
            lines = done.stderr.strip().splitlines()
            if "--plot" in args and "26" in args:  # 2^26 pieces drawn from pixel columns: no breakpoints kept
                assert done.returncode == 0 and (out / "deq.png").stat().st_size > 0, done.stderr[-500:]
                continue
            assert done.returncode == 2, (args, done.returncode, done.stderr[-500:])
            assert len(lines) == 1 and lines[0].startswith("Error: "), (args, done.stderr[-500:])
            assert "internal error" not in done.stderr and "Traceback" not in done.stderr, args
    assert list(out.iterdir()) == [out / "deq.png"]  # nothing else written, not even a partial file
