"""A run resumed from a checkpoint before its end redoes epochs; `snnlab runs show`, `snnlab runs`, the lab and
a sweep's summary must all show its numbers as the last session made them, each epoch and step once."""

import json
import re

import pytest

from snnlab.formatting import format_duration, format_number, format_percent
from snnlab.runs import RunInfo, read_events
from snnlab.sweep import Trial, summarize, table, trial_metrics
from snnlab.tui.metrics import RunMetrics
from snnlab.tui.widgets.training_pane import summary_table as lab_table
from snnlab.tui.worker import ReplaySource
from tests.cli.test_cli import only_run, snnlab, write

pytestmark = pytest.mark.slow  # three training sessions and `runs show`, as subprocesses


def shown_rows(text: str, title: str) -> dict[str, str]:
    """The rows of the table titled ``title`` in printed output: what -> value."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title) + 1
    rows = {}
    for line in lines[start:]:
        if not line.strip():
            break
        what, *value = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        rows[what] = value[0] if value else ""
    return rows


def lab_rows(metrics: RunMetrics) -> dict[str, str]:
    """The lab's "run" box as text: what -> value (its first column is 13 wide)."""
    from rich.console import Console

    console = Console(width=80, no_color=True)
    with console.capture() as out:
        console.print(lab_table(metrics))
    return {line[:13].strip(): line[13:].strip() for line in out.get().splitlines()}


def test_a_resumed_run_shows_the_same_numbers_in_runs_show_the_lab_and_a_sweep(tmp_path, tiny_config_dict):
    # Session 1 trains epochs 1-2, session 2 goes on to epoch 4; then the epoch-2 checkpoint is put back and
    # session 3 redoes epochs 3-4 with another learning rate, so its numbers differ from session 2's.
    preset = write(tmp_path, tiny_config_dict)
    out = snnlab("run", str(preset), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = only_run(tmp_path)
    last = run / "checkpoints" / "last.pt"
    at_epoch_2 = last.read_bytes()
    for lr in ("0.002", "0.05"):
        out = snnlab("run", "--resume", str(run), "--set", "train.epochs=4", "--set", f"train.lr={lr}", "-q",
                     cwd=tmp_path)  # fmt: skip
        assert out.returncode == 0, out.stderr
        last.write_bytes(at_epoch_2)

    # What the run should read as, worked out from the lines themselves.
    lines = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    starts = [i for i, e in enumerate(lines) if e["event"] == "run_started"]
    assert [lines[i]["start_epoch"] for i in starts] == [0, 2, 2]
    kept = lines[: starts[1]] + lines[starts[2] :]
    redone = lines[starts[1] : starts[2]]
    epochs = [e for e in kept if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]
    assert [e["train_loss"] for e in redone if e["event"] == "epoch"] != [e["train_loss"] for e in epochs[2:]]
    finished = kept[-1]
    assert finished["event"] == "run_finished" and finished["status"] == "completed"
    best = max(epochs, key=lambda e: e["test_accuracy"])
    assert finished["best_accuracy"] == best["test_accuracy"]
    speeds = [e["samples_per_s"] for e in kept if e["event"] == "step"]
    rates = epochs[-1]["spike_rates"]
    to_best = sum(e["epoch_time"] for e in epochs if e["epoch"] <= best["epoch"])

    # `snnlab runs show`, as a user runs it.
    out = snnlab("runs", "show", str(run), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    cli = shown_rows(out.stdout, "metrics")
    assert cli == {
        "status": "completed",
        "epochs": "4/4",
        "steps": str(finished["steps"]),
        "best test accuracy": format_percent(finished["best_accuracy"]) + " (rate)",
        "final test loss": format_number(epochs[-1]["test_loss"]),
        "final test accuracy": format_percent(epochs[-1]["test_accuracy"]) + " (rate)",
        "wall time": format_duration(finished["wall_time"]),
        "device": "cpu",
        "samples/s (mean)": f"{sum(speeds) / len(speeds):,.0f}",
        "spike rate (test)": ", ".join(f"{name} {rate:.3f}" for name, rate in rates.items()),
    }

    # `snnlab runs`: summary.json, which the writer folded as the sessions went.
    info = RunInfo.from_dir(run)
    assert info is not None and info.status == "completed" and info.epochs_done == 4 and info.epochs == 4
    assert info.best_accuracy == finished["best_accuracy"] and info.wall_time == finished["wall_time"]

    # The lab: the run opened from its folder, and the same events handed over live, a few at a time.
    opened = RunMetrics.of_run(run)
    live = RunMetrics()
    source = ReplaySource(read_events(run), per_drain=7)
    while chunk := source.drain():
        live.apply(chunk)
    for metrics in (opened, live):
        assert metrics.status == "completed" and (metrics.epoch, metrics.step) == (4, finished["steps"])
        assert metrics.epoch_series("test_accuracy") == ([1.0, 2.0, 3.0, 4.0], [e["test_accuracy"] for e in epochs])
        assert metrics.loss.xs == sorted(set(metrics.loss.xs))  # each step once
        assert metrics.best_accuracy == finished["best_accuracy"] and metrics.wall_time == finished["wall_time"]
        assert [p.epoch for p in metrics.probes] == [1, 2, 3, 4]
        shown = lab_rows(metrics)
        assert shown["best test acc"] == cli["best test accuracy"] and shown["wall time"] == cli["wall time"]
        assert shown["last test"] == f"loss {epochs[-1]['test_loss']:.3f}  acc {100 * epochs[-1]['test_accuracy']:.1f}%"
    assert opened.csv_rows() == live.csv_rows()

    # A sweep's summary of the run, as if it were the one seed of a one-value grid.
    assert trial_metrics(run) == (best["test_accuracy"], pytest.approx(to_best), pytest.approx(
        sum(best["spike_rates"].values()) / len(best["spike_rates"])), info.decoder)  # fmt: skip
    (row,) = summarize(["train.lr"], [Trial(("x",), 1, run.name, [], run_dir=run, returncode=0)])
    assert row.n == 1 and row.best_accuracy_mean == finished["best_accuracy"]
    assert row.time_to_best_mean == pytest.approx(to_best)
    percent, decoder = cli["best test accuracy"].split()  # "90.0% (rate)"
    assert row.decoder == decoder.strip("()") and [row.decoder, percent] == table(["train.lr"], [row]).split()[10:12]
