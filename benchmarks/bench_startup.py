"""Start-up benchmark: whole-process wall time of short commands (median of ``--repeats`` runs).

    python benchmarks/bench_startup.py [--repeats 7]

Commands that never count (``--help``, ``bound``, argument errors) should answer without importing torch
(target: under 0.5 s); the others pay torch's import (about 1.5 s on the 2-core CI machine) once.
Prints a markdown table, and whether each command imported torch.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [
    ["--help"],
    ["count", "--help"],
    ["bound", "--widths", "3,2"],
    ["bound", "--input-dim", "4", "--widths", "64,64,64"],
    ["count", "data/theorem1_deq_m4.json", "--samples", "0"],  # an argument error
    ["check", "data/theorem1_deq_m4.json"],
    ["deq", "--width", "12"],
]
PROBE = ("import sys, runpy; sys.argv = ['regioncount'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('regioncount', run_name='__main__')\n"
         "except SystemExit:\n    pass\n"
         "print('TORCH' if 'torch' in sys.modules else 'NOTORCH', file=sys.stderr)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print("| command | median wall time | imports torch |")
    print("|---|---:|---|")
    for command in COMMANDS:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "regioncount", *command], cwd=ROOT, capture_output=True)
            times.append(time.perf_counter() - start)
        probe = subprocess.run([sys.executable, "-c", PROBE, *command], cwd=ROOT, capture_output=True, text=True)
        torch_loaded = "yes" if probe.stderr.strip().endswith("TORCH") and "NOTORCH" not in probe.stderr else "no"
        print(f"| `regioncount {' '.join(command)}` | {statistics.median(times):.2f} s | {torch_loaded} |", flush=True)


if __name__ == "__main__":
    main()
