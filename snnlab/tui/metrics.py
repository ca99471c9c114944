"""What the lab knows about a run: its :class:`~snnlab.history.RunHistory`, plus what only the lab shows.

:class:`RunMetrics` is plain Python (no widgets), so it is shared by live training, ``watch`` and the
surrogate comparison, and tested on its own. The numbers come from the run's history, folded the way
``snnlab runs show`` and summary.json fold it (health reports included); the lab adds its own state (paused,
stopping, ...), a smoothed speed, the pace for an ETA and the probes for the Inside pane. Memory stays bounded
however long a run is: the history keeps its per-step series downsampled, and probes keep the first (the
"before learning" reference) plus the latest.
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
    HealthReport,
    ProbeRecorded,
    RunFailed,
    RunFinished,
    RunStarted,
    StepMetrics,
)
from snnlab.history import STEP_POINTS, Downsampled, RunHistory
from snnlab.runs import iter_events

MAX_PROBES = 50  # as many as the run directory keeps


@dataclass
class RunMetrics:
    """Everything the Training and Inside panes show about one run, updated by :meth:`apply`."""

    name: str = ""
    status: str = "idle"  # idle | starting | running | paused | stopping | completed | stopped | failed
    error: str | None = None
    run_path: str | None = None
    history: RunHistory = field(default_factory=lambda: RunHistory(STEP_POINTS))
    first_probe: ProbeRecorded | None = None
    recent_probes: deque[ProbeRecorded] = field(default_factory=lambda: deque(maxlen=MAX_PROBES - 1))
    _pace: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))
    bad_lines: BadLines = field(default_factory=BadLines)  # lines of events.jsonl skipped by of_run

    @classmethod
    def of_run(cls, path: Path) -> RunMetrics:
        """The metrics of a run directory as its events stand now (lines that hold no valid event are skipped
        and counted in ``bad_lines``). Raises RunDirError when events.jsonl is missing or unreadable."""
        metrics = cls(name=path.name, run_path=str(path))
        for event in iter_events(path, metrics.bad_lines):  # one at a time: a long run's list would be large
            metrics._apply(event)
        return metrics

    def apply(self, events: list[Event]) -> None:
        """Fold a batch of events in (called by the UI's drain timer, never per event per redraw)."""
        for event in events:
            self._apply(event)

    def _apply(self, event: Event) -> None:
        self.history.apply(event)
        if isinstance(event, StepMetrics):
            self._pace.append((event.time, event.step))
        elif isinstance(event, ProbeRecorded):
            if self.first_probe is None:
                self.first_probe = event
            else:
                self.recent_probes.append(event)
        elif isinstance(event, RunStarted):
            self.name, self.status, self.error = event.run_name, "running", None
            self._pace.clear()  # the pace of an earlier session says nothing about this one
            if self.history.resumed_from_epoch is not None:
                self._forget_probes_after(self.history.resumed_from_epoch)
        elif isinstance(event, (RunFinished, RunFailed)):
            self.status, self.error = self.history.status, self.history.error

    def _forget_probes_after(self, epoch: int) -> None:
        # A resume records the probes of the epochs it redoes again, into the same files.
        kept = [p for p in self.probes if p.epoch <= epoch]
        self.first_probe = kept[0] if kept else None
        self.recent_probes = deque(kept[1:], maxlen=self.recent_probes.maxlen)

    # -- the run's numbers, from its history

    @property
    def samples_per_s(self) -> float:
        """The run's samples/s as ``snnlab runs show`` and the console summary give it (RunHistory's mean over
        the steps that count), NaN before the first step: one figure wherever the lab shows it."""
        speed = self.history.mean_samples_per_s
        return math.nan if speed is None else speed

    @property
    def device(self) -> str:
        return self.history.device or "-"

    @property
    def epochs(self) -> int:
        return self.history.epochs

    @property
    def steps_per_epoch(self) -> int:
        return self.history.steps_per_epoch

    @property
    def num_parameters(self) -> int:
        return self.history.num_parameters

    @property
    def epoch(self) -> int:
        return self.history.epoch

    @property
    def step(self) -> int:
        return self.history.step

    @property
    def batch(self) -> int:
        return self.history.batch

    @property
    def batches(self) -> int:
        return self.history.batches

    @property
    def best_accuracy(self) -> float | None:
        return self.history.best_accuracy

    @property
    def last_epoch(self) -> EpochMetrics | None:
        return self.history.last_epoch

    @property
    def epoch_rows(self) -> list[EpochMetrics]:
        return self.history.epoch_rows

    @property
    def health(self) -> HealthReport | None:
        """The last evaluation's health report (None before one, and in runs from before health reports)."""
        return self.history.health

    @property
    def wall_time(self) -> float | None:
        """Of an ended run only: a live one shows its progress and ETA instead."""
        return self.history.wall_time if self.history.finished else None

    @property
    def loss(self) -> Downsampled:
        return self.history.loss

    @property
    def accuracy(self) -> Downsampled:
        return self.history.accuracy

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
