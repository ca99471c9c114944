"""A spike raster: one row per neuron, time steps across, for one layer on one sample.

Every neuron keeps its own row (a layer larger than the widget scrolls), so a silent or saturated neuron is
visible as such instead of being averaged into a bin. When T is wider than the widget, a column holds
several steps and its colour is the fraction of them in which the neuron fired. At the right of each row:
the neuron's firing rate on this sample and its change since the previous evaluation.

Rows can be ordered by neuron index, by rate, or by change in rate (``o``), so the neurons that learn, or
died, come to the top. A cursor row (up/down, page up/down) names one neuron; ``t`` asks for its
membrane to be recorded by the next run (:class:`RasterView.TraceRequested`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from snnlab.tui import palette

ORDERS = ("index", "rate", "change")
RATE_WIDTH = 13  # " 0.42 +0.10" and a margin


def _color(fraction: float) -> Color:
    f = 0.0 if fraction <= 0 else 0.35 + 0.65 * min(fraction, 1.0)  # any spike is clearly visible
    cold, hot = palette.RASTER_COLD, palette.RASTER_HOT
    return Color.from_rgb(*(round(c + (h - c) * f) for c, h in zip(cold, hot, strict=True)))


def bin_steps(raster: np.ndarray, cols: int) -> np.ndarray:
    """A [T, N] spike raster as [N, cols] firing fractions: each column averages a run of time steps."""
    steps = raster.shape[0]
    data = raster.astype(np.float32).T  # [N, T]
    if cols >= steps:
        return data
    edges = np.linspace(0, steps, cols + 1).astype(int)
    return np.stack([data[:, a:b].mean(axis=1) for a, b in zip(edges[:-1], edges[1:], strict=True)], axis=1)


def row_order(rates: np.ndarray, change: np.ndarray | None, order: str) -> np.ndarray:
    """Row positions of the neurons: by index, by rate (highest first), or by |change| (largest first).
    Ties keep index order, so the order is stable from one evaluation to the next."""
    if order == "rate":
        return np.argsort(-rates, kind="stable")
    if order == "change" and change is not None:
        return np.argsort(-np.abs(change), kind="stable")
    return np.arange(len(rates))


class RasterView(ScrollView, can_focus=True):
    """``show(raster, ...)`` with ``raster`` a [T, N] 0/1 array (N neurons, their indices in ``neurons``)."""

    BINDINGS = [
        Binding("o", "order", "Order rows", id="inside.raster-order"),
        Binding("t", "trace", "Trace neuron", id="inside.trace-neuron"),
        Binding("up", "cursor(-1)", "Row up", id="inside.raster-up", show=False),
        Binding("down", "cursor(1)", "Row down", id="inside.raster-down", show=False),
        Binding("pageup", "cursor(-10)", "Ten rows up", id="inside.raster-page-up", show=False),
        Binding("pagedown", "cursor(10)", "Ten rows down", id="inside.raster-page-down", show=False),
    ]

    order: reactive[str] = reactive("index")
    cursor: reactive[int] = reactive(0)
    """Row of the cursor (a position in the current order, not a neuron index)."""

    class TraceRequested(Message):
        """Record the membrane of ``neuron`` of ``layer``, from the next run on."""

        def __init__(self, layer: str, neuron: int) -> None:
            super().__init__()
            self.layer_name, self.neuron = layer, neuron

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "raster"
        self.raster: np.ndarray | None = None
        self.neurons: np.ndarray = np.zeros(0, dtype=int)
        self.rates: np.ndarray = np.zeros(0)
        self.change: np.ndarray | None = None
        self.rows: np.ndarray = np.zeros(0, dtype=int)  # row -> column of the raster
        self.layer_name = ""
        self._cells: np.ndarray | None = None  # [N, cols] fractions for the current width
        self._cells_for: tuple[int, int] | None = None

    def show(self, raster: Any | None, layer: str = "", *, neurons: Any | None = None,
             previous: Any | None = None) -> None:  # fmt: skip
        """Draw ``raster`` [T, N] of ``layer``; ``neurons`` are the layer's indices of its columns (default
        0..N-1); ``previous`` is the same neurons' raster at the previous evaluation, for the change in rate."""
        self.layer_name = layer
        self.raster = None if raster is None else np.asarray(raster)
        if self.raster is None or self.raster.ndim != 2:
            self.raster = None
            self.rows = np.zeros(0, dtype=int)
            self.virtual_size = Size(0, 0)
            self._retitle()
            self.refresh()
            return
        count = self.raster.shape[1]
        self.neurons = np.arange(count) if neurons is None else np.asarray(neurons)
        self.rates = self.raster.astype(np.float32).mean(axis=0)
        prev = None if previous is None else np.asarray(previous)
        self.change = None
        if prev is not None and prev.shape == self.raster.shape:
            self.change = self.rates - prev.astype(np.float32).mean(axis=0)
        self.rows = row_order(self.rates, self.change, self.order)
        self.cursor = min(self.cursor, max(count - 1, 0))
        self._cells_for = None
        self.virtual_size = Size(self.size.width, count)
        self._retitle()
        self.refresh()

    def _retitle(self) -> None:
        if self.raster is None:
            self.border_title = "raster"
            return
        count = self.raster.shape[1]
        silent = int((self.rates == 0).sum())
        self.border_title = f"{self.layer_name}: {count} · {silent} silent · by {self.order}"
        self.border_subtitle = self.describe_cursor()

    # -- keys

    def watch_order(self) -> None:
        if self.raster is not None:
            self.rows = row_order(self.rates, self.change, self.order)
            self._retitle()
            self.refresh()

    def watch_cursor(self, cursor: int) -> None:
        top, height = self.scroll_offset.y, self.scrollable_content_region.height
        if cursor < top:
            self.scroll_to(y=cursor, animate=False)
        elif cursor >= top + height:
            self.scroll_to(y=cursor - height + 1, animate=False)
        self.border_subtitle = self.describe_cursor()
        self.refresh()

    def action_order(self) -> None:
        self.order = ORDERS[(ORDERS.index(self.order) + 1) % len(ORDERS)]
        if self.order == "change" and self.change is None:
            self.notify("no earlier evaluation to compare with: ordered as by index", markup=False)

    def action_cursor(self, delta: int) -> None:
        if len(self.rows):
            self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))

    def action_trace(self) -> None:
        neuron = self.neuron_at_cursor()
        if neuron is not None:
            self.post_message(self.TraceRequested(self.layer_name, neuron))

    def neuron_at_cursor(self) -> int | None:
        """The layer's index of the neuron on the cursor row."""
        if not len(self.rows):
            return None
        return int(self.neurons[self.rows[self.cursor]])

    def describe_cursor(self) -> str:
        """``neuron 17: rate 0.32 (+0.08)`` for the cursor row."""
        if not len(self.rows):
            return ""
        column = self.rows[self.cursor]
        text = f"neuron {int(self.neurons[column])}: rate {self.rates[column]:.2f}"
        if self.change is not None:
            text += f" ({self.change[column]:+.2f})"
        return text

    # -- drawing

    def _grid(self, cols: int) -> np.ndarray:
        assert self.raster is not None
        key = (cols, id(self.raster))
        if self._cells is None or self._cells_for != key:
            self._cells, self._cells_for = bin_steps(self.raster, cols), key
        return self._cells

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if self.raster is None or self.raster.size == 0:
            text = "no spikes recorded yet" if y == 0 else ""
            return Strip([Segment(text.center(width)[:width], Style.parse("dim"))])
        row = y + self.scroll_offset.y
        if row >= len(self.rows):
            return Strip.blank(width)
        steps, count = self.raster.shape
        label_w = len(str(int(self.neurons.max()))) + 1
        cols = max(1, width - label_w - RATE_WIDTH)
        grid = self._grid(min(cols, steps))
        repeat = max(1, cols // grid.shape[1]) if grid.shape[1] < cols else 1
        column = self.rows[row]
        selected = row == self.cursor and self.has_focus
        label_style = Style.parse(f"reverse {palette.ACCENT}" if selected else palette.AXIS)
        segments = [Segment(f"{int(self.neurons[column]):>{label_w - 1}} ", label_style)]
        for fraction in grid[column]:
            color = _color(float(fraction))
            segments.append(Segment("█" * repeat if fraction > 0 else "·" * repeat, Style(color=color)))
        rate = f" {self.rates[column]:.2f}"
        if self.change is not None:
            rate += f" {self.change[column]:+.2f}"
        used = label_w + grid.shape[1] * repeat
        segments.append(Segment(rate.ljust(max(width - used, 0))[: max(width - used, 0)], Style.parse(palette.AXIS)))
        return Strip(segments).crop(0, width)

    def on_resize(self) -> None:
        if self.raster is not None:
            self.virtual_size = Size(self.size.width, self.raster.shape[1])
        self._cells_for = None
