"""Whole-call timing of exact FFN plane partitions on one thread: the table that issue 30's targets are read from.

    python benchmarks/bench_plane_calls.py [--repeats 5] [--nets 64x3:11,12,13 128x3:11 256x2:11]

Nets: 2 -> w x L, weights N(0, 2 / fan_in), biases N(0, 0.1^2), on the box [-1, 1]^2 (seeds of this script's
own, none of the repository's tests or other benchmarks).  "whole call" is the wall time of
``partition_plane`` (the partition, region ids, areas, adjacency and linear pieces), "partition" its
``partition_seconds``; each the best of ``--repeats``, one thread.  The script reads only ``regioncount.FFN`` and
``regioncount.partition_plane``, so it runs unchanged against older revisions (``PYTHONPATH=<checkout>``) for a
before/after table.

With ``--edge-subdivision PATH`` (a checkout of github.com/arturs-berzins/relu_edge_subdivision, read from
there, not part of this project) the same nets, as float32 ``nn.Linear`` layers, also go through its
``skeletal_subdivision`` on the same box and one thread; its regions are the bounded faces of the planar graph
it returns (edges - vertices + 1), and the last column is its time over regioncount's whole call.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from regioncount import FFN, partition_plane


def he_ffn(width: int, depth: int, seed: int = 0) -> FFN:
    """The benchmarks' net 2 -> width x depth -> 1 (see the module docstring; also ``bench_plane.py``'s)."""
    gen = torch.Generator().manual_seed(seed)
    dims = [2] + [width] * depth + [1]
    weights = [torch.randn(o, i, generator=gen, dtype=torch.float64) * math.sqrt(2 / i) for i, o in zip(dims, dims[1:])]
    biases = [torch.randn(o, generator=gen, dtype=torch.float64) * 0.1 for o in dims[1:]]
    return FFN(weights, biases, name=f"2 -> {width} x {depth}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--nets", nargs="+", default=["64x3:11,12,13", "128x3:11", "256x2:11"],
                        help="WIDTHxDEPTH:SEED,SEED,...")
    parser.add_argument("--edge-subdivision", metavar="PATH", help="a checkout of relu_edge_subdivision to time too")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread")
    print()
    extra = " edge subdivision (float32): regions | seconds | ES / whole call |" if args.edge_subdivision else ""
    print("| net | seed | regions | linear pieces | whole call | partition | method |" + extra)
    print("|---|---:|---:|---:|---:|---:|---|" + ("---:|---:|---:|" if extra else ""))
    for spec in args.nets:
        shape, seeds = spec.split(":")
        width, depth = (int(v) for v in shape.split("x"))
        for seed in (int(s) for s in seeds.split(",")):
            net = he_ffn(width, depth, seed)
            partition_plane(net, [-1.0, -1.0], [1.0, 1.0], device="cpu")  # warm-up
            best = (math.inf, math.inf)
            for _ in range(max(1, args.repeats)):
                started = time.perf_counter()
                part = partition_plane(net, [-1.0, -1.0], [1.0, 1.0], device="cpu")
                best = min(best, (time.perf_counter() - started, part.partition_seconds))
            row = (f"| {net.name} | {seed} | {part.activation_regions:,} | {part.linear_pieces:,} | {best[0]:.3f} s | "
                   f"{best[1]:.3f} s | {part.method} |")
            if args.edge_subdivision:
                try:
                    regions, seconds = edge_subdivision(args.edge_subdivision, net, args.repeats)
                except RuntimeError as error:  # its float32 arrangement met a case it does not handle
                    row += f" failed ({str(error).splitlines()[0][:60]}) | - | - |"
                else:
                    row += f" {regions:,} | {seconds:.3f} s | {seconds / best[0]:.2f} |"
            print(row, flush=True)


def edge_subdivision(path: str, net: FFN, repeats: int) -> tuple[int, float]:
    """Regions and best time of relu_edge_subdivision's ``skeletal_subdivision`` (at ``path``) on ``net`` as
    float32 layers over [-1, 1]^2: the bounded faces of its vertex-edge graph, E - V + 1 (Euler)."""
    import sys

    if path not in sys.path:
        sys.path.insert(0, path)
    from edge_subdivision import skeletal_subdivision  # the checkout's own modules
    from NN import Net

    dims = [net.weights[0].shape[1]] + [w.shape[0] for w in net.weights]
    model = Net(dims)
    best = math.inf
    with torch.no_grad():
        for layer, weight, bias in zip(model.fcs, net.weights, net.biases):
            layer.weight.copy_(weight.float())
            layer.bias.copy_(bias.float())
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            vertices, edges, _ = skeletal_subdivision(model, bbox=(-1, 1), device="cpu", verbose=False)
            best = min(best, time.perf_counter() - started)
    return len(edges) - len(vertices) + 1, best


if __name__ == "__main__":
    main()
