"""A spike raster: neurons (rows) by time steps (columns) of one layer on one sample.

Each character cell stacks two rows of neurons with the upper half block (foreground = upper row,
background = lower row), so a 16-line widget shows 32 neuron bins. With more neurons than bins,
a bin's brightness is the fraction of its neurons that fired at that step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from snnlab.tui import palette


def _color(fraction: float) -> Color:
    f = 0.0 if fraction <= 0 else 0.35 + 0.65 * min(fraction, 1.0)  # any spike is clearly visible
    cold, hot = palette.RASTER_COLD, palette.RASTER_HOT
    return Color.from_rgb(*(round(c + (h - c) * f) for c, h in zip(cold, hot, strict=True)))


def bin_raster(raster: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Average a [T, N] spike raster into [rows, cols] fractions (neurons down, time across)."""
    steps, neurons = raster.shape
    out = np.zeros((rows, cols), dtype=np.float32)
    row_edges = np.linspace(0, neurons, rows + 1).astype(int)
    col_edges = np.linspace(0, steps, cols + 1).astype(int)
    data = raster.astype(np.float32).T  # [N, T]
    for r in range(rows):
        r0, r1 = row_edges[r], max(row_edges[r + 1], row_edges[r] + 1)
        for c in range(cols):
            c0, c1 = col_edges[c], max(col_edges[c + 1], col_edges[c] + 1)
            out[r, c] = data[r0:r1, c0:c1].mean() if r0 < neurons and c0 < steps else 0.0
    return out


class RasterView(Widget):
    """``show(raster, title)`` with ``raster`` a [T, N] 0/1 array."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "raster"
        self.raster: np.ndarray | None = None

    def show(self, raster: Any | None, title: str = "raster") -> None:
        self.raster = None if raster is None else np.asarray(raster)
        self.border_title = title
        self.refresh()

    def render(self) -> Text:
        width, height = self.content_size
        if self.raster is None or self.raster.size == 0 or width < 8 or height < 2:
            return Text("no spikes recorded yet".center(max(width, 1)), style="dim")
        steps, neurons = self.raster.shape
        label_w = len(str(neurons)) + 1
        plot_h = height - 1
        # Whole cells per step when T fits, so each time step is a clean column.
        cols = min(width - label_w, steps * max(1, (width - label_w) // steps))
        grid = bin_raster(self.raster, 2 * plot_h, min(cols, steps) if cols < steps else steps)
        repeat = max(1, cols // grid.shape[1])
        out = Text(no_wrap=True, end="")
        for row in range(plot_h):
            label = "0" if row == 0 else str(neurons) if row == plot_h - 1 else ""
            out.append(label.rjust(label_w - 1) + " ", palette.AXIS)
            for c in range(grid.shape[1]):
                style = Style(color=_color(grid[2 * row, c]), bgcolor=_color(grid[2 * row + 1, c]))
                out.append("▀" * repeat, style)
            out.append("\n")
        axis = f"t=1{'':>{max(grid.shape[1] * repeat - 3 - len(str(steps)), 1)}}{steps}"
        out.append(" " * label_w + axis[: width - label_w], palette.AXIS)
        return out
