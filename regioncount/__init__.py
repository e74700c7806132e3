"""regioncount: exact and sampled linear-region counting for ReLU FFNs and DEQs.

Map of the package, by subpackage (dependencies point down this list; ``tests/test_imports.py`` enforces it;
``docs/`` explains the mathematics and algorithms):

* ``core``: errors, defaults, tolerances, devices and memory, exact user numbers, atomic output, where a count
  looks (``geometry``: Domain, Segment, Box, Plane), safe magnitudes, packed activation patterns, exact
  integer linear algebra, and every count's result record (``results``: SegmentCount, SampledCount,
  PlanePartition, BoxPartition, ChordStatistics, the ``Result`` protocol);
* ``models``: FFN and DEQ (``networks``), the file schema checks (``modelfile``, torch-free), well-posedness
  certificates (``wellposed``), fixed points, the trainable ``ReLUDEQ`` (``nn``);
* ``exact``: the exact-rational 1-D counters every second opinion and test compares with;
* ``io``: model files (``model_files``: v1 JSON, state_dicts), ONNX, torch.export, traced modules, arrays;
* ``line``: exact 1-D counts (``exact1d``: count_segment) over the walks (``kernels``, ``ffn_walk``,
  ``deq_walk``, ``sink``, ``zeros``, ``deq_general``, ``fused_deq``), their proofs (``exactness``,
  ``forward_error``, ``double_double``, ``deq_proof``, ``general_exact``), the cost model (``cost``) and
  random chords (``chords``);
* ``sampling``: sampled d-D counts (``sampled``);
* ``partition``: exact partitions of a plane slice (``plane2d``, ``polygons``), a box (``box_partition``,
  ``polytopes``, ``vertex_bounds``, ``exact_cells``, ``exact_pieces``; general-W DEQs: ``deq_cells``,
  ``exact_refinement``) and all of R^d (``all_space``);
* ``theory``: bounds, the Theorem 1 DEQ and other constructions, the FFN family in closed form (``family``),
  the DEQ-vs-FFN separation (``separation``, ``compare_cost``, ``parsing``), the steep ramp, training;
* ``parallel``: counts split into tasks and merged exactly, in this process or on Dask (``engine``,
  ``payload``, ``segments``, ``samples``, ``many``);
* ``viz``: PNG figures (``plot``).

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

_LAZY = {name: module for module, names in {
    "core.settings": "READOUTS",
    "theory.constructions": "fold_ffn sawtooth_ffn tent_ffn theorem1_deq theorem1_expected",
    "core.errors": "CostLimitError ModelFormatError NotWellPosedError RegionCountError SegmentError",
    "line.exact1d": "count_segment count_along",
    "core.geometry": "resolve_segment Domain Segment Box Plane resolve_box resolve_plane",
    "parallel.segments": "count_segment_split",
    "parallel.engine": "open_engine",
    "io.model_files": "load_model model_from_dict model_from_state_dict model_to_dict save_model",
    "io.convert": "from_module",
    "models.fixedpoint": "solve_fixed_points",
    "models.nn": "ReLUDEQ",
    "models.networks": "DEQ FFN",
    "core.results": "SegmentCount SampledCount PlanePartition ChordStatistics Result BoxPartition",
    "partition.box_partition": "partition_box",
    "partition.all_space": "count_all_space AllSpaceCount",
    "sampling.sampled": "sample_regions",
    "line.chords": "chord_statistics",
    "partition.plane2d": "partition_plane",
    "partition.decision": "decision_boundary DecisionBoundary",
    "theory.separation": "compare_width alpha_summary",
    "models.wellposed": "certify",
    "theory.bounds": "serra",
    "viz.plot": "plot_partition plot_separation plot_steep",
    "theory.steep": "steep_row steep_ramp_deq steep_ramp_ffn weight_lower_bound",
    "experiments": "load_experiment run_experiment plot_experiment",
}.items() for name in names.split()}


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
