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


def sampled_net_file() -> str:
    """A He-init 2 -> 64 x 3 FFN written to a temporary v1 JSON file."""
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


def interleaved_counts(width: int, net: str, samples: int, workers: int, repeats: int) -> dict[str, list[float]]:
    """Seconds of each count, in-process and split, alternating in one process (the machine's speed drifts
    by up to 1.5x between runs, so the two sides are measured side by side)."""
    import torch

    from regioncount import count_segment, count_segment_split, load_model, open_engine, sample_regions, theorem1_deq
    from regioncount.parallel.samples import sample_regions_split

    torch.set_num_threads(1)  # this script owns its process
    deq, ffn = theorem1_deq(width), load_model(net)
    times: dict[str, list[float]] = {"deq": [], "deq-split": [], "sampled": [], "sampled-split": []}
    with open_engine(workers=workers) as engine:
        count_segment_split(theorem1_deq(12), interval=(0, 1), tasks=2 * workers, engine=engine)  # warm
        for _ in range(repeats):
            times["deq"].append(count_segment(deq, interval=(0, 1), linear_pieces=False, device="cpu",
                                              known_regions=2**width).seconds)
            times["deq-split"].append(count_segment_split(deq, interval=(0, 1), tasks=2 * workers, engine=engine,
                                                          linear_pieces=False, known_regions=2**width).seconds)
            times["sampled"].append(sample_regions(ffn, -1, 1, samples=samples, device="cpu").seconds)
            times["sampled-split"].append(sample_regions_split(ffn, -1, 1, samples=samples, tasks=2 * workers,
                                                               engine=engine).seconds)
    return times


def overhead_per_task(workers: int, tasks: int = 64) -> float:
    """Seconds per task of Dask scheduling, transfer and merging: 64 one-region counts on the cluster minus the
    same counts in this process, per task."""
    import dataclasses

    from regioncount import open_engine, theorem1_deq
    from regioncount.core.geometry import resolve_segment
    from regioncount.parallel.payload import model_payload
    from regioncount.parallel.segments import count_part

    model = theorem1_deq(8)
    seg = resolve_segment(model, (0.0, 1.0))
    payload = model_payload(model)
    args = [(payload, dataclasses.asdict(dataclasses.replace(seg, t_low=k / 256 + 1e-4, t_high=k / 256 + 2e-4)),
             {"device": "cpu", "linear_pieces": False}) for k in range(tasks)]
    from regioncount.parallel.engine import Engine

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
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; every process single-threaded; best of {args.repeats}, "
          "the two sides of each count alternating\n")
    print("| count | run | count (best) | whole command (best) |")
    print("|---|---|---:|---:|")
    net = sampled_net_file()
    times = interleaved_counts(args.width, net, args.samples, args.workers, args.repeats)
    labels = {"deq": f"Theorem 1 DEQ m = {args.width}, count only",
              "sampled": f"sampled 2 -> 64 x 3, {args.samples:,} points"}
    for what in ("deq", "sampled"):
        for workers in (None, args.workers):
            key = what if workers is None else f"{what}-split"
            best = min(times[key])
            whole = command_seconds(args.width, workers, args.repeats,
                                    sampled=net if what == "sampled" else None, samples=args.samples)
            name = "in-process" if workers is None else f"dask, {workers} workers"
            rows.append({"count": labels[what], "run": name, "count_seconds": best, "all_seconds": times[key],
                         "command_seconds": whole})
            print(f"| {labels[what]} | {name} | {best:.2f} s | {whole:.2f} s |")
    for k in (0, 2):
        base, split = rows[k], rows[k + 1]
        ratios = sorted(a / b for a, b in zip(base["all_seconds"], split["all_seconds"]))
        print(f"\n{base['count']}: speed-up {base['count_seconds'] / split['count_seconds']:.2f}x (best against "
              f"best), {ratios[len(ratios) // 2]:.2f}x (median of the paired runs), "
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
