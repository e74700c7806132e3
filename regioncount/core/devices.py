"""Device selection and memory limits shared by the enumerators."""

from __future__ import annotations

import os
import time

import torch

from .errors import RegionCountError
from .settings import DEVICE_CHOICES  # noqa: E402,F401  (re-exported)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without a GPU is an error."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RegionCountError("`device='cuda'` was asked for but no CUDA device is available")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise RegionCountError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def tf32_enabled() -> bool:
    """Whether this process lets float32 GEMMs on CUDA run in TF32 (a user setting; never changed here)."""
    return bool(torch.backends.cuda.matmul.allow_tf32) or torch.get_float32_matmul_precision() != "highest"


def physical_memory_bytes() -> int:
    """Total RAM of this machine in bytes (falls back to 8 GiB where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def address_space_left() -> int | None:
    """Bytes this process may still map under its address-space limit (``RLIMIT_AS``, e.g. ``ulimit -v`` or a
    job scheduler's cap), or None when it has none (or the OS does not say)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status") as status:
            mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        return max(soft - mapped, 0)
    except (ImportError, OSError, ValueError, StopIteration):
        return None


def default_memory_limit() -> int:
    """Memory a count may use (walk batches, kept breakpoints, pattern sets, polygons): half of the RAM, and
    no more than half of what the process's address-space limit still allows."""
    limit = physical_memory_bytes() // 2
    left = address_space_left()
    return limit if left is None else min(limit, left // 2)


class Stopwatch:
    """Wall-clock seconds of device work: the device is synchronized when the watch starts and each time it
    is read, so queued GPU kernels are counted (``watch = Stopwatch(device); ...; watch.seconds()``)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        synchronize(device)
        self.start = time.perf_counter()

    def seconds(self) -> float:
        synchronize(self.device)
        return time.perf_counter() - self.start


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so that wall-clock timings measure the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
