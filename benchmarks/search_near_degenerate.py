"""A seeded search for wrong "exact" labels on near-parallel and near-concurrent arrangements.

    python benchmarks/search_near_degenerate.py [--nets 10000] [--first 0] [--all-space-every 3]

Each net is an arrangement of ``tests/arrangements.py`` (2-D or 3-D, integer normals of 20, 40 or 53 bits,
angles down to 2^-50, misses down to 2^-62), counted as a 2-layer FFN and as a triangular DEQ: in the box
[-1, 1]^d (``partition_box``), in the plane for d = 2 (``partition_plane``), and every
``--all-space-every``-th FFN in all of R^d (``count_all_space``).  Every count labelled exact is compared
with the exact Zaslavsky reference.  Prints a markdown table of counts, wrong labels, approximate labels
and time per kind of count.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict

from bench_common import machine_line, use_test_helpers

from regioncount import count_all_space, partition_box
from regioncount.partition.plane2d import partition_plane

use_test_helpers()
from arrangements import near_degenerate, reference_counts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", type=int, default=10_000)
    parser.add_argument("--first", type=int, default=0, help="first seed")
    parser.add_argument("--all-space-every", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])  # counts, wrong, approximate, seconds
    wrong_cases = []
    for seed in range(args.first, args.first + args.nets):
        rng = random.Random(seed)
        d = (2, 3)[seed % 2]
        bits = rng.choice((20, 40, 53))
        arr = near_degenerate(rng, d, bits)
        ref = reference_counts(arr)
        for kind, model in (("FFN", arr.ffn()), ("triangular DEQ", arr.deq())):
            low, high = (arr.low,) * d, (arr.high,) * d
            jobs = [("box", lambda m=model, lo=low, hi=high: partition_box(m, lo, hi, device="cpu", chebyshev=False),
                     ref.in_box)]
            if d == 2:
                jobs.append(("plane", lambda m=model, lo=low, hi=high: partition_plane(m, lo, hi, device="cpu"),
                             ref.in_box))
            if kind == "FFN" and seed % args.all_space_every == 0:
                jobs.append(("all of R^d", lambda m=model: count_all_space(m, device="cpu"), ref.all_space))
            for where, run, truth in jobs:
                key = f"{d}-D {kind}, {where}, {bits}-bit"
                start = time.perf_counter()
                result = run()
                row = rows[key]
                row[3] += time.perf_counter() - start
                row[0] += 1
                if result.method != "exact":
                    row[2] += 1
                elif result.activation_regions != truth:
                    row[1] += 1
                    wrong_cases.append((seed, arr.label, key, result.activation_regions, truth))
    print(machine_line())
    print(f"\nseeds {args.first} .. {args.first + args.nets - 1}\n")
    print("| count | nets | wrong \"exact\" | approximate | mean time |")
    print("|---|---:|---:|---:|---:|")
    total = [0, 0, 0]
    for key in sorted(rows):
        n, wrong, approx, seconds = rows[key]
        total = [total[0] + n, total[1] + wrong, total[2] + approx]
        print(f"| {key} | {n:,} | {wrong} | {approx} ({approx / n:.1%}) | {seconds / n * 1e3:.1f} ms |")
    print(f"| all | {total[0]:,} | {total[1]} | {total[2]} ({total[2] / max(total[0], 1):.1%}) | |")
    for case in wrong_cases:
        print("WRONG", *case)


if __name__ == "__main__":
    main()
