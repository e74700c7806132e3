"""Decision boundaries on exact plane partitions: argmax boundaries and level sets (docs/exact-dd.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from random_nets import run_cli

from regioncount import FFN, decision_boundary, partition_plane


def _two_class(shift: float = 0.0) -> FFN:
    """Hidden relu(x1 - shift), relu(shift - x1), relu(x2 + 1); outputs y0 = relu(x1 - s) - relu(s - x1) = x1 - s
    and y1 = -(x1 - s): the boundary is the line x1 = shift."""
    W1 = [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]
    b1 = [-shift, shift, 1.0]
    W2 = [[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]]
    return FFN([W1, W2], [b1, [0.0, 0.0]], name="two classes")


@pytest.mark.parametrize("shift", [0.0, 0.25, -0.5])
def test_a_straight_boundary_has_the_length_of_the_box(shift):
    part = partition_plane(_two_class(shift), [-1, -1], [1, 1])
    edge = decision_boundary(part)
    assert edge.kind == "argmax" and edge.length == pytest.approx(2.0, abs=1e-12)
    assert np.allclose(edge.segments[..., 0], shift) and edge.tied_regions == 0
    assert edge.to_json()["class_pairs"] == [[0, 1]]


def test_random_classifier_boundaries_separate_the_predicted_classes():
    torch.manual_seed(3)
    W = [torch.randn(12, 2, dtype=torch.float64), torch.randn(12, 12, dtype=torch.float64) * 0.4,
         torch.randn(4, 12, dtype=torch.float64)]
    b = [torch.randn(12, dtype=torch.float64) * 0.3, torch.randn(12, dtype=torch.float64) * 0.1,
         torch.randn(4, dtype=torch.float64) * 0.1]
    net = FFN(W, b)
    edge = decision_boundary(partition_plane(net, [-1, -1], [1, 1]))
    assert len(edge.segments) > 5
    mid = torch.tensor(edge.segments.mean(axis=1))
    top = net.forward(mid).topk(2, dim=1)
    assert float((top.values[:, 0] - top.values[:, 1]).abs().max()) < 1e-9
    assert set(map(tuple, np.sort(top.indices.numpy(), 1).tolist())) <= {tuple(p) for p in edge.classes.tolist()}
    # the boundary length agrees with a fine raster's count of class changes (Crofton: 4 / pi per unit length)
    grid = torch.linspace(-1, 1, 1201, dtype=torch.float64)
    X, Y = torch.meshgrid(grid, grid, indexing="ij")
    cls = net.forward(torch.stack([X.ravel(), Y.ravel()], 1)).argmax(1).reshape(1201, 1201)
    step = 2 / 1200
    crossings = int((cls[1:] != cls[:-1]).sum() + (cls[:, 1:] != cls[:, :-1]).sum()) * step
    assert edge.length == pytest.approx(crossings * np.pi / 4, rel=0.08)


def test_one_output_gives_its_level_set():
    net = FFN([[[1.0, 1.0]], [[1.0]]], [[0.0], [-0.5]])  # y = relu(x1 + x2) - 0.5
    edge = decision_boundary(partition_plane(net, [-1, -1], [1, 1]))
    assert edge.kind == "level" and edge.length == pytest.approx(np.sqrt(2) * 1.5, abs=1e-12)


def test_the_plot_command_draws_and_reports_the_boundary(tmp_path):
    model = tmp_path / "clf.json"
    model.write_text(json.dumps({"type": "ffn", "layers": [
        {"weight": [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], "bias": [0.0, 0.0, 1.0]},
        {"weight": [[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]], "bias": [0.0, 0.0]}]}))
    out = tmp_path / "b.png"
    result = run_cli("plot", str(model), "--box", "-1,-1", "1,1", "--out", str(out), "--boundary")
    assert result.exit_code == 0, result.output
    assert "decision boundary 2 long, 1 segments in 1 regions" in result.output and out.stat().st_size > 1000
    bad = run_cli("plot", str(model), "--segment", "-1,-1", "1,1", "--out", str(out), "--boundary")
    assert bad.exit_code == 2 and "apply to 2-D plots" in bad.output
