"""The lab's plots driven by keys: crosshair, zoom, log y, smoothing, x axis, overlays shown and hidden.

The app replays a fixed run (tests.tui.conftest.fake_events: 3 epochs of 20 steps, 0.05 s a step and 0.5 s
an evaluation), so every value read can be computed here by hand.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import pytest
from textual.widgets import SelectionList

from snnlab.curves import Smoothing, smoothed
from snnlab.engine.events import EpochMetrics, Event, StepMetrics
from snnlab.plotting import fmt_value
from snnlab.tui.app import make_app
from snnlab.tui.metrics import RunMetrics
from snnlab.tui.widgets.metric_plot import MetricPlot
from snnlab.tui.widgets.training_pane import TrainingPane
from snnlab.tui.worker import ReplaySource
from tests.conftest import TINY
from tests.tui.conftest import fake_events, show_pane, wait_for

pytestmark = pytest.mark.asyncio
SIZE = (120, 36)
STEPS = 60  # of the replayed run


def overlay_events(name: str, k: int) -> list[Event]:
    """Another finished run, told apart from the replayed one: its loss higher by a factor, 3 + k epochs."""
    out: list[Event] = []
    for event in fake_events(name, epochs=3 + k):
        if isinstance(event, StepMetrics):
            event = dataclasses.replace(event, loss=event.loss * (1.25 + 0.25 * k), accuracy=event.accuracy * 0.8)
        elif isinstance(event, EpochMetrics):
            event = dataclasses.replace(event, test_accuracy=event.test_accuracy * (0.9 - 0.1 * k))
        out.append(event)
    return out


def overlay(name: str, k: int) -> tuple[str, RunMetrics]:
    metrics = RunMetrics()
    metrics.apply(overlay_events(name, k))
    return name, metrics


def replay_app() -> Any:
    app = make_app(config=copy.deepcopy(TINY), source=ReplaySource(fake_events()))
    app.animation_level = "none"
    return app


async def ready(pilot: Any, plot_id: str = "#plot-loss") -> MetricPlot:
    """The replay done and drawn, the Training pane shown, the plot focused."""
    app = pilot.app
    await wait_for(pilot, lambda: app.view.status == "completed", 20, "the replay to finish")
    await show_pane(pilot, "2")
    app.redraw()
    plot = app.main.query_one(plot_id, MetricPlot)
    await wait_for(pilot, lambda: plot.frame is not None, 20, "the plot drawn")
    plot.focus()
    await wait_for(pilot, lambda: plot.has_focus, 20, "the plot focused")
    return plot


def by_label(plot: MetricPlot, label: str):
    return next(s for s in plot.series if s.label == label)


async def test_the_crosshair_reads_exact_values_and_moves_with_the_arrow_keys():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        plot = await ready(pilot)
        assert plot.cursor is None and plot.readout() == ""
        await pilot.press("left")  # it appears at the newest point
        await pilot.pause()
        assert plot.cursor == plot.frame.plot_w - 1 and plot.cursor_x == STEPS
        train = smoothed(app.view.loss.ys)
        reading = plot.readout()
        assert f"step {STEPS}" in reading
        assert fmt_value(train[-1]) in reading and fmt_value(1.3 / 3) in reading  # train, and the last test loss
        for _ in range(plot.frame.plot_w - 1):
            await pilot.press("left")
        await pilot.pause()
        assert plot.cursor == 0 and plot.cursor_x == 1  # the first step
        assert "step 1 " in plot.readout() and fmt_value(train[0]) in plot.readout()
        await pilot.press("shift+right")
        await pilot.pause()
        assert plot.cursor == 10
        x = plot.cursor_x
        assert x is not None and x == int(x)  # a logged step, not a screen position
        assert fmt_value(train[int(x) - 1]) in plot.readout()
        await pilot.press("escape")  # hides the crosshair
        await pilot.pause()
        assert plot.cursor is None and plot.readout() == ""


async def test_zoom_pan_and_reset_with_keys():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        plot = await ready(pilot)
        await pilot.press("plus")  # no crosshair: around the middle
        await pilot.pause()
        assert plot.view == pytest.approx((1 + 59 / 4, 60 - 59 / 4))
        assert "zoom 2x" in str(plot.border_subtitle)
        assert (plot.frame.x0, plot.frame.x1) == pytest.approx(plot.view)
        await pilot.press("less_than_sign")  # pan left by a quarter of the view
        await pilot.pause()
        assert plot.view == pytest.approx((1 + 59 / 8, 60 - 59 / 4 - 59 / 8))
        await pilot.press("less_than_sign", "less_than_sign", "less_than_sign")
        await pilot.pause()
        assert plot.view == pytest.approx((1, 30.5))  # stops at the start of the data
        await pilot.press("right", "plus")  # with a crosshair: around the x it reads
        await pilot.pause()
        x = plot.cursor_x
        assert plot.view[1] - plot.view[0] == pytest.approx(59 / 4) and plot.view[0] <= x <= plot.view[1]
        await pilot.press("minus", "minus", "minus")
        await pilot.pause()
        assert plot.view is None  # zoomed out to all of it, no further
        await pilot.press("plus", "0")
        await pilot.pause()
        assert plot.view is None and plot.cursor is None


async def test_log_y_smoothing_and_the_x_axis_are_keys_on_a_focused_plot():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        plot = await ready(pilot)
        accuracy = app.main.query_one("#plot-accuracy", MetricPlot)
        await pilot.press("L")
        await pilot.pause()
        assert plot.log_y and "log y" in str(plot.border_subtitle)
        assert plot.frame.y1 == pytest.approx(math.log10(max(app.view.loss.ys)))
        assert not accuracy.log_y  # log y is a plot's own

        raw = list(app.view.loss.ys)
        assert by_label(plot, "train").ys == smoothed(raw)
        await pilot.press("m")  # smoothing: auto -> off, for the pane's two step plots at once
        await pilot.pause()
        assert plot.options.smoothing == Smoothing("off") and by_label(plot, "train").ys == raw
        assert by_label(accuracy, "train").ys == [100 * a for a in app.view.accuracy.ys]
        assert "smoothing off" in str(plot.border_subtitle)
        await pilot.press("m")
        await pilot.pause()
        assert plot.options.smoothing == Smoothing("ema", 0.6) and "EMA 0.6" in str(accuracy.border_subtitle)

        await pilot.press("left", "t")  # x: step -> epoch; the crosshair goes, it read another axis
        await pilot.pause()
        assert plot.x_label == accuracy.x_label == "epoch" and plot.cursor is None
        assert by_label(plot, "train").xs == [s / 20 for s in app.view.loss.xs]
        assert by_label(plot, "test").xs == [1.0, 2.0, 3.0]
        await pilot.press("t")  # -> wall time since the start: 0.05 s a step, 0.5 s an evaluation
        await pilot.pause()
        assert plot.x_label == "time s"
        assert by_label(plot, "train").xs[:2] == pytest.approx([0.05, 0.10], abs=1e-5)
        assert by_label(plot, "train").xs[20] == pytest.approx(21 * 0.05 + 0.5, abs=1e-5)  # after one evaluation
        assert by_label(plot, "test").xs == pytest.approx([1.5, 3.0, 4.5], abs=1e-5)
        await pilot.press("t")
        await pilot.pause()
        assert plot.x_label == "step"
        # The spike-rate plot is per evaluation: it has no step axis nor smoothing to cycle.
        rates = app.main.query_one("#plot-rates", MetricPlot)
        rates.focus()
        await pilot.press("t", "m")
        await pilot.pause()
        assert rates.x_label == "epoch" and plot.options.x_axis == "step"


async def test_overlays_are_keyed_by_full_name_toggled_with_keys_and_drawn_under_the_live_run():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        plot = await ready(pilot)
        names = ["tiny-lr_0.001-tau_2.0-20261125-101500", "tiny-baseline-20261124-090000"]
        app.overlays = [overlay(name, k) for k, name in enumerate(names)]
        await pilot.pause(0.4)
        app.redraw()
        await pilot.pause()
        key = app.main.query_one("#train-key", SelectionList)
        assert key.display and key.option_count == 3
        rows = [key.get_option_at_index(i).prompt.plain for i in range(3)]
        assert rows[0].endswith("fake-run")  # the live run's own name
        assert rows[1].endswith(names[0]) and rows[2].endswith(names[1])  # full names, not cut
        labels = [s.label for s in plot.series if s.label]
        assert labels == ["train", "test", "#1", "#1 test", "#2", "#2 test"]
        # The live run is drawn in front of the overlays; its legend entries come first.
        assert {s.z for s in plot.series if s.label in ("train", "test")} == {1}
        assert {s.z for s in plot.series if s.label.startswith("#")} == {0}

        key.focus()
        await pilot.press("home", "down", "space")  # hide #1
        await pilot.pause()
        pane = app.main.query_one(TrainingPane)
        assert pane.hidden == {names[0]}
        assert [s.label for s in plot.series if s.label] == ["train", "test", "#2", "#2 test"]
        await pilot.press("up", "space")  # hide the live run
        await pilot.pause()
        assert [s.label for s in plot.series if s.label] == ["#2", "#2 test"]
        await pilot.press("space", "down", "space")
        await pilot.pause()
        assert pane.hidden == set() and len([s for s in plot.series if s.label]) == 6
        app.overlays = []
        await pilot.pause(0.4)
        app.redraw()
        await pilot.pause()
        assert not key.display


async def test_a_focused_membrane_plot_leaves_the_inside_panes_keys_to_it():
    from snnlab.tui.widgets.inside_pane import InsidePane
    from snnlab.tui.widgets.trace_view import TraceView

    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.view.status == "completed", 20, "the replay to finish")
        await show_pane(pilot, "3")
        app.redraw()
        trace = app.main.query_one(TraceView)
        trace.focus()
        await wait_for(pilot, lambda: trace.frame is not None and trace.has_focus, 30, "the membrane plot focused")
        inside = app.main.query_one(InsidePane)
        await pilot.press("left_square_bracket")  # the pane's previous evaluation, not a pan
        await pilot.pause()
        assert inside.index == len(inside.probes) - 2
        await pilot.press("L", "left")  # the plot's own: log y and the crosshair
        await pilot.pause()
        assert trace.log_y and trace.cursor is not None and "time step 10" in trace.readout()


async def test_a_focused_plot_lists_its_keys_in_its_border():
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        plot = await ready(pilot)
        assert str(plot.border_subtitle) == "←→ read  +- zoom  <> pan  L log  m smooth  t x  0 reset"
        rates = app.main.query_one("#plot-rates", MetricPlot)
        rates.focus()
        await pilot.pause()
        assert str(plot.border_subtitle) == "" and "m smooth" not in str(rates.border_subtitle)
