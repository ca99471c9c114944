"""`snnlab watch` on a run directory whose events.jsonl holds lines that are not valid events."""

from __future__ import annotations

import json

import pytest

from snnlab.runs import RunDir, RunDirError, RunWriter
from snnlab.tui.app import make_app
from snnlab.tui.screens.dialogs import ErrorDialog
from snnlab.tui.widgets.status_bar import StatusBar
from tests.tui.conftest import fake_events, runs_listed, wait_for

SIZE = (120, 36)


def recorded(tmp_path, tiny) -> RunDir:
    run = RunDir(tmp_path / "runs", "fake", tiny)
    with RunWriter(run) as writer:
        for event in fake_events("fake"):
            writer(event)
    return run


@pytest.mark.asyncio
async def test_watch_skips_wrong_typed_lines_and_shows_the_rest(tmp_path, tiny):
    run = recorded(tmp_path, tiny)
    lines = (run.path / "events.jsonl").read_text().splitlines()
    # What a tester wrote by hand: numbers as strings. Each one used to end the lab.
    lines[3] = json.dumps({**json.loads(lines[3]), "loss": "NaN"})
    lines[4] = json.dumps({**json.loads(lines[4]), "samples_per_s": "fast"})
    (run.path / "events.jsonl").write_text("\n".join(lines) + "\n")

    app = make_app(watch=run.path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.view.status == "completed", 20, "the run's events")
        # The form reports the run's config once it has loaded it; leaving before that races the lab's exit.
        await wait_for(pilot, lambda: app.config is not None, 20, "the run's config in the form")
        await pilot.pause(0.4)  # a redraw or two
        assert app.source.bad_lines.count == 2
        assert "COMPLETED" in str(app.main.query_one(StatusBar).render())
        assert app.view.epoch == 3 and len(app.view.epoch_rows) == 3
        assert not isinstance(app.screen, ErrorDialog)
    assert app.return_code in (0, None)


def test_watch_refuses_an_events_file_that_is_a_folder(tmp_path, tiny):
    run = recorded(tmp_path, tiny)
    (run.path / "events.jsonl").unlink()
    (run.path / "events.jsonl").mkdir()
    with pytest.raises(RunDirError, match="no events.jsonl"):
        make_app(watch=run.path)


@pytest.mark.asyncio
async def test_a_run_with_a_broken_config_opens_from_the_runs_list(tmp_path, tiny):
    run = recorded(tmp_path, tiny)
    (run.path / "config.yaml").write_text("run: [\n")
    app = make_app(config=tiny, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.config is not None, 20, "the form")
        await pilot.press("2", "r")
        await runs_listed(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.view.status == "completed", 20, "the opened run")
        assert app.view.epoch == 3
        assert any("config.yaml" in str(n.message) for n in app._notifications)
