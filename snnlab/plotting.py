"""The one plotting engine of snnlab: line plots drawn with braille dots into a rich ``Text``.

Both faces draw through :func:`render`: the lab's plot widgets (metrics, membrane traces, surrogate curves,
comparisons) and the CLI's terminal plots (``snnlab run``'s summary, ``snnlab runs show``), so a curve looks
the same in both. It needs only rich (no textual, no torch), is pure (no global figure), deterministic for
snapshots and cheap enough for several plots at 4 Hz: long series are thinned to the dots they can fill
before drawing. A braille character holds 2x4 dots, so a plot of W x H cells has 2W x 4H points.

What it draws, back to front: bands (a shaded range, e.g. the spread of a sweep cell's seeds), dashed
reference lines, then the series by their ``z`` (in the order given where equal): a cell takes the colour
of the last series that put a dot in it, so the caller gives what matters most (the live run) the highest.
Legends wrap onto more lines rather than being cut; when even those are not enough, the last line says how
many entries are left out.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from rich.style import Style
from rich.text import Text

ACCENT = "cyan"  # the default curve colour (the lab's palette.ACCENT)
AXIS = "grey62"  # ticks and axes (palette.AXIS)
REFERENCE = "grey50"  # a dashed reference line (palette.REFERENCE)
CURSOR = "grey27"  # background of the crosshair's column

# Bit of each dot inside a braille cell, indexed [x][y] with y going down (Unicode's dot numbering).
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
_FULL_COLUMN = (0x01 | 0x02 | 0x04 | 0x40, 0x08 | 0x10 | 0x20 | 0x80)
_BRAILLE = 0x2800
_MAX_LEGEND_LINES = 3
_FAR = 64  # dot positions are clamped to this many plot sizes beyond the plot
_Item = tuple[str, str, str, str]  # a legend entry: swatch, label, swatch colour, label style
_CURSOR = Style(bgcolor=CURSOR)


@dataclass
class Series:
    """One curve. ``kind``: ``line`` joins points, ``points`` marks each with ``marker``, ``step`` holds
    each value until the next x (a Heaviside step or spikes over time)."""

    xs: Sequence[float]
    ys: Sequence[float]
    color: str = ACCENT
    label: str = ""
    kind: str = "line"
    marker: str = "●"
    z: int = 0  # drawing order: higher in front; equal z in the order given (the legend keeps that order)
    legend: bool = True  # False: read by the crosshair, but no legend entry of its own


@dataclass
class HLine:
    """A dashed horizontal reference line (a firing threshold, zero)."""

    y: float
    color: str = REFERENCE
    label: str = ""


@dataclass
class Band:
    """A shaded range between ``lo`` and ``hi`` along ``xs`` (drawn dim, under every line)."""

    xs: Sequence[float]
    lo: Sequence[float]
    hi: Sequence[float]
    color: str = ACCENT


class Frame(NamedTuple):
    """Where a plot's data landed: the data ranges shown and the size of the drawing area in cells."""

    x0: float
    x1: float
    y0: float  # in the drawn scale: log10 of the value when log_y
    y1: float
    gutter: int  # cells left of the plot area (y ticks and the axis)
    plot_w: int
    plot_h: int
    legend_lines: int


class Rendered(NamedTuple):
    text: Text
    frame: Frame | None  # None: nothing to draw ("no data yet")
    cursor_x: float | None  # the x the crosshair reads (a data point's x), None without one


@dataclass
class _Canvas:
    width: int
    height: int
    dots: list[list[int]] = field(init=False)
    colors: list[list[str | None]] = field(init=False)
    marks: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)
    shaded: set[tuple[int, int]] = field(default_factory=set)  # cells that hold only a band's dots

    def __post_init__(self) -> None:
        self.dots = [[0] * self.width for _ in range(self.height)]
        self.colors = [[None] * self.width for _ in range(self.height)]

    def _put(self, px: int, py: int, color: str, shade: bool = False) -> None:
        row, col = py // 4, px // 2
        if shade:
            self.shaded.add((row, col))
        elif (row, col) in self.shaded:
            # A line through a band: the cell shows the line's dots alone, so it stands out of the band.
            self.shaded.discard((row, col))
            self.dots[row][col] = 0
        self.dots[row][col] |= _DOTS[px % 2][py % 4]
        self.colors[row][col] = color

    def dot(self, px: int, py: int, color: str) -> None:
        if 0 <= px < 2 * self.width and 0 <= py < 4 * self.height:
            self._put(px, py, color)

    def column(self, px: int, top: int, bottom: int, color: str, shade: bool = False) -> None:
        """Every dot of dot-column ``px`` from dot-row ``top`` to ``bottom`` (``shade``: a band's slice)."""
        if not 0 <= px < 2 * self.width:
            return
        for py in range(max(top, 0), min(bottom, 4 * self.height - 1) + 1):
            self._put(px, py, color, shade)

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
    """Short tick label: 3 significant digits, no trailing zeros (0.5, 12.3, 1k, 1.2k, 3e-04)."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    magnitude = abs(value)
    if magnitude >= 1e7:
        return f"{value:.0e}"
    if magnitude >= 10_000:
        return f"{value / 1000:.0f}k"
    if magnitude >= 1000:
        return f"{value / 1000:.1f}".removesuffix(".0") + "k"
    if magnitude < 0.01:
        return f"{value:.0e}"
    return f"{value:.3g}"


def fmt_value(value: float) -> str:
    """A value the crosshair reads: 4 significant digits (more than a tick, as it is read, not glanced at)."""
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def _log(value: float) -> float:
    return math.log10(value) if value > 0 else math.nan


class _Scale(NamedTuple):
    """Data to dot positions: x0..x1 onto dot columns 0..2W-1, y1..y0 onto dot rows 0..4H-1."""

    x0: float
    span_x: float  # half the x range (halves: the distance between two finite floats can overflow)
    y1: float
    span_y: float
    dots_w: int
    dots_h: int

    def px(self, x: float) -> int:
        return round((x / 2 - self.x0 / 2) / self.span_x * (self.dots_w - 1))

    def py(self, y: float) -> int:
        return round((self.y1 / 2 - y / 2) / self.span_y * (self.dots_h - 1))

    def positions(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dot columns and rows of the points, and which are drawable. Positions far outside the plot are
        clamped, so a wild value costs no more than a line across the plot."""
        with np.errstate(over="ignore", invalid="ignore"):
            px = np.rint((xs / 2 - self.x0 / 2) / self.span_x * (self.dots_w - 1))
            py = np.rint((self.y1 / 2 - ys / 2) / self.span_y * (self.dots_h - 1))
        ok = np.isfinite(px) & np.isfinite(py)
        px = np.clip(np.where(ok, px, 0), -_FAR * self.dots_w, (_FAR + 1) * self.dots_w).astype(np.int64)
        py = np.clip(np.where(ok, py, 0), -_FAR * self.dots_h, (_FAR + 1) * self.dots_h).astype(np.int64)
        return px, py, ok


def data_range(
    series: Sequence[Series],
    axis: str,
    extra: Sequence[float] = (),
    *,
    within: tuple[float, float] | None = None,
    log_y: bool = False,
) -> tuple[float, float]:
    """Min and max of the finite values of all series on ``axis`` ("x" or "y"), padded when flat.

    ``within``: only points whose x lies in that range count, plus the curve where it crosses the range's
    edges (the y range of a zoomed view). ``log_y``: the range of log10(y) over the positive values."""
    parts = [np.asarray([v for v in extra if math.isfinite(v)], dtype=float)]
    for s in series:
        xs, ys = _arrays(s)
        if within is not None:
            xs, ys = _window(xs, ys, within, s.kind == "line")
        values = xs if axis == "x" else (_log10(ys) if log_y else ys)
        parts.append(values[np.isfinite(xs) & np.isfinite(values)])
    values = np.concatenate(parts)
    if not len(values):
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 0.5
        # Padding the largest floats must not push the range to infinity.
        return max(low - pad, -sys.float_info.max), min(high + pad, sys.float_info.max)
    return low, high


def _arrays(s: Series) -> tuple[np.ndarray, np.ndarray]:
    """A series' x and y as float arrays (None becomes NaN), cut to the shorter of the two."""
    n = min(len(s.xs), len(s.ys))
    return np.asarray(s.xs[:n], dtype=float), np.asarray(s.ys[:n], dtype=float)


def _log10(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)


def _window(xs: np.ndarray, ys: np.ndarray, window: tuple[float, float], joined: bool) -> tuple[np.ndarray, np.ndarray]:
    """The points of an ascending series inside ``window``; for a joined line also where it crosses the
    window's edges (interpolated), so a zoomed line runs to both edges without drawing far outside."""
    lo, hi = np.searchsorted(xs, window[0]), np.searchsorted(xs, window[1], side="right")
    inside_x, inside_y = xs[lo:hi], ys[lo:hi]
    if not joined:
        return inside_x, inside_y
    left_x, left_y, right_x, right_y = [], [], [], []
    if 0 < lo < len(xs):
        left_x, left_y = [window[0]], [float(np.interp(window[0], xs[lo - 1 : lo + 1], ys[lo - 1 : lo + 1]))]
    if 0 < hi < len(xs):
        right_x, right_y = [window[1]], [float(np.interp(window[1], xs[hi - 1 : hi + 1], ys[hi - 1 : hi + 1]))]
    return np.concatenate([left_x, inside_x, right_x]), np.concatenate([left_y, inside_y, right_y])


def nearest(xs: Sequence[float], x: float) -> int | None:
    """Index of the point of ``xs`` (ascending) closest to ``x``; None for no points."""
    if not xs:
        return None
    i = bisect_left(xs, x)
    if i == 0:
        return 0
    if i == len(xs):
        return len(xs) - 1
    return i if xs[i] - x < x - xs[i - 1] else i - 1


def render_plot(series: Sequence[Series], width: int, height: int, **options) -> Text:
    """:func:`render`, the text only."""
    return render(series, width, height, **options).text


def render(
    series: Sequence[Series],
    width: int,
    height: int,
    *,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    hlines: Sequence[HLine] = (),
    bands: Sequence[Band] = (),
    x_label: str = "",
    empty: str = "no data yet",
    log_y: bool = False,
    cursor: int | None = None,
    more_hint: str = "",
) -> Rendered:
    """Draw ``series`` into ``height`` lines of ``width`` cells: y ticks on the left, a legend on top when
    any series has a label, x ticks at the bottom. Non-finite values break a line instead of failing.

    ``x_range`` zooms (the y range then fits the points in view). ``log_y`` draws log10(y); values <= 0
    are left out. ``cursor`` is a column of the plot area: a crosshair is drawn there and the legend
    reads, for each labelled series, its data point nearest to that column's x (the x shown first).
    ``more_hint`` ends the legend when entries had to be left out ("see the key below")."""
    width, height = max(width, 8), max(height, 3)
    if not any(len(s.xs) for s in series):
        lines = [" " * width] * height
        lines[height // 2] = empty.center(width)[:width]
        return Rendered(Text("\n".join(lines), style="dim", no_wrap=True, end=""), None, None)
    x0, x1 = x_range or data_range(series, "x")
    if y_range is not None:
        y0, y1 = (_log(y_range[0]), _log(y_range[1])) if log_y else y_range
        if not (math.isfinite(y0) and math.isfinite(y1)):
            y0, y1 = data_range(series, "y", log_y=True)
    else:
        within = x_range if x_range is not None else None
        extra = [_log(h.y) if log_y else h.y for h in hlines]
        for b in bands:
            for x, lo, hi in zip(b.xs, b.lo, b.hi, strict=False):
                if within is None or within[0] <= x <= within[1]:
                    extra += [_log(lo), _log(hi)] if log_y else [lo, hi]
        y0, y1 = data_range(series, "y", extra, within=within, log_y=log_y)
    shown = (lambda v: 10**v) if log_y else (lambda v: v)
    tick_labels = [fmt_number(shown(y1)), fmt_number(shown(y0 / 2 + y1 / 2)), fmt_number(shown(y0))]
    gutter = max(len(t) for t in tick_labels) + 1
    plot_w = max(width - gutter, 4)

    # Halves throughout: the distance between two finite floats can overflow (1e308 and -1e308), half of
    # it cannot, and a NaN cell position would end the drawing.
    span_x = (x1 / 2 - x0 / 2) or 1.0
    cursor_x = None
    max_lines = max(1, min(_MAX_LEGEND_LINES, height - 4))
    if cursor is None:
        legend = _pack_legend(_legend_items(series, hlines), width - gutter, max_lines, more_hint)
    else:
        cursor = min(max(cursor, 0), plot_w - 1)
        # The first column reads x0 and the last x1, so the crosshair reaches both ends of the data.
        at = x0 + cursor / max(plot_w - 1, 1) * 2 * span_x
        cursor_x, full, compact = _readout(series, at, 2 * span_x / plot_w, x_label, log_y)
        fits = not _pack(full, width - gutter, max_lines)[1]
        legend = _pack_legend(full if fits else compact, width - gutter, max_lines, more_hint)
    plot_h = max(height - 1 - len(legend), 1)
    canvas = _Canvas(plot_w, plot_h)
    scale = _Scale(x0, span_x, y1, (y1 / 2 - y0 / 2) or 1.0, 2 * plot_w, 4 * plot_h)
    for b in bands:
        _draw_band(canvas, b, scale, log_y)
    for h in hlines:
        hy = _log(h.y) if log_y else h.y
        if math.isfinite(hy) and y0 <= hy <= y1:
            row = scale.py(hy)
            for x in range(0, 2 * plot_w, 3):  # a dotted line: two dots on, one off
                if x % 3 != 2:
                    canvas.dot(x, row, h.color)
    for s in sorted(series, key=lambda s: s.z):  # stable: equal z keep their order
        _draw(canvas, s, scale, log_y, (x0, x1) if x_range else None)

    out = Text(no_wrap=True, end="")
    for line in legend:
        out.append(" " * gutter)
        out.append_text(line)
        out.append(" " * max(width - gutter - len(line), 0) + "\n")
    for row in range(plot_h):
        label = tick_labels[0] if row == 0 else tick_labels[2] if row == plot_h - 1 else ""
        if plot_h >= 5 and row == plot_h // 2:
            label = tick_labels[1]
        out.append(label.rjust(gutter - 1) + "│", AXIS)
        _append_row(out, canvas, row, cursor)
        out.append("\n")
    out.append(_x_axis(x0, x1, gutter, plot_w, x_label), AXIS)
    frame = Frame(x0, x1, y0, y1, gutter, plot_w, plot_h, len(legend))
    return Rendered(out, frame, cursor_x)


def _cell(canvas: _Canvas, row: int, col: int) -> tuple[str, Style | None]:
    mark = canvas.marks.get((row, col))
    if mark:
        return mark[0], Style(color=mark[1], bold=True)
    dots = canvas.dots[row][col]
    if dots:
        return chr(_BRAILLE + dots), Style.parse(canvas.colors[row][col] or "default")
    return " ", None


def _append_row(out: Text, canvas: _Canvas, row: int, cursor: int | None) -> None:
    """One row of the plot area, neighbouring cells of one style appended together (far fewer spans)."""
    run: list[str] = []
    run_style: Style | None = None
    for col in range(canvas.width):
        char, style = _cell(canvas, row, col)
        if col == cursor:
            style = style + _CURSOR if style else _CURSOR
        if style != run_style and run:
            out.append("".join(run), run_style)
            run = []
        run.append(char)
        run_style = style
    if run:
        out.append("".join(run), run_style)


def _legend_items(series: Sequence[Series], hlines: Sequence[HLine]) -> list[_Item]:
    """(swatch, label, swatch colour, label style) per labelled series and reference line."""
    items = []
    for s in series:
        if s.label and s.legend:
            items.append(("● " if s.kind == "points" else "── ", s.label, s.color, "default"))
    for h in hlines:
        if h.label:
            items.append(("-- ", h.label, h.color, "default"))
    return items


def _readout(
    series: Sequence[Series], x: float, cell: float, x_label: str, log_y: bool
) -> tuple[float, list[_Item], list[_Item]]:
    """The crosshair's legend: its x, then each labelled series' data point nearest to ``x``; and the same
    without labels (each value in its series' colour), for where the labelled one does not fit.

    The x shown is that of the nearest point of the frontmost labelled line (highest z, then last) that
    has one within a cell of the crosshair, so the values read are data, not screen positions. A series
    is read only where it has a point within a cell ("-" elsewhere: before it starts, after it ends, or
    between the evaluations of a series of separate points)."""
    at = x
    for s in sorted((s for s in series if s.label and s.kind != "points" and len(s.xs)), key=lambda s: -s.z):
        i = nearest(s.xs, x)
        if i is not None and abs(s.xs[i] - x) <= cell:
            at = float(s.xs[i])
            break
    head = (f"{x_label or 'x'} ", fmt_value(at), AXIS, "bold")
    full, compact = [head], [head]
    for s in series:
        if not s.label:
            continue
        i = nearest(s.xs, at)
        near = i is not None and abs(s.xs[i] - at) <= cell
        value = fmt_value(float(s.ys[i])) if near and i is not None else "-"
        swatch = "● " if s.kind == "points" else "── "
        full.append((swatch, f"{s.label} {value}", s.color, "default"))
        compact.append(("", value, s.color, s.color))
    return at, full, compact


def _pack_legend(items: list[_Item], width: int, max_lines: int, more_hint: str) -> list[Text]:
    """Legend entries packed onto at most ``max_lines`` lines of ``width`` cells, never cut silently:
    what does not fit is counted at the end of the last line ("+2 more")."""
    lines, left = _pack(items, width, max_lines)
    return _finish(lines, left, max(width, 8), more_hint) if lines else []


def _pack(items: list[_Item], width: int, max_lines: int) -> tuple[list[list[_Item]], list[_Item]]:
    if not items or max_lines <= 0:
        return [], []
    width = max(width, 8)
    lines: list[list[_Item]] = [[]]
    used = 0
    for k, item in enumerate(items):
        size = len(item[0]) + len(item[1])
        gap = 2 if lines[-1] else 0
        if lines[-1] and used + gap + size > width:
            if len(lines) == max_lines:
                return lines, items[k:]
            lines.append([])
            used, gap = 0, 0
        lines[-1].append(item)
        used += gap + size
    return lines, []


def _finish(lines: list[list[_Item]], left: list[_Item], width: int, more_hint: str) -> list[Text]:
    out = []
    for n, entries in enumerate(lines):
        last = n == len(lines) - 1
        while True:
            text = Text(no_wrap=True, end="")
            for k, (swatch, label, color, style) in enumerate(entries):
                if k:
                    text.append("  ")
                text.append(swatch, color)
                text.append(label, style)
            tail = ""
            if last and left:
                tails = [f"  +{len(left)} more: {more_hint}"] if more_hint else []
                tails.append(f"  +{len(left)} more")
                tail = next((t for t in tails if len(text) + len(t) <= width), "")
                if not tail and len(entries) <= 1:
                    tail = f"  +{len(left)}"  # the shortest count, next to an entry that fills the line
            if (not left or not last or tail) and len(text) + len(tail) <= width or len(entries) <= 1:
                break
            left = [entries.pop(), *left]  # make room for the count on the last line
        if len(text) + len(tail) > width:  # one entry longer than a line: cut it visibly
            text.truncate(max(width - len(tail) - 1, 1))
            text.append("…")
        text.append(tail, AXIS)
        out.append(text)
    return out


def _draw(canvas: _Canvas, s: Series, scale: _Scale, log_y: bool, window: tuple[float, float] | None) -> None:
    xs, ys = _arrays(s)
    if window is not None:
        xs, ys = _window(xs, ys, window, s.kind == "line")
    px, py, ok = scale.positions(xs, _log10(ys) if log_y else ys)
    if s.kind == "points":
        for k in np.flatnonzero(ok).tolist():
            canvas.mark(int(px[k]), int(py[k]), s.marker, s.color)
    elif s.kind == "step":
        previous: tuple[int, int] | None = None
        for i in range(len(px)):
            if not ok[i]:
                previous = None
                continue
            x, y = int(px[i]), int(py[i])
            end = int(px[i + 1]) if i + 1 < len(px) and ok[i + 1] else x
            if previous is not None:
                canvas.line(x, previous[1], x, y, s.color)
            canvas.line(x, y, end, y, s.color)
            previous = (end, y)
    else:
        _draw_line(canvas, px, py, ok, s.color)


def _draw_line(canvas: _Canvas, px: np.ndarray, py: np.ndarray, ok: np.ndarray, color: str) -> None:
    """Join consecutive drawable points. Points that fall in one dot column are drawn as that column's
    span from their lowest to their highest, which is what joining them draws: a 2000-point curve in a
    50-cell plot costs about 100 short lines, not 2000."""
    index = np.flatnonzero(ok)
    if not len(index):
        return
    cols, rows = px[index], py[index]
    after_gap = np.concatenate(([True], np.diff(index) != 1))
    starts = np.flatnonzero(after_gap | np.concatenate(([True], np.diff(cols) != 0)))
    ends = np.append(starts[1:], len(rows)) - 1
    low, high = np.minimum.reduceat(rows, starts), np.maximum.reduceat(rows, starts)
    for g, start in enumerate(starts.tolist()):
        col = int(cols[start])
        canvas.column(col, int(low[g]), int(high[g]), color)
        if g and not after_gap[start]:
            previous = int(ends[g - 1])
            canvas.line(int(cols[previous]), int(rows[previous]), col, int(rows[start]), color)


def _draw_band(canvas: _Canvas, b: Band, scale: _Scale, log_y: bool) -> None:
    color = f"dim {b.color}"
    n = min(len(b.xs), len(b.lo), len(b.hi))
    xs = np.asarray(b.xs[:n], dtype=float)
    lo, hi = np.asarray(b.lo[:n], dtype=float), np.asarray(b.hi[:n], dtype=float)
    if log_y:
        lo, hi = _log10(lo), _log10(hi)
    px, top, ok_top = scale.positions(xs, hi)
    _, bottom, ok_bottom = scale.positions(xs, lo)
    keep = np.flatnonzero(ok_top & ok_bottom)
    rows = [(int(px[i]), int(top[i]), int(bottom[i])) for i in keep]
    for (xa, ta, ba), (xb, tb, bb) in zip(rows, rows[1:], strict=False):
        for x in range(max(xa, 0), min(xb, canvas.width * 2 - 1) + 1):
            f = (x - xa) / (xb - xa) if xb != xa else 0.0
            canvas.column(x, round(ta + f * (tb - ta)), round(ba + f * (bb - ba)), color, shade=True)
    if len(rows) == 1:
        canvas.column(*rows[0], color, shade=True)


def _x_axis(x0: float, x1: float, gutter: int, plot_w: int, x_label: str) -> str:
    left, right = fmt_number(x0), fmt_number(x1)
    middle = fmt_number(x0 / 2 + x1 / 2) if plot_w >= 24 else ""
    line = [" "] * plot_w
    mid_at = plot_w // 2 - len(middle) // 2
    placed = [(0, left), (mid_at, middle), (plot_w - len(right), right)]
    # The axis label goes between the middle and the right tick where it fits without touching them; on a
    # narrow plot it takes the middle tick's place (what the axis is matters more than one more number).
    label_at = plot_w - len(right) - len(x_label) - 2
    if x_label and label_at > mid_at + len(middle) + 1:
        placed.append((label_at, x_label))
    elif x_label and label_at > len(left) + 1:
        placed = [(0, left), (plot_w - len(right), right), (label_at, x_label)]
    for pos, text in placed:
        for k, ch in enumerate(text):
            if 0 <= pos + k < plot_w:
                line[pos + k] = ch
    return " " * (gutter - 1) + "└" + "".join(line)
