"""The command palette: a Provider that offers the lab's actions that make sense at this moment."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from snnlab.config import list_presets
from snnlab.tui.messages import PresetChosen
from snnlab.tui.screens.main import PANES

if TYPE_CHECKING:
    from snnlab.tui.app import SnnLabApp

Command = tuple[str, str, Callable[[], Any]]


def palette_commands(app: SnnLabApp) -> list[Command]:
    """(title, help, callback) for the palette: training controls by state, panes, files, presets."""
    commands: list[Command] = []
    job = app.job
    if job is None and app.config is not None:
        commands.append(("Start training", "train the current config (s)", app.action_start))
        commands.append(("Compare surrogates", "train once per chosen surrogate (c)", app.action_compare))
    if job is not None and not job.stopping:
        commands.append(("Resume training" if job.paused else "Pause training", "p", app.action_pause))
        commands.append(("Stop training", "stop and checkpoint (x)", app.action_stop))
    for key, label in PANES.items():
        commands.append((f"Show the {label[2:]} pane", f"key {label[0]}", partial(app.action_pane, key)))
    commands += [
        ("Maximize / restore the pane", "z; escape restores", app.action_maximize_pane),
        ("Toggle grid / single pane layout", "l", app.action_toggle_layout),
        ("Open a run or sweep…", "list runs to open or overlay, and sweeps (r)", app.action_runs),
        ("Export screenshot and CSV", "SVG of this view and the metrics (e)", app.action_export),
        ("Load config YAML…", "ctrl+o", app.action_load_yaml),
        ("Save config YAML…", "ctrl+s", app.action_save_yaml),
        ("Help", "? or F1", app.action_help),
    ]
    if app.overlays:
        commands.append(("Clear overlays", "remove overlaid runs from the plots", app.clear_overlays))
    if job is None:
        for name, description in list_presets():
            commands.append((f"Load preset {name}", description, partial(_load_preset, app, name)))
    return commands


def _load_preset(app: SnnLabApp, name: str) -> None:
    app.post_message(PresetChosen(name))


class LabCommands(Provider):
    """Searches :func:`palette_commands` of the running app."""

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in palette_commands(self.app):  # type: ignore[arg-type]
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)

    async def discover(self) -> Hits:
        for title, help_text, callback in palette_commands(self.app):  # type: ignore[arg-type]
            yield DiscoveryHit(title, callback, help=help_text)
