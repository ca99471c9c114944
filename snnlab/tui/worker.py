"""Running the engine away from the UI, and every other source of events the lab can show.

All sources share one small interface, :class:`EventSource`: the app drains them on a timer and
applies what it gets in one batch (Memray's pull model), so a burst of steps costs one redraw.

- :class:`TrainingJob` trains a config. By default in a child process started with the ``spawn``
  context: the child imports torch, runs :func:`snnlab.engine.trainer.train` with a
  :class:`~snnlab.runs.RunWriter` (so the run directory is complete, exactly as with ``snnlab run``)
  and a sink that puts each event on a ``multiprocessing.Queue``; ``stop`` and ``pause`` are
  ``multiprocessing.Event``\\ s the engine checks at batch boundaries. A process keeps the training
  loop's Python work off the UI's GIL, lets the UI notice a child that dies (segfault, OOM killer),
  and runs at a lower CPU priority so keys are served first. ``mode="thread"`` is kept for
  measurement (``benchmarks/bench_tui_latency.py``) and for hosts without process support.
- :class:`FollowSource` tails a run directory's ``events.jsonl`` (``snnlab watch``), from a thread.
- :class:`ReplaySource` hands out a fixed list of events: tests and snapshots use it.

This module does not import textual, so the spawned child stays lean.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from snnlab.engine.events import BadLines, Event, FailureReason, ProbeRecorded, RunFailed, RunFinished, RunStarted

TERMINAL = (RunFinished, RunFailed)
LOG_FILE = "worker.log"
CHILD_NICE = 5  # the child yields CPU to the UI process; its throughput barely changes on a busy core


class EventSource(Protocol):
    """Anything the app can drain events from."""

    def drain(self, limit: int = 5000) -> list[Event]:
        """Events that arrived since the last call (at most ``limit``); never blocks."""
        ...

    def failure(self) -> str | None:
        """A message when the producer died without saying why (no RunFinished / RunFailed)."""
        ...

    def close(self) -> None: ...


def _drain_queue(q: Any, limit: int) -> list[Event]:
    out: list[Event] = []
    while len(out) < limit:
        try:
            out.append(q.get_nowait())
        except (queue.Empty, EOFError, OSError):
            break
    return out


def plain_probe(event: ProbeRecorded) -> ProbeRecorded:
    """A copy of ``event`` whose tensors are numpy arrays: they pickle by value through a queue (torch's
    shared-memory handles would need the child alive when the UI unpickles them)."""
    layers = {
        name: {k: (v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in layer.items()}
        for name, layer in event.layers.items()
    }
    return ProbeRecorded(
        epoch=event.epoch,
        step=event.step,
        samples=list(event.samples),
        labels=list(event.labels),
        layers=layers,
        layer_names=list(event.layer_names),
        path=event.path,
        time=event.time,
    )


def run_training(
    config_data: dict[str, Any],
    run_path: str,
    put: Callable[[Event], None],
    stop: Any,
    pause: Any,
    resume: bool = False,
) -> None:
    """Train ``config_data`` into the run directory ``run_path``, relaying every event to ``put``; with
    ``resume``, continue the run there from its checkpoint with its own config, as ``snnlab run --resume``.

    Shared by the child process and the thread mode. Anything the engine does not turn into a
    RunFailed itself (a bug, an import error) still ends as one, in the queue and in the run directory.
    A run that may not be continued (in use, no usable checkpoint, no epochs left) ends as a RunFailed
    in the queue only: its folder stays as it was.
    """
    from snnlab.config import ConfigError
    from snnlab.runs import RunDirError, lock_run

    checkpoint = None
    try:
        if resume:
            from snnlab.resuming import open_resume

            target = open_resume(run_path, None, [])  # every check `snnlab run --resume` makes, and its lock
            config_data, checkpoint, lock = target.config.to_dict(), target.checkpoint, target.lock
        else:
            lock = lock_run(run_path)  # the same claim `snnlab run` takes: one training process per run directory
    except (ConfigError, RunDirError) as exc:
        put(RunFailed(error=str(exc), reason=FailureReason.CONFIG))  # the folder is someone else's: write nothing there
        return
    assert lock is not None
    with lock:
        _train_into(config_data, run_path, put, stop, pause, checkpoint)


def _train_into(
    config_data: dict[str, Any],
    run_path: str,
    put: Callable[[Event], None],
    stop: Any,
    pause: Any,
    checkpoint: Path | None = None,
) -> None:
    from snnlab.runs import RunWriter, write_config

    writer = RunWriter(run_path)

    def save_config(event: Event) -> None:
        # As `snnlab run --resume`: a resume's config reaches config.yaml once the engine has accepted it.
        if isinstance(event, RunStarted):
            write_config(run_path, event.config)

    def relay(event: Event) -> None:
        put(plain_probe(event) if isinstance(event, ProbeRecorded) else event)

    from snnlab.interop import loggers

    extra: list[loggers.LoggerSink] = []
    try:
        from snnlab.config import config_from_dict
        from snnlab.engine.trainer import train

        config = config_from_dict(config_data)
        loggers.check(config.run.loggers)
        extra = loggers.sinks(config.run.loggers, run_path)  # run.loggers, as `snnlab run` adds them
        sinks: list[Callable[[Event], None]] = [save_config, writer] if checkpoint else [writer]
        sinks += [*extra, relay]
        train(config, sinks, stop=stop, pause=pause, run_dir=run_path, run_name=Path(run_path).name, resume=checkpoint)
    except loggers.LoggerUnavailable as exc:
        failed = RunFailed(error=str(exc), reason=FailureReason.CONFIG)
        writer(failed)
        put(failed)
    except BaseException as exc:  # noqa: BLE001 - the UI must hear about every way this can end
        message = f"training crashed: {type(exc).__name__}: {exc}".splitlines()[0]
        failed = RunFailed(error=message, reason=FailureReason.ERROR)
        writer(failed)
        put(failed)
    finally:
        for logger in extra:
            logger.close()
        writer.close()


def _child_main(
    config_data: dict[str, Any], run_path: str, events: Any, stop: Any, pause: Any, resume: bool = False
) -> None:
    # The child shares the terminal with the TUI: anything it printed (a torch warning, a traceback from
    # a native crash) would scribble over the screen. Its output goes to worker.log in the run directory.
    try:
        log = os.open(os.path.join(run_path, LOG_FILE), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
    except OSError:
        pass
    if hasattr(os, "nice"):
        try:
            os.nice(CHILD_NICE)
        except OSError:
            pass
    _leave_a_core_to_the_ui()
    try:
        run_training(config_data, run_path, events.put, stop, pause, resume)
    finally:
        # Flush the queue's feeder thread before exiting, so the last events reach the UI.
        events.close()
        events.join_thread()


def _leave_a_core_to_the_ui() -> None:
    """Train on one thread fewer than the machine has cores (unless OMP_NUM_THREADS says otherwise).

    torch's parallel regions end at a barrier: with a thread on every core, each redraw of the UI (on one of
    them) holds back a thread of the niced child and the whole region waits for it. Measured with
    benchmarks/bench_tui_latency.py on 2 cores: switching panes cut the training from 91 to 7 steps/s."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    import torch

    torch.set_num_threads(min(torch.get_num_threads(), max(1, cores - 1)))


def _thread_main(*args: Any) -> None:
    _leave_a_core_to_the_ui()  # the thread's torch is the UI process's: the same barrier applies
    run_training(*args)


@contextlib.contextmanager
def real_std_streams() -> Iterator[None]:
    """Textual replaces sys.stdout/stderr with objects without a usable file descriptor, which
    multiprocessing needs to start its resource tracker and the child; lend it the real ones."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = sys.__stdout__ or saved[0], sys.__stderr__ or saved[1]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


class TrainingJob:
    """One training run in a child process (``mode="process"``) or a thread (``mode="thread"``)."""

    def __init__(
        self, config_data: dict[str, Any], run_path: str | Path, mode: str = "process", resume: bool = False
    ) -> None:
        """``resume``: continue the run in ``run_path`` from its checkpoint (``config_data`` is not used)."""
        self.config_data = config_data
        self.run_path = str(run_path)
        self.mode = mode
        self.ended = False  # a RunFinished / RunFailed came through
        if mode == "process":
            ctx = mp.get_context("spawn")  # fork would copy the UI's threads and terminal state
            with real_std_streams():
                self._queue: Any = ctx.Queue()
                self._stop: Any = ctx.Event()
                self._pause: Any = ctx.Event()
            self._runner: Any = ctx.Process(
                target=_child_main,
                args=(config_data, self.run_path, self._queue, self._stop, self._pause, resume),
                name="snnlab-train",
                daemon=True,
            )
        elif mode == "thread":
            self._queue = queue.Queue()
            self._stop, self._pause = threading.Event(), threading.Event()
            self._runner = threading.Thread(
                target=_thread_main,
                args=(config_data, self.run_path, self._queue.put, self._stop, self._pause, resume),
                name="snnlab-train",
                daemon=True,
            )
        else:
            raise ValueError(f"mode must be 'process' or 'thread', not {mode!r}")

    def start(self) -> None:
        with real_std_streams():
            self._runner.start()

    def pause(self) -> None:
        self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

    def stop(self) -> None:
        """Ask the engine to stop at the next batch; it checkpoints to ``checkpoints/last.pt``."""
        self._stop.set()
        self._pause.clear()

    @property
    def paused(self) -> bool:
        return self._pause.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def alive(self) -> bool:
        return self._runner.is_alive()

    def drain(self, limit: int = 5000) -> list[Event]:
        events = _drain_queue(self._queue, limit)
        if any(isinstance(e, TERMINAL) for e in events):
            self.ended = True
        return events

    def failure(self) -> str | None:
        if self.ended or self.alive():
            return None
        code = getattr(self._runner, "exitcode", None)
        if code is None and self.mode == "process":
            return None  # not started yet
        return f"the training process died without a word (exit code {code}); the run directory keeps what it wrote"

    def close(self, timeout: float = 10.0) -> None:
        """Stop (with a checkpoint) and wait; kill the child if it does not end in ``timeout`` seconds."""
        if self.alive():
            self.stop()
            self._runner.join(timeout)
        if self.mode == "process" and self._runner.is_alive():
            self._runner.kill()
            self._runner.join(2)

    def kill(self) -> None:
        """Simulate a crash (tests): end the child at once, without a checkpoint."""
        if self.mode == "process" and self._runner.is_alive():
            self._runner.kill()
            self._runner.join(5)


class FollowSource:
    """Events of a run directory, live: ``follow()`` runs in a thread worker and feeds a queue."""

    def __init__(self, run_path: str | Path, poll: float = 0.2) -> None:
        self.run_path = Path(run_path)
        self.poll = poll
        self.bad_lines = BadLines()  # lines of events.jsonl skipped so far
        self._queue: queue.Queue[Event] = queue.Queue()
        self._stop = threading.Event()

    def follow(self) -> None:
        from snnlab.runs import follow_events

        for event in follow_events(self.run_path, poll=self.poll, stop=self._stop.is_set, bad=self.bad_lines):
            self._queue.put(event)

    def drain(self, limit: int = 5000) -> list[Event]:
        return _drain_queue(self._queue, limit)

    def failure(self) -> str | None:
        return None

    def close(self) -> None:
        self._stop.set()


class ReplaySource:
    """A fixed list of events, handed out ``per_drain`` at a time (all at once by default)."""

    def __init__(self, events: list[Event], per_drain: int | None = None, run_path: str | Path | None = None) -> None:
        self._events = list(events)
        self.per_drain = per_drain
        self.run_path = Path(run_path) if run_path else None

    def drain(self, limit: int = 5000) -> list[Event]:
        n = min(limit, self.per_drain or len(self._events))
        out, self._events = self._events[:n], self._events[n:]
        return out

    def failure(self) -> str | None:
        return None

    def close(self) -> None:
        self._events.clear()
