"""One prepared GPU check: CUDA tests, then every benchmark with CUDA rows, into one results file.

    python benchmarks/gpu_check.py [--out DIR] [--quick]

Meant for a machine with a CUDA GPU and no network: it installs nothing and needs no installation (the
steps get the repository on PYTHONPATH, and a temporary ``regioncount_cli`` link to ``cli/`` when the
project is not installed).  Each step runs in a subprocess with its own time budget, so one hang or crash cannot
take the rest down; a step over budget is killed and reported.  Writes ``DIR/gpu-check-<card>.md`` (the
tables and the test output) and ``DIR/gpu-check-<card>.json`` (card, torch/Triton versions, every
figure).  Without a GPU the CUDA parts skip and the script still runs end to end (a dry run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV: dict = dict(os.environ)


def machine() -> dict:
    import torch

    info = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(), "python": sys.version.split()[0]}
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(card=torch.cuda.get_device_name(0), sms=props.multi_processor_count,
                    memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    else:
        info["card"] = None
    info["cpu_threads"] = torch.get_num_threads()
    info["cpu"] = subprocess.run([sys.executable, str(ROOT / "benchmarks/bench_exact1d.py"), "--help"],
                                 capture_output=True, text=True).returncode == 0 and _cpu_name()
    return info


def _cpu_name() -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_exact1d import cpu_name

    return cpu_name()


def importable_env() -> dict:
    """The environment for the steps: the repository on PYTHONPATH and, when the project is not installed,
    a temporary ``regioncount_cli`` link to ``cli/`` (the package name the tests import)."""
    paths = [str(ROOT)]
    probe = subprocess.run([sys.executable, "-c", "import regioncount_cli"], capture_output=True, cwd=ROOT)
    if probe.returncode != 0:
        link_dir = Path(tempfile.mkdtemp())
        (link_dir / "regioncount_cli").symlink_to(ROOT / "cli", target_is_directory=True)
        paths.append(str(link_dir))
    old = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(paths + ([old] if old else [])))


def run_step(name: str, argv: list[str], budget: float, log: list[str]) -> dict:
    """Run one step with a wall-clock budget; returns its status, seconds and output."""
    start = time.perf_counter()
    env = ENV
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=budget, cwd=ROOT, env=env)
        status, stdout, stderr = ("ok" if out.returncode == 0 else f"exit {out.returncode}"), out.stdout, out.stderr
    except subprocess.TimeoutExpired as expired:
        status = f"over budget ({budget:.0f} s), killed"
        stdout = (expired.stdout or b"").decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        stderr = (expired.stderr or b"").decode() if isinstance(expired.stderr, bytes) else (expired.stderr or "")
    seconds = time.perf_counter() - start
    print(f"== {name}: {status} in {seconds:.1f} s", flush=True)
    print(stdout[-6000:], flush=True)
    if status != "ok":
        print(stderr[-4000:], flush=True)
    log.append(f"## {name}\n\n{status}, {seconds:.1f} s (budget {budget:.0f} s)\n\n```\n{stdout[-20000:]}\n"
               + (f"--- stderr ---\n{stderr[-4000:]}\n" if status != "ok" else "") + "```\n")
    return {"status": status, "seconds": seconds}


def fused_sweep() -> None:
    """Time the Theorem 1 DEQ count (m = 26, 28, 30) for several fused depths r (0 = plain torch)."""
    import torch

    from regioncount import count_segment, theorem1_deq
    from regioncount.line.fused_deq import fused_available

    if not fused_available(torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")):
        print("fused kernel unavailable here (no CUDA or no Triton): skipped")
        return
    print("| m | fused levels r | seconds | regions/s |")
    print("|---:|---:|---:|---:|")
    rows = []
    for m in (26, 28, 30):
        for r in (0, 2, 3, 4, 5, 6):
            best = float("inf")
            for _ in range(2):
                result = count_segment(theorem1_deq(m), interval=(0, 1), linear_pieces=False, device="cuda",
                                       fused=r, known_regions=2**m, max_regions=None)
                assert result.activation_regions == 2**m
                best = min(best, result.seconds)
            rows.append({"m": m, "fused_levels": r, "seconds": best, "regions_per_s": 2**m / best})
            print(f"| {m} | {r} | {best:.4f} | {2**m / best:.3g} |", flush=True)
    print("JSON " + json.dumps(rows))


def profile() -> None:
    """Top CUDA kernels (torch profiler) of the sampled pipeline, an FFN count and a plane partition."""
    import math

    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    if not torch.cuda.is_available():
        print("no CUDA: skipped")
        return
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_exact1d import he_ffn
    from bench_plane import he_ffn as he_ffn_2d
    from bench_sampled import net_2x64x3

    from regioncount import count_segment, theorem1_deq
    from regioncount.partition.plane2d import partition_plane
    from regioncount.sampling.sampled import sample_regions

    jobs = {
        "sampled float32 2^24": lambda: sample_regions(net_2x64x3(), -1, 1, samples=2**24, device="cuda",
                                                       dtype="float32"),
        "sampled float64 2^24": lambda: sample_regions(net_2x64x3(), -1, 1, samples=2**24, device="cuda"),
        "exact1d FFN 1 -> 1024 x 16": lambda: count_segment(he_ffn(1024, 16), interval=(-3, 3), device="cuda"),
        "exact1d DEQ m = 26 + pieces": lambda: count_segment(theorem1_deq(26), interval=(0, 1), device="cuda",
                                                             max_regions=None),
        "plane 2 -> 256 x 4": lambda: partition_plane(he_ffn_2d(256, 4), [-1, -1], [1, 1], device="cuda"),
    }
    for name, job in jobs.items():
        job()  # warm-up (compilation, allocator)
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            job()
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
        print(f"### {name}: {wall:.3f} s wall under the profiler")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=60))
    del math


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--quick", action="store_true", help="small sizes (a dry run of the script itself)")
    parser.add_argument("--deadline", type=float, default=460.0,
                        help="seconds for all steps together; each step's budget is cut to what is left")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--skip", default="",
                        help="steps to skip, comma list (tests,sweep,exact1d,sampled,plane,box,general,deq-partitions,profile)")
    args = parser.parse_args()
    if args.step == "fused-sweep":
        fused_sweep()
        return
    if args.step == "profile":
        profile()
        return
    global ENV
    ENV = importable_env()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = machine()
    print(json.dumps(info), flush=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", info["card"] or "no-gpu").strip("-").lower()
    py = sys.executable
    log: list[str] = []
    results: dict = {"machine": info, "steps": {}}
    tmp = Path(tempfile.mkdtemp())
    quick = args.quick
    skip = set(filter(None, args.skip.split(",")))
    steps = [
        ("tests", [py, "-m", "pytest", "tests/test_cuda.py", "-q", "-rfE", "--maxfail=25", "-p", "no:cacheprovider"],
         240, None),
        ("sweep", [py, __file__, "--step", "fused-sweep"], 90, None),
        ("exact1d", [py, "benchmarks/bench_exact1d.py", "--widths", "12:16" if quick else "16:30", "--repeats",
                     "1" if quick else "3", "--cpu-max-width", "16" if quick else "22",
                     "--ffn", "ffn512x8" if quick else "ffn512x8,ffn1024x16", "--json", str(tmp / "exact1d.json")],
         240, tmp / "exact1d.json"),
        ("sampled", [py, "benchmarks/bench_sampled.py", "--samples", str(2**16 if quick else 2**24), "--repeats",
                     "1" if quick else "3", "--dtypes", "float64,float32", "--json", str(tmp / "sampled.json")],
         120, tmp / "sampled.json"),
        ("plane", [py, "benchmarks/bench_plane.py", "--repeats", "1" if quick else "2", "--json", str(tmp / "plane.json")],
         150, tmp / "plane.json"),
        ("box", [py, "benchmarks/bench_box.py", "--devices", "cpu,cuda", "--repeats", "1" if quick else "2",
                 "--reference-max", "0"], 120, None),
        ("general", [py, "benchmarks/bench_general_deq.py", "--devices", "cpu,cuda", "--repeats",
                     "1" if quick else "3"], 90, None),
        ("deq-partitions", [py, "benchmarks/bench_deq_partitions.py", "--devices", "cpu,cuda", "--repeats",
                            "1" if quick else "2"], 90, None),
        ("profile", [py, __file__, "--step", "profile"], 90, None),
    ]
    t0 = time.perf_counter()
    for name, argv, budget, json_file in steps:
        if name in skip:
            continue
        left = args.deadline - (time.perf_counter() - t0)
        if left < 10:
            results["steps"][name] = {"status": "not run: deadline reached"}
            log.append(f"## {name}\n\nnot run: the deadline of {args.deadline:.0f} s was reached\n")
            continue
        step = run_step(name, argv, min(budget, left), log)
        if json_file is not None and json_file.exists():
            step["rows"] = json.loads(json_file.read_text())["rows"]
        results["steps"][name] = step
        if name == "tests":
            tail = log[-1].split("```")[1] if "```" in log[-1] else ""
            summary = [line for line in tail.splitlines() if re.search(r"\d+ (passed|failed|skipped)", line)]
            step["summary"] = summary[-1].strip() if summary else None
        if name == "sweep":
            for line in log[-1].splitlines():
                if line.startswith("JSON "):
                    step["rows"] = json.loads(line[5:])
    header = (f"# GPU check: {info['card'] or 'no GPU (dry run)'}\n\n"
              f"torch {info['torch']}, Triton {info['triton']}, CUDA {info.get('cuda')}, Python {info['python']}, "
              f"CPU {info['cpu']} ({info['cpu_threads']} threads), {time.strftime('%Y-%m-%d')}\n\n")
    (out_dir / f"gpu-check-{slug}.md").write_text(header + "\n".join(log))
    (out_dir / f"gpu-check-{slug}.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {out_dir}/gpu-check-{slug}.md and .json")


if __name__ == "__main__":
    main()
