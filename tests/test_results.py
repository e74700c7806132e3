"""Every result of the package follows one protocol (``Result``: a JSON object), and lives where it says."""

from __future__ import annotations

import json
from fractions import Fraction

from random_nets import gaussian_ffn

from regioncount import (
    ChordStatistics,
    PlanePartition,
    Result,
    SampledCount,
    SegmentCount,
    certify,
    chord_statistics,
    compare_width,
    count_segment,
    partition_plane,
    sample_regions,
    steep_row,
    theorem1_deq,
)
from regioncount.geometry import Box


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
    ]
    for result, kind in results:
        assert isinstance(result, Result), type(result)
        if kind is not None:
            assert type(result) is kind and type(result).__module__ == "regioncount.results"
        json.dumps(result.to_json(), allow_nan=False, default=str)
