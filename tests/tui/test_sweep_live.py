"""`snnlab watch SWEEP` follows the sweep: runs appear as the sweep starts them, rows follow their events."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from textual.widgets import DataTable

from snnlab.engine.events import FailureReason, RunFailed
from snnlab.runs import RunDir, RunWriter
from snnlab.tui import compare
from snnlab.tui.app import make_app
from snnlab.tui.compare import SweepFollower
from tests.tui.conftest import fake_events, runs_listed, wait_for

SIZE = (120, 36)
GRID = {"model.neuron.surrogate": ["atan", "sigmoid"]}


def _sweep(root: Path) -> Path:
    sweep = root / "sweep-tiny-20261201-040000"
    sweep.mkdir(parents=True)
    (sweep / "sweep.yaml").write_text(yaml.safe_dump({"preset": "tiny.yaml", "grid": GRID, "seeds": 1}))
    return sweep


def _writer(sweep: Path, tiny, surrogate: str) -> RunWriter:
    data = copy.deepcopy(tiny)
    data["model"]["neuron"]["surrogate"] = surrogate
    data["train"]["seed"] = 7
    return RunWriter(RunDir(sweep, f"tiny-{surrogate}-seed7", data))


def _rows(app) -> dict[str, str]:
    table = app.main.query_one("#sg-table", DataTable)
    return {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1]) for i in range(table.row_count)}


@pytest.mark.asyncio
async def test_a_sweep_is_followed_live_new_runs_appear_and_rows_follow_their_events(tmp_path, tiny):
    sweep = _sweep(tmp_path / "runs")
    atan_events = fake_events("tiny-atan-seed7")  # 3 epochs of 20 steps, then RunFinished
    first_epoch = next(i for i, e in enumerate(atan_events) if type(e).__name__ == "EpochMetrics") + 1
    atan = _writer(sweep, tiny, "atan")
    for event in atan_events[:first_epoch]:
        atan(event)

    app = make_app(sweep=sweep)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.compare) == 1, 30, "the sweep's first run")
        assert app.compare[0].metrics.status == "running" and app.compare[0].metrics.epoch == 1
        await wait_for(pilot, lambda: _rows(app) == {"atan · seed 7": "running"}, 30, "the table")

        # The sweep starts its second run, and the first one goes on and finishes.
        sigmoid = _writer(sweep, tiny, "sigmoid")
        sigmoid_events = fake_events("tiny-sigmoid-seed7", finish=False)
        for event in sigmoid_events[:5]:
            sigmoid(event)
        for event in atan_events[first_epoch:]:
            atan(event)
        atan.close()
        await wait_for(pilot, lambda: len(app.compare) == 2, 30, "the run the sweep started later")
        await wait_for(pilot, lambda: app.compare[0].metrics.status == "completed", 30, "the first run's end")
        assert [e.label for e in app.compare] == ["atan · seed 7", "sigmoid · seed 7"]  # grid order
        assert app.compare[0].metrics.epoch == 3 and len(app.compare[0].metrics.epoch_rows) == 3
        assert app.compare[1].metrics.status == "running" and app.compare[1].metrics.step == 4

        # The second one fails.
        for event in sigmoid_events[5:]:
            sigmoid(event)
        sigmoid(RunFailed(error="loss is NaN", reason=FailureReason.NAN_LOSS, time=1_700_000_100.0))
        sigmoid.close()
        await wait_for(pilot, lambda: app.compare[1].metrics.status == "failed", 30, "the second run's failure")
        expected = {"atan · seed 7": "completed", "sigmoid · seed 7": "failed"}
        await wait_for(pilot, lambda: _rows(app) == expected, 30, "the table's statuses")
        assert len(app.compare[1].metrics.epoch_rows) == 3
        # One legend entry per combination, in its colour: two combinations, two colours.
        assert app.compare[0].curve_label == "atan" and app.compare[1].curve_label == "sigmoid"
        assert app.compare[0].color != app.compare[1].color


def test_the_follower_reads_only_what_was_appended_and_finishes_a_half_written_line(tmp_path, tiny):
    sweep = _sweep(tmp_path / "runs")
    writer = _writer(sweep, tiny, "atan")
    events = fake_events("tiny-atan-seed7")
    for event in events[:10]:
        writer(event)
    writer.close()
    follower = SweepFollower(sweep)
    follower.scan()
    assert follower.drain() and len(follower) == 1
    (entry,) = follower.entries()
    assert entry.metrics.step == 9  # RunStarted and 9 steps
    path = entry.metrics.run_path and Path(entry.metrics.run_path) / "events.jsonl"
    line = json.dumps(events[10].to_dict()) + "\n"
    with open(path, "a") as f:
        f.write(line[:20])  # the run is caught mid-line
    follower.scan()
    assert not follower.drain()  # nothing complete yet
    with open(path, "a") as f:
        f.write(line[20:])
    follower.scan()
    assert follower.drain() and entry.metrics.step == 10
    follower.scan()
    assert not follower.drain()  # nothing new: nothing to redraw


def test_a_run_whose_process_is_gone_shows_as_died(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(compare, "DEAD_CHECK_S", 0.0)
    sweep = _sweep(tmp_path / "runs")
    writer = _writer(sweep, tiny, "atan")
    for event in fake_events("tiny-atan-seed7")[:10]:
        writer(event)
    writer.close()
    follower = SweepFollower(sweep)
    follower.scan()
    follower.drain()
    assert follower.entries()[0].metrics.status == "running"  # this process wrote it, and lives
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    summary = Path(follower.entries()[0].metrics.run_path or "") / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "pid": int(gone.stdout)}))
    follower.scan()
    follower.drain()
    assert follower.entries()[0].metrics.status == "died"


@pytest.mark.slow
@pytest.mark.asyncio
async def test_watching_a_real_sweep_shows_every_run_end_as_it_ends(tmp_path, tiny):
    tiny = copy.deepcopy(tiny)
    tiny["train"]["epochs"] = 1
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    command = [sys.executable, "-m", "snnlab", "sweep", "tiny.yaml", "--grid", "model.neuron.surrogate=atan,sigmoid",
               "--workers", "1"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        runs = tmp_path / "runs"
        import time

        deadline = time.monotonic() + 60
        while not (runs.is_dir() and any(runs.glob("sweep-*/sweep.yaml"))):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr and proc.stderr.read()
            time.sleep(0.05)
        (sweep,) = runs.glob("sweep-*")
        app = make_app(sweep=sweep)  # opened while the sweep has at most its first run under way
        async with app.run_test(size=SIZE) as pilot:
            seen: set[int] = set()

            def progress() -> bool:
                seen.add(len(app.compare))
                return len(app.compare) == 2 and all(e.metrics.status == "completed" for e in app.compare)

            await wait_for(pilot, progress, 150, "both runs of the sweep, completed")
            assert min(seen) < 2  # the second run appeared while the lab was watching
            assert [e.curve_label for e in app.compare] == ["atan", "sigmoid"]
            assert all(e.metrics.last_epoch is not None for e in app.compare)
            await wait_for(pilot, lambda: set(_rows(app).values()) == {"completed"}, 30, "the table")
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_seed_that_appears_later_takes_its_place_and_the_legend_entry_of_its_combination(tmp_path, tiny):
    sweep = _sweep(tmp_path / "runs")
    data = copy.deepcopy(tiny)
    data["model"]["neuron"]["surrogate"] = "atan"
    for seed in (8, 7):
        data["train"]["seed"] = seed
        with RunWriter(RunDir(sweep, f"tiny-atan-seed{seed}", data)) as writer:
            writer(fake_events(f"tiny-atan-seed{seed}")[0])
        if seed == 8:
            follower = SweepFollower(sweep)
            follower.scan()
            follower.drain()
            assert [(e.label, e.curve_label) for e in follower.entries()] == [("atan · seed 8", "atan")]
    follower.scan()
    follower.drain()
    # One combination, two seeds: one legend entry, the first seed's, which came second.
    assert [(e.label, e.curve_label) for e in follower.entries()] == [("atan · seed 7", "atan"), ("atan · seed 8", "")]


@pytest.mark.asyncio
async def test_the_runs_list_of_a_sweep_under_way_shows_the_runs_it_starts(tmp_path, tiny, monkeypatch):
    from snnlab.tui.screens import runs as runs_screen

    monkeypatch.setattr(runs_screen, "RELOAD_S", 0.2)
    sweep = _sweep(tmp_path / "runs")
    with _writer(sweep, tiny, "atan") as atan:
        for event in fake_events("tiny-atan-seed7"):
            atan(event)
    app = make_app(sweep=sweep)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.compare) == 1, 30, "the sweep")
        await pilot.press("r")
        await runs_listed(pilot)
        table = app.screen.query_one(DataTable)
        assert table.row_count == 1 and table.get_row_at(0)[2] == "completed"  # run, surrogate, status
        with _writer(sweep, tiny, "sigmoid") as sigmoid:  # every run has ended, but the sweep has not
            for event in fake_events("tiny-sigmoid-seed7", finish=False)[:30]:
                sigmoid(event)
        await wait_for(pilot, lambda: table.row_count == 2, 30, "the run the sweep started")
        assert sorted(str(table.get_row_at(i)[2]) for i in range(2)) == ["completed", "running"]
