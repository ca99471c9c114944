"""Help: every key of the current screen as the user types it, with its binding id (for the keymap), what
each pane does, and the focused widget."""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from snnlab.tui import palette
from snnlab.tui.keymap import KEYMAP_PLACE, key_names
from snnlab.tui.screens.main import PANE_NAMES

# What each pane does, in which {binding id} stands for that binding's key: help can only name keys that are
# bound, and names them as the keymap has them. Paragraphs, not lines: the text wraps to the screen.
PANE_HELP = {
    "network": "the config as a form, validated as you type (errors under the field; the layer stack's under "
    "the layer list). Presets, load/save YAML, layers: add, remove, reorder; each layer's neuron: none, the "
    "model's, or custom.",
    "training": "live train loss (faint: per step; bright: smoothed) and accuracy, test points per evaluation, "
    "spike rate per layer, speed, ETA. On a focused plot (tab or a click): {lab.plot-left} {lab.plot-right} move "
    "a crosshair that reads every curve, {lab.plot-zoom-in} {lab.plot-zoom-out} zoom x, {lab.plot-pan-left} "
    "{lab.plot-pan-right} pan, {lab.plot-reset} resets, {lab.plot-log-y} log y, {lab.plot-smoothing} smoothing, "
    "{lab.plot-x-axis} x axis (step, epoch, time). Runs opened as overlays are listed under the plots, a "
    "checkbox each.",
    "inside": "membrane of chosen neurons over the T steps with threshold and spikes (▲), a raster row per "
    "neuron, and the network's health per layer (silent and saturated neurons, rate, surrogate and weight "
    "gradients, SynOps) with a hint for each warning. {inside.prev-eval} {inside.next-eval} step through "
    "evaluations, {inside.play} plays them, {inside.prev-sample} {inside.next-sample} sample, "
    "{inside.prev-neurons} {inside.next-neurons} neurons, {inside.next-layer} layer. On the raster: "
    "{inside.raster-up} {inside.raster-down} move the cursor, {inside.raster-order} orders rows by index, rate "
    "or change, {inside.trace-neuron} traces the neuron under the cursor.",
    "surrogates": "smooth(x) and grad(x) of chosen surrogates; {lab.compare} trains the config once per "
    "surrogate and overlays the runs, with a table of final accuracy, time and spike rate.",
}
TYPING_HELP = (
    "While a text field has focus it takes letters and digits as text. The function keys work everywhere: "
    "{lab.start} start, {lab.pause} pause or resume, {lab.stop} stop, {lab.compare} compare, {lab.help} help; "
    "{lab.leave} leaves the field for its pane, where the letter keys work again; ^q quits from anywhere."
)
RUNS_HELP = (
    "Training runs in a child process and writes a run directory (runs/<name>-<time>/), as `snnlab run` does; "
    "stopping checkpoints it, and `snnlab run --resume DIR` continues it. `snnlab watch DIR` follows any run. "
    "Keys can be changed in {keymap} (binding id: keys, one per line, the ids below) or with "
    "`snnlab lab --keymap FILE`."
)


def with_keys(template: str, keys: Mapping[str, str]) -> Text:
    """``template`` with each ``{binding id}`` replaced by the key of that binding, in bold."""
    text = Text()
    for literal, binding_id, _, _ in Formatter().parse(template):
        text.append(literal)
        if binding_id is not None:
            text.append(keys[binding_id], "bold")
    return text


def panes_text(keys: Mapping[str, str], typing_keys: Mapping[str, str] | None = None, keymap_path: str = "") -> Table:
    """Each pane's key and name beside what it shows and the keys that work in it; then the keys that work
    while typing (``typing_keys``) and where runs go. The right column wraps to the width of the screen."""
    table = Table.grid(padding=(0, 2, 1, 0), expand=True)
    table.add_column(no_wrap=True)
    table.add_column(ratio=1)
    for pane, paragraph in PANE_HELP.items():
        table.add_row(Text(f"{keys[f'lab.pane-{pane}']} {PANE_NAMES[pane]}", "bold"), with_keys(paragraph, keys))
    table.add_row(Text("Typing", "bold"), with_keys(TYPING_HELP, typing_keys or keys))
    table.add_row(Text("Runs", "bold"), Text(RUNS_HELP.format(keymap=keymap_path or "the keymap file")))
    return table


class HelpScreen(ModalScreen[None]):
    """Opened with ``?`` or F1; closes with escape, ``?`` or q."""

    BINDINGS = [Binding("escape,question_mark,q,f1", "dismiss", "Close help", id="help.close")]

    def __init__(self, bindings: list[tuple[str, str, str]], panes: Table, about: str | None, palette_key: str) -> None:
        super().__init__(classes="dialog")
        self.rows = bindings
        self.panes = panes
        self.about = about  # not `focused`: that is the screen's own focused widget in Textual
        self.palette_key = palette_key

    @classmethod
    def for_app(cls, app: App[Any], bindings: list[Any]) -> HelpScreen:
        """Help listing ``bindings`` (once per id) and describing the widget that has focus."""
        focused, about = app.focused, None
        if focused is not None:
            field = next((a for a in focused.ancestors_with_self if getattr(a, "description", "")), None)
            about = getattr(field, "description", None) or (str(focused.tooltip) if focused.tooltip else None)
            about = f"{getattr(field, 'path', focused.id or type(focused).__name__)}: {about}" if about else None
        rows, seen, keys, typing_keys = [], set(), {}, {}
        for binding in bindings:
            if isinstance(binding, Binding) and binding.id not in seen:
                seen.add(binding.id)
                keys[binding.id or ""] = key_names(app, binding)
                typing_keys[binding.id or ""] = key_names(app, binding, typing=True)
                rows.append((keys[binding.id or ""], binding.description, binding.id or ""))
        palette_key = app.get_key_display(Binding(app.COMMAND_PALETTE_BINDING, ""))
        return cls(rows, panes_text(keys, typing_keys, KEYMAP_PLACE), about, palette_key)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            if self.about:  # a description is plain text: brackets in it are not markup
                yield Static(Text.assemble(("Focused:", "bold"), " ", self.about), id="help-focused")
            yield Static(self.panes, id="help-panes")
            title = f"Keys ({self.palette_key}: command palette)"
            table = Table(title=title, title_justify="left", expand=True, box=None)
            table.add_column("key", style=f"bold {palette.ACCENT}", no_wrap=True)  # "s or F5"
            table.add_column("does")
            table.add_column("binding id", style=palette.AXIS, no_wrap=True)
            for key, description, binding_id in self.rows:
                table.add_row(key, description, binding_id)
            yield Static(table, id="help-keys")
