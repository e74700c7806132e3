"""Benchmark of graph models along segments: the operator form against densifying into an FFN.

    python benchmarks/bench_graph.py [--repeats 3]

Nets on 8x8 single-channel images (the size of scikit-learn's digits), PyTorch default initialisation with a
fixed seed, eval mode; the segment joins two random images in [0, 1]^64.  For each net: the regions and linear
pieces, the operator form's float64 walk and its exact proof (``count_segment`` on the graph model, the whole
call), and, for nets that are chains of convolutions and ReLUs, densifying each convolution into a matrix
(``dense_ffn``) and counting the FFN (its own exact path).  Best of ``--repeats``; prints a markdown table.
Then planes through three random images for two of the nets (one run each).  relucent accepts none of these
models (its networks are chains of Linear and ReLU layers, and it enumerates the regions of a box of the
whole 64-D input, not of a segment or a plane); ``bench_box.py`` compares it where it applies.
"""

from __future__ import annotations

import time

import torch
from bench_common import arguments, machine_line
from torch import nn

from regioncount import count_segment, from_module
from regioncount.core.geometry import resolve_segment
from regioncount.core.limits import Deadline
from regioncount.graph.dense import dense_ffn
from regioncount.graph.proof import prove_walk
from regioncount.graph.walk import walk_graph


class ResidualNet(nn.Module):
    """conv -> ReLU -> [conv -> BN -> leaky ReLU] + skip -> max pool -> linear."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(channels * 16, 10)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = h + nn.functional.leaky_relu(self.bn(self.conv(h)), 0.1)
        return self.head(self.pool(h).flatten(1))


def cnn(c1: int, c2: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.Conv2d(c1, c2, 3, stride=2, padding=1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(c2 * 16, 10))


def _best(repeats: int, run):
    best = None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        value = run()
        seconds = time.perf_counter() - start
        best = (seconds, value) if best is None or seconds < best[0] else best
    return best


def main() -> None:
    args = arguments(__doc__)
    cases = [("CNN 1-8-16 (ReLU)", lambda: cnn(8, 16)), ("CNN 1-16-32 (ReLU)", lambda: cnn(16, 32)),
             ("residual 8 (leaky, BN, max pool)", lambda: ResidualNet(8)),
             ("residual 16 (leaky, BN, max pool)", lambda: ResidualNet(16))]
    print(machine_line())
    print()
    print("| net | regions | linear pieces | walk | exact proof | whole call | densify | dense FFN count | "
          "dense / operator |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, make in cases:
        print(_row(label, make, args.repeats))
    print()
    print("Planes through three random images (the same nets; whole partition_plane call, once):")
    print()
    print("| net | regions | linear pieces | graph subdivision | graph whole call (method) | densify + FFN plane |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, make in cases[:1] + cases[2:3]:  # the smallest conv net and the smallest residual net
        print(_plane_row(label, make, 1))  # a plane takes seconds to minutes: once


def _row(label: str, make, repeats: int) -> str:  # noqa: ANN001 - a module factory
    """One table row: time the operator form's walk, proof and whole call, and the densified FFN's count."""
    torch.manual_seed(0)
    module = make().double().eval()
    graph = from_module(module, input_shape=(1, 8, 8))
    gen = torch.Generator().manual_seed(1)
    p, q = torch.rand(64, generator=gen, dtype=torch.float64), torch.rand(64, generator=gen, dtype=torch.float64)
    seg = resolve_segment(graph, segment=(p.tolist(), q.tolist()))
    v = torch.tensor(seg.direction, dtype=torch.float64)
    walk_s, walk = _best(repeats, lambda: walk_graph(graph, p, v, 0.0, 1.0, max_regions=None,
                                                      memory_limit=2**33, deadline=Deadline(None)))
    proof_s, _ = _best(repeats, lambda: prove_walk(graph, walk, p, v, 0.0, 1.0, Deadline(None)))
    whole_s, result = _best(repeats, lambda: count_segment(graph, segment=(p.tolist(), q.tolist()), device="cpu"))
    try:
        densify_s, ffn = _best(1, lambda: dense_ffn(graph))
    except Exception:  # not a chain of affine maps and ReLUs
        dense = "- | - | -"
    else:
        count_s, other = _best(repeats, lambda: count_segment(ffn, segment=(p.tolist(), q.tolist()), device="cpu"))
        assert (other.activation_regions, other.linear_pieces) == (result.activation_regions, result.linear_pieces)
        dense = f"{densify_s * 1e3:.1f} ms | {count_s * 1e3:.1f} ms | {(densify_s + count_s) / whole_s:.2f}"
    return (f"| {label} | {result.activation_regions:,} | {result.linear_pieces:,} | {walk_s * 1e3:.1f} ms | "
            f"{proof_s * 1e3:.0f} ms | {whole_s * 1e3:.0f} ms ({result.method}) | {dense} |")


def _plane_row(label: str, make, repeats: int) -> str:  # noqa: ANN001 - a module factory
    """One row of the plane table: the graph model's partition (with its proof) against the densified FFN's."""
    from regioncount import partition_plane

    torch.manual_seed(0)
    graph = from_module(make().double().eval(), input_shape=(1, 8, 8))
    gen = torch.Generator().manual_seed(2)
    through = tuple(torch.rand(64, generator=gen, dtype=torch.float64).tolist() for _ in range(3))
    whole_s, part = _best(repeats, lambda: partition_plane(graph, through=through, device="cpu"))
    try:
        ffn = dense_ffn(graph)
    except Exception:  # not a chain of affine maps and ReLUs
        dense = "-"
    else:
        dense_s, other = _best(repeats, lambda: partition_plane(ffn, through=through, device="cpu"))
        if part.method == "exact":  # an approximate partition may miss regions: that is what its label says
            assert other.activation_regions == part.activation_regions
        dense = f"{dense_s:.2f} s ({other.activation_regions:,} regions, {other.method})"
    return (f"| {label} | {part.activation_regions:,} | {part.linear_pieces:,} | {part.partition_seconds:.2f} s | "
            f"{whole_s:.2f} s ({part.method}) | {dense} |")


if __name__ == "__main__":
    main()
