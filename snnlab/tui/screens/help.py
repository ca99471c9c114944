"""Help: every key of the current screen with its binding id, what each pane does, and the focused widget."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

PANES_HELP = """\
[b]1 Network[/]     the config as a form, validated as you type (errors under the field). Presets, load/save YAML,
              layers: add, remove, reorder; each layer's neuron: none, the model's, or custom.
[b]2 Training[/]    live train loss (faint: per step; bright: smoothed) and accuracy, test points per evaluation,
              spike rate per layer, speed, ETA. Plots redraw a few times a second from bounded buffers.
[b]3 Inside[/]      membrane of chosen neurons over the T steps with threshold and spikes (▲), and the
              layer's raster. [b]\\[[/] [b]][/] step through evaluations, [b].[/] next sample, [b]n[/] next neurons,
              [b]y[/] next layer.
[b]4 Surrogates[/]  smooth(x) and grad(x) of chosen surrogates; [b]c[/] trains the config once per surrogate and
              overlays the runs, with a table of final accuracy, time and spike rate.
Training runs in a child process and writes a run directory (runs/<name>-<time>/), as `snnlab run` does;
stopping checkpoints it, and `snnlab run --resume DIR` continues it. `snnlab watch DIR` follows any run.
"""


class HelpScreen(ModalScreen[None]):
    """Opened with ``?`` or F1; closes with escape, ``?`` or q."""

    BINDINGS = [Binding("escape,question_mark,q,f1", "dismiss", "Close help", id="help.close")]

    def __init__(self, bindings: list[tuple[str, str, str]], about: str | None) -> None:
        super().__init__(classes="dialog")
        self.rows = bindings
        self.about = about  # not `focused`: that is the screen's own focused widget in Textual

    @classmethod
    def for_app(cls, app: App[Any], bindings: list[Any]) -> HelpScreen:
        """Help listing ``bindings`` (once per id) and describing the widget that has focus."""
        focused, about = app.focused, None
        if focused is not None:
            field = next((a for a in focused.ancestors_with_self if getattr(a, "description", "")), None)
            about = getattr(field, "description", None) or (str(focused.tooltip) if focused.tooltip else None)
            about = f"{getattr(field, 'path', focused.id or type(focused).__name__)}: {about}" if about else None
        rows, seen = [], set()
        for binding in bindings:
            if isinstance(binding, Binding) and binding.id not in seen:
                seen.add(binding.id)
                rows.append((binding.key, binding.description, binding.id or ""))
        return cls(rows, about)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            if self.about:  # a description is plain text: brackets in it are not markup
                yield Static(Text.assemble(("Focused:", "bold"), " ", self.about), id="help-focused")
            yield Static(Text.from_markup(PANES_HELP), id="help-panes")
            table = Table(title="Keys (ctrl+p: command palette)", title_justify="left", expand=True, box=None)
            table.add_column("key", style="bold cyan", no_wrap=True)
            table.add_column("does")
            table.add_column("binding id", style="grey62", no_wrap=True)
            for key, description, binding_id in self.rows:
                table.add_row(key, description, binding_id)
            yield Static(table, id="help-keys")
