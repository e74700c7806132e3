"""Helpers the benchmark scripts share: the machine line, the devices to time, best-of-repeats."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The tests' model builders (``random_nets``) and references, for benchmarks that time the same nets.
TESTS = Path(__file__).resolve().parent.parent / "tests"


def use_test_helpers() -> None:
    """Make ``tests/`` importable (``random_nets``, ``lp_reference``)."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))


def arguments(doc: str, devices: str = "cpu", repeats: int = 3) -> argparse.Namespace:
    """The options every timing table takes: ``--devices``, ``--repeats`` and ``--json FILE``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--devices", default=devices, help="comma list of cpu,cuda or auto")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    return parser.parse_args()


def machine_line() -> str:
    """Processor, torch version and thread count, for the head of a table."""
    import torch

    return f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"


def devices(arg: str) -> list[str]:
    """``auto`` or a comma list, without ``cuda`` where no CUDA device is present."""
    import torch

    wanted = ["cpu", "cuda"] if arg == "auto" else arg.split(",")
    return [d for d in wanted if d != "cuda" or torch.cuda.is_available()]


def best_run(repeats: int, run: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The result with the smallest ``seconds`` among ``repeats`` (at least one) calls ``run(*args, **kwargs)``."""
    best = None
    for _ in range(max(1, repeats)):
        result = run(*args, **kwargs)
        best = result if best is None or result.seconds < best.seconds else best
    return best
