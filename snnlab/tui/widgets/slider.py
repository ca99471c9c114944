"""A small horizontal slider over whole numbers: click or drag with the mouse, arrow keys to step."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from snnlab.tui import palette


class Slider(Widget, can_focus=True):
    """Value in ``0..maximum``; posts :class:`Slider.Changed` when the user moves it."""

    BINDINGS = [
        Binding("left", "step(-1)", "Earlier", id="slider.earlier", show=False),
        Binding("right", "step(1)", "Later", id="slider.later", show=False),
        Binding("home", "jump(0)", "First", id="slider.first", show=False),
        Binding("end", "jump(-1)", "Last", id="slider.last", show=False),
    ]

    value = reactive(0)
    maximum = reactive(0)

    class Changed(Message):
        def __init__(self, slider: Slider, value: int) -> None:
            super().__init__()
            self.slider = slider
            self.value = value

        @property
        def control(self) -> Slider:
            return self.slider

    def set(self, value: int, maximum: int) -> None:
        """Move without posting :class:`Changed` (the app updates it from new data)."""
        self.maximum = max(0, maximum)
        self.value = min(max(0, value), self.maximum)

    def _move(self, value: int) -> None:
        value = min(max(0, value), self.maximum)
        if value != self.value:
            self.value = value
            self.post_message(self.Changed(self, value))

    def action_step(self, delta: int) -> None:
        self._move(self.value + delta)

    def action_jump(self, where: int) -> None:
        self._move(self.maximum if where < 0 else where)

    def _value_at(self, x: int) -> int:
        width = max(self.content_size.width - 1, 1)
        return round(x / width * self.maximum) if self.maximum else 0

    def on_click(self, event: events.Click) -> None:
        self._move(self._value_at(event.x))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if event.button:
            self._move(self._value_at(event.x))

    def render(self) -> Text:
        width = max(self.content_size.width, 2)
        pos = round(self.value / self.maximum * (width - 1)) if self.maximum else 0
        text = Text(no_wrap=True)
        text.append("━" * pos, f"bold {palette.ACCENT}")
        text.append("●", f"bold {palette.NEUTRAL}")
        text.append("─" * (width - pos - 1), palette.FAINT)
        return text
