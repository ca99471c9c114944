"""Small things the lab says and does: export refuses when there is nothing to export, the loss plot says a
run is starting instead of how to start one, and events that arrive as the app closes are dropped."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import pytest
from rich.console import Console

from snnlab.console import summary_table
from snnlab.engine.events import RunFailed, StepMetrics
from snnlab.tui.app import make_app
from snnlab.tui.messages import EventsArrived, SourceFailed
from snnlab.tui.metrics import RunMetrics
from snnlab.tui.widgets.metric_plot import MetricPlot
from snnlab.tui.widgets.status_bar import StatusBar
from snnlab.tui.worker import ReplaySource
from tests.conftest import TINY
from tests.tui.conftest import fake_events, wait_for


@pytest.mark.asyncio
async def test_export_with_no_run_refuses_with_a_toast_and_writes_nothing(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause(0.2)
        messages = [n.message for n in app._notifications]
        assert messages == ["nothing to export yet: train a run (s or F5) or open one (r or F4) first"]
        assert not (tmp_path / "exports").exists()


@pytest.mark.asyncio
async def test_the_loss_plot_says_a_run_is_starting_not_how_to_start_one():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("2")
        plot = app.main.query_one("#plot-loss", MetricPlot)
        await wait_for(pilot, lambda: plot.empty == "press s or F5 to start training", 30, "the idle text")
        app.view = RunMetrics(status="starting", name="tiny")  # as _launch sets it before the first event
        await wait_for(pilot, lambda: plot.empty != "press s or F5 to start training", 30, "the starting text")
        assert plot.empty == "starting: the first step is on its way"
        lines = " ".join(strip.text for strip in plot.render_lines(plot.region.reset_offset))
        assert "starting" in lines and "press" not in lines


@pytest.mark.asyncio
async def test_events_that_arrive_after_exit_are_dropped_without_error():
    # A batch drained just before quitting was once handled with the screens gone: its error dialog raised
    # ScreenStackError. Both handlers and the drain must let such late arrivals go.
    app = make_app(config=copy.deepcopy(TINY), source=ReplaySource(fake_events()))
    late = EventsArrived([RunFailed(error="late", reason="error", time=1.0)])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.view.status == "completed", 30, "the replayed run")
        app.exit()
        app.post_message(late)
        app.post_message(SourceFailed("the producer is gone"))
    assert app.crash is None and app.return_code == 0
    assert not app.screen_stack
    app._apply(late)  # the handlers themselves, as a late message would call them
    app._source_failed(SourceFailed("the producer is gone"))
    app._drain()
    app.redraw()
    assert app.view.status == "completed" and app.view.error is None


@pytest.mark.asyncio
async def test_samples_per_s_is_one_figure_in_the_status_bar_the_training_pane_and_the_console():
    events = fake_events()  # steps at 4,010 .. 4,200 samples/s: a mean of 4,105, the last step 4,200
    expected = f"{sum(e.samples_per_s for e in events if isinstance(e, StepMetrics)) / 60:,.0f}"
    assert expected == "4,105"
    app = make_app(config=copy.deepcopy(TINY), source=ReplaySource(events))
    app.animation_level = "none"
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: app.view.status == "completed", 30, "the replayed run")
        app.redraw()
        await pilot.pause()
        status = str(app.main.query_one(StatusBar).render())
        box = app.main.query_one("#train-summary")
        summary = " ".join(strip.text for strip in box.render_lines(box.region.reset_offset))
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(summary_table(events))
    assert f"{expected} samples/s" in status
    assert f"samples/s {expected} " in " ".join(summary.split())
    assert f"samples/s (mean) {expected}" in " ".join(console.export_text().split())
