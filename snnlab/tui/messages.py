"""Messages of the lab. Producers (timers draining the engine, thread workers, widgets) post these;
``@on`` handlers in the app own every change of state they imply."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

from snnlab.engine.events import Event

if TYPE_CHECKING:  # every widget imports this module: it names these types without loading their modules
    from snnlab.tui.compare import SweepFollower
    from snnlab.tui.metrics import RunMetrics


class EventsArrived(Message):
    """A batch of engine events drained from the event source, in order."""

    def __init__(self, events: list[Event]) -> None:
        super().__init__()
        self.events = events


class SourceFailed(Message):
    """The producer of events died without a RunFinished / RunFailed (a killed child process)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class OverlayLoaded(Message):
    """A finished run read from disk, to overlay on the Training plots."""

    def __init__(self, name: str, metrics: RunMetrics) -> None:
        super().__init__()
        self.name = name
        self.metrics = metrics


class SweepLoaded(Message):
    """A sweep folder's runs read from disk, for the Surrogates pane; ``follower`` goes on following it."""

    def __init__(self, name: str, follower: SweepFollower) -> None:
        super().__init__()
        self.name = name
        self.follower = follower


class ProbeLoaded(Message):
    """Probe tensors loaded from a run directory by a thread worker (``layers`` None on ``error``)."""

    def __init__(self, key: tuple[int, int], layers: dict[str, Any] | None, error: str | None = None) -> None:
        super().__init__()
        self.key, self.layers, self.error = key, layers, error


class PresetChosen(Message):
    """The user picked a bundled preset in the Network pane."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class CompareRequested(Message):
    """Train the current config once per ``(surrogate, params)``."""

    def __init__(self, choices: list[tuple[str, dict[str, float]]]) -> None:
        super().__init__()
        self.choices = choices
