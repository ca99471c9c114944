"""Surrogate curves for the Surrogates pane, computed away from the UI process.

The formulas live in one place, :mod:`snnlab.engine.surrogates`, and are written with torch. Importing
torch costs seconds and hundreds of megabytes, so the UI never does: the curves come from one child
process (``spawn``), shared by every lab in the process and started on the first request. The UI draws
its first frame without them and fills them in when they arrive.

This module does not import textual or torch, so the child starts lean.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from snnlab.tui.worker import real_std_streams

X_RANGE = (-2.0, 2.0)
POINTS = 161

Curve = tuple[list[float], list[float], list[float]]
"""x, smooth(x) and the surrogate gradient at x."""
Request = tuple[str, dict[str, float]]
"""A surrogate's name and its parameters."""


def curve(name: str, params: dict[str, float]) -> Curve:
    """x, smooth(x), grad(x) on :data:`X_RANGE` for one surrogate (raises ValueError on bad params)."""
    import torch

    from snnlab.engine import surrogates

    fn = surrogates.get(name, **params)
    x = torch.linspace(*X_RANGE, POINTS)
    return x.tolist(), fn.smooth(x).tolist(), fn.grad(x).tolist()


def compute(requests: Sequence[Request]) -> list[Curve | str]:
    """:func:`curve` of each request; a request with bad parameters gives its error message instead."""
    out: list[Curve | str] = []
    for name, params in requests:
        try:
            out.append(curve(name, params))
        except ValueError as exc:
            out.append(str(exc))
    return out


def _warm() -> None:
    import torch  # noqa: F401 - the first request should not wait for this

    import snnlab.engine.surrogates  # noqa: F401


class CurveService:
    """One child process that answers :func:`compute` requests, in order."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                with real_std_streams():  # the child starts at the first submit
                    self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
                    self._pool.submit(_warm)
            return self._pool

    def start(self) -> None:
        """Start the child now (it imports torch), so that the first request finds it ready."""
        self._executor()

    def request(self, requests: Sequence[Request], done: Callable[[list[Curve | str] | BaseException], object]) -> None:
        """Compute ``requests`` in the child; ``done`` gets the results, or the exception that prevented
        them (a dead child), from a thread that is not the caller's."""
        try:
            future = self._executor().submit(compute, list(requests))
        except RuntimeError as exc:  # shut down, or the child died and broke the pool
            with self._lock:
                self._pool = None  # start a fresh one next time
            done(exc)
            return

        def finished(f: Future[list[Curve | str]]) -> None:
            if f.cancelled():  # the service closed first: nobody waits for this any more
                return
            error = f.exception()
            if error is not None:
                with self._lock:
                    if self._pool is not None and getattr(self._pool, "_broken", False):
                        self._pool = None
            done(error if error is not None else f.result())

        future.add_done_callback(finished)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


_service: CurveService | None = None


def service() -> CurveService:
    """The process's one :class:`CurveService`."""
    global _service
    if _service is None:
        _service = CurveService()
        atexit.register(_service.close)
    return _service
