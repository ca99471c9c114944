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
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Static

from snnlab.formatting import format_accuracy, format_duration
from snnlab.tui import palette
from snnlab.tui.keymap import key_names_of
from snnlab.tui.metrics import RunMetrics
from snnlab.tui.widgets.metric_plot import MetricPlot
from snnlab.tui.widgets.plotting import Series, smoothed


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


def loss_series(m: RunMetrics, label: str = "", color: str = palette.ACCENT, raw: bool = True) -> list[Series]:
    """Train loss per step (raw, faint; smoothed, bright) and test loss per evaluation (points)."""
    xs, ys = m.loss.xs, m.loss.ys
    out: list[Series] = []
    if raw and xs:
        out.append(Series(xs, ys, palette.RAW))
    if xs:
        out.append(Series(xs, smoothed(ys), color, f"{label}train"))
    tx, ty = m.epoch_steps("test_loss")
    if tx:
        out.append(Series(tx, ty, palette.TEST if not label else color, f"{label}test", kind="points"))
    return out


def accuracy_series(m: RunMetrics, label: str = "", color: str = palette.ACCENT) -> list[Series]:
    """Train accuracy per step (smoothed) and test accuracy per evaluation, in percent."""
    xs, ys = m.accuracy.xs, [100 * y for y in m.accuracy.ys]
    out: list[Series] = []
    if xs:
        out.append(Series(xs, smoothed(ys), color, f"{label}train"))
    tx, ty = m.epoch_steps("test_accuracy")
    if tx:
        pct = [100 * y for y in ty]
        test_color = palette.TEST if not label else color
        out.append(Series(tx, pct, test_color))
        out.append(Series(tx, pct, test_color, f"{label}test", kind="points"))
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
    """Progress line over a 2x2 grid: loss, accuracy, spike rates, numbers."""

    def compose(self) -> ComposeResult:
        yield Static(id="train-progress")
        with Grid(id="train-grid"):
            yield MetricPlot("loss", x_label="step", id="plot-loss", empty="press s to start training")
            yield MetricPlot("accuracy %", x_label="step", id="plot-accuracy")
            yield MetricPlot("spike rate per layer (test)", x_label="epoch", id="plot-rates",
                             empty="after the first evaluation")  # fmt: skip
            yield Static(id="train-summary")

    def on_mount(self) -> None:
        self.query_one("#train-summary", Static).border_title = "run"

    def draw(self, m: RunMetrics, overlays: Sequence[tuple[str, RunMetrics]] = ()) -> None:
        """Redraw everything from ``m`` (and the overlaid runs, each in its own color)."""
        self.query_one("#train-progress", Static).update(progress_line(m))
        loss, acc = loss_series(m), accuracy_series(m)
        for k, (name, other) in enumerate(overlays):
            color = palette.overlay(k)
            loss += loss_series(other, f"{name[:16]} ", color, raw=False)
            acc += accuracy_series(other, f"{name[:16]} ", color)
        waiting = waiting_text(m, key_names_of(self.app, "lab.start"))
        self.query_one("#plot-loss", MetricPlot).show(loss, empty=waiting)
        self.query_one("#plot-accuracy", MetricPlot).show(acc)
        rates = [
            Series(xs, ys, palette.series(k), layer) for k, (layer, (xs, ys)) in enumerate(m.spike_rates().items())
        ]
        self.query_one("#plot-rates", MetricPlot).show(rates)
        self.query_one("#train-summary", Static).update(summary_table(m))
