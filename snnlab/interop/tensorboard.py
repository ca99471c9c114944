"""TensorBoard: a sink that writes a run's events as TensorBoard event files, and a sweep's hparams table.

Optional (``pip install "snnlab[tensorboard]"``): this module imports without the ``tensorboard`` package;
:func:`require` says in one line how to get it, and the writer (``torch.utils.tensorboard``, which needs
that package) is imported only when a sink or the table first writes.

What a run writes under ``RUN/tensorboard/``, every value at the optimizer step it belongs to (so that the
per-step and per-epoch curves share one axis):

- ``train/loss``, ``train/accuracy``, ``train/lr``: each logged step (``run.log_every``);
- ``test/loss``, ``test/accuracy`` and ``spikes/<layer>`` (mean spikes per neuron per time step): each
  evaluation, at the step that ended its epoch;
- ``config``: the resolved config as YAML text, at the start of each session of the run.

A resumed run appends a new event file to the same folder. Its first event tells TensorBoard to drop
what the earlier session wrote at or after the step this one goes on from (TensorBoard's "purge step"),
so epochs that are trained again show once, with their new values, as ``snnlab runs show`` shows them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import yaml

from snnlab.engine.events import EpochMetrics, Event, RunFailed, RunFinished, RunStarted, StepMetrics
from snnlab.engine.files import WriteError
from snnlab.history import RunHistory
from snnlab.interop.loggers import LoggerUnavailable

LOGGER = "tensorboard"  # its name in run.loggers
TENSORBOARD_DIR = "tensorboard"  # inside a run directory
INSTALL = 'pip install "snnlab[tensorboard]"'
FLUSH_SECONDS = 10  # a TensorBoard open on a live run sees new points within this


class TensorBoardMissing(LoggerUnavailable):
    """TensorBoard logging was asked for but the tensorboard package cannot be imported (one line)."""


def require() -> None:
    """Raise :class:`TensorBoardMissing` unless TensorBoard event files can be written here."""
    try:
        import torch.utils.tensorboard  # noqa: F401  (imports the tensorboard package, and checks its version)
    except ImportError:
        raise TensorBoardMissing(f"TensorBoard logging needs the tensorboard package: {INSTALL}") from None


def _summary_writer(log_dir: Path, purge_step: int | None = None) -> Any:
    require()
    from torch.utils.tensorboard import SummaryWriter

    try:
        return SummaryWriter(str(log_dir), purge_step=purge_step, flush_secs=FLUSH_SECONDS)
    except OSError as exc:
        raise WriteError(log_dir, exc) from None


class TensorBoardSink:
    """Sink that mirrors a run's events into TensorBoard event files under ``RUN/tensorboard/``.

    Fed the same events as the run directory's writer and the console (rank 0 only under torchrun, since
    only rank 0 gets sinks). A folder that cannot be written ends the run as failed, like any file of the run.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.log_dir = Path(run_dir) / TENSORBOARD_DIR
        self._writer: Any = None
        self._config: dict[str, Any] | None = None  # of the session under way, until it is written
        self._continues = False  # an earlier session wrote here: open at this session's first step, purging after it

    def __call__(self, event: Event) -> None:
        try:
            self._write(event)
        except OSError as exc:  # the writer's thread reports a failed write at the next call
            raise WriteError(self.log_dir, exc) from None

    def _write(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.close()
            self._config = event.config
            self._continues = self.log_dir.is_dir() and any(self.log_dir.glob("events.out.tfevents.*"))
            if not self._continues:
                self._open(0, event.time)
        elif isinstance(event, StepMetrics):
            writer = self._open(event.step, event.time)
            for tag, value in (("train/loss", event.loss), ("train/accuracy", event.accuracy), ("train/lr", event.lr)):
                writer.add_scalar(tag, value, event.step, walltime=event.time)
        elif isinstance(event, EpochMetrics):
            writer = self._open(event.step, event.time)
            writer.add_scalar("test/loss", event.test_loss, event.step, walltime=event.time)
            writer.add_scalar("test/accuracy", event.test_accuracy, event.step, walltime=event.time)
            for layer, rate in event.spike_rates.items():
                writer.add_scalar(f"spikes/{layer}", rate, event.step, walltime=event.time)
            writer.flush()  # an evaluation is rare and worth seeing at once
        elif isinstance(event, (RunFinished, RunFailed)) and self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()  # the last points reach the disk here; a failure to write them fails the run

    def _open(self, step: int, time: float) -> Any:
        """The writer of this session, opened at ``step`` (where a resumed session's first value lands)."""
        if self._writer is None:
            self._writer = _summary_writer(self.log_dir, purge_step=step if self._continues else None)
            if self._config is not None:
                self._writer.add_text("config", config_text(self._config), step, walltime=time)
                self._config = None
        return self._writer

    def close(self) -> None:
        """Write out what is pending, quietly: a run that ends this way has had its say already."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except OSError:
                pass


def config_text(config: dict[str, Any]) -> str:
    """The config as TensorBoard's text pane shows it: YAML in a Markdown code block (indented 4 spaces)."""
    text = yaml.safe_dump(config, sort_keys=False, width=10_000)
    return "\n".join("    " + line if line else line for line in text.splitlines())


# --------------------------------------------------------------------------------------------- sweeps


def final_metrics(history: RunHistory) -> dict[str, float]:
    """What a sweep's hparams table shows of a finished run (NaN where the run has no such number)."""
    numbers = {
        "final/test_accuracy": history.final_test_accuracy,
        "final/test_loss": history.final_test_loss,
        "final/best_test_accuracy": history.best_accuracy,
    }
    return {tag: math.nan if value is None else float(value) for tag, value in numbers.items()}


def hparam_value(value: Any) -> float | str:
    """A grid value as the hparams table holds it: numbers as numbers, anything else as ``--set`` writes it."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    from snnlab.sweep import format_value

    return format_value(value)


def write_hparams(
    folder: str | os.PathLike[str],
    hparams: dict[str, Any],
    history: RunHistory,
    grid: dict[str, list[Any]] | None = None,
) -> None:
    """Write one run of a sweep into ``folder`` as a session of TensorBoard's hparams table: its grid values
    (``hparams``, by config key) and its :func:`final_metrics`. ``grid`` lists every value each key takes,
    for the table's filters. A sweep folder holds one such folder per finished run."""
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    values = {key: hparam_value(value) for key, value in hparams.items()}
    domains: dict[str, list[Any]] = {}
    for key, options in (grid or {}).items():
        shown = list(dict.fromkeys(hparam_value(v) for v in options))
        if key in values and all(type(v) is type(values[key]) for v in shown):  # the writer takes one type per key
            domains[key] = shown
    metrics = final_metrics(history)
    writer = _summary_writer(Path(folder))
    try:
        for summary in hparams_summaries(values, metrics, domains):  # the experiment, this session's start and end
            writer.file_writer.add_summary(summary)
        for tag, value in metrics.items():  # the table reads each metric from the session's scalars
            writer.add_scalar(tag, value)
        writer.close()
    except OSError as exc:
        raise WriteError(folder, exc) from None
