"""The library changes no process-wide state: no pyplot, no backend switch, no TF32 or thread settings."""

from __future__ import annotations

import subprocess
import sys


def test_library_import_and_use_leave_the_process_alone(tmp_path):
    code = f"""
import sys, torch
threads = torch.get_num_threads()
tf32 = torch.backends.cuda.matmul.allow_tf32
import regioncount
from regioncount import count_segment, theorem1_deq
from regioncount.partition.plane2d import partition_plane
from regioncount.viz.plot import plot_partition
from regioncount.core.devices import resolve_device
resolve_device("auto")
count_segment(theorem1_deq(6), interval=(0, 1))
plot_partition(partition_plane(theorem1_deq(3, input_dim=2), device="cpu"), {str(tmp_path / "p.png")!r}, dpi=40)
assert "matplotlib.pyplot" not in sys.modules, "pyplot imported"
assert torch.get_num_threads() == threads
assert torch.backends.cuda.matmul.allow_tf32 == tf32
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
