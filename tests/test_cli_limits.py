"""The limit matrix on the command line: every counting command and every mode of ``count`` (1-D, split,
sampled, chords, exact box, all of R^d, exact plane), ``track`` (in turn and on ``--workers``), ``plot``
(1-D and 2-D) and ``deq`` (in this process and on ``--workers``), each against each of ``--max-seconds``,
``--max-regions`` and ``--max-memory``: refused or stopped with a one-line error that names the flag to
raise, in seconds, never run to the end."""

from __future__ import annotations

import time

import pytest
from random_nets import gaussian_ffn, run_cli

from regioncount.io.model_files import save_model
from regioncount.theory.constructions import tent_ffn

#: one limit each, far below what every count below needs (--max-memory is in GiB: about 4 KiB)
TIGHT = {"--max-seconds": "0.05", "--max-regions": "5", "--max-memory": "4e-6"}
#: what each refusal says: the limit's kind, and the flag to raise where the message names one
WORDS = {"--max-seconds": "time limit", "--max-regions": "limit of 5", "--max-memory": "memory limit"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("limits")
    paths = {"line": folder / "line.json", "plane": folder / "plane.json", "box": folder / "box.json",
             "ck1": folder / "ckpt_1.json", "ck2": folder / "ckpt_2.json", "png": folder / "out.png"}
    # 1-D: 2^20 and 2^19 teeth, about 0.9 s and 0.4 s to count, so 0.05 s stops them. A random 1 -> 64 x 3 net
    # has about 200 regions and its count (30-90 ms) could end before the deadline was checked (seen in CI).
    save_model(tent_ffn(20), paths["line"])
    save_model(tent_ffn(20), paths["ck1"])
    save_model(tent_ffn(19), paths["ck2"])
    # about 36,000 regions in the unit box, 0.3-0.4 s, so 0.05 s stops it (2 -> 32 x 3 came to finish within
    # 0.05 s, and 2 -> 96 x 3 takes 0.14-0.19 s since the arrangement cuts)
    save_model(gaussian_ffn([2, 128, 128, 128, 1], 0, he=True), paths["plane"])
    save_model(gaussian_ffn([3, 24, 24, 1], 0), paths["box"])
    return paths


#: every command line that counts, as arguments built from the model paths
COMMANDS = {
    "count 1-D": lambda p: ["count", p["line"], "--interval", "-3", "3"],
    "count 1-D --tasks": lambda p: ["count", p["line"], "--interval", "-3", "3", "--tasks", "2"],
    "count sampled": lambda p: ["count", p["plane"], "--box", "-1", "1", "--samples", "2000000"],
    "count chords": lambda p: ["count", p["plane"], "--box", "-1", "1", "--chords", "20000"],
    "count exact box": lambda p: ["count", p["box"], "--box", "-1", "1", "--exact"],
    "count all space": lambda p: ["count", p["box"], "--exact", "--all-space"],
    "count plane": lambda p: ["count", p["plane"], "--origin", "0,0", "--dirs", "1,0", "0,1", "--extent", "1"],
    "track": lambda p: ["track", p["ck1"], p["ck2"], "--interval", "-3", "3"],
    "plot 1-D": lambda p: ["plot", p["line"], "--interval", "-3", "3", "--out", p["png"]],
    "plot 2-D": lambda p: ["plot", p["plane"], "--box", "-1", "1", "--out", p["png"]],
    "deq": lambda p: ["deq", "--width", "24"],
    "deq --workers": lambda p: ["deq", "--width", "24", "--workers", "2"],  # refused before a cluster starts
}


@pytest.mark.parametrize("limit", sorted(TIGHT))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_honours_every_limit(models, command, limit):
    models["png"].unlink(missing_ok=True)  # a plot an earlier case failed to refuse must not fail this one
    started = time.perf_counter()
    out = run_cli(*COMMANDS[command](models), limit, TIGHT[limit])
    assert time.perf_counter() - started < 10.0
    assert out.exit_code == 2, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and WORDS[limit] in lines[0], out.output
    if "raise" in lines[0]:  # the advice names the command line's flag, never the Python keyword
        assert limit in lines[0] and "max_" not in lines[0] and "memory_limit" not in lines[0], lines[0]
    assert not models["png"].exists()


@pytest.mark.slow
@pytest.mark.parametrize("limit", sorted(TIGHT))
def test_split_track_on_dask_honours_every_limit(models, limit):
    """``track --workers 2``: each checkpoint's count on a local cluster gets the same limits."""
    pytest.importorskip("distributed")
    out = run_cli(*COMMANDS["track"](models), "--workers", "2", limit, TIGHT[limit])
    assert out.exit_code == 2 and WORDS[limit] in out.output, out.output
