"""Predicted against measured peak memory, on a grid of nets and paths (the cost model's check).

    python benchmarks/bench_memory.py [--json FILE] [--tolerance 1.5] [--runs 3]

Each case runs in a fresh subprocess: it imports the package, builds the model and runs a tiny warm-up of
the same path (so that libraries, thread pools and allocator arenas are in the baseline), records the
resident set size, then runs the case and reads the peak (``ru_maxrss``).  ``measured`` is peak minus
baseline; ``predicted`` is :mod:`regioncount.line.cost`'s estimate for the same call, which every path checks
against its memory limit before it starts (a 2-D partition: polygons x the per-polygon bytes, the rate
it checks as it grows).  Each case runs ``--runs`` times in fresh processes and the median measured peak
is reported (the allocator moves single runs by up to 30%).  Prints a markdown table; exits non-zero
when a ratio falls outside [1 / tolerance, tolerance] for a case whose measured growth is above the noise
floor (32 MiB).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys

CASES = [
    {"path": "exact", "net": "ffn", "dims": [1, 20000, 1], "linear": True},
    {"path": "exact", "net": "ffn", "dims": [1, 100000, 1], "linear": True},
    {"path": "exact", "net": "ffn", "dims": [1, 100000, 1], "linear": False},
    {"path": "exact", "net": "ffn", "dims": [1, 4096, 4096, 1], "linear": True},
    {"path": "exact", "net": "ffn", "dims": [1, 512, 512, 512, 512, 512, 512, 512, 512, 1], "linear": True},
    {"path": "exact", "net": "deq", "m": 22, "linear": True, "keep": False},
    {"path": "exact", "net": "deq", "m": 22, "linear": False, "keep": True},
    {"path": "exact", "net": "deq", "m": 23, "linear": True, "keep": True},
    {"path": "sampled", "net": "ffn", "dims": [2, 256, 256, 1], "samples": 2_000_000},
    {"path": "sampled", "net": "ffn", "dims": [8, 2048, 2048, 1], "samples": 400_000},
    {"path": "sampled", "net": "deq", "m": 18, "samples": 2_000_000},
    {"path": "plane", "net": "ffn", "dims": [2, 64, 64, 64, 1], "extent": 4.0},
    {"path": "plane", "net": "ffn", "dims": [2, 256, 256, 1], "extent": 3.0},
]

NOISE_FLOOR = 32 * 2**20


def _model(case: dict):
    import math

    import torch

    from regioncount import FFN, theorem1_deq

    if case["net"] == "deq":
        return theorem1_deq(case["m"], input_dim=2 if case["path"] == "sampled" else 1)
    gen = torch.Generator().manual_seed(0)
    dims = case["dims"]
    weights = [torch.randn(o, i, generator=gen, dtype=torch.float64) * math.sqrt(2 / i) for i, o in zip(dims, dims[1:])]
    biases = [torch.randn(o, generator=gen, dtype=torch.float64) * 0.1 for o in dims[1:]]
    return FFN(weights, biases)


def _rss_kib() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_case(case: dict) -> dict:
    """In a subprocess: baseline RSS after a warm-up, then the case's peak RSS and the prediction."""
    import resource

    from regioncount import count_segment, sample_regions
    from regioncount.line.cost import estimate_exact, estimate_sampled

    model = _model(case)
    if case["path"] == "exact":
        interval = (0.0, 1.0) if case["net"] == "deq" else (-3.0, 3.0)
        count_segment(model, interval=(interval[0], interval[0] + 1e-6), linear_pieces=case["linear"],
                      keep_breakpoints=case.get("keep", False), device="cpu", max_regions=None)
        # the region count the model is given: 2^m for the DEQ, the pilot estimate for an FFN
        if case["net"] == "deq":
            expected = 2 ** case["m"]
        else:
            import torch

            from regioncount.core.geometry import resolve_segment
            from regioncount.line.cost import estimate_regions
            from regioncount.line.kernels import build_kernel

            seg = resolve_segment(model, interval)
            kernel = build_kernel(model, seg, torch.device("cpu"), 0)
            expected = estimate_regions(kernel, seg, torch.device("cpu"), 2**16, None)["regions"]
        predicted = estimate_exact(model, linear_pieces=case["linear"], keep_breakpoints=case.get("keep", False),
                                   regions=expected, device="cpu").bytes
        baseline = _rss_kib()
        result = count_segment(model, interval=interval, linear_pieces=case["linear"],
                               keep_breakpoints=case.get("keep", False), device="cpu", max_regions=None,
                               known_regions=2 ** case["m"] if case["net"] == "deq" else None)
        regions = result.activation_regions
    elif case["path"] == "plane":
        from regioncount.line.cost import plane_polygon_bytes
        from regioncount.partition.plane2d import partition_plane

        e = case["extent"]
        partition_plane(model, [-1e-3, -1e-3], [1e-3, 1e-3], device="cpu")
        baseline = _rss_kib()
        result = partition_plane(model, [-e, -e], [e, e], device="cpu")
        regions = result.activation_regions
        predicted = result.polygons.count * plane_polygon_bytes(model)
    else:
        box = (-1.0, 1.0)
        sample_regions(model, *box, samples=1024, seed=1, device="cpu")
        baseline = _rss_kib()
        result = sample_regions(model, *box, samples=case["samples"], seed=0, device="cpu")
        regions = result.distinct_patterns
        # the constants are checked for the number of distinct patterns the run found (the run itself watches
        # its distinct set against the limit whenever the worst case does not fit)
        predicted = estimate_sampled(model, samples=case["samples"], distinct=regions, device="cpu").bytes
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"measured": max(0, peak - baseline) * 1024, "predicted": predicted, "regions": regions}


def describe(case: dict) -> str:
    net = f"Theorem 1 DEQ m = {case['m']}" if case["net"] == "deq" else " -> ".join(map(str, case["dims"]))
    if case["path"] == "exact":
        extras = ["+pieces" if case["linear"] else "count only"] + (["kept breakpoints"] if case.get("keep") else [])
        return f"exact 1-D, {net}, {', '.join(extras)}"
    if case["path"] == "plane":
        return f"2-D partition, {net} on [-{case['extent']:g}, {case['extent']:g}]^2"
    return f"sampled, {net}, {case['samples']:,} points"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", dest="json_file")
    parser.add_argument("--tolerance", type=float, default=1.5)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per case; the median is reported")
    parser.add_argument("--only", default="", help="run only the cases whose description contains this text")
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(run_case(CASES[args.case])))
        return
    rows, bad = [], 0
    print(f"CPU: {platform.processor() or platform.machine()}, one torch thread per process\n")
    print("| case | regions | predicted | measured | measured / predicted |")
    print("|---|---:|---:|---:|---:|")
    for index, case in enumerate(CASES):
        if args.only not in describe(case):
            continue
        runs = []
        for _ in range(max(1, args.runs)):
            out = subprocess.run([sys.executable, __file__, "--case", str(index)], capture_output=True, text=True)
            if out.returncode != 0:
                break
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        if out.returncode != 0:
            print(f"| {describe(case)} | failed: {out.stderr.strip().splitlines()[-1:]} | | | |")
            bad += 1
            continue
        runs.sort(key=lambda r: r["measured"])
        row = runs[len(runs) // 2] | {"case": describe(case), "runs": len(runs),
                                      "measured_runs": [r["measured"] for r in runs]}
        ratio = row["measured"] / row["predicted"] if row["predicted"] else float("inf")
        row["ratio"] = ratio
        checked = row["measured"] >= NOISE_FLOOR or row["predicted"] >= NOISE_FLOOR
        ok = not checked or 1 / args.tolerance <= ratio <= args.tolerance
        bad += not ok
        rows.append(row)
        print(f"| {row['case']} | {row['regions']:,} | {row['predicted'] / 2**20:,.0f} MiB | "
              f"{row['measured'] / 2**20:,.0f} MiB | {ratio:.2f}{'' if ok else ' (outside)'} |")
    if args.json_file:
        with open(args.json_file, "w") as handle:
            json.dump(rows, handle, indent=1)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
