"""Benchmark of sampled d-D counting against the bare float64 forward pass of the same points.

    python benchmarks/bench_sampled.py [--samples 2097152] [--repeats 5] [--devices auto]

Net: random 2 -> 64 x 3 -> 1 FFN (weights N(0, 2/fan_in), biases N(0, 0.1^2)), box [-1, 1]^2.  For each
device: the whole pipeline (points, forward, pattern packing, dedupe, merge: ``sample_regions``) and the
bare forward pass (``FFN.forward`` on the same number of points, same batch size), interleaved, best of
``--repeats``.  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from bench_common import devices, machine_line

from regioncount import FFN
from regioncount.core.devices import synchronize
from regioncount.sampling.sampled import default_batch, sample_regions


def net_2x64x3() -> FFN:
    gen = torch.Generator().manual_seed(0)
    dims = [2, 64, 64, 64, 1]
    weights = [torch.randn(o, i, generator=gen, dtype=torch.float64) * math.sqrt(2 / i) for i, o in zip(dims, dims[1:])]
    biases = [torch.randn(o, generator=gen, dtype=torch.float64) * 0.1 for o in dims[1:]]
    return FFN(weights, biases, name="random 2 -> 64x3")


def bare_forward(net: FFN, n: int, batch: int, device: torch.device, dtype: torch.dtype, fused: bool) -> float:
    """Forward pass of n random points in batches: ``fused`` = addmm + in-place relu (the fastest plain
    torch forward), else the textbook ``relu(h @ W.T + b)``."""
    layers = [(w.to(device, dtype), b.to(device, dtype)) for w, b in zip(net.weights, net.biases)]
    synchronize(device)
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, n, batch):
            h = torch.rand(min(batch, n - first), 2, device=device, dtype=dtype) * 2 - 1
            for w, b in layers[:-1]:
                h = torch.addmm(b, h, w.T).clamp_min_(0) if fused else torch.relu(h @ w.T + b)
            torch.addmm(layers[-1][1], h, layers[-1][0].T)
    synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2**21)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--devices", default="auto")
    parser.add_argument("--dtypes", default="float64")
    parser.add_argument("--json", dest="json_file", help="also write the rows to this JSON file")
    args = parser.parse_args()
    rows = []
    net = net_2x64x3()
    print(machine_line())
    print()
    print("| device | dtype | samples | distinct | pipeline | points/s | forward (fused) | ratio | "
          "forward (plain) | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in devices(args.devices):
        device = torch.device(name)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        for dtype_name in args.dtypes.split(","):
            dtype = getattr(torch, dtype_name)
            batch = default_batch(net, dtype, device)
            pipe, fused, plain, result = math.inf, math.inf, math.inf, None
            for _ in range(args.repeats):
                result = sample_regions(net, -1, 1, samples=args.samples, device=name, dtype=dtype_name, batch=batch)
                pipe = min(pipe, result.seconds)
                fused = min(fused, bare_forward(net, args.samples, batch, device, dtype, True))
                plain = min(plain, bare_forward(net, args.samples, batch, device, dtype, False))
            print(f"| {label} | {dtype_name} | {args.samples:,} | {result.distinct_patterns:,} | "
                  f"{pipe:.3f} s | {args.samples / pipe:.3g} | {fused:.3f} s | {pipe / fused:.2f} | "
                  f"{plain:.3f} s | {pipe / plain:.2f} |", flush=True)
            rows.append({"device": name, "card": label, "dtype": dtype_name, "samples": args.samples,
                         "distinct": result.distinct_patterns, "pipeline_s": pipe,
                         "points_per_s": args.samples / pipe, "forward_fused_s": fused, "forward_plain_s": plain,
                         "ratio_fused": pipe / fused, "ratio_plain": pipe / plain})
    if args.json_file:
        with open(args.json_file, "w") as handle:
            json.dump({"torch": torch.__version__, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
