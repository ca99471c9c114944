"""The health panel in the Inside pane: it follows the run's health reports live, highlights the cells behind
each warning, shows the hints, keeps its numbers whole on a narrow pane, and reads old runs without reports."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from rich.console import Console

from snnlab.engine.events import HealthReport
from snnlab.tui.app import make_app
from snnlab.tui.widgets.health_panel import HealthPanel, health_view
from snnlab.tui.worker import ReplaySource
from tests.conftest import TINY
from tests.tui.conftest import fake_events, wait_for


def shown(panel: HealthPanel) -> list[str]:
    return [" ".join(strip.text.strip("│ ").split()) for strip in panel.render_lines(panel.region.reset_offset)]


def style_of(panel: HealthPanel, text: str) -> Any:
    for strip in panel.render_lines(panel.region.reset_offset):
        for segment in strip:
            if segment.text.strip() == text:
                return segment.style
    raise AssertionError(f"{text!r} is not in the panel")


@pytest.mark.asyncio
async def test_the_health_panel_follows_the_run_live_and_highlights_the_warned_cells():
    events = fake_events()
    first = next(i for i, e in enumerate(events) if isinstance(e, HealthReport))
    source = ReplaySource(events[: first + 1])  # the run as it stands after its first evaluation
    app = make_app(config=copy.deepcopy(TINY), source=source)
    app.animation_level = "none"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        panel = app.main.query_one(HealthPanel)
        await wait_for(pilot, lambda: "epoch 1" in str(panel.border_title), 30, "the first health report")
        assert panel.border_title == "health · epoch 1 · 25.2k SynOps/sample"
        lines = shown(panel)
        assert lines[1:4] == [
            "layer silent satur. rate dS/dU |∇W| SynOps",
            "fc1 25% 0% 0.080 0.21 4e-05 25.1k",
            "fc2 97% 0% 0.180 0.004 0.8 96",
        ]
        assert lines[4:6] == [
            "▲ fc1: weight gradient vanishing (4e-05): fc2 is silent: fix that first",
            "▲ fc2: 97% silent: lower the threshold or raise the init scale",
        ]
        # The cells behind the warnings stand out; the others do not.
        warned, plain = style_of(panel, "97%"), style_of(panel, "25%")
        assert warned.bold and not plain.bold and warned.color != plain.color
        assert style_of(panel, "4e-05") == warned and style_of(panel, "0.8") == plain

        source._events.extend(events[first + 1 :])  # the rest of the run arrives
        await wait_for(pilot, lambda: "epoch 3" in str(panel.border_title), 30, "the last health report")
        assert "▲ fc2: 91% silent: lower the threshold or raise the init scale" in shown(panel)


@pytest.mark.asyncio
async def test_a_run_from_before_health_reports_shows_when_they_come():
    app = make_app(config=copy.deepcopy(TINY), source=ReplaySource(fake_events(health=False)))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: app.view.status == "completed", 30, "the run")
        await pilot.pause(0.3)
        panel = app.main.query_one(HealthPanel)
        assert panel.border_title == "health"
        assert any(line.startswith("reported after each evaluation") for line in shown(panel))


def test_on_a_narrow_pane_the_numbers_stay_whole_and_the_hints_wrap():
    report = [e for e in fake_events() if isinstance(e, HealthReport)][-1]
    console = Console(width=54, record=True)  # inside the Inside pane beside the Training pane at 120x36
    console.print(health_view(report))
    text = console.export_text()
    for cells in (("15%", "0%", "0.140", "0.21", "1.3e-05", "25.1k"), ("91%", "0%", "0.140", "0.004", "0.8", "288")):
        row = next(line for line in text.splitlines() if cells[0] in line)
        assert row.split()[1:] == list(cells)
    assert "fix that first" in text and "init scale" in text  # wrapped, not cut
