"""Snapshots pin what each pane shows. The app is fed a fixed list of events (fixed times, fixed probe
tensors), so the pixels are the same on every machine. Update with ``pytest --snapshot-update``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from snnlab.tui.app import make_app
from snnlab.tui.compare import CompareEntry
from snnlab.tui.metrics import RunMetrics
from snnlab.tui.worker import ReplaySource
from tests.conftest import TINY
from tests.tui.conftest import fake_events, runs_listed, wait_for
from tests.tui.test_runs_screen import fake_sweep


def replay_app(**options: Any):
    app = make_app(config=copy.deepcopy(TINY), source=ReplaySource(fake_events()), **options)
    app.animation_level = "none"
    return app


FOLLOWERS = {"follow", "sweep"}  # workers that follow a run or a sweep until replaced: they never finish


async def settle(pilot: Any, *keys: str) -> None:
    """Let the drain and redraw timers run, wait until the replay is in, press ``keys``, drop toasts (they time
    out), and wait again until every worker is done and the screen stops changing: a probe read in a worker or a
    late event must not land between two runs' frames (under load, a snapshot once caught the Inside pane before
    its layer list was filled), and a key must act on the whole replay (under load, ``[`` once went to the
    previous evaluation before the last one had arrived, which then took the pane back to the latest)."""
    await pilot.pause(0.4)
    if keys:
        await _still(pilot)
        await pilot.press(*keys)
        await pilot.pause(0.3)
    await _still(pilot)


async def _still(pilot: Any) -> None:
    """Wait until no worker but a follower runs and two frames in a row are the same (at most ~20 s)."""
    previous = None
    for _ in range(100):
        pilot.app.redraw()
        pilot.app.clear_notifications()
        await pilot.pause(0.2)
        if any(not worker.is_finished and worker.group not in FOLLOWERS for worker in pilot.app.workers):
            # The replay's reader or a probe read still runs: a starved thread can leave the screen unchanged
            # for a while without being done (the CI machine once caught the panes before the last events).
            previous = None
            continue
        frame = pilot.app.export_screenshot()
        if frame == previous:
            return
        previous = frame


def test_network_pane(snap_compare):
    app = make_app(config=copy.deepcopy(TINY))
    app.animation_level = "none"
    assert snap_compare(app, terminal_size=(100, 32), run_before=lambda pilot: settle(pilot, "1"))


def test_network_pane_flags_an_invalid_field(snap_compare):
    app = make_app(config=copy.deepcopy(TINY))
    app.animation_level = "none"

    async def edit(pilot: Any) -> None:
        await settle(pilot, "1")
        field = next(f for f in app.main.query("Field") if f.path == "data.batch_size")
        field.editor.cursor_blink = False  # a blinking cursor is captured on or off depending on timing
        field.editor.focus()
        field.editor.value = "0"
        # Validation runs after a refresh; on a loaded machine a fixed pause can come too early.
        await wait_for(pilot, lambda: field.has_class("-invalid"), 30, "the invalid field to be flagged")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=edit)


def test_network_pane_at_80x24(snap_compare):
    # The layer stack with every button on one line, an error under the list, and the footer in full.
    app = make_app(config=copy.deepcopy(TINY))
    app.animation_level = "none"

    async def add_a_conv_after_the_output(pilot: Any) -> None:
        await settle(pilot, "1")
        app.main.query_one("#layer-list").highlighted = 2
        await pilot.pause()
        app.main.query_one("#add-conv2d").press()
        await wait_for(pilot, lambda: app.config is None, 30, "the stack to be refused")
        app.main.query_one("#pane-network").focus()
        app.main.query_one("#layer-buttons").scroll_visible(animate=False, top=True)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=add_a_conv_after_the_output)


def test_network_pane_while_typing_at_80x24(snap_compare):
    # A field has focus: the footer shows the function keys and escape, which work while typing.
    app = make_app(config=copy.deepcopy(TINY))
    app.animation_level = "none"

    async def type_in_a_field(pilot: Any) -> None:
        await settle(pilot, "1")
        field = next(f for f in app.main.query("Field") if f.path == "data.batch_size")
        field.editor.cursor_blink = False
        field.editor.focus()
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=type_in_a_field)


def test_surrogates_pane_at_80x24(snap_compare):
    # The choices above the plots, so each plot keeps half the width.
    assert snap_compare(replay_app(), terminal_size=(80, 24), run_before=lambda pilot: settle(pilot, "4"))


def test_help_screen_at_80x24(snap_compare):
    assert snap_compare(replay_app(), terminal_size=(80, 24), run_before=lambda pilot: settle(pilot, "f1"))


def test_training_pane(snap_compare):
    assert snap_compare(replay_app(), terminal_size=(100, 32), run_before=lambda pilot: settle(pilot, "2"))


def test_training_pane_at_80x24(snap_compare):
    assert snap_compare(replay_app(), terminal_size=(80, 24), run_before=lambda pilot: settle(pilot, "2"))


def test_inside_pane(snap_compare):
    # Second evaluation, second sample, second group of neurons: the keys of the pane at work.
    keys = ("3", "left_square_bracket", "full_stop")
    assert snap_compare(replay_app(), terminal_size=(100, 32), run_before=lambda pilot: settle(pilot, *keys))


def test_inside_pane_health_at_80x24(snap_compare):
    # The health panel under the traces: the warned cells in red, one line per warning with its hint.
    assert snap_compare(replay_app(), terminal_size=(80, 24), run_before=lambda pilot: settle(pilot, "3"))


def test_inside_pane_health_beside_training_at_120x36(snap_compare):
    # Two panes side by side: the panel's numbers stay whole, the hints wrap.
    assert snap_compare(replay_app(), terminal_size=(120, 36), run_before=lambda pilot: settle(pilot, "3"))


def test_surrogates_pane_with_a_comparison(snap_compare):
    app = replay_app()

    async def compare(pilot: Any) -> None:
        await settle(pilot, "4")
        entries = []
        for k, (name, events) in enumerate((("atan", fake_events("a")), ("triangle", fake_events("b", epochs=2)))):
            metrics = RunMetrics()
            metrics.apply(events[: len(events) - k * 5])  # the second one is cut short: still running
            entries.append(CompareEntry(name, {}, metrics))
        app.compare = entries
        await settle(pilot)

    assert snap_compare(app, terminal_size=(100, 32), run_before=compare)


def test_watch_layout_on_a_large_terminal(snap_compare):
    assert snap_compare(replay_app(), terminal_size=(160, 48), run_before=lambda pilot: settle(pilot))


async def open_sweeps_runs(pilot: Any) -> None:
    """With the fake sweep open in the Surrogates pane, open its runs list."""
    await wait_for(pilot, lambda: len(pilot.app.compare) == 4, 30, "the sweep")
    await settle(pilot)  # its toast gone while the pane is on top: under a dialog it is not redrawn
    await settle(pilot, "r")
    await runs_listed(pilot)


def test_runs_list_of_a_sweep_sorted_by_best_accuracy(snap_compare, tmp_path):
    app = make_app(sweep=fake_sweep(tmp_path / "runs", copy.deepcopy(TINY)))
    app.animation_level = "none"

    async def sorted_runs(pilot: Any) -> None:
        await open_sweeps_runs(pilot)
        await settle(pilot, "5", "down", "space")  # best first, the second marked

    assert snap_compare(app, terminal_size=(120, 32), run_before=sorted_runs)


def test_config_diff_of_two_runs(snap_compare, tmp_path):
    app = make_app(sweep=fake_sweep(tmp_path / "runs", copy.deepcopy(TINY)))
    app.animation_level = "none"

    async def diff(pilot: Any) -> None:
        await open_sweeps_runs(pilot)
        await settle(pilot, "space", "down", "down", "down", "d")

    assert snap_compare(app, terminal_size=(100, 24), run_before=diff)


def test_help_screen(snap_compare):
    assert snap_compare(replay_app(), terminal_size=(100, 32), run_before=lambda pilot: settle(pilot, "f1"))


@pytest.mark.asyncio
async def test_training_pane_names_the_decoder_at_80x24():
    """The "run" box's accuracy says which decoder measured it, in full on 80 columns."""
    events = fake_events()
    events[0].config["train"]["decoder"] = "rate_first"  # type: ignore[attr-defined]
    app = make_app(config=copy.deepcopy(TINY), source=ReplaySource(events))
    app.animation_level = "none"
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, "2")
        box = pilot.app.query_one("#train-summary")
        text = " ".join(strip.text for strip in box.render_lines(box.region.reset_offset))
        assert "best test acc 75.0% (rate_first)" in " ".join(text.split())


# -------------------------------------------------------------------------------------- plots


def _with_overlays(app: Any, *keys: str):
    from tests.tui.test_plots import overlay

    async def run(pilot: Any) -> None:
        await settle(pilot, "2")
        names = ["tiny-lr_0.001-tau_2.0-20261125-101500", "tiny-lr_0.003-tau_5.0-20261125-101900",
                 "tiny-baseline-20261124-090000"]  # fmt: skip
        app.overlays = [overlay(name, k) for k, name in enumerate(names)]
        await settle(pilot)
        for key in keys:
            if key.startswith("#"):
                app.main.query_one(key).focus()
            else:
                await pilot.press(key)
        await settle(pilot)

    return run


def test_training_pane_with_overlays_at_80x24(snap_compare):
    app = replay_app()
    assert snap_compare(app, terminal_size=(80, 24), run_before=_with_overlays(app))


def test_training_pane_with_overlays_at_120x36(snap_compare):
    app = replay_app()
    assert snap_compare(app, terminal_size=(120, 36), run_before=_with_overlays(app))


def test_training_plot_maximized_with_a_crosshair_zoom_and_log_y(snap_compare):
    # Maximized, the loss plot's crosshair reads every run by name; zoomed 2x around it, log y.
    app = replay_app()
    keys = ("#plot-loss", "z", "left", *["left"] * 12, "plus", "L")
    assert snap_compare(app, terminal_size=(120, 36), run_before=_with_overlays(app, *keys))


def test_training_plots_on_the_time_axis_with_one_overlay_hidden(snap_compare):
    app = replay_app()
    keys = ("#plot-accuracy", "t", "t", "m", "m", "m", "#train-key", "home", "down", "space")
    assert snap_compare(app, terminal_size=(120, 36), run_before=_with_overlays(app, *keys))


def test_surrogates_pane_draws_a_sweep_cells_seeds_as_mean_and_band(snap_compare):
    import dataclasses

    from snnlab.engine.events import EpochMetrics, StepMetrics

    app = replay_app()

    def seed_events(name: str, scale: float):
        out = []
        for event in fake_events(name):
            if isinstance(event, StepMetrics):
                event = dataclasses.replace(event, loss=event.loss * scale)
            elif isinstance(event, EpochMetrics):
                event = dataclasses.replace(event, test_accuracy=event.test_accuracy * (2 - scale))
            out.append(event)
        return out

    async def sweep(pilot: Any) -> None:
        await settle(pilot, "4")
        entries = []
        for cell, surrogate in enumerate(("atan", "triangle")):
            for seed, scale in enumerate((0.8, 1.0, 1.2)):
                metrics = RunMetrics()
                metrics.apply(seed_events(f"{surrogate}-seed{seed}", scale + 0.5 * cell))
                entries.append(CompareEntry(surrogate, {}, metrics, name=f"surrogate={surrogate} · seed {seed}",
                                            legend=surrogate if seed == 0 else "", cell=cell))  # fmt: skip
        app.compare = entries
        await settle(pilot)

    assert snap_compare(app, terminal_size=(100, 32), run_before=sweep)
