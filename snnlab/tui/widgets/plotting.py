"""The one plotting interface of the lab: line plots drawn with braille dots into a rich ``Text``.

Every chart in the TUI (metrics, membrane traces, surrogate curves) goes through :func:`render_plot`, so
the look is uniform and a different backend would replace one function. It is pure (no widget, no
global figure like plotext), cheap enough to call a few times a second, and deterministic for snapshots.
A braille character holds 2x4 dots, so a plot of W x H cells has 2W x 4H points of resolution.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.style import Style
from rich.text import Text

from snnlab.tui import palette

# Bit of each dot inside a braille cell, indexed [x][y] with y going down (Unicode's dot numbering).
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
_BRAILLE = 0x2800


@dataclass
class Series:
    """One curve. ``kind``: ``line`` joins points, ``points`` marks each with ``marker``, ``step`` holds
    each value until the next x (a Heaviside step or spikes over time)."""

    xs: Sequence[float]
    ys: Sequence[float]
    color: str = palette.ACCENT
    label: str = ""
    kind: str = "line"
    marker: str = "●"


@dataclass
class HLine:
    """A dashed horizontal reference line (a firing threshold, zero)."""

    y: float
    color: str = palette.REFERENCE
    label: str = ""


@dataclass
class _Canvas:
    width: int
    height: int
    dots: list[list[int]] = field(init=False)
    colors: list[list[str | None]] = field(init=False)
    marks: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dots = [[0] * self.width for _ in range(self.height)]
        self.colors = [[None] * self.width for _ in range(self.height)]

    def dot(self, px: int, py: int, color: str) -> None:
        if 0 <= px < 2 * self.width and 0 <= py < 4 * self.height:
            row, col = py // 4, px // 2
            self.dots[row][col] |= _DOTS[px % 2][py % 4]
            self.colors[row][col] = color

    def line(self, x0: int, y0: int, x1: int, y1: int, color: str) -> None:
        # Bresenham: every dot between two samples, so steep segments do not break into dashes.
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            self.dot(x0, y0, color)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def mark(self, px: int, py: int, char: str, color: str) -> None:
        if 0 <= px < 2 * self.width and 0 <= py < 4 * self.height:
            self.marks[(py // 4, px // 2)] = (char, color)


def fmt_number(value: float) -> str:
    """Short tick label: 3 significant digits, no trailing zeros (0.5, 12.3, 1.2k, 3e-04)."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    magnitude = abs(value)
    if magnitude >= 10_000:
        return f"{value / 1000:.0f}k"
    if magnitude >= 1000:
        return f"{value / 1000:.1f}k"
    if magnitude < 0.01:
        return f"{value:.0e}"
    return f"{value:.3g}"


def data_range(series: Sequence[Series], axis: str, extra: Sequence[float] = ()) -> tuple[float, float]:
    """Min and max of the finite values of all series on ``axis`` ("x" or "y"), padded when flat."""
    values = [v for s in series for v in (s.xs if axis == "x" else s.ys) if v is not None and math.isfinite(v)]
    values.extend(extra)
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 0.5
        # Padding the largest floats must not push the range to infinity.
        return max(low - pad, -sys.float_info.max), min(high + pad, sys.float_info.max)
    return low, high


def render_plot(
    series: Sequence[Series],
    width: int,
    height: int,
    *,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    hlines: Sequence[HLine] = (),
    x_label: str = "",
    empty: str = "no data yet",
) -> Text:
    """Draw ``series`` into ``height`` lines of ``width`` cells: y ticks on the left, a legend on top when
    any series has a label, x ticks at the bottom. Non-finite values break a line instead of failing."""
    width, height = max(width, 8), max(height, 3)
    has_data = any(len(s.xs) for s in series)
    if not has_data:
        lines = [" " * width] * height
        lines[height // 2] = empty.center(width)[:width]
        return Text("\n".join(lines), style="dim", no_wrap=True, end="")
    legend = [s for s in series if s.label] + [h for h in hlines if h.label]
    x0, x1 = x_range or data_range(series, "x")
    y0, y1 = y_range or data_range(series, "y", [h.y for h in hlines])
    tick_labels = [fmt_number(y1), fmt_number(y0 / 2 + y1 / 2), fmt_number(y0)]
    gutter = max(len(t) for t in tick_labels) + 1
    plot_w = max(width - gutter, 4)
    plot_h = max(height - 1 - (1 if legend else 0), 1)
    canvas = _Canvas(plot_w, plot_h)
    # Halves throughout: the distance between two finite floats can overflow (1e308 and -1e308), half of
    # it cannot, and a NaN cell position would end the drawing.
    span_x = (x1 / 2 - x0 / 2) or 1.0
    span_y = (y1 / 2 - y0 / 2) or 1.0

    def px(x: float) -> int:
        return round((x / 2 - x0 / 2) / span_x * (2 * plot_w - 1))

    def py(y: float) -> int:
        return round((y1 / 2 - y / 2) / span_y * (4 * plot_h - 1))

    for h in hlines:
        if y0 <= h.y <= y1:
            row = py(h.y)
            for x in range(0, 2 * plot_w, 3):  # a dotted line: two dots on, one off
                if x % 3 != 2:
                    canvas.dot(x, row, h.color)
    for s in series:
        _draw(canvas, s, px, py)
    out = Text(no_wrap=True, end="")
    if legend:
        out.append(" " * gutter)
        for item in legend:
            color = item.color
            out.append("── " if isinstance(item, HLine) or getattr(item, "kind", "") != "points" else "● ", color)
            out.append(item.label + "  ", "default")
        out.truncate(width, pad=True)
        out.append("\n")
    for row in range(plot_h):
        label = tick_labels[0] if row == 0 else tick_labels[2] if row == plot_h - 1 else ""
        if plot_h >= 5 and row == plot_h // 2:
            label = tick_labels[1]
        out.append(label.rjust(gutter - 1) + "│", palette.AXIS)
        for col in range(plot_w):
            mark = canvas.marks.get((row, col))
            if mark:
                out.append(mark[0], Style(color=mark[1], bold=True))
            elif canvas.dots[row][col]:
                out.append(chr(_BRAILLE + canvas.dots[row][col]), canvas.colors[row][col] or "default")
            else:
                out.append(" ")
        out.append("\n")
    out.append(_x_axis(x0, x1, gutter, plot_w, x_label), palette.AXIS)
    return out


def _draw(canvas: _Canvas, s: Series, px, py) -> None:
    previous: tuple[int, int] | None = None
    points = list(zip(s.xs, s.ys, strict=False))
    for i, (x, y) in enumerate(points):
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            previous = None
            continue
        point = (px(x), py(y))
        if s.kind == "points":
            canvas.mark(*point, s.marker, s.color)
        elif s.kind == "step":
            nxt = points[i + 1][0] if i + 1 < len(points) else None
            end = px(nxt) if nxt is not None and math.isfinite(nxt) else point[0]
            if previous is not None:
                canvas.line(point[0], previous[1], point[0], point[1], s.color)
            canvas.line(point[0], point[1], end, point[1], s.color)
            previous = (end, point[1])
        else:
            if previous is not None:
                canvas.line(*previous, *point, s.color)
            else:
                canvas.dot(*point, s.color)
            previous = point


def _x_axis(x0: float, x1: float, gutter: int, plot_w: int, x_label: str) -> str:
    left, right = fmt_number(x0), fmt_number(x1)
    middle = fmt_number(x0 / 2 + x1 / 2) if plot_w >= 24 else ""
    line = [" "] * plot_w
    mid_at = plot_w // 2 - len(middle) // 2
    placed = [(0, left), (mid_at, middle), (plot_w - len(right), right)]
    # The axis label goes between the middle and the right tick, only where it fits without touching them.
    label_at = plot_w - len(right) - len(x_label) - 2
    if x_label and label_at > mid_at + len(middle) + 1:
        placed.append((label_at, x_label))
    for pos, text in placed:
        for k, ch in enumerate(text):
            if 0 <= pos + k < plot_w:
                line[pos + k] = ch
    return " " * (gutter - 1) + "└" + "".join(line)


def ema(values: Sequence[float], window: int) -> list[float]:
    """Exponential moving average, bias-corrected at the start (so the first points are not pulled to 0)."""
    alpha = 2.0 / (max(window, 1) + 1)
    out: list[float] = []
    avg = weight = 0.0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        avg = (1 - alpha) * avg + alpha * v
        weight = (1 - alpha) * weight + alpha
        out.append(avg / weight)
    return out


def smoothed(values: Sequence[float]) -> list[float]:
    """A per-step training curve as the lab draws it: an EMA over about a thirtieth of its points, so the
    trend shows at any run length."""
    return ema(values, max(1, len(values) // 30))
