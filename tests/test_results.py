"""Every result of the package follows one protocol (``Result``: a JSON object), and lives where it says."""

from __future__ import annotations

import json
from fractions import Fraction

from random_nets import gaussian_ffn

from regioncount import (
    BoxPartition,
    ChordStatistics,
    PlanePartition,
    Result,
    SampledCount,
    SegmentCount,
    certify,
    chord_statistics,
    compare_width,
    count_all_space,
    count_segment,
    partition_box,
    partition_plane,
    sample_regions,
    steep_row,
    theorem1_deq,
)
from regioncount.core.geometry import Box
from regioncount.theory.separation import SeparationReport
from regioncount.theory.steep import SteepReport


def test_every_result_is_a_result_with_a_json_object():
    net = gaussian_ffn([2, 6, 6, 1], 0)
    results = [
        (count_segment(theorem1_deq(4), interval=(0, 1)), SegmentCount),
        (sample_regions(net, -1, 1, samples=2000, device="cpu"), SampledCount),
        (partition_plane(net, [-1, -1], [1, 1], device="cpu"), PlanePartition),
        (chord_statistics(net, Box((-1.0, -1.0), (1.0, 1.0)), 8, device="cpu"), ChordStatistics),
        (compare_width(4, Fraction(1, 2), device="cpu"), None),
        (steep_row(8, [1, 2], 64, Fraction(1, 8)), None),
        (certify(theorem1_deq(3).W), None),
        (partition_box(gaussian_ffn([3, 4, 4, 1], 0), -1.0, 1.0, device="cpu"), BoxPartition),
        (count_all_space(gaussian_ffn([2, 4, 1], 0), device="cpu"), None),
        (SeparationReport([(Fraction(1, 2), [compare_width(4, Fraction(1, 2), device="cpu")])]), None),
        (SteepReport([steep_row(8, [1, 2], 64, Fraction(1, 8))], [1, 2], 64, Fraction(1, 8)), None),
    ]
    for result, kind in results:
        assert isinstance(result, Result), type(result)
        if kind is not None:
            assert type(result) is kind and type(result).__module__ == "regioncount.core.results"
        json.dumps(result.to_json(), allow_nan=False, default=str)
        if kind is not None or isinstance(result, type(results[8][0])):  # every count: the same field, both ways
            assert result.to_json()["activation_regions"] == result.activation_regions


def test_tables_and_json_come_from_one_result(tmp_path):
    """Each command renders one result object: the numbers in its table are those of its JSON."""
    import re

    from random_nets import run_cli

    from regioncount import save_model

    path = tmp_path / "net.json"
    save_model(gaussian_ffn([2, 6, 6, 1], 1), path)
    for args, key, label in [(("deq", "-m", 6), "activation_regions", "activation regions"),
                             (("count", path, "--segment", "-1,-1", "1,1"), "activation_regions", "activation regions"),
                             (("count", path, "--box", "-1", "1", "--samples", 4000), "distinct_patterns",
                              "distinct patterns"),
                             (("count", path, "--plane", "--box", "-1", "1"), "activation_regions", "activation regions"),
                             (("count", path, "--exact", "--box", "-1", "1"), "activation_regions", "activation regions"),
                             (("count", path, "--exact", "--all-space"), "activation_regions", "activation regions")]:
        data = json.loads(run_cli(*args, "--json").output)
        table = run_cli(*args).output
        shown = re.search(rf"{label}\s*│\s*([\d,]+)", table)
        assert shown is not None, table
        assert int(shown.group(1).replace(",", "")) == data[key]


def test_compare_and_steep_tables_show_their_json():
    """compare and steep draw their many-column tables from the same report object as their JSON."""
    from random_nets import run_cli

    data = json.loads(run_cli("compare", "--alpha", "1/3", "--widths", "4:5", "--json").output)
    table = run_cli("compare", "--alpha", "1/3", "--widths", "4:5").output
    for row in data["rows"]:
        assert f"{row['l1_error']['lower_bound']:.4f} .. {row['l1_error']['constructed']:.4f}" in table
    assert f"separated for every m >= {data['separated_from_m']}" in table
    steep = json.loads(run_cli("steep", "--widths", "8:9", "--depths", "1", "--json").output)
    table = run_cli("steep", "--widths", "8:9", "--depths", "1").output
    assert f"{steep['rows'][0]['deq']['max_abs_weight']:g} (0)" in table and f"error <= {steep['eps_exact']}" in table
