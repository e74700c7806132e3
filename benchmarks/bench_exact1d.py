"""Benchmark of the exact 1-D enumerator: regions/s for the Theorem 1 DEQ and a He-initialized FFN.

    python benchmarks/bench_exact1d.py [--widths 12:26] [--devices auto] [--repeats 3]

Every case runs in a fresh subprocess (so its peak memory is its own) and reports the best of
``--repeats`` timings of the count itself (``SegmentCount.seconds``: model built, kernels synchronized),
counting only (``regions``) and with linear pieces (``+pieces``).  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys


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


def worker(spec: dict) -> dict:
    import torch

    from regioncount import count_segment, theorem1_deq

    if spec["case"] == "deq":
        model, interval, known = theorem1_deq(spec["m"]), (0.0, 1.0), 2 ** spec["m"]
    else:
        model, interval, known = he_ffn(), (-3.0, 3.0), None
    best = None
    for _ in range(spec["repeats"]):
        result = count_segment(model, interval=interval, linear_pieces=spec["linear"], device=spec["device"],
                               known_regions=known, max_regions=None)
        best = result if best is None or result.seconds < best.seconds else best
    if spec["case"] == "deq":
        assert best.activation_regions == known
    peak_gpu = torch.cuda.max_memory_allocated() if best.device == "cuda" else None
    return {"regions": best.activation_regions, "pieces": best.linear_pieces, "seconds": best.seconds,
            "device": best.device, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "peak_gpu": peak_gpu,
            "gpu": torch.cuda.get_device_name() if best.device == "cuda" else None}


def run_case(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="12:26", help="DEQ widths, A:B inclusive, step 2")
    parser.add_argument("--devices", default="auto", help="comma list of cpu,cuda or auto (all available)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-ffn", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.devices == "auto" \
        else args.devices.split(",")
    lo, hi = (int(v) for v in args.widths.split(":"))
    cases = [("deq", m) for m in range(lo, hi + 1, 2)] + ([] if args.no_ffn else [("ffn", None)])
    print(f"CPU: {cpu_name()} ({torch.get_num_threads()} threads), torch {torch.__version__}")
    print()
    print("| case | device | regions | count only | regions/s | + linear pieces | regions/s | peak memory |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for device in devices:
        for case, m in cases:
            rows = {}
            for linear in (False, True):
                rows[linear] = run_case({"case": case, "m": m, "linear": linear, "device": device,
                                         "repeats": args.repeats})
            name = f"Theorem 1 DEQ m = {m}" if case == "deq" else "He-init FFN 1 -> 512 x 8 on [-3, 3]"
            a, b = rows[False], rows[True]
            peak = b["peak_gpu"] if b["peak_gpu"] is not None else b["peak_rss"]
            label = b["gpu"] or "cpu"
            print(f"| {name} | {label} | {a['regions']:,} | {a['seconds'] * 1e3:.1f} ms | "
                  f"{a['regions'] / a['seconds']:.3g} | {b['seconds'] * 1e3:.1f} ms | "
                  f"{b['regions'] / b['seconds']:.3g} | {peak / 2**20:.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()
