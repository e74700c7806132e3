"""Chebyshev centres (:mod:`regioncount.partition.chebyshev`): the batched interior-point method against
known balls and against HiGHS, on boxes, simplices, slivers and polytopes whose centre is not unique; the
polytopes it cannot settle go to HiGHS."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from regioncount.partition import chebyshev
from regioncount.partition.chebyshev import chebyshev_balls, inscribed_balls


def _boxes(lows: list[list[float]], highs: list[list[float]]):
    """Facets of axis-aligned boxes: owner, unit normals, offsets, and the boxes' centres."""
    owners, normals, offsets = [], [], []
    for p, (lo, hi) in enumerate(zip(lows, highs)):
        d = len(lo)
        for i in range(d):
            e = [0.0] * d
            e[i] = 1.0
            normals += [[-v for v in e], e]
            offsets += [-lo[i], hi[i]]
            owners += [p, p]
    centres = [[(a + b) / 2 for a, b in zip(lo, hi)] for lo, hi in zip(lows, highs)]
    as_t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return torch.tensor(owners), as_t(normals), as_t(offsets), as_t(centres)


def _random_polytopes(rng: np.random.Generator, P: int, d: int, facets: int):
    """Random polytopes containing their own inner points: unit normals, offsets at random distances."""
    owner = np.repeat(np.arange(P), facets)
    normal = rng.normal(size=(P * facets, d))
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    inner = rng.uniform(-1, 1, size=(P, d))
    depth = rng.uniform(1e-3, 1.0, size=P * facets) * np.repeat(10.0 ** rng.uniform(-8, 0, size=P), facets)
    offset = (normal * inner[owner]).sum(1) + depth
    # a bounding box around each, so every polytope is bounded
    box_owner, box_normal, box_offset, _ = _boxes((inner - 2).tolist(), (inner + 2).tolist())
    return (torch.cat([torch.from_numpy(owner), box_owner]), torch.cat([torch.from_numpy(normal), box_normal]),
            torch.cat([torch.from_numpy(offset), box_offset]), torch.from_numpy(inner))


def _ball_inside(owner, normal, offset, centres, radii) -> bool:
    """Every facet at least the radius away from the centre, up to the rounding of the distance."""
    gaps = offset.numpy() - (normal.numpy() * centres[owner.numpy()]).sum(1)
    rounding = 1e-15 * (np.abs(offset.numpy()) + np.abs(centres[owner.numpy()]).sum(1))
    return bool((gaps >= radii[owner.numpy()] - rounding).all())


def test_boxes_have_their_half_widths_as_radii_even_when_the_centre_is_not_unique():
    lows = [[0.0, 0.0], [-1.0, 2.0], [0.0, 0.0, 0.0], [5.0, 5.0]]
    highs = [[1.0, 1.0], [3.0, 2.5], [1.0, 4.0, 2.0], [5.0 + 2**-40, 6.0]]  # the last a sliver
    for d in (2, 3):
        pick = [i for i, lo in enumerate(lows) if len(lo) == d]
        owner, normal, offset, inner = _boxes([lows[i] for i in pick], [highs[i] for i in pick])
        centres, radii = inscribed_balls(owner, normal, offset, inner, len(pick))
        want = [min(h - lo for lo, h in zip(lows[i], highs[i])) / 2 for i in pick]
        assert radii == pytest.approx(want, rel=1e-10)
        assert _ball_inside(owner, normal, offset, centres, radii)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_the_interior_point_method_agrees_with_highs(d):
    """Random polytopes from unit size down to slivers 1e-8 thin: every ball lies inside its polytope (HiGHS's
    alone can poke out by its feasibility tolerance, ~1e-7 of the data), and is never smaller than HiGHS's
    by more than that tolerance."""
    rng = np.random.default_rng(d)
    owner, normal, offset, inner = _random_polytopes(rng, 300, d, 3 * d)
    centres, radii = inscribed_balls(owner, normal, offset, inner, 300)
    reference_c, reference_r = chebyshev_balls(owner, normal, offset, 300)
    assert _ball_inside(owner, normal, offset, centres, radii)
    assert (radii >= reference_r - 1e-7).all()
    assert np.allclose(radii, reference_r, rtol=1e-6, atol=1e-7)
    big = reference_r > 1e-3  # away from slivers the two agree closely
    assert np.allclose(radii[big], reference_r[big], rtol=1e-7)


def test_polytopes_without_a_strict_inner_point_go_to_highs(monkeypatch):
    """An inner point on a facet (not strictly inside in floats) and an LP stopped before it converges are
    both solved by HiGHS instead, with the same answer."""
    owner, normal, offset, inner = _boxes([[0.0, 0.0], [0.0, 0.0]], [[1.0, 2.0], [4.0, 1.0]])
    inner[0] = torch.tensor([0.0, 1.0])  # on the facet x = 0
    calls = []
    real = chebyshev.chebyshev_balls

    def spy(*args, **kwargs):
        calls.append(int(args[3]))
        return real(*args, **kwargs)

    monkeypatch.setattr(chebyshev, "chebyshev_balls", spy)
    centres, radii = inscribed_balls(owner, normal, offset, inner, 2)
    assert calls == [1] and radii == pytest.approx([0.5, 0.5])
    monkeypatch.setattr(chebyshev, "IPM_MAX_ITERATIONS", 1)
    calls.clear()
    centres, radii = inscribed_balls(owner, normal, offset, inner, 2)
    assert calls == [2] and radii == pytest.approx([0.5, 0.5])
    assert _ball_inside(owner, normal, offset, centres, radii)


def test_a_deadline_is_checked_before_each_batch(monkeypatch):
    from regioncount.core.errors import CostLimitError

    monkeypatch.setattr(chebyshev, "IPM_BATCH", 2)
    owner, normal, offset, inner = _boxes([[0.0, 0.0]] * 5, [[1.0, 1.0]] * 5)
    ticks = []
    inscribed_balls(owner, normal, offset, inner, 5, check=lambda: ticks.append(1))
    assert len(ticks) == 3

    def expire():
        raise CostLimitError("the Chebyshev centres ran past the time limit")

    with pytest.raises(CostLimitError, match="Chebyshev"):
        inscribed_balls(owner, normal, offset, inner, 5, check=expire)
