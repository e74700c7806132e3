"""DEQ well-posedness certificates and the `check` command."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner
from regioncount_cli.main import main

from regioncount import theorem1_deq
from regioncount.wellposed import certify, p_matrix_test


def W(rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_known_ill_posed_W_names_subset_1_2():
    cert = certify(W([[0, 2, 0], [2, 0, 0], [0, 0, 0]]))
    assert cert.well_posed is False and cert.method == "P-matrix"
    assert cert.failing_subset == [1, 2] and cert.failing_minor == -3.0
    assert "{1,2}" in cert.reason


def test_contractive_and_triangular_pass_with_the_right_certificate():
    assert certify(W([[0, 0.5], [0.3, 0]])).method == "contraction"
    assert certify(theorem1_deq(6).W).method == "triangular"
    cert = certify(W([[0, 0.9], [-5, 0]]))  # not contractive, not monotone, yet a P-matrix
    assert cert.well_posed is True and cert.method == "P-matrix"


def test_triangular_with_diagonal_at_least_one_fails():
    cert = certify(W([[0.5, 0], [1, 1.0]]))
    assert cert.well_posed is False and cert.failing_subset == [2]


def test_p_matrix_borderline_is_decided_exactly():
    ok, subset, minor, _ = p_matrix_test(torch.eye(2, dtype=torch.float64) - W([[0, 1], [1, 0]]))
    assert not ok and subset == [0, 1] and minor == 0.0


def test_size_cap_leaves_it_undecided():
    m = 6
    rng = torch.Generator().manual_seed(1)
    Wbig = torch.randn(m, m, generator=rng, dtype=torch.float64) * 3
    cert = certify(Wbig, p_matrix_cap=3)
    assert cert.checks[-1].passed is None and "cap" in cert.checks[-1].text


def test_check_command(tmp_path):
    ill = tmp_path / "ill.json"
    ill.write_text(json.dumps({"type": "deq", "W": [[0, 2, 0], [2, 0, 0], [0, 0, 0]], "U": [[1], [1], [1]],
                               "b": [0, 0, 0], "A": [[1, 1, 1]]}))
    result = CliRunner().invoke(main, ["check", str(ill), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["well_posed"] is False and data["failing_subset"] == [1, 2]
    good = tmp_path / "good.json"
    CliRunner().invoke(main, ["deq", "-m", "5", "--save-model", str(good)])
    result = CliRunner().invoke(main, ["check", str(good)])
    assert result.exit_code == 0 and "well-posed" in result.output and "triangular" in result.output
    ffn = tmp_path / "ffn.json"
    ffn.write_text(json.dumps({"type": "ffn", "layers": [{"weight": [[1]], "bias": [0]}]}))
    result = CliRunner().invoke(main, ["check", str(ffn)])
    assert result.exit_code == 2 and "FFN" in result.output
