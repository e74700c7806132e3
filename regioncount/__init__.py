"""regioncount: exact and sampled linear-region counting for ReLU FFNs and DEQs.

Map of the package (``docs/`` explains the mathematics and algorithms):

* models, modelfile, io, export, onnx_io, pt2_io: FFN / DEQ models, reading and writing model files (safe,
  bounded; modelfile holds the torch-free checks; ONNX graphs and torch.export archives read without running
  or unpickling anything), conversions;
* fixedpoint (solve_fixed_points): fixed points of a DEQ with any well-posed W, checked;
* nn (ReLUDEQ): a ReLU DEQ as a torch.nn.Module, to train and then count;
* geometry: where a count looks (Domain, Segment, Box, Plane), resolved from input with one validation;
* exact1d (count_segment) -> kernels, walk1d, fused_deq, deq_general: exact 1-D counts along a segment
  (the kernels built and run, the walks);
* distributed (count_segment_split, open_engine): an exact 1-D count split into tasks at certified cuts and
  merged exactly, run in this process or on Dask;
* exactness, forward_error, rational1d, tolerances: when float64 is exact, proofs of rounded walks, the
  exact-rational second opinion, and every tolerance with the decision it takes;
* plane2d, polygons: exact 2-D partitions; box_partition, polytopes, exact_cells: exact d-D partitions of a
  box (with rational re-decisions); all_space: every region of R^d; sampled, patterns: sampled d-D counts; chords: random chords;
* wellposed, bounds, constructions, separation, training, steep: certificates, FFN bounds, the Theorem 1
  DEQ and other constructions, the DEQ-vs-FFN comparison, the steep-ramp separation;
* results: every count's result type (SegmentCount, SampledCount, PlanePartition, BoxPartition,
  ChordStatistics) and the
  Result protocol (``to_json``) that all results follow;
* numbers: exact numbers typed by a user, of bounded size;
* cost, devices, settings, atomic, plot, errors: cost model, devices, defaults, atomic outputs, figures,
  error types.

The Python API mirrors the command line::

    from regioncount import theorem1_deq, load_model, count_segment
    result = count_segment(theorem1_deq(12), interval=(0, 1))
    result.activation_regions, result.linear_pieces   # 4096, 4096

Every name below is imported on first use, so ``import regioncount`` is instant (torch is loaded by the
first function that needs it).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "READOUTS": "settings", "fold_ffn": "constructions", "sawtooth_ffn": "constructions",
    "tent_ffn": "constructions", "theorem1_deq": "constructions", "theorem1_expected": "constructions",
    "CostLimitError": "errors", "ModelFormatError": "errors", "NotWellPosedError": "errors",
    "RegionCountError": "errors", "SegmentError": "errors",
    "count_segment": "exact1d", "count_along": "exact1d", "resolve_segment": "geometry",
    "count_segment_split": "distributed", "open_engine": "distributed",
    "load_model": "io", "model_from_dict": "io", "model_from_state_dict": "io", "model_to_dict": "io",
    "save_model": "io", "from_module": "convert",
    "solve_fixed_points": "fixedpoint", "ReLUDEQ": "nn", "DEQ": "models", "FFN": "models",
    "Domain": "geometry", "Segment": "geometry", "Box": "geometry",
    "Plane": "geometry", "resolve_box": "geometry", "resolve_plane": "geometry",
    "SegmentCount": "results", "SampledCount": "results", "PlanePartition": "results",
    "ChordStatistics": "results", "Result": "results", "BoxPartition": "results", "partition_box": "box_partition",
    "count_all_space": "all_space", "AllSpaceCount": "all_space",
    "sample_regions": "sampled", "chord_statistics": "chords", "partition_plane": "plane2d",
    "compare_width": "separation", "alpha_summary": "separation", "certify": "wellposed", "serra": "bounds",
    "plot_partition": "plot", "plot_separation": "plot", "plot_steep": "plot",
    "steep_row": "steep", "steep_ramp_deq": "steep", "steep_ramp_ffn": "steep", "weight_lower_bound": "steep",
}


def __getattr__(name: str) -> Any:
    """Import ``name`` from its module on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'regioncount' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = sorted(_LAZY)
