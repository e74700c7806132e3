"""Reproduce the DEQ-vs-FFN separation of Theorem 1 for alpha = 0.5 and alpha = 0.25.

    python examples/separation.py [OUTDIR] [--max-m 24]

For each alpha, writes OUTDIR/separation_alpha_<alpha>.json (every row, every depth), a markdown table
OUTDIR/separation_alpha_<alpha>.md and a plot OUTDIR/separation_alpha_<alpha>.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from regioncount.theory.parsing import parse_alpha
from regioncount.theory.separation import compare_width
from regioncount.viz.plot import plot_separation


def markdown(rows, alpha) -> str:
    lines = [f"alpha = {alpha}: DEQ counted exactly vs the FFN family (depth <= m^alpha, width <= 2^(m^(1-alpha)-1))",
             "",
             "| m | DEQ regions (counted) | L_max | w_max | best FFN bound | best in family (counted) "
             "| smallest match at L_max (counted) | L1 error in family | separated |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|:---|"]
    for row in rows:
        best = max(row.depths, key=lambda d: d.best_in_family["pieces_by_construction"]).best_in_family
        best_text = "-" if best["regions"] is None else f"{best['regions']:,} ({best['status']})"
        match = row.depths[-1].smallest_match
        widths = "x".join(map(str, match["widths"]))
        match_text = f"{widths}: " + ("not counted" if match["regions"] is None else f"{match['regions']:,}")
        bracket = f"{row.l1_error['lower_bound']:.4f} .. {row.l1_error['constructed']:.4f}"
        lines.append(f"| {row.m} | {row.deq_regions:,} | {row.max_depth} | {row.max_width:,} | "
                     f"{row.best_ffn_bound:,} | {best_text} | {match_text} | {bracket} | "
                     f"{'yes' if row.separated else 'no'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="separation-output")
    parser.add_argument("--max-m", type=int, default=24)
    args = parser.parse_args()
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    for text in ("0.5", "0.25"):
        alpha = parse_alpha(text)
        rows = []
        for m in range(4, args.max_m + 1, 2):  # one line per width as it is counted (the largest take longest)
            started = time.perf_counter()
            rows.append(compare_width(m, alpha))
            print(f"alpha = {text}, m = {m}: DEQ {rows[-1].deq_regions:,} regions, "
                  f"{'separated' if rows[-1].separated else 'not separated'} ({time.perf_counter() - started:.1f} s)",
                  flush=True)
        stem = f"separation_alpha_{text}"
        (out / f"{stem}.json").write_text(json.dumps({"alpha": float(alpha), "rows": [r.to_json() for r in rows]},
                                                        indent=1))
        (out / f"{stem}.md").write_text(markdown(rows, text))
        plot_separation(rows, text, out / f"{stem}.png")
        print(markdown(rows, text))
    print(f"written to {out}/")


if __name__ == "__main__":
    main()
