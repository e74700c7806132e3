"""Scale-out benchmark: an exact 1-D count split over Dask workers against the same count in one process.

    python benchmarks/bench_scale.py [--width 28] [--workers 2] [--repeats 3] [--json FILE]

Both sides run the Theorem 1 DEQ of width m on [0, 1], count only, single-threaded (one torch thread in this
process; a LocalCluster of single-threaded worker processes).  Reported per side, best of ``--repeats``:
the count's seconds (``SegmentCount.seconds``: pilot, cut certification, tasks and merge for the split
count) and the whole command's wall time in a fresh process (``regioncount deq --width m --no-linear
[--workers N]``: imports and, for Dask, the cluster's start included).  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def count_seconds(width: int, workers: int | None, repeats: int) -> tuple[float, int]:
    import torch

    from regioncount import count_segment, count_segment_split, open_engine, theorem1_deq

    torch.set_num_threads(1)  # this script owns its process
    model = theorem1_deq(width)
    best, regions = float("inf"), 0
    if workers is None:
        for _ in range(repeats):
            result = count_segment(model, interval=(0, 1), linear_pieces=False, device="cpu",
                                   known_regions=2**width)
            best, regions = min(best, result.seconds), result.activation_regions
        return best, regions
    with open_engine(workers=workers) as engine:
        for _ in range(repeats):
            result = count_segment_split(model, interval=(0, 1), tasks=2 * workers, engine=engine,
                                         linear_pieces=False, device="cpu", known_regions=2**width)
            best, regions = min(best, result.seconds), result.activation_regions
    return best, regions


def command_seconds(width: int, workers: int | None, repeats: int) -> float:
    args = [sys.executable, "-m", "regioncount_cli.main", "deq", "--width", str(width), "--no-linear", "--json",
            "--device", "cpu"]
    if workers is not None:
        args += ["--workers", str(workers)]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, env=os.environ | {"REGIONCOUNT_THREADS": "1"})
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=28)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", dest="json_file")
    args = parser.parse_args()
    rows = []
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; Theorem 1 DEQ m = {args.width}, count only\n")
    print("| run | regions | count (best) | whole command (best) |")
    print("|---|---:|---:|---:|")
    for workers in (None, args.workers):
        seconds, regions = count_seconds(args.width, workers, args.repeats)
        whole = command_seconds(args.width, workers, args.repeats)
        name = "in-process, 1 thread" if workers is None else f"dask, {workers} single-threaded workers"
        rows.append({"run": name, "regions": regions, "count_seconds": seconds, "command_seconds": whole})
        print(f"| {name} | {regions:,} | {seconds:.2f} s | {whole:.2f} s |")
    base, split = rows
    print(f"\nspeed-up: count {base['count_seconds'] / split['count_seconds']:.2f}x, "
          f"whole command {base['command_seconds'] / split['command_seconds']:.2f}x")
    if args.json_file:
        with open(args.json_file, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
