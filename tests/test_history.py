"""RunHistory, the one fold of a run's events, against hand-written event lists: a resume forgets what it
redoes, memory stays bounded, failed and empty runs read sensibly, and every face reads the same numbers."""

from __future__ import annotations

import io
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from snnlab.console import summary_table
from snnlab.engine.events import (
    EpochMetrics,
    Event,
    HealthReport,
    LayerHealth,
    ProbeRecorded,
    RunFailed,
    RunFinished,
    RunStarted,
    StepMetrics,
)
from snnlab.history import Downsampled, RunHistory
from snnlab.runs import RunDir, RunWriter, metric_history, read_history, read_summary, summary_of
from snnlab.sweep import trial_metrics
from snnlab.tui.metrics import RunMetrics

BATCHES = 10
CONFIG = {"run": {"name": "demo"}, "data": {"dataset": "synthetic"}}


def started(start_epoch: int = 0, t: float = 1000.0, epochs: int = 3) -> RunStarted:
    return RunStarted(run_name="demo", device="cpu", config=CONFIG, num_parameters=99, train_size=100,
                      test_size=20, steps_per_epoch=BATCHES, epochs=epochs, start_epoch=start_epoch,
                      time=t)  # fmt: skip


def epoch_events(epoch: int, accuracy: float, best: float, speed: float, t: float) -> list[Event]:
    """The steps of one epoch (every step logged), its evaluation and a probe; times from ``t`` on."""
    events: list[Event] = []
    first = (epoch - 1) * BATCHES
    for batch in range(1, BATCHES + 1):
        step = first + batch
        events.append(StepMetrics(epoch=epoch, step=step, batch=batch, batches=BATCHES, loss=1.0 / step,
                                  accuracy=accuracy, samples_per_s=speed, lr=1e-3, step_time=0.01,
                                  time=t + batch))  # fmt: skip
    events.append(EpochMetrics(epoch=epoch, step=first + BATCHES, train_loss=0.5, train_accuracy=accuracy,
                               test_loss=1 - accuracy, test_accuracy=accuracy, spike_rates={"fc1": accuracy / 10},
                               epoch_time=5.0 * epoch, best_accuracy=best, time=t + BATCHES + 1))  # fmt: skip
    events.append(ProbeRecorded(epoch=epoch, step=first + BATCHES, samples=[0], labels=[1], time=t + BATCHES + 2))
    return events


def resumed_run() -> list[Event]:
    """A run killed in epoch 4 whose last checkpoint was at epoch 1: the resume redoes epochs 2 and 3 (worse
    than the first time, at another speed) and finishes the run."""
    first = [started(t=1000.0)]
    first += epoch_events(1, 0.5, 0.5, 100.0, 1000.0)
    first += epoch_events(2, 0.9, 0.9, 100.0, 1100.0)
    first += epoch_events(3, 0.95, 0.95, 100.0, 1200.0)
    first += epoch_events(4, 0.97, 0.97, 100.0, 1300.0)[:4]  # killed after 4 steps of epoch 4
    second: list[Event] = [started(start_epoch=1, t=5000.0, epochs=4)]
    second += epoch_events(2, 0.6, 0.6, 400.0, 5000.0)
    second += epoch_events(3, 0.7, 0.7, 400.0, 5100.0)
    second += epoch_events(4, 0.65, 0.7, 400.0, 5200.0)
    second.append(RunFinished(status="completed", epochs_done=4, steps=40, best_accuracy=0.7, final_test_accuracy=0.65,
                              final_test_loss=0.35, wall_time=77.0, time=5300.0))  # fmt: skip
    return first + second


# ------------------------------------------------------------------------------------------------ resumes


def test_a_resume_forgets_the_epochs_and_steps_it_redoes():
    events = resumed_run()
    cut = events.index(started(start_epoch=1, t=5000.0, epochs=4))
    history = RunHistory.of(events[: cut + 1])
    # Just resumed: where the checkpoint was, not where the killed session got to.
    assert [row.epoch for row in history.epoch_rows] == [1]
    assert (history.status, history.epochs_done, history.steps_done) == ("running", 1, BATCHES)
    assert history.best_accuracy == 0.5 and history.final_test_accuracy == 0.5
    assert history.loss.xs == list(range(1, BATCHES + 1))
    assert history.started == 1000.0 and history.resumed_from_epoch == 1 and history.resumed == 5000.0

    for event in events[cut + 1 :]:
        history.apply(event)
    assert [row.test_accuracy for row in history.epoch_rows] == [0.5, 0.6, 0.7, 0.65]  # the redone values
    assert history.loss.xs == list(range(1, 4 * BATCHES + 1))  # each step once, in order
    assert history.mean_samples_per_s == pytest.approx((10 * 100 + 30 * 400) / 40)
    assert history.best_epoch is not None and history.best_epoch.epoch == 3
    assert (history.status, history.epochs_done, history.steps_done, history.wall_time) == ("completed", 4, 40, 77.0)

    columns = metric_history(events)
    assert columns["steps"]["step"] == list(range(1, 41))
    assert columns["steps"]["epoch"] == [(s - 1) // BATCHES + 1 for s in range(1, 41)]
    assert columns["steps"]["samples_per_s"] == [100.0] * 10 + [400.0] * 30
    assert columns["epochs"]["epoch"] == [1, 2, 3, 4]
    assert columns["epochs"]["spike_rates"] == {"fc1": pytest.approx([0.05, 0.06, 0.07, 0.065])}


def test_health_reports_are_folded_per_evaluation_and_a_resume_forgets_the_redone_ones():
    def health(epoch: int, silent: float, t: float) -> HealthReport:
        layer = LayerHealth(silent, 0.0, 0.1, 0.2, 1.0, 50.0)
        return HealthReport(epoch=epoch, step=epoch * BATCHES, by_layer={"fc1": layer}, synops=50.0, time=t)

    plain = resumed_run()
    assert RunHistory.of(plain).health is None  # a run from before health reports reads as before
    events: list[Event] = []
    for event in plain:  # a report after each evaluation, the k-th with fc1 silent at k/10
        events.append(event)
        if isinstance(event, EpochMetrics):
            reports = sum(isinstance(e, HealthReport) for e in events)
            events.append(health(event.epoch, silent=(reports + 1) / 10, t=event.time))
    cut = events.index(started(start_epoch=1, t=5000.0, epochs=4))
    history = RunHistory.of(events[: cut + 1])
    assert [row.epoch for row in history.health_rows] == [1] and history.health.by_layer["fc1"].silent == 0.1
    history = RunHistory.of(events)
    kept = [(row.epoch, row.by_layer["fc1"].silent) for row in history.health_rows]
    assert kept == [(1, 0.1), (2, 0.4), (3, 0.5), (4, 0.6)]  # the redone epochs' second reports
    assert history.health is history.health_rows[-1]


def test_a_resume_from_inside_the_first_epoch_starts_the_numbers_over_but_not_the_clock():
    events = [started(t=1000.0), *epoch_events(1, 0.5, 0.5, 100.0, 1000.0)[:7], started(start_epoch=0, t=2000.0)]
    history = RunHistory.of(events)
    assert history.epoch_rows == [] and len(history.loss) == 0 and history.steps_done == 0
    assert history.started == 1000.0 and history.resumed_from_epoch == 0
    assert summary_of(history)["resumed_from_epoch"] == 0


def test_the_lab_forgets_redone_epochs_and_probes_live_as_when_it_reads_the_run(tmp_path):
    events = resumed_run()
    live = RunMetrics()
    for i in range(0, len(events), 7):  # as the drain timer hands them over
        live.apply(events[i : i + 7])
    run = write(tmp_path, events)
    read = RunMetrics.of_run(run)
    for m in (live, read):
        assert [row.epoch for row in m.epoch_rows] == [1, 2, 3, 4]
        assert m.epoch_series("test_accuracy") == ([1.0, 2.0, 3.0, 4.0], [0.5, 0.6, 0.7, 0.65])
        assert m.loss.xs == sorted(set(m.loss.xs)) and m.loss.xs[-1] == 40
        assert [p.epoch for p in m.probes] == [1, 2, 3, 4]
        assert (m.status, m.best_accuracy, m.wall_time, m.epoch, m.step) == ("completed", 0.7, 77.0, 4, 40)
    assert read.csv_rows() == live.csv_rows()


def test_every_reader_gives_a_resumed_run_the_same_numbers(tmp_path):
    events = resumed_run()
    run = write(tmp_path, events)
    history = read_history(run)
    lab = RunMetrics.of_run(run)
    assert trial_metrics(run) == (0.7, 5.0 + 10.0 + 15.0, pytest.approx(0.07), "rate")  # to best: epochs 1-3, once
    summary = read_summary(run)
    assert summary is not None
    assert (summary["best_accuracy"], summary["epochs_done"], summary["steps"]) == (0.7, 4, 40)
    assert (summary["test_accuracy"], summary["wall_time"], summary["resumed_from_epoch"]) == (0.65, 77.0, 1)
    assert summary == summary_of(history)  # what the writer built event by event is the fold of the file
    assert (lab.best_accuracy, lab.wall_time, lab.last_epoch) == (0.7, 77.0, history.last_epoch)
    shown = table_rows(history)
    assert (shown["epochs"], shown["steps"], shown["best test accuracy"]) == ("4/4", "40", "70.0% (rate)")
    assert shown["samples/s (mean)"] == "325"  # (10 x 100 + 30 x 400) / 40, without the 30 redone steps


def test_the_summary_follows_a_resume_as_it_happens(tmp_path):
    events = resumed_run()
    cut = events.index(started(start_epoch=1, t=5000.0, epochs=4))
    run = write(tmp_path, events[:cut])
    assert read_summary(run)["epochs_done"] == 3 and read_summary(run)["best_accuracy"] == 0.95
    with RunWriter(RunDir.open(run)) as writer:  # a new process: it learns the run from events.jsonl
        writer(events[cut])
        summary = read_summary(run)
        assert (summary["status"], summary["started"], summary["epochs_done"], summary["steps"]) == (
            "running", 1000.0, 1, BATCHES)  # fmt: skip
        assert summary["best_accuracy"] == 0.5 and summary["test_accuracy"] == 0.5  # not epoch 3's, redone
        for event in events[cut + 1 :]:
            writer(event)
    assert read_summary(run) == summary_of(read_history(run))


# ------------------------------------------------------------------------------------------------ memory


def test_a_long_run_keeps_bounded_series_that_cover_it_all_and_a_resume_cuts_them():
    history = RunHistory(step_points=64)
    history.apply(started(epochs=1000))
    step = 0
    for epoch in range(1, 101):
        for _ in range(1000):
            step += 1
            history.apply(StepMetrics(epoch=epoch, step=step, batch=step - 1000 * (epoch - 1), batches=1000,
                                      loss=1.0, accuracy=0.5, samples_per_s=10.0, lr=0.1, step_time=0.1,
                                      time=1000.0 + step))  # fmt: skip
    for series in (history.loss, history.accuracy, history.speed, history.lr):
        assert len(series) < 64 and series.xs[0] <= 4096 and series.xs[-1] >= 100_000 - series.bucket
    assert history.mean_samples_per_s == 10.0 and history.steps_done == 100_000

    history.apply(started(start_epoch=60, t=9e5, epochs=1000))
    assert history.loss.xs and max(history.loss.xs) <= 60_000 and history.steps_done == 60_000
    assert history.loss.xs[-1] >= 60_000 - history.loss.bucket  # at most one bucket of points lost

    numbers_only = RunHistory.of([started(), *epoch_events(1, 0.5, 0.5, 100.0, 1000.0)], step_points=0)
    assert len(numbers_only.loss) == 0 and numbers_only.steps_done == BATCHES
    assert numbers_only.mean_samples_per_s == 100.0 and numbers_only.best_accuracy == 0.5


def test_downsampled_cut_drops_stored_and_pending_points_after_it():
    series = Downsampled(capacity=8)
    for i in range(1, 21):
        series.append(i, float(i))
    series.cut(10)
    assert series.xs and max(series.xs) <= 10
    for i in range(11, 40):
        series.append(i, float(i))
    assert series.xs == sorted(series.xs) and len(series) < 8
    every = Downsampled(capacity=None)
    for i in range(10_000):
        every.append(i, math.inf if i == 5 else float(i))
    assert len(every) == 10_000 and every.ys[5] == math.inf  # every point, as it was written


# ------------------------------------------------------------------------------------------------ ends


def test_a_failed_run_reads_as_failed_with_its_error_and_wall_time():
    events = [started(t=1000.0), *epoch_events(1, 0.5, 0.5, 100.0, 1000.0)]
    failed = RunFailed(error="loss became nan", reason="nan_loss", epoch=1, step=12, time=1030.0)
    history = RunHistory.of([*events, failed])
    assert (history.status, history.error, history.reason, history.wall_time) == (
        "failed", "loss became nan", "nan_loss", 30.0)  # fmt: skip
    assert (history.epochs_done, history.best_accuracy, history.final_test_accuracy) == (1, 0.5, 0.5)
    summary = summary_of(history)
    assert summary["status"] == "failed" and summary["reason"] == "nan_loss" and summary["wall_time"] == 30.0
    assert table_rows(history)["error"] == "loss became nan"

    # Resumed afterwards: running again, the error gone, the clock still from the first start.
    history.apply(started(start_epoch=1, t=2000.0))
    assert (history.status, history.error, history.end, history.started) == ("running", None, None, 1000.0)
    assert "error" not in summary_of(history) and "wall_time" not in summary_of(history)


def test_an_empty_history_and_an_empty_events_file(tmp_path):
    history = RunHistory()
    assert (history.status, history.epochs_done, history.steps_done) == ("empty", 0, 0)
    assert history.best_accuracy is None and history.wall_time is None and history.mean_samples_per_s is None
    assert history.best_epoch is None and history.final_test_loss is None
    assert metric_history([]) == {
        "steps": {k: [] for k in ("step", "epoch", "loss", "accuracy", "samples_per_s", "lr")},
        "epochs": {**{k: [] for k in ("epoch", "step", "test_loss", "test_accuracy", "train_loss",
                                      "train_accuracy", "epoch_time")}, "spike_rates": {}},
    }  # fmt: skip
    run = RunDir(tmp_path, "demo", CONFIG)
    assert read_history(run.path).status == "empty" and trial_metrics(run.path) is None
    metrics = RunMetrics.of_run(run.path)  # nothing folded: the lab shows an idle run with no rows
    assert metrics.status == "idle" and metrics.history.status == "empty" and not metrics.history.epoch_rows
    assert table_rows(read_history(run.path))["status"] == "empty"


def test_the_fold_needs_no_torch_and_no_user_interface():
    code = "import sys, snnlab.history, snnlab.runs, snnlab.sweep; print(sorted(m for m in ('torch', 'textual', " \
           "'rich', 'typer', 'plotext') if m in sys.modules))"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------ helpers


def write(runs_dir: Path, events: list[Event]) -> Path:
    """A run directory holding ``events``, written by the run writer (a new writer at each RunStarted, as a
    resume in a new process would)."""
    run = RunDir(runs_dir, "demo", CONFIG)
    writer = RunWriter(run)
    for event in events:
        if isinstance(event, RunStarted) and event.start_epoch:
            writer.close()
            writer = RunWriter(RunDir.open(run.path))
        writer(event)
    writer.close()
    return run.path


def table_rows(history: RunHistory) -> dict[str, str]:
    """The rows of the console's summary table of ``history``: what -> value, as printed."""
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=100, no_color=True).print(summary_table(history))
    cells = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in out.getvalue().splitlines()[1:]]
    return {cell[0]: cell[1] if len(cell) > 1 else "" for cell in cells}
