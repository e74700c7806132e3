"""The steep target in d dimensions (``regioncount.theory.steep_dims``, ``steep --dims``): the bisection DEQ's
weights, fixed point, proven error and exact regions; the FFN weight bound."""

from __future__ import annotations

import json
from fractions import Fraction

import mpmath
import pytest
import torch
from random_nets import run_cli

from regioncount import count_segment
from regioncount.core.errors import SegmentError
from regioncount.theory.steep_dims import (
    bisection_forward,
    ffn_weight_bound,
    inverse_construction,
    phi_enclosure,
    target_values,
)


@pytest.mark.parametrize("d, k", [(6, 4), (12, 5), (20, 6), (30, 3)])
def test_the_construction_is_small_bounded_and_within_its_proven_error(d, k):
    c = inverse_construction(d, k)
    assert c.model.width == 2**k and c.max_weight <= 1.0
    assert all(s > 0 for s in c.slopes)  # H strictly increasing: the fixed point is unique (docs/steep.md)
    grid = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    y, steps = bisection_forward(c, grid)
    assert steps == k
    measured = float((y - target_values(grid, d)).abs().max())
    assert measured <= c.error_bound + 1e-9
    assert c.error_bound <= 1.1 * 2.0**-k  # the bound is about eps = 2^-k


def test_bisection_finds_the_deqs_fixed_point():
    """y from bisection, with z_j = relu(y - j / K), solves z = relu(W z + U x + b) at random inputs."""
    d, k = 10, 5
    c = inverse_construction(d, k)
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(1000, d, generator=gen, dtype=torch.float64)
    y, _ = bisection_forward(c, x[:, 0])
    K = 2**k
    z = torch.cat([y[:, None], torch.relu(y[:, None] - torch.arange(1, K, dtype=torch.float64)[None] / K)], 1)
    residual = torch.relu(z @ c.model.W.T + x @ c.model.U.T + c.model.b) - z
    assert float(residual.abs().max()) < 1e-12
    assert torch.equal(bisection_forward(c, x[:, 0])[0], y)  # the other coordinates play no part


def test_the_regions_along_x1_are_counted_exactly():
    """The count along x_1 equals the pieces of H^-1 inside [0, 1] (its breakpoints H(j / K) there)."""
    d, k = 8, 4
    c = inverse_construction(d, k)
    result = count_segment(c.model, segment=([0.0] * d, [1.0] + [0.0] * (d - 1)), assume_well_posed=True,
                           device="cpu")
    assert result.method == "exact"
    assert result.activation_regions == c.regions_on_unit_interval == 2**k


def test_the_ffn_bound_grows_with_the_dimension():
    eps = Fraction(1, 8)
    bounds = [ffn_weight_bound(d, 1, 64, eps) for d in range(6, 21, 2)]
    assert all(b is not None for b in bounds)
    steps = [b2 - b1 for b1, b2 in zip(bounds, bounds[1:])]  # type: ignore[operator]
    assert all(abs(s - 1.0) < 1e-2 for s in steps)  # log2 B >= (d + log2((D - 2 eps) / 2) - log2 w) / 2; D settles
    deeper = ffn_weight_bound(20, 3, 64, eps)
    assert deeper is not None and deeper < bounds[-1]  # type: ignore[operator]
    assert ffn_weight_bound(10, 1, 64, Fraction(49, 100)) is None  # 2 eps above D: no bound from the argument


def test_the_enclosures_hold_phi_and_leave_the_precision_alone():
    before = mpmath.iv.prec
    for t in (Fraction(1, 3), Fraction(1, 2), Fraction(513, 1024), Fraction(7, 8)):
        box = phi_enclosure(t, 10)
        value = float(target_values(torch.tensor([float(t)], dtype=torch.float64), 10))
        assert float(mpmath.mpf(box.a)) - 1e-15 <= value <= float(mpmath.mpf(box.b)) + 1e-15
        assert float(mpmath.mpf(box.b - box.a)) < 1e-30
    inverse_construction(6, 3)
    assert mpmath.iv.prec == before
    with pytest.raises(SegmentError):
        inverse_construction(31, 4)
    with pytest.raises(SegmentError):
        inverse_construction(6, 11)


def test_the_command_line():
    result = run_cli("steep", "--dims", "6:8:2", "--knots", "4", "--depths", "1:2", "--max-width", "64", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [row["d"] for row in report["rows"]] == [6, 8]
    row = report["rows"][0]
    assert row["deq"]["units"] == 16 and row["deq"]["max_abs_weight"] <= 1
    assert row["deq"]["count_method"] == "exact" and row["deq"]["regions_along_x1"] == 16
    assert set(row["ffn_log2_weight_lower_bound"]) == {"1", "2"}
    table = run_cli("steep", "--dims", "6", "--knots", "3")
    assert table.exit_code == 0 and "bisection steps" in table.output
    for args in (["--dims", "40"], ["--dims", "6", "--plot", "x.png"], ["--dims", "6", "--knots", "11"]):
        refused = run_cli("steep", *args)
        assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) <= 3


#: Knots of a bisection DEQ trained by `reproduce steep` (d = 8, rounded to 6 digits): the Picard iteration does
#: not contract, and its last pattern at x_1 = 1/2 was more than 8 greedy polishing rounds from the fixed point's.
TRAINED_KNOTS = [0.0, 0.177607, 0.323949, 0.424767, 0.483288, 0.49605, 0.498269, 0.49895, 0.49924, 0.499394, 0.49943,
                 0.499443, 0.499485, 0.499592, 0.499722, 0.499861, 0.500041, 0.500226, 0.500374, 0.500521, 0.50064,
                 0.50068, 0.500691, 0.500752, 0.500908, 0.501183, 0.501802, 0.503768, 0.514568, 0.56919, 0.667765,
                 0.816088, 1.0]


def test_fixed_points_of_a_trained_bisection_deq_are_found_and_counted():
    """The fixed-point solver polishes long enough (m + 2 rounds) to reach the unique fixed point; the general-W
    walk then counts the trained DEQ, equal to the lemma's count."""
    from regioncount.models.fixedpoint import solve_fixed_points
    from regioncount.theory.steep_dims import inverse_deq

    c = inverse_deq(8, TRAINED_KNOTS)
    x = torch.full((1001, 8), 0.5, dtype=torch.float64)
    x[:, 0] = torch.linspace(0, 1, 1001, dtype=torch.float64)
    points = solve_fixed_points(c.model, x)
    assert bool(points.ok.all())
    y, _ = bisection_forward(c, x[:, 0])
    assert float((points.z[:, 0] - y).abs().max()) < 1e-9
    result = count_segment(c.model, segment=([0.0] + [0.5] * 7, [1.0] + [0.5] * 7), assume_well_posed=True,
                           device="cpu")
    assert result.activation_regions == c.regions_on_unit_interval
