"""Benchmark of the exact 1-D enumerator: regions/s for the Theorem 1 DEQ and He-initialized FFNs.

    python benchmarks/bench_exact1d.py [--widths 12:26] [--devices auto] [--repeats 3]
                                       [--cpu-max-width 26] [--json FILE]

CPU cases run each in a fresh subprocess (so its peak RSS is its own); CUDA cases run in one subprocess
with the peak GPU memory reset per case.  Each row is the best of ``--repeats`` timings of the count
itself (``SegmentCount.seconds``: model built, kernels synchronized), counting only (``regions``) and
with linear pieces (``+pieces``).  On CUDA the triangular-DEQ count is timed twice: with the fused
Triton kernel for the last levels (the default when Triton is installed) and with plain torch
(``fused=0``).  Prints a markdown table; ``--json`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys

FFN_CASES = {"ffn512x8": (512, 8), "ffn1024x16": (1024, 16)}


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def he_ffn(width: int = 512, depth: int = 8, seed: int = 0):
    """1 -> width x depth -> 1, weights N(0, 2 / fan_in), biases N(0, 0.1^2)."""
    import torch

    from regioncount import FFN

    gen = torch.Generator().manual_seed(seed)
    dims = [1] + [width] * depth + [1]
    weights = [torch.randn(o, i, generator=gen, dtype=torch.float64) * math.sqrt(2 / i)
               for i, o in zip(dims, dims[1:])]
    biases = [torch.randn(o, generator=gen, dtype=torch.float64) * 0.1 for o in dims[1:]]
    return FFN(weights, biases, name=f"he-ffn-1x{width}x{depth}")


def case_name(spec: dict) -> str:
    if spec["case"] == "deq":
        return f"Theorem 1 DEQ m = {spec['m']}"
    width, depth = FFN_CASES[spec["case"]]
    return f"He-init FFN 1 -> {width} x {depth} on [-3, 3]"


def time_case(spec: dict) -> dict:
    """Best-of-repeats timings of one case, count-only and with linear pieces."""
    import torch

    from regioncount import count_segment, theorem1_deq

    if spec["case"] == "deq":
        model, interval, known = theorem1_deq(spec["m"]), (0.0, 1.0), 2 ** spec["m"]
    else:
        model, interval, known = he_ffn(*FFN_CASES[spec["case"]]), (-3.0, 3.0), None
    cuda = spec["device"] == "cuda"
    row = {"case": case_name(spec), "device": spec["device"], "variant": spec.get("variant", "default")}
    fused = 0 if spec.get("variant") == "torch" else None
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for linear in (False, True):
        if linear and spec.get("variant") == "torch":
            continue  # linear pieces never use the fused kernel: the default row already is plain torch
        best = None
        for _ in range(spec["repeats"]):
            result = count_segment(model, interval=interval, linear_pieces=linear, device=spec["device"],
                                   known_regions=known, max_regions=None, fused=fused)
            best = result if best is None or result.seconds < best.seconds else best
        if known is not None:
            assert best.activation_regions == known, (best.activation_regions, known)
        key = "pieces" if linear else "count"
        row[key] = {"regions": best.activation_regions, "pieces": best.linear_pieces, "seconds": best.seconds,
                    "regions_per_s": best.activation_regions / best.seconds, "method": best.method,
                    "split": "split products" in best.algorithm}
    row["peak_bytes"] = (torch.cuda.max_memory_allocated() if cuda
                         else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    row["card"] = torch.cuda.get_device_name() if cuda else f"{cpu_name()} ({torch.get_num_threads()} threads)"
    return row


def worker(specs: list[dict]) -> list[dict]:
    rows = []
    for spec in specs:
        try:
            rows.append(time_case(spec))
        except Exception as error:  # noqa: BLE001 - a failed case is reported as a row, the rest still run
            rows.append({"case": case_name(spec), "device": spec["device"], "variant": spec.get("variant", "default"),
                         "error": f"{type(error).__name__}: {error}"[:500]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def run_specs(specs: list[dict]) -> list[dict]:
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(specs)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise SystemExit(f"benchmark worker failed:\n{out.stderr[-3000:]}")
    return [json.loads(line) for line in out.stdout.strip().splitlines() if line.startswith("{")]


def format_row(row: dict) -> str:
    if "error" in row:
        return f"| {row['case']} ({row['variant']}) | {row['device']} | failed: {row['error'][:120]} | | | | | | |"
    a, b = row["count"], row.get("pieces")
    pieces = f"{b['seconds'] * 1e3:.1f} ms | {b['regions_per_s']:.3g}" if b else "— | —"
    label = row["card"] if row["device"] == "cuda" else "cpu"
    variant = {"default": "", "torch": " (plain torch)"}[row["variant"]]
    method = a.get("method", "?") + (" (split products)" if a.get("split") else "")
    return (f"| {row['case']}{variant} | {label} | {a['regions']:,} | {method} | {a['seconds'] * 1e3:.1f} ms | "
            f"{a['regions_per_s']:.3g} | {pieces} | {row['peak_bytes'] / 2**20:.0f} MiB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="12:26", help="DEQ widths, A:B inclusive, step 2")
    parser.add_argument("--devices", default="auto", help="comma list of cpu,cuda or auto (all available)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpu-max-width", type=int, default=26, help="largest DEQ width timed on the CPU")
    parser.add_argument("--ffn", default="ffn512x8", help="comma list of FFN cases (ffn512x8, ffn1024x16) or none")
    parser.add_argument("--json", dest="json_file", help="also write the rows to this JSON file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.devices == "auto" \
        else args.devices.split(",")
    lo, hi = (int(v) for v in args.widths.split(":"))
    ffns = [] if args.ffn == "none" else args.ffn.split(",")
    print(f"CPU: {cpu_name()} ({torch.get_num_threads()} threads), torch {torch.__version__}")
    print()
    print("| case | device | regions | method | count only | regions/s | + linear pieces | regions/s | peak memory |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    rows = []
    for device in devices:
        specs = []
        for m in range(lo, hi + 1, 2):
            if device == "cpu" and m > args.cpu_max_width:
                continue
            specs.append({"case": "deq", "m": m, "device": device, "repeats": args.repeats})
            if device == "cuda":
                specs.append({"case": "deq", "m": m, "device": device, "repeats": args.repeats, "variant": "torch"})
        specs += [{"case": name, "device": device, "repeats": args.repeats} for name in ffns]
        if device == "cuda":  # one process; peak memory is reset per case
            batches = [specs]
        else:
            batches = [[spec] for spec in specs]
        for batch in batches:
            for row in run_specs(batch):
                rows.append(row)
                print(format_row(row), flush=True)
    if args.json_file:
        with open(args.json_file, "w") as handle:
            json.dump({"torch": torch.__version__, "cpu": cpu_name(), "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
