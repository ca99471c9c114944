"""`snnlab runs --json` and `snnlab runs show RUN --json`: what the tables show, whole, for scripts."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from snnlab.runs import RunDir, RunWriter
from tests.cli.test_runs import CONFIG, snnlab, training_events, with_decoder, write_run

LONG = "a-run-name-far-too-long-for-eighty-columns-of-terminal"


def strict(text: str):
    """JSON as any reader takes it: NaN and Infinity are not JSON."""

    def refuse(constant: str):
        raise AssertionError(f"{constant} in the output")

    return json.loads(text, parse_constant=refuse)


def a_sweep(root: Path) -> tuple[Path, RunDir]:
    sweep = root / "sweep-demo-20261130-120000"
    sweep.mkdir()
    (sweep / "sweep.yaml").write_text(yaml.safe_dump({"grid": {"train.lr": [0.001]}}))
    config = {**CONFIG, "train": {"lr": 0.001, "seed": 0}}
    inner = RunDir(sweep, "demo-lr_0.001-seed0", config, now=0)
    with RunWriter(inner) as writer:
        for event in training_events():
            writer(event)
    return sweep, inner


def test_runs_json_lists_every_run_with_whole_values(tmp_path: Path) -> None:
    run = write_run(tmp_path, with_decoder(training_events(), "rate_first"), name=LONG)
    sweep, inner = a_sweep(tmp_path)
    out = snnlab("runs", "--json", "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    listed = {row["run"]: row for row in strict(out.stdout)}
    assert set(listed) == {run.path.name, inner.path.name}
    top = listed[run.path.name]
    assert top["path"] == str(run.path) and top["sweep"] is None and top["status"] == "completed"
    assert (top["best_accuracy"], top["decoder"], top["epochs_done"], top["epochs"]) == (0.9, "rate_first", 2, 2)
    assert top["test_loss"] == 0.3 and top["dataset"] == "synthetic"
    assert listed[inner.path.name]["sweep"] == sweep.name
    empty = snnlab("runs", "--json", "--runs-dir", str(tmp_path / "none"), cwd=tmp_path)
    assert empty.returncode == 0 and strict(empty.stdout) == []


def test_a_piped_runs_table_keeps_its_header_on_one_line(tmp_path: Path) -> None:
    run = write_run(tmp_path, training_events(), name=LONG)
    out = snnlab("runs", "--runs-dir", str(tmp_path), cwd=tmp_path)  # stdout is a pipe
    assert out.returncode == 0, out.stderr
    (header,) = [line for line in out.stdout.splitlines() if "status" in line]
    assert header.split() == ["run", "status", "dataset", "epochs", "best", "acc", "wall", "time"]
    (row,) = [line for line in out.stdout.splitlines() if run.path.name in line]
    assert row.split()[:4] == [run.path.name, "completed", "synthetic", "2/2"]


def test_runs_show_json_holds_the_config_summary_and_every_evaluation(tmp_path: Path) -> None:
    events = training_events()
    events[-3].test_loss = float("nan")  # the last evaluation diverged: null in JSON, not NaN
    run = write_run(tmp_path, events)
    out = snnlab("runs", "show", run.path.name, "--json", "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    shown = strict(out.stdout)
    assert shown["run"] == run.path.name and shown["status"] == "completed" and shown["config"] == CONFIG
    metrics = shown["metrics"]
    assert (metrics["best_accuracy"], metrics["best_epoch"], metrics["final_test_accuracy"]) == (0.9, 2, 0.9)
    assert metrics["steps"] == 40 and metrics["decoder"] == "rate"
    assert [row["epoch"] for row in shown["epochs"]] == [1, 2]
    assert [row["test_accuracy"] for row in shown["epochs"]] == [0.7, 0.9]
    assert [row["test_loss"] for row in shown["epochs"]] == [0.6, None]
    assert shown["skipped_lines"] == 0


def test_runs_show_json_of_a_damaged_run_is_still_json_and_one_error_line(tmp_path: Path) -> None:
    run = write_run(tmp_path, training_events())
    (run.path / "events.jsonl").unlink()
    out = snnlab("runs", "show", run.path.name, "--json", "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 2
    (line,) = out.stderr.splitlines()
    assert line.startswith("snnlab: error: ") and "no events file" in line
    shown = strict(out.stdout)
    assert shown["config"] == CONFIG and shown["metrics"] is None and shown["epochs"] == []


def test_runs_show_json_of_a_sweep_gives_its_summary_rows(tmp_path: Path) -> None:
    sweep, _ = a_sweep(tmp_path)
    out = snnlab("runs", "show", sweep.name, "--json", "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    shown = strict(out.stdout)
    assert shown["sweep"] == sweep.name and shown["keys"] == ["train.lr"]
    (row,) = shown["rows"]
    assert row["values"] == {"train.lr": 0.001} and row["n"] == 1 and row["best_accuracy_mean"] == 0.9
