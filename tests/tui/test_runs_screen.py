"""The runs list: a sortable table with the sweep's grid keys as columns, the config diff of two runs, and
continuing or re-running a run from it."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import pytest
import yaml
from textual.widgets import DataTable

from snnlab.engine.events import EpochMetrics, RunFinished
from snnlab.runs import RunDir, RunWriter, lock_run, read_events
from snnlab.tui.app import make_app
from snnlab.tui.runs_table import folder_rows, sort_rows
from snnlab.tui.screens import runs as runs_screen
from snnlab.tui.screens.dialogs import ErrorDialog
from snnlab.tui.screens.runs import ConfigDiffScreen, RunsScreen
from snnlab.tui.worker import run_training
from tests.tui.conftest import fake_events, runs_listed, wait_for

SIZE = (150, 40)
GRID = {"model.neuron.surrogate": ["atan", "sigmoid"], "train.lr": [0.001, 0.002]}
# (surrogate, lr, best accuracy): written out of every order on purpose
RUNS = [("sigmoid", 0.001, 0.62), ("atan", 0.002, 0.81), ("atan", 0.001, 0.55), ("sigmoid", 0.002, 0.70)]


def fake_sweep(root: Path, tiny) -> Path:
    """A finished 2x2 sweep, its folders named as on any machine (snapshots show them)."""
    sweep = root / "sweep-tiny-20261201-050000"
    sweep.mkdir(parents=True)
    (sweep / "sweep.yaml").write_text(yaml.safe_dump({"preset": "tiny.yaml", "grid": GRID, "seeds": 1}))
    (sweep / "summary.csv").write_text("")  # it has ended
    for i, (surrogate, lr, best) in enumerate(RUNS):
        data = copy.deepcopy(tiny)
        data["model"]["neuron"]["surrogate"], data["train"]["lr"] = surrogate, lr
        name = f"tiny-{surrogate}-{lr}"
        data["run"]["name"] = name  # as a sweep names each run
        events = fake_events(name, epochs=2 + i)  # epochs 2, 3, 4, 5
        for event in events:  # the last epoch the best
            if isinstance(event, EpochMetrics):
                event.test_accuracy = event.best_accuracy = best - 0.01 * (2 + i - event.epoch)
            elif isinstance(event, RunFinished):
                event.best_accuracy = event.final_test_accuracy = best
        with RunWriter(RunDir.create_at(sweep / f"{name}-20261201-05000{i}", data)) as writer:
            for event in events:
                writer(event)
    return sweep


def _names(table: DataTable) -> list[str]:
    return [str(table.get_row_at(i)[0]).removeprefix("● ") for i in range(table.row_count)]


def test_rows_of_a_sweep_have_its_grid_keys_and_sort_with_missing_values_last(tmp_path, tiny):
    sweep = fake_sweep(tmp_path / "runs", tiny)
    keys, rows = folder_rows(sweep, sweep=True)
    assert keys == list(GRID)
    by_name = {r.name[:-16]: r for r in rows}  # without -YYYYmmdd-HHMMSS
    assert by_name["tiny-atan-0.002"].values == ("atan", 0.002) and by_name["tiny-atan-0.002"].best == 0.81
    assert by_name["tiny-atan-0.002"].epochs_done == 3 and by_name["tiny-atan-0.002"].status == "completed"
    best = 1 + len(keys) + 1  # run, keys, status, best acc
    assert [r.best for r in sort_rows(rows, best, keys)] == [0.55, 0.62, 0.70, 0.81]
    rows[0].best = None
    assert sort_rows(rows, best, keys, reverse=True)[-1] is rows[0]  # missing last, whichever the direction
    assert sort_rows(rows, best, keys)[-1] is rows[0]
    assert [r.values[1] for r in sort_rows(rows, 2, keys)] == [0.001, 0.001, 0.002, 0.002]
    # A plain folder shows the keys its runs differ in (run.* left out: every run has its own name).
    keys, rows = folder_rows(tmp_path / "runs")
    assert keys == [] and [r.kind for r in rows] == ["sweep"]
    keys, rows = folder_rows(sweep)
    assert keys == ["model.neuron.surrogate", "train.lr"]


@pytest.mark.asyncio
async def test_the_runs_table_sorts_by_key_and_by_a_click_on_its_header(tmp_path, tiny):
    sweep = fake_sweep(tmp_path / "runs", tiny)
    app = make_app(sweep=sweep)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.compare) == 4, 30, "the sweep")
        await pilot.press("r")  # a sweep is shown: the list shows its runs
        await runs_listed(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen) and screen.sweep == sweep
        table = screen.query_one(DataTable)
        titles = [str(c.label) for c in table.columns.values()]
        assert titles == ["run", "surrogate", "lr", "status", "best acc", "last acc", "loss", "epochs", "time"]
        # The runs of a sweep are named without their start time: their values tell them apart.
        assert sorted(_names(table)) == sorted(f"tiny-{s}-{lr}" for s, lr, _ in RUNS)
        await pilot.press("5")  # best acc: best first
        assert [table.get_row_at(i)[4] for i in range(4)] == ["81.0%", "70.0%", "62.0%", "55.0%"]
        assert str(table.columns[table.ordered_columns[4].key].label) == "best acc ▼"
        await pilot.press("5")  # again: the other way
        assert [table.get_row_at(i)[4] for i in range(4)] == ["55.0%", "62.0%", "70.0%", "81.0%"]
        await pilot.press("2")  # by surrogate, then (stable) the folder's order
        assert [table.get_row_at(i)[1] for i in range(4)] == ["atan", "atan", "sigmoid", "sigmoid"]
        # A click on the "epochs" header sorts by it, most first.
        x = sum(c.get_render_width(table) for c in table.ordered_columns[:7]) + 2
        assert await pilot.click(DataTable, offset=(x, 0))
        await pilot.pause()
        assert [table.get_row_at(i)[7] for i in range(4)] == ["5/5", "4/4", "3/3", "2/2"]
        assert str(table.ordered_columns[7].label) == "epochs ▼"  # the columns are made anew
        # The cursor stays on its run through a sort.
        table.move_cursor(row=1)
        name = _names(table)[1]
        await pilot.press("5")
        assert _names(table)[table.cursor_row] == name
        # backspace: every run of the runs folder, here the sweep itself.
        await pilot.press("backspace")
        await runs_listed(pilot)
        assert _names(table) == [sweep.name] and table.get_row_at(0)[1] == "sweep"


@pytest.mark.asyncio
async def test_two_marked_runs_show_their_config_diff(tmp_path, tiny):
    sweep = fake_sweep(tmp_path / "runs", tiny)
    app = make_app(config=tiny, runs_dir=sweep)  # a plain listing of the sweep's folder: keys that differ
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await runs_listed(pilot)
        table = app.screen.query_one(DataTable)
        await pilot.press("d")  # nothing marked: says how
        assert any("mark a run" in str(n.message) for n in app._notifications)
        names = _names(table)
        await pilot.press("space", "down", "down")
        assert str(table.get_row_at(0)[0]).startswith("● ")
        await pilot.press("d")  # the marked run against the one under the cursor
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigDiffScreen), 30, "the diff")
        diff = app.screen
        assert (diff.old, diff.new) == (names[0], names[2])
        rows = {key: (old, new) for key, old, new in diff.diff}
        configs = [yaml.safe_load((sweep / n / "config.yaml").read_text()) for n in (names[0], names[2])]
        expected = {}
        for key in ("model.neuron.surrogate", "train.lr"):
            section, _, leaf = key.rpartition(".")
            old, new = (c for c in configs)
            for part in section.split("."):
                old, new = old[part], new[part]
            if old[leaf] != new[leaf]:
                expected[key] = (old[leaf], new[leaf])
        assert rows == expected and expected  # the names (run.*) are left out
        shown = app.screen.query_one(DataTable)
        assert shown.row_count == len(expected)
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


def _stopped_run(tmp_path: Path, tiny) -> Path:
    """A real run of 2 epochs, stopped during its second: it has a checkpoint and one epoch to go."""
    data = copy.deepcopy(tiny)
    data["train"]["epochs"] = 2
    run = RunDir(data["run"]["runs_dir"], "halfway", data)
    stop, pause = threading.Event(), threading.Event()

    def put(event):
        if isinstance(event, EpochMetrics):
            stop.set()

    run_training(data, str(run.path), put, stop, pause)
    return run.path


@pytest.mark.asyncio
async def test_continue_and_re_run_from_the_runs_list(tmp_path, tiny):
    path = _stopped_run(tmp_path, tiny)
    assert json.loads((path / "summary.json").read_text())["status"] == "stopped"
    done = RunDir(tmp_path / "runs", "done", tiny)  # completed: nothing to continue
    with RunWriter(done) as writer:
        for event in fake_events("done"):
            writer(event)
    app = make_app(config=tiny, runs_dir=tmp_path / "runs", mode="thread")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await runs_listed(pilot)
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=_names(table).index(done.name))
        await pilot.press("c")
        assert isinstance(app.screen, RunsScreen)  # refused, with the reason in one line
        (note,) = [n for n in app._notifications if n.title == "Cannot continue"]
        assert "completed all 3 of its epochs" in note.message and "\n" not in note.message
        (done.path / "checkpoints").rename(done.path / "elsewhere")
        summary = json.loads((done.path / "summary.json").read_text())
        (done.path / "summary.json").write_text(json.dumps({**summary, "status": "stopped"}))
        await pilot.press("c")
        assert any("has no checkpoint to continue from" in n.message for n in app._notifications)

        table.move_cursor(row=_names(table).index(path.name))
        await pilot.press("c")
        await wait_for(pilot, lambda: app.view.status == "completed", 120, "the continued run")
        assert app.view.run_path == str(path) and [e.epoch for e in app.view.epoch_rows] == [1, 2]
        assert app.view.history.resumed_from_epoch == 1  # continued, not started again
        starts = [e for e in read_events(path) if type(e).__name__ == "RunStarted"]
        assert [s.start_epoch for s in starts] == [0, 1]
        await wait_for(pilot, lambda: app.job is None, 20, "the worker's end")

        # n: the same config trained again, as a new run beside it.
        await pilot.press("r")
        await runs_listed(pilot)
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=_names(table).index(path.name))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.view.status == "completed", 120, "the re-run")
        new = Path(app.view.run_path or "")
        # Named by its config's run.name, as any new run.
        assert new.parent == path.parent and new != path and new.name.startswith(f"{tiny['run']['name']}-")
        assert (
            yaml.safe_load((new / "config.yaml").read_text())["train"]
            == yaml.safe_load((path / "config.yaml").read_text())["train"]
        )
        assert [e.epoch for e in app.view.epoch_rows] == [1, 2] and app.view.history.resumed_from_epoch is None


@pytest.mark.asyncio
async def test_a_continue_the_worker_refuses_leaves_the_run_as_it_was(tmp_path, tiny):
    path = _stopped_run(tmp_path, tiny)
    before = {p.name: p.read_bytes() for p in (path / "events.jsonl", path / "summary.json", path / "config.yaml")}
    app = make_app(config=tiny, runs_dir=tmp_path / "runs", mode="thread")
    async with app.run_test(size=SIZE) as pilot:
        with lock_run(path):  # another process trains in it (its summary does not say so yet)
            app.resume_run(path)
            await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), 60, "the refusal")
        assert "is in use" in app.screen.message
        assert {p: (path / p).read_bytes() for p in before} == before


@pytest.mark.asyncio
async def test_the_runs_list_follows_a_run_to_its_end(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(runs_screen, "RELOAD_S", 0.2)
    run = RunDir(tmp_path / "runs", "live", tiny)
    events = fake_events("live")
    writer = RunWriter(run)
    for event in events[:30]:
        writer(event)
    app = make_app(config=tiny, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await runs_listed(pilot)
        table = app.screen.query_one(DataTable)
        assert table.get_row_at(0)[1] == "running"
        for event in events[30:]:
            writer(event)
        writer.close()
        await wait_for(pilot, lambda: table.get_row_at(0)[1] == "completed", 30, "the row to follow its run")
        assert table.get_row_at(0)[2] == "75.0%"
