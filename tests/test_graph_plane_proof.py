"""The float64 proof of graph plane partitions (every sign proven by its bound, the doubtful ones decided in
rational arithmetic) against two independent references: the densified FFN's exact partition, and the
graph's own rational proof of the unproven float walk (exact corners, constraints and hull areas)."""

import random

import pytest
import torch
from test_graph import _dyadic_
from torch import nn

from regioncount import from_module, partition_plane
from regioncount.graph.dense import dense_ffn
from regioncount.partition import graph_plane
from regioncount.partition.graph_plane_bounds import kink_values
from regioncount.partition.polygon_proofs import LineTable


def _net(seed: int) -> tuple[nn.Module, object, tuple]:
    """A small conv net (ReLU, leaky ReLU or hard-tanh, a max pool on every fourth seed), with dyadic weights,
    zeros and a duplicated channel on two seeds in three, and a plane through three lattice images."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    channels = rng.choice([1, 2, 3])
    pool = seed % 4 == 0
    act = rng.choice([nn.ReLU(), nn.LeakyReLU(0.125), nn.Hardtanh(-0.5, 0.5)])
    body = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1, stride=1 if pool else rng.choice([1, 2])), act,
                         *([nn.MaxPool2d(2)] if pool else []), nn.Flatten())
    width = body(torch.zeros(1, 1, 4, 4)).shape[1]
    module = nn.Sequential(*body, nn.Linear(width, 4), nn.ReLU(), nn.Linear(4, 3)).double().eval()
    if seed % 3:
        _dyadic_(module, seed, span=rng.choice([1, 2, 4]), scale=rng.choice([1, 2, 4]), zero_p=0.3)
        if seed % 2 and channels > 1:
            with torch.no_grad():
                module[0].weight[1] = module[0].weight[0] * rng.choice([1.0, 2.0, -1.0])
    graph = from_module(module, input_shape=(1, 4, 4), check_points=4)
    k = rng.choice([1, 2, 4])
    gen = torch.Generator().manual_seed(seed)
    through = tuple((torch.randint(-k, k + 1, (16,), generator=gen) / k).double().tolist() for _ in range(3))
    return module, graph, through


def _rational(graph, through, monkeypatch):
    """The same slice by the float walk without proofs, checked by the rational proof."""
    with monkeypatch.context() as patch:
        patch.setattr(graph_plane, "cut_proven", lambda *args, **kwargs: None)
        return partition_plane(graph, through=through, proof_seconds=600)


# leaky + pool, hard-tanh, leaky + pool with exact decisions, hard-tanh + pool (thousands of them), dyadic ReLU
@pytest.mark.parametrize("seed", [0, 1, 8, 16, 20, 26, 32, 37])
def test_proven_planes_equal_the_rational_proof_of_the_float_walk(seed, monkeypatch):
    module, graph, through = _net(seed)
    part = partition_plane(graph, through=through)
    reference = _rational(graph, through, monkeypatch)
    assert part.method == reference.method == "exact"
    assert "every sign proven by its float64 error bound" in part.engine
    assert "rational arithmetic, hulls cover the slice" in reference.engine
    assert (part.activation_regions, part.linear_pieces) == (reference.activation_regions, reference.linear_pieces)
    assert torch.equal(torch.unique(part.patterns, dim=0), torch.unique(reference.patterns, dim=0))
    assert float(part.areas.sum()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", [2, 10, 19, 22, 23, 25])
def test_degenerate_relu_planes_decide_their_doubts_exactly_and_equal_the_densified_ffn(seed):
    module, graph, through = _net(seed)
    part = partition_plane(graph, through=through)
    dense = partition_plane(dense_ffn(graph), through=through)
    assert part.method == dense.method == "exact"
    assert part.exact_decisions > 0 and "decided in rational arithmetic" in part.engine
    assert (part.activation_regions, part.linear_pieces) == (dense.activation_regions, dense.linear_pieces)


def test_a_max_pool_over_zero_patches_of_the_images_is_proven(monkeypatch):
    """Images like the digits: zero borders make windows equal at the corners of the slice and along it, and
    a ReLU's dead units make a max's lines pass exactly through vertices."""
    torch.manual_seed(3)
    module = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                           nn.Linear(32, 3)).double().eval()
    images = []
    for k in range(3):
        image = torch.zeros(8, 8, dtype=torch.float64)
        image[2:6, 2 + (k % 2):5 + (k % 2)] = torch.randint(1, 5, (4, 3), generator=torch.Generator().manual_seed(k))
        images.append(image.flatten().tolist())
    graph = from_module(module, input_shape=(1, 8, 8))
    part = partition_plane(graph, through=tuple(images))
    reference = _rational(graph, tuple(images), monkeypatch)
    assert part.method == reference.method == "exact" and "every sign proven" in part.engine
    assert (part.activation_regions, part.linear_pieces) == (reference.activation_regions, reference.linear_pieces)


def test_a_plane_whose_walk_is_not_proven_is_labelled_approximate_past_the_budget(monkeypatch):
    from test_graph import ResBlock, _plane_points

    monkeypatch.setattr(graph_plane, "cut_proven", lambda *args, **kwargs: None)
    monkeypatch.setattr(graph_plane, "PROOF_SECONDS", 0.0)
    graph = from_module(ResBlock(2).double().eval(), input_shape=(1, 6, 6))
    part = partition_plane(graph, through=_plane_points(0, 36))
    assert part.method == "approximate" and any("past its budget" in note for note in part.notes)


def test_kink_values_are_the_exact_outputs_at_each_threshold():
    from regioncount.graph.ops import Elementwise

    hardtanh = Elementwise((-0.5, 0.5), torch.tensor([[0.0], [1.0], [0.0]], dtype=torch.float64),
                           torch.tensor([[-0.5], [0.0], [0.5]], dtype=torch.float64), "Hardtanh")
    assert kink_values(hardtanh, 2).tolist() == [[-0.5, -0.5], [0.5, 0.5]]
    # a slope whose product with the threshold rounds: no exact float64 value, so no rule uses it
    odd = Elementwise((0.1,), torch.tensor([[1.0 / 3.0], [1.0]], dtype=torch.float64),
                      torch.tensor([[0.0], [0.1 / 3.0 - 0.1]], dtype=torch.float64), "odd")
    assert torch.isnan(kink_values(odd, 1)).all()


def test_a_line_table_forgets_the_lines_of_a_batch_given_up():
    coef = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    table = LineTable(coef, torch.zeros_like(coef))
    mark = table.mark()
    table.reserve(2, torch.device("cpu"), unit=7)
    table.fill(torch.ones(1, 3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64))
    table.rollback(mark)
    assert table.mark() == (1, 1) and table.units().tolist() == [-1] and table.tables()[0].shape == (1, 3)
    ids = table.reserve(1, torch.device("cpu"), unit=3)
    table.fill(2 * torch.ones(1, 3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64))
    assert ids.tolist() == [1] and table.tables()[0][1].tolist() == [2.0, 2.0, 2.0] and table.units().tolist() == [-1, 3]
