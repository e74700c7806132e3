"""The steep-ramp separation: the DEQ is exact with weights <= 1, the constructed FFNs are exact with the
stated weights, the certified weight bound is a valid lower bound (against every construction and a brute
force search over small FFNs), and the command's JSON, plot and errors."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
import torch
from random_nets import run_cli

from regioncount import count_segment
from regioncount.core.errors import RegionCountError
from regioncount.exact.rational1d import exact_count, exact_output
from regioncount.theory.steep import (
    exact_linf_error,
    max_abs_weight,
    parse_eps,
    ramp,
    steep_ramp_deq,
    steep_ramp_ffn,
    weight_lower_bound,
)


@pytest.mark.parametrize("m", [1, 5, 20, 40, 53])
def test_the_deq_is_the_ramp_exactly_with_weights_at_most_one(m):
    deq = steep_ramp_deq(m)
    assert max_abs_weight(deq) <= 1
    exact = exact_count(deq, [0.0], [1.0], 0.0, 1.0)
    kinks = [k for k in (Fraction(1, 2), Fraction(1, 2) + Fraction(1, 2**m)) if k < 1]  # m = 1: c + delta = 1
    assert exact.breakpoints == kinks
    for x in [Fraction(0), *kinks, Fraction(1), Fraction(1, 2) + Fraction(1, 2 ** (m + 1))]:
        assert exact_output(deq, x)[0] == ramp(x, m)
    assert exact_linf_error(deq, m) == (0, len(kinks) + 1)
    fast = count_segment(deq, interval=(0, 1))
    assert (fast.activation_regions, fast.linear_pieces, fast.method) == (len(kinks) + 1, len(kinks) + 1, "exact")


@pytest.mark.parametrize("m, depth", [(1, 1), (7, 1), (7, 3), (20, 2), (40, 6), (53, 4)])
def test_constructed_ffns_are_exact_and_respect_the_bound(m, depth):
    ffn = steep_ramp_ffn(m, depth)
    assert len(ffn.hidden_widths) == depth and max(ffn.hidden_widths) == 2
    assert max_abs_weight(ffn) == 2.0 ** math.ceil(m / (depth + 1))
    assert exact_linf_error(ffn, m) == (0, 3 if m > 1 else 2)
    for eps in (Fraction(0), Fraction(1, 4), Fraction(49, 100)):
        # the construction has error 0 <= eps, so its largest weight is at least the certified bound
        assert max_abs_weight(ffn) >= weight_lower_bound(m, depth, 2, eps)[1]
        # ... and within a factor 2^(1 + L/(L+1)) / (1 - 2 eps)^(1/(L+1)) of it: nearly tight
        assert max_abs_weight(ffn) <= 4 * weight_lower_bound(m, depth, 2, eps)[1] / float(1 - 2 * eps) ** (1 / (depth + 1))


@pytest.mark.parametrize("m, depth, width", [(10, 1, 2), (40, 3, 2**16), (33, 5, 7), (53, 6, 1)])
def test_the_float_bound_is_the_exact_root_rounded_down(m, depth, width):
    power, root = weight_lower_bound(m, depth, width, Fraction(1, 4))
    assert power == Fraction(1, 2) * Fraction(2**m, width**depth)
    assert Fraction(root) ** (depth + 1) <= power < Fraction(math.nextafter(root, math.inf)) ** (depth + 1)


def test_no_small_weight_ffn_beats_the_bound_brute_force():
    """m = 2 (delta = 1/4), one hidden layer of width 2, eps = 1/8: the bound says every |weight| <= 1 net
    has error > 1/8.  All 5^7 nets with weights and biases in {-1, -1/2, 0, 1/2, 1}, evaluated exactly on
    a grid containing c and c + delta, miss the ramp by more than 1/8 somewhere; the constructed net with
    weights 2 (the bound is 1.22) fits it exactly."""
    m, eps = 2, Fraction(1, 8)
    _, bound = weight_lower_bound(m, 1, 2, eps)
    assert 1 < bound < 2
    values = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0], dtype=torch.float64)
    params = torch.cartesian_prod(*[values] * 7)  # w1 (2), b1 (2), w2 (2), b2 (1): exact dyadics
    x = torch.linspace(0, 1, 17, dtype=torch.float64)  # steps of 1/16: contains 1/2 and 3/4
    target = torch.clamp((x - 0.5) * 4, 0, 1)
    hidden = torch.relu(params[:, None, 0:2] * x[None, :, None] + params[:, None, 2:4])  # (N, 17, 2)
    out = (hidden * params[:, None, 4:6]).sum(2) + params[:, 6:7]
    errors = (out - target).abs().amax(1)  # exact: every operation is on short dyadics
    assert float(errors.min()) > float(eps)
    assert exact_linf_error(steep_ramp_ffn(m, 1), m)[0] == 0 and max_abs_weight(steep_ramp_ffn(m, 1)) == 2


def test_steep_command_json_plot_and_table(tmp_path):
    png = tmp_path / "steep.png"
    result = run_cli("steep", "--widths", "8:12:2", "--depths", "1:3", "--json", "--plot", png)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [row["m"] for row in data["rows"]] == [8, 10, 12]
    row = data["rows"][0]
    well_posed = row["deq"].pop("well_posed")
    assert row["deq"] == {"width": 2, "max_abs_weight": 1.0, "linf_error": 0.0, "linf_error_exact": "0", "pieces": 3}
    assert well_posed.startswith("triangular")
    assert [f["depth"] for f in row["ffn"]] == [1, 2, 3]
    first = row["ffn"][0]
    assert set(first) >= {"depth", "width", "weight_lower_bound", "constructed"}
    assert first["constructed"]["linf_error"] == 0.0 and first["constructed"]["pieces"] == 3
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = run_cli("steep", "--widths", "8", "--depths", "1")
    assert table.exit_code == 0 and "exact" in table.output and "cap | w=2 | built" in table.output


@pytest.mark.parametrize("args, needle", [
    (["--eps", "0.5"], "--eps"), (["--eps", "nan"], "--eps"), (["--eps", "1/3" + "3" * 60], "digits"),
    (["--widths", "54"], "at most 53"), (["--depths", "0"], "at least 1"), (["--plot", "x.txt"], ".png"),
])
def test_steep_refuses_bad_options_in_one_line(args, needle):
    result = run_cli("steep", *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], result.output


def test_parse_eps_accepts_fractions_and_decimals():
    assert parse_eps("1/4") == Fraction(1, 4) == parse_eps("0.25")
    with pytest.raises(RegionCountError):
        parse_eps("-0.1")
