"""The lab driven like a user would: keys and clicks through a pilot, real training in the worker process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select, SelectionList, Static

from snnlab import catalog
from snnlab.config import ConfigError, config_from_dict
from snnlab.engine.trainer import train
from snnlab.runs import RunDir, RunWriter
from snnlab.tui.app import make_app
from snnlab.tui.commands import palette_commands
from snnlab.tui.screens.dialogs import ErrorDialog
from snnlab.tui.widgets.fields import Field
from snnlab.tui.widgets.metric_plot import MetricPlot
from snnlab.tui.widgets.status_bar import StatusBar
from snnlab.tui.widgets.surrogate_lab import SurrogateLab
from snnlab.tui.widgets.trace_view import TraceView
from snnlab.tui.worker import ReplaySource
from tests.tui.conftest import fake_events, runs_listed, show_pane, wait_for

SIZE = (120, 36)
pytestmark = [pytest.mark.asyncio, pytest.mark.slow]  # the lab driving real training in child processes


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(empty)"
    except OSError as exc:
        return f"(unreadable: {exc})"


def field(app, path: str) -> Field:
    return next(f for f in app.main.query(Field) if f.path == path)


def status_line(app) -> str:
    return str(app.main.query_one(StatusBar).render())


async def test_an_invalid_value_is_flagged_under_its_field_with_the_schema_message(tiny):
    app = make_app(config=tiny)
    async with app.run_test(size=SIZE) as pilot:
        batch = field(app, "data.batch_size")
        editor = batch.query_one(Input)
        editor.focus()
        editor.value = ""
        await pilot.press("-", "5")
        await pilot.pause()
        assert batch.has_class("-invalid")
        assert "must be > 0 (got -5)" in str(batch.query_one(".field-error").render())
        assert app.config is None
        await pilot.press("backspace", "backspace", "5", "0")
        await pilot.pause()
        assert not batch.has_class("-invalid") and app.config is not None
        assert app.config.data.batch_size == 50

        # The output layer must spike: switching its neuron off is flagged on that layer's neuron field.
        await pilot.click("#layer-list")
        app.main.query_one("#layer-list").highlighted = 2
        await pilot.pause()
        mode = field(app, "mode:model.layers.2.neuron").query_one(Select)
        mode.value = "none"
        await wait_for(pilot, lambda: app.config is None, 30, "the missing output neuron to be flagged")
        await pilot.pause()
        with pytest.raises(ConfigError) as expected:  # the very message `snnlab run` would print
            config_from_dict(app.main.query_one("#form").data)
        assert expected.value.key == "model.layers.2.neuron"
        shown = str(field(app, "mode:model.layers.2.neuron").query_one(".field-error").render())
        assert shown == "↳ " + str(expected.value).split("model.layers.2.neuron: ", 1)[1]


async def test_layers_can_be_added_reordered_and_removed(tiny):
    app = make_app(config=tiny)
    async with app.run_test(size=SIZE) as pilot:
        app.main.query_one("#layer-list").highlighted = 1
        await pilot.pause()
        await pilot.click("#add-linear")
        await pilot.pause(0.2)
        layers = app.main.query_one("#form").data["model"]["layers"]
        assert [layer["type"] for layer in layers] == ["flatten", "linear", "linear", "linear"]
        assert app.config is not None and app.config.model.layers[2].out_features == 128
        await pilot.click("#layer-up")
        await pilot.pause(0.2)
        assert layers[1]["out_features"] == 128
        await pilot.click("#remove-layer")
        await pilot.pause(0.2)
        assert [layer.get("out_features") for layer in layers] == [
            None,
            32,
            10,
        ]  # the moved layer was highlighted, so it went


async def test_training_updates_the_plots_status_and_the_inside_view(tiny):
    app = make_app(config=tiny)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")  # focus away from the form, where "s" would be typed
        await pilot.press("s")
        await wait_for(pilot, lambda: app.view.status == "completed", 90, "the run to complete")
        await pilot.pause(0.4)
        assert "COMPLETED" in status_line(app) and "epoch 2/2" in status_line(app)
        loss = app.main.query_one("#plot-loss", MetricPlot)
        assert any(len(s.xs) == 8 for s in loss.series)  # 2 epochs x 4 steps, one point per step
        assert app.main.query_one("#plot-rates", MetricPlot).series
        run = Path(app.view.run_path)
        assert (run / "events.jsonl").stat().st_size > 0 and (run / "checkpoints" / "last.pt").is_file()
        assert json.loads((run / "summary.json").read_text())["status"] == "completed"

        await show_pane(pilot, "3")  # its "[" is the Inside pane's key: focus must be there
        await pilot.pause(0.2)
        trace = app.main.query_one(TraceView)
        assert trace.series and len(trace.series[0].xs) == 4  # membrane over T = 4 steps
        assert "eval 2/2" in str(app.main.query_one("#inside-eval").render())
        await pilot.press("left_square_bracket")
        assert "eval 1/2" in str(app.main.query_one("#inside-eval").render())


async def test_stop_checkpoints_and_pause_holds_the_run(tiny):
    tiny["train"]["epochs"] = 200
    app = make_app(config=tiny)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "s")
        await wait_for(pilot, lambda: app.view.step >= 2, 60, "the first steps")
        await pilot.press("p")
        assert app.job.paused and app.view.status == "paused"
        await pilot.pause(0.5)
        held = app.view.step
        await pilot.pause(0.5)
        assert app.view.step <= held + 1  # at most the batch under way when the pause came
        await pilot.press("p")
        assert app.view.status == "running"
        await pilot.press("x")
        await wait_for(pilot, lambda: app.view.status == "stopped", 30, "the stop")
        run = Path(app.view.run_path)
        assert (run / "checkpoints" / "last.pt").is_file()
        assert json.loads((run / "summary.json").read_text())["status"] == "stopped"


async def test_every_surrogate_is_listed_under_its_source_and_plots(tiny):
    app = make_app(config=tiny)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        lab = app.main.query_one(SurrogateLab)
        chooser = lab.query_one("#sg-choose", SelectionList)
        options = [chooser.get_option_at_index(i) for i in range(chooser.option_count)]
        assert [o.value for o in options if o.disabled] == [f"#{s}" for s in catalog.SURROGATE_SOURCES]
        heading = None
        for option in options:  # each name under the heading of its source, each once
            if option.disabled:
                heading = option.value[1:]
            else:
                assert catalog.SURROGATES[option.value].source == heading
        assert sorted(o.value for o in options if not o.disabled) == sorted(catalog.SURROGATES)
        assert not chooser.get_option_at_index(chooser.highlighted).disabled  # the cursor skips headings
        chooser.select_all()
        await pilot.pause()
        assert lab.chosen == list(catalog.SURROGATES)  # the headings are no choice
        everyone = len(catalog.SURROGATES)  # the curves come from the curve process, a moment later
        await wait_for(pilot, lambda: len(lab.query_one("#sg-grad", MetricPlot).series) == everyone, 60)
        assert not str(lab.query_one("#sg-error", Static).render()).strip()


async def test_compare_trains_once_per_surrogate_and_tabulates_them(tiny):
    tiny["train"]["epochs"] = 1
    app = make_app(config=tiny)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        lab = app.main.query_one(SurrogateLab)
        chooser = lab.query_one("#sg-choose")
        chooser.deselect("fast_sigmoid")
        await pilot.pause()
        assert lab.chosen == ["atan", "triangle"]
        # The curves are computed off the UI thread ("computing the curves…"): wait for them, under any load.
        await wait_for(pilot, lambda: len(lab.query_one("#sg-grad", MetricPlot).series) == 2, 60, "two curves")
        await pilot.press("c")
        await wait_for(pilot, lambda: len(app.compare) == 2 and all(e.metrics.finished for e in app.compare)
                       and not app.compare_queue and app.job is None, 120, "both comparison runs")  # fmt: skip
        await pilot.pause(0.4)
        table = lab.query_one("#sg-table", DataTable)
        assert table.row_count == 2
        assert [e.surrogate for e in app.compare] == ["atan", "triangle"]
        assert all(e.metrics.status == "completed" for e in app.compare)
        assert len(lab.query_one("#sg-acc", MetricPlot).series) == 4  # a line and points per surrogate
        names = sorted(p.name.rsplit("-", 2)[0] for p in Path(tiny["run"]["runs_dir"]).iterdir())
        assert names == ["tiny-atan", "tiny-triangle"]


async def test_a_failed_run_shows_an_error_dialog_and_the_lab_keeps_working(tiny, tmp_path):
    # A valid config whose dataset is not there: the run fails once it starts.
    tiny["data"].update(dataset="mnist", data_dir=str(tmp_path / "no-data"), download=False)
    app = make_app(config=tiny)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "s")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), 60, "the error dialog")
        assert "'mnist' not found" in app.screen.message
        await pilot.press("escape")
        await pilot.press("1")
        assert app.main.active == "network" and app.view.status == "failed" and app.job is None


async def test_a_training_process_that_dies_is_reported(tiny):
    tiny["train"]["epochs"] = 200
    app = make_app(config=tiny)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "s")
        try:
            await wait_for(pilot, lambda: app.view.step >= 1, 60, "the first step")
        except AssertionError as exc:  # say what the child was doing (this once timed out in CI)
            log = Path(app.view.run_path or ".") / "worker.log"
            top = subprocess.run(["ps", "-eo", "pid,ni,pcpu,etime,args", "--sort=-pcpu"], capture_output=True,
                                 text=True).stdout.splitlines()[:8]  # fmt: skip
            raise AssertionError(
                f"{exc}; status {app.view.status}; worker.log: {_tail(log)}; busiest processes:\n" + "\n".join(top)
            ) from None
        app.job.kill()
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), 30, "the error dialog")
        assert "died" in app.screen.message
        await pilot.press("enter")
        assert app.view.status == "failed" and app.job is None


async def test_watch_opens_a_finished_run_with_its_curves_and_probes(tmp_path, tiny):
    config = config_from_dict(tiny)
    run_dir = RunDir(tmp_path / "runs", "tiny", config.to_dict())
    with RunWriter(run_dir) as writer:
        train(config, [writer], run_dir=run_dir.path, run_name=run_dir.name)
    app = make_app(watch=run_dir.path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.view.status == "completed", 20, "the run's events")
        await pilot.pause(0.4)
        assert "COMPLETED" in status_line(app)
        assert app.main.query_one("#plot-accuracy", MetricPlot).series
        assert app.main.query_one("#pane-inside").display  # watch shows Training and Inside
        await pilot.press("3")
        await wait_for(pilot, lambda: bool(app.main.query_one(TraceView).series), 20, "the probe file to load")
        assert "label " in str(app.main.query_one("#inside-sample").render())


async def test_runs_list_opens_and_overlays_runs(tmp_path, tiny):
    source_events = fake_events("old-run")
    for name in ("a", "b"):
        run_dir = RunDir(tmp_path / "runs", name, tiny)
        with RunWriter(run_dir) as writer:
            for event in source_events:
                writer(event)
    app = make_app(config=tiny, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "r")
        await runs_listed(pilot)
        await pilot.press("o")
        await wait_for(pilot, lambda: len(app.overlays) == 1, 30, "the overlay")
        await pilot.press("r")
        await runs_listed(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.view.status == "completed", 30, "the opened run")
        assert app.view.epoch == 3


async def test_palette_help_export_and_layout(tmp_path, tiny, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(config=tiny, source=ReplaySource(fake_events()))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.view.status == "completed", 30, "the fake run")
        titles = [title for title, _, _ in palette_commands(app)]
        assert "Start training" in titles and "Stop training" not in titles
        assert "Load preset quickstart" in titles
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Inside")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.main.active == "inside"
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape", "z")
        assert app.main.maximized is not None
        await pilot.press("escape", "l")  # a replayed run is shown like `watch`: Training beside Inside
        shown = [key for key in ("network", "training", "inside") if app.main.query_one(f"#pane-{key}").display]
        assert app.main.layout_mode == "single" and shown == ["inside"]
        await pilot.press("l")
        shown = [key for key in ("network", "training", "inside") if app.main.query_one(f"#pane-{key}").display]
        assert app.main.layout_mode == "grid" and shown == ["training", "inside"]
        await pilot.press("e")
        await pilot.pause(0.2)
        exported = sorted(p.suffix for p in (tmp_path / "exports").iterdir())
        assert exported == [".csv", ".svg"]
        csv_text = next((tmp_path / "exports").glob("*.csv")).read_text()
        assert csv_text.startswith("kind,step,train_loss") and "spike_rate_fc1" in csv_text


def _fake_sweep(root: Path, tiny) -> Path:
    """A sweep folder as `snnlab sweep` leaves it: sweep.yaml and one run directory per (surrogate, seed)."""
    import copy

    import yaml

    sweep = root / "sweep-tiny-20261125-101500"
    sweep.mkdir(parents=True)
    grid = {"model.neuron.surrogate": ["atan", "sigmoid"]}
    (sweep / "sweep.yaml").write_text(yaml.safe_dump({"preset": "tiny.yaml", "grid": grid, "seeds": 2}))
    for surrogate in ("sigmoid", "atan"):  # written out of grid order on purpose
        for seed in (7, 8):
            data = copy.deepcopy(tiny)
            data["model"]["neuron"]["surrogate"] = surrogate
            data["train"]["seed"] = seed
            with RunWriter(RunDir(sweep, f"tiny-{surrogate}-seed{seed}", data)) as writer:
                for event in fake_events(f"tiny-{surrogate}-seed{seed}"):
                    writer(event)
    return sweep


async def test_a_sweep_opens_in_the_surrogates_pane_one_colour_per_combination(tmp_path, tiny):
    sweep = _fake_sweep(tmp_path / "runs", tiny)
    app = make_app(sweep=sweep)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.compare) == 4, 30, "the sweep's runs")
        await pilot.pause(0.4)
        assert app.main.query_one("#pane-surrogates").display
        assert [e.label for e in app.compare] == [
            "atan · seed 7",
            "atan · seed 8",
            "sigmoid · seed 7",
            "sigmoid · seed 8",
        ]
        assert app.compare[0].color == app.compare[1].color != app.compare[2].color
        plot = app.main.query_one("#sg-loss", MetricPlot)
        # The two seeds of a combination make one curve (their mean) over a band (their spread).
        assert [s.label for s in plot.series] == ["atan (2 seeds)", "sigmoid (2 seeds)"]
        assert [b.color for b in plot._options["bands"]] == [app.compare[0].color, app.compare[2].color]
        assert plot.border_subtitle == "band: min-max of seeds"
        table = app.main.query_one("#sg-table", DataTable)
        assert table.row_count == 4 and table.get_row_at(0)[1] == "completed"
        names = [table.get_row_at(i)[0] for i in range(4)]  # in their curves' colours: the plots' key
        assert [(n.plain, n.style) for n in names] == [(e.label, e.color) for e in app.compare]
        assert app.config is not None and Path(app.config.run.runs_dir) == tmp_path / "runs"


async def test_the_comparison_table_sorts_on_a_header_click_and_again_reversed(tmp_path, tiny):
    sweep = _fake_sweep(tmp_path / "runs", tiny)
    app = make_app(sweep=sweep)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: len(app.compare) == 4, 30, "the sweep's runs")
        await pilot.pause(0.4)
        table = app.main.query_one("#sg-table", DataTable)
        names = lambda: [table.get_row_at(i)[0].plain for i in range(table.row_count)]  # noqa: E731
        grid_order = names()
        assert grid_order == ["atan · seed 7", "atan · seed 8", "sigmoid · seed 7", "sigmoid · seed 8"]
        await pilot.click("#sg-table", offset=(2, 0))  # the "run" header
        await pilot.pause(0.2)
        assert app.main.query_one(SurrogateLab).sort == (0, False) and names() == grid_order
        await pilot.click("#sg-table", offset=(2, 0))
        await pilot.pause(0.2)
        assert names() == grid_order[::-1]
        app.redraw()  # the table is refilled on every redraw: the order stays
        await pilot.pause(0.2)
        assert names() == grid_order[::-1]


async def test_the_runs_list_shows_sweeps_and_opens_one(tmp_path, tiny):
    sweep = _fake_sweep(tmp_path / "runs", tiny)
    app = make_app(config=tiny, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await runs_listed(pilot)
        table = app.screen.query_one(DataTable)
        assert table.row_count == 1 and table.get_row_at(0)[:2] == [sweep.name, "sweep"]
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.compare) == 4, 30, "the sweep's runs")
