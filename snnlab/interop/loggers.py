"""The extra sinks a config's ``run.loggers`` asks for. Each comes with an optional extra, checked before a
run starts (:func:`check`) so that a missing package is one line, not a run that fails at its first event."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Protocol

from snnlab.engine.events import Event


class LoggerSink(Protocol):
    """A sink that holds files open until :meth:`close`."""

    def __call__(self, event: Event) -> None: ...

    def close(self) -> None: ...


class LoggerUnavailable(RuntimeError):
    """A logger was asked for whose package is not installed; the message says what to install (one line)."""


def check(names: Iterable[str]) -> None:
    """Raise :class:`LoggerUnavailable` for the first of ``names`` that cannot run here."""
    for name in names:
        if name == "tensorboard":
            from snnlab.interop import tensorboard

            tensorboard.require()


def sinks(names: Iterable[str], run_dir: str | os.PathLike[str]) -> list[LoggerSink]:
    """A sink for each logger in ``names``, writing into the run directory ``run_dir``."""
    made: list[LoggerSink] = []
    for name in dict.fromkeys(names):
        if name == "tensorboard":
            from snnlab.interop.tensorboard import TensorBoardSink

            made.append(TensorBoardSink(run_dir))
    return made
