"""``regioncount reproduce``: experiment configurations, resumable runs, counted companions, figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from random_nets import run_cli

from regioncount.experiments import (
    ConfigError,
    Experiment,
    GotuExperiment,
    NetSpec,
    SteepExperiment,
    builtin_names,
    load_experiment,
    run_experiment,
)
from regioncount.experiments.config import parse_experiment
from regioncount.experiments.runs import train
from regioncount.io.model_files import load_model
from regioncount.line.exact1d import count_segment

TINY = """
name = "tiny"
figure = "a test"
quoted = "nothing"
chosen = "two nets, one target, a few steps"
targets = [2]
seeds = [0]
steps = 40
lr = 0.01
train_points = 64
test_points = 61
[[models]]
kind = "deq"
widths = [3]
[[models]]
kind = "ffn"
shapes = [[4], [3, 3]]
"""


def tiny_config(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def test_shipped_configurations_parse_in_both_settings():
    assert {"sawtooth", "table1", "gotu", "steep"} <= set(builtin_names())
    for name in builtin_names():
        full, quick = load_experiment(name), load_experiment(name, quick=True)
        assert not full.quick and quick.quick and quick.steps <= full.steps
        assert full.quoted and full.chosen
        assert isinstance(full, (GotuExperiment, SteepExperiment)) or full.nets
    assert isinstance(load_experiment("gotu"), GotuExperiment) and load_experiment("gotu").dim == 20
    table = load_experiment("table1")
    assert isinstance(table, Experiment)
    flops = {net.label: net.flops() for net in table.nets}
    assert flops["DEQ m=10"] == 240 and all(200 <= f <= 240 for f in flops.values())


def test_flops_per_iteration():
    assert NetSpec("deq", (10,)).flops() == 2 * (100 + 20)
    assert NetSpec("ffn", (10, 10)).flops() == 2 * (10 + 100 + 10)
    assert NetSpec("ffn", (60,)).flops() == 240


@pytest.mark.parametrize("change, message", [
    ({"targets": [0]}, "targets"), ({"targets": "5"}, "targets"), ({"steps": 10**9}, "steps"),
    ({"lr": 2.0}, "lr"), ({"models": [{"kind": "cnn"}]}, "kind"), ({"models": [{"kind": "deq", "widths": [True]}]}, "widths"),
    ({"models": []}, "models"), ({"name": ""}, "name"), ({"plot": "pie"}, "plot"),
    ({"models": [{"kind": "ffn", "shapes": [[4] * 20]}]}, "hidden layers"),
    ({"task": "mnist"}, "task"), ({"task": "gotu", "dim": 1}, "dim"), ({"task": "gotu", "dim": 100}, "dim"),
])
def test_bad_configurations_are_refused_by_name(change, message):
    data = {"name": "x", "figure": "f", "quoted": "q", "chosen": "c", "targets": [2], "seeds": [0], "steps": 5,
            "lr": 0.01, "train_points": 8, "test_points": 7, "models": [{"kind": "deq", "widths": [2]}]}
    with pytest.raises(ConfigError, match=message):
        parse_experiment(data | change, quick=False)


def test_unknown_names_and_bad_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    for arg in ("no-such-experiment", str(bad)):
        result = run_cli(*["reproduce", arg, "--out", str(tmp_path / "out")])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_training_is_repeatable_and_leaves_the_global_random_state_alone():
    data = {"name": "x", "figure": "f", "quoted": "q", "chosen": "c", "targets": [2], "seeds": [0], "steps": 20,
            "lr": 0.01, "train_points": 16, "test_points": 15, "models": [{"kind": "deq", "widths": [3]}]}
    experiment = parse_experiment(data, quick=False)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first, loss1, _, _ = train(experiment.nets[0], 2, 7, experiment)
    assert torch.equal(torch.random.get_rng_state(), before)
    second, loss2, _, _ = train(experiment.nets[0], 2, 7, experiment)
    assert loss1 == loss2 and torch.equal(first.W, second.W) and torch.equal(first.U, second.U)
    other, _, _, _ = train(experiment.nets[0], 2, 8, experiment)
    assert not torch.equal(first.U, other.U)


def test_a_run_saves_counts_and_reuses(tmp_path):
    """The CLI's JSON has the stated shape; every saved net recounts to its reported regions; a second call
    reads every run back; a changed setting trains again."""
    config, out = tiny_config(tmp_path), tmp_path / "out"
    result = run_cli(*["reproduce", str(config), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["experiments"][0]
    assert report["experiment"] == "tiny" and report["reused_runs"] == 0 and len(report["runs"]) == 3
    assert Path(report["figure_file"]).is_file() and (out / "tiny" / "results.json").is_file()
    for run in report["runs"]:
        assert {"m", "kind", "widths", "seed", "train_loss", "test_loss", "regions", "pieces", "count_method",
                "flops", "parameters", "model_file"} <= set(run)
        model = load_model(out / "tiny" / run["model_file"])
        recount = count_segment(model, interval=(0.0, 1.0), device="cpu")
        assert (recount.activation_regions, recount.linear_pieces) == (run["regions"], run["pieces"])
        assert run["count_method"] == "exact" and run["test_loss"] >= 0
    again = json.loads(run_cli(*["reproduce", str(config), "--out", str(out), "--json"]).output)["experiments"][0]
    assert again["reused_runs"] == 3 and again["runs"] == report["runs"]
    changed = tiny_config(tmp_path, TINY.replace("steps = 40", "steps = 41"))
    third = run_experiment(load_experiment(str(changed)), out)
    assert third.reused == 0 and all(run.steps == 41 for run in third.runs)


def test_checkpoints_along_training_are_saved_and_counted(tmp_path):
    """``checkpoints = 2``: snapshots at steps 0, 20 and 40, each a saved file recounted to its row; the last
    is the trained net itself."""
    config, out = tiny_config(tmp_path, TINY.replace("steps = 40", "steps = 40\ncheckpoints = 2")), tmp_path / "o"
    result = run_experiment(load_experiment(str(config)), out)
    for run in result.runs:
        along = run.along_training
        assert [row["step"] for row in along] == [0, 20, 40]
        for row in along:
            recount = count_segment(load_model(out / "tiny" / row["model_file"]), interval=(0.0, 1.0), device="cpu")
            assert (recount.activation_regions, recount.linear_pieces) == (row["regions"], row["pieces"])
        assert (along[-1]["regions"], along[-1]["pieces"]) == (run.regions, run.pieces)
        assert along[-1]["train_loss"] == run.train_loss
    figure = run_cli(*["reproduce", str(config), "--out", str(out), "--json"])
    assert json.loads(figure.output)["experiments"][0]["reused_runs"] == 3


def test_the_table_names_each_net_and_its_counts(tmp_path):
    result = run_cli(*["reproduce", str(tiny_config(tmp_path)), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "DEQ m=3" in result.output and "FFN 3x3" in result.output and "regions (exact)" in result.output


GOTU = """
task = "gotu"
name = "tinygotu"
figure = "a test"
quoted = "nothing"
chosen = "d = 4, one seed, a few steps"
dim = 4
seeds = [0]
steps = 30
lr = 0.003
"""


def test_the_gotu_task_shares_the_bias_study_and_resumes(tmp_path):
    """The GOTU experiment: the linear models' errors equal their closed forms (the implicit bias), the
    trained baselines report their training loss, four feature maps; a second call reads it back."""
    config, out = tiny_config(tmp_path, GOTU), tmp_path / "out"
    result = run_cli(*["reproduce", str(config), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["experiments"][0]
    assert report["task"] == "gotu" and report["reused_runs"] == 0 and Path(report["figure_file"]).is_file()
    rows = report["gotu"]
    assert {row["target"] for row in rows} == {"f1", "f2"} and len(report["features"]) == 3
    for row in rows:
        if row["gotu_error_closed_form"] is not None:
            assert row["gotu_error_trained"] == pytest.approx(row["gotu_error_closed_form"], rel=1e-6, abs=1e-9)
        else:
            assert row["train_loss"] is not None and row["train_loss"] >= 0
    again = json.loads(run_cli(*["reproduce", str(config), "--out", str(out), "--json"]).output)["experiments"][0]
    assert again["reused_runs"] == 1 and again["gotu"] == rows
    table = run_cli(*["reproduce", str(config), "--out", str(out)])
    assert table.exit_code == 0 and "GOTU error" in table.output and "diagonal linear DEQ" in table.output


STEEP = """
task = "steep"
name = "tinysteep"
figure = "a test"
quoted = "nothing"
chosen = "d = 4 and 6, four knots, a few steps"
dims = [4, 6]
knots = 2
ffn_depth = 1
ffn_width = 4
seeds = [0]
steps = 20
lr = 0.05
train_points = 64
"""


def test_the_steep_task_trains_counts_and_bounds(tmp_path):
    """The steep task: a DEQ and an FFN per dimension; the DEQ's weights <= 1 and its measured error within its
    proven bound; both recount to their rows from the saved files; a second call reads every run back."""
    config, out = tiny_config(tmp_path, STEEP), tmp_path / "out"
    result = run_cli(*["reproduce", str(config), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["experiments"][0]
    assert report["task"] == "steep" and len(report["runs"]) == 4 and Path(report["figure_file"]).is_file()
    for run in report["runs"]:
        model = load_model(out / "tinysteep" / run["model_file"])
        d = run["d"]
        recount = count_segment(model, segment=([0.0] + [0.5] * (d - 1), [1.0] + [0.5] * (d - 1)),
                                assume_well_posed=run["kind"] == "deq", device="cpu")
        # the DEQ's regions come from the lemma (one per piece of H); the general-W walk agrees here
        assert recount.activation_regions == run["regions"] and run["count_method"].startswith("exact")
        if run["kind"] == "deq":
            assert run["max_abs_weight"] <= 1 and run["sup_error"] <= run["proven_error"] + 1e-9
    again = json.loads(run_cli(*["reproduce", str(config), "--out", str(out), "--json"]).output)["experiments"][0]
    assert again["reused_runs"] == 4
    table = run_cli(*["reproduce", str(config), "--out", str(out)])
    assert table.exit_code == 0 and "DEQ, bisection" in table.output


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sawtooth", "table1", "gotu", "steep"])
def test_each_quick_experiment_runs(name, tmp_path):
    result = run_cli(*["reproduce", name, "--quick", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["experiments"][0]
    experiment = load_experiment(name, quick=True)
    assert Path(report["figure_file"]).stat().st_size > 10_000
    if isinstance(experiment, GotuExperiment):
        assert len(report["gotu"]) == 10 and len(report["features"]) == 3
        return
    if isinstance(experiment, SteepExperiment):
        assert len(report["runs"]) == 2 * len(experiment.dims) * len(experiment.seeds)
        return
    assert len(report["runs"]) == len(experiment.targets) * len(experiment.nets) * len(experiment.seeds)
    assert all(run["count_method"] == "exact" for run in report["runs"])


def test_the_list_names_every_shipped_experiment():
    listed = json.loads(run_cli(*["reproduce", "--list", "--json"]).output)["experiments"]
    assert {row["name"] for row in listed} == set(builtin_names())
    assert next(row for row in listed if row["name"] == "table1")["runs"] == 15
    quick = json.loads(run_cli(*["reproduce", "--list", "--quick", "--json"]).output)["experiments"]
    assert next(row for row in quick if row["name"] == "table1")["runs"] == 10
    table = run_cli(*["reproduce", "--list"])
    assert table.exit_code == 0 and "Table 1" in table.output


def test_an_output_folder_that_is_a_file_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli(*["reproduce", str(tiny_config(tmp_path)), "--out", str(blocker)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
