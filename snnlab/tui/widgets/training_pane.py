"""The Training pane: progress, live loss and accuracy, spike rate per layer, and the run's key numbers.

It only draws: :meth:`TrainingPane.draw` is called from the app's redraw timer with the run's
:class:`~snnlab.tui.metrics.RunMetrics` and any runs overlaid from the runs list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection

from snnlab.curves import steps_to
from snnlab.curves import x_label as x_label_of
from snnlab.formatting import format_accuracy, format_duration
from snnlab.plotting import Series
from snnlab.tui import palette
from snnlab.tui.keymap import key_names_of
from snnlab.tui.metrics import RunMetrics
from snnlab.tui.widgets.metric_plot import MetricPlot, PlotOptions


def progress_line(m: RunMetrics, width: int = 24) -> Text:
    """``epoch 2/5 ▕██████░░░░▏ 48%  batch 30/40``."""
    done = m.progress()
    filled = round(done * width)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"epoch {m.epoch}/{m.epochs or '?'} ", "bold")
    text.append("▕" + "█" * filled, palette.GOOD)
    text.append("░" * (width - filled) + "▏", palette.FAINT)
    text.append(f" {100 * done:3.0f}%  batch {m.batch}/{m.batches or '?'}  step {m.step}")
    eta = m.eta()
    if eta is not None:
        text.append(f"  ETA {format_duration(eta)}", palette.ACCENT)
    return text


def _x(m: RunMetrics, steps: Sequence[float], axis: str) -> list[float]:
    history = m.history
    return steps_to(axis, steps, steps_per_epoch=m.steps_per_epoch, clock=(history.clock.xs, history.clock.ys),
                    start=history.started)  # fmt: skip


def _evaluations(m: RunMetrics, key: str, axis: str) -> tuple[list[float], list[float]]:
    """(x, value) of an evaluation's field on ``axis``; the x of an evaluation on the time axis is its
    event's own time."""
    rows = m.epoch_rows
    if axis == "time":
        start = m.history.started
        xs = [row.time - start if start is not None else math.nan for row in rows]
    else:
        xs = _x(m, [float(row.step) for row in rows], axis)
    return xs, [float(getattr(row, key)) for row in rows]


def loss_series(m: RunMetrics, label: str = "", color: str = palette.ACCENT, raw: bool = True,
                options: PlotOptions | None = None, z: int = 0) -> list[Series]:  # fmt: skip
    """Train loss per step (raw, faint, at the back; smoothed, bright) and test loss per evaluation (points).

    An overlaid run has a ``label`` ("#1"): its train curve is called that and its test points, in the
    same colour, get no legend entry of their own (the crosshair still reads them as "#1 test")."""
    options = options or PlotOptions()
    xs, ys = _x(m, m.loss.xs, options.x_axis), m.loss.ys
    out: list[Series] = []
    if raw and xs:
        out.append(Series(xs, ys, palette.RAW, z=-1))
    if xs:
        out.append(Series(xs, options.smoothing.apply(ys), color, label or "train", z=z))
    tx, ty = _evaluations(m, "test_loss", options.x_axis)
    if tx:
        test_color = palette.TEST if not label else color
        out.append(Series(tx, ty, test_color, f"{label} test" if label else "test", "points", z=z, legend=not label))
    return out


def accuracy_series(m: RunMetrics, label: str = "", color: str = palette.ACCENT,
                    options: PlotOptions | None = None, z: int = 0) -> list[Series]:  # fmt: skip
    """Train accuracy per step (smoothed) and test accuracy per evaluation, in percent (labels as
    :func:`loss_series`)."""
    options = options or PlotOptions()
    xs, ys = _x(m, m.accuracy.xs, options.x_axis), [100 * y for y in m.accuracy.ys]
    out: list[Series] = []
    if xs:
        out.append(Series(xs, options.smoothing.apply(ys), color, label or "train", z=z))
    tx, ty = _evaluations(m, "test_accuracy", options.x_axis)
    if tx:
        pct = [100 * y for y in ty]
        test_color = palette.TEST if not label else color
        out.append(Series(tx, pct, test_color, z=z))
        out.append(Series(tx, pct, test_color, f"{label} test" if label else "test", "points", z=z, legend=not label))
    return out


def summary_table(m: RunMetrics) -> Table:
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(style=palette.AXIS, no_wrap=True, min_width=13)
    table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    last = m.last_epoch
    rows: list[tuple[str, Any]] = [
        ("status", m.status),
        ("device", m.device),
        ("parameters", f"{m.num_parameters:,}" if m.num_parameters else "-"),
        ("samples/s", f"{m.samples_per_s:,.0f}" if not math.isnan(m.samples_per_s) else "-"),
        ("best test acc", format_accuracy(m.best_accuracy, m.history.decoder)),  # the decoder is part of it
        ("last test", f"loss {last.test_loss:.3f}  acc {100 * last.test_accuracy:.1f}%" if last else "-"),
        ("epoch time", format_duration(last.epoch_time) if last else "-"),
        ("wall time", format_duration(m.wall_time)),
    ]
    if m.error:
        rows.append(("error", Text(m.error, style=palette.BAD)))
    if m.run_path:
        rows.append(("run dir", m.run_path))
    for key, value in rows:
        table.add_row(key, value)
    return table


def waiting_text(m: RunMetrics, start_keys: str = "s") -> str:
    """What the loss plot says before the run's first step: what is under way, or how to start one."""
    if m.status in ("starting", "running"):
        return "starting: the first step is on its way"
    if m.status in ("watching", "paused", "stopping"):
        return f"{m.status}: no steps yet"
    return f"press {start_keys} to start training"


class TrainingPane(Vertical):
    """Progress line over a 2x2 grid: loss, accuracy, spike rates, numbers; with runs overlaid, a key
    under it: one row per run (its full name and colour), a checkbox to show or hide it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.options = PlotOptions()  # shared by the loss and accuracy plots
        self.hidden: set[str] = set()  # runs toggled off in the key ("" is the live run)
        self._last: tuple[RunMetrics, list[tuple[str, RunMetrics]]] | None = None
        self._keyed: tuple[str, ...] | None = None  # the runs in the key: "" (the live run), then the overlays
        self._keyed_for: tuple[str, tuple[str, ...]] | None = None  # and the live run's name they were built for

    def compose(self) -> ComposeResult:
        yield Static(id="train-progress")
        waiting = waiting_text(RunMetrics(), key_names_of(self.app, "lab.start"))
        with Grid(id="train-grid"):
            yield MetricPlot("loss", x_label="step", id="plot-loss", empty=waiting,
                             options=self.options, more_hint="see the key")  # fmt: skip
            yield MetricPlot("accuracy %", x_label="step", id="plot-accuracy", options=self.options,
                             more_hint="see the key")  # fmt: skip
            yield MetricPlot("spike rate per layer (test)", x_label="epoch", id="plot-rates",
                             empty="after the first evaluation")  # fmt: skip
            yield Static(id="train-summary")
        yield SelectionList[str](id="train-key")

    def on_mount(self) -> None:
        self.query_one("#train-summary", Static).border_title = "run"
        key = self.query_one("#train-key", SelectionList)
        key.border_title = "runs shown (space: show / hide)"
        key.display = False

    def on_resize(self) -> None:
        # The key scrolls: on a small terminal it takes at most a quarter of the pane from the plots.
        self.query_one("#train-key", SelectionList).styles.max_height = max(3, self.size.height // 4)

    def draw(self, m: RunMetrics, overlays: Sequence[tuple[str, RunMetrics]] = ()) -> None:
        """Redraw everything from ``m`` (and the overlaid runs, each in its own colour)."""
        self._last = (m, list(overlays))
        self.query_one("#train-progress", Static).update(progress_line(m))
        self._update_key(m, overlays)
        self._draw_curves()
        rates = [
            Series(xs, ys, palette.series(k), layer) for k, (layer, (xs, ys)) in enumerate(m.spike_rates().items())
        ]
        self.query_one("#plot-rates", MetricPlot).show(rates)
        self.query_one("#train-summary", Static).update(summary_table(m))

    def _draw_curves(self) -> None:
        if self._last is None:
            return
        m, overlays = self._last
        options = self.options
        # The live run first in the legend and in front of the overlays (z=1): a cell they share shows it.
        shown = "" not in self.hidden
        loss = loss_series(m, options=options, z=1) if shown else []
        acc = accuracy_series(m, options=options, z=1) if shown else []
        for k, (name, other) in enumerate(overlays):
            if name in self.hidden:
                continue
            color, label = palette.overlay(k), f"#{k + 1}"
            loss += loss_series(other, label, color, raw=False, options=options)
            acc += accuracy_series(other, label, color, options=options)
        x_label = x_label_of(options.x_axis)
        waiting = waiting_text(m, key_names_of(self.app, "lab.start"))
        self.query_one("#plot-loss", MetricPlot).show(loss, x_label=x_label, empty=waiting)
        self.query_one("#plot-accuracy", MetricPlot).show(acc, x_label=x_label)

    def _update_key(self, m: RunMetrics, overlays: Sequence[tuple[str, RunMetrics]]) -> None:
        names = ("", *(name for name, _ in overlays))
        if (m.name, names) == self._keyed_for:
            return
        self._keyed, self._keyed_for = names, (m.name, names)
        self.hidden &= set(names)
        key = self.query_one("#train-key", SelectionList)
        key.clear_options()
        rows = [Selection(Text.assemble(("── ", palette.ACCENT), "this run  ", (m.name or "-", palette.AXIS)), "",
                          "" not in self.hidden)]  # fmt: skip
        for k, (name, _) in enumerate(overlays):
            label = Text.assemble(("── ", palette.overlay(k)), f"#{k + 1}  ", name)
            rows.append(Selection(label, name, name not in self.hidden))
        key.add_options(rows)
        key.display = bool(overlays)

    @on(SelectionList.SelectedChanged, "#train-key")
    def _toggled(self, event: SelectionList.SelectedChanged) -> None:
        event.stop()
        if self._keyed is None:
            return
        self.hidden = set(self._keyed) - set(event.selection_list.selected)
        self._draw_curves()

    @on(MetricPlot.OptionsChanged)
    def _options_changed(self, event: MetricPlot.OptionsChanged) -> None:
        event.stop()
        if event.plot.options is not self.options:
            return
        for plot in (self.query_one("#plot-loss", MetricPlot), self.query_one("#plot-accuracy", MetricPlot)):
            if plot.x_label != x_label_of(self.options.x_axis):
                plot.reset_x()
        self._draw_curves()
