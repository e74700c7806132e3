"""Matplotlib figures (Agg backend: no display needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .errors import RegionCountError  # noqa: E402


def _log2(value: int) -> float:
    """log2 of a possibly huge integer (math.log2 accepts big ints without overflow)."""
    return math.log2(value)


def plot_separation(rows: Sequence, alpha: str, path: str | Path, *, dpi: int = 150,
                    size: tuple[float, float] = (8.0, 5.6)) -> None:
    """log2(regions) against m: the DEQ (counted), the family's best bound, constructed and trained FFNs."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise RegionCountError(f"{path}: plots are written as PNG; use a .png file name")
    ms = [row.m for row in rows]
    fig, ax = plt.subplots(figsize=size)
    ax.plot(ms, [_log2(row.deq_regions) for row in rows], "o-", color="tab:blue", lw=2,
            label="Theorem 1 DEQ, counted exactly (2^m)")
    ax.plot(ms, [_log2(row.best_ffn_bound) for row in rows], "s--", color="tab:red",
            label=f"best FFN bound, depth <= m^{alpha}, width <= 2^(m^(1-{alpha})-1)")
    ax.plot(ms, [_log2(row.same_neurons_bound) for row in rows], ":", color="tab:gray",
            label="best FFN bound with m ReLUs in total")
    built = [(row.m, d.constructed_regions, d.depth) for row in rows for d in row.depths
             if d.constructed_regions is not None and d.depth == row.max_depth]
    if built:
        ax.plot([b[0] for b in built], [_log2(b[1]) for b in built], "^", color="tab:green", ms=7,
                label="FFN of depth L_max at the width needed, built and counted")
    trained = [(row.m, t["linear_pieces"]) for row in rows for t in row.trained]
    if trained:
        ax.plot([t[0] for t in trained], [_log2(max(1, t[1])) for t in trained], "x", color="tab:purple", ms=8,
                label="trained FFNs in the family (exact pieces)")
    ax.set_xlabel("DEQ width m")
    ax.set_ylabel("log2(linear regions on [0, 1])")
    ax.set_title(f"DEQ vs FFN separation, alpha = {alpha}")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=dpi)
    except OSError as exc:
        raise RegionCountError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
