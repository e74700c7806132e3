"""Benchmark of exact d-D partitions of [-1, 1]^d against the LP-BFS reference and, when given, relucent.

    python benchmarks/bench_box.py [--repeats 3] [--relucent-python /path/to/python] [--devices cpu]

Nets: d -> w x L FFNs with N(0, 1) weights and N(0, 0.5^2) biases (seeds 0, 1).  regioncount's time is
``BoxPartition.seconds`` (partition, volumes, adjacency graph, linear pieces, Chebyshev centres), best of
``--repeats``, in this process after one warm-up.  The LP-BFS reference (``tests/lp_reference.py``, one
HiGHS LP per unit per region) runs once on the nets with at most ``--reference-max`` units.  relucent runs
in its own interpreter (``benchmarks/relucent_runner.py``, ``Complex.bfs`` with ``cube_mode="intersect"``,
one worker, each net in a fresh interpreter, stopped after ``--relucent-timeout``); its time is its own
search, without its start-up.  Regions are compared as pattern sets.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from bench_common import best_run, devices, machine_line

from regioncount import FFN
from regioncount.partition.box_partition import partition_box

HERE = Path(__file__).resolve().parent


def gaussian_ffn(dims: list[int], seed: int) -> FFN:
    gen = torch.Generator().manual_seed(seed)
    weights = [torch.randn(o, i, generator=gen, dtype=torch.float64) for i, o in zip(dims, dims[1:])]
    biases = [torch.randn(o, generator=gen, dtype=torch.float64) * 0.5 for o in dims[1:]]
    return FFN(weights, biases, name=f"{dims[0]} -> {dims[1]} x {len(dims) - 2}, seed {seed}")


def bit_patterns(model: FFN, points: np.ndarray) -> set[tuple[int, ...]]:
    """Activation patterns (units in layer order, 1 = pre-activation > 0) of points (N, d)."""
    h = torch.from_numpy(np.asarray(points, dtype=np.float64))
    bits = []
    for w, b in zip(model.weights[:-1], model.biases[:-1]):
        pre = h @ w.T + b
        bits.append(pre > 0)
        h = pre.clamp_min(0)
    return {tuple(row) for row in torch.cat(bits, 1).int().tolist()}


def relucent_row(python: str, model: FFN, radius: float, timeout: float) -> dict | None:
    """Run relucent on one model in its own interpreter; None when it runs past ``timeout`` seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.npz"
        np.savez(path, **{f"W{k}": w.numpy() for k, w in enumerate(model.weights)},
                 **{f"b{k}": b.numpy() for k, b in enumerate(model.biases)})
        try:
            out = subprocess.run([python, str(HERE / "relucent_runner.py"), str(radius), str(path)],
                                 capture_output=True, text=True, check=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
    return next(json.loads(line) for line in out.stdout.splitlines() if line.startswith("{"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", default="cpu")
    parser.add_argument("--relucent-python", help="a Python interpreter with relucent installed")
    parser.add_argument("--relucent-timeout", type=float, default=600.0, help="seconds per relucent run")
    parser.add_argument("--all-space-only", action="store_true", help="only the table for all of R^d")
    parser.add_argument("--reference-max", type=int, default=16, help="largest net (units) run by the LP-BFS reference")
    args = parser.parse_args()
    if args.all_space_only:
        all_space_table(args)
        return
    sys.path.insert(0, str(HERE.parent / "tests"))
    from lp_reference import bfs_regions

    cases = [([3, 8, 8, 1], s) for s in (0, 1)] + [([3, 16, 16, 1], s) for s in (0, 1)] + \
            [([4, 8, 8, 1], 0), ([4, 16, 16, 1], 0), ([3, 32, 32, 1], 0), ([5, 12, 12, 1], 0)]
    models = [gaussian_ffn(dims, seed) for dims, seed in cases]
    print(machine_line())
    print()
    print("| net | device | regions | regioncount | LP-BFS reference | relucent | speed-up vs relucent | same regions |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for device in devices(args.devices):
        partition_box(models[0], -1.0, 1.0, device=device)  # warm-up (imports, scipy)
        for model in models:
            d = model.input_dim
            best = best_run(args.repeats, partition_box, model, -1.0, 1.0, device=device)
            assert best.centres is not None
            ours = bit_patterns(model, best.centres)
            agree = [len(ours) == best.activation_regions]
            ref_text = "-"
            if sum(model.hidden_widths) <= args.reference_max:
                import time

                start = time.perf_counter()
                ref = bfs_regions(model, [-1.0] * d, [1.0] * d)
                ref_text = f"{time.perf_counter() - start:.2f} s ({len(ref['patterns'])})"
                agree.append(len(ref["patterns"]) == best.activation_regions)
            rel_text = speed = "-"
            rel = None
            if args.relucent_python:
                rel = relucent_row(args.relucent_python, model, 1.0, args.relucent_timeout)
                if rel is None:
                    rel_text = f"> {args.relucent_timeout:.0f} s (stopped)"
                    speed = f"> {args.relucent_timeout / best.seconds:.0f}x"
            if rel is not None:
                rel_text = f"{rel['seconds']:.2f} s ({rel['cells']})" + (f" {rel['error'][:40]}" if rel["error"] else "")
                speed = f"{rel['seconds'] / best.seconds:.0f}x"
                theirs = {tuple(bits) for bits in rel["patterns"]}
                agree.append(theirs == ours)
            print(f"| {model.name} | {best.device} | {best.activation_regions:,} | {best.seconds * 1e3:.0f} ms "
                  f"| {ref_text} | {rel_text} | {speed} | {'yes' if all(agree) else 'NO'} |", flush=True)
    all_space_table(args)


def all_space_table(args: argparse.Namespace) -> None:
    """Every region of R^d: count_all_space against relucent's unrestricted search."""
    from regioncount.core.patterns import layer_words
    from regioncount.partition.all_space import count_all_space

    cases = [([3, 8, 8, 1], 0), ([3, 8, 8, 1], 1), ([3, 16, 16, 1], 0), ([4, 8, 8, 1], 0)]
    print()
    print("All of R^d:")
    print()
    print("| net | regions (bounded) | regioncount | relucent | speed-up | same regions |")
    print("|---|---:|---:|---:|---:|---|")
    count_all_space(gaussian_ffn([2, 4, 1], 0), device="cpu")  # warm-up
    for dims, seed in cases:
        model = gaussian_ffn(dims, seed)
        best = best_run(args.repeats, count_all_space, model, device="cpu")
        rel_text, speed, same = "-", "-", "-"
        if args.relucent_python:
            rel = relucent_row(args.relucent_python, model, float("inf"), args.relucent_timeout)
            if rel is None:
                rel_text, speed = f"> {args.relucent_timeout:.0f} s (stopped)", f"> {args.relucent_timeout / best.seconds:.0f}x"
            else:
                rel_text = f"{rel['seconds']:.2f} s ({rel['cells']})"
                speed = f"{rel['seconds'] / best.seconds:.0f}x"
                theirs = layer_words(torch.tensor(rel["patterns"], dtype=torch.bool), model.hidden_widths)
                assert best.patterns is not None
                same = "yes" if {tuple(r) for r in theirs.tolist()} == {tuple(r) for r in best.patterns.tolist()} else "NO"
        print(f"| {model.name} | {best.activation_regions:,} ({best.bounded_regions:,}) | {best.seconds * 1e3:.0f} ms "
              f"| {rel_text} | {speed} | {same} |", flush=True)


if __name__ == "__main__":
    main()
