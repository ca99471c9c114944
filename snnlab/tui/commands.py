"""The command palette: the lab's bindings that make sense at this moment, then its presets.

Each entry comes from a binding: the title is its tooltip, the key shown is its key, and choosing the
entry runs its action; so the palette cannot name a key that is not bound. A few entries add a word on
what they do, which the footer has no room for. The app is seen only through :class:`Lab`, which the
app satisfies, so this module never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, runtime_checkable

from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from snnlab.config import Config, list_presets
from snnlab.tui.keymap import key_names
from snnlab.tui.messages import PresetChosen
from snnlab.tui.screens.main import PANES
from snnlab.tui.worker import TrainingJob

Command = tuple[str, str, Callable[[], Any]]

# The bindings the palette offers, in its order, each with what it does where its title does not say it
# all. Splits, quitting and the Inside pane's keys stay off the palette.
PALETTE = {
    "lab.start": "train the current config",
    "lab.compare": "train once per chosen surrogate",
    "lab.pause": "",
    "lab.stop": "stop and checkpoint",
    **{f"lab.pane-{key}": "" for key in PANES},
    "lab.maximize": "",
    "lab.layout": "",
    "lab.runs": "list runs to open or overlay, and sweeps",
    "lab.export": "SVG of this view and the metrics",
    "lab.load-yaml": "",
    "lab.save-yaml": "",
    "lab.help": "",
}


@runtime_checkable
class Lab(Protocol):
    """What the palette reads of the app's state."""

    job: TrainingJob | None
    config: Config | None
    overlays: list[Any]

    def clear_overlays(self) -> None: ...


def bindings_by_id(app: App[Any]) -> dict[str, Binding]:
    found: dict[str, Binding] = {}
    for binding in type(app).BINDINGS:  # the first of an id: Pause, not its twin Resume
        if isinstance(binding, Binding) and binding.id:
            found.setdefault(binding.id, binding)
    return found


def _offered(lab: Lab, binding_id: str) -> bool:
    job = lab.job
    if binding_id in ("lab.start", "lab.compare"):
        return job is None and lab.config is not None
    if binding_id in ("lab.pause", "lab.stop"):
        return job is not None and not job.stopping
    return True


def palette_commands(app: App[Any]) -> list[Command]:
    """(title, help, callback) for the palette: training controls by state, panes, files, presets."""
    if not isinstance(app, Lab):
        return []
    bindings = bindings_by_id(app)
    commands: list[Command] = []
    for binding_id, does in PALETTE.items():
        binding = bindings[binding_id]
        if _offered(app, binding_id):
            title, action = binding.tooltip or binding.description, binding.action
            if binding_id == "lab.pause" and app.job is not None and app.job.paused:
                title, action = "Resume training", "resume"  # the app runs pause only while a run trains
            keys = key_names(app, binding)
            help_text = f"{does} ({keys})" if does else f"key {keys}"
            commands.append((title, help_text, partial(app.run_action, action)))
    if app.overlays:
        commands.append(("Clear overlays", "remove overlaid runs from the plots", app.clear_overlays))
    if app.job is None:
        for name, description in list_presets():
            commands.append((f"Load preset {name}", description, partial(app.post_message, PresetChosen(name))))
    return commands


class LabCommands(Provider):
    """Searches :func:`palette_commands` of the running app."""

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in palette_commands(self.app):
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)

    async def discover(self) -> Hits:
        for title, help_text, callback in palette_commands(self.app):
            yield DiscoveryHit(title, callback, help=help_text)
