"""Events: everything observable leaves the engine as one of these plain dataclasses.

Sinks are callables ``sink(event) -> None``. The run directory writer stores each event as one JSON
line (``Event.to_dict``); tensors carried by :class:`ProbeRecorded` are written beside it by the writer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar


@dataclass
class Event:
    """Base of all events. ``time`` is the wall-clock time (``time.time()``) at which it happened."""

    kind: ClassVar[str] = "event"
    time: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **asdict(self)}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Event:
        data = dict(data)
        cls = EVENT_TYPES[data.pop("event")]
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run_name: str
    device: str
    config: dict[str, Any]
    num_parameters: int
    train_size: int
    test_size: int
    steps_per_epoch: int
    epochs: int
    start_epoch: int = 0


@dataclass
class StepMetrics(Event):
    kind: ClassVar[str] = "step"
    epoch: int
    step: int  # global optimizer step, counted from 1
    batch: int  # batch index inside the epoch, counted from 1
    batches: int
    loss: float
    accuracy: float
    samples_per_s: float
    lr: float
    step_time: float  # seconds for forward + loss + backward + optimizer step


@dataclass
class EpochMetrics(Event):
    kind: ClassVar[str] = "epoch"
    epoch: int
    step: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    spike_rates: dict[str, float]  # mean spikes per neuron per time step, per spiking layer
    epoch_time: float
    best_accuracy: float


@dataclass
class ProbeRecorded(Event):
    """Membrane and spikes of chosen neurons on fixed test samples.

    ``layers`` maps a layer name to ``{"membrane": [T, S, N], "spikes": [T, S, N], "threshold": float,
    "neurons": [N indices]}``; ``samples`` are the S test indices and ``labels`` their classes.
    Tensors are kept in memory only; ``to_dict`` drops them and the writer stores them in ``path``.
    """

    kind: ClassVar[str] = "probe"
    epoch: int
    step: int
    samples: list[int]
    labels: list[int]
    layers: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    layer_names: list[str] = field(default_factory=list)
    path: str | None = None

    def __post_init__(self) -> None:
        if self.layers and not self.layer_names:
            self.layer_names = list(self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.kind,
            "time": self.time,
            "epoch": self.epoch,
            "step": self.step,
            "samples": self.samples,
            "labels": self.labels,
            "layer_names": self.layer_names,
            "path": self.path,
        }


@dataclass
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: str  # "completed" | "stopped"
    epochs_done: int
    steps: int
    best_accuracy: float
    final_test_accuracy: float | None
    final_test_loss: float | None
    wall_time: float  # seconds, over all sessions of the run (a resume carries the earlier ones in its checkpoint)


@dataclass
class RunFailed(Event):
    kind: ClassVar[str] = "run_failed"
    error: str  # one line, for people
    reason: str  # "nan_loss" | "out_of_memory" | "data" | "write" | "error"
    epoch: int = 0
    step: int = 0
    wall_time: float | None = None  # over all sessions of the run, like RunFinished's; None in older files


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls for cls in (RunStarted, StepMetrics, EpochMetrics, ProbeRecorded, RunFinished, RunFailed)
}

Sink = Callable[[Event], None]
