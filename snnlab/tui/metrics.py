"""What the lab knows about a run, built from its events: bounded buffers, smoothing, ETA.

:class:`RunMetrics` is plain Python (no widgets), so it is shared by live training, ``watch`` and the
surrogate comparison, and tested on its own. Memory stays bounded however long a run is: per-step
series are kept by :class:`Downsampled`, which halves its resolution when full instead of dropping
the start of the run, and probes keep the first (the "before learning" reference) plus the latest.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snnlab.engine.events import (
    BadLines,
    EpochMetrics,
    Event,
    ProbeRecorded,
    RunFailed,
    RunFinished,
    RunStarted,
    StepMetrics,
)
from snnlab.runs import read_events

STEP_POINTS = 2048  # per-step points kept per series: ~4 per cell of the widest plot
MAX_PROBES = 50  # as many as the run directory keeps


class Downsampled:
    """An (x, y) series of at most ``capacity`` points covering the whole run.

    Points arrive one by one. When the buffer is full, neighbouring pairs are averaged and the bucket
    size doubles, so a run of a million steps is still drawn from start to end with bounded memory.
    """

    def __init__(self, capacity: int = STEP_POINTS) -> None:
        self.capacity = max(2, capacity - capacity % 2)
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.bucket = 1  # raw points per stored point
        self._pending: list[tuple[float, float]] = []

    def append(self, x: float, y: float) -> None:
        self._pending.append((x, y))
        if len(self._pending) < self.bucket:
            return
        xs, ys = zip(*self._pending, strict=True)
        self._pending.clear()
        self.xs.append(xs[-1])
        self.ys.append(_mean(ys))
        if len(self.xs) >= self.capacity:
            self.xs = self.xs[1::2]
            self.ys = [_mean(pair) for pair in zip(self.ys[0::2], self.ys[1::2], strict=True)]
            self.bucket *= 2

    def __len__(self) -> int:
        return len(self.xs)


def _mean(values: Any) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


@dataclass
class RunMetrics:
    """Everything the Training and Inside panes show about one run, updated by :meth:`apply`."""

    name: str = ""
    status: str = "idle"  # idle | starting | running | paused | stopping | completed | stopped | failed
    device: str = "-"
    epochs: int = 0
    steps_per_epoch: int = 0
    num_parameters: int = 0
    epoch: int = 0
    step: int = 0
    batch: int = 0
    batches: int = 0
    samples_per_s: float = math.nan
    best_accuracy: float | None = None
    last_epoch: EpochMetrics | None = None
    error: str | None = None
    started: float | None = None
    wall_time: float | None = None
    run_path: str | None = None
    loss: Downsampled = field(default_factory=Downsampled)
    accuracy: Downsampled = field(default_factory=Downsampled)
    epoch_rows: list[EpochMetrics] = field(default_factory=list)
    first_probe: ProbeRecorded | None = None
    recent_probes: deque[ProbeRecorded] = field(default_factory=lambda: deque(maxlen=MAX_PROBES - 1))
    _pace: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))
    bad_lines: BadLines = field(default_factory=BadLines)  # lines of events.jsonl skipped by of_run

    @classmethod
    def of_run(cls, path: Path) -> RunMetrics:
        """The metrics of a run directory as its events stand now (lines that hold no valid event are skipped
        and counted in ``bad_lines``). Raises RunDirError when events.jsonl is missing or unreadable."""
        metrics = cls(name=path.name, run_path=str(path))
        metrics.apply(read_events(path, metrics.bad_lines))
        return metrics

    def apply(self, events: list[Event]) -> None:
        """Fold a batch of events in (called by the UI's drain timer, never per event per redraw)."""
        for event in events:
            self._apply(event)

    def _apply(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.name, self.device, self.epochs = event.run_name, event.device, event.epochs
            self.steps_per_epoch, self.num_parameters = event.steps_per_epoch, event.num_parameters
            self.status, self.error = "running", None
            self.started = self.started or event.time
            if event.start_epoch:
                self.epoch = event.start_epoch
        elif isinstance(event, StepMetrics):
            self.epoch, self.step, self.batch, self.batches = event.epoch, event.step, event.batch, event.batches
            self.loss.append(event.step, event.loss)
            self.accuracy.append(event.step, event.accuracy)
            speed = event.samples_per_s
            if math.isfinite(speed):
                # Smoothed for display: single steps jitter by 2x on a busy machine.
                self.samples_per_s = speed if math.isnan(self.samples_per_s) else 0.8 * self.samples_per_s + 0.2 * speed
            self._pace.append((event.time, event.step))
        elif isinstance(event, EpochMetrics):
            self.epoch_rows.append(event)
            self.last_epoch = event
            self.best_accuracy = event.best_accuracy
        elif isinstance(event, ProbeRecorded):
            if self.first_probe is None:
                self.first_probe = event
            else:
                self.recent_probes.append(event)
        elif isinstance(event, RunFinished):
            self.status = event.status
            self.wall_time = event.wall_time
            self.best_accuracy = event.best_accuracy
        elif isinstance(event, RunFailed):
            self.status, self.error = "failed", event.error
            self.wall_time = event.wall_time
            if self.wall_time is None and self.started is not None:  # from before RunFailed carried it
                self.wall_time = event.time - self.started

    # -- derived values

    @property
    def probes(self) -> list[ProbeRecorded]:
        """Probes in order: the first one and the most recent ones."""
        return ([self.first_probe] if self.first_probe else []) + list(self.recent_probes)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "stopped", "failed")

    def eta(self) -> float | None:
        """Seconds left, from the pace of the recent steps (event times, so it is exact for replays too)."""
        if self.finished or len(self._pace) < 2 or not self.total_steps:
            return None
        (t0, s0), (t1, s1) = self._pace[0], self._pace[-1]
        if s1 <= s0 or t1 <= t0:
            return None
        return max(self.total_steps - s1, 0) * (t1 - t0) / (s1 - s0)

    def progress(self) -> float:
        """Fraction of the planned steps done, in [0, 1]."""
        return min(self.step / self.total_steps, 1.0) if self.total_steps else 0.0

    def epoch_series(self, key: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of an :class:`EpochMetrics` field, e.g. ``test_accuracy``."""
        return [float(e.epoch) for e in self.epoch_rows], [float(getattr(e, key)) for e in self.epoch_rows]

    def epoch_steps(self, key: str) -> tuple[list[float], list[float]]:
        """(global step, values) of an epoch field, to overlay test metrics on per-step curves."""
        return [float(e.step) for e in self.epoch_rows], [float(getattr(e, key)) for e in self.epoch_rows]

    def spike_rates(self) -> dict[str, tuple[list[float], list[float]]]:
        """Per spiking layer: (epochs, mean spikes per neuron per step) on the test split."""
        out: dict[str, tuple[list[float], list[float]]] = {}
        for e in self.epoch_rows:
            for layer, rate in e.spike_rates.items():
                xs, ys = out.setdefault(layer, ([], []))
                xs.append(float(e.epoch))
                ys.append(float(rate))
        return out

    def final_spike_rate(self) -> float | None:
        """Mean over layers of the last evaluation's spike rates."""
        if self.last_epoch is None or not self.last_epoch.spike_rates:
            return None
        rates = list(self.last_epoch.spike_rates.values())
        return sum(rates) / len(rates)

    def csv_rows(self) -> list[dict[str, Any]]:
        """One row per evaluation and one per kept step point, for the CSV export."""
        rows: list[dict[str, Any]] = []
        for x, loss, acc in zip(self.loss.xs, self.loss.ys, self.accuracy.ys, strict=False):
            rows.append({"kind": "step", "step": int(x), "train_loss": loss, "train_accuracy": acc})
        for e in self.epoch_rows:
            row = {
                "kind": "epoch",
                "epoch": e.epoch,
                "step": e.step,
                "train_loss": e.train_loss,
                "train_accuracy": e.train_accuracy,
                "test_loss": e.test_loss,
                "test_accuracy": e.test_accuracy,
                "epoch_time": e.epoch_time,
            }
            row.update({f"spike_rate_{k}": v for k, v in e.spike_rates.items()})
            rows.append(row)
        return rows
