"""The shipped model files in data/ have the counts recorded in data/known_counts.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regioncount import count_segment, load_model

DATA = Path(__file__).resolve().parent.parent / "data"
KNOWN = json.loads((DATA / "known_counts.json").read_text())["models"]


@pytest.mark.parametrize("entry", KNOWN, ids=[e["file"] for e in KNOWN])
def test_data_file_counts(entry):
    result = count_segment(load_model(DATA / entry["file"]))
    assert result.activation_regions == entry["activation_regions"]
    assert result.linear_pieces == entry["linear_pieces"]
