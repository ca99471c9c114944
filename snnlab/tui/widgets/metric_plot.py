"""A plot widget: holds the series it was last given and draws them with :func:`snnlab.plotting.render`.

It redraws only when handed new series, resized, or moved by a key; the panes hand it data from a timer at
a few Hz, so the cost of drawing never scales with the training step rate.

Focused (click it or Tab to it), it reads and zooms with the keyboard: a crosshair moves with the arrow
keys and the legend then reads each curve's data point under it; ``+``/``-`` zoom x around the crosshair,
``<``/``>`` pan, ``0`` resets, ``L`` toggles a log y axis (keys that no pane around a plot uses). Plots of
per-step curves share :class:`PlotOptions` with the other plots of their pane: ``m`` cycles the smoothing and
``t`` the x axis (step, epoch, wall time) of all of them; the pane redraws on :class:`MetricPlot.OptionsChanged`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget

from snnlab.curves import Smoothing, next_smoothing, next_x_axis
from snnlab.plotting import Band, Frame, HLine, Series, data_range, render

ZOOM_MIN_SPAN = 1e-9  # of the x range, relative to the data's: deeper zoom shows nothing more


@dataclass
class PlotOptions:
    """Settings that the plots of one pane share (the pane reads them when it builds their series)."""

    smoothing: Smoothing = field(default_factory=Smoothing)
    x_axis: str = "step"


class MetricPlot(Widget, can_focus=True):
    """A titled line plot. ``show(series, ...)`` replaces what it draws."""

    # Not in the footer, which keeps the app's keys: a focused plot lists its keys in its bottom border.
    BINDINGS = [
        Binding("left", "cursor(-1)", "Crosshair left", id="lab.plot-left", show=False),
        Binding("right", "cursor(1)", "Crosshair right", id="lab.plot-right", show=False),
        Binding("shift+left", "cursor(-10)", "Crosshair left x10", id="lab.plot-left-fast", show=False),
        Binding("shift+right", "cursor(10)", "Crosshair right x10", id="lab.plot-right-fast", show=False),
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in", id="lab.plot-zoom-in", show=False),
        Binding("minus", "zoom(2)", "Zoom out", id="lab.plot-zoom-out", show=False),
        Binding("less_than_sign", "pan(-1)", "Pan left", id="lab.plot-pan-left", show=False),
        Binding("greater_than_sign", "pan(1)", "Pan right", id="lab.plot-pan-right", show=False),
        Binding(
            "0", "reset_view", "Reset view", id="lab.plot-reset", show=False, tooltip="Whole x range, no crosshair"
        ),  # fmt: skip
        Binding("L", "log_y", "Log y", id="lab.plot-log-y", show=False, tooltip="Toggle a log y axis"),
        Binding("m", "smoothing", "Smoothing", id="lab.plot-smoothing", show=False, tooltip="Cycle the smoothing"),
        Binding("t", "x_axis", "x axis", id="lab.plot-x-axis", show=False, tooltip="Cycle x: step / epoch / time"),
        # Escape's id is the lab's (one key, one id): on a plot it first hides the crosshair, then leaves.
        Binding("escape", "hide_cursor", "Hide crosshair", id="lab.leave", show=False),
    ]

    class OptionsChanged(Message):
        """The shared :class:`PlotOptions` of a pane changed: its plots need new series."""

        def __init__(self, plot: MetricPlot) -> None:
            super().__init__()
            self.plot = plot

    def __init__(
        self,
        title: str = "",
        *,
        x_label: str = "",
        empty: str = "no data yet",
        options: PlotOptions | None = None,
        more_hint: str = "",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.border_title = title
        self.x_label = x_label
        self.empty = empty
        self.options = options
        self.more_hint = more_hint
        self.series: list[Series] = []
        self.log_y = False
        self.view: tuple[float, float] | None = None  # zoomed x range; None: all of it
        self.cursor: int | None = None  # crosshair column in the plot area
        self.cursor_x: float | None = None  # the x it reads, from the last drawing
        self.frame: Frame | None = None  # of the last drawing
        self.note = ""  # the pane's part of the subtitle (e.g. what a band means)
        self._options: dict = {}
        self._cache: tuple[tuple, Text] | None = None

    def show(
        self,
        series: Sequence[Series],
        *,
        hlines: Sequence[HLine] = (),
        bands: Sequence[Band] = (),
        x_range: tuple[float, float] | None = None,
        y_range: tuple[float, float] | None = None,
        empty: str | None = None,
        x_label: str | None = None,
    ) -> None:
        self.series = list(series)
        self._options = {"hlines": list(hlines), "bands": list(bands), "x_range": x_range, "y_range": y_range}
        if empty is not None:
            self.empty = empty
        if x_label is not None:
            self.x_label = x_label
        self._changed()

    def _changed(self) -> None:
        self._cache = None
        self._update_subtitle()
        self.refresh()

    def _update_subtitle(self) -> None:
        parts = [self.note] if self.note else []
        if self.options is not None and self.options.smoothing.kind != "auto":
            parts.append(f"smoothing {self.options.smoothing.label}")
        if self.log_y:
            parts.append("log y")
        if self.view is not None:
            full = self._full_x()
            zoom = (full[1] - full[0]) / (self.view[1] - self.view[0]) if self.view[1] > self.view[0] else 1
            parts.append(f"zoom {zoom:.3g}x")
        if self.has_focus and not parts and self.cursor is None:
            shared = "  m smooth  t x" if self.options is not None else ""
            parts.append(f"←→ read  +- zoom  <> pan  L log{shared}  0 reset")
        self.border_subtitle = " · ".join(parts)

    def watch_has_focus(self, has_focus: bool) -> None:
        super().watch_has_focus(has_focus)
        self._update_subtitle()  # the key hint shows while focused

    def render(self) -> Text:
        width, height = self.content_size
        key = (width, height)
        if self._cache is None or self._cache[0] != key:
            options = dict(self._options)
            if self.view is not None:
                options["x_range"], options["y_range"] = self.view, None
            drawn = render(self.series, width, height, x_label=self.x_label, empty=self.empty, log_y=self.log_y,
                           cursor=self.cursor, more_hint=self.more_hint, **options)  # fmt: skip
            self.frame, self.cursor_x = drawn.frame, drawn.cursor_x
            self._cache = (key, drawn.text)
        return self._cache[1]

    # -- keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("smoothing", "x_axis"):
            return self.options is not None  # elsewhere the key goes on to the pane or the app
        if action == "hide_cursor":
            return self.cursor is not None or self.view is not None
        return True

    def _full_x(self) -> tuple[float, float]:
        if self._options.get("x_range"):
            return self._options["x_range"]
        return data_range(self.series, "x")

    def _shown_x(self) -> tuple[float, float]:
        return self.view or self._full_x()

    def _plot_width(self) -> int:
        return self.frame.plot_w if self.frame is not None else max(self.content_size.width - 6, 4)

    def _column_of(self, x: float) -> int:
        x0, x1 = self._shown_x()
        width = self._plot_width()
        column = round((x - x0) / (x1 - x0) * (width - 1)) if x1 > x0 else 0  # as render() reads a column
        return min(max(column, 0), width - 1)

    def action_cursor(self, step: int) -> None:
        if self.cursor is None:  # it appears at the newest point, which is what one reads first
            self.cursor = self._plot_width() - 1
        else:
            self.cursor = min(max(self.cursor + step, 0), self._plot_width() - 1)
        self._changed()

    def action_hide_cursor(self) -> None:
        self.cursor = None
        self._changed()

    def action_zoom(self, factor: float) -> None:
        full = self._full_x()
        x0, x1 = self._shown_x()
        centre = self.cursor_x if self.cursor is not None and self.cursor_x is not None else (x0 + x1) / 2
        span = (x1 - x0) * factor
        if span >= full[1] - full[0] or full[1] <= full[0]:
            self.view = None
        else:
            span = max(span, (full[1] - full[0]) * ZOOM_MIN_SPAN)
            self.view = _clamp(centre - span / 2, span, full)
        if self.cursor is not None:
            self.cursor = self._column_of(centre)
        self._changed()

    def action_pan(self, direction: int) -> None:
        if self.view is None:
            return
        x0, x1 = self.view
        self.view = _clamp(x0 + direction * (x1 - x0) / 4, x1 - x0, self._full_x())
        self._changed()

    def action_reset_view(self) -> None:
        self.view, self.cursor = None, None
        self._changed()

    def action_log_y(self) -> None:
        self.log_y = not self.log_y
        self._changed()

    def action_smoothing(self) -> None:
        if self.options is not None:
            self.options.smoothing = next_smoothing(self.options.smoothing)
            self.app.notify(f"smoothing: {self.options.smoothing.label}", timeout=2)
            self.post_message(self.OptionsChanged(self))

    def action_x_axis(self) -> None:
        if self.options is not None:
            self.options.x_axis = next_x_axis(self.options.x_axis)
            self.post_message(self.OptionsChanged(self))

    def reset_x(self) -> None:
        """Forget the zoom and the crosshair (the x axis now means something else)."""
        self.view, self.cursor = None, None
        self._changed()

    def readout(self) -> str:
        """What the crosshair reads, as plain text ("" without one): the legend line(s) of the drawing."""
        if self.cursor is None or self._cache is None or self.frame is None:
            return ""
        lines = self._cache[1].plain.split("\n")[: self.frame.legend_lines]
        return " ".join(line.strip() for line in lines)


def _clamp(start: float, span: float, full: tuple[float, float]) -> tuple[float, float]:
    start = min(max(start, full[0]), full[1] - span)
    return start, start + span
