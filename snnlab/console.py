"""Headless face: the console sink for ``snnlab run``, run summaries, and terminal plots.

:class:`ConsoleSink` shows progress while training (a rich progress bar on a terminal, plain lines in a
log file or CI) and the network's health warnings as they appear and clear. :func:`print_summary`,
:func:`runs_table` and :func:`show_run` render finished runs for ``snnlab run``, ``snnlab runs`` and
``snnlab runs show`` (with the last health report's table); :func:`ascii_curves` draws the loss and
accuracy curves with :mod:`snnlab.plotting`, the engine the lab draws with. Accuracies in events are
fractions in [0, 1] and are shown as percentages.
"""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from snnlab.curves import Smoothing, auto_weight
from snnlab.engine.events import (
    BadLines,
    EpochMetrics,
    Event,
    HealthReport,
    RunFailed,
    RunFinished,
    RunStarted,
    StepMetrics,
)
from snnlab.formatting import (
    HEALTH_COLUMNS,
    format_accuracy,
    format_count,
    format_duration,
    format_number,
    format_percent,
    health_cells,
)
from snnlab.history import RunHistory, decoder_of
from snnlab.plotting import ACCENT, Series, render_plot
from snnlab.runs import RunDirError, RunInfo, read_config, read_history

PLOT_WIDTH = 70
PLOT_HEIGHT = 15


# --------------------------------------------------------------------------------------------- lines


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or file-like objects without isatty
        return False


def epoch_line(event: EpochMetrics, epochs: int | None) -> str:
    """One plain line per epoch, the same on a terminal and in a log file."""
    total = f"/{epochs}" if epochs else ""
    spikes = ", ".join(f"{name} {rate:.2f}" for name, rate in event.spike_rates.items())
    return (
        f"epoch {event.epoch}{total}  "
        f"train loss {event.train_loss:.3f} acc {format_percent(event.train_accuracy)}  "
        f"test loss {event.test_loss:.3f} acc {format_percent(event.test_accuracy)}  "
        + (f"spikes [{spikes}]  " if spikes else "")
        + format_duration(event.epoch_time)
    )


_NO_LONGER = {"silent": "no longer silent", "saturated": "no longer saturated",
              "vanishing_gradient": "its weight gradient no longer vanishes"}  # fmt: skip


def health_lines(report: HealthReport, shown: dict[tuple[str, str], str]) -> list[str]:
    """The lines a health report adds to ``snnlab run``'s output: each warning when it first appears and a
    line when it clears, not the same warnings again at every evaluation. ``shown`` (the warnings standing,
    by layer and problem) is updated."""
    now: dict[tuple[str, str], str] = {(w.layer, w.problem): w.message for w in report.warnings}
    lines = [f"health warning: {message}" for key, message in now.items() if key not in shown]
    lines += [
        f"health: {layer}: {_NO_LONGER.get(problem, 'ok')}" for layer, problem in shown if (layer, problem) not in now
    ]
    shown.clear()
    shown.update(now)
    return lines


def _start_line(event: RunStarted) -> str:
    what = f"run {event.run_name} on {event.device}: {event.num_parameters:,} parameters, "
    what += f"{event.train_size:,} train / {event.test_size:,} test samples, "
    what += f"{event.epochs} epoch{'s' if event.epochs != 1 else ''} of {event.steps_per_epoch} batches"
    what += f", accuracy by the {decoder_of(event.config)} decoder"
    if event.start_epoch > 0:
        what += f", resuming after epoch {event.start_epoch}"
    return what


# --------------------------------------------------------------------------------------------- live sink


class ConsoleSink:
    """Progress for ``snnlab run``.

    On a terminal: a rich progress bar (epoch e/E, batch b/B, loss, accuracy, samples/s, ETA) and one
    line per epoch printed above it. Elsewhere (a pipe, a log file, CI): one plain line every ~10% of an
    epoch and one line per epoch. Only rank 0 prints, so a torchrun job shows one progress display.
    ``quiet`` drops the per-batch progress and keeps the start line and the epoch lines.
    Health warnings (:func:`health_lines`) are printed when they appear and when they clear, also when
    ``quiet``. Failures are left to the CLI, which prints one error line; probes are not shown.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        rank: int = 0,
        quiet: bool = False,
        *,
        tty: bool | None = None,
    ) -> None:
        # Resolve sys.stderr at call time, not import time, so redirection and test capture work.
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = rank == 0
        self.quiet = quiet
        self.tty = _is_tty(self.stream) if tty is None else tty
        self._epochs: int | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._task_epoch: int | None = None
        self._next_report = 0
        self._warnings: dict[tuple[str, str], str] = {}  # health warnings standing, as last printed

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return
        try:
            self._show(event)
        except BrokenPipeError:
            # Whoever read the output went away (`snnlab run ... 2>&1 | head`): the training goes on, and
            # the run directory records all of it.
            self.enabled = False
            self._progress = None

    def _show(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._epochs = event.epochs
            self._print(_start_line(event))
        elif isinstance(event, StepMetrics):
            if not self.quiet:
                self._on_step(event)
        elif isinstance(event, EpochMetrics):
            self._print(epoch_line(event, self._epochs))
        elif isinstance(event, HealthReport):
            for line in health_lines(event, self._warnings):
                self._print(line)
        elif isinstance(event, (RunFinished, RunFailed)):
            self.close()

    def close(self) -> None:
        """Stop the progress bar (restoring the cursor); safe to call more than once."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
            self._task_epoch = None

    def _print(self, line: str) -> None:
        if self._progress is not None:
            # Printed through the live display, so the line lands above the bar instead of through it.
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def _on_step(self, event: StepMetrics) -> None:
        if self.tty:
            self._update_bar(event)
            return
        if event.batch == 1 or event.epoch != self._task_epoch:
            self._task_epoch = event.epoch
            self._next_report = max(1, math.ceil(event.batches / 10))
        # The epoch line covers the last batch; the plain lines mark the way there.
        if event.batch >= self._next_report and event.batch < event.batches:
            self._next_report = event.batch + max(1, math.ceil(event.batches / 10))
            total = f"/{self._epochs}" if self._epochs else ""
            self._print(
                f"epoch {event.epoch}{total}  batch {event.batch}/{event.batches}  "
                f"loss {event.loss:.3f}  acc {format_percent(event.accuracy)}  {event.samples_per_s:,.0f} samples/s"
            )

    def _update_bar(self, event: StepMetrics) -> None:
        if self._progress is None:
            console = _PipeConsole(file=self.stream, force_terminal=True)
            self._progress = Progress(
                TextColumn("epoch {task.fields[epoch]}"),
                BarColumn(),
                TextColumn("batch {task.completed}/{task.total}"),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("acc {task.fields[acc]}"),
                TextColumn("{task.fields[speed]} samples/s"),
                TimeRemainingColumn(),
                console=console,
            )
            self._progress.start()
        fields: dict[str, Any] = {
            "epoch": f"{event.epoch}/{self._epochs}" if self._epochs else str(event.epoch),
            "loss": f"{event.loss:.3f}",
            "acc": format_percent(event.accuracy),
            "speed": f"{event.samples_per_s:,.0f}",
        }
        if self._task is None:
            self._task = self._progress.add_task("train", total=event.batches, **fields)
        elif self._task_epoch != event.epoch:
            # One bar reused across epochs: a fresh ETA per epoch, no stack of finished bars.
            self._progress.reset(self._task, total=event.batches, **fields)
        self._task_epoch = event.epoch
        self._progress.update(self._task, completed=event.batch, total=event.batches, **fields)


# --------------------------------------------------------------------------------------------- plots


def _plot(series: list[Series], title: str, x_label: str, width: int, height: int, color: bool) -> str:
    """A titled plot as text: drawn by the lab's engine, with ANSI colours only when ``color``."""
    text = Text(title + "\n", style="bold", no_wrap=True, end="")
    text.append_text(render_plot(series, width, height - 1, x_label=x_label))
    if not color:
        return text.plain
    buffer = io.StringIO()
    Console(file=buffer, width=width, force_terminal=True, color_system="256", legacy_windows=False).print(text)
    return buffer.getvalue()


def ascii_curves(
    history: RunHistory | dict[str, Any] | list[Event],
    *,
    width: int = PLOT_WIDTH,
    height: int = PLOT_HEIGHT,
    color: bool = False,
) -> str:
    """Terminal plots of the training loss (per step, smoothed) and the test accuracy (per epoch).

    ``history`` is a run's :class:`~snnlab.history.RunHistory`, its columns (:func:`snnlab.runs.metric_history`),
    or a list of events. Returns the plots stacked as one string (ANSI colours only when ``color``), each
    ``height`` lines with its title; a line of text stands in for a curve with no data yet. They are drawn
    with :mod:`snnlab.plotting`, as the lab draws them, and smoothed as the lab smooths by default.
    """
    if isinstance(history, list):
        history = RunHistory.of(history)
    if isinstance(history, RunHistory):
        history = history.columns()
    steps, epochs = history["steps"], history["epochs"]
    parts = []

    points = [(s, v) for s, v in zip(steps["step"], steps["loss"], strict=False) if math.isfinite(v)]
    if points:
        xs, raw = [p[0] for p in points], [p[1] for p in points]
        smoothing = Smoothing()
        weight = auto_weight(len(raw))
        title = "train loss per step" + (f" (EMA, weight {weight:.2g})" if weight > 0 else "")
        line = Series(xs, smoothing.apply(raw), ACCENT)
        parts.append(_plot([line], title, "step", width, height, color))
    else:
        parts.append("train loss: no steps recorded yet")

    acc = [(e, 100 * a) for e, a in zip(epochs["epoch"], epochs["test_accuracy"], strict=False) if math.isfinite(a)]
    if acc:
        xs, ys = [p[0] for p in acc], [p[1] for p in acc]
        curve = [Series(xs, ys, ACCENT), Series(xs, ys, ACCENT, kind="points")]
        parts.append(_plot(curve, "test accuracy (%)", "epoch", width, height, color))
    else:
        parts.append("test accuracy: no epoch finished yet")
    return "\n".join(p.rstrip("\n") for p in parts) + "\n"


# --------------------------------------------------------------------------------------------- summaries


def summary_table(history: RunHistory | list[Event], title: str | None = "run summary") -> Table:
    """Key numbers of a run, from its history or its events (works for live, finished and failed runs)."""
    if isinstance(history, list):
        history = RunHistory.of(history, step_points=0)
    planned = history.epochs
    speed = history.mean_samples_per_s
    rows = [
        ("status", history.status),
        ("epochs", f"{history.epochs_done}/{planned}" if planned else str(history.epochs_done)),
        ("steps", str(history.steps_done)),
        ("best test accuracy", format_accuracy(history.best_accuracy, history.decoder)),
        ("final test loss", format_number(history.final_test_loss)),
        ("final test accuracy", format_accuracy(history.final_test_accuracy, history.decoder)),
        ("wall time", format_duration(history.wall_time)),
        ("device", history.device or "-"),
        ("samples/s (mean)", f"{speed:,.0f}" if speed is not None else "-"),
    ]
    last = history.last_epoch
    if last:
        rows.append(("spike rate (test)", ", ".join(f"{name} {rate:.3f}" for name, rate in last.spike_rates.items())))
    if history.error is not None:
        rows.append(("error", history.error))
    table = Table(title=title, show_header=False, title_justify="left", box=None, padding=(0, 2))
    table.add_column("what", style="bold")
    table.add_column("value")
    for what, value in rows:
        table.add_row(what, Text(value))  # Text, not markup: a device name or an error may hold "[...]"
    return table


def health_table(report: HealthReport) -> Table:
    """The last health report: one row per layer (silent and saturated shares, spike rate, mean surrogate
    gradient, weight-gradient norm, SynOps per sample), the total SynOps, then its warnings."""
    table = Table(title=f"health (epoch {report.epoch})", title_justify="left", box=None, padding=(0, 2),
                  header_style="bold", caption_justify="left")  # fmt: skip
    table.add_column("layer")
    for column in HEALTH_COLUMNS:
        table.add_column(column, justify="right")
    for name, layer in report.by_layer.items():
        table.add_row(Text(name), *health_cells(layer))
    table.add_row("total", *[""] * (len(HEALTH_COLUMNS) - 1), format_count(report.synops))
    if report.warnings:
        table.caption = "\n".join(w.message for w in report.warnings)
    return table


def _print_health(console: Console, history: RunHistory) -> None:
    if history.health is not None:
        console.print()
        console.print(health_table(history.health))


def _console(stream: TextIO) -> Console:
    # Not a terminal: no colors, no markup escapes; a fixed width keeps log files tidy.
    tty = _is_tty(stream)
    return _PipeConsole(file=stream, force_terminal=tty, no_color=not tty, width=None if tty else 100)


class _PipeConsole(Console):
    """A rich Console that reports a closed pipe as BrokenPipeError, as plain writes do: rich's own
    handling exits the process with status 1, which would end a training run because of `| head`."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def print_summary(history: RunHistory | list[Event], stream: TextIO | None = None) -> None:
    """Print the end-of-run summary: a small table, then the loss and accuracy curves."""
    stream = stream if stream is not None else sys.stdout
    if isinstance(history, list):
        history = RunHistory.of(history)
    console = _console(stream)
    console.print(summary_table(history))
    _print_health(console, history)
    console.print()
    stream.write(ascii_curves(history, color=_is_tty(stream)))
    stream.flush()


def runs_table(infos: list[RunInfo], width: int | None = None) -> Table:
    """The listing of ``snnlab runs``: one row per run, newest first as given. Below 96 columns (``width``)
    the dataset column is left out, so that the run name, its accuracy and the decoder behind it stay whole."""
    colors = {"completed": "green", "running": "cyan", "stopped": "yellow", "failed": "red", "died": "red"}
    table = Table(title=None, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    # No "started" column: the folder name already ends in the start time, and 80 columns are tight.
    columns = ["run", "status", "dataset", "epochs", "best acc", "wall time"]
    if width is not None and width < 96:
        columns.remove("dataset")
    for column in columns:
        table.add_column(
            column,
            justify="right" if column in {"epochs", "best acc", "wall time"} else "left",
            # The run name is what people type into `runs show`, and status is the point: never cut them,
            # nor the decoder under a narrow best accuracy ("rate_first" is the longest name).
            no_wrap=column in {"run", "status"},
            min_width=len("rate_first") if column == "best acc" else None,
        )
    for info in infos:
        color = colors.get(info.status, "magenta")
        cells = {
            "run": info.path.name,  # the folder name, which is what find_run and `runs show` accept
            "status": f"[{color}]{info.status}[/]",
            "dataset": info.dataset or "-",
            "epochs": f"{info.epochs_done}/{info.epochs}" if info.epochs else str(info.epochs_done),
            # With the decoder that made it (rate and rate_first differ on the same weights); on a narrow
            # terminal it goes under the number.
            "best acc": f"{format_percent(info.best_accuracy)} {info.decoder}"
            if info.decoder
            else format_percent(None),
            "wall time": format_duration(info.wall_time),
        }
        table.add_row(*(cells[column] for column in columns))
    return table


def show_run(path: str | Path, stream: TextIO | None = None) -> list[str]:
    """``snnlab runs show``: the stored config, the summary numbers and the curves of one run.

    Shows whatever can be read. Returns one line per file that could not be read (config.yaml,
    events.jsonl), for the caller to report; lines of events.jsonl that hold no valid event are skipped,
    and a note says how many.
    """
    stream = stream if stream is not None else sys.stdout
    path = Path(path)
    console = _console(stream)
    problems: list[str] = []
    info = RunInfo.from_dir(path)
    header = Text.assemble((path.name, "bold"), f"  {info.status if info else 'unknown'}  ({path})")
    console.print(header, highlight=False, soft_wrap=True)  # one line, whatever the width: `| head -1`
    console.print()
    console.print("[bold]config[/]")
    try:
        config = read_config(path)
        text = yaml.safe_dump(config, sort_keys=False).rstrip() if config else "(no config.yaml)"
    except RunDirError as exc:
        problems.append(str(exc))
        text = f"({exc})"
    console.print(text, markup=False, highlight=False)
    console.print()
    bad = BadLines()
    try:
        history = read_history(path, bad)
    except RunDirError as exc:
        problems.append(str(exc))
        console.print(f"[bold]metrics[/]\n({escape(str(exc))})", highlight=False)
        return problems
    console.print(summary_table(history, title="metrics"))
    if bad.count:
        console.print(f"({bad}; the first: {bad.first_error})", markup=False, highlight=False)
    _print_health(console, history)
    console.print()
    stream.write(ascii_curves(history, color=_is_tty(stream)))
    stream.flush()
    return problems
