"""DEQ well-posedness certificates and the `check` command."""

from __future__ import annotations

import json

import pytest
import torch
from random_nets import run_cli

from regioncount import theorem1_deq
from regioncount.models.wellposed import certify, p_matrix_test


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
    result = run_cli("check", str(ill), "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["well_posed"] is False and data["failing_subset"] == [1, 2]
    good = tmp_path / "good.json"
    run_cli("deq", "-m", "5", "--save-model", str(good))
    result = run_cli("check", str(good))
    assert result.exit_code == 0 and "well-posed" in result.output and "triangular" in result.output
    ffn = tmp_path / "ffn.json"
    ffn.write_text(json.dumps({"type": "ffn", "layers": [{"weight": [[1]], "bias": [0]}]}))
    result = run_cli("check", str(ffn))
    assert result.exit_code == 0 and "FFN" in result.output and "always well-defined" in result.output


def _shift(m: int, c: float = 1.0) -> torch.Tensor:
    W = torch.zeros(m, m, dtype=torch.float64)
    for i in range(m):
        W[(i + 1) % m, i] = c
    return W


@pytest.mark.parametrize("m", [3, 5, 12, 16, 19, 25, 40])
def test_cyclic_shift_is_never_certified(m):
    """I - W is singular for the cyclic shift: float64 sees lambda_min ~ 1e-16 > 0; no certificate may pass."""
    from regioncount.models.wellposed import certify

    cert = certify(_shift(m))
    assert cert.well_posed is not True
    assert all(not c.passed for c in cert.checks if c.name != "triangular")
    if m > 16:
        assert cert.well_posed is None and "cannot certify" in cert.reason and "`assume_well_posed`" in cert.reason
    else:
        assert cert.well_posed is False


@pytest.mark.parametrize("m", [3, 8, 30])
def test_near_singular_contractive_shift_is_certified_exactly(m):
    from regioncount.models.wellposed import certify

    cert = certify(_shift(m, 1 - 2.0**-50))
    assert cert.well_posed is True and cert.method == "contraction"


def test_p_matrix_read_from_the_stored_weights_not_from_rounded_I_minus_W():
    """W = [[-2^-60, 1], [1, 0]]: minors of I - W are 1 + 2^-60, 1 and 2^-60 > 0 (float64 rounds 1 + 2^-60)."""
    from regioncount.models.wellposed import certify

    cert = certify(torch.tensor([[-(2.0**-60), 1.0], [1.0, 0.0]], dtype=torch.float64))
    assert cert.well_posed is True
    assert next(c for c in cert.checks if c.name == "P-matrix").passed is True


def test_singular_solve_is_a_one_line_error(tmp_path):

    from regioncount import DEQ, save_model

    m = 19
    save_model(DEQ(W=_shift(m), U=torch.ones(m, 1, dtype=torch.float64), b=torch.zeros(m, dtype=torch.float64),
                   A=torch.ones(1, m, dtype=torch.float64)), tmp_path / "cyc.json")
    for extra in (["--interval", "-1", "1"], ["--box", "-1", "1", "--samples", "1000"]):
        out = run_cli("count", str(tmp_path / "cyc.json"), *extra, "--assume-well-posed")
        assert out.exit_code == 2, out.output
        assert out.output.startswith("Error: ") and "internal error" not in out.output
        assert len(out.output.strip().splitlines()) == 1
    out = run_cli("check", str(tmp_path / "cyc.json"))
    assert out.exit_code == 1 and "undecided" in out.output


def test_check_of_a_json_file_needs_no_torch(tmp_path):
    """`regioncount check` of a v1 JSON DEQ answers without importing torch, with the same certificate."""
    import json
    import subprocess
    import sys

    from regioncount import theorem1_deq
    from regioncount.io.model_files import save_model

    path = tmp_path / "deq.json"
    save_model(theorem1_deq(6), path)
    probe = ("import sys, runpy; sys.argv = ['regioncount', 'check', sys.argv[1], '--json']\n"
             "try:\n    runpy.run_module('regioncount', run_name='__main__')\n"
             "except SystemExit as exc:\n    code = exc.code\n"
             "print('TORCH' if 'torch' in sys.modules else 'NOTORCH', file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=120)
    assert out.stderr.strip().endswith("NOTORCH"), out.stderr
    data = json.loads(out.stdout)
    assert data["well_posed"] is True and data["method"] == "triangular"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "deq", "W": [[0.0, 1.0]], "U": [[1.0]], "b": [0.0], "A": [[1.0]]}))
    out = subprocess.run([sys.executable, "-m", "regioncount", "check", str(bad)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0 and "W must be square" in out.stderr and "Traceback" not in out.stderr


def test_cholesky_proof_is_sound_and_refuses_what_it_cannot_prove():
    import numpy as np

    from regioncount.models.wellposed import cholesky_proves_pd

    assert cholesky_proves_pd(np.eye(5), 0.0)
    assert cholesky_proves_pd(np.diag([1.0, 1e-3]), 1e-6)
    assert not cholesky_proves_pd(np.diag([1.0, 2.0**-70]), 0.0)  # positive definite, but below rounding
    assert not cholesky_proves_pd(np.diag([1.0, 1e-3]), 1e-3)  # the error could make it singular
    assert not cholesky_proves_pd(np.array([[1.0, 1.0], [1.0, 1.0]]), 0.0)  # singular
    assert not cholesky_proves_pd(np.array([[1.0, np.nan], [np.nan, 1.0]]), 0.0)
    rng = np.random.default_rng(0)
    for _ in range(50):  # random matrices: a proof is only ever given for a positive definite one
        X = rng.normal(size=(6, 6))
        S = X @ X.T - rng.uniform(0, 3) * np.eye(6)
        if cholesky_proves_pd(S, 0.0):
            assert np.linalg.eigvalsh(S).min() > 0


@pytest.mark.parametrize("m", [80, 200])
def test_wide_contractions_are_proven_and_wide_shifts_are_not(m):
    """Beyond the exact cap, the rigorous Cholesky test still proves ||W||_2 < 1 (no heuristic margin): a
    scaled random W passes, the cyclic shift (||W||_2 = 1, I - W singular) does not."""
    from regioncount.models.wellposed import certify

    gen = torch.Generator().manual_seed(m)
    W = torch.randn(m, m, generator=gen, dtype=torch.float64)
    W *= 0.99 / torch.linalg.matrix_norm(W, ord=2)
    cert = certify(W)
    assert cert.well_posed is True and cert.method == "contraction" and "rigorous error bounds" in cert.reason
    shift = certify(_shift(m))
    assert shift.well_posed is None and not any(c.passed for c in shift.checks)
