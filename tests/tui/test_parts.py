"""The lab's parts that need no app: bounded metric buffers, the plotting function, the event sources."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from snnlab.tui.metrics import Downsampled, RunMetrics
from snnlab.tui.widgets.plotting import HLine, Series, render_plot
from snnlab.tui.widgets.surrogate_lab import param_label
from snnlab.tui.worker import ReplaySource
from tests.tui.conftest import fake_events


def test_metrics_keep_bounded_buffers_for_long_runs():
    metrics = RunMetrics()
    events = fake_events(steps=5000, epochs=2)
    metrics.apply(events)
    assert len(metrics.loss) < 2048 and metrics.loss.xs[-1] > 9000  # the whole run, at lower resolution
    assert len(metrics.probes) == 2 and metrics.status == "completed"


def test_downsampling_halves_resolution_instead_of_dropping_the_start():
    series = Downsampled(capacity=8)
    for i in range(100):
        series.append(i, float(i))
    assert len(series) < 8 and series.xs[0] < 16 and series.xs[-1] >= 90
    assert series.ys == sorted(series.ys)  # averages of neighbours keep the trend


def test_eta_comes_from_event_times():
    metrics = RunMetrics()
    metrics.apply(fake_events(finish=False)[:11])  # RunStarted + 10 steps, 0.05 s apart, 60 steps planned
    assert metrics.eta() == pytest.approx(50 * 0.05, rel=1e-4)


def test_render_plot_fills_its_box_and_skips_non_finite_values():
    text = render_plot([Series([0, 1, 2, 3], [1.0, float("nan"), 3.0, 2.0], "cyan", "loss")], 40, 10,
                       hlines=[HLine(2.5, "red", "threshold")], x_label="step")  # fmt: skip
    lines = text.plain.split("\n")
    assert len(lines) == 10 and all(len(line) == 40 for line in lines)
    assert "loss" in lines[0] and "threshold" in lines[0] and "step" in lines[-1]
    assert "no data yet" in render_plot([], 30, 5).plain


def test_replay_source_hands_out_events_in_order():
    events = fake_events()
    source = ReplaySource(events, per_drain=10)
    drained = []
    while chunk := source.drain():
        assert len(chunk) <= 10
        drained += chunk
    assert drained == events and source.failure() is None


def test_the_lab_worker_takes_the_run_directory_lock_like_snnlab_run(tmp_path, tiny):
    from snnlab.engine.events import RunFailed
    from snnlab.runs import RunDir, RunInUseError, lock_run
    from snnlab.tui.worker import TrainingJob, run_training

    run = RunDir(tiny["run"]["runs_dir"], "tiny", tiny)
    with lock_run(run.path):  # another process is training here: the worker writes nothing
        got: list = []
        run_training(tiny, str(run.path), got.append, None, None)
        assert len(got) == 1 and isinstance(got[0], RunFailed) and "is in use" in got[0].error
        assert run.events_path.read_text() == ""

    job = TrainingJob(tiny, run.path, mode="thread")
    job.pause()  # holds the run between two batches
    job.start()
    try:
        deadline = time.time() + 60
        while '"event": "run_started"' not in run.events_path.read_text():
            assert time.time() < deadline and job.alive(), job.drain()
            time.sleep(0.02)
        with pytest.raises(RunInUseError, match=f"run {run.name} is in use: process {os.getpid()} is training"):
            lock_run(run.path)
    finally:
        job.close()
    lock_run(run.path).release()  # released when the training ended


def test_a_long_parameter_label_keeps_its_key():
    assert param_label("atan", "alpha") == "atan.alpha"
    assert param_label("squarewave_fourier_series", "T_period") == "squarewave_….T_period"
    assert len(param_label("piecewise_leaky_relu", "c")) == 21


def test_the_trace_view_draws_a_threshold_line_only_for_a_layer_that_fires():
    from snnlab.tui.widgets.trace_view import TraceView

    membrane = np.linspace(-0.5, 2.0, 10, dtype=np.float32).reshape(10, 1, 1)
    layer = {"membrane": membrane, "spikes": np.zeros((10, 1, 1), np.uint8), "neurons": [0], "threshold": 1.5}
    view = TraceView()
    view.show_layer(layer, 0, [0])
    assert [h.y for h in view._options["hlines"]] == [1.5]
    view.show_layer({**layer, "threshold": None}, 0, [0])  # an expon readout: it never fires
    assert view._options["hlines"] == [] and len(view.series) == 1


@pytest.mark.asyncio
async def test_a_redraw_before_the_panes_exist_is_kept_for_the_next_tick(monkeypatch):
    """A redraw tick that finds a pane missing (start-up on a loaded machine) must not drop the update:
    the status line stayed empty in a snapshot when the first tick came before the panes were composed."""
    import copy

    from textual.css.query import NoMatches

    from snnlab.tui.app import make_app
    from snnlab.tui.widgets.status_bar import StatusBar
    from snnlab.tui.widgets.training_pane import TrainingPane
    from tests.conftest import TINY

    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        bar = app.main.query_one(StatusBar)
        bar.update("")
        draw = TrainingPane.draw

        def missing(self, *args):
            raise NoMatches("not composed yet")

        monkeypatch.setattr(TrainingPane, "draw", missing)
        app._stale.update(("training", "status"))
        app.redraw()
        assert {"training", "status"} <= app._stale and "IDLE" not in str(bar.render())
        monkeypatch.setattr(TrainingPane, "draw", draw)
        app.redraw()
        assert not app._stale and "IDLE" in str(bar.render())


def test_comparison_rows_sort_numbers_lowest_first_with_runs_still_training_last():
    from snnlab.tui.compare import CompareEntry
    from snnlab.tui.metrics import RunMetrics
    from snnlab.tui.widgets.surrogate_lab import _sorted_rows

    def row(name, status, final, wall):
        return CompareEntry(name, {}, RunMetrics(), name=name), (status, final, final, wall, None)

    rows = [row("a", "completed", 0.8, 30.0), row("b", "running", None, None), row("c", "completed", 0.6, 40.0)]
    by = lambda column, reverse=False: [e.label for e, _ in _sorted_rows(rows, column, reverse)]  # noqa: E731
    assert by(2) == ["c", "a", "b"] and by(2, True) == ["a", "c", "b"]  # final accuracy; b has none yet
    assert by(4) == ["a", "c", "b"]  # wall time
    assert by(1) == ["a", "c", "b"] and by(0, True) == ["c", "b", "a"]  # status, name


@pytest.mark.parametrize(("cores", "omp", "expected"), [(4, None, 3), (2, None, 1), (1, None, 1), (4, "4", 4)])
def test_the_training_leaves_one_core_to_the_ui(monkeypatch, cores, omp, expected):
    # A thread on every core made each redraw stall the child's parallel regions (91 -> 7 steps/s measured).
    import torch

    from snnlab.tui import worker

    before = torch.get_num_threads()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    try:
        torch.set_num_threads(4)
        worker._leave_a_core_to_the_ui()
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)
