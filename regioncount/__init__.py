"""regioncount: exact and sampled linear-region counting for ReLU FFNs and DEQs.

The Python API mirrors the command line::

    from regioncount import theorem1_deq, load_model, count_segment
    result = count_segment(theorem1_deq(12), interval=(0, 1))
    result.activation_regions, result.linear_pieces   # 4096, 4096
"""

from .constructions import (
    READOUTS,
    fold_ffn,
    sawtooth_ffn,
    tent_ffn,
    theorem1_deq,
    theorem1_expected,
)
from .errors import (
    CostLimitError,
    ModelFormatError,
    NotWellPosedError,
    RegionCountError,
    SegmentError,
)
from .exact1d import count_segment, resolve_segment
from .io import load_model, model_from_dict, model_from_state_dict, model_to_dict, save_model
from .models import DEQ, FFN, Domain
from .results import SegmentCount

__version__ = "0.1.0"


def __getattr__(name: str):
    """Lazy access to the heavier capabilities (they pull in matplotlib/sympy only when used)."""
    lazy = {
        "sample_regions": ("sampled", "sample_regions"),
        "chord_statistics": ("chords", "chord_statistics"),
        "partition_plane": ("plane2d", "partition_plane"),
        "compare_width": ("separation", "compare_width"),
        "certify": ("wellposed", "certify"),
        "serra": ("bounds", "serra"),
        "plot_partition": ("plot", "plot_partition"),
        "plot_separation": ("plot", "plot_separation"),
    }
    if name in lazy:
        import importlib

        module, attribute = lazy[name]
        return getattr(importlib.import_module(f".{module}", __name__), attribute)
    raise AttributeError(f"module 'regioncount' has no attribute {name!r}")

__all__ = [
    "DEQ", "FFN", "Domain", "READOUTS", "SegmentCount", "CostLimitError", "ModelFormatError",
    "NotWellPosedError", "RegionCountError", "SegmentError", "count_segment", "fold_ffn", "load_model",
    "model_from_dict", "model_from_state_dict", "model_to_dict", "resolve_segment", "save_model",
    "sawtooth_ffn", "tent_ffn", "theorem1_deq", "theorem1_expected", "sample_regions", "chord_statistics",
    "partition_plane", "compare_width", "certify", "serra", "plot_partition", "plot_separation",
]
