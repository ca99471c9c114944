"""Keys that work while typing: a text field takes letters as text, the function keys act from anywhere,
escape leaves the field for its pane, and the footer shows the keys that work at that moment."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from textual.widgets import Footer, Input

from snnlab.tui.app import SnnLabApp, make_app
from snnlab.tui.commands import palette_commands
from snnlab.tui.screens.main import Pane
from snnlab.tui.widgets.inside_pane import InsidePane
from snnlab.tui.widgets.slider import Slider
from snnlab.tui.worker import ReplaySource
from tests.conftest import TINY
from tests.tui.conftest import fake_events, wait_for


class FakeJob:
    """Stands in for the training child: records what the lab asks of it."""

    def __init__(self) -> None:
        self.paused = self.stopping = self.ended = False
        self.calls: list[str] = []

    def alive(self) -> bool:
        return not self.ended

    def pause(self) -> None:
        self.calls.append("pause")
        self.paused = True

    def resume(self) -> None:
        self.calls.append("resume")
        self.paused = False

    def stop(self) -> None:
        self.calls.append("stop")
        self.stopping = True

    def close(self) -> None:
        self.ended = True

    def drain(self) -> list[Any]:
        return []

    def failure(self) -> None:
        return None


def lab_with_fake_launch() -> tuple[SnnLabApp, list[dict[str, Any]]]:
    """The lab, with training replaced by a note of each start (no child process)."""
    app = make_app(config=copy.deepcopy(TINY))
    app.animation_level = "none"
    started: list[dict[str, Any]] = []

    def launch(data: dict[str, Any], metrics: Any = None) -> bool:
        started.append(data)
        return True

    app._launch = launch  # type: ignore[method-assign]
    return app, started


def footer(app: SnnLabApp) -> dict[str, tuple[str, bool]]:
    """What the footer shows: description -> (key as shown, enabled)."""
    keys = app.main.query_one(Footer).query("FooterKey")
    return {key.description: (key.key_display, not key.has_class("-disabled")) for key in keys}


async def focus_field(pilot: Any, path: str = "data.batch_size") -> Input:
    field = next(f for f in pilot.app.main.query("Field") if f.path == path)
    field.editor.focus()
    await pilot.pause()
    return field.editor


@pytest.mark.asyncio
async def test_in_a_field_letters_are_text_and_function_keys_act():
    app, started = lab_with_fake_launch()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        field = await focus_field(pilot, "run.name")
        field.value = ""
        await pilot.press("s", "p", "x", "z", "q", "question_mark", "1")
        await pilot.pause()
        assert field.value == "spxzq?1" and app.focused is field and app.is_running
        assert app.main.maximized is None and started == [] and app.main.active == "network"
        await pilot.press("ctrl+a", "ctrl+k", *"typed", "f5")  # a valid name again, then start from the field
        await wait_for(pilot, lambda: len(started) == 1, 30, "F5 to start training")
        assert started[0]["run"]["name"] == "typed"


@pytest.mark.asyncio
async def test_the_footer_shows_the_keys_that_work_now():
    # Wide, the keys that cannot be used now are greyed, and the command palette's key is there.
    app, _ = lab_with_fake_launch()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        shown = footer(app)
        assert shown["Start"] == ("s", True) and shown["Pause"] == ("p", False) and shown["Help"] == ("?", True)
        assert "Leave" not in shown and "Resume" not in shown
        assert app.main.query_one(Footer).show_command_palette
        await focus_field(pilot)
        await pilot.pause()
        shown = footer(app)
        assert shown["Start"] == ("F5", True) and shown["Stop"] == ("F7", False) and shown["Help"] == ("F1", True)
        assert shown["Leave"] == ("esc", True)


@pytest.mark.asyncio
async def test_a_narrow_footer_shows_only_the_keys_that_work_now_and_fits():
    # Below 100 columns the greyed keys and the palette's entry (ctrl+p, listed in help) leave the footer, so
    # a pane's own keys and the lab's fit in 80 columns; widening brings them back.
    app = make_app(config=copy.deepcopy(TINY), source=ReplaySource(fake_events()))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.view.status == "completed", 20, "the replay")
        await pilot.pause()
        shown = footer(app)
        assert shown["Start"] == ("s", True) and "Pause" not in shown and "Stop" not in shown
        assert not app.main.query_one(Footer).show_command_palette
        await pilot.press("3")  # the Inside pane: its keys first, then the lab's, all of them in 80 columns
        await wait_for(pilot, lambda: "eval" in footer(app) or "Layer" in footer(app), 30, "the pane's keys")
        await pilot.pause()
        keys = app.main.query_one(Footer).query("FooterKey")
        assert {"Layer", "Start", "Compare", "Runs", "Help"} <= set(footer(app))
        assert max(key.region.right for key in keys) <= 80
        await pilot.resize_terminal(120, 36)
        await wait_for(pilot, lambda: "Pause" in footer(app), 30, "the greyed keys back")
        assert footer(app)["Pause"] == ("p", False) and app.main.query_one(Footer).show_command_palette


@pytest.mark.asyncio
async def test_escape_leaves_the_field_for_its_pane_where_letters_act_again():
    app, started = lab_with_fake_launch()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        field = await focus_field(pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is app.main.query_one("#pane-network", Pane) and field.value == "50"
        assert footer(app)["Start"] == ("s", True) and "Leave" not in footer(app)
        await pilot.press("s")
        await wait_for(pilot, lambda: len(started) == 1, 30, "s to start training once out of the field")
        assert field.value == "50"


@pytest.mark.asyncio
async def test_escape_in_a_maximized_pane_first_leaves_the_field_then_restores():
    app, _ = lab_with_fake_launch()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("z")
        await pilot.pause()
        assert app.main.maximized is not None
        await focus_field(pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert app.main.maximized is not None and isinstance(app.focused, Pane)
        await pilot.press("escape")
        await pilot.pause()
        assert app.main.maximized is None


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
@pytest.mark.asyncio
async def test_z_five_times_never_puts_focus_in_a_field_and_q_then_quits(size):
    # Once, maximizing with focus on the tabs let Textual move focus into the Surrogates pane's
    # triangle.width field, where every later key, q included, was typed.
    app, _ = lab_with_fake_launch()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        for press in range(5):
            await pilot.press("z")
            await pilot.pause()
            assert not isinstance(app.focused, Input), f"z #{press + 1} focused {app.focused}"
            assert (app.main.maximized is not None) == (press % 2 == 0)
        assert app.main.pane_of(app.focused) == "network"
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, 30, "q to quit")
    for field in app.main.query(Input):
        assert "z" not in field.value and "q" not in field.value


@pytest.mark.asyncio
async def test_the_footer_says_resume_while_paused_and_p_resumes():
    app, _ = lab_with_fake_launch()
    async with app.run_test(size=(120, 36)) as pilot:  # wide: greyed keys are shown (narrow hides them)
        await pilot.pause()
        job = FakeJob()
        app.job = job  # type: ignore[assignment]
        app.refresh_bindings()
        await pilot.pause()
        assert footer(app)["Pause"] == ("p", True) and "Resume" not in footer(app)
        assert footer(app)["Start"] == ("s", False)  # one run at a time
        await pilot.press("p")
        await pilot.pause()
        assert job.calls == ["pause"] and app.view.status == "paused"
        assert footer(app)["Resume"] == ("p", True) and "Pause" not in footer(app)
        await focus_field(pilot)
        assert footer(app)["Resume"] == ("F6", True)
        await pilot.press("f6")
        await pilot.pause()
        assert job.calls == ["pause", "resume"] and app.view.status == "running"
        assert footer(app)["Pause"] == ("F6", True)
        # The palette offers the same two, by the keys that run them.
        commands = {title: (keys, run) for title, keys, run in palette_commands(app)}
        assert commands["Pause training"][0] == "key p or F6" and "Resume training" not in commands
        await commands["Pause training"][1]()
        commands = {title: (keys, run) for title, keys, run in palette_commands(app)}
        assert "Pause training" not in commands
        await commands["Resume training"][1]()
        assert job.calls == ["pause", "resume", "pause", "resume"]
        app.job = None


@pytest.mark.asyncio
async def test_switching_panes_from_a_field_with_ctrl_page_keys():
    app, _ = lab_with_fake_launch()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await focus_field(pilot)
        await pilot.press("ctrl+pagedown")
        await pilot.pause()
        assert app.main.active == "training" and app.focused is app.main.query_one("#pane-training", Pane)
        await pilot.press("ctrl+pageup", "ctrl+pageup")
        await pilot.pause()
        assert app.main.active == "surrogates"
        await pilot.press("1")  # the pane has focus, not a field: digits switch panes
        await pilot.pause()
        assert app.main.active == "network" and not isinstance(app.focused, Input)


@pytest.mark.asyncio
async def test_escape_in_the_inside_pane_returns_to_its_widget_whose_keys_then_work():
    app = make_app(config=copy.deepcopy(TINY), source=ReplaySource(fake_events()))
    app.animation_level = "none"
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.view.status == "completed", 30, "the replayed run")
        await pilot.press("3")
        inside = app.main.query_one(InsidePane)
        await wait_for(pilot, lambda: app.focused is inside, 30, "the Inside pane's own widget to have focus")
        app.main.query_one(Slider).focus()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is inside
        label = str(app.main.query_one("#inside-eval").render())
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: str(app.main.query_one("#inside-eval").render()) != label, 30, "[ to step back")
