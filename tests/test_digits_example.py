"""The digits example (examples/digits_regions.py) runs: nets trained on scikit-learn's digits are read as
graph models and counted exactly along a segment and in a plane, with their decision boundary."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
ROOT = Path(__file__).resolve().parent.parent


def _example():
    spec = importlib.util.spec_from_file_location("digits_regions", ROOT / "examples" / "digits_regions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["leaky_mlp", "conv_deq", pytest.param("cnn", marks=pytest.mark.slow)])
def test_trained_digit_nets_are_counted_exactly_with_their_boundary(name, tmp_path):
    example = _example()
    module, shape = example.nets(quick=True)[name]
    row = example.study(name, module, shape, example.load_digits(), 1, tmp_path)
    assert row["test_accuracy"] > 0.1
    assert row["segment_3_to_8"]["method"] == "exact" and row["segment_3_to_8"]["activation_regions"] >= 1
    assert row["plane_0_1_7"]["activation_regions"] > 1 and row["plane_0_1_7"]["method"] == "exact"
    assert row["decision_boundary"]["kind"] == "argmax"
    assert (tmp_path / f"digits_{name}.png").stat().st_size > 1000
