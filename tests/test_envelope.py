"""Segment plots reduced to pixel columns while walking (:mod:`regioncount.line.envelope`): the envelope
agrees with the kept breakpoints evaluated on the model, the counts are unchanged by it, and a plot of
2^20 pieces needs no breakpoints at all."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from random_nets import gaussian_ffn, run_cli

from regioncount import count_segment, theorem1_deq
from regioncount.core.geometry import resolve_segment
from regioncount.line.envelope import ColumnEnvelope, output_along


def _reference_columns(model, interval, columns, output=0):
    """Per column: min and max of the output at the kept breakpoints and ends inside it and at its edges, and
    the breakpoints per column."""
    result = count_segment(model, interval=interval, keep_breakpoints=True, device="cpu")
    seg = resolve_segment(model, interval, None)
    ts = np.concatenate([[seg.t_low], result.breakpoints, [seg.t_high]])
    ys = output_along(model, seg, output)(torch.from_numpy(ts)).numpy()
    col = np.clip(((ts - seg.t_low) / (seg.t_high - seg.t_low) * columns).astype(np.int64), 0, columns - 1)
    low, high = np.full(columns, np.inf), np.full(columns, -np.inf)
    np.minimum.at(low, col, ys)
    np.maximum.at(high, col, ys)
    edges = np.linspace(seg.t_low, seg.t_high, columns + 1)[1:-1]  # the curve at the inner edges counts for both
    at_edges = np.interp(edges, ts, ys)
    for side in (np.arange(1, columns), np.arange(columns - 1)):
        np.minimum.at(low, side, at_edges)
        np.maximum.at(high, side, at_edges)
    return result, low, high, np.bincount(col[1:-1], minlength=columns), ts, ys


@pytest.mark.parametrize("case", ["deq", "ffn", "ffn-2-outputs"])
def test_the_envelope_is_the_curve_reduced_to_columns(case):
    if case == "deq":
        model, interval = theorem1_deq(12, "a"), (0.0, 1.0)
    else:
        k = 2 if case == "ffn-2-outputs" else 1
        model, interval = gaussian_ffn([1, 64, 64, 64, k], 3, he=True), (-3.0, 3.0)
    output = model.output_dim - 1
    columns = 97
    result, low, high, per_column, ts, ys = _reference_columns(model, interval, columns, output)
    seg = resolve_segment(model, interval, None)
    envelope = ColumnEnvelope(seg.t_low, seg.t_high, columns, output, output_along(model, seg, output), keep=40)
    counted = count_segment(model, interval=interval, device="cpu", envelope=envelope)
    assert (counted.activation_regions, counted.linear_pieces) == (result.activation_regions, result.linear_pieces)
    assert envelope.vertices == len(ts) and not envelope.complete
    scale = np.abs(ys).max()
    filled = np.isfinite(low)
    assert filled.all() and np.isfinite(envelope.low.numpy()).all()
    assert np.allclose(envelope.low.numpy()[filled], low[filled], rtol=0, atol=1e-12 * scale)
    assert np.allclose(envelope.high.numpy()[filled], high[filled], rtol=0, atol=1e-12 * scale)
    assert envelope.breakpoints.tolist() == per_column.tolist()
    assert np.array_equal(envelope.head_t, ts[:40])
    assert np.allclose(envelope.head_y, ys[:40], rtol=0, atol=1e-12 * scale)


def test_a_short_curve_is_kept_whole():
    model = theorem1_deq(6)
    seg = resolve_segment(model, (0.0, 1.0), None)
    envelope = ColumnEnvelope(0.0, 1.0, 50, 0, output_along(model, seg, 0))
    count_segment(model, interval=(0.0, 1.0), device="cpu", envelope=envelope, linear_pieces=False)
    assert envelope.complete and len(envelope.head_t) == 65
    exact = output_along(model, seg, 0)(torch.from_numpy(envelope.head_t)).numpy()
    assert np.array_equal(envelope.head_y, exact)  # dyadic slopes and ends: the sums are exact here


def test_a_plot_of_a_million_pieces_keeps_no_breakpoints(tmp_path, monkeypatch):
    """``deq --width 20 --plot``: the walk feeds the envelope; the breakpoints are never kept (the count is
    asked for none), and the picture is written."""
    from regioncount.line import exact1d

    real = exact1d._count
    asked = []

    def spy(*args, **kwargs):
        asked.append((kwargs["keep_breakpoints"], kwargs.get("envelope") is not None))
        return real(*args, **kwargs)

    monkeypatch.setattr(exact1d, "_count", spy)
    out = run_cli("deq", "--width", "20", "--device", "cpu", "--plot", tmp_path / "m20.png")
    assert out.exit_code == 0, out.output
    assert asked == [(False, True)]
    assert (tmp_path / "m20.png").stat().st_size > 10_000


def test_a_general_w_deq_plot_still_reads_its_breakpoints(tmp_path):
    from random_nets import gaussian_deq

    from regioncount.io.model_files import save_model

    deq = gaussian_deq(6, 1, False)
    path = tmp_path / "deq.json"
    save_model(deq, path)
    out = run_cli("plot", path, "--segment", "-3,-3", "3,3", "--out", tmp_path / "deq.png", "--assume-well-posed")
    assert out.exit_code == 0, out.output
    assert (tmp_path / "deq.png").exists()
