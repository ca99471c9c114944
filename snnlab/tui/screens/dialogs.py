"""Small modal screens: an error message and a file path prompt (the runs list is in ``runs.py``)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


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
