"""A kernel library that is set up on first use, once per process, and remembers why it is not there.

``native.py`` (the C scan) and ``cuda.py`` (the Triton scan) both build something expensive the first time
a scan asks for it, may find it missing (no compiler, no Triton, switched off by an environment variable)
or broken later (a kernel that fails to launch), and then say why the torch scan runs instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from snnlab.formatting import first_line

T = TypeVar("T")


class Unavailable(Exception):
    """Raised by a build function: the library cannot be used here; the message says why, in one line."""


class LazyLibrary(Generic[T]):
    """``build()`` is called by the first :meth:`get`, under a lock; its result (or ``None`` and the reason,
    when it raised :class:`Unavailable` or the switch ``<switch>=0`` is set) is kept for the process."""

    def __init__(self, switch: str, build: Callable[[], T]) -> None:
        self.switch = switch
        self._build = build
        self._lock = threading.Lock()
        self._tried = False
        self.value: T | None = None
        self.why_not = ""

    def get(self) -> T | None:
        with self._lock:
            if not self._tried:
                self._tried = True
                if os.environ.get(self.switch, "1") == "0":
                    self.why_not = f"{self.switch}=0"
                else:
                    try:
                        self.value = self._build()
                    except Unavailable as exc:
                        self.why_not = first_line(exc)
            return self.value

    def give_up(self, why: str) -> None:
        """Stop using the library from now on (it failed at run time), and say why."""
        with self._lock:
            self._tried = True
            self.value = None
            self.why_not = why.splitlines()[0] if why else why
