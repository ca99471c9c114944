"""A run's history: its events folded, one at a time, into the numbers that every face shows.

``summary.json`` (written by :class:`snnlab.runs.RunWriter`), ``snnlab runs show``, the lab and the summary of
a sweep all read a run through :class:`RunHistory`, so that they agree about it, resumed runs included.

A resume appends to the same events.jsonl. Its :class:`RunStarted` says after which epoch (``start_epoch``, k)
the run goes on, and what the earlier session recorded after epoch k is done again by this one. The fold
forgets those epochs and the steps that belong to them, so that a redone epoch counts once, with its new
values. (A checkpoint written inside epoch k+1 resumes there too; the steps of that epoch before it are
forgotten with the rest, since ``RunStarted`` does not say at which step the run goes on.)

Memory stays bounded where a face asks for it: the per-step series are :class:`Downsampled`, which halves
its resolution when full instead of dropping the start of the run. The per-epoch rows are kept whole (one
per evaluation). This module needs neither torch nor any user-interface library.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from snnlab.engine.events import EpochMetrics, Event, HealthReport, RunFailed, RunFinished, RunStarted, StepMetrics

# The decoder of a run whose config does not name one: the default when runs did not record it.
DEFAULT_DECODER = "rate"
STEP_POINTS = 2048  # per-step points kept per series when bounded: ~4 per cell of the lab's widest plot


def decoder_of(config: Any) -> str:
    """The decoder (``train.decoder``) that a run's config names, :data:`DEFAULT_DECODER` when it names none."""
    train = config.get("train") if isinstance(config, dict) else None
    decoder = train.get("decoder") if isinstance(train, dict) else None
    return decoder if isinstance(decoder, str) and decoder else DEFAULT_DECODER


class Downsampled:
    """An (x, y) series of at most ``capacity`` points covering the whole run (every point when None).

    Points arrive one by one. When the buffer is full, neighbouring pairs are averaged and the bucket
    size doubles, so a run of a million steps is still drawn from start to end with bounded memory.
    """

    def __init__(self, capacity: int | None = STEP_POINTS) -> None:
        self.capacity = None if capacity is None else max(2, capacity - capacity % 2)
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.bucket = 1  # raw points per stored point
        self._pending: list[tuple[float, float]] = []

    def append(self, x: float, y: float) -> None:
        if self.capacity is None:
            self.xs.append(x)
            self.ys.append(y)
            return
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

    def cut(self, last: float) -> None:
        """Forget the points after ``last`` (a resume does them again). A stored point stands for the bucket
        that ends at its x, so one that mixes points from both sides of ``last`` goes as a whole."""
        keep = [i for i, x in enumerate(self.xs) if x <= last]
        if len(keep) < len(self.xs):
            self.xs = [self.xs[i] for i in keep]
            self.ys = [self.ys[i] for i in keep]
        self._pending = [point for point in self._pending if point[0] <= last]

    def __len__(self) -> int:
        return len(self.xs)


def _mean(values: Any) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


@dataclass
class _EpochSteps:
    """What the steps recorded in one epoch add up to; kept per epoch, so that a resume can forget some."""

    last_step: int = 0
    speed_sum: float = 0.0  # over the finite samples/s values
    speeds: int = 0


class RunHistory:
    """What a run's events say about it, folded in by :meth:`apply` in the order they were written.

    ``step_points`` says how much of the per-step series (``loss``, ``accuracy``, ``speed``, ``lr``, ``clock``, all
    against the global step) to keep: every step (None, for plots of a finished run), at most that many
    points (the live lab), or none (0: summary.json and sweeps need only the numbers). Everything else is
    kept the same way in all three.
    """

    def __init__(self, step_points: int | None = None) -> None:
        self.step_points = step_points
        # From the last RunStarted: what this session runs.
        self.name = ""
        self.device: str | None = None
        self.dataset: str | None = None
        self.decoder = DEFAULT_DECODER  # how its accuracies were decoded (train.decoder)
        self.epochs = 0  # planned
        self.steps_per_epoch = 0
        self.num_parameters = 0
        self.started: float | None = None  # time of the first session's RunStarted
        self.resumed: float | None = None  # time of the last resume, if any
        self.resumed_from_epoch: int | None = None
        # Where the run stands.
        self.status = "empty"  # empty | running | completed | stopped | failed
        self.end: RunFinished | RunFailed | None = None  # how the last session ended; None while it runs
        self.last_time: float | None = None  # of the newest event
        self.epoch = 0  # of the newest step (after a resume: the epoch it goes on after)
        self.step = 0
        self.batch = 0
        self.batches = 0
        self._epochs_done = 0
        self.epoch_rows: list[EpochMetrics] = []  # one per evaluation, in order, none of them redone
        self.health_rows: list[HealthReport] = []  # likewise (none in runs from before health reports)
        self.loss = Downsampled(step_points)
        self.accuracy = Downsampled(step_points)
        self.speed = Downsampled(step_points)  # samples/s
        self.lr = Downsampled(step_points)
        self.clock = Downsampled(step_points)  # the event time of each step: plots against wall time
        self._per_epoch: dict[int, _EpochSteps] = {}

    @classmethod
    def of(cls, events: Iterable[Event], step_points: int | None = None) -> RunHistory:
        """The history of an iterable of events."""
        history = cls(step_points)
        for event in events:
            history.apply(event)
        return history

    # -- the fold

    def apply(self, event: Event) -> None:
        """Fold in the next event of the run."""
        self.last_time = event.time
        if self.status == "empty":
            self.status = "running"
        if isinstance(event, StepMetrics):
            self._on_step(event)
        elif isinstance(event, EpochMetrics):
            self._on_epoch(event)
        elif isinstance(event, HealthReport):
            self.health_rows.append(event)
        elif isinstance(event, RunStarted):
            self._on_start(event)
        elif isinstance(event, RunFinished):
            self.status, self.end = event.status, event
        elif isinstance(event, RunFailed):
            self.status, self.end = "failed", event

    def _on_start(self, event: RunStarted) -> None:
        # Any start after the first is a resume, even from epoch 0 (a checkpoint written inside epoch 1).
        if event.start_epoch > 0 or self.started is not None:
            self._forget_after(event.start_epoch)
            self.resumed, self.resumed_from_epoch = event.time, event.start_epoch
        if self.started is None:
            self.started = event.time
        data = event.config.get("data") if isinstance(event.config, dict) else None
        self.name, self.device = event.run_name, event.device
        self.dataset = data.get("dataset") if isinstance(data, dict) else None
        self.decoder = decoder_of(event.config)
        self.epochs, self.steps_per_epoch = event.epochs, event.steps_per_epoch
        self.num_parameters = event.num_parameters
        self.status, self.end = "running", None

    def _forget_after(self, epoch: int) -> None:
        self.epoch_rows = [row for row in self.epoch_rows if row.epoch <= epoch]
        self.health_rows = [row for row in self.health_rows if row.epoch <= epoch]
        self._per_epoch = {e: tally for e, tally in self._per_epoch.items() if e <= epoch}
        last = max((tally.last_step for tally in self._per_epoch.values()), default=0)
        for series in (self.loss, self.accuracy, self.speed, self.lr, self.clock):
            series.cut(last)
        self.epoch, self.step, self.batch = epoch, last, 0
        self._epochs_done = epoch

    def _on_step(self, event: StepMetrics) -> None:
        self.epoch, self.step, self.batch, self.batches = event.epoch, event.step, event.batch, event.batches
        tally = self._per_epoch.setdefault(event.epoch, _EpochSteps())
        tally.last_step = max(tally.last_step, event.step)
        if math.isfinite(event.samples_per_s):
            tally.speed_sum += event.samples_per_s
            tally.speeds += 1
        if self.step_points != 0:
            self.loss.append(event.step, event.loss)
            self.accuracy.append(event.step, event.accuracy)
            self.speed.append(event.step, event.samples_per_s)
            self.lr.append(event.step, event.lr)
            self.clock.append(event.step, event.time)

    def _on_epoch(self, event: EpochMetrics) -> None:
        self.epoch_rows.append(event)
        self._epochs_done = event.epoch
        # The last steps of an epoch cut short by train.max_steps may have gone unlogged; the row knows them.
        tally = self._per_epoch.setdefault(event.epoch, _EpochSteps())
        tally.last_step = max(tally.last_step, event.step)
        self.step = max(self.step, event.step)

    # -- what the faces show

    @property
    def finished(self) -> bool:
        return self.end is not None

    @property
    def error(self) -> str | None:
        return self.end.error if isinstance(self.end, RunFailed) else None

    @property
    def reason(self) -> str | None:
        return self.end.reason if isinstance(self.end, RunFailed) else None

    @property
    def last_epoch(self) -> EpochMetrics | None:
        return self.epoch_rows[-1] if self.epoch_rows else None

    @property
    def health(self) -> HealthReport | None:
        """The last health report (per layer, after the last evaluation); None before one, or in old runs."""
        return self.health_rows[-1] if self.health_rows else None

    @property
    def epochs_done(self) -> int:
        return self.end.epochs_done if isinstance(self.end, RunFinished) else self._epochs_done

    @property
    def steps_done(self) -> int:
        return self.end.steps if isinstance(self.end, RunFinished) else self.step

    @property
    def best_accuracy(self) -> float | None:
        """The best test accuracy so far (as the engine counts it); None before the first evaluation."""
        if isinstance(self.end, RunFinished):
            return self.end.best_accuracy
        return max((row.best_accuracy for row in self.epoch_rows), default=None)

    @property
    def best_epoch(self) -> EpochMetrics | None:
        """The first evaluation that reached the best test accuracy."""
        return max(self.epoch_rows, key=lambda row: row.test_accuracy, default=None)  # max keeps the first

    @property
    def final_test_loss(self) -> float | None:
        if isinstance(self.end, RunFinished) and self.end.final_test_loss is not None:
            return self.end.final_test_loss
        return self.last_epoch.test_loss if self.last_epoch else None

    @property
    def final_test_accuracy(self) -> float | None:
        if isinstance(self.end, RunFinished) and self.end.final_test_accuracy is not None:
            return self.end.final_test_accuracy
        return self.last_epoch.test_accuracy if self.last_epoch else None

    @property
    def wall_time(self) -> float | None:
        """Seconds over every session of an ended run; for one still running, since it first started."""
        end = self.end
        if isinstance(end, RunFinished):
            return end.wall_time
        if isinstance(end, RunFailed) and end.wall_time is not None:
            return end.wall_time
        moment = end.time if end is not None else self.last_time
        # A RunFailed from before they carried their wall time is timed from the start, as a live run is.
        return moment - self.started if self.started is not None and moment is not None else None

    @property
    def mean_samples_per_s(self) -> float | None:
        """The run's samples/s: the mean of its steps' samples/s over the steps that count (a resume forgets
        those it redoes); None before the first step. The console summary, ``snnlab runs show`` and the
        lab's status bar and Training pane all show this one figure."""
        total = sum(tally.speed_sum for tally in self._per_epoch.values())
        count = sum(tally.speeds for tally in self._per_epoch.values())
        return total / count if count else None

    def columns(self) -> dict[str, Any]:
        """The history column-wise, for plotting.

        ``{"steps": {...}, "epochs": {...}}``: ``steps`` has lists ``step, epoch, loss, accuracy,
        samples_per_s, lr`` (as many as ``step_points`` kept), ``epochs`` has lists ``epoch, step,
        test_loss, test_accuracy, train_loss, train_accuracy, epoch_time`` plus ``spike_rates: {layer:
        [rate or None per epoch]}``.
        """
        xs = self.loss.xs
        steps = {
            "step": list(xs),
            "epoch": self._epochs_of(xs),
            "loss": list(self.loss.ys),
            "accuracy": list(self.accuracy.ys),
            "samples_per_s": list(self.speed.ys),
            "lr": list(self.lr.ys),
        }
        keys = ("epoch", "step", "test_loss", "test_accuracy", "train_loss", "train_accuracy", "epoch_time")
        epochs: dict[str, Any] = {key: [getattr(row, key) for row in self.epoch_rows] for key in keys}
        layers = dict.fromkeys(layer for row in self.epoch_rows for layer in row.spike_rates)
        epochs["spike_rates"] = {layer: [row.spike_rates.get(layer) for row in self.epoch_rows] for layer in layers}
        return {"steps": steps, "epochs": epochs}

    def _epochs_of(self, steps: list[float]) -> list[int]:
        # The epoch of a (stored) step: the first whose recorded steps reach it. Epochs hold consecutive
        # steps, so for every step logged this is the epoch its StepMetrics named.
        ends = sorted((tally.last_step, epoch) for epoch, tally in self._per_epoch.items())
        if not ends:
            return [0] * len(steps)
        lasts = [last for last, _ in ends]
        return [ends[min(bisect_left(lasts, step), len(ends) - 1)][1] for step in steps]
