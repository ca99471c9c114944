"""`snnlab sweep`: every combination times every seed is a normal run; summary.csv has one row each."""

import csv
import os
import subprocess
import sys

import pytest
import yaml

from snnlab.sweep import SweepRun, parse_grid

pytestmark = pytest.mark.slow  # each sweep run is a training subprocess


def snnlab_sweep(folder, *args):
    """`snnlab sweep tiny.yaml ARGS` in ``folder``, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "snnlab", "sweep", "tiny.yaml", *args], cwd=folder,
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip


def test_grid_values_are_read_as_yaml():
    grid = parse_grid(["model.neuron.surrogate=atan,sigmoid", "train.lr=1e-3,2.0e-3", "model.fused=true"])
    assert grid == {"model.neuron.surrogate": ["atan", "sigmoid"], "train.lr": [0.001, 0.002], "model.fused": [True]}
    # Values with commas of their own go as one YAML list.
    assert parse_grid(["train.betas=[[0.9, 0.999], [0.8, 0.99]]"]) == {"train.betas": [[0.9, 0.999], [0.8, 0.99]]}
    assert parse_grid(["train.lr=[1e-3, 2e-3]"]) == {"train.lr": [0.001, 0.002]}


def test_a_two_by_two_sweep_writes_four_runs_and_a_summary(tmp_path, tiny_config_dict):
    tiny_config_dict["train"]["epochs"] = 1
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config_dict))
    out = snnlab_sweep(tmp_path, "--grid", "model.neuron.surrogate=atan,fast_sigmoid", "--seeds", "2", "--workers", "2")
    assert out.returncode == 0, out.stderr
    (sweep,) = (tmp_path / "runs").iterdir()
    assert sweep.name.startswith("sweep-tiny-")
    run_dirs = [p for p in sweep.iterdir() if p.is_dir()]
    assert len(run_dirs) == 4 and all((p / "summary.json").is_file() for p in run_dirs)
    with open(sweep / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["model.neuron.surrogate"] for r in rows] == ["atan", "fast_sigmoid"]
    assert all(r["n"] == "2" and 0 <= float(r["best_acc_mean"]) <= 1 and r["failed_seeds"] == "" for r in rows)
    assert "best_acc_mean" in out.stdout and "fast_sigmoid" in out.stdout and "Traceback" not in out.stderr
    # Progress on stderr, the table (and where the sweep went) on stdout: a redirected stdout is only the table.
    assert out.stderr.startswith("sweep: 4 runs, 2 at a time, in ") and out.stderr.count("] ok\n") == 4
    assert "sweep:" not in out.stdout and "] ok" not in out.stdout
    assert out.stdout.splitlines()[-1] == f"sweep directory: runs/{sweep.name}"

    # The sweep is listed with the runs, and `runs show` rebuilds its table from the run directories.
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "snnlab", *args], cwd=tmp_path, capture_output=True, text=True)

    assert sweep.name in cli("runs").stdout
    shown = cli("runs", "show", sweep.name).stdout
    for row in rows:
        percent = f"{100 * float(row['best_acc_mean']):.1f}%"  # the table shows percent, the csv fractions
        assert f"{row['model.neuron.surrogate']}" in shown and percent in shown


def test_a_failing_run_fails_the_sweep_and_is_named(tmp_path, tiny_config_dict):
    tiny_config_dict["train"]["epochs"] = 1
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config_dict))
    # MNIST is not there and may not be downloaded: that run fails, the bundled one completes.
    out = snnlab_sweep(tmp_path, "--grid", "data.dataset=bundled,mnist", "--set", "data.download=false",
                       "--set", "data.data_dir=nowhere")  # fmt: skip
    (sweep,) = (tmp_path / "runs").iterdir()
    with open(sweep / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert out.returncode == 1
    assert rows[0]["n"] == "1" and rows[1]["n"] == "0" and rows[1]["failed_seeds"] == "1"
    assert "failed" in out.stderr
    assert all(line.count("snnlab: error") <= 1 for line in out.stderr.splitlines()), out.stderr


def test_a_bad_grid_key_is_a_usage_error_before_any_run(tmp_path, tiny_config_dict):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config_dict))
    out = snnlab_sweep(tmp_path, "--grid", "train.lrr=1,2")
    assert out.returncode == 2 and "lrr" in out.stderr
    assert not (tmp_path / "runs").exists()


def test_a_sweep_folder_is_found_like_a_run_and_a_plain_folder_is_refused(tmp_path):
    from snnlab.config import ConfigError
    from snnlab.runs import find_run
    from snnlab.sweep import list_sweeps, read_sweep

    sweep = tmp_path / "runs" / "sweep-x-20261125-101500"
    sweep.mkdir(parents=True)
    (sweep / "sweep.yaml").write_text(yaml.safe_dump({"grid": {"train.lr": [0.001]}, "seeds": 1}))
    (tmp_path / "runs" / "other").mkdir()
    assert find_run(tmp_path / "runs", sweep) == sweep
    assert list_sweeps(tmp_path / "runs") == [sweep]
    assert read_sweep(sweep) == (["train.lr"], [])
    try:
        read_sweep(tmp_path / "runs" / "other")
    except ConfigError as exc:
        assert "is not a sweep folder" in str(exc)
    else:
        raise AssertionError("a folder without sweep.yaml was read as a sweep")


def test_ctrl_c_stops_the_sweep_and_summarizes_what_finished(tmp_path, tiny_config_dict):
    import signal
    import time

    tiny_config_dict["train"]["epochs"] = 1
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config_dict))
    command = [sys.executable, "-m", "snnlab", "sweep", "tiny.yaml", "--grid", "train.lr=1e-3,2e-3,3e-3"]
    command += ["--seeds", "3"]
    # A session of its own, so that the Ctrl-C below reaches the sweep and its runs as a terminal's would;
    # started with SIGINT ignored, as a shell starts a background job of a script (where this test once
    # failed: the runs stopped, the sweep, which relied on Python's default handler, went on).
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("runs/sweep-*/*/summary.json")):
        time.sleep(0.05)  # until the first run has started
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "sweep interrupted" in stderr and "Traceback" not in stderr
    (sweep,) = (tmp_path / "runs").iterdir()
    runs = [p for p in sweep.iterdir() if p.is_dir()]
    assert 1 <= len(runs) < 9  # the rest never started
    with open(sweep / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and sum(int(r["n"]) for r in rows) < 9
    assert all(r["failed_seeds"] == "" for r in rows)  # stopped and unstarted runs are not failures


def test_run_labels_name_the_keys_and_the_legend_label_only_the_values(tmp_path):
    run = SweepRun(tmp_path, ("atan", 0.001), seed=0, combination=0)
    keys = ["model.neuron.surrogate", "train.lr"]
    assert run.label(keys) == "surrogate=atan lr=0.001"
    assert run.short_label == "atan/0.001"
    assert SweepRun(tmp_path, ("atan",), seed=0, combination=0).label(keys[:1]) == "atan"


def test_the_table_shows_accuracy_in_percent_and_the_csv_as_a_fraction(tmp_path):
    from snnlab.sweep import Row, table, write_csv

    rows = [Row(("atan",), 2, 0.8532, 0.0121, 3.5, 0.125), Row(("sigmoid",), 0, None, None, None, None, [1, 2])]
    shown = table(["model.neuron.surrogate"], rows)
    assert "85.3%" in shown and "1.2%" in shown and "0.8532" not in shown  # as `snnlab runs` shows accuracy
    write_csv(tmp_path / "summary.csv", ["model.neuron.surrogate"], rows)
    with open(tmp_path / "summary.csv", newline="") as f:
        first = next(csv.DictReader(f))
    assert first["best_acc_mean"] == "0.8532"  # data for programs: a fraction, as events and summary.json hold it


def test_a_failed_runs_error_is_reported_without_its_own_prefix():
    from snnlab.sweep import _error_line

    stderr = "epoch 1/2 ...\nsnnlab: error: dataset 'mnist' not found in nowhere\nrun directory: runs/x\n"
    assert _error_line(stderr) == "dataset 'mnist' not found in nowhere"
    assert _error_line("snnlab: error (rank 1): out of memory on cuda:1\n") == "out of memory on cuda:1"
    assert _error_line("Killed\n") == "Killed"


def test_generated_run_names_stay_valid_run_names(tmp_path, tiny_config_dict):
    from snnlab.config import MAX_RUN_NAME, config_from_dict
    from snnlab.sweep import plan

    tiny_config_dict["run"]["name"] = "n" * (MAX_RUN_NAME - 5)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config_dict))
    _, trials = plan(tmp_path / "tiny.yaml", {"model.neuron.surrogate": ["atan", "fast_sigmoid"]}, 12, [])
    for trial in trials:
        assert trial.name.endswith(f"-seed{trial.seed}") and len(trial.name) <= MAX_RUN_NAME
        config_from_dict({**tiny_config_dict, "run": {"name": trial.name}})  # the run will accept it


def test_a_run_killed_by_the_ctrl_c_while_python_starts_counts_as_interrupted_not_failed(tmp_path, monkeypatch):
    import signal
    import threading

    from snnlab import sweep
    from snnlab.exitcodes import Exit

    class KilledBySigint:  # what Popen reports for a child that died of SIGINT before snnlab could handle it
        returncode = -signal.SIGINT

        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def communicate(self):
            return "", "KeyboardInterrupt\n"

    monkeypatch.setattr(sweep.subprocess, "Popen", KilledBySigint)
    trial = sweep.Trial(values=(0.001,), seed=0, name="t", overrides=[])
    sweep._launch(trial, tmp_path / "p.yaml", tmp_path, tmp_path / "t-1", None, None, set(), threading.Lock(), [])
    assert trial.returncode == Exit.INTERRUPTED
    (row,) = sweep.summarize(["train.lr"], [trial])
    assert row.failed_seeds == [] and row.n == 0
