"""The plotting engine (snnlab.plotting) and what is done to curves before (snnlab.curves), without an app."""

from __future__ import annotations

import io
import math
import re
import statistics

import pytest
from rich.console import Console
from rich.text import Text

from snnlab.curves import SMOOTHINGS, Smoothing, auto_weight, ema, moving_mean, next_smoothing, seed_band, steps_to
from snnlab.plotting import Band, HLine, Series, fmt_value, render, render_plot

CONSOLE = Console(file=io.StringIO(), width=200, color_system="truecolor")


def cell(text: Text, row: int, col: int) -> tuple[str, str]:
    """(character, colour name) of one cell of a rendered plot."""
    lines = text.plain.split("\n")
    offset = sum(len(line) + 1 for line in lines[:row]) + col
    style = text.get_style_at_offset(CONSOLE, offset)
    return lines[row][col], style.color.name if style.color else ""


def dotted_cells(text: Text, frame) -> dict[tuple[int, int], str]:
    """Every cell of the plot area holding a braille dot, with its colour name."""
    out = {}
    for row in range(frame.plot_h):
        for col in range(frame.plot_w):
            char, color = cell(text, frame.legend_lines + row, frame.gutter + col)
            if "\u2801" <= char <= "\u28ff":
                out[(row, col)] = color
    return out


# -------------------------------------------------------------------------------------- legends


LABELS = ["this run train", "this run test", "tiny-lr_0.001-tau_2.0 train", "tiny-lr_0.003 train", "#3", "th"]


@pytest.mark.parametrize("width", range(12, 90, 3))
def test_a_legend_wraps_and_never_drops_an_entry_silently(width):
    series = [Series([0, 1], [k, k + 1], f"color({k + 1})", label) for k, label in enumerate(LABELS[:-1])]
    text = render_plot(series, width, 16, hlines=[HLine(0.5, "red", LABELS[-1])], more_hint="see the key")
    lines = text.plain.split("\n")
    assert len(lines) == 16 and all(len(line) == width for line in lines)
    legend = "\n".join(line for line in lines[:3] if "│" not in line)
    whole = [label for label in LABELS if re.search(rf"(── |● |-- ){re.escape(label)}(  |\s*$)", legend, re.M)]
    cut = legend.count("…")  # an entry longer than a whole line is cut where one sees it
    more = re.search(r"\+(\d+)( more)?", legend)
    left = int(more.group(1)) if more else 0
    assert len(whole) + cut + left == len(LABELS), legend
    if width >= 60:
        assert left == 0 and cut == 0  # three lines hold them all


def test_a_wide_plot_keeps_its_legend_on_one_line_and_a_narrow_one_wraps():
    series = [Series([0, 1], [0, 1], "cyan", "train"), Series([0, 1], [1, 0], "orange1", "#1")]
    wide = render(series, 60, 10)
    narrow = render(series, 19, 10, hlines=[HLine(0.5, "red", "threshold 1")])
    assert wide.frame.legend_lines == 1 and wide.frame.plot_h == 8
    assert narrow.frame.legend_lines == 2  # "── train  ── #1" then "-- threshold 1", nothing cut
    assert "threshold 1" in narrow.text.plain and "…" not in narrow.text.plain


# -------------------------------------------------------------------------------------- z-order


def test_the_series_with_the_highest_z_owns_a_shared_cell_whatever_the_order():
    live = Series([0, 10], [0, 10], "cyan", "live", z=1)
    overlay = Series([0, 10], [0, 10], "orange1", "#1")  # the very same line: every cell is shared
    for order in ([live, overlay], [overlay, live]):
        drawn = render(order, 30, 10)
        colors = set(dotted_cells(drawn.text, drawn.frame).values())
        assert colors == {"cyan"}
    # Equal z: the one given last is drawn last.
    drawn = render([Series([0, 10], [0, 10], "cyan"), Series([0, 10], [0, 10], "orange1")], 30, 10)
    assert set(dotted_cells(drawn.text, drawn.frame).values()) == {"orange1"}


def test_a_band_lies_under_the_lines_and_is_drawn_dim():
    band = Band([0, 10], [0, 0], [10, 10], "green")  # fills the whole plot
    drawn = render([Series([0, 10], [5, 5], "cyan", "mean")], 30, 10, bands=[band])
    cells = dotted_cells(drawn.text, drawn.frame)
    assert len(cells) == drawn.frame.plot_w * drawn.frame.plot_h
    middle = drawn.frame.plot_h // 2
    row_colors = {c for (r, _), c in cells.items() if r == middle}
    assert row_colors == {"cyan"}  # the mean's row: the line's colour over the band
    # ... and only the line's dots there, so it stands out of the band's full cells.
    line_row = drawn.text.plain.split("\n")[drawn.frame.legend_lines + middle][drawn.frame.gutter :]
    full = chr(0x28FF)
    assert full not in line_row and all(c != full for c in line_row)
    above = drawn.text.plain.split("\n")[drawn.frame.legend_lines + middle - 1][drawn.frame.gutter :]
    assert set(above) == {full}
    offset = sum(len(line) + 1 for line in drawn.text.plain.split("\n")[: drawn.frame.legend_lines])
    style = drawn.text.get_style_at_offset(CONSOLE, offset + drawn.frame.gutter)
    assert style.dim and style.color.name == "green"


# -------------------------------------------------------------------------------------- log y, zoom


def test_log_y_draws_decades_evenly_and_leaves_out_values_that_have_no_log():
    xs = [0, 1, 2, 3, 4]
    ys = [1.0, 10.0, 100.0, 1000.0, 0.0]  # the last one has no logarithm: left out, not an error
    drawn = render([Series(xs, ys, "cyan")], 40, 14, log_y=True)
    lines = drawn.text.plain.split("\n")
    assert lines[0].startswith("  1k│") and lines[-2].lstrip().startswith("1│")
    assert drawn.frame.y0 == 0 and drawn.frame.y1 == 3  # log10 of 1 and 1000
    middle = lines[drawn.frame.plot_h // 2]
    assert middle.split("│")[0].strip() == "31.6"  # 10 ** 1.5: the middle of the axis is a geometric mean
    # Each decade takes the same height: points at 1, 10, 100, 1000 land on evenly spaced rows.
    marked = render([Series(xs, ys, "cyan", kind="points")], 40, 14, log_y=True)
    rows = [r for r, line in enumerate(marked.text.plain.split("\n")) if "●" in line]
    assert len(rows) == 4 and rows[0] == 0 and rows[-1] == marked.frame.plot_h - 1
    assert max(rows[1] - rows[0], rows[2] - rows[1], rows[3] - rows[2]) - min(rows[1] - rows[0], rows[2] - rows[1]) <= 1
    linear = render([Series(xs, ys, "cyan")], 40, 14)
    assert linear.frame.y1 == 1000 and linear.frame.y0 == 0


def test_a_zoomed_x_range_fits_y_to_the_points_in_view_and_draws_to_its_edges():
    xs = list(range(100))
    ys = [1000.0 if x < 50 else float(x) for x in xs]  # huge values left of the view
    drawn = render([Series(xs, ys, "cyan")], 50, 12, x_range=(60, 80))
    assert (drawn.frame.x0, drawn.frame.x1) == (60, 80)
    assert drawn.frame.y0 == pytest.approx(60) and drawn.frame.y1 == pytest.approx(80)
    cells = dotted_cells(drawn.text, drawn.frame)
    assert {c for _, c in cells} >= {0, drawn.frame.plot_w - 1}  # the line runs from edge to edge
    # Between two data points, a deep zoom shows the straight line joining them, interpolated.
    deep = render([Series([0, 10], [0, 10], "cyan")], 50, 12, x_range=(4, 6))
    assert deep.frame.y0 == pytest.approx(4) and deep.frame.y1 == pytest.approx(6)


# -------------------------------------------------------------------------------------- crosshair


def test_the_crosshair_reads_the_data_points_under_it():
    xs = [0, 10, 20, 30, 40]
    train = Series(xs, [2.0, 1.5, 1.25, 1.125, 1.0625], "cyan", "train", z=1)
    test = Series([20, 40], [1.3, 1.1], "magenta", "test", kind="points")
    other = Series([0, 10, 20], [3.0, 2.0, 1.0], "orange1", "#1")
    drawn = render([train, test, other], 120, 12, x_label="step", cursor=0)
    legend = drawn.text.plain.split("\n")[0]
    assert drawn.cursor_x == 0
    assert "step 0" in legend and "train 2 " in legend and "test -" in legend and "#1 3" in legend
    # The column that holds x = 20 reads the values of x = 20 exactly, test point included.
    col = round(20 / 40 * (drawn.frame.plot_w - 1))
    drawn = render([train, test, other], 120, 12, x_label="step", cursor=col)
    legend = drawn.text.plain.split("\n")[0]
    assert drawn.cursor_x == 20
    assert "step 20" in legend and "train 1.25" in legend and "test 1.3" in legend and "#1 1" in legend
    # Past the end of the overlay, it has no value there.
    drawn = render([train, test, other], 120, 12, x_label="step", cursor=drawn.frame.plot_w - 1)
    legend = drawn.text.plain.split("\n")[0]
    assert "step 40" in legend and "#1 -" in legend and "train 1.062" in legend and "test 1.1" in legend
    # The crosshair's column is marked on every row of the plot area.
    offset = sum(len(line) + 1 for line in drawn.text.plain.split("\n")[:2]) + drawn.frame.gutter + col
    assert drawn.text.get_style_at_offset(CONSOLE, offset).bgcolor is None
    offset += drawn.frame.plot_w - 1 - col
    assert drawn.text.get_style_at_offset(CONSOLE, offset).bgcolor is not None


def test_a_narrow_crosshair_legend_drops_the_names_and_keeps_the_values():
    series = [Series([0, 1], [0.25 * k, 0.5], f"color({k + 1})", f"a long run name {k}") for k in range(4)]
    drawn = render(series, 40, 10, cursor=0, x_label="step")
    legend = " ".join(drawn.text.plain.split("\n")[: drawn.frame.legend_lines])
    assert "a long run name" not in legend and "step 0" in legend
    assert [fmt_value(0.25 * k) in legend for k in range(4)] == [True] * 4


# -------------------------------------------------------------------------------------- smoothing


def test_ema_matches_a_hand_computation():
    # weight 0.5: averages 0.5, 1.25, 2.125 over weights 0.5, 0.75, 0.875 (the bias correction)
    assert ema([1.0, 2.0, 3.0], 0.5) == pytest.approx([1.0, 1.25 / 0.75, 2.125 / 0.875])
    assert ema([4.0, float("nan"), 4.0], 0.9) == pytest.approx([4.0, float("nan"), 4.0], nan_ok=True)
    assert ema([1.0, 2.0], 0.0) == [1.0, 2.0]


def test_moving_mean_matches_a_hand_computation():
    assert moving_mean([1.0, 2.0, 3.0, 4.0, 10.0], 2) == [1.0, 1.5, 2.5, 3.5, 7.0]
    assert moving_mean([1.0, 2.0, 3.0], 10) == [1.0, 1.5, 2.0]


def test_the_smoothings_cycle_and_say_their_amount():
    labels = []
    current = SMOOTHINGS[0]
    for _ in range(len(SMOOTHINGS)):
        labels.append(current.label)
        current = next_smoothing(current)
    assert current == SMOOTHINGS[0]
    assert labels == ["auto (EMA)", "off", "EMA 0.6", "EMA 0.9", "EMA 0.99", "mean of 10", "mean of 50"]
    values = [float(v % 7) for v in range(90)]
    assert Smoothing("off").apply(values) == values
    assert Smoothing("mean", 10).apply(values) == moving_mean(values, 10)
    # auto: an EMA over about a thirtieth of the points (window 3: weight 1 - 2/4).
    assert auto_weight(90) == 0.5 and Smoothing().apply(values) == ema(values, 0.5)


# -------------------------------------------------------------------------------------- x axes, seeds


def test_steps_become_epochs_or_seconds():
    clock = ([10.0, 20.0, 30.0], [105.0, 110.0, 130.0])
    assert steps_to("epoch", [10, 20, 25], steps_per_epoch=20, clock=clock, start=100.0) == [0.5, 1.0, 1.25]
    times = steps_to("time", [10, 20, 25, 40], steps_per_epoch=20, clock=clock, start=100.0)
    assert times[:3] == [5.0, 10.0, 30.0] and math.isnan(times[3])
    assert steps_to("step", [1, 2], steps_per_epoch=0, clock=([], []), start=None) == [1.0, 2.0]


def test_seeds_of_a_cell_make_a_mean_and_a_min_max_band():
    runs = [([0, 10], [0.0, 10.0]), ([0, 5, 10], [2.0, 4.0, 6.0]), ([0, 5], [1.0, 3.0])]
    band = seed_band(runs)
    assert band.xs == [0, 5, 10]
    # At x = 5 the first run is read between its points (5.0); the third run stops at 5 (n = 2 at 10).
    assert band.mean == pytest.approx([1.0, 4.0, 8.0])
    assert band.lo == [0.0, 3.0, 6.0] and band.hi == [2.0, 5.0, 10.0]
    assert band.n == [3, 3, 2]
    sd = seed_band(runs, spread="std")
    at5 = statistics.stdev([5.0, 4.0, 3.0])
    assert sd.lo[1] == pytest.approx(4.0 - at5) and sd.hi[1] == pytest.approx(4.0 + at5)
    many = seed_band([(list(range(1000)), [1.0] * 1000), (list(range(0, 1000, 3)), [3.0] * 334)], points=50)
    assert len(many.xs) == 50 and set(many.mean) == {2.0} and many.lo[0] == 1.0 and many.hi[0] == 3.0
    assert seed_band([]).xs == []


# -------------------------------------------------------------------------------------- the CLI


def test_the_cli_draws_its_curves_with_the_same_engine_and_smoothing():
    from snnlab.console import PLOT_HEIGHT, PLOT_WIDTH, ascii_curves
    from snnlab.curves import smoothed
    from snnlab.history import RunHistory
    from tests.tui.conftest import fake_events

    history = RunHistory.of(fake_events())
    plain = ascii_curves(history)
    loss = render_plot([Series(history.loss.xs, smoothed(history.loss.ys))], PLOT_WIDTH, PLOT_HEIGHT - 1,
                       x_label="step")  # fmt: skip
    assert loss.plain in plain and "\x1b" not in plain
    assert "train loss per step (EMA, weight 0.33)" in plain  # 60 steps: a window of 2
    colored = ascii_curves(history, color=True)
    assert "\x1b[" in colored and Text.from_ansi(colored).plain.rstrip() == plain.rstrip()


def test_a_narrow_plot_names_its_x_axis_before_its_middle_tick():
    series = [Series([0.05, 7.5], [0, 1])]
    assert "time s" in render_plot(series, 60, 6, x_label="time s").plain.split("\n")[-1]
    narrow = render_plot(series, 22, 6, x_label="time s").plain.split("\n")[-1]
    assert "time s" in narrow and "3.77" not in narrow
