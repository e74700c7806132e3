"""Benchmark of exact 2-D and d-D partitions of DEQs: the pattern refinement with its exact second opinions.

    python benchmarks/bench_deq_partitions.py [--repeats 3] [--devices cpu,cuda] [--json FILE]

Cases (``tests/random_nets.gaussian_deq``): random DEQs with a general W (||W||_2 = 0.85, U ~ 2 N(0, 1),
b ~ N(0, 1/4)) of width 8, 16 and 32 on [-3, 3]^2, a random triangular DEQ of width 16, and the Theorem 1
DEQ with 2-D input (m = 8, 10) on its domain.  Times are the result's ``seconds`` (partition, adjacency, linear pieces; best of
``--repeats``); the method column says whether every zero test inside the tolerance was confirmed exactly
and how many needed rational arithmetic.  Prints a markdown table.
"""

from __future__ import annotations

import json


def main() -> None:
    from bench_common import arguments, best_run, devices, machine_line, use_test_helpers

    args = arguments(__doc__)

    from regioncount import partition_box, theorem1_deq
    from regioncount.partition.plane2d import partition_plane

    use_test_helpers()
    from random_nets import gaussian_deq

    box = ([-3.0, -3.0], [3.0, 3.0])
    cases = [(f"general W, m = {m}, [-3, 3]^2", gaussian_deq(m, 1, False), box) for m in (8, 16, 32)]
    cases.append(("triangular W, m = 16, [-3, 3]^2", gaussian_deq(16, 1, True), box))
    cases += [(f"Theorem 1 DEQ, 2-D input, m = {m}", theorem1_deq(m, input_dim=2), (None, None)) for m in (8, 10)]
    print(machine_line())
    print()
    print("| case | device | engine | regions | pieces | seconds | method (rational decisions) |")
    print("|---|---|---|---:|---:|---:|---|")
    rows = []
    for device in devices(args.devices):
        for name, model, (low, high) in cases:
            for engine, run in (("plane", partition_plane), ("box", partition_box)):
                best = best_run(args.repeats, run, model, low, high, device=device)
                row = {"case": name, "device": device, "engine": engine, "regions": best.activation_regions,
                       "pieces": best.linear_pieces, "seconds": best.seconds, "method": best.method,
                       "exact_decisions": getattr(best, "exact_decisions", 0)}
                rows.append(row)
                print(f"| {name} | {device} | {engine} | {row['regions']:,} | {row['pieces']:,} | "
                      f"{row['seconds'] * 1e3:.1f} ms | {row['method']} ({row['exact_decisions']}) |", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
