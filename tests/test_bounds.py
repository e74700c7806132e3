"""Exact bounds: Serra's DP against brute force, closed forms, and the attaining constructions."""

from __future__ import annotations

import itertools
import random
from math import comb, prod

import pytest

from regioncount import count_segment, fold_ffn
from regioncount.core.errors import RegionCountError
from regioncount.theory.bounds import (
    construction_pieces,
    deq_max,
    min_width_to_match,
    montufar_lower,
    montufar_per_layer,
    product_1d,
    same_neurons_max,
    serra,
    telgarsky,
)
from regioncount.theory.constructions import constructed_ffn


def serra_bruteforce(n0, widths):
    """Enumerate J = {0 <= j_l <= min(n0, n_1 - j_1, ..., n_(l-1) - j_(l-1), n_l)} directly."""
    total = 0
    for js in itertools.product(*(range(n + 1) for n in widths)):
        cap, ok = n0, True
        for n, j in zip(widths, js):
            if j > min(cap, n):
                ok = False
                break
            cap = min(cap, n - j)
        if ok:
            total += prod(comb(n, j) for n, j in zip(widths, js))
    return total


def test_serra_reference_values():
    assert serra(1, [2, 2, 2]) == 27
    assert serra(1, [3, 5, 4]) == 120
    assert serra(1, [1, 1, 1]) == 4
    assert serra(1, [2, 1, 3]) == 15


@pytest.mark.parametrize("seed", range(60))
def test_serra_dp_equals_brute_force(seed):
    rng = random.Random(seed)
    n0 = rng.randint(1, 3)
    widths = [rng.randint(1, 5) for _ in range(rng.randint(1, 4))]
    assert serra(n0, widths) == serra_bruteforce(n0, widths)
    assert serra(n0, widths) <= montufar_per_layer(n0, widths)


@pytest.mark.parametrize("widths", [[2], [2, 2], [3, 5, 4], [7, 2, 9, 3], [2] * 10])
def test_serra_is_the_product_in_one_dimension(widths):
    assert serra(1, widths) == product_1d(widths) == prod(n + 1 for n in widths)


@pytest.mark.parametrize("depth", [1, 2, 5, 9])
def test_width_one_layers_give_L_plus_one(depth):
    assert serra(1, [1] * depth) == depth + 1


def test_bounds_stay_exact_for_huge_architectures():
    value = serra(1, [255] * 8)
    assert value == 2**64 and isinstance(value, int)
    assert telgarsky([10**6] * 30) == (2 * 10**6) ** 30
    assert deq_max(100) == 2**100


def test_other_bounds():
    assert telgarsky([8, 8, 8]) == 16**3
    assert montufar_lower(1, [8, 8, 8]) == 8 * 8 * 9
    assert montufar_lower(2, [4, 1]) is None
    assert montufar_lower(2, [4, 4]) == 2**2 * (1 + 4 + 6)
    assert montufar_per_layer(2, [3, 3]) == (1 + 3 + 3) ** 2


def test_same_neuron_bound_matches_closed_form():
    for n in range(1, 30):
        expected = 3 ** (n // 2) if n % 2 == 0 else 2 * 3 ** ((n - 1) // 2)
        assert same_neurons_max(n) == expected
        # brute force over all compositions of n into hidden widths, for small n
        if n <= 10:
            best = 0
            for cuts in itertools.product([0, 1], repeat=n - 1):
                parts, size = [], 1
                for cut in cuts:
                    if cut:
                        parts.append(size)
                        size = 1
                    else:
                        size += 1
                parts.append(size)
                best = max(best, serra(1, parts))
            assert best == expected
    assert same_neurons_max(12) == 729


def test_min_width_to_match_is_exact():
    assert min_width_to_match(16, 4) == 15  # 16^4 = 2^16 exactly
    assert min_width_to_match(24, 4) == 63
    assert min_width_to_match(64, 2) == 2**32 - 1
    for m, depth in [(10, 3), (17, 4), (33, 5)]:
        w = min_width_to_match(m, depth)
        assert (w + 1) ** depth >= 2**m > w**depth


@pytest.mark.parametrize("width,depth", [(1, 1), (2, 1), (6, 1), (1, 3), (2, 4), (3, 5), (4, 3), (15, 2)])
def test_constructions_have_the_claimed_pieces(width, depth):
    result = count_segment(constructed_ffn(width, depth), interval=(0, 1))
    assert result.activation_regions == result.linear_pieces == construction_pieces(width, depth)


def test_fold_with_mixed_widths_attains_the_product():
    widths = [3, 5, 4]
    assert count_segment(fold_ffn(widths), interval=(0, 1)).activation_regions == product_1d(widths) == 120


def test_bad_architectures():
    with pytest.raises(RegionCountError):
        serra(1, [])
    with pytest.raises(RegionCountError):
        serra(0, [3])
    with pytest.raises(RegionCountError):
        product_1d([3, 0])


def test_integer_root_is_exact():
    from regioncount.theory.bounds import integer_root

    rng = random.Random(0)
    for _ in range(500):
        n = rng.randrange(0, 10 ** rng.randint(1, 80))
        k = rng.randint(1, 9)
        root, exact = integer_root(n, k)
        assert root**k <= n < (root + 1) ** k and exact == (root**k == n)
    assert integer_root(2**64, 4) == (2**16, True)


@pytest.mark.parametrize("widths", [[3, 2], [3, 1], [1], [2], [5], [4, 4, 2], [3, 3, 1], [3, 5, 4]])
def test_serra_attained_by_the_construction_as_stored(widths):
    """attained_1d: fold layers (>= 3) then any last width reach Serra's 1-D bound; counted exactly
    (rational reference on the stored float64 weights), not taken from the formula."""
    import json

    from random_nets import run_cli
    from rational_reference import exact_count

    from regioncount.theory.bounds import serra
    from regioncount.theory.constructions import serra_attaining_ffn

    net = serra_attaining_ffn(widths)
    exact = exact_count(net, [0.0], [1.0], 0.0, 1.0)
    assert exact.activation_regions == serra(1, widths)
    out = run_cli("bound", "--widths", ",".join(map(str, widths)), "--verify", "--json")
    data = json.loads(out.output)
    assert data["attained_1d"] is True and data["verified_regions"] == serra(1, widths)


def test_attained_is_false_only_where_no_construction_is_known():
    import json

    from random_nets import run_cli

    out = run_cli("bound", "--widths", "2,3", "--json")
    assert json.loads(out.output)["attained_1d"] is False
