"""The Inside pane's raster: a row per neuron, ordered by rate or by change, a cursor that names a neuron and
asks for its trace, and evaluations played back."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from snnlab.engine.events import ProbeRecorded, RunFinished, RunStarted
from snnlab.tui.app import make_app
from snnlab.tui.widgets.config_form import ConfigForm
from snnlab.tui.widgets.inside_pane import InsidePane
from snnlab.tui.widgets.raster_view import RasterView, bin_steps, row_order
from snnlab.tui.worker import ReplaySource
from tests.conftest import TINY
from tests.tui.conftest import show_pane, wait_for

T, NEURONS = 8, 40


def firing(rates: list[float]) -> np.ndarray:
    """A [T, N] raster in which neuron i fires in round(rates[i] * T) of the T steps (the first ones)."""
    counts = np.round(np.asarray(rates) * T).astype(int)
    return (np.arange(T)[:, None] < counts[None, :]).astype(np.uint8)


def probe(epoch: int, rates: list[float]) -> ProbeRecorded:
    raster = firing(rates)[:, None, :]  # one sample
    layer = {"membrane": np.zeros((T, 1, 2), np.float32), "spikes": raster[:, :, :2], "neurons": [0, 1],
             "threshold": 1.0, "raster": raster, "raster_neurons": list(range(0, 2 * NEURONS, 2))}  # fmt: skip
    return ProbeRecorded(epoch=epoch, step=10 * epoch, samples=[0], labels=[1], layers={"fc1": layer}, time=1.0 + epoch)


def events() -> list:
    before = [0.0] * NEURONS
    before[5] = 0.25
    after = list(before)
    after[7], after[5], after[9] = 1.0, 0.5, 0.125  # 7 learns to fire at every step, 5 doubles
    started = RunStarted(run_name="r", device="cpu", config=copy.deepcopy(TINY), num_parameters=1, train_size=1,
                         test_size=1, steps_per_epoch=10, epochs=2, time=1.0)  # fmt: skip
    return [
        started,
        probe(1, before),
        probe(2, after),
        RunFinished(
            status="completed",
            epochs_done=2,
            steps=20,
            best_accuracy=0.5,
            final_test_accuracy=0.5,
            final_test_loss=1.0,
            wall_time=4.0,
            time=5.0,
        ),
    ]


def test_bin_steps_keeps_every_neuron_and_averages_time():
    raster = firing([0.0, 0.5, 1.0])  # T = 8
    assert bin_steps(raster, 8).shape == (3, 8)  # one column per step when they fit
    binned = bin_steps(raster, 2)  # two columns of four steps each
    assert binned.tolist() == [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]


def test_rows_are_ordered_by_rate_or_change_with_ties_in_index_order():
    rates = np.array([0.1, 0.5, 0.1, 0.9])
    change = np.array([0.0, -0.4, 0.1, 0.0])
    assert row_order(rates, change, "index").tolist() == [0, 1, 2, 3]
    assert row_order(rates, change, "rate").tolist() == [3, 1, 0, 2]
    assert row_order(rates, change, "change").tolist() == [1, 2, 0, 3]
    assert row_order(rates, None, "change").tolist() == [0, 1, 2, 3]  # nothing to compare with


async def shown_raster(app, pilot) -> RasterView:
    """The Inside pane's raster once the replayed run is in."""
    await wait_for(pilot, lambda: app.view.status == "completed", 30, "the replayed run")
    await show_pane(pilot, "3")
    raster = app.main.query_one(RasterView)
    await wait_for(pilot, lambda: raster.raster is not None, 30, "the raster")
    return raster


@pytest.mark.asyncio
async def test_one_row_per_neuron_ordered_by_rate_then_by_change():
    app = make_app(config=copy.deepcopy(TINY), source=ReplaySource(events()))
    async with app.run_test(size=(120, 36)) as pilot:
        raster = await shown_raster(app, pilot)
        assert raster.virtual_size.height == NEURONS  # every neuron its own row: none binned away
        assert "fc1: 40 · 37 silent · by index" in str(raster.border_title)
        raster.focus()
        await wait_for(pilot, lambda: raster.has_focus, 30, "the raster focused")
        await pilot.press("o")  # by rate: 7, 5, 9 on top, in that order, by their layer indices
        assert raster.order == "rate"
        assert [raster.neurons[raster.rows[i]] for i in range(3)] == [14, 10, 18]
        await pilot.press("o")  # by change since the previous evaluation: 7 (+1.0), 5 (+0.25), 9 (+0.125)
        assert [raster.neurons[raster.rows[i]] for i in range(3)] == [14, 10, 18]
        assert raster.change is not None and raster.change[7] == pytest.approx(1.0)
        await pilot.press("down")
        assert raster.describe_cursor() == "neuron 10: rate 0.50 (+0.25)"
        line = "".join(segment.text for segment in raster.render_line(1))
        assert line.split()[0] == "10" and line.count("█") and line.rstrip().endswith("0.50 +0.25")


@pytest.mark.asyncio
async def test_t_on_a_raster_row_traces_that_neuron_from_the_next_run():
    app = make_app(config=copy.deepcopy(TINY), source=ReplaySource(events()))
    async with app.run_test(size=(120, 36)) as pilot:
        raster = await shown_raster(app, pilot)
        raster.focus()
        await wait_for(pilot, lambda: raster.has_focus, 30, "the raster focused")
        await pilot.press("down", "down", "t")  # the third row by index: neuron 4 of the layer
        form = app.main.query_one(ConfigForm)
        await wait_for(pilot, lambda: form.config is not None and form.config.run.probes.trace == {"fc1": [4]}, 30)
        await pilot.press("t")  # twice: said, not added twice
        await pilot.pause()
        assert form.data["run"]["probes"]["trace"] == {"fc1": [4]}


@pytest.mark.asyncio
async def test_play_steps_through_the_evaluations_and_stops_at_the_newest():
    app = make_app(config=copy.deepcopy(TINY), source=ReplaySource(events()))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.view.status == "completed", 30, "the replayed run")
        await pilot.press("3")
        inside = app.main.query_one(InsidePane)
        await wait_for(pilot, lambda: len(inside.probes) == 2, 30, "both probes")
        inside.focus()
        # Focus moves on the next idle; under load a key pressed at once went to the widget focused before.
        await wait_for(pilot, lambda: app.focused is not None and inside in app.focused.ancestors_with_self, 30,
                       "focus in the Inside pane")  # fmt: skip
        await pilot.press("P")  # at the newest: plays from the first
        assert inside.index == 0 and inside._player is not None
        await wait_for(pilot, lambda: inside._player is None, 30, "the end of the play")
        assert inside.index == -1  # back to following the newest
