"""The implicit-bias study of diagonal linear DEQs (``regioncount.bias``, ``docs/bias.md``): the potential's
minimiser against gradient flow, the closed-form relation along the flow, descent against the flow, the
diagonal network's small-init limit, GOTU and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from random_nets import run_cli

from regioncount.bias.features import density
from regioncount.bias.flows import deq_gradient_descent, deq_gradient_flow, diagonal_network_flow, least_l1, least_l2
from regioncount.bias.gotu import SHIFT, bias_share, coefficients, gotu_data, gotu_error, linear_rows, target
from regioncount.bias.instances import BiasInputError, Instance, check_instance, random_instance
from regioncount.bias.potential import DERIVED, QUOTED, kkt_residual, minimise, potential, potential_gradient


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("kind", ["sparse", "dense"])
@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_the_flow_ends_at_the_derived_potentials_minimiser(kind, scale):
    inst = random_instance(5, 12, kind=kind, scale=scale, seed=3)
    flow = deq_gradient_flow(inst)
    best = minimise(inst, DERIVED)
    assert flow.converged, flow.status
    assert best.found and best.status == "converged"
    assert flow.residual <= 1e-12
    assert _distance(flow.beta, best.beta) <= 1e-8
    # the limit satisfies the KKT condition of the derived sign, and not that of the quoted one
    assert kkt_residual(inst.A, potential_gradient(flow.beta, inst.beta0, DERIVED)) <= 1e-8
    assert kkt_residual(inst.A, potential_gradient(flow.beta, inst.beta0, QUOTED)) >= 1e-3
    # the closed form beta^-3 = beta0^-3 + 3 signs X^T v holds all along the path
    assert flow.relation_error <= 1e-8
    assert best.constraint_residual <= 1e-10


def test_the_minimiser_beats_other_interpolants():
    """Q at the minimiser is below Q at the interpolants beta* + t z (z in the null space of A, t small)."""
    inst = random_instance(4, 10, kind="dense", seed=1)
    best = minimise(inst)
    assert best.found
    _, _, vt = np.linalg.svd(inst.A)
    rng = np.random.default_rng(0)
    for z in vt[inst.n:][rng.choice(inst.d - inst.n, 4, replace=False)]:
        for t in (1e-3, -1e-3, 1e-2):
            other = best.beta + t * z
            if np.all(other > 0):
                assert potential(other, inst.beta0) > potential(best.beta, inst.beta0)


def test_the_quoted_sign_has_no_minimiser_where_a_nonnegative_null_direction_exists():
    """X diag(signs) = [1, 1, -1] ... has the null direction (1, 0, 1) >= 0: Q with the quoted sign goes to
    minus infinity along it, so no minimiser is claimed; the derived sign's minimiser is the flow's limit."""
    X = np.array([[1.0, 1.0, -1.0], [0.0, 1.0, 0.0]])
    inst = check_instance(Instance(X, np.array([1.0, 0.5]), np.ones(3), np.ones(3)))
    quoted = minimise(inst, QUOTED)
    assert not quoted.found and "no minimiser" in quoted.status
    flow = deq_gradient_flow(inst)
    best = minimise(inst, DERIVED)
    assert flow.converged and best.found
    assert _distance(flow.beta, best.beta) <= 1e-8


def test_a_limit_beyond_float64_is_reported_as_stopped_in_bounded_time():
    """This instance's minimiser has beta from 5e-5 to 1.9: the flow's stiffness (beta_max / beta_min)^4 passes
    what float64 can integrate, and the flow says so instead of claiming a limit (or returning NaN)."""
    inst = random_instance(4, 8, kind="sparse", seed=0)
    assert minimise(inst).beta.min() < 1e-4
    flow = deq_gradient_flow(inst)
    assert not flow.converged and flow.status.startswith("stopped") and "too stiff" in flow.status
    assert np.all(np.isfinite(flow.beta)) and flow.residual < 1e-2


def test_no_positive_interpolant_is_reported_not_invented():
    """With every sign +1 and X = [[1, 1]], y = -1 no beta > 0 interpolates: the dual is unbounded, and the
    flow drives beta to 0 without fitting."""
    inst = check_instance(Instance(np.array([[1.0, 1.0]]), np.array([-1.0]), np.ones(2), np.ones(2)))
    best = minimise(inst)
    assert not best.found and "no interpolating" in best.status
    flow = deq_gradient_flow(inst, t_max=1e4)
    assert not flow.converged and flow.residual > 0.5


def test_plain_columns_cost_three_halves_their_square():
    """A bias column beside the DEQ's: the flow's limit of (beta, c) is the minimiser of Q + 3 |c|^2 / 2."""
    inst = random_instance(4, 9, kind="dense", seed=5)
    plain = np.ones((4, 1))
    inst = check_instance(Instance(inst.X, inst.y + 0.7, inst.beta0, inst.signs, plain=plain))
    flow = deq_gradient_flow(inst)
    best = minimise(inst)
    assert flow.converged and best.found and best.plain is not None and flow.plain is not None
    assert _distance(flow.beta, best.beta) <= 1e-8
    assert abs(flow.plain[0] - best.plain[0]) <= 1e-8 * max(1.0, abs(best.plain[0]))
    assert best.kkt_residual <= 1e-8


def test_descent_approaches_the_flow_as_the_step_shrinks():
    inst = random_instance(4, 10, kind="dense", seed=2)
    flow = deq_gradient_flow(inst)
    distances = []
    for step in (0.05, 0.01, 0.002):
        gd = deq_gradient_descent(inst, step, max_steps=200_000)
        assert gd.converged, gd.status
        distances.append(_distance(gd.beta, flow.beta))
    assert distances[0] > distances[1] > distances[2]
    assert distances[2] <= 0.2 * distances[0]


def test_descent_with_a_huge_step_reports_divergence():
    inst = random_instance(4, 10, kind="dense", scale=2.0, seed=2)
    gd = deq_gradient_descent(inst, 50.0, max_steps=2000, chunk=100)
    assert not gd.converged and "diverged" in gd.status


def test_the_diagonal_network_from_small_init_finds_the_least_l1_interpolant():
    inst = random_instance(8, 16, kind="sparse", support=2, seed=4)
    small = diagonal_network_flow(inst, 1e-3)
    large = diagonal_network_flow(inst, 10.0)
    assert small.converged and large.converged
    l1, l2 = least_l1(inst), least_l2(inst)
    assert np.allclose(inst.X @ l1, inst.y) and np.allclose(inst.X @ l2, inst.y)
    assert _distance(small.theta, l1) <= 0.02
    assert _distance(large.theta, l2) <= 0.02
    assert np.abs(small.theta).sum() <= np.abs(large.theta).sum()


@pytest.mark.parametrize("change, message", [
    (lambda i: Instance(i.X[:, :3], i.y, i.beta0[:3], i.signs[:3]), "n <= d"),
    (lambda i: Instance(np.vstack([i.X[:1], i.X[:1], i.X[2:]]), i.y, i.beta0, i.signs), "full row rank"),
    (lambda i: Instance(i.X, i.y, -i.beta0, i.signs), "positive"),
    (lambda i: Instance(i.X, i.y, i.beta0, 0.5 * i.signs), r"\+1 or -1"),
    (lambda i: Instance(i.X, i.y * np.nan, i.beta0, i.signs), "finite"),
    (lambda i: Instance(i.X, i.y[:2], i.beta0, i.signs), "shapes"),
    (lambda i: Instance(i.X, i.y, i.beta0, i.signs, plain=np.ones((2, 1))), "plain columns"),
])
def test_instances_outside_the_setting_are_refused_in_one_line(change, message):
    base = random_instance(4, 8, seed=0)
    with pytest.raises(BiasInputError, match=message) as info:
        check_instance(change(base))
    assert "\n" not in str(info.value)


def test_gotu_targets_agree_on_the_seen_half_and_the_shares_decide_the_error():
    data = gotu_data(6)
    assert data.seen.shape == (32, 6) and np.all(data.seen[:, 0] == 1) and np.all(data.unseen[:, 0] == -1)
    assert np.array_equal(target("f1", data.seen), target("f2", data.seen))
    rest = coefficients(6)
    for p in (0.0, 0.3, 1.0):  # a share p of SHIFT on the bias: error (2 p s)^2 on f1, (2 (1 - p) s)^2 on f2
        theta, bias = np.r_[(1 - p) * SHIFT, rest], p * SHIFT
        assert gotu_error("f1", data, theta, bias) == pytest.approx((2 * p * SHIFT) ** 2)
        assert gotu_error("f2", data, theta, bias) == pytest.approx((2 * (1 - p) * SHIFT) ** 2)
        assert bias_share(bias, theta[0]) == pytest.approx(p)


def test_gotu_linear_models_match_their_closed_forms():
    data = gotu_data(6)
    rows = {(r.model.split(" (")[0], r.target): r for name in ("f1", "f2") for r in linear_rows(data, name)}
    for name in ("f1", "f2"):
        deq = rows[("diagonal linear DEQ + bias", name)]
        assert deq.note == "converged" and deq.closed_form is not None
        assert deq.trained == pytest.approx(deq.closed_form, rel=1e-6, abs=1e-9)
        assert 0 < deq.bias_share < 0.5  # the DEQ's x_1 coefficient grows faster than the bias from beta0 = 1
        net = rows[("diagonal linear network + bias", name)]
        assert net.bias_share == pytest.approx(0.5, abs=1e-6)
        assert net.trained == pytest.approx(net.closed_form, rel=1e-5)
    # the same bias share serves f1 better than f2
    assert rows[("diagonal linear DEQ + bias", "f1")].trained < rows[("diagonal linear DEQ + bias", "f2")].trained


def test_density_counts_features_of_comparable_size():
    features = np.array([[1.0, 0.5, 0.01, 0.0], [1.0, 0.5, 0.01, 0.0]])
    assert density(features) == 0.5
    assert density(np.zeros((3, 4))) == 0.0


def test_the_command_prints_json_and_a_figure(tmp_path):
    png = tmp_path / "bias.png"
    result = run_cli("bias", "--samples", 4, "--features", 10, "--scales", "1", "--steps", "0.01",
                     "--gotu-dim", 5, "--seeds", 1, "--max-steps", 20000, "--json", "--plot", png)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["worst_distance"] is not None and doc["worst_distance"] <= 1e-8
    assert len(doc["theory"]) == 2 and all(r["flow_status"] == "converged" for r in doc["theory"])
    assert {r["target"] for r in doc["gotu"]} == {"f1", "f2"}
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_the_command_prints_a_table():
    result = run_cli("bias", "--samples", 3, "--features", 6, "--scales", "1", "--steps", "0.01",
                     "--gotu-dim", 4, "--seeds", 1, "--max-steps", 20000)
    assert result.exit_code == 0, result.output
    assert "GOTU" in result.output and "minimiser" in result.output


@pytest.mark.parametrize("args, message", [
    (("--samples", 40, "--features", 30), "n <= d"),
    (("--scales", "0"), "positive finite"),
    (("--scales", "a,b"), "comma-separated"),
    (("--steps", "inf"), "positive finite"),
    (("--plot", "figure.pdf"), ".png"),
])
def test_bad_settings_fail_in_one_line(args, message):
    result = run_cli("bias", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
