"""Exact counts of all of R^d (homogenised faces): Zaslavsky's formula, nested boxes, degenerate
arrangements far from the origin, DEQs, and the command line."""

from __future__ import annotations

import json
import math

import pytest
import torch
from random_nets import gaussian_ffn, run_cli
from test_box_partition import triangular_deq

from regioncount.core.errors import NotWellPosedError
from regioncount.models.networks import DEQ, FFN
from regioncount.partition.all_space import count_all_space, face_model, general_position_count
from regioncount.partition.box_partition import partition_box


def one_layer(W: torch.Tensor, b: torch.Tensor) -> FFN:
    n = W.shape[0]
    return FFN([W, torch.ones(1, n, dtype=torch.float64)], [b, torch.zeros(1, dtype=torch.float64)])


@pytest.mark.parametrize("n, d", [(4, 1), (5, 2), (6, 3), (7, 3), (6, 4)])
def test_general_position_gives_zaslavskys_count(n, d):
    gen = torch.Generator().manual_seed(10 * n + d)
    model = one_layer(torch.randn(n, d, generator=gen, dtype=torch.float64),
                      torch.randn(n, generator=gen, dtype=torch.float64) * 3)
    result = count_all_space(model, device="cpu")
    assert result.method == "exact"
    assert result.activation_regions == general_position_count(n, d)
    assert result.bounded_regions == math.comb(n - 1, d)


def test_parallel_planes_far_away_make_a_strip():
    """x0 = 1000 and x0 = 1001: no vertex anywhere, three unbounded regions, none meeting [-1, 1]^2."""
    W = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    model = one_layer(W, torch.tensor([-1000.0, -1001.0], dtype=torch.float64))
    result = count_all_space(model, device="cpu")
    assert (result.activation_regions, result.bounded_regions) == (3, 0)
    assert result.method == "exact"


def test_a_central_arrangement_has_no_bounded_region():
    gen = torch.Generator().manual_seed(2)
    model = one_layer(torch.randn(5, 3, generator=gen, dtype=torch.float64), torch.zeros(5, dtype=torch.float64))
    result = count_all_space(model, device="cpu")
    assert result.activation_regions == 2 * (1 + 4 + math.comb(4, 2)) and result.bounded_regions == 0


def test_duplicate_units_and_a_dead_unit():
    W = torch.tensor([[1.0, 2.0], [2.0, 4.0], [0.0, 0.0], [1.0, -1.0]], dtype=torch.float64)
    b = torch.tensor([1.0, 2.0, 0.5, 0.0], dtype=torch.float64)
    result = count_all_space(one_layer(W, b), device="cpu")
    assert (result.activation_regions, result.bounded_regions) == (4, 0)
    assert result.method == "exact"


@pytest.mark.parametrize("make", [lambda: gaussian_ffn([2, 6, 6, 1], 1), lambda: gaussian_ffn([3, 5, 5, 1], 2),
                                  lambda: gaussian_ffn([3, 4, 4, 4, 1], 3), lambda: triangular_deq(5, 3, seed=7),
                                  lambda: triangular_deq(4, 2, seed=8)])
def test_deep_nets_equal_a_box_large_enough_and_exceed_small_ones(make):
    """Box counts grow with the box and reach the all-space count (bounded regions too) once the box
    holds everything; a small box sees fewer."""
    model = make()
    result = count_all_space(model, device="cpu")
    assert result.method == "exact"
    d = model.input_dim
    small = partition_box(model, [-0.5] * d, [0.5] * d, device="cpu", chebyshev=False)
    big = partition_box(model, [-1e5] * d, [1e5] * d, device="cpu", chebyshev=False)
    assert small.activation_regions <= result.activation_regions
    assert big.activation_regions == result.activation_regions
    assert int(big.bounded.sum()) == result.bounded_regions
    assert result.patterns is not None and torch.equal(torch.sort(result.patterns, 0).values,
                                                       torch.sort(big.patterns, 0).values)


def test_face_models_are_the_homogenised_net():
    """On a side face, the face model's pattern at (y, t) is the net's pattern at y / t (carrier bits left
    out), so the faces see the regions of R^d."""
    from regioncount.core.patterns import layer_words
    from regioncount.sampling.sampled import packed_patterns_at

    model = gaussian_ffn([3, 5, 4, 1], 4)
    gen = torch.Generator().manual_seed(0)
    for axis in range(3):
        for sign in (-1.0, 1.0):
            face, keep = face_model(model, axis, sign)
            yt = torch.rand(200, 3, generator=gen, dtype=torch.float64) * 2 - 1
            yt[:, -1] = yt[:, -1].abs() + 1e-3  # t > 0
            x = torch.empty(200, 3, dtype=torch.float64)
            others = [j for j in range(3) if j != axis]
            x[:, axis] = sign / yt[:, -1]
            x[:, others] = yt[:, :-1] / yt[:, -1:]
            bits = []
            h = yt
            for w, b in zip(face.weights[:-1], face.biases[:-1]):
                pre = h @ w.T + b
                bits.append(pre > 0)
                h = pre.clamp_min(0)
            face_words = layer_words(torch.cat(bits, 1)[:, keep], model.hidden_widths)
            assert torch.equal(face_words, packed_patterns_at(model, x))


@pytest.mark.parametrize("seed", range(2))
def test_general_w_deqs_equal_a_box_large_enough(seed):
    from test_box_partition import general_deq

    model = general_deq(5, 3, seed)
    result = count_all_space(model, device="cpu")
    big = partition_box(model, [-1e4] * 3, [1e4] * 3, device="cpu", chebyshev=False)
    assert result.method == big.method == "exact"
    assert (result.activation_regions, result.bounded_regions) == (big.activation_regions, int(big.bounded.sum()))


def test_an_ill_posed_w_is_refused():
    W = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    deq = DEQ(W=W, U=torch.ones(2, 2, dtype=torch.float64), b=torch.zeros(2, dtype=torch.float64),
              A=torch.ones(1, 2, dtype=torch.float64))
    with pytest.raises(NotWellPosedError):
        count_all_space(deq, device="cpu")


def test_cli_all_space(tmp_path):
    from regioncount.io.model_files import save_model

    path = tmp_path / "m.json"
    model = gaussian_ffn([3, 5, 5, 1], 2)
    save_model(model, path)
    out = run_cli("count", path, "--exact", "--all-space", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    expected = count_all_space(model, device="cpu")
    assert data["activation_regions"] == expected.activation_regions
    assert data["unbounded_regions"] == expected.activation_regions - expected.bounded_regions
    assert data["domain"] == "all of R^d" and data["method"] == "exact"
    for args, pattern in ((["--all-space"], "give it with --exact"),
                          (["--exact", "--all-space", "--box", "-1", "1"], "takes no --box")):
        bad = run_cli("count", path, *args)
        assert bad.exit_code != 0 and pattern in bad.output and "Traceback" not in bad.output
