"""Exact counts of the activation regions of all of R^d, bounded and unbounded (``docs/exact-dd.md``).

Homogenise: with t > 0, x = y / t, the pre-activations of the net with every bias b multiplied by t are
positively homogeneous in (y, t), so the activation pattern is constant along rays and each region of R^d
is the slice t = 1 of an open convex cone of R^(d+1) (the regions of FFNs and triangular DEQs are convex).
Every such cone meets the relative interior of a face of the cube surface {max |(y, t)| = 1} with t > 0:
the top face t = 1, which is the box [-1, 1]^d of the original net, or one of the 2d side faces y_i = +-1,
(y_-i, t) in [-1, 1]^(d-1) x [0, 1], on which the homogenised net is again a ReLU net of d inputs whose
weights are the stored weights (``face_model``).  So the regions of R^d are the distinct patterns of the
2d + 1 exact box partitions, and a region is unbounded exactly when one of its cells on a side face has a
vertex at t = 0 (a direction to infinity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ..core.devices import Stopwatch, resolve_device
from ..core.errors import SegmentError
from ..core.geometry import Box
from ..core.patterns import group_rows, layer_words
from ..core.settings import DEFAULT_MAX_REGIONS
from ..models.networks import DEQ, DTYPE, FFN, Model, deq_certificate, require_network
from .box_partition import MAX_DIMENSION, CellLimit, check_pilot, partition_cells
from .exact_cells import EXACT_BUDGET


def face_model(model: Model, axis: int, sign: float) -> tuple[Model, list[int]]:
    """The homogenised net on the side face y_axis = sign: inputs (y without coordinate ``axis``, t).
    Returns the model and the indices of its units that are the original units (an FFN carries t through
    each hidden layer in one extra unit, relu(t) = t, which the pattern comparison leaves out)."""
    d = model.input_dim
    others = [j for j in range(d) if j != axis]
    if isinstance(model, DEQ):
        U = torch.cat([model.U[:, others], model.b[:, None]], 1)
        face = DEQ(W=model.W, U=U, b=sign * model.U[:, axis], A=model.A, B=torch.zeros(model.output_dim, d, dtype=DTYPE),
                   c=torch.zeros(model.output_dim, dtype=DTYPE), name=f"face {'+' if sign > 0 else '-'}x{axis}")
        return face, list(range(model.width))
    weights, biases, keep, offset = [], [], [], 0
    hidden = model.hidden_widths
    for layer, (w, b) in enumerate(zip(model.weights, model.biases)):
        n = w.shape[0]
        if layer == 0:
            W = torch.cat([w[:, others], b[:, None]], 1)
            bias = sign * w[:, axis]
        else:
            W = torch.cat([w, b[:, None]], 1)  # acts on (h, t): the carrier unit holds t
            bias = torch.zeros(n, dtype=DTYPE)
        if layer < len(hidden):  # append the carrier unit t
            carrier = torch.zeros(1, W.shape[1], dtype=DTYPE)
            carrier[0, -1] = 1.0
            W = torch.cat([W, carrier])
            bias = torch.cat([bias, torch.zeros(1, dtype=DTYPE)])
            keep += list(range(offset, offset + n))
            offset += n + 1
        weights.append(W)
        biases.append(bias)
    return FFN(weights, biases, name=f"face {'+' if sign > 0 else '-'}x{axis}"), keep


@dataclass
class AllSpaceCount:
    """Every activation region of R^d: ``activation_regions``, of which ``bounded_regions`` are bounded;
    ``face_cells`` per face (top, then -x0, +x0, -x1, ...); ``tolerance_decisions`` summed over the faces;
    per region ``patterns`` (packed words, one block per layer) and ``bounded`` (R,)."""

    model: str
    dimension: int
    activation_regions: int
    bounded_regions: int
    face_cells: list[int]
    seconds: float
    device: str
    tolerance_decisions: int = 0
    exact_decisions: int = 0
    notes: list[str] = field(default_factory=list)
    patterns: torch.Tensor | None = None
    bounded: torch.Tensor | None = None

    @property
    def method(self) -> str:
        return "exact" if self.tolerance_decisions == 0 else "approximate"

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "method": self.method,
            "tolerance_decisions": self.tolerance_decisions,
            "exact_decisions": self.exact_decisions,
            "algorithm": "homogenised: exact partitions of the cube's top and side faces",
            "domain": "all of R^d",
            "dimension": self.dimension,
            "activation_regions": self.activation_regions,
            "bounded_regions": self.bounded_regions,
            "unbounded_regions": self.activation_regions - self.bounded_regions,
            "face_cells": self.face_cells,
            "dtype": "float64",
            "device": self.device,
            "seconds": self.seconds,
            "notes": self.notes,
        }


def count_all_space(model: Model, *, device: str | torch.device = "auto", max_regions: int | None = DEFAULT_MAX_REGIONS,
                    memory_limit: int | None = None, exact_budget: int = EXACT_BUDGET,
                    assume_well_posed: bool = False, max_seconds: float | None = None) -> AllSpaceCount:
    """Every activation region of ``model`` in all of R^d, bounded and unbounded, exactly (module docstring);
    FFNs and DEQs (a general W once certified well-posed, or ``assume_well_posed``).  The limits apply to
    each face's partition."""
    require_network(model, "the count of all of R^d")
    deq_certificate(model, assume_well_posed)
    dev = resolve_device(device)
    d = model.input_dim
    if d > MAX_DIMENSION:
        raise SegmentError(f"exact all-space counts are for at most {MAX_DIMENSION} input dimensions, got {d}")
    limit = CellLimit.of(max_regions, memory_limit, max_seconds)
    watch = Stopwatch(dev)
    widths = model.hidden_widths if isinstance(model, FFN) else None
    words, unbounded, face_cells = [], [], []
    doubtful = decided = 0
    with torch.no_grad():
        check_pilot(model, Box((-1.0,) * d, (1.0,) * d), dev, limit)
        part = partition_cells(model, Box((-1.0,) * d, (1.0,) * d), dev, limit, exact_budget)
        words.append(layer_words(part.bits, widths))
        unbounded.append(torch.zeros(part.cells.count, dtype=torch.bool, device=dev))
        face_cells.append(part.cells.count)
        doubtful, decided = doubtful + part.doubtful + part.unresolved, decided + part.exact_decisions
        face_box = Box((-1.0,) * (d - 1) + (0.0,), (1.0,) * d)
        for axis in range(d):
            for sign in (-1.0, 1.0):
                face, keep = face_model(model, axis, sign)
                part = partition_cells(face, face_box, dev, limit, exact_budget)
                words.append(layer_words(part.bits[:, keep], widths))
                t_zero = 2 * (d - 1)  # the box face t = 0: the directions to infinity
                unbounded.append(part.cells.has_bits(t_zero, t_zero + 1).any(1))
                face_cells.append(part.cells.count)
                doubtful, decided = doubtful + part.doubtful + part.unresolved, decided + part.exact_decisions
        all_words = torch.cat(words)
        region, representative, _ = group_rows(all_words)
        R = representative.shape[0]
        open_end = torch.zeros(R, dtype=torch.long, device=dev).index_add_(0, region, torch.cat(unbounded).long()) > 0
    notes = []
    if doubtful:
        notes.append(f"{doubtful} decisions were taken by the zero tolerance, not exactly: approximate")
    return AllSpaceCount(model=model.name or model.describe(), dimension=d, activation_regions=R,
                         bounded_regions=R - int(open_end.sum()), face_cells=face_cells, seconds=watch.seconds(),
                         device=dev.type, tolerance_decisions=doubtful, exact_decisions=decided, notes=notes,
                         patterns=all_words[representative], bounded=~open_end)


def general_position_count(units: int, d: int) -> int:
    """Regions of n hyperplanes in general position in R^d: sum_{j <= d} C(n, j) (Zaslavsky)."""
    return sum(math.comb(units, j) for j in range(d + 1))
