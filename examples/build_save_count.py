"""Build the Theorem 1 DEQ and a PyTorch network, save both, reload them and count their regions.

    python examples/build_save_count.py [OUTDIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from regioncount import count_segment, load_model, save_model, theorem1_deq

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="regioncount-"))
out.mkdir(parents=True, exist_ok=True)

# 1. The width-10 DEQ of Theorem 1, saved in the v1 JSON format and read back.
deq = theorem1_deq(10, readout="a")
save_model(deq, out / "deq10.json")
again = load_model(out / "deq10.json")
result = count_segment(again, interval=(0, 1), keep_breakpoints=True)
print(f"{again.name}: {result.activation_regions} activation regions, {result.linear_pieces} linear pieces "
      f"(expected 2^10 = 1024), first breakpoints {result.breakpoints[:3].tolist()}, "
      f"{result.seconds * 1e3:.1f} ms on {result.device}, {result.dtype}")

# 2. Your own PyTorch network: save its state_dict (never the pickled module) and count along [-3, 3].
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(1, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
torch.save(net.state_dict(), out / "net.pt")
model = load_model(out / "net.pt")
result = count_segment(model, interval=(-3, 3))
print(f"{model.describe()}: {result.activation_regions} activation regions, "
      f"{result.linear_pieces} linear pieces on [-3, 3]")
print(f"files written to {out}")
