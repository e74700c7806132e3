"""One renderer per result type: ``render(result, as_json=...)`` prints the result's JSON object or its table,
both from the same result object, so ``--json`` and the table can never disagree.  A command adds its own
rows before (``head``) or after (``tail``) the result's, and its own keys to the JSON (``extra``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table

from .render import fmt_int, fmt_rate, fmt_seconds, key_value_table, print_json, stdout_console

if TYPE_CHECKING:  # the result types import torch: --help must not
    from regioncount.core.results import BoxPartition, ChordStatistics, PlanePartition, Result, SampledCount, SegmentCount
    from regioncount.models.wellposed import Certificate
    from regioncount.partition.all_space import AllSpaceCount
    from regioncount.theory.bounds import BoundReport
    from regioncount.theory.separation import SeparationReport
    from regioncount.theory.steep import SteepReport

Rows = list[tuple[str, str]]
#: the table rows of each result type, by class name (looked up without importing the result modules)
_ROWS: dict[str, Callable[[Any], Rows]] = {}


def _rows_of(name: str) -> Callable[[Callable[[Any], Rows]], Callable[[Any], Rows]]:
    def register(func: Callable[[Any], Rows]) -> Callable[[Any], Rows]:
        _ROWS[name] = func
        return func

    return register


#: results drawn as several renderables (multi-column tables and notes) instead of rows, by class name
_DRAWINGS: dict[str, Callable[[Any, bool], list[Any]]] = {}
#: Terminal width below which the many-column tables keep their main columns (``--wide``: all of them).
FULL_TABLE_WIDTH = 150


def _drawn(name: str) -> Callable[[Callable[[Any, bool], list[Any]]], Callable[[Any, bool], list[Any]]]:
    """Register the drawing of a result type: ``func(result, narrow)`` -> items to print (``narrow``: the
    terminal is narrower than the full table)."""

    def register(func: Callable[[Any, bool], list[Any]]) -> Callable[[Any, bool], list[Any]]:
        _DRAWINGS[name] = func
        return func

    return register


def render(result: Result, *, as_json: bool, title: str = "", head: Sequence[tuple[str, str]] = (),
           tail: Sequence[tuple[str, str]] = (), extra: dict[str, Any] | None = None, wide: bool = False) -> None:
    """Print ``result`` as one JSON object (``extra`` keys added) or for people: its drawing (tables of
    many columns, for ``compare`` and ``steep``: on a terminal narrower than the full table, the columns
    that matter most, unless ``wide``), else a titled table (``head`` rows, the result's rows, ``tail``
    rows)."""
    if as_json:
        print_json(result.to_json() | (extra or {}))
        return
    console = stdout_console()
    drawing = _DRAWINGS.get(type(result).__name__)
    if drawing is not None:
        for item in drawing(result, not wide and console.width < FULL_TABLE_WIDTH):
            console.print(item)
        return
    console.print(key_value_table(title, [*head, *rows(result), *tail]))


def rows(result: Result) -> Rows:
    """The table rows of a result (one function per result type)."""
    try:
        return _ROWS[type(result).__name__](result)
    except KeyError:
        raise TypeError(f"no table for {type(result).__name__}") from None


def engine_text(engine: dict) -> str:
    where = f"dask, {engine['workers']} worker(s)" if engine["engine"] == "dask" else "this process"
    cuts = f", {engine['cuts']} certified cut(s)" if "cuts" in engine else ""
    return f"{where}; {engine['tasks']} task(s){cuts}"


def segment_text(result: SegmentCount) -> str:
    seg = result.segment
    if seg["kind"] == "interval":
        return f"[{seg['interval'][0]:g}, {seg['interval'][1]:g}]"
    p = ",".join(f"{v:g}" for v in seg["p"])
    q = ",".join(f"{v:g}" for v in seg["q"])
    return f"segment ({p}) -> ({q})"


@_rows_of("SegmentCount")
def _segment_rows(result: SegmentCount) -> Rows:
    out = [("activation regions", fmt_int(result.activation_regions)),
           ("linear pieces", fmt_int(result.linear_pieces))]
    if result.shortest_region is not None:
        out.append(("region lengths", f"{result.shortest_region:.4g} .. {result.longest_region:.4g}"))
    out += [("method", f"{result.method} ({result.algorithm})"), ("dtype", result.dtype), ("device", result.device)]
    if result.engine is not None:
        out.append(("engine", engine_text(result.engine)))
    out += [("seconds", fmt_seconds(result.seconds)), ("regions/s", fmt_rate(result.regions_per_second))]
    return out


@_rows_of("SampledCount")
def _sampled_rows(result: SampledCount) -> Rows:
    box = result.box
    if result.grid:
        estimates = [("coverage / Chao1", "not given for a grid (they assume independent random samples)")]
    else:
        assert result.chao1_interval is not None and result.chao1 is not None  # random samples
        lo95, hi95 = result.chao1_interval
        estimates = [("Good-Turing coverage", f"{result.coverage:.6f}  (heuristic)"),
                     ("Chao1 richness", f"{result.chao1:,.1f}  [{lo95:,.1f}, {hi95:,.1f}] 95%  (heuristic: tiny "
                                        "regions are invisible to it)")]
    out = [("box", f"[{', '.join(f'{v:g}' for v in box.low)}] .. [{', '.join(f'{v:g}' for v in box.high)}]"),
           ("samples", f"{result.samples:,} ({'grid' if result.grid else 'uniform random'}, seed {result.seed})"),
           ("distinct patterns", f"{result.distinct_patterns:,}  (a lower bound on the regions meeting the box)"),
           ("seen once / twice", f"{result.seen_once:,} / {result.seen_twice:,}"),
           *estimates,
           ("largest regions", ", ".join(f"{f:.3%}" for f in result.largest_fractions[:5]) + " of the box"),
           ("method", f"sampled (exact pattern comparison), {result.dtype}"),
           ("device", result.device)]
    if result.engine is not None:
        out.append(("engine", engine_text(result.engine)))
    out += [("seconds", fmt_seconds(result.seconds)), ("points/s", fmt_rate(result.points_per_second))]
    out += [("[yellow]warning[/yellow]", warning) for warning in result.warnings]
    return out


@_rows_of("ChordStatistics")
def _chord_rows(result: ChordStatistics) -> Rows:
    mean, ci = result.regions_per_chord
    bmean, bci = result.breakpoints_per_length
    vmean, vci = result.boundary_volume
    return [("chords", f"{result.chords:,} isotropic random chords of the box (seed {result.seed})"),
            ("regions per chord", f"{mean:.4g} +- {ci:.2g} (95%)"),
            ("breakpoints per unit length", f"{bmean:.4g} +- {bci:.2g} (95%)"),
            (f"boundary {result.box.dim - 1}-volume (Crofton)", f"{vmean:.4g} +- {vci:.2g} (95%)"),
            ("note", "this measures boundary density, not the number of regions"),
            ("method", "a float64 walk along each chord (not re-decided exactly)"
                       + (f"; {result.tolerance_decisions} decision(s) inside the tolerance band"
                          if result.tolerance_decisions else "")),
            ("seconds", fmt_seconds(result.seconds))]


def plane_text(plane) -> str:  # noqa: ANN001 - a regioncount.core.geometry.Plane
    if plane.u == (1.0, 0.0) and plane.w == (0.0, 1.0) and plane.origin == (0.0, 0.0):
        return f"box [{plane.low[0]:g}, {plane.high[0]:g}] x [{plane.low[1]:g}, {plane.high[1]:g}]"

    def fmt(v: tuple[float, ...]) -> str:
        return "(" + ", ".join(f"{x:g}" for x in v) + ")"

    return (f"plane {fmt(plane.origin)} + s {fmt(plane.u)} + t {fmt(plane.w)}, s in [{plane.low[0]:g}, "
            f"{plane.high[0]:g}], t in [{plane.low[1]:g}, {plane.high[1]:g}]")


@_rows_of("AllSpaceCount")
def _all_space_rows(result: AllSpaceCount) -> Rows:
    exact = f"; {result.exact_decisions:,} decided in rational arithmetic" if result.exact_decisions else ""
    faces = ", ".join(f"{c:,}" for c in result.face_cells)
    out = [("domain", f"all of R^{result.dimension}"),
           ("activation regions", fmt_int(result.activation_regions)),
           ("bounded regions", fmt_int(result.bounded_regions)),
           ("unbounded regions", fmt_int(result.activation_regions - result.bounded_regions)),
           ("method", f"{result.method} (homogenised: partitions of the cube's top and {2 * result.dimension} side "
                      f"faces, cells {faces}), float64{exact}"),
           ("device", result.device), ("seconds", fmt_seconds(result.seconds))]
    out += [("[yellow]note[/yellow]", note) for note in result.notes]
    return out


@_rows_of("BoxPartition")
def _box_partition_rows(result: BoxPartition) -> Rows:
    data = result.to_json()
    out = [("box", f"[{', '.join(f'{v:g}' for v in result.box.low)}] .. [{', '.join(f'{v:g}' for v in result.box.high)}]"),
           ("activation regions", fmt_int(result.activation_regions)),
           ("linear pieces", fmt_int(result.linear_pieces)),
           ("bounded regions", f"{data['bounded_regions']:,} (not touching the box's border)"),
           ("adjacent pairs", f"{data['adjacent_pairs']:,}")]
    if "volume" in data:
        vol = data["volume"]
        out.append(("region volumes", f"min {vol['min']:.3g}, median {vol['median']:.3g}, max {vol['max']:.3g} "
                                      f"(sum {vol['total']:.6g} of {vol['box']:.6g})"))
    if "inradius" in data:
        r = data["inradius"]
        out.append(("inradii", f"min {r['min']:.3g}, median {r['median']:.3g}, max {r['max']:.3g}"))
    exact = f"; {result.exact_decisions:,} decided in rational arithmetic" if result.exact_decisions else ""
    out += [("method", f"{result.method} ({result.engine}), float64{exact}"),
            ("device", result.device), ("seconds", fmt_seconds(result.seconds)),
            ("regions/s", fmt_rate(data["regions_per_second"]))]
    out += [("[yellow]note[/yellow]", note) for note in result.notes]
    return out


@_rows_of("PlanePartition")
def _partition_rows(result: PlanePartition) -> Rows:
    data = result.to_json()
    area = data["area"]
    out = [("slice", plane_text(result.plane)),
           ("activation regions", fmt_int(result.activation_regions)),
           ("linear pieces", fmt_int(result.linear_pieces)),
           ("bounded regions", f"{data['bounded_regions']:,} (not touching the slice's border)"),
           ("adjacent pairs", f"{data['adjacent_pairs']:,}"),
           ("region areas", f"min {area['min']:.3g}, median {area['median']:.3g}, max {area['max']:.3g} "
                            f"(sum {area['total']:.6g} of {area['slice']:.6g})"),
           ("method", f"{result.method} ({result.engine}), float64"),
           ("device", result.device), ("seconds", fmt_seconds(result.seconds)),
           ("regions/s", fmt_rate(data["regions_per_second"]))]
    out += [("[yellow]note[/yellow]", note) for note in result.notes]
    return out


def sci(value: int) -> str:
    """An exact integer in full when short (< 100,000), else in compact scientific form (1.05e6)."""
    import math

    if value < 100_000:
        return str(value)
    exponent = len(str(value)) - 1 if value.bit_length() < 10_000 else int(math.log10(value))
    mantissa = value / 10**exponent if exponent < 300 else float(value // 10 ** (exponent - 2)) / 100
    return f"{mantissa:.2f}e{exponent}"


@_rows_of("BoundReport")
def _bound_rows(report: BoundReport) -> Rows:
    def maybe(value: int | None) -> str:
        return "-" if value is None else sci(value)

    out: Rows = []
    if report.widths is not None:
        assert report.serra is not None and report.montufar_per_layer is not None
        out += [("architecture", f"input {report.input_dim} -> [{', '.join(map(str, report.widths))}]"),
                ("Serra et al. 2018 (upper)", sci(report.serra)),
                ("Montufar 2017 per-layer (upper)", sci(report.montufar_per_layer)),
                ("prod(n_l + 1), 1-D (upper)", maybe(report.product_1d)),
                ("Telgarsky (2w)^L, 1-D (upper)", maybe(report.telgarsky)),
                ("Montufar et al. 2014 (lower)", maybe(report.montufar_lower)),
                ("1-D bound attained by a construction", {True: "yes (fold layers, then a zigzag layer)",
                                                          False: "not known", None: "-"}[report.attained_1d])]
        if report.verified_regions is not None:
            out.append((f"construction counted ({report.verified_method})",
                        f"{sci(report.verified_regions)} regions, {maybe(report.verified_pieces)} pieces"))
    if report.deq_width is not None and report.deq_max is not None:
        out.append((f"width-{report.deq_width} DEQ maximum (attained, Theorem 1)", sci(report.deq_max)))
    return out


@_rows_of("Certificate")
def _certificate_rows(cert: Certificate) -> Rows:
    verdict = {True: "[green]well-posed[/green]", False: "[red]NOT well-posed[/red]",
               None: "[yellow]undecided[/yellow]"}[cert.well_posed]
    out = [("verdict", verdict), ("certificate", f"{cert.method}: {cert.reason}")]
    for check in cert.checks:
        mark = {True: "holds", False: "fails", None: "not run"}[check.passed]
        out.append((check.name, f"{mark}: {check.text}"))
    return out


# --- compare and steep: tables of many columns --------------------------------------------------------------


def _approx(entry: dict) -> str:
    """'~' before a count whose walk left decisions unproven (method ``approximate``), else nothing."""
    return "~" if entry.get("method") == "approximate" else ""


COMPARE_LEGEND = (
    "DEQ: regions counted exactly (breakpoint propagation, float64). FFN bound: Serra et al. 2018 at "
    "w_max and L <= L_max (exact integers). m ReLUs: best bound for an FFN with the DEQ's neuron count. "
    "need w: smallest width with (w+1)^L_max >= 2^m ('>' = outside the family). best in family: the FFN "
    "with the most pieces at widths <= w_max and depth <= L_max, built and counted exactly (attained = "
    "Serra's bound). smallest match: fewest-neuron widths of depth L_max reaching 2^m, built and "
    "counted ('~' = approximate: some decisions of the rounded walk not proven, docs/exactness.md; "
    "'not counted' = over --construct-budget or --construct-seconds). "
    "L1 error in family: every FFN of the family is at least the first number away from T^m in L1 "
    "(a lower bound, exact); an explicit in-family FFN reaches the second (exact). --json has every depth.")


#: The compare columns left out on a narrow terminal (``--wide`` shows them).
COMPARE_WIDE_ONLY = {"/2^m", "best in family", "m ReLUs", "need w", "L1 error in family"}


def _compare_table(a: Any, rows: list, from_m: int | None, narrow: bool) -> list[Any]:
    """The table of one alpha and its verdict."""
    table = Table(title=f"DEQ (width m) vs FFNs with depth <= m^{a}, width <= 2^(m^(1-{a})-1); 1-D, exact",
                  title_justify="left")
    names = ("m", "DEQ", "L_max", "w_max", "FFN bound", "/2^m", "best in family", "m ReLUs", "need w",
             "smallest match", "L1 error in family", "separated")
    shown = [name not in COMPARE_WIDE_ONLY for name in names] if narrow else [True] * len(names)
    for name, show in zip(names, shown):
        if show:
            table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*(cell for cell, show in zip(_compare_cells(row), shown) if show))
    if narrow:
        table.caption = "(narrow terminal: --wide shows every column, --json every depth)"
    verdict = (f"Verdict (alpha = {a}): " + (f"separated for every m >= {from_m} in this range. "
                                            if from_m is not None else "not separated at the largest m. ")
               + rows[-1].verdict() + ".")
    return [table, verdict]


def _compare_cells(row: Any) -> tuple[str, ...]:
    """The cells of one width m: the DEQ's count, the family's limits and bound, the best in-family and the
    smallest matching constructions (counted where they were), the L1 bracket and the verdict."""
    last = row.depths[-1]
    deq = f"2^{row.m}" if row.deq_regions == 2**row.m else f"[red]{sci(row.deq_regions)}[/red]"
    need = sci(last.min_width_to_match) + ("" if last.min_width_to_match <= row.max_width else ">")
    best = max(row.depths, key=lambda d: d.best_in_family["pieces_by_construction"]).best_in_family
    best_text = (f"{_approx(best)}{sci(best['regions'])} ({best['status']})" if best["regions"] is not None
                 else f"[dim]{sci(best['pieces_by_construction'])} (not counted)[/dim]")
    match = last.smallest_match
    match_text = ("x".join(map(str, match["widths"])) if len(set(match["widths"])) > 1
                  else f"{match['widths'][0]}^{len(match['widths'])}")
    match_text += f": {_approx(match)}{sci(match['regions'])}" if match["regions"] is not None else " (not counted)"
    return (str(row.m), deq, str(row.max_depth), sci(row.max_width), sci(row.best_ffn_bound),
            f"{row.best_ffn_bound / row.deq_regions:.1e}", best_text, sci(row.same_neurons_bound), need,
            match_text, f"{row.l1_error['lower_bound']:.4f} .. {row.l1_error['constructed']:.4f}",
            "[green]yes[/green]" if row.separated else "[yellow]no[/yellow]")


def _trained_table(a: Any, rows: list, name_alpha: bool) -> list[Any]:
    """The table of trained FFNs of one alpha (nothing without ``--train``)."""
    trained = [(row.m, t) for row in rows for t in row.trained]
    if not trained:
        return []
    title = "Trained FFNs in the family (fit to T^m; errors exact for the trained weights)"
    table = Table(title=title + (f", alpha = {a}" if name_alpha else ""), title_justify="left")
    for name in ("m", "depth", "width", "best of", "best init", "pieces", "L1 error", "L1 lower bound",
                 "constructed L1", "Linf error", "above bound"):
        table.add_column(name, justify="right")
    for m, t in trained:
        constructed = "-" if t["constructed_l1_error"] is None else (
            f"{t['constructed_l1_error']:.4f}" + (" [red](trained is worse)[/red]" if t["worse_than_constructed"]
                                                  else ""))
        table.add_row(str(m), str(t["depth"]), str(t["width"]), str(t["starts"]), t["init"],
                      f"{t['linear_pieces']:,}", f"{t['l1_error']:.4f}", f"{t['l1_lower_bound']:.4f}",
                      constructed, f"{t['linf_error']:.4f}",
                      "undecided (float64)" if t["above_bound"] is None else "yes" if t["above_bound"]
                      else "[red]NO[/red]")
    return [table]


@_drawn("SeparationReport")
def _separation_drawing(report: SeparationReport, narrow: bool) -> list[Any]:
    from regioncount.theory.separation import alpha_summary

    out: list[Any] = []
    for index, (a, rows) in enumerate(report.alphas):
        out += _compare_table(a, rows, report.separated_from(index), narrow)
    if len(report.alphas) > 1:
        summary = Table(title="As alpha varies (largest m of the range)", title_justify="left")
        for name in ("alpha", "m", "L_max", "w_max", "FFN bound / 2^m", "smallest match width / w_max",
                     "L1 error >=", "separated from m"):
            summary.add_column(name, justify="right")
        for a, rows in report.alphas:
            item = alpha_summary(a, rows)
            from_m = item["separated_from_m"]
            summary.add_row(str(a), str(item["m"]), str(item["max_depth"]), sci(item["max_width"]),
                            f"{item['best_ratio_to_deq']:.2e}", f"{item['smallest_match_width_over_cap']:.3g}",
                            f"{item['l1_lower_bound']:.4f}", "-" if from_m is None else str(from_m))
        out.append(summary)
    out.append(COMPARE_LEGEND)
    for a, rows in report.alphas:
        out += _trained_table(a, rows, len(report.alphas) > 1)
    return out


@_drawn("SteepReport")
def _steep_drawing(report: SteepReport, narrow: bool) -> list[Any]:
    import math

    table = Table(title=f"Steep ramp, delta = 2^-m: log2 of the largest |weight|. FFNs with error <= {report.eps}: "
                        f"certified lower bound at width <= {report.max_width:,} (cap) and at width 2, and the "
                        "constructed width-2 FFN (built, exact)",
                  title_justify="left")
    table.add_column("m", justify="right")
    table.add_column("DEQ max|w| (error)", justify="right")
    for depth in report.depths:
        table.add_column(f"L={depth}\ncap | w=2 | built", justify="right")
    for row in report.rows:
        cells = [str(row.m), f"{row.deq_max_abs_weight:g} ({float(row.deq_linf_error):g})"]
        for d in row.depths:
            cap, two = (f"{math.log2(b):.1f}" if b > 0 else "-" for b in (d.weight_lower_bound, d.width2_lower_bound))
            cells.append(f"{cap} | {two} | {math.log2(d.constructed_max_abs_weight):.0f}")
        table.add_row(*cells)
    last = report.rows[-1]
    needing = [d.depth for d in last.depths if d.weight_lower_bound > 1]
    note = (f"DEQ: width 2, every |weight| <= 1, exact error 0 at every m (fixed point solved exactly). FFN: at m = "
            f"{last.m}, every FFN of depth {', '.join(map(str, needing)) or '(none listed)'} and width <= "
            f"{report.max_width:,} with error <= {report.eps} needs some |weight| > 1, growing like 2^(m / (L + 1)); "
            "the constructed width-2 FFNs (exact, error 0) come within a factor 2^(1 + L/(L+1)) of the width-2 "
            "bound. Bound: Lip(g) <= B (w B)^L against Lip >= (1 - 2 eps) / delta (docs/steep.md).")
    return [table, note]


@_drawn("SteepDimsReport")
def _steep_dims_drawing(report: Any, narrow: bool) -> list[Any]:
    """``steep --dims``: the d-dimensional target's DEQ against the FFN bounds, one row per dimension."""
    table = Table(title=f"Steep target g_d(x) = phi(x_1) on [0, 1]^d, slope 2^d at 1/2: the DEQ (inverse by bisection) "
                        f"and FFNs within {report.eps} at width <= {report.max_width:,}: log2 of the largest |weight|",
                  title_justify="left")
    for column in ("d", "DEQ units", "DEQ max|w|", "DEQ error <=", "regions on x_1", "bisection steps"):
        table.add_column(column, justify="right")
    for depth in report.depths:
        table.add_column(f"FFN L={depth}\nlog2 B >=", justify="right")
    for row in report.rows:
        counted = "-" if row.regions is None else f"{row.regions:,} ({row.count_method})"
        cells = [str(row.d), str(row.deq_units), f"{row.deq_max_abs_weight:g}", f"{row.deq_error_bound:.4g}", counted,
                 str(row.bisection_steps)]
        cells += ["-" if row.ffn_log2_bounds[L] is None else f"{row.ffn_log2_bounds[L]:.2f}" for L in report.depths]
        table.add_row(*cells)
    note = ("DEQ: y = H^-1(x_1) with H the CPWL through (j/K, phi^-1(j/K)), K units, every |weight| <= 1, its fixed "
            "point unique (docs/steep.md); error bounded from the stored weights' exact breakpoints and interval "
            "enclosures of phi. FFN: Lip >= 2^d (D - 2 eps) / 2 along x_1 with D = phi(1/2 + 2^-d) - phi(1/2 - 2^-d) "
            "> 0.96, against Lip <= B (w B)^L: B grows like 2^(d / (L + 1)).")
    return [table, note]


def _e(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.1e}"


@_drawn("BiasReport")
def _bias_drawing(report: Any, narrow: bool) -> list[Any]:
    """The tables of ``regioncount bias``: theory, descent, comparison, GOTU and feature density."""
    worst = report.worst_distance
    return [*_bias_theory(report, narrow), _bias_descent(report), _bias_comparison(report), *_bias_gotu(report),
            _bias_density(report),
            f"Largest |flow limit - minimiser| / |minimiser|: {_e(worst)} (target 1e-8); {fmt_seconds(report.seconds)}."]


def _table(title: str, columns: tuple[str, ...], left: tuple[str, ...]) -> Table:
    """A left-titled table whose ``left`` columns are left-justified and the others right-justified."""
    table = Table(title=title, title_justify="left")
    for name in columns:
        table.add_column(name, justify="left" if name in left else "right")
    return table


def _bias_theory(report: Any, narrow: bool) -> list[Any]:
    theory = _table("Gradient flow of the diagonal linear DEQ against the predicted minimiser of "
                    "Q(beta) = sum 1/(2 beta^2) + beta/beta0^3 (derived sign; the quoted sign: last column)",
                    ("instance", "flow", "t", "|limit - argmin|", "KKT +", "KKT -", "relation", "quoted (-) potential"),
                    ("instance", "flow", "quoted (-) potential"))
    for r in report.theory:
        theory.add_row(r.instance, r.flow_status, f"{r.time:.3g}", _e(r.distance), _e(r.kkt_derived),
                       _e(r.kkt_quoted), _e(r.relation_error), r.quoted_minimiser if not narrow else
                       r.quoted_minimiser.split(":")[0])
    return [theory, "Relative distances; KKT: the part of Q'(limit) outside the row space of X diag(signs) (+: "
            "derived, -: quoted); relation: largest deviation of the flow (integrated in beta^-3 = beta0^-3 + 3 signs "
            "X^T v and a rescaled time) from a plain integration of beta, t <= 1000, relative to beta0^-3."]


def _bias_descent(report: Any) -> Table:
    descent = _table(f"Gradient descent on w against the flow ({report.descent_instance})",
                     ("step", "status", "steps", "|GD limit - flow limit|"), ())
    for r in report.descent:
        descent.add_row(f"{r.step:g}", r.status, fmt_int(r.steps), _e(r.distance_to_flow))
    return descent


def _bias_comparison(report: Any) -> Table:
    comparison = _table("The bias: interpolants of the same data",
                        ("planted", "model", "l1", "l2", "(l1/l2)^2", "support", "recovery error"), ("planted", "model"))
    for r in report.comparison:
        comparison.add_row(r.planted, r.model, f"{r.l1:.3f}", f"{r.l2:.3f}", f"{r.effective_sparsity:.1f}",
                           str(r.support), f"{r.recovery_error:.3f}")
    return comparison


def _bias_gotu(report: Any) -> list[Any]:
    gotu = _table(f"GOTU: trained on x_1 = +1, error on the unseen x_1 = -1 (d = {report.settings['gotu_dim']})",
                  ("model", "target", "bias share", "GOTU error (trained)", "closed form"), ("model", "target"))
    for r in report.gotu:
        trained = f"{r.trained:.3f}" + (f" +- {r.spread:.3f}" if r.spread else "")
        gotu.add_row(r.model, r.target, "-" if r.bias_share != r.bias_share else f"{r.bias_share:.3f}", trained,
                     "-" if r.closed_form is None else f"{r.closed_form:.3f}")
    return [gotu, "f1 = 1.5 x_1 + sum c_i x_i, f2 = 1.5 + sum c_i x_i: equal on the seen half. A linear model with "
            "bias share p has GOTU error (3p)^2 on f1 and (3(1 - p))^2 on f2."]


def _bias_density(report: Any) -> Table:
    dens = _table("Feature density on GOTU f1 (share of 20 features with mean |z| >= 10% of the largest)",
                  ("model", "density"), ("model",))
    for f in report.features:
        dens.add_row(f.model + (f" ({f.note})" if f.note else ""), f"{f.density:.2f}")
    return dens
