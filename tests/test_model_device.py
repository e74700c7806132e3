"""Models moved to a device once: ``model.to(device)`` is the model itself where its tensors already are,
else a copy made once per device and kept while the weights are unchanged (the "meta" device stands in for
a GPU here; CUDA runs are in test_cuda.py)."""

from __future__ import annotations

import torch

from regioncount import FFN, theorem1_deq
from regioncount.line.deq_general import walk_segment


def test_same_device_is_the_model_itself():
    deq = theorem1_deq(4, "a")
    ffn = FFN([torch.ones(3, 1), torch.ones(1, 3)], [torch.zeros(3), torch.zeros(1)])
    assert deq.to("cpu") is deq and ffn.to(torch.device("cpu")) is ffn


def test_a_copy_per_device_kept_until_the_weights_change():
    deq = theorem1_deq(4, "a")
    moved = deq.to("meta")
    assert moved is not deq and moved.to("meta") is moved
    assert all(t.device.type == "meta" for t in (moved.W, moved.U, moved.b, moved.A, moved.B, moved.c))
    assert deq.W.device.type == "cpu"  # the original is untouched
    assert (moved.unit_order, moved.name) == (deq.unit_order, deq.name)
    assert deq.to("meta") is moved  # kept
    deq.W.mul_(1.0)  # an in-place change (version bump) makes a fresh copy
    assert deq.to("meta") is not moved
    ffn = FFN([torch.ones(3, 1), torch.ones(1, 3)], [torch.zeros(3), torch.zeros(1)])
    on_meta = ffn.to("meta")
    assert [w.device.type for w in on_meta.weights + on_meta.biases] == ["meta"] * 4
    assert ffn.to("meta") is on_meta and ffn.weights[0].device.type == "cpu"


def test_kernels_read_the_moved_model(monkeypatch):
    """The walk takes its tensors from ``model.to(device)``: no second copy per call."""
    from regioncount import DEQ

    W = torch.tensor([[0.0, 0.25], [-0.25, 0.0]], dtype=torch.float64)
    model = DEQ(W=W, U=[[1.0], [1.0]], b=[-0.5, -0.25], A=[[1.0, 2.0]])
    calls = []
    original = type(model).to

    def spy(self, device):
        calls.append(str(device))
        return original(self, device)

    monkeypatch.setattr(type(model), "to", spy)
    walk = walk_segment(model, torch.tensor([0.0]), torch.tensor([1.0]), 0.0, 1.0, walkers=4,
                        device=torch.device("cpu"))
    assert walk.failures == 0 and calls == ["cpu"]
