"""Graph models: operators against torch and against their exact forms, counts against the densified FFN and
the exact rational walk, refusals in one line (docs/graphs.md)."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from regioncount import count_segment, from_module
from regioncount.core.errors import ModelFormatError
from regioncount.graph.dense import dense_ffn
from regioncount.graph.model import GraphModel
from regioncount.graph.reference import exact_walk
from regioncount.graph.scaled import Scaled


def _dyadic_(module: nn.Module, seed: int, span: int = 4, scale: int = 4, zero_p: float = 0.1) -> nn.Module:
    """Every parameter set to small dyadic numbers (float64 holds every product exactly), some zeros."""
    rng = random.Random(seed)
    with torch.no_grad():
        for param in module.parameters():
            values = [0.0 if rng.random() < zero_p else rng.randint(-span, span) / scale for _ in range(param.numel())]
            param.copy_(torch.tensor(values, dtype=param.dtype).reshape(param.shape))
    return module


class ResBlock(nn.Module):
    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.LeakyReLU(0.125)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(channels * 3 * 3, 2)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = h + self.act(self.bn(self.conv(h)))
        return self.head(self.pool(h).flatten(1))


def _segment(d: int, seed: int) -> tuple[list[float], list[float]]:
    gen = torch.Generator().manual_seed(seed)
    p = (torch.randint(-8, 9, (d,), generator=gen) / 8).tolist()
    q = (torch.randint(-8, 9, (d,), generator=gen) / 8).tolist()
    return p, q


def _exact(graph: GraphModel, p: list[float], q: list[float]):
    pt, qt = torch.tensor(p, dtype=torch.float64), torch.tensor(q, dtype=torch.float64)
    return exact_walk(graph, pt, qt - pt, 0.0, 1.0)


# ------------------------------------------------------------------------------------------------ operators

OPERATOR_MODULES = {
    "conv2d stride padding dilation groups": (nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=2, dilation=2, groups=2),
                                                            nn.ReLU(), nn.Flatten()), (2, 7, 6)),
    "conv1d": (nn.Sequential(nn.Conv1d(2, 3, 3, stride=2, padding=1), nn.LeakyReLU(0.25), nn.Flatten()), (2, 9)),
    "conv same": (nn.Sequential(nn.Conv2d(1, 2, 3, padding="same"), nn.ReLU(), nn.Flatten()), (1, 5, 5)),
    "max pool padded": (nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1), nn.Flatten()), (2, 6, 5)),
    "max pool 1d": (nn.Sequential(nn.MaxPool1d(2), nn.Flatten()), (3, 8)),
    "average pool": (nn.Sequential(nn.AvgPool2d(2, stride=1, padding=1), nn.Flatten()), (2, 5, 5)),
    "adaptive average": (nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), (3, 4, 4)),
    "batch norm + PReLU": (nn.Sequential(nn.BatchNorm2d(3), nn.PReLU(3), nn.Flatten()), (3, 2, 2)),
    "hard-tanh, ReLU6": (nn.Sequential(nn.Linear(4, 5), nn.Hardtanh(-0.5, 0.75), nn.Linear(5, 5), nn.ReLU6()), (4,)),
}


@pytest.mark.parametrize("key", sorted(OPERATOR_MODULES))
def test_every_operator_computes_what_torch_computes(key):
    module, shape = OPERATOR_MODULES[key]
    module = module.double().eval()
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    graph = from_module(module, input_shape=shape)
    assert isinstance(graph, GraphModel)
    x = torch.randn(7, graph.input_dim, dtype=torch.float64)
    expected = module(x.reshape(7, *shape)).reshape(7, -1)
    assert torch.allclose(graph(x), expected, rtol=1e-12, atol=1e-12)


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(3, 2)

    def forward(self, x):
        h = torch.cat([torch.abs(self.a(x)) * 0.5, torch.nn.functional.leaky_relu(self.b(x), 0.25)], dim=1)
        return (h - torch.clamp(h, -0.5, 0.5) / 4).view(x.size(0), -1)


def test_functions_and_methods_are_read():
    module = Functional().double()
    graph = from_module(module)
    x = torch.randn(9, 3, dtype=torch.float64)
    assert torch.allclose(graph(x), module(x), rtol=1e-12, atol=1e-12)
    assert "Abs" in graph.describe() and "Hardtanh" in graph.describe()


@pytest.mark.parametrize("key", sorted(OPERATOR_MODULES))
def test_every_operator_is_exact_on_dyadic_weights(key):
    """The exact (scaled-integer) form of each operator equals its float form where float64 is exact."""
    module, shape = OPERATOR_MODULES[key]
    module = _dyadic_(module.double().eval(), seed=5)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):  # 1 / sqrt(var + eps) = 1/2: the folded scale and shift are dyadic
            m.eps = 0.25
            m.running_var.fill_(3.75)
            m.running_mean.copy_(torch.tensor([0.5, -0.25, 1.0]))
    graph = from_module(module, input_shape=shape, check_points=8)
    x = (torch.randint(-8, 9, (3, graph.input_dim)) / 8).to(torch.float64)
    values = {0: (x.reshape(3, *shape), Scaled.of_tensor(x).reshape(3, *shape))}
    for index, node in enumerate(graph.nodes[1:], 1):
        ins = [values[i] for i in node.inputs]
        if node.op.piecewise:
            u = ins[0][0].reshape(3, -1)
            states = node.op.states(u)
            out, _ = node.op.select(u, torch.zeros_like(u), states)
            exact, _ = node.op.exact_select(ins[0][1].reshape(3, -1), Scaled.of_tensor(torch.zeros_like(u)),
                                            states.numpy())
            assert (node.op.exact_states(ins[0][1].reshape(3, -1).ints, np.full((3, 1), ins[0][1].den, dtype=object))
                    == states.numpy()).all()
            out, exact = out.reshape(3, *node.shape), exact.reshape(3, *node.shape)
        else:
            out = node.op.forward([a for a, _ in ins])
            exact = node.op.exact([b for _, b in ins], True)
        assert (exact.fractions() == np.vectorize(Fraction, otypes=[object])(out.numpy())).all(), node.name
        values[index] = (out, exact)


def test_an_average_over_nine_is_exact_in_rationals():
    graph = from_module(nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), nn.Flatten()), input_shape=(1, 3, 3))
    x = torch.arange(9, dtype=torch.float64).reshape(1, 9) / 8
    exact = graph.nodes[1].op.exact([Scaled.of_tensor(x).reshape(1, 1, 3, 3)], True).fractions().ravel()
    assert exact[4] == Fraction(36, 8 * 9) and exact[0] == Fraction(0 + 1 + 3 + 4, 8 * 9)
    assert torch.allclose(graph(x), torch.tensor([[float(e) for e in exact]], dtype=torch.float64))


def test_scaled_integers_hold_floats_exactly():
    t = torch.tensor([[3.0, 1024.0, 2.0**-1074], [5e300, 0.0, -0.1]], dtype=torch.float64)
    s = Scaled.of_tensor(t)
    assert all(a == Fraction(b) for a, b in zip(s.fractions().ravel(), t.ravel().tolist()))
    assert Scaled.of_tensor(torch.tensor([2.0, 4.0], dtype=torch.float64)).den == 1


# ------------------------------------------------------------------------------------------------ counts


@pytest.mark.parametrize("seed", range(6))
def test_conv_relu_counts_equal_the_densified_ffn(seed):
    """A conv net with ReLUs counted in operator form and as the densified FFN (dyadic weights: the
    densification is exact): the same regions and pieces, both exact."""
    torch.manual_seed(seed)
    module = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, stride=2), nn.ReLU(), nn.Conv2d(3, 2, 2), nn.ReLU(),
                           nn.Flatten(), nn.Linear(8, 2)).double().eval()
    if seed % 2:
        _dyadic_(module, seed)
    graph = from_module(module, input_shape=(1, 6, 6))
    ffn = dense_ffn(graph)
    p, q = _segment(36, seed)
    a, b = count_segment(graph, segment=(p, q)), count_segment(ffn, segment=(p, q))
    assert a.method == b.method == "exact"
    assert (a.activation_regions, a.linear_pieces) == (b.activation_regions, b.linear_pieces)


@pytest.mark.parametrize("seed", range(8))
def test_leaky_residual_maxpool_counts_equal_the_exact_walk(seed):
    """Random and degenerate (dyadic, duplicated, dead) residual conv nets with leaky ReLU and max pooling:
    the walk and its proof give the exact rational walk's regions, pieces and breakpoints."""
    torch.manual_seed(seed)
    module = ResBlock().double().eval()
    if seed % 2:
        _dyadic_(module, seed, zero_p=0.25)
        with torch.no_grad():  # two identical channels: coincident kinks everywhere
            module.stem.weight[1] = module.stem.weight[0]
            module.stem.bias[1] = module.stem.bias[0]
    graph = from_module(module, input_shape=(1, 6, 6))
    p, q = _segment(36, seed)
    got = count_segment(graph, segment=(p, q), keep_breakpoints=True)
    want = _exact(graph, p, q)
    assert got.method == "exact"
    assert (got.activation_regions, got.linear_pieces) == (want.regions, want.linear_pieces)
    assert np.allclose(got.breakpoints, np.array([float(b) for b in want.breakpoints]), rtol=1e-12, atol=1e-14)


def test_a_sliver_below_float64_is_counted_by_the_exact_second_opinion():
    """Kinks of relu(x - 0.3) and relu(3 x - 0.9) lie 1.85e-17 apart: float64 sees one breakpoint, the stored
    weights have two; the proof refutes the walk and the exact walk counts 3 regions."""
    module = nn.Sequential(nn.Linear(1, 2), nn.LeakyReLU(0.5), nn.Linear(2, 1)).double()
    with torch.no_grad():
        module[0].weight.copy_(torch.tensor([[1.0], [3.0]]))
        module[0].bias.copy_(torch.tensor([-0.3, -0.9], dtype=torch.float64))
        module[2].weight.copy_(torch.tensor([[1.0, 1.0]]))
    graph = from_module(module)
    assert isinstance(graph, GraphModel)
    result = count_segment(graph, interval=(0, 1))
    assert result.activation_regions == 3 and result.method == "exact" and result.doubtful_decisions > 0
    assert "exact rational walk" in result.algorithm


def test_kinks_at_the_ends_and_dead_units():
    module = nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 4), nn.Hardtanh(), nn.Linear(4, 1)).double()
    with torch.no_grad():
        module[0].weight.copy_(torch.tensor([[1.0], [0.0], [-2.0], [1.0]]))
        module[0].bias.copy_(torch.tensor([0.0, 1.0, 2.0, -0.5]))  # kinks at t = 0, 1 and 0.5; one dead unit
        module[2].weight.copy_(torch.eye(4))
        module[2].bias.zero_()
        module[4].weight.fill_(1.0)
    graph = from_module(module)
    assert isinstance(graph, GraphModel)  # a hard-tanh: not a ReLU chain
    result = count_segment(graph, interval=(0, 1))
    want = exact_walk(graph, torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64), 0.0, 1.0)
    assert (result.activation_regions, result.linear_pieces) == (want.regions, want.linear_pieces)
    assert result.method == "exact"


def test_the_count_reports_json_and_refuses_limits():
    from regioncount.core.errors import CostLimitError

    module = ResBlock().double().eval()
    graph = from_module(module, input_shape=(1, 6, 6))
    p, q = _segment(36, 3)
    data = count_segment(graph, segment=(p, q)).to_json()
    assert data["method"] == "exact" and data["activation_regions"] >= 1 and "graph" in data["algorithm"]
    with pytest.raises(CostLimitError, match="past the limit of 1"):
        count_segment(graph, segment=([-9.0] * 36, [9.0] * 36), max_regions=1)


# ------------------------------------------------------------------------------------------------ refusals


class Square(nn.Module):
    def forward(self, x):
        return x * x


class Shift(nn.Module):
    def forward(self, x):
        return x + 1.0


@pytest.mark.parametrize("module, shape, message", [
    (nn.Sequential(nn.Linear(2, 3), nn.Tanh()), None, "Tanh is not read"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")), (1, 4, 4), "padding_mode='reflect'"),
    (nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), (1, 5, 5), "ceil_mode"),
    (Square(), (3,), "two tensors is not piecewise linear"),
    (Shift(), (3,), "a tensor and a constant"),
    (nn.Sequential(nn.Conv2d(1, 2, 3)), None, "give input_shape"),
    (nn.Sequential(nn.Conv2d(1, 2, 3)), (2, 5, 5), "does not run on inputs of shape"),
])
def test_unread_operators_are_one_line_errors(module, shape, message):
    with pytest.raises(ModelFormatError, match=message) as info:
        from_module(module, input_shape=shape)
    assert "\n" not in str(info.value)


def test_training_mode_batch_norm_is_refused():
    module = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(ModelFormatError, match="call module.eval"):
        from_module(module, input_shape=(1, 4, 4))


def test_graph_models_are_sampled_and_refused_where_not_supported():
    from regioncount import partition_box, sample_regions

    module = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.LeakyReLU(0.125), nn.MaxPool2d(2), nn.Flatten(),
                           nn.Linear(8, 2)).double().eval()
    graph = from_module(module, input_shape=(1, 4, 4))
    assert graph.pattern_bits() == 2 * 16 + 8 * 3
    result = sample_regions(graph, [-1.0] * 16, [1.0] * 16, samples=3000, seed=1)
    x = torch.rand(3000, 16, dtype=torch.float64) * 2 - 1
    assert 1 < result.distinct_patterns <= 3000
    codes = graph.pattern_code(x)
    assert codes.shape == (3000, graph.pattern_bits())
    # the code is a bijection of the states: equal codes exactly where the states are equal
    _, states = graph.forward(x[:50], patterns=True)
    joined = torch.cat(states, 1)
    assert torch.equal((codes[:50, None] == codes[None, :50]).all(-1), (joined[:, None] == joined[None]).all(-1))
    with pytest.raises(ModelFormatError, match="not a GraphModel"):
        partition_box(graph, [0.0] * 16, [1.0] * 16)


def _random_conv_net(rng: random.Random) -> nn.Module:
    c = rng.choice([1, 2, 3])
    act = rng.choice([nn.ReLU(), nn.LeakyReLU(0.125), nn.Hardtanh(-0.5, 0.5), nn.PReLU(c), nn.LeakyReLU(0.3)])
    pool = rng.choice([nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AvgPool2d(3, 1, 1), nn.MaxPool2d(3, 2, 1), nn.Identity()])
    layers = [nn.Conv2d(1, c, 3, padding=1), act, pool, nn.Flatten()]
    width = nn.Sequential(*layers)(torch.zeros(1, 1, 4, 4)).shape[1]
    return nn.Sequential(*layers, nn.Linear(width, 3), rng.choice([nn.ReLU(), nn.Identity()]), nn.Linear(3, 2))


@pytest.mark.parametrize("block", range(4))
def test_random_and_degenerate_graph_nets_match_the_exact_walk(block):
    """Random conv nets (ReLU, leaky, hard-tanh, PReLU; max and average pools), two in three with small
    dyadic weights, many zeros and duplicated channels, on segments between dyadic points: every count is
    exact and equals the exact rational walk (2,700 such nets agreed when this was written)."""
    for seed in range(block * 40, block * 40 + 40):
        rng = random.Random(seed)
        torch.manual_seed(seed)
        module = _random_conv_net(rng).double().eval()
        if seed % 3:
            _dyadic_(module, seed, span=rng.choice([1, 2, 4]), scale=rng.choice([1, 2, 4]), zero_p=0.3)
            if seed % 2 and module[0].weight.shape[0] > 1:
                with torch.no_grad():
                    module[0].weight[1] = module[0].weight[0] * rng.choice([1.0, 2.0, -1.0])
        graph = from_module(module, input_shape=(1, 4, 4), check_points=4)
        k = rng.choice([1, 2, 8])
        gen = torch.Generator().manual_seed(seed)
        p = (torch.randint(-k, k + 1, (16,), generator=gen) / k).double()
        q = (torch.randint(-k, k + 1, (16,), generator=gen) / k).double()
        if torch.equal(p, q):
            continue
        got = count_segment(graph, segment=(p.tolist(), q.tolist()))
        want = exact_walk(graph, p, q - p, 0.0, 1.0)
        assert got.method == "exact", seed
        assert (got.activation_regions, got.linear_pieces) == (want.regions, want.linear_pieces), seed


def test_generic_nets_are_proven_by_the_float_bounds_alone():
    from regioncount.core.limits import Deadline
    from regioncount.graph.certify import certify_walk
    from regioncount.graph.walk import walk_graph

    torch.manual_seed(0)
    graph = from_module(ResBlock(4).double().eval(), input_shape=(1, 6, 6))
    p, q = (torch.rand(36, dtype=torch.float64) for _ in range(2))
    walk = walk_graph(graph, p, q - p, 0.0, 1.0, max_regions=None, memory_limit=2**30, deadline=Deadline(None))
    floats = certify_walk(graph, walk.states, p, q - p, 0.0, 1.0)
    assert walk.count > 20 and bool(floats.proven.all())
    # flips that cannot reach the output (a unit a max pool does not select): equal outputs, proven
    assert bool(floats.equal.any()) and not bool((floats.equal & floats.differ).any())
    result = count_segment(graph, segment=(p.tolist(), q.tolist()))
    assert "(0 in rational arithmetic" in result.algorithm
    assert result.linear_pieces == exact_walk(graph, p, q - p, 0.0, 1.0).linear_pieces < result.activation_regions


# ------------------------------------------------------------------------------------------------ planes


def _plane_points(seed: int, d: int) -> tuple[list[float], ...]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(d, generator=gen, dtype=torch.float64).tolist() for _ in range(3))


@pytest.mark.parametrize("seed", range(3))
def test_conv_relu_planes_equal_the_densified_ffn(seed):
    from regioncount import partition_plane

    torch.manual_seed(seed)
    module = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(27, 4),
                           nn.ReLU(), nn.Linear(4, 3)).double().eval()
    graph = from_module(module, input_shape=(1, 6, 6))
    through = _plane_points(seed, 36)
    a, b = partition_plane(graph, through=through), partition_plane(dense_ffn(graph), through=through)
    assert a.method == b.method == "exact" and "every sign proven by its float64 error bound" in a.engine
    assert (a.activation_regions, a.linear_pieces) == (b.activation_regions, b.linear_pieces)
    assert float(a.areas.sum()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_max_pool_leaky_planes_are_proven_and_hold_every_sampled_pattern(seed):
    from regioncount import decision_boundary, partition_plane
    from regioncount.core.patterns import match_rows, pack_bits

    torch.manual_seed(seed)
    module = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.LeakyReLU(0.125), nn.MaxPool2d(2), nn.Flatten(),
                           nn.Linear(8, 3)).double().eval()
    graph = from_module(module, input_shape=(1, 4, 4))
    part = partition_plane(graph, through=_plane_points(seed, 16))
    assert part.method == "exact"
    grid = torch.linspace(0.001, 0.999, 150, dtype=torch.float64)
    S, T = torch.meshgrid(grid, grid, indexing="ij")
    points = part.plane.points(torch.stack([S.ravel(), T.ravel()], 1))
    words = pack_bits(graph.pattern_code(points))
    _, found = match_rows(part.patterns, words)
    assert bool(found.all())  # every sampled pattern is one of the regions
    assert torch.unique(words, dim=0).shape[0] <= part.activation_regions
    edge = decision_boundary(part)
    classes = torch.unique(graph(points).argmax(1)).numel()
    assert edge.kind == "argmax" and (edge.length > 0) == (classes > 1)


def test_a_plane_past_the_memory_limit_is_refused_in_one_line():
    from regioncount import partition_plane
    from regioncount.core.errors import CostLimitError

    graph = from_module(ResBlock(2).double().eval(), input_shape=(1, 6, 6))
    with pytest.raises(CostLimitError, match="past the memory limit") as info:
        partition_plane(graph, through=_plane_points(0, 36), memory_limit=10_000)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("module, shape", [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.LeakyReLU(), nn.Flatten(), nn.Linear(8, 1)), (1, 4, 4)),
    (nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(), nn.Linear(3, 1)), None),
])
def test_a_nan_or_infinite_weight_is_a_one_line_error(module, shape):
    module = module.double()
    with torch.no_grad():
        next(module.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(ModelFormatError, match="NaN or infinite") as info:
        from_module(module, input_shape=shape)
    assert "\n" not in str(info.value)
