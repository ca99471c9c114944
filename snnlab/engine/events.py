"""Events: everything observable leaves the engine as one of these plain dataclasses.

Sinks are callables ``sink(event) -> None``. The run directory writer stores each event as one JSON
line (``Event.to_dict``); tensors carried by :class:`ProbeRecorded` are written beside it by the writer.
Every reader turns such a line back into an event with :func:`parse_event_line`, which checks it against
the field types below (strictly: ``"NaN"`` or ``"fast"`` is not a number) and skips what does not fit.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, TypeAdapter, ValidationError

# The field types say what a written event may hold. Plain floats take NaN and infinities, which json
# writes as bare NaN / Infinity: an evaluation of a diverging network can report an infinite test loss,
# and a step timed at zero seconds an infinite speed. Counts fit in 64 bits, accuracies are fractions,
# and a timestamp is a real time.
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Timestamp = Annotated[float, Field(allow_inf_nan=False)]


class FailureReason(StrEnum):
    """Why a run failed. Its values are the strings ``RunFailed.reason`` holds in events.jsonl."""

    NAN_LOSS = "nan_loss"
    OUT_OF_MEMORY = "out_of_memory"
    DATA = "data"  # a dataset missing or unreadable
    CONFIG = "config"  # a config that cannot run (checked with torch: shapes, devices' features, a resume)
    DEVICE = "device"  # the chosen device is not there
    WRITE = "write"  # a file of the run could not be written
    ERROR = "error"  # anything else (a bug)

    @property
    def before_start(self) -> bool:
        """The run could not start with this config, data or device: the user's to fix (exit 2)."""
        return self in (FailureReason.DATA, FailureReason.CONFIG, FailureReason.DEVICE)

    @classmethod
    def of(cls, text: str | None) -> FailureReason:
        """The reason a written event names; ERROR for one this version does not know."""
        try:
            return cls(text or "")
        except ValueError:
            return cls.ERROR


@dataclass
class Event:
    """Base of all events. ``time`` is the wall-clock time (``time.time()``) at which it happened."""

    kind: ClassVar[str] = "event"
    time: Timestamp = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **asdict(self)}


@dataclass
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run_name: str
    device: str
    config: dict[str, Any]
    num_parameters: Count
    train_size: Count
    test_size: Count
    steps_per_epoch: Count
    epochs: Count
    start_epoch: Count = 0


@dataclass
class StepMetrics(Event):
    kind: ClassVar[str] = "step"
    epoch: Count
    step: Count  # global optimizer step, counted from 1
    batch: Count  # batch index inside the epoch, counted from 1
    batches: Count
    loss: float
    accuracy: Fraction
    samples_per_s: float
    lr: float
    step_time: float  # seconds for forward + loss + backward + optimizer step


@dataclass
class EpochMetrics(Event):
    kind: ClassVar[str] = "epoch"
    epoch: Count
    step: Count
    train_loss: float
    train_accuracy: Fraction
    test_loss: float
    test_accuracy: Fraction
    spike_rates: dict[str, float]  # mean spikes per neuron per time step, per spiking layer
    epoch_time: float
    best_accuracy: Fraction


@dataclass
class ProbeRecorded(Event):
    """Membrane and spikes of chosen neurons on fixed test samples.

    ``layers`` maps a layer name to ``{"membrane": [T, S, N], "spikes": [T, S, N], "threshold": float | None,
    "neurons": [N indices], "raster": [T, S, R], "raster_neurons": [R indices]}``: membrane and spikes of the
    traced neurons, and the spikes of every neuron (at most 4096, evenly spaced) for the raster. Probes
    recorded before ``raster_neurons`` existed have R = all neurons when the layer had at most 4096.
    ``samples`` are the S test indices and ``labels`` their classes.
    Tensors are kept in memory only; ``to_dict`` drops them and the writer stores them in ``path``.
    """

    kind: ClassVar[str] = "probe"
    epoch: Count
    step: Count
    samples: list[Count]
    labels: list[Count]
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
class LayerHealth:
    """One layer's health at an evaluation (see :mod:`snnlab.engine.health`). None where a number does not
    apply: a readout that never fires has no silent or saturated share, a layer without weights no gradient
    norm, a neuron without synapses before it no SynOps."""

    silent: Fraction | None  # share of neurons that never fired over the whole evaluation
    saturated: Fraction | None  # share that fired at every step of every evaluated sample
    rate: float | None  # mean spikes per neuron per step
    surrogate_grad: float | None  # mean |dspike/dmembrane| the surrogate gave on sampled training steps
    weight_grad_norm: float | None  # L2 norm of the layer's weight (and bias) gradient, mean over sampled steps
    synops: float | None  # synaptic operations per sample of the synapses into this layer


@dataclass
class HealthWarning:
    """A problem of one layer, with a one-line message that says what to try (``fc2: 97% silent: ...``)."""

    layer: str
    problem: Literal["silent", "saturated", "vanishing_gradient"]
    message: str


@dataclass
class HealthReport(Event):
    """Per layer, why the network may not learn: written after each evaluation (``run.health``).

    ``by_layer`` holds the spiking layers and the layers with synapses, in network order; ``synops`` is the
    total synaptic operations per sample; ``warnings`` the layers past a threshold of ``run.health``.
    """

    kind: ClassVar[str] = "health"
    epoch: Count
    step: Count
    by_layer: dict[str, LayerHealth]
    synops: float
    warnings: list[HealthWarning] = field(default_factory=list)


@dataclass
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: Literal["completed", "stopped"]
    epochs_done: Count
    steps: Count
    best_accuracy: Fraction
    final_test_accuracy: Fraction | None
    final_test_loss: float | None
    wall_time: float  # seconds, over all sessions of the run (a resume carries the earlier ones in its checkpoint)


@dataclass
class RunFailed(Event):
    kind: ClassVar[str] = "run_failed"
    error: str  # one line, for people
    reason: str  # a FailureReason's value; kept a plain string so that any written reason still reads
    epoch: Count = 0
    step: Count = 0
    wall_time: float | None = None  # over all sessions of the run, like RunFinished's; None in older files


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (RunStarted, StepMetrics, EpochMetrics, ProbeRecorded, HealthReport, RunFinished, RunFailed)
}

Sink = Callable[[Event], None]


class EventError(ValueError):
    """A line of events.jsonl that does not hold an event this version of snnlab can read."""


@dataclass
class BadLines:
    """A tally of the lines a reader skipped, so that it can say how many it did not show."""

    count: int = 0
    first_error: str | None = None  # why the first one was skipped, for people

    def __str__(self) -> str:
        return f"{self.count} bad line{'s' if self.count != 1 else ''} in events.jsonl skipped"


def _as_written(data: Any) -> Any:
    # What the run writer puts on a line beyond the fields: always a time (an event without one would get
    # the reader's clock), never probe tensors (they live in probes/, and a JSON imitation of them would
    # be taken for the real thing by the Inside view).
    if isinstance(data, dict):
        if "time" not in data:
            raise ValueError("it has no time")
        data = {k: v for k, v in data.items() if k != "layers"}
    return data


def _event_kind(data: Any) -> str | None:
    return data.get("event") if isinstance(data, dict) else None


@functools.cache
def _line_adapter() -> TypeAdapter[Event]:
    # Built on first use: the schema costs a few milliseconds that a process which only trains never pays.
    members = tuple(Annotated[cls, Tag(kind)] for kind, cls in EVENT_TYPES.items())
    # Union[...] of a tuple built at run time: there is no X | Y spelling for that.
    line_type = Annotated[Union[members], Discriminator(_event_kind), BeforeValidator(_as_written)]  # type: ignore[valid-type]  # noqa: UP007
    return TypeAdapter(line_type)


def event_from_json(line: str | bytes) -> Event:
    """The event on one line of events.jsonl, checked field by field in strict JSON mode.

    Raises:
        EventError: the line is not JSON, not an object, of an unknown kind, or a field is missing or of
            the wrong type (a string where a number belongs, a fraction above 1, a count below 0, ...).
    """
    try:
        return _line_adapter().validate_json(line, strict=True)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        if error["type"] == "union_tag_invalid":
            raise EventError(f"unknown event kind '{error['ctx']['tag']}'") from None
        if error["type"] == "union_tag_not_found":
            raise EventError('not an event: no "event" key naming its kind') from None
        where = ".".join(str(part) for part in error["loc"][1:])  # loc[0] is the event kind
        raise EventError(f"{where}: {error['msg']}" if where else error["msg"]) from None


def parse_event_line(line: str | bytes, bad: BadLines | None = None) -> Event | None:
    """The event on one line of events.jsonl, or None when the line holds none (blank lines included).

    This is the one way every reader (``runs show``, the lab, ``snnlab watch``, sweeps) turns a line into an
    event, so that a damaged line, or one written by a newer snnlab, is skipped the same way everywhere
    instead of breaking whichever view met it first. Skipped lines are counted in ``bad`` if given.
    """
    if not line.strip():
        return None
    try:
        return event_from_json(line)
    except EventError as exc:
        if bad is not None:
            bad.count += 1
            bad.first_error = bad.first_error or str(exc)
        return None
