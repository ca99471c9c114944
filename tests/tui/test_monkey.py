"""The lab under a monkey: hundreds of seeded random keys on every pane, at two terminal sizes, with a
field focused, while a run trains and while watching a run directory that is still being written.
Whatever the keys do (open dialogs, type into fields, start, pause and stop runs, export), the lab must
still be running at the end with no exception raised.

A failure prints the seed and every key pressed; ``SNNLAB_MONKEY_SEED=N`` replays one seed, and
``SNNLAB_MONKEY_KEYS=N`` presses N keys per pane instead of the default.
"""

from __future__ import annotations

import copy
import os
import random
import string
from pathlib import Path
from typing import Any

import pytest
from textual.binding import Binding
from textual.widgets import Input

from snnlab.runs import RunDir, RunWriter
from snnlab.tui.app import SnnLabApp, make_app
from snnlab.tui.screens.main import PANES
from tests.tui.conftest import fake_events, lab_classes

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

QUIT_KEYS = {"q", "ctrl+q", "ctrl+c"}  # the one thing the monkey may not do
MOVES = ["tab", "shift+tab", "up", "down", "left", "right", "enter", "escape", "space", "backspace", "home", "end",
         "pageup", "pagedown", "f1", "question_mark", "ctrl+p"]  # fmt: skip
TYPED = [c for c in string.ascii_letters + string.digits + string.punctuation + "é" if c not in QUIT_KEYS]
KEYS_PER_PANE = int(os.environ.get("SNNLAB_MONKEY_KEYS", "25"))


def bound_keys() -> list[str]:
    """Every key the lab binds, on the app, its screens and its widgets, except quitting."""
    keys: set[str] = set()
    for owner in lab_classes():
        for binding in owner.BINDINGS:
            key = binding.key if isinstance(binding, Binding) else binding[0]
            keys.update(k.strip() for k in key.split(","))
    return sorted(keys - QUIT_KEYS)


class Monkey:
    """Presses random keys, remembering them, and fails with the seed and the keys if the lab gives way."""

    def __init__(self, app: SnnLabApp, pilot: Any, seed: int) -> None:
        self.app, self.pilot, self.seed = app, pilot, seed
        self.rng = random.Random(seed)
        self.pressed: list[str] = []
        self.bound = bound_keys()

    def key(self) -> str:
        pick = self.rng.random()
        if pick < 0.4:
            return self.rng.choice(MOVES)
        if pick < 0.7:
            return self.rng.choice(self.bound)
        return self.rng.choice(TYPED)

    def check(self) -> None:
        if self.app.crash is not None or not self.app.is_running:
            what = repr(self.app.crash) if self.app.crash is not None else "the lab stopped"
            raise AssertionError(f"{what} (seed {self.seed}; replay with SNNLAB_MONKEY_SEED={self.seed}); "
                                 f"keys: {self.pressed}")  # fmt: skip

    async def press(self, count: int) -> None:
        for _ in range(count):
            key = self.key()
            self.pressed.append(key)
            await self.pilot.press(key)
            self.check()

    async def close_screens(self) -> None:
        """Back to the main screen the way a user gets there: escape closes every dialog, help and the palette.
        (Popping the palette from outside would leave its search running, which no user can do.)"""
        for _ in range(8):
            if len(self.app.screen_stack) == 1:
                return
            self.pressed.append("escape")
            await self.pilot.press("escape")
            self.check()
        raise AssertionError(f"escape does not close {self.app.screen!r} (seed {self.seed}); keys: {self.pressed}")

    async def on_pane(self, pane: str, count: int) -> None:
        """Back to the main screen, show ``pane``, and press ``count`` keys."""
        await self.close_screens()
        self.pressed.append(f"<pane {pane}>")
        self.app.main.show_pane(pane)
        await self.press(count)

    async def on_every_pane(self, count: int) -> None:
        for pane in PANES:
            await self.on_pane(pane, count)


def monkey_app(tiny: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epochs: int = 1) -> SnnLabApp:
    monkeypatch.chdir(tmp_path)  # exports and saved YAML files land here
    data = copy.deepcopy(tiny)
    data["train"]["epochs"] = epochs  # "s" and "c" are fair game: their runs should be short
    app = make_app(config=data, runs_dir=tmp_path / "runs")
    app.animation_level = "none"

    # The palette reaches quitting by typing and a screenshot into ~/Downloads; neither is a crash.
    async def no_quit() -> None:
        app.notify("the monkey may not quit")

    app.action_quit = no_quit  # type: ignore[method-assign]
    app.deliver_screenshot = lambda *args, **kwargs: None  # type: ignore[method-assign]
    return app


def seed_for(default: int) -> int:
    return int(os.environ.get("SNNLAB_MONKEY_SEED", default))


async def focus_fields(monkey: Monkey, rounds: int, count: int) -> None:
    """Focus a random field of the Network pane, then press ``count`` keys; ``rounds`` times."""
    app = monkey.app
    for _ in range(rounds):
        await monkey.close_screens()
        app.main.show_pane("network", focus=False)
        await monkey.pilot.pause()
        fields = [i for i in app.main.query(Input) if i.display and i.region.area]
        target = monkey.rng.choice(fields)
        target.focus()
        monkey.pressed.append(f"<focus {target.name}>")
        await monkey.press(count)


async def test_random_keys_on_every_pane_and_in_the_fields_at_80x24(tiny, tmp_path, monkeypatch):
    app = monkey_app(tiny, tmp_path, monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        monkey = Monkey(app, pilot, seed_for(80))
        await monkey.on_every_pane(KEYS_PER_PANE)
        await focus_fields(monkey, 2, KEYS_PER_PANE)
        monkey.check()


async def test_random_keys_on_every_pane_and_in_the_fields_while_a_run_trains_at_120x36(tiny, tmp_path, monkeypatch):
    app = monkey_app(tiny, tmp_path, monkeypatch, epochs=3)  # the real thing: training in a child process
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("2", "s")
        assert app.job is not None  # the monkey starts while the child is still starting up: that counts too
        monkey = Monkey(app, pilot, seed_for(120))
        await monkey.on_every_pane(KEYS_PER_PANE)
        await focus_fields(monkey, 2, KEYS_PER_PANE)
        monkey.check()


async def test_random_keys_while_watching_a_run_being_written_do_not_crash_the_lab(tiny, tmp_path, monkeypatch):
    """`snnlab watch` on a headless run that is still writing its events, with the monkey at the keys."""
    events = fake_events("live", epochs=4, steps=10)
    run_dir = RunDir(tmp_path / "runs", "live", tiny)
    with RunWriter(run_dir) as writer:
        for event in events[:5]:
            writer(event)
        monkeypatch.chdir(tmp_path)
        app = make_app(watch=run_dir.path, runs_dir=tmp_path / "runs")
        app.animation_level = "none"
        app.deliver_screenshot = lambda *args, **kwargs: None  # type: ignore[method-assign]
        async with app.run_test(size=(120, 36)) as pilot:
            monkey = Monkey(app, pilot, seed_for(5))
            chunks = [events[i : i + 12] for i in range(5, len(events), 12)]
            for pane in PANES:  # the run goes on writing between the panes
                for event in chunks.pop(0) if chunks else []:
                    writer(event)
                await monkey.on_pane(pane, KEYS_PER_PANE)
            monkey.check()
