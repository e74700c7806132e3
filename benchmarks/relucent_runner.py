"""Times relucent on FFNs stored as .npz (W0, b0, W1, b1, ...), for bench_box.py; run with a Python that has
relucent (and gurobipy, torch): ``python relucent_runner.py RADIUS FILE...`` (RADIUS ``inf``: all of R^d).
Prints one JSON line per file: cells meeting the cube (or all cells), seconds, patterns."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from relucent.core.complex import Complex


def network(path: str) -> torch.nn.Sequential:
    data = np.load(path)
    layers: list[torch.nn.Module] = []
    count = len([k for k in data.files if k.startswith("W")])
    for i in range(count):
        W, b = data[f"W{i}"], data[f"b{i}"]
        linear = torch.nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if i < count - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def main() -> None:
    radius = float(sys.argv[1])
    for path in sys.argv[2:]:
        net = network(path)
        start = time.perf_counter()
        complex_ = Complex(net)
        try:
            if radius == float("inf"):  # every region of R^d
                complex_.bfs(nworkers=1, verbose=0)
            else:
                complex_.bfs(cube_radius=radius, cube_mode="intersect", nworkers=1, verbose=0)
            error = None
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        patterns = [[int(v > 0) for v in np.asarray(p.ss).ravel()] for p in complex_.index2poly]
        print(json.dumps({"file": path, "cells": len(patterns), "seconds": seconds, "error": error,
                          "patterns": patterns}), flush=True)


if __name__ == "__main__":
    main()
