"""Benchmark of exact 2-D partitions: regions/s for random 2 -> w x L FFNs on [-1, 1]^2.

    python benchmarks/bench_plane.py [--repeats 3] [--devices auto]

Nets: weights N(0, 2 / fan_in), biases N(0, 0.1^2) (He-style).  Times are ``PlanePartition.seconds``:
the partition, region ids, areas, adjacency graph and linear pieces; best of ``--repeats``.  Also
renders a 10^5-region-class PNG and times it.  Prints a markdown table.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch
from bench_common import arguments, best_run, devices, machine_line
from bench_plane_calls import he_ffn

from regioncount.partition.plane2d import partition_plane
from regioncount.viz.plot import plot_partition


def main() -> None:
    args = arguments(__doc__, devices="auto")
    rows = []
    cases = [(16, 3), (32, 3), (64, 3), (128, 3)]
    print(machine_line())
    print()
    print("| net | device | regions | linear pieces | partition | regions/s | + graph, pieces, areas | regions/s | PNG render |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in devices(args.devices):
        label = torch.cuda.get_device_name() if name == "cuda" else "cpu"
        for width, depth in cases + ([(256, 4)] if name == "cuda" else []):
            net = he_ffn(width, depth)
            best = best_run(args.repeats, partition_plane, net, [-1, -1], [1, 1], device=name)
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                plot_partition(best, Path(tmp) / "p.png", dpi=100)
                render = time.perf_counter() - start
            R = best.activation_regions
            print(f"| {net.name} | {label} | {R:,} | {best.linear_pieces:,} | {best.partition_seconds:.3f} s | "
                  f"{R / best.partition_seconds:,.0f} | {best.seconds:.3f} s | {R / best.seconds:,.0f} | "
                  f"{render:.2f} s |", flush=True)
            rows.append({"net": net.name, "device": name, "card": label, "regions": R,
                         "linear_pieces": best.linear_pieces, "partition_s": best.partition_seconds,
                         "total_s": best.seconds, "render_s": render})
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"torch": torch.__version__, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
