"""Small modal screens: an error message, a file path prompt, and the runs list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Static

from snnlab.formatting import format_duration, format_percent
from snnlab.runs import RunInfo, list_runs
from snnlab.sweep import list_sweeps, run_count


class ErrorDialog(ModalScreen[None]):
    """A failure the user should read (a crashed run, a bad file); the app keeps working after it."""

    BINDINGS = [Binding("escape,enter", "dismiss", "Close", id="dialog.close")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="error-box"):
            yield Label(Content.from_markup("[b]$title", title=self.title_text), id="dialog-title")
            yield Static(self.message, id="dialog-message", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button("OK", id="dialog-ok", variant="error")

    @on(Button.Pressed, "#dialog-ok")
    def _ok(self) -> None:
        self.dismiss(None)


class PathDialog(ModalScreen[str | None]):
    """Ask for a file path (load / save a YAML preset); dismisses with the path or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, title: str, value: str = "", action: str = "OK") -> None:
        super().__init__(classes="dialog")
        self.title_text, self.value, self.action = title, value, action

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(Content.from_markup("[b]$title", title=self.title_text), id="dialog-title")
            yield Input(self.value, id="dialog-input", placeholder="path/to/config.yaml")
            with Horizontal(id="dialog-buttons"):
                yield Button(self.action, id="dialog-ok", variant="primary")
                yield Button("Cancel", id="dialog-cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#dialog-ok")
    def _ok(self) -> None:
        text = self.query_one(Input).value.strip()
        self.dismiss(text or None)

    @on(Button.Pressed, "#dialog-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class RunsScreen(ModalScreen[tuple[str, Path] | None]):
    """Runs under ``runs_dir``: open one (enter) or overlay it on the Training plots (o). Sweep folders
    are listed too; enter opens one in the Surrogates pane."""

    BINDINGS = [
        Binding("enter", "choose('open')", "Open", id="runs.open"),
        Binding("o", "choose('overlay')", "Overlay", id="runs.overlay"),
        Binding("escape", "cancel", "Close", id="runs.close"),
    ]

    def __init__(self, runs_dir: str | Path) -> None:
        super().__init__(classes="dialog")
        self.runs_dir = Path(runs_dir)
        self.infos: list[RunInfo] = []
        self.sweeps: list[Path] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="runs-box"):
            markup = "[b]Runs in $path/[/]  enter: open · o: overlay on the plots"  # a path may hold brackets
            yield Label(Content.from_markup(markup, path=str(self.runs_dir)), id="dialog-title")
            table: DataTable[Any] = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield table
            with Horizontal(id="dialog-buttons"):
                yield Button("Open", id="runs-open", variant="primary")
                yield Button("Overlay", id="runs-overlay")
                yield Button("Close", id="runs-close")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("run", "status", "dataset", "epochs", "best acc", "time")
        self.infos = list_runs(self.runs_dir)
        for info in self.infos:
            best = format_percent(info.best_accuracy)
            epochs = f"{info.epochs_done}/{info.epochs}" if info.epochs else str(info.epochs_done)
            table.add_row(info.path.name, info.status, info.dataset or "-", epochs, best,
                          format_duration(info.wall_time))  # fmt: skip
        self.sweeps = list_sweeps(self.runs_dir)
        for path in self.sweeps:
            table.add_row(path.name, "sweep", "-", f"{run_count(path)} runs", "-", "-")
        if not self.infos and not self.sweeps:
            title = Content.from_markup("[b]No runs in $path/ yet[/]: press s to train", path=str(self.runs_dir))
            self.query_one("#dialog-title", Label).update(title)
        table.focus()

    def action_choose(self, what: str) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        if 0 <= row < len(self.infos):
            self.dismiss((what, self.infos[row].path))
        elif 0 <= row - len(self.infos) < len(self.sweeps):
            self.dismiss(("sweep", self.sweeps[row - len(self.infos)]))

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_choose("open")

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        if event.button.id == "runs-open":
            self.action_choose("open")
        elif event.button.id == "runs-overlay":
            self.action_choose("overlay")
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
