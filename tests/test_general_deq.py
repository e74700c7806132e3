"""General-W DEQs: fixed points, polish, sign consistency, the exact walk against the triangular
enumerator and against dense scans; ill-posed W refused with its norm."""

from __future__ import annotations

import json

import pytest
import torch
from random_nets import gaussian_deq, run_cli

from regioncount import DEQ, count_segment, theorem1_deq
from regioncount.core.errors import NotWellPosedError
from regioncount.line.deq_general import walk_segment
from regioncount.models.fixedpoint import solve_fixed_points


def contractive_deq(m, d, seed, norm=0.9):
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(m, m, generator=gen, dtype=torch.float64)
    W *= norm / torch.linalg.matrix_norm(W, ord=2)
    return DEQ(W=W, U=torch.randn(m, d, generator=gen, dtype=torch.float64) * 2,
               b=torch.randn(m, generator=gen, dtype=torch.float64),
               A=torch.randn(2, m, generator=gen, dtype=torch.float64), name=f"contractive-{m}-{seed}")


@pytest.mark.parametrize("seed", range(5))
def test_fixed_points_are_exact_and_sign_consistent(seed):
    model = contractive_deq(10, 3, seed)
    x = torch.rand(2000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 4 - 2
    fp = solve_fixed_points(model, x)
    assert bool(fp.ok.all())
    q = x @ model.U.T + model.b
    assert float((torch.relu(fp.z @ model.W.T + q) - fp.z).abs().max()) <= 1e-12
    u = fp.z @ model.W.T + q
    assert torch.equal(u > 0, fp.u > 0) and torch.equal(fp.z, torch.relu(fp.u))


@pytest.mark.parametrize("m, readout", [(5, "a"), (9, "c"), (11, "b")])
def test_walk_matches_the_triangular_enumerator(m, readout):
    model = theorem1_deq(m, readout)
    exact = count_segment(model, interval=(0, 1), keep_breakpoints=True)
    for walkers in (1, 5, 2**m):  # 2^m walkers put every cut on a breakpoint
        walk = walk_segment(model, torch.tensor([0.0]), torch.tensor([1.0]), 0.0, 1.0, walkers=walkers,
                            device=torch.device("cpu"), keep_breakpoints=True)
        assert walk.failures == 0
        assert (walk.activation_regions, walk.linear_pieces) == (exact.activation_regions, exact.linear_pieces)
        assert walk.breakpoints.tolist() == exact.breakpoints.tolist()


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_walk_matches_a_dense_scan_on_contractive_W(seed):
    model = contractive_deq(6, 1, seed)
    result = count_segment(model, interval=(-3, 3), keep_breakpoints=True, walkers=1 + seed * 7)
    x = torch.linspace(-3, 3, 400_001, dtype=torch.float64)[:, None]
    active = solve_fixed_points(model, x).u > 0
    scanned = int((active[1:] != active[:-1]).any(1).sum()) + 1
    assert result.activation_regions == scanned
    assert len(set(map(tuple, active.tolist()))) == scanned  # each pattern is one interval (convexity)
    assert "pattern walk" in result.algorithm


def test_walk_on_a_segment_in_three_dimensions():
    model = contractive_deq(7, 3, 9)
    result = count_segment(model, segment=([-2, -1, 0], [2, 1.5, -1]))
    t = torch.linspace(0, 1, 200_001, dtype=torch.float64)[:, None]
    x = torch.tensor([-2.0, -1, 0]) + t * torch.tensor([4.0, 2.5, -1])
    active = solve_fixed_points(model, x).u > 0
    assert result.activation_regions == int((active[1:] != active[:-1]).any(1).sum()) + 1


def test_ill_posed_W_is_refused_with_its_norm(tmp_path):
    model = DEQ(W=[[0.0, 2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], U=[[1.0], [1.0], [1.0]],
                b=[0.0, 0.0, 0.0], A=[[1.0, 1.0, 1.0]])
    with pytest.raises(NotWellPosedError, match=r"\|\|W\|\|_2 = 2"):
        count_segment(model, interval=(0, 1))
    path = tmp_path / "ill.json"
    path.write_text(json.dumps({"type": "deq", "W": [[0, 2, 0], [2, 0, 0], [0, 0, 0]], "U": [[1, 0]] * 3,
                                "b": [0, 0, 0], "A": [[1, 1, 1]], "domain": {"low": [0, 0], "high": [1, 1]}}))
    result = run_cli("count", str(path), "--samples", "100")
    assert result.exit_code == 2 and "||W||_2 = 2" in result.output


def test_assume_well_posed_goes_on_and_checks(tmp_path):
    # not contractive, not monotone, rho(|W|) = 1.2 > 1, yet a P-matrix: certified only by the minor test,
    # here pretend the cap is too small and go on with --assume-well-posed
    W = torch.tensor([[0.0, 1.2], [-1.2, 0.0]], dtype=torch.float64)
    model = DEQ(W=W, U=[[1.0], [0.5]], b=[0.0, -0.1], A=[[1.0, 1.0]])
    result = count_segment(model, interval=(-2, 2), assume_well_posed=True)
    x = torch.linspace(-2, 2, 100_001, dtype=torch.float64)[:, None]
    fp = solve_fixed_points(model, x, damping=0.3)
    assert bool(fp.ok.all())
    active = fp.u > 0
    assert result.activation_regions == int((active[1:] != active[:-1]).any(1).sum()) + 1


def test_chords_of_a_general_deq_are_walked_together():
    from regioncount.core.geometry import Box
    from regioncount.line.chords import count_chords, random_chords

    model = contractive_deq(6, 2, 21, norm=0.8)
    P, Q = random_chords(Box((-1.0, -1.0), (1.0, 1.0)), 30, seed=5)
    batched = count_chords(model, P, Q, device="cpu")
    single = [count_segment(model, segment=(p.tolist(), q.tolist()), linear_pieces=False).activation_regions
              for p, q in zip(P, Q)]
    assert batched.tolist() == single


def test_general_walk_decides_tolerance_cases_exactly():
    """A general-W DEQ whose two units cross 2^-50 apart (below the merge tolerance): the walk merges them,
    its proof fails there and the exact rational walk decides the count (3 regions); apart by 2^-20 the
    float64 walk is proven as it stands."""
    from regioncount.exact.rational_deq import exact_general_count

    for gap, decided in ((2.0**-50, "exact rational walk"), (2.0**-20, "every decision proven")):
        W = torch.tensor([[0.0, 0.25], [-0.25, 0.0]], dtype=torch.float64)  # cyclic, contractive
        # unit 2 feeds unit 1 only where unit 2 is active; pick biases so that the two zeros are gap apart
        model = DEQ(W=W, U=[[1.0], [1.0]], b=[-0.5, -0.5 - gap], A=[[1.0, 2.0]])
        result = count_segment(model, interval=(0, 0.49))  # both units inactive: no crossing
        assert result.method == "exact" and result.activation_regions == 1
        result = count_segment(model, interval=(0, 1))
        exact = exact_general_count(model, [0.0], [1.0], 0.0, 1.0)
        assert result.method == "exact" and decided in result.algorithm, result.algorithm
        assert (result.activation_regions, result.linear_pieces) == (exact.activation_regions, exact.linear_pieces)
        assert (result.doubtful_decisions > 0) == (gap < 2.0**-40)
    assert exact.activation_regions == 3


def test_forward_of_a_certified_general_deq_and_the_public_solver():
    """DEQ.forward works for a certified non-triangular W (the checked solve), agrees with the public
    solver and satisfies the fixed-point equation; an ill-posed W is refused in one line."""
    from regioncount import solve_fixed_points

    model = contractive_deq(8, 3, 4)
    x = torch.rand(500, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 4 - 2
    z = model.fixed_point(x)
    points = solve_fixed_points(model, x)
    assert points.failures == 0 and torch.equal(z, points.z)
    assert torch.allclose(torch.relu(z @ model.W.T + x @ model.U.T + model.b), z, rtol=0, atol=1e-12)
    y = model.forward(x)
    assert torch.allclose(y, z @ model.A.T + model.c, rtol=0, atol=1e-12)
    cyclic = DEQ(W=torch.roll(torch.eye(4, dtype=torch.float64), 1, 0) * 2, U=torch.ones(4, 1, dtype=torch.float64),
                 b=torch.zeros(4, dtype=torch.float64), A=torch.ones(1, 4, dtype=torch.float64))
    with pytest.raises(NotWellPosedError):
        cyclic.forward(torch.zeros(2, 1, dtype=torch.float64))


@pytest.mark.parametrize("seed", range(4))
def test_fixed_points_from_guessed_patterns_equal_the_iteration(seed):
    """solve_fixed_points(guess=...): right, wrong and random guesses give the same patterns and values as
    the plain iteration; the points whose guess is right skip it."""
    model = gaussian_deq(12, seed, False)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(300, 2, generator=gen, dtype=torch.float64) * 6 - 3
    plain = solve_fixed_points(model, x)
    assert bool(plain.ok.all())
    truth = plain.u > 0
    wrong = truth.clone()
    wrong[::2, seed] = ~wrong[::2, seed]  # every other guess is off by one unit
    for guess in (truth, wrong, torch.rand(300, 12, generator=gen) < 0.5):
        guessed = solve_fixed_points(model, x, guess=guess)
        assert bool(guessed.ok.all())
        assert torch.equal(guessed.u > 0, truth)
        assert torch.allclose(guessed.z, plain.z, rtol=0, atol=1e-12)
    assert solve_fixed_points(model, x, guess=truth).iterations == 0
