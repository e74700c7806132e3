"""Checkpoint series: steps from file names, ``regioncount track`` (ordered counts, JSON lines, PNG)."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from random_nets import run_cli

from regioncount.core.errors import RegionCountError
from regioncount.io.model_files import load_model
from regioncount.io.series import checkpoint_steps, step_from_name
from regioncount.line.exact1d import count_segment


@pytest.mark.parametrize("name, step", [("ckpt_001200.pt", 1200), ("epoch3-step500.safetensors", 500),
                                        ("run7/model.pt", None), ("final.json", None), ("s12.v2.pt", 12)])
def test_step_from_name(name, step):
    assert step_from_name(name) == step


def test_checkpoint_steps_refusals():
    with pytest.raises(RegionCountError, match="no step number"):
        checkpoint_steps(["a.pt", "b10.pt"])
    with pytest.raises(RegionCountError, match="two checkpoints at step 10"):
        checkpoint_steps(["a10.pt", "b10.pt"])
    with pytest.raises(RegionCountError, match="3 steps given for 2"):
        checkpoint_steps(["a.pt", "b.pt"], [1, 2, 3])
    assert checkpoint_steps(["a.pt", "b.pt"], [5, 1]) == [5, 1]


@pytest.fixture
def checkpoints(tmp_path):
    paths = []
    for step in (300, 0, 1000, 20):  # written out of order: track sorts by step
        gen = torch.Generator().manual_seed(step)
        state = {"fc1.weight": torch.randn(12, 1, generator=gen, dtype=torch.float64) * (1 + step / 300),
                 "fc1.bias": torch.randn(12, generator=gen, dtype=torch.float64),
                 "out.weight": torch.randn(1, 12, generator=gen, dtype=torch.float64),
                 "out.bias": torch.zeros(1, dtype=torch.float64)}
        path = tmp_path / f"ckpt_{step:05d}.pt"
        torch.save(state, path)
        paths.append(path)
    return paths


def test_track_orders_by_step_and_counts_exactly(checkpoints, tmp_path):
    png = tmp_path / "track.png"
    out = run_cli("track", *checkpoints, "--interval", "-3", "3", "--json", "--out", png)
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert [row["step"] for row in rows] == [0, 20, 300, 1000]
    for row in rows:
        expected = count_segment(load_model(row["file"]), interval=(-3.0, 3.0), device="cpu", linear_pieces=True)
        assert row["activation_regions"] == expected.activation_regions
        assert row["linear_pieces"] == expected.linear_pieces
    with Image.open(png) as image:
        assert image.size[0] > 300 and image.size[1] > 200


def test_track_table_with_given_steps_and_sampling(checkpoints):
    out = run_cli("track", *checkpoints, "--steps", "4,1,3,2", "--interval", "-3", "3")
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if ".pt" in line]
    # the given steps (in argument order) decide the order, not the names
    assert [line.split("│")[2].strip() for line in lines] == ["ckpt_00000.pt", "ckpt_00020.pt", "ckpt_01000.pt",
                                                            "ckpt_00300.pt"]
    sampled = run_cli("track", *checkpoints, "--box", "-3", "3", "--samples", "20000", "--json")
    assert sampled.exit_code == 0, sampled.output
    assert all(json.loads(line)["method"].startswith("sampled") for line in sampled.output.splitlines())


@pytest.mark.parametrize("args, pattern", [
    (["--steps", "1,2"], "2 steps given for 4"),
    (["--steps", "a,b,c,d"], "comma-separated integers"),
    (["--out", "x.txt"], "png"),
    (["--breakpoints", "b.npy"], "one model"),
])
def test_track_refusals(checkpoints, args, pattern):
    out = run_cli("track", *checkpoints, "--interval", "-3", "3", *args)
    assert out.exit_code != 0
    assert pattern.lower() in out.output.lower(), out.output
    assert "Traceback" not in out.output
