"""Counts split into tasks (regioncount.parallel): the same answer as one walk, in this process and on a
local Dask cluster, with cuts on breakpoints, at the ends and inside slivers, and a worker killed mid-count."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import numpy as np
import pytest
import torch
from random_nets import gaussian_ffn, run_cli
from test_general_deq import contractive_deq

from regioncount import FFN, count_segment, theorem1_deq
from regioncount.core.geometry import resolve_segment
from regioncount.line.exact1d import count_along
from regioncount.parallel.engine import Engine, open_engine
from regioncount.parallel.payload import model_from_payload, model_payload
from regioncount.parallel.segments import certify_cut, count_segment_split, merge_parts


def _same(split, whole, *, bitwise_breakpoints: bool) -> None:
    assert split.activation_regions == whole.activation_regions
    assert split.linear_pieces == whole.linear_pieces
    assert split.method == whole.method == "exact"
    if whole.breakpoints is not None:
        assert split.breakpoints.shape == whole.breakpoints.shape
        if bitwise_breakpoints:
            assert np.array_equal(split.breakpoints, whole.breakpoints)
            assert np.array_equal(split.region_lengths, whole.region_lengths)
        else:  # GEMMs on batches of other sizes round the last bits differently
            np.testing.assert_allclose(split.breakpoints, whole.breakpoints, rtol=0, atol=1e-12)
    if whole.shortest_region is not None:
        assert split.shortest_region == pytest.approx(whole.shortest_region, rel=1e-9)
        assert split.longest_region == pytest.approx(whole.longest_region, rel=1e-9)


CASES = {
    "theorem1": (lambda: theorem1_deq(10), {"interval": (0.0, 1.0)}, True),
    "ffn": (lambda: gaussian_ffn([1, 32, 32, 2], 3), {"interval": (-3.0, 3.0)}, False),
    "ffn-2d-segment": (lambda: gaussian_ffn([2, 24, 24, 1], 5), {"segment": ([-2.0, -1.0], [2.0, 1.5])}, False),
    "general-W": (lambda: contractive_deq(6, 1, 2), {"interval": (-3.0, 3.0)}, False),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("tasks", [1, 2, 7])
@pytest.mark.parametrize("keep", [False, True])
def test_split_counts_equal_one_walk(case, tasks, keep):
    build, where, bitwise = CASES[case]
    model = build()
    whole = count_segment(model, **where, keep_breakpoints=keep, device="cpu")
    split = count_segment_split(model, **where, tasks=tasks, keep_breakpoints=keep)
    _same(split, whole, bitwise_breakpoints=bitwise)
    assert split.engine == {"engine": "in-process", "workers": 1, "tasks": tasks, "cuts": tasks - 1}


def test_payload_round_trip_is_bitwise():
    for model in (gaussian_ffn([3, 5, 2], 0), contractive_deq(4, 2, 1), theorem1_deq(5)):
        back = model_from_payload(model_payload(model))
        assert type(back) is type(model)
        for name, value in vars(model).items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, getattr(back, name))
            elif isinstance(value, list) and value and isinstance(value[0], torch.Tensor):
                assert all(torch.equal(a, b) for a, b in zip(value, getattr(back, name)))


def _sliver_net() -> FFN:
    """Kinks at 1/2 and 1/2 + 2^-50 (two units of one layer), and at 1/4 (a third)."""
    W = torch.tensor([[1.0], [1.0], [1.0]], dtype=torch.float64)
    b = torch.tensor([-0.5, -(0.5 + 2.0**-50), -0.25], dtype=torch.float64)
    return FFN([W, torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.float64)], [b, torch.zeros(1, dtype=torch.float64)])


@pytest.mark.parametrize("candidate", [0.5, 0.5 + 2.0**-51, 0.25, 0.0, 1.0])
def test_cuts_on_breakpoints_in_slivers_and_at_the_ends_move_into_a_region(candidate):
    model = _sliver_net()
    seg = resolve_segment(model, (0.0, 1.0))
    cut = certify_cut(model, seg, candidate, {"device": "cpu"})
    assert cut is not None and 0.0 < cut < 1.0
    assert cut not in (0.5, 0.25) and not 0.5 <= cut <= 0.5 + 2.0**-50
    parts = [count_along(model, dataclasses.replace(seg, t_low=lo, t_high=hi), keep_breakpoints=True, device="cpu")
             for lo, hi in ((0.0, cut), (cut, 1.0))]
    merged = merge_parts(parts, seg, linear_pieces=True, keep_breakpoints=True)
    whole = count_segment(model, interval=(0.0, 1.0), keep_breakpoints=True, device="cpu")
    assert whole.activation_regions == merged.activation_regions == 4  # the sliver is a region
    assert np.array_equal(merged.breakpoints, whole.breakpoints)


def test_a_cut_exactly_on_a_breakpoint_would_not_merge():
    """The certification is what makes the merge right: the window around a breakpoint has two regions."""
    model = theorem1_deq(6)
    seg = resolve_segment(model, (0.0, 1.0))
    window = dataclasses.replace(seg, t_low=0.5 - 2.0**-40, t_high=0.5 + 2.0**-40)
    assert count_along(model, window, device="cpu").activation_regions == 2
    assert certify_cut(model, seg, 0.5, {"device": "cpu"}) != 0.5


def test_bad_arguments():
    from regioncount.core.errors import RegionCountError

    with pytest.raises(RegionCountError, match="at least 1"):
        count_segment_split(theorem1_deq(3), interval=(0, 1), tasks=0)
    with pytest.raises(RegionCountError, match="not both"):
        with open_engine(workers=1, scheduler="tcp://127.0.0.1:1"):
            pass


def test_in_process_engine_runs_in_order():
    seen = []
    assert Engine().map(pow, [(2, 3), (3, 2)], seen.append) == [8, 9]
    assert seen == [0.5, 1.0]


SAMPLED = {
    "ffn-2d": (lambda: gaussian_ffn([2, 16, 16, 1], 0), -2.0, 2.0),
    "ffn-8d": (lambda: gaussian_ffn([8, 64, 64, 1], 1), -1.0, 1.0),
    "general-W": (lambda: contractive_deq(6, 2, 1), -2.0, 2.0),
    "theorem1": (lambda: theorem1_deq(9), 0.0, 1.0),
}


def _sampled_json(result) -> dict:
    data = result.to_json()
    for key in ("seconds", "points_per_second", "engine"):
        data.pop(key, None)
    return data


@pytest.mark.parametrize("case", sorted(SAMPLED))
@pytest.mark.parametrize("tasks", [1, 2, pytest.param(7, marks=pytest.mark.slow)])
def test_split_sampling_equals_one_run(case, tasks):
    """Same seed, same points: distinct counts, f1/f2, coverage, Chao1 and histogram are identical."""
    from regioncount import sample_regions
    from regioncount.parallel.samples import sample_regions_split

    build, lo, hi = SAMPLED[case]
    model = build()
    for grid in (False, True):
        whole = sample_regions(model, lo, hi, samples=150_000 if not grid else 4096, seed=11, grid=grid, device="cpu")
        split = sample_regions_split(model, lo, hi, samples=150_000 if not grid else 4096, seed=11, grid=grid,
                                     tasks=tasks)
        assert _sampled_json(split) == _sampled_json(whole)
        assert split.engine == {"engine": "in-process", "workers": 1, "tasks": tasks}


def test_the_sample_stream_does_not_depend_on_the_batch():
    from regioncount import sample_regions

    model = gaussian_ffn([3, 12, 1], 2)
    runs = [sample_regions(model, -1, 1, samples=200_003, seed=5, batch=batch, device="cpu")
            for batch in (1000, 65536, 70001, 2**20)]
    assert all(_sampled_json(r) == _sampled_json(runs[0]) for r in runs)


dask_distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster_engine():
    with open_engine(workers=2) as engine:
        yield engine


def test_dask_counts_equal_one_walk(cluster_engine):
    for case in ("theorem1", "ffn", "general-W"):
        build, where, bitwise = CASES[case]
        model = build()
        whole = count_segment(model, **where, keep_breakpoints=True, device="cpu")
        split = count_segment_split(model, **where, tasks=5, engine=cluster_engine, keep_breakpoints=True)
        _same(split, whole, bitwise_breakpoints=bitwise)
        assert split.engine["engine"] == "dask" and split.engine["workers"] == 2


def test_dask_sampling_equals_one_run(cluster_engine):
    from regioncount import sample_regions
    from regioncount.parallel.samples import sample_regions_split

    model = gaussian_ffn([8, 64, 64, 1], 1)
    whole = sample_regions(model, -1, 1, samples=300_000, seed=3, device="cpu")
    split = sample_regions_split(model, -1, 1, samples=300_000, seed=3, tasks=6, engine=cluster_engine)
    assert _sampled_json(split) == _sampled_json(whole)
    assert split.engine["engine"] == "dask"


def test_a_worker_killed_mid_count_changes_nothing(cluster_engine):
    """One worker process is killed when the first task ends; Dask restarts it and reruns its tasks."""
    model = theorem1_deq(16)
    whole = count_segment(model, interval=(0.0, 1.0), linear_pieces=False, device="cpu")
    pids = cluster_engine.client.run(os.getpid)
    killed = []

    def kill_one(fraction: float) -> None:
        if not killed:
            pid = next(iter(pids.values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    split = count_segment_split(model, interval=(0.0, 1.0), tasks=12, engine=cluster_engine, linear_pieces=False,
                                progress=kill_one)
    assert killed
    assert split.activation_regions == whole.activation_regions == 2**16 and split.method == "exact"


def test_cli_workers_and_tasks(tmp_path):
    model = tmp_path / "net.json"
    assert run_cli("deq", "-m", 4, "--save-model", model).exit_code == 0
    result = run_cli("deq", "-m", 12, "--workers", 2, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["activation_regions"] == 4096 and data["agrees"]
    assert data["engine"]["engine"] == "dask" and data["engine"]["workers"] == 2 and data["engine"]["tasks"] == 4
    table = run_cli("deq", "-m", 10, "--tasks", 3)
    assert table.exit_code == 0 and "certified cut" in table.output
    refused = run_cli("count", model, "--lines", 10, "--workers", 2)
    assert refused.exit_code == 2 and "splits an exact 1-D count" in refused.output
    along = json.loads(run_cli("count", model, "--interval", 0, 1, "--tasks", 3, "--json").output)
    assert along["activation_regions"] == 16 and along["engine"]["cuts"] == 2
    sampled = json.loads(run_cli("count", model, "--samples", 20000, "--tasks", 3, "--json").output)
    alone = json.loads(run_cli("count", model, "--samples", 20000, "--json").output)
    assert sampled["engine"]["tasks"] == 3
    assert {k: v for k, v in sampled.items() if k not in ("seconds", "points_per_second", "engine")} == \
        {k: v for k, v in alone.items() if k not in ("seconds", "points_per_second")}


@pytest.mark.slow
def test_cli_on_a_separate_scheduler_survives_a_killed_worker(tmp_path):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1; the CLI counts with --scheduler, and one
    worker (with its nanny) is killed while it processes a task: its tasks rerun on the other one."""
    import subprocess
    import sys
    import time

    from distributed import Client

    model = tmp_path / "deq.json"
    assert run_cli("deq", "-m", 21, "--save-model", model, "--no-linear").exit_code == 0
    address_file = tmp_path / "scheduler.json"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    dask_cli = [sys.executable, "-m"]
    procs = [subprocess.Popen([*dask_cli, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(address_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        for _ in range(200):
            if address_file.exists() and address_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(address_file.read_text())["address"]
        workers = [subprocess.Popen([*dask_cli, "distributed.cli.dask_worker", address, "--nthreads", "1",
                                     "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
                   for _ in range(2)]
        procs += workers
        watcher = Client(address, timeout=30)
        watcher.wait_for_workers(2, timeout=60)
        count = subprocess.Popen([sys.executable, "-m", "regioncount_cli.main", "count", str(model), "--interval",
                                  "0", "1", "--no-linear", "--scheduler", address, "--tasks", "24", "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        victim = None
        deadline = time.time() + 120
        while victim is None and time.time() < deadline and count.poll() is None:
            busy = [w for w, tasks in watcher.processing().items() if tasks]
            if busy:
                pids = watcher.run(os.getpid, workers=busy[:1])
                victim = next(iter(pids.values()))
                os.kill(victim, signal.SIGKILL)
            time.sleep(0.01)
        out, err = count.communicate(timeout=300)
        assert victim is not None, "no task was seen running"
        assert count.returncode == 0, err
        data = json.loads(out)
        assert data["activation_regions"] == 2**21 and data["method"] == "exact"
        assert data["engine"]["engine"] == "dask"
        watcher.close()
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_many_models_one_task_each(tmp_path):
    """`count A B C`: a table, or one JSON line per model, each equal to counting that file alone."""
    files = []
    for seed in range(3):
        path = tmp_path / f"ck{seed}.json"
        from regioncount import save_model

        save_model(gaussian_ffn([1, 12, 12, 1], seed), path)
        files.append(path)
    lines = run_cli("count", *files, "--interval", -3, 3, "--json")
    assert lines.exit_code == 0, lines.output
    rows = [json.loads(line) for line in lines.output.splitlines()]
    assert [row["file"] for row in rows] == [str(f) for f in files]
    for row, path in zip(rows, files):
        alone = json.loads(run_cli("count", path, "--interval", -3, 3, "--json").output)
        assert row["activation_regions"] == alone["activation_regions"]
        assert row["linear_pieces"] == alone["linear_pieces"] and row["method"] == "exact"
    sampled = [json.loads(line) for line in
               run_cli("count", *files, "--samples", 5000, "--box", -3, 3, "--json").output.splitlines()]
    alone = json.loads(run_cli("count", files[1], "--samples", 5000, "--box", -3, 3, "--json").output)
    assert sampled[1]["distinct_patterns"] == alone["distinct_patterns"]
    table = run_cli("count", *files, "--interval", -3, 3)
    assert table.exit_code == 0 and "Regions of 3 models" in table.output
    for extra in (["--plane"], ["--lines", 5], ["--tasks", 2]):
        refused = run_cli("count", *files, *extra)
        assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) == 1, refused.output


def test_compare_rows_as_tasks_equal_the_sequential_sweep(cluster_engine):
    """`compare --workers`: every (alpha, m) row is a task; the answer is the sequential one."""
    from fractions import Fraction

    from regioncount_cli.commands_theory import _compare_rows, _compare_rows_on

    alphas, widths = [Fraction(1, 2), Fraction(1, 3)], [4, 8]
    sequential = [_compare_rows(a, widths, "cpu", 2**16, 1.0, None, None) for a in alphas]
    on_tasks = _compare_rows_on(cluster_engine, alphas, widths, "cpu", 2**16, 1.0, None, None)

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if "second" not in k}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    assert [[strip(r.to_json()) for r in rows] for rows in on_tasks] == \
        [[strip(r.to_json()) for r in rows] for rows in sequential]
    result = run_cli("compare", "--alpha", "1/2", "--widths", "4:6:2", "--workers", 2, "--json")
    assert result.exit_code == 0, result.output
    assert [row["m"] for row in json.loads(result.output)["rows"]] == [4, 6]


def test_cuts_of_a_wide_theorem1_deq_avoid_its_dyadic_breakpoints():
    """For m >= 24 every multiple of 2^-24 is a breakpoint: the cuts must still be found (K - 1 of them)."""
    model = theorem1_deq(26)
    seg = resolve_segment(model, (0.0, 1.0))
    for candidate in (0.25, 0.5, 0.75):
        cut = certify_cut(model, seg, candidate, {"device": "cpu"})
        assert cut is not None and (cut * 2**26) % 1 != 0


def test_region_extremes_when_one_region_spans_whole_parts():
    """Few regions, many tasks: middle parts lie inside one region, whose length is the sum of several parts'
    (not of two neighbours); the shortest and longest regions are still the whole walk's."""
    model = _sliver_net()
    whole = count_segment(model, interval=(0.0, 1.0), device="cpu")
    for tasks in (2, 7, 16):
        split = count_segment_split(model, interval=(0.0, 1.0), tasks=tasks)
        assert split.activation_regions == whole.activation_regions == 4
        assert split.engine["cuts"] >= min(tasks - 1, 3)
        assert split.shortest_region == pytest.approx(whole.shortest_region, rel=1e-9)
        assert split.longest_region == pytest.approx(whole.longest_region, rel=1e-9)
