"""The compare search: exact caps, verdicts, constructions met exactly, training above the bound."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image
from random_nets import run_cli

from regioncount import FFN, theorem1_deq
from regioncount.core.errors import RegionCountError
from regioncount.theory.constructions import tent_ffn
from regioncount.theory.family import depth_cap, l1_lower_bound, width_cap
from regioncount.theory.parsing import parse_alpha, parse_widths
from regioncount.theory.separation import compare_width
from regioncount.theory.training import exact_errors, sawtooth, train_sawtooth_ffn


def test_exact_depth_cap_at_exact_powers():
    assert depth_cap(16, Fraction(1, 2)) == 4
    assert depth_cap(27, Fraction(1, 3)) == 3
    assert depth_cap(15, Fraction(1, 2)) == 3
    assert depth_cap(64, Fraction(1, 4)) == 2
    assert depth_cap(10**6, Fraction(1, 2)) == 1000


def test_exact_width_cap():
    assert width_cap(16, Fraction(1, 2)) == 8  # 2^(4 - 1)
    assert width_cap(27, Fraction(1, 3)) == 256  # 2^(9 - 1)
    assert width_cap(64, Fraction(1, 2)) == 128
    assert width_cap(12, Fraction(1, 2)) == 5  # floor(2^(sqrt 12 - 1)) = floor(5.55)


def test_alpha_parsing():
    assert parse_alpha("0.5") == Fraction(1, 2)
    assert parse_alpha("1/3") == Fraction(1, 3)
    for bad in ("0", "1", "1.5", "x", "-0.2"):
        with pytest.raises(RegionCountError):
            parse_alpha(bad)
    assert parse_widths("4:8:2") == [4, 6, 8]
    with pytest.raises(RegionCountError):
        parse_widths("8:4")


def test_hand_computed_rows():
    # m = 16, alpha = 1/2: L_max = 4, w_max = 8, bound 9^4 = 6561 < 65536: separated
    row = compare_width(16, Fraction(1, 2), device="cpu")
    assert (row.deq_regions, row.max_depth, row.max_width, row.best_ffn_bound) == (65536, 4, 8, 6561)
    assert row.separated
    last = row.depths[-1]
    assert last.min_width_to_match == 15 and last.status == "impossible in family"
    assert last.constructed_regions == 65536  # the 15-unit fold of depth 4 meets 2^16 exactly
    # m = 4, alpha = 3/4: L_max = 2, w_max = floor(2^(sqrt2 - 1)) = 1: bound 3 < 16
    row = compare_width(4, Fraction(3, 4), device="cpu")
    assert (row.max_depth, row.max_width, row.best_ffn_bound, row.separated) == (2, 1, 3, True)
    # m = 2, alpha = 1/2: L_max = 1, w_max = floor(2^(sqrt2 - 1)) = 1: one layer of 1 unit, 2 pieces < 4
    row = compare_width(2, Fraction(1, 2), device="cpu")
    assert (row.best_ffn_bound, row.separated) == (2, True)
    assert row.same_neurons_bound == 3


def test_a_family_that_is_not_separated():
    # m = 1: L_max = 1, w_max = 1 -> bound 2 = 2^1: not separated, and constructible
    row = compare_width(1, Fraction(1, 2), device="cpu")
    assert (row.best_ffn_bound, row.separated) == (2, False)
    assert row.depths[0].status == "constructible" and row.depths[0].constructed_regions == 2


def test_l1_bound():
    assert l1_lower_bound(10, 1) == Fraction(1, 4)  # one piece: the best line is the constant 1/2, error 1/4
    assert l1_lower_bound(2, 2) == Fraction(1, 8)
    assert l1_lower_bound(3, 10) == 0


def _pl_l1(points, values, m):
    """Exact L1 distance between the PL function through (points, values) and T^m (dyadic data)."""
    from regioncount.theory.family import tent_power

    grid = sorted(set(points) | {Fraction(j, 2**m) for j in range(2**m + 1)})

    def g(x):
        for (x0, y0), (x1, y1) in zip(zip(points, values), zip(points[1:], values[1:])):
            if x0 <= x <= x1:
                return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
        raise AssertionError

    total = Fraction(0)
    for a, b in zip(grid, grid[1:]):
        d0, d1 = g(a) - tent_power(a, m), g(b) - tent_power(b, m)
        total += ((abs(d0) + abs(d1)) / 2 if d0 * d1 >= 0 else (d0 * d0 + d1 * d1) / (2 * (abs(d0) + abs(d1)))) * (b - a)
    return total


@pytest.mark.parametrize("m, pieces", [(2, 1), (2, 2), (3, 2), pytest.param(3, 3, marks=pytest.mark.slow)])
def test_sharp_l1_bound_holds_by_brute_force(m, pieces):
    """Every continuous PL g with N pieces, breakpoints on the 1/16 grid (1/8 for N = 3) and values on the
    1/4 grid in [-1/4, 5/4] ([0, 1] for N = 3), is at least (2^m - 2N + 2) / 2^(m+2) from T^m in L1 (exact
    arithmetic); for N = 1 the bound is attained (1/4, by the constant 1/2)."""
    import itertools

    bound = l1_lower_bound(m, pieces)
    # three pieces: a coarser grid keeps the search to ~13,000 functions
    xs = [Fraction(j, 16 if pieces < 3 else 8) for j in range(1, 16 if pieces < 3 else 8)]
    ys = [Fraction(j, 4) for j in (range(-1, 6) if pieces < 3 else range(0, 5))]
    best = None
    for cuts in itertools.combinations(xs, pieces - 1):
        points = [Fraction(0), *cuts, Fraction(1)]
        for values in itertools.product(ys, repeat=len(points)):
            error = _pl_l1(points, list(values), m)
            assert error >= bound, (points, values, error, bound)
            best = error if best is None else min(best, error)
    if pieces == 1:
        assert best == bound  # attained by the constant 1/2


def test_the_l1_bracket_is_ordered_and_the_construction_is_in_the_family():
    from regioncount.theory.family import (
        depth_cap,
        exact_errors_to_sawtooth,
        teeth_approximant,
        teeth_errors,
        width_cap,
    )

    for m, alpha in ((8, Fraction(1, 2)), (12, Fraction(1, 2)), (16, Fraction(1, 4)), (13, Fraction(1, 3))):
        row = compare_width(m, alpha, device="cpu")
        assert 0 <= row.l1_error["lower_bound"] <= row.l1_error["constructed"] <= 0.25
        assert Fraction(row.l1_error["exact_lower_bound"]) == l1_lower_bound(m, row.best_ffn_bound)
        net, matched = teeth_approximant(m, depth_cap(m, alpha), width_cap(m, alpha))
        assert len(net.hidden_widths) <= row.max_depth and max(net.hidden_widths) <= max(row.max_width, 2)
        # the exact error visits every matched piece: checked where that is quick (the closed form elsewhere)
        l1, linf = exact_errors_to_sawtooth(net, m) if matched < 2**13 else teeth_errors(m, matched)
        assert l1 == Fraction(2 * (2**m - matched - 1) + 1, 2 ** (m + 3)) == Fraction(row.l1_error["constructed_exact"])
        assert linf == Fraction(1, 2) and row.linf_error["lower_bound"] in (0.0, 0.5)
        # the lower bound holds against the construction too (its pieces are within the family's bound)
        assert l1 >= l1_lower_bound(m, count_pieces(net))


@pytest.mark.parametrize("m, depth, width", [(3, 1, 2), (4, 1, 3), (5, 2, 3), (6, 2, 5), (8, 3, 4), (9, 2, 9),
                                               (10, 3, 17), (12, 2, 64), (12, 2, 63), (7, 3, 2), (11, 3, 7)])
def test_the_teeth_approximant_uses_the_whole_family_and_its_closed_form_is_exact(m, depth, width):
    """The first layer holds the clamp and the teeth of T^s1 (clamp in the last falling piece, 2^s1 + 1
    units, or in the last rising one with a unit facing left, 2^s1 - 1 units: the better), the other
    layers 2^s teeth: within the depth and width, N + 2 pieces as stored (N matched, the half piece, the
    flat end), never fewer matched than the falling form alone, and the closed-form errors are exact."""
    from regioncount import count_segment
    from regioncount.theory.family import exact_errors_to_sawtooth, teeth_approximant, teeth_errors

    net, matched = teeth_approximant(m, depth, width)
    later = width.bit_length() - 1
    falling = 2 ** min((width - 1).bit_length() - 1 + later * (depth - 1), m - 1) - 1
    assert matched >= falling
    assert len(net.hidden_widths) == depth and max(net.hidden_widths) <= width
    count = count_segment(net, interval=(0.0, 1.0), device="cpu")
    assert (count.method, count.activation_regions, count.linear_pieces) == ("exact", matched + 2, matched + 2)
    assert exact_errors_to_sawtooth(net, m) == teeth_errors(m, matched)


def test_the_bracket_at_m27_uses_the_family_capacity():
    """m = 27, alpha = 1/3: depth 3, width 256 hold the clamp in the last rising piece of T^8 (255 units) and
    T^16 after it: 254 x 2^16 pieces of T^27 matched (a separate min layer with 64 teeth gave 0.2499999)."""
    from regioncount.theory.family import depth_cap, teeth_approximant, teeth_errors, width_cap

    alpha = Fraction(1, 3)
    net, matched = teeth_approximant(27, depth_cap(27, alpha), width_cap(27, alpha))
    assert (matched, net.hidden_widths) == (254 * 2**16, [255, 256, 256])
    assert teeth_errors(27, matched)[0] == Fraction(2 * (2**27 - matched - 1) + 1, 2**30) < Fraction(22, 100)


def count_pieces(net):
    from regioncount import count_segment

    return count_segment(net, interval=(0, 1)).linear_pieces


def test_exact_errors():
    m = 5
    errors = exact_errors(tent_ffn(m), m)
    assert (errors.l1, errors.linf, errors.exact) == (0, 0, True)
    # the zero function: integral of T^m is 1/2, max is 1 (exactly)
    zero = tent_ffn(1)
    zero.weights[-1] = zero.weights[-1] * 0
    errors = exact_errors(zero, m)
    assert errors.l1 == Fraction(1, 2) and errors.linf == 1
    x = torch.linspace(0, 1, 33, dtype=torch.float64)[:, None]
    assert torch.equal(sawtooth(x, 5), theorem1_deq(5, "a").forward(x))


def test_exact_errors_of_a_net_that_is_not_constant_at_the_end():
    """y = x on [0, 1] is not constant after its last kink, so every tooth of T^m is visited.  Against T^1:
    |x - 2x| on [0, 1/2] gives 1/8; |3x - 2| on [1/2, 1] (zero at 2/3) gives 1/24 + 1/6; the largest gap is
    1 at x = 1.  For T^3, a fine quadrature agrees."""
    from regioncount.theory.family import exact_errors_to_sawtooth

    identity = FFN([torch.ones(1, 1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)],
                   [torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    l1, linf = exact_errors_to_sawtooth(identity, 1)
    assert l1 == Fraction(1, 3) and linf == 1
    errors = exact_errors(identity, 3)
    xs = torch.linspace(0, 1, 2**16 + 1, dtype=torch.float64)[:, None]
    quad = float((sawtooth(xs, 3) - xs).abs()[:, 0].mean())
    assert errors.exact and abs(float(errors.l1) - quad) < 1e-4


def test_training_stays_above_the_derived_bound():
    net = train_sawtooth_ffn(6, 2, 2, steps=200, time_budget=5)
    errors = exact_errors(net.model, 6)
    assert errors.exact and errors.l1 >= l1_lower_bound(6, errors.pieces) > 0


run = run_cli


def test_compare_json_and_plot(tmp_path):
    png = tmp_path / "sep.png"
    result = run("compare", "--alpha", "0.5", "--widths", "4:9", "--json", "--plot", png, "--device", "cpu")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["alpha"] == 0.5 and len(data["rows"]) == 6
    for row in data["rows"]:
        assert {"m", "deq_regions", "max_depth", "max_width", "best_ffn_bound", "separated", "depths"} <= set(row)
        assert row["deq_regions"] == 2 ** row["m"]
        for d in row["depths"]:
            assert {"depth", "bound_at_max_width", "min_width_to_match", "constructed_regions"} <= set(d)
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape[1] > 500 and len(np.unique(image.reshape(-1, 3), axis=0)) > 20


def test_compare_with_training_table():
    result = run("compare", "--widths", "6", "--train", "--train-steps", "50", "--time-budget", "2")
    assert result.exit_code == 0, result.output
    assert "Trained" in result.output and "L1 error" in result.output


def test_bound_json_keys_and_big_integers():
    data = json.loads(run("bound", "--input-dim", "1", "--widths", "8,8,8", "--json").output)
    assert {"serra", "montufar_per_layer", "product_1d", "telgarsky", "montufar_lower"} <= set(data)
    assert data["serra"] == data["product_1d"] == 729
    big = run("bound", "--depth", "64", "--width", "255", "--deq-width", "200", "--json")
    data = json.loads(big.output)
    assert data["serra"] == 2**512 and data["deq_max"] == 2**200
    assert "inf" not in big.output.lower()
    data = json.loads(run("bound", "--input-dim", "2", "--widths", "4,4", "--json").output)
    assert data["product_1d"] is None and data["serra"] == 11**2


def test_bound_verify_counts_the_construction():
    data = json.loads(run("bound", "--depth", "5", "--width", "3", "--verify", "--json").output)
    assert data["verified_regions"] == data["product_1d"] == 1024


@pytest.mark.parametrize("args, pattern", [
    (("compare", "--alpha", "1.2"), "between 0 and 1"),
    (("compare", "--widths", "x"), "widths must look like"),
    (("compare", "--widths", "41:42"), "exceeds 40"),
    (("bound",), "give --widths"),
    (("bound", "--widths", "3,a"), "comma-separated integers"),
    (("bound", "--widths", "3,0"), "at least 1"),
    (("bound", "--widths", "2,2", "--verify"), "no construction"),
])
def test_theory_commands_bad_input(args, pattern):
    result = run(*args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert pattern in result.output


def test_alpha_with_many_digits_is_refused_fast():
    import time

    with pytest.raises(RegionCountError, match="significant digits"):
        parse_alpha("0.3333333333333333")
    with pytest.raises(RegionCountError, match="too precise"):
        parse_alpha("1/10000000000000")
    start = time.perf_counter()
    alpha = parse_alpha("0.333333333333")  # 12 digits: accepted, and decided quickly
    assert depth_cap(40, alpha) == 3 and width_cap(40, alpha) == 1658
    assert depth_cap(2**40, Fraction(1, 40)) == 2 and width_cap(2**40, Fraction(39, 40)) == 2
    assert time.perf_counter() - start < 5


def test_cli_compare_refuses_a_long_alpha():

    out = run_cli("compare", "--alpha", "0.3333333333333333", "--widths", "4:6")
    assert out.exit_code == 2 and "significant digits" in out.output


def test_best_in_family_is_built_and_counted_at_the_bound():
    """m = 16, alpha = 1/2: L_max = 4, w_max = 8; the fold FFN of widths (8, 8, 8, 8) attains Serra's bound
    6561, counted exactly; the smallest match of depth 4 is 15^4 with 2^16 regions, 1.875x the cap."""
    row = compare_width(16, Fraction(1, 2), device="cpu")
    best = row.depths[-1].best_in_family
    assert best["widths"] == [8, 8, 8, 8] and best["bound"] == 6561
    assert (best["regions"], best["pieces"], best["status"], best["method"]) == (6561, 6561, "attained", "exact")
    match = row.depths[-1].smallest_match
    assert match["widths"] == [15, 15, 15, 15] and match["regions"] == 2**16 and match["neurons"] == 60
    assert match["width_over_cap"] == 15 / 8 and match["reaches_2m"]


@pytest.mark.parametrize("m, depth", [(16, 3), (17, 4), (10, 4), (7, 4), (5, 3), (12, 2), (9, 1)])
def test_smallest_match_reaches_2m_and_no_neuron_can_go(m, depth):
    from regioncount.theory.family import balanced_widths, family_pieces

    widths = balanced_widths(m, depth)
    assert len(widths) == depth
    pieces, _ = family_pieces(widths)
    assert pieces >= 2**m
    if all(n >= 3 for n in widths[:-1]):  # fold widths: taking one unit from the widest layer falls short
        fewer = sorted(widths, reverse=True)
        fewer[0] -= 1
        assert math.prod(n + 1 for n in fewer) < 2**m or fewer[0] < 3
    from regioncount import count_segment
    from regioncount.theory.family import family_construction

    if pieces <= 2**16:
        assert count_segment(family_construction(widths), interval=(0, 1)).activation_regions == pieces


def test_verdict_and_where_separation_starts():
    result = run("compare", "--alpha", "0.5", "--widths", "1:4", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["separated_from_m"] == 2
    first, last = data["rows"][0], data["rows"][-1]
    assert first["verdict"].startswith("not separated at m = 1")
    assert last["verdict"].startswith("separated at m = 4") and "counted" in last["verdict"]
    assert "every m >= 2" in last["verdict"]  # worded as the corollary it is
    assert last["l1_error"]["lower_bound"] <= last["l1_error"]["constructed"]


def test_training_from_random_and_from_the_approximant_is_reported_honestly():
    from regioncount.theory.training import train_in_family

    out = train_in_family(6, 2, 2, seeds=1, steps=60, time_budget=5)
    assert out["starts"] == 2 and len(out["all_l1_errors"]) == 2
    assert out["l1_error"] == min(out["all_l1_errors"]) and out["above_bound"]
    assert out["l1_error"] >= out["l1_lower_bound"] > 0
    assert out["worse_than_constructed"] == (out["l1_error"] > out["constructed_l1_error"])
    assert out["errors_method"] == "exact" and Fraction(out["l1_error_exact"]) >= l1_lower_bound(6, out["linear_pieces"])
    assert out["init"] in ("random (seed 0)", "constructed approximant")


def test_constructions_are_counted_only_within_the_piece_budget_and_the_time_allowance():
    """m = 16: with no time allowance nothing is built, and each entry says why; a piece budget below the
    construction's pieces says so instead; with the default allowance the depth-4 match is counted."""
    none = compare_width(16, Fraction(1, 2), device="cpu", construct_seconds=0.0)
    for depth in none.depths:
        for entry in (depth.best_in_family, depth.smallest_match):
            assert entry["regions"] is None and "time limit" in entry["not_counted"]
        assert depth.constructed_regions is None
    small = compare_width(16, Fraction(1, 2), device="cpu", construct_budget=1000)
    match = small.depths[-1].smallest_match
    assert match["regions"] is None and "over the construct budget 1,000" in match["not_counted"]
    assert small.depths[0].best_in_family["regions"] == 9  # 8 units, 9 pieces: within both
    full = compare_width(16, Fraction(1, 2), device="cpu")
    assert full.depths[-1].smallest_match["regions"] == 2**16 and "not_counted" not in full.depths[-1].smallest_match


def test_construction_cost_model_grows_with_pieces_and_width_and_refuses_huge_builds():
    from regioncount.theory.compare_cost import MAX_BUILT_PARAMETERS, CountAllowance, _may_count, construction_seconds

    assert construction_seconds([2047, 2047], 2**22, "cpu") > 10 * construction_seconds([45] * 4, 2**22, "cpu")
    assert construction_seconds([63] * 4, 2**24, "cuda") < construction_seconds([63] * 4, 2**24, "cpu")
    allowance = CountAllowance(float("inf"), "cpu")
    reason = _may_count([2**24], 2**24 + 1, 2**30, allowance)
    assert reason is not None and f"{MAX_BUILT_PARAMETERS:,}" in reason
    allowance = CountAllowance(1.0, "cpu")
    assert _may_count([15] * 4, 2**16, 2**20, allowance) is None and allowance.seconds_left < 1.0


def test_compare_cli_construct_seconds_zero_counts_no_construction():
    result = run("compare", "--widths", "12", "--construct-seconds", "0", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)["rows"][0]
    assert all(d["best_in_family"]["regions"] is None for d in row["depths"])
    assert row["deq_regions"] == 2**12


def test_compare_several_alphas_gives_each_and_a_summary(tmp_path):
    plot = tmp_path / "sep.png"
    result = run("compare", "--alpha", "1/4,0.5,1/2", "--widths", "6,10", "--json", "--device", "cpu",
                 "--plot", str(plot))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [a["alpha_exact"] for a in data["alphas"]] == ["1/4", "1/2"]  # 0.5 and 1/2 are one alpha
    assert [s["alpha_exact"] for s in data["summary"]] == ["1/4", "1/2"]
    for block, summary in zip(data["alphas"], data["summary"]):
        last = block["rows"][-1]
        assert summary["m"] == 10 and summary["max_depth"] == last["max_depth"]
        assert summary["separated_from_m"] == block["separated_from_m"] == 6
        assert summary["l1_lower_bound"] == last["l1_error"]["lower_bound"]
    assert (tmp_path / "sep_alpha-1_4.png").exists() and (tmp_path / "sep_alpha-1_2.png").exists()
    table = run("compare", "--alpha", "1/4,1/2", "--widths", "6", "--device", "cpu")
    assert table.exit_code == 0 and "As alpha varies" in table.output


@pytest.mark.parametrize("text, message", [("", "alpha must be"), ("1/2,2", "strictly between"),
                                           (",".join(["1/3"] * 17), "at most 16")])
def test_bad_alpha_lists_are_one_line_errors(text, message):
    result = run("compare", "--alpha", text, "--widths", "4")
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("alpha", [Fraction(1, 10), Fraction(1, 4), Fraction(1, 3), Fraction(1, 2), Fraction(2, 3),
                                   Fraction(9, 10)])
def test_the_separation_is_a_corollary_of_the_caps(alpha):
    """(w_max + 1)^L_max < 2^m for every m >= 2 (docs/theory.md): the family's arithmetic alone separates; at
    m = 1 the two tie."""
    from regioncount.theory.family import depth_cap, width_cap

    assert (width_cap(1, alpha) + 1) ** depth_cap(1, alpha) == 2
    for m in range(2, 61):
        assert (width_cap(m, alpha) + 1) ** depth_cap(m, alpha) < 2**m, m



def test_sawtooth_training_is_seeded_without_touching_the_global_random_state():
    from regioncount.theory.training import train_sawtooth_ffn

    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    first = train_sawtooth_ffn(3, 1, 4, steps=5, seed=1).model
    assert torch.equal(torch.random.get_rng_state(), before)
    second = train_sawtooth_ffn(3, 1, 4, steps=5, seed=1).model
    assert all(torch.equal(a, b) for a, b in zip(first.weights, second.weights))
