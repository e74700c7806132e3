"""Scale-out benchmark: counts split over Dask workers against the same counts in one process.

    python benchmarks/bench_scale.py [--width 28] [--samples 16777216] [--workers 2] [--repeats 3] [--json FILE]

Everything is single-threaded (one torch thread in this process; a LocalCluster of single-threaded worker
processes).  Rows, best of ``--repeats``:

* the Theorem 1 DEQ of width m on [0, 1], count only: the count's seconds (``SegmentCount.seconds``: pilot,
  cut certification, tasks and merge) and the whole command in a fresh process (``regioncount deq --width m
  --no-linear [--workers N]``: imports and, for Dask, the cluster's start included);
* a sampled count of a 2 -> 64 x 3 He-init net on [-1, 1]^2 (``--samples`` points), the same two timings;
* the scheduling overhead per task (64 tasks that each count one region) and the task length at which it
  is 5% of the task.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench_exact1d import cpu_name  # benchmarks run as scripts: their folder is on the path


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


def sampled_net_file() -> str:
    import math
    import tempfile

    import torch

    from regioncount import FFN, save_model

    gen = torch.Generator().manual_seed(0)
    dims = [2, 64, 64, 64, 1]
    net = FFN([torch.randn(o, i, generator=gen, dtype=torch.float64) * math.sqrt(2 / i) for i, o in zip(dims, dims[1:])],
              [torch.randn(o, generator=gen, dtype=torch.float64) * 0.1 for o in dims[1:]], name="he-2x64x3")
    path = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    save_model(net, path)
    return path


def sampled_seconds(path: str, samples: int, workers: int | None, repeats: int) -> tuple[float, int]:
    import torch

    from regioncount import load_model, open_engine, sample_regions
    from regioncount.distributed import sample_regions_split

    torch.set_num_threads(1)
    model = load_model(path)
    best, distinct = float("inf"), 0
    if workers is None:
        for _ in range(repeats):
            result = sample_regions(model, -1, 1, samples=samples, device="cpu")
            best, distinct = min(best, result.seconds), result.distinct_patterns
        return best, distinct
    with open_engine(workers=workers) as engine:
        for _ in range(repeats):
            result = sample_regions_split(model, -1, 1, samples=samples, tasks=2 * workers, engine=engine)
            best, distinct = min(best, result.seconds), result.distinct_patterns
    return best, distinct


def overhead_per_task(workers: int, tasks: int = 64) -> float:
    """Seconds per task of Dask scheduling, transfer and merging: 64 one-region counts on the cluster minus the
    same counts in this process, per task."""
    import dataclasses

    from regioncount import open_engine, theorem1_deq
    from regioncount.distributed import count_part, model_payload
    from regioncount.geometry import resolve_segment

    model = theorem1_deq(8)
    seg = resolve_segment(model, (0.0, 1.0))
    payload = model_payload(model)
    args = [(payload, dataclasses.asdict(dataclasses.replace(seg, t_low=k / 256 + 1e-4, t_high=k / 256 + 2e-4)),
             {"device": "cpu", "linear_pieces": False}) for k in range(tasks)]
    from regioncount.distributed import Engine

    start = time.perf_counter()
    Engine().map(count_part, args)
    local = time.perf_counter() - start
    with open_engine(workers=workers) as engine:
        engine.map(count_part, args)  # warm: the workers' first task
        start = time.perf_counter()
        engine.map(count_part, args)
        remote = time.perf_counter() - start
    return max(remote * workers - local, 0.0) / tasks


def command_seconds(width: int, workers: int | None, repeats: int, sampled: str | None = None,
                    samples: int = 0) -> float:
    args = [sys.executable, "-m", "regioncount_cli.main", "deq", "--width", str(width), "--no-linear", "--json",
            "--device", "cpu"]
    if sampled is not None:
        args = [sys.executable, "-m", "regioncount_cli.main", "count", sampled, "--box", "-1", "1", "--samples",
                str(samples), "--json", "--device", "cpu"]
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
    parser.add_argument("--samples", type=int, default=2**24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", dest="json_file")
    args = parser.parse_args()
    rows = []
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; every process single-threaded\n")
    print("| count | run | result | count (best) | whole command (best) |")
    print("|---|---|---:|---:|---:|")
    net = sampled_net_file()
    for what in ("deq", "sampled"):
        for workers in (None, args.workers):
            if what == "deq":
                seconds, result = count_seconds(args.width, workers, args.repeats)
                whole = command_seconds(args.width, workers, args.repeats)
                label, shown = f"Theorem 1 DEQ m = {args.width}, count only", f"{result:,} regions"
            else:
                seconds, result = sampled_seconds(net, args.samples, workers, args.repeats)
                whole = command_seconds(0, workers, args.repeats, sampled=net, samples=args.samples)
                label, shown = f"sampled 2 -> 64 x 3, {args.samples:,} points", f"{result:,} patterns"
            name = "in-process" if workers is None else f"dask, {workers} workers"
            rows.append({"count": label, "run": name, "result": result, "count_seconds": seconds,
                         "command_seconds": whole})
            print(f"| {label} | {name} | {shown} | {seconds:.2f} s | {whole:.2f} s |")
    for k in (0, 2):
        base, split = rows[k], rows[k + 1]
        print(f"\n{base['count']}: speed-up {base['count_seconds'] / split['count_seconds']:.2f}x (count), "
              f"{base['command_seconds'] / split['command_seconds']:.2f}x (whole command)")
    per_task = overhead_per_task(args.workers)
    print(f"\nscheduling overhead: {per_task * 1e3:.1f} ms per task; it is 5% of tasks longer than "
          f"{per_task * 20:.2f} s")
    rows.append({"overhead_seconds_per_task": per_task})
    if args.json_file:
        with open(args.json_file, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
