"""The run directory: the durable form of a run's events, readable by every face.

Layout (see ARCHITECTURE.md)::

    runs/<name>-<YYYYmmdd-HHMMSS>/
      config.yaml     the fully resolved config
      events.jsonl    one event per line, append-only, flushed per event
      probes/         membrane/spike recordings, bounded in number
      checkpoints/    written by the engine's checkpoint module
      summary.json    status, best/last metrics, timings, device (replaced atomically)
      .lock           held (flock) by the one process training in the folder; holds its pid

Writing: :class:`RunDir` creates or reopens the folder; :class:`RunWriter` is the sink that fills it.
:func:`lock_run` keeps a second process (a resume, the lab) from training in a folder already in use.
Reading: :func:`read_events`, :func:`read_history` (the events folded into the numbers of the run, see
``history.py``), :func:`follow_events` (live runs), :func:`list_runs`, :func:`find_run`, :func:`load_probe`
and :func:`metric_history`. This module stays free of textual/rich so the engine side,
the CLI and the TUI can all use it; torch is imported only where probes are saved or loaded.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from snnlab.engine.events import BadLines, Event, ProbeRecorded, RunFailed, RunFinished, StepMetrics, parse_event_line
from snnlab.engine.files import WriteError, atomic_write
from snnlab.history import RunHistory

CONFIG_FILE = "config.yaml"
EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
SWEEP_FILE = "sweep.yaml"  # marks a folder of runs made by `snnlab sweep` (see sweep.py)
PROBES_DIR = "probes"
CHECKPOINTS_DIR = "checkpoints"
MAX_PROBES = 50

_PROBE_NAME = re.compile(r"^probe-e(\d+)-s(\d+)\.pt$")


class RunDirError(Exception):
    """A run directory cannot be created, opened or read; the message is one line meant for people."""


class RunNotFoundError(RunDirError):
    """``find_run`` could not resolve a name to exactly one run."""


class RunInUseError(RunDirError):
    """Another process is training in the run directory (:func:`lock_run`)."""


# --------------------------------------------------------------------------------------------- layout


def _safe_name(name: str) -> str:
    # Run names come from configs and the command line; keep them to one harmless path component.
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return cleaned or "run"


def _os_reason(error: OSError) -> str:
    return error.strerror or str(error)


def folder_name(name: str, now: float | None = None) -> str:
    """``<name>-<YYYYmmdd-HHMMSS>``: the folder of a run named ``name`` started at ``now`` (default: now),
    before any ``-2`` that tells apart two runs of one name started in the same second."""
    return f"{_safe_name(name)}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"


def _fill(path: Path, config: dict[str, Any]) -> None:
    # What a new run's folder holds before its first event.
    (path / PROBES_DIR).mkdir()
    (path / CHECKPOINTS_DIR).mkdir()
    with open(path / CONFIG_FILE, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    (path / EVENTS_FILE).touch()


class RunDir:
    """One run's folder. ``RunDir(runs_dir, name, config)`` creates a fresh, uniquely named one.

    The folder is ``<runs_dir>/<name>-<YYYYmmdd-HHMMSS>``; if that exists (two runs started in the same
    second) ``-2``, ``-3``, ... is appended. Use :meth:`open` to reattach to an existing run (resume).

    Raises:
        RunDirError: when ``runs_dir`` cannot be created or written to.
    """

    def __init__(
        self,
        runs_dir: str | os.PathLike[str],
        name: str,
        config: dict[str, Any],
        *,
        now: float | None = None,
    ) -> None:
        root = Path(runs_dir).expanduser()
        base = folder_name(name, now)
        try:
            root.mkdir(parents=True, exist_ok=True)
            path = root / base
            suffix = 1
            while True:
                # mkdir without exist_ok is the atomic claim: two processes never get the same folder.
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    suffix += 1
                    path = root / f"{base}-{suffix}"
            _fill(path, config)
        except OSError as e:
            raise RunDirError(
                f"cannot create run directory {root}: {_os_reason(e)}; set run.runs_dir to a writable folder"
            ) from None
        self._path = path

    @classmethod
    def create_at(cls, path: str | os.PathLike[str], config: dict[str, Any]) -> RunDir:
        """A new run in exactly ``path``, for a caller that chose the folder itself: ``snnlab sweep`` names
        each run's folder (with :func:`folder_name`) so that it knows where the run went without asking it.

        Raises:
            RunDirError: when ``path`` exists already or cannot be created.
        """
        path = Path(path).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()  # never reuse a folder: it could hold another run
            _fill(path, config)
        except FileExistsError:
            raise RunDirError(f"cannot create run directory {path}: it exists already") from None
        except OSError as e:
            raise RunDirError(f"cannot create run directory {path}: {_os_reason(e)}") from None
        self = cls.__new__(cls)
        self._path = path
        return self

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunDir:
        """Reattach to an existing run folder (for resume); recreates missing ``probes/``/``checkpoints/``."""
        path = Path(path).expanduser()
        if not path.is_dir():
            raise RunDirError(f"run directory {path} does not exist")
        if not ((path / EVENTS_FILE).exists() or (path / CONFIG_FILE).exists()):
            raise RunDirError(f"{path} is not a run directory (no {EVENTS_FILE} or {CONFIG_FILE})")
        try:
            (path / PROBES_DIR).mkdir(exist_ok=True)
            (path / CHECKPOINTS_DIR).mkdir(exist_ok=True)
        except OSError as e:
            raise RunDirError(f"cannot write to run directory {path}: {_os_reason(e)}") from None
        self = cls.__new__(cls)
        self._path = path
        return self

    @property
    def path(self) -> Path:
        return self._path

    @property
    def name(self) -> str:
        return self._path.name

    @property
    def checkpoints_dir(self) -> Path:
        return self._path / CHECKPOINTS_DIR

    @property
    def probes_dir(self) -> Path:
        return self._path / PROBES_DIR

    @property
    def events_path(self) -> Path:
        return self._path / EVENTS_FILE

    @property
    def summary_path(self) -> Path:
        return self._path / SUMMARY_FILE

    @property
    def config_path(self) -> Path:
        return self._path / CONFIG_FILE

    def read_config(self) -> dict[str, Any]:
        """The resolved config as written at creation ({} if the file is missing)."""
        return read_config(self._path)

    def __repr__(self) -> str:
        return f"RunDir({str(self._path)!r})"

    def __fspath__(self) -> str:
        return str(self._path)


class RunLock:
    """The claim of one process on a run directory: an exclusive ``flock`` on its ``.lock`` file.

    The OS drops the lock when the process ends in any way (SIGKILL, out of memory), so a killed run can
    be resumed at once, and a stale pid left in the file means nothing. The descriptor is not inherited
    by child processes (Python's default), so a spawned helper never keeps a dead run locked.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def record_pid(self) -> None:
        """Write this process's pid into the lock file, for the message a second process gets."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode("ascii"), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_run(path: str | os.PathLike[str], *, record: bool = True) -> RunLock:
    """Claim the run directory ``path`` for training in this process, until :meth:`RunLock.release`
    or the process ends. Only the process that writes the folder takes it (rank 0 under torchrun).
    ``record=False`` leaves the file's content alone (a resume that may still be refused, untouched).

    Raises:
        RunInUseError: another live process holds it (the message names its pid).
        RunDirError: the lock file cannot be created.
    """
    path = Path(path)
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise RunDirError(f"cannot write to run directory {path}: {_os_reason(e)}") from None
    if sys.platform != "win32":  # no flock there: runs are not guarded against a second process
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
            os.close(fd)
            # The holder writes its pid only once it has accepted the run; until then the file may still
            # name a process that held it before (and is gone).
            known = holder.isdigit() and not _process_gone(int(holder), socket.gethostname())
            who = f"process {holder}" if known else "another process"
            raise RunInUseError(
                f"run {path.name} is in use: {who} is training in it; wait for it to end or stop it "
                "(Ctrl-C, or x in the lab) first"
            ) from None
    lock = RunLock(path, fd)
    if record:
        lock.record_pid()
    return lock


def write_config(run_path: str | os.PathLike[str], config: dict[str, Any]) -> None:
    """Replace the run's ``config.yaml`` atomically: other processes (torchrun ranks, readers) may be
    opening it at that moment. Raises :class:`~snnlab.engine.files.WriteError`."""
    with atomic_write(Path(run_path) / CONFIG_FILE) as f:
        f.write(yaml.safe_dump(config, sort_keys=False).encode("utf-8"))


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    # Readers (`snnlab runs`, the TUI) may open summary.json at any moment: never let them see half a file.
    with atomic_write(path) as f:
        f.write((json.dumps(data, indent=2) + "\n").encode("utf-8"))


def _to_cpu(value: Any) -> Any:
    """Detach tensors (possibly on GPU) nested in dicts/lists so the probe file loads anywhere."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


# --------------------------------------------------------------------------------------------- writer


class RunWriter:
    """Sink that records every event into a :class:`RunDir`.

    - Each event becomes one JSON line in ``events.jsonl``, flushed at once so ``snnlab watch`` and the
      TUI see it live (no fsync: losing the last lines on a power cut is acceptable, a slow loop is not).
    - :class:`ProbeRecorded` tensors are saved first to ``probes/probe-e{epoch:03d}-s{step:07d}.pt``
      (``{"epoch", "step", "samples", "labels", "layers"}``) and ``event.path`` is set to that path
      relative to the run folder, so the JSON line points at it.
    - Probes are bounded: at most ``max_probes`` files are kept. When there are more, the oldest are
      deleted, except the very first probe, which is kept as the "before training" reference. The
      events of deleted probes stay in ``events.jsonl`` with a ``path`` that no longer exists;
      :func:`load_probe` reports that clearly.
    - ``summary.json`` is rewritten atomically on run start, each epoch, and at the end.
    - A file that cannot be written raises :class:`~snnlab.engine.files.WriteError` (one line naming it),
      which ends the run as failed; the :class:`RunFailed` that follows is recorded wherever it still can be.
    """

    def __init__(self, run_dir: RunDir | str | os.PathLike[str], max_probes: int = MAX_PROBES) -> None:
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir)
        self.max_probes = max(1, max_probes)
        self._file: Any = None
        # summary.json is the fold of the events, so a resumed run's writer starts from those written before.
        self._history = RunHistory(step_points=0)
        try:
            for event in iter_events(self.run_dir.events_path):
                self._history.apply(event)
        except RunDirError:
            pass  # none yet, or unreadable: then the first append says what is wrong

    # -- sink

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunFailed):
            self._record_failure(event)
            return
        if isinstance(event, ProbeRecorded) and event.layers:
            event.path = self._save_probe(event)
        self._append(event)
        self._update_summary(event)
        if isinstance(event, RunFinished):
            # The run is over; release the handle (a resumed run reopens it lazily).
            self.close()

    def _record_failure(self, event: RunFailed) -> None:
        # The failure may be this very folder refusing writes. Record it in each file that still takes it
        # (a read-only events.jsonl must not keep summary.json at "running"), and never raise over the
        # error being reported.
        for record in (self._append, self._update_summary):
            try:
                record(event)
            except WriteError:
                pass
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- events.jsonl

    def _repair_tail(self) -> None:
        # A run killed mid-write leaves a partial last line; appending after it would glue two events
        # together on resume. Cut the file back to its last complete line.
        # Only its last byte is read, and the file is opened for writing only when it needs the cut: a long
        # run's events.jsonl is not read whole, and a read-only one that is intact fails at the append.
        path = self.run_dir.events_path
        try:
            with open(path, "rb") as f:
                if f.seek(0, os.SEEK_END) == 0:
                    return
                f.seek(-1, os.SEEK_END)
                if f.read(1) == b"\n":
                    return
                f.seek(0)
                data = f.read()
        except FileNotFoundError:
            return
        with open(path, "rb+") as f:
            f.truncate(data.rfind(b"\n") + 1)

    def _append(self, event: Event) -> None:
        # default=str keeps an odd config value (a Path, an enum) from killing the run.
        line = memoryview((json.dumps(event.to_dict(), default=str) + "\n").encode("utf-8"))
        start = None
        try:
            if self._file is None:
                self._repair_tail()  # here, not on opening: its failure is a write failure of the run
                self._file = open(self.run_dir.events_path, "ab", buffering=0)  # unbuffered: each line is seen live
            start = self._file.seek(0, os.SEEK_END)
            while line:
                line = line[self._file.write(line) :]
        except OSError as exc:
            if start is not None:
                self._cut_back(start)
            raise WriteError(self.run_dir.events_path, exc) from None

    def _cut_back(self, size: int) -> None:
        # Part of a line may have reached the disk before the write failed; the next event (the failure
        # itself) must start on a line of its own.
        try:
            os.ftruncate(self._file.fileno(), size)
        except OSError:
            pass

    # -- probes

    def _save_probe(self, event: ProbeRecorded) -> str:
        from snnlab.engine.checkpoint import save_to  # lazily: listing runs must not pay for importing torch

        probes = self.run_dir.probes_dir
        name = f"probe-e{event.epoch:03d}-s{event.step:07d}.pt"
        payload = {
            "epoch": event.epoch,
            "step": event.step,
            "samples": list(event.samples),
            "labels": list(event.labels),
            "layers": _to_cpu(event.layers),
        }
        # Written atomically: the TUI may load the newest probe while it is being written.
        with atomic_write(probes / name) as f:
            save_to(f, payload)
        self._prune_probes()
        return f"{PROBES_DIR}/{name}"

    def _prune_probes(self) -> None:
        files = probe_files(self.run_dir.path)
        excess = len(files) - self.max_probes
        if excess <= 0:
            return
        # Keep files[0] (the earliest probe, the reference), drop the next-oldest ones.
        for path in files[1 : 1 + excess]:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                break  # pruning only saves space; a folder that refuses it fails the next probe's write

    # -- summary.json

    def _update_summary(self, event: Event) -> None:
        self._history.apply(event)
        if isinstance(event, (StepMetrics, ProbeRecorded)):
            return  # too frequent to rewrite the summary for
        _write_json_atomic(self.run_dir.summary_path, summary_of(self._history))


def summary_of(history: RunHistory) -> dict[str, Any]:
    """What summary.json holds for a run with this history (``snnlab runs`` lists runs by it)."""
    s: dict[str, Any] = {}
    if history.started is not None:
        s.update(
            name=history.name,
            started=history.started,
            epochs_done=history.epochs_done,
            steps=history.steps_done,
            best_accuracy=history.best_accuracy,
            status=history.status,
            pid=os.getpid(),  # with host: lets a listing tell a run whose process was killed
            host=socket.gethostname(),
            dataset=history.dataset,
            device=history.device,
            epochs=history.epochs,
            num_parameters=history.num_parameters,
            steps_per_epoch=history.steps_per_epoch,
        )
        if history.resumed is not None:
            s.update(resumed=history.resumed, resumed_from_epoch=history.resumed_from_epoch)
    s["status"] = history.status
    last = history.last_epoch
    if last is not None:
        s.update(
            train_loss=last.train_loss,
            train_accuracy=last.train_accuracy,
            spike_rates=dict(last.spike_rates),
            updated=last.time,
        )
    for key, value in (("test_loss", history.final_test_loss), ("test_accuracy", history.final_test_accuracy)):
        if value is not None:
            s[key] = value
    end = history.end
    if end is not None:
        if history.wall_time is not None:
            s["wall_time"] = history.wall_time
        s["finished"] = end.time
    if isinstance(end, RunFailed):
        s.update(error=end.error, reason=end.reason)
    return s


# --------------------------------------------------------------------------------------------- reader


def _events_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p / EVENTS_FILE if p.is_dir() else p


def iter_events(path: str | os.PathLike[str], bad: BadLines | None = None) -> Iterator[Event]:
    """The events of a run one by one, as :func:`read_events` reads them, holding one line at a time."""
    file = _events_path(path)
    try:
        with open(file, "rb") as f:
            for line in f:
                # A live run may be caught mid-line: a last line without its newline is not finished yet.
                if line.endswith(b"\n"):
                    event = parse_event_line(line, bad)
                    if event is not None:
                        yield event
    except FileNotFoundError:
        raise RunDirError(f"no events file at {file}") from None
    except OSError as e:
        raise RunDirError(f"cannot read {file}: {_os_reason(e)}") from None


def read_events(path: str | os.PathLike[str], bad: BadLines | None = None) -> list[Event]:
    """All events of a run. ``path`` is a run folder or an ``events.jsonl`` file.

    A live run may be caught mid-line: a last line without its newline is ignored. Lines that do not hold
    a valid event (corruption, hand edits, kinds from a newer snnlab) are skipped so that the rest of the
    run stays viewable, and counted in ``bad`` when given (see :func:`~snnlab.engine.events.parse_event_line`).
    :class:`ProbeRecorded` events come back without tensors; use :func:`load_probe` with their ``path``.

    Raises:
        RunDirError: the file is missing or cannot be read (a folder in its place, no permission).
    """
    return list(iter_events(path, bad))


def read_history(
    path: str | os.PathLike[str], bad: BadLines | None = None, step_points: int | None = None
) -> RunHistory:
    """The :class:`~snnlab.history.RunHistory` of a run's events as they stand now (read as
    :func:`read_events` reads them, without holding them all). Raises :class:`RunDirError` like it."""
    return RunHistory.of(iter_events(path, bad), step_points)


def follow_events(
    path: str | os.PathLike[str],
    poll: float = 0.2,
    stop: Callable[[], bool] | None = None,
    *,
    from_start: bool = True,
    bad: BadLines | None = None,
) -> Iterator[Event]:
    """Yield a run's events as they are appended, like ``tail -f`` (for ``snnlab watch`` and the TUI).

    Starts with the events already in the file (unless ``from_start`` is False), then polls every
    ``poll`` seconds. Waits for the file if it does not exist yet. Ends when ``stop()`` returns True;
    it does not end by itself on :class:`RunFinished`, because a resumed run appends to the same file,
    so callers break out when they have seen what they wanted. Lines are read as :func:`read_events`
    reads them: bad ones are skipped and counted in ``bad``.

    Raises:
        RunDirError: the file exists but cannot be read (a folder in its place, no permission).
    """
    file = _events_path(path)
    offset = 0
    pending = b""
    started = False
    missing_at_start = not file.exists()  # a file that appears later is read from its beginning
    while True:
        try:
            size = file.stat().st_size
            if not started:
                started = True
                if not from_start and not missing_at_start:
                    # Skip history, but only up to the last complete line: a partial one is finished later.
                    with open(file, "rb") as f:
                        offset = f.read(size).rfind(b"\n") + 1
            if size < offset:
                offset, pending = 0, b""  # the file was replaced or truncated: read it again
            chunk = b""
            if size > offset:
                with open(file, "rb") as f:
                    f.seek(offset)
                    chunk = f.read(size - offset)
        except FileNotFoundError:
            chunk = b""
        except OSError as e:
            raise RunDirError(f"cannot read {file}: {_os_reason(e)}") from None
        if chunk:
            offset += len(chunk)
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                event = parse_event_line(raw, bad)
                if event is not None:
                    yield event
        if stop is not None and stop():
            return
        time.sleep(poll)


def read_summary(run_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run's summary.json as a dict; None if absent. Raises ``ValueError`` if it is corrupt."""
    path = Path(run_path) / SUMMARY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def read_config(run_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The resolved config stored in the run folder ({} if missing)."""
    path = Path(run_path) / CONFIG_FILE
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as e:
        raise RunDirError(f"cannot read {path}: {e}".splitlines()[0]) from None
    except OSError as e:
        raise RunDirError(f"cannot read {path}: {_os_reason(e)}") from None
    except UnicodeDecodeError:
        raise RunDirError(f"cannot read {path}: it is not UTF-8 text") from None
    return data if isinstance(data, dict) else {}


@dataclass
class RunInfo:
    """One line of ``snnlab runs``: what summary.json says about a run."""

    path: Path
    name: str
    status: str  # running | completed | stopped | failed | died | unreadable
    dataset: str | None = None
    best_accuracy: float | None = None
    epochs_done: int = 0
    epochs: int | None = None
    wall_time: float | None = None
    started: float | None = None

    @classmethod
    def from_dir(cls, path: str | os.PathLike[str]) -> RunInfo | None:
        """Read a run folder's summary; None if there is no summary.json (not a run, or not started)."""
        path = Path(path)
        try:
            s = read_summary(path)
        except (OSError, ValueError):
            # A corrupt summary must not break the listing of every other run.
            return cls(path=path, name=path.name, status="unreadable", started=_mtime(path))
        if s is None:
            return None

        def num(key: str) -> Any:
            value = s.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            return value if math.isfinite(value) else None  # json reads Infinity and NaN too

        status = str(s.get("status") or "unknown")
        if status == "running" and _process_gone(s.get("pid"), s.get("host")):
            status = "died"  # killed (SIGKILL, out of memory, power) before it could write its end
        return cls(
            path=path,
            name=str(s.get("name") or path.name),
            status=status,
            dataset=s.get("dataset") if isinstance(s.get("dataset"), str) else None,
            best_accuracy=num("best_accuracy"),
            epochs_done=int(num("epochs_done") or 0),
            epochs=num("epochs"),
            wall_time=num("wall_time"),
            started=num("started") if num("started") is not None else _mtime(path),
        )


def _process_gone(pid: Any, host: Any) -> bool:
    """True when the process that wrote a "running" summary on this machine no longer exists. A run on
    another machine (a shared disk) or from before pids were recorded is taken at its word."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # e.g. PermissionError: the process exists under another user
        return False
    try:  # Linux: a killed process its parent has not reaped yet is a zombie, gone all the same
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[:1] == ["Z"]
    except OSError:
        return False


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def list_runs(runs_dir: str | os.PathLike[str]) -> list[RunInfo]:
    """All runs under ``runs_dir``, newest first. Folders without summary.json are skipped."""
    root = Path(runs_dir).expanduser()
    if not root.is_dir():
        return []
    infos = [info for child in root.iterdir() if child.is_dir() and (info := RunInfo.from_dir(child))]
    # Folder names end in a timestamp, so they break ties between runs started in the same second.
    infos.sort(key=lambda i: (i.started or 0.0, i.path.name), reverse=True)
    return infos


def find_run(runs_dir: str | os.PathLike[str], name_or_path: str | os.PathLike[str]) -> Path:
    """Resolve a run given as a path, an exact folder name under ``runs_dir``, or a unique prefix of one.

    The runs of a sweep live one level down, in ``runs_dir/sweep-*/``; they are found by their own folder
    name as well, so a name that ``snnlab sweep`` printed works with ``runs show``, ``watch`` and ``--resume``.

    Raises:
        RunNotFoundError: nothing matches, or a prefix matches several runs (the message lists them).
    """
    given = Path(name_or_path).expanduser()
    if given.is_dir() and any((given / name).exists() for name in (EVENTS_FILE, SUMMARY_FILE, SWEEP_FILE)):
        return given
    root = Path(runs_dir).expanduser()
    text = str(name_or_path)
    exact = root / text
    if exact.is_dir():
        return exact
    # By name, last first: the runs of one name then come newest first (their names end in the start time).
    candidates = sorted(_run_folders(root), key=lambda p: (p.name, str(p)), reverse=True)
    named = [p for p in candidates if p.name == text]
    if len(named) == 1:
        return named[0]
    matches = named or [p for p in candidates if p.name.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(_shown(p, root) for p in matches[:10])
        shown += f" (and {len(matches) - 10} more)" if len(matches) > 10 else ""
        raise RunNotFoundError(f"'{text}' matches {len(matches)} runs in {root}: {shown}; give more of the name")
    if not candidates:
        raise RunNotFoundError(f"no run '{text}': {root} holds no runs")
    top = [p for p in candidates if p.parent == root] or candidates
    shown = ", ".join(p.name for p in top[:10]) + (" ..." if len(top) > 10 else "")
    raise RunNotFoundError(f"no run '{text}' in {root}; runs there: {shown}")


def _run_folders(root: Path) -> list[Path]:
    """The folders directly under ``root`` and the run folders inside its sweep folders."""
    try:
        top = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
        inner = [run for p in top if (p / SWEEP_FILE).is_file() for run in p.iterdir() if run.is_dir()]
    except OSError:
        return []  # an unreadable runs folder reads as an empty one; the message names the folder
    return top + inner


def _shown(path: Path, root: Path) -> str:
    # A run inside a sweep is shown with its sweep, so two runs of the same name in two sweeps can be told apart.
    return path.name if path.parent == root else f"{path.parent.name}/{path.name}"


def probe_files(run_path: str | os.PathLike[str]) -> list[Path]:
    """Probe files of a run, oldest first (by epoch and step, not by name, so epoch 1000 sorts right)."""
    folder = Path(run_path) / PROBES_DIR
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _PROBE_NAME.match(p.name)
        if m:
            found.append(((int(m.group(1)), int(m.group(2))), p))
    return [p for _, p in sorted(found)]


def load_probe(run_path: str | os.PathLike[str], relpath: str) -> dict[str, Any]:
    """Load a probe saved by :class:`RunWriter`: ``{"epoch", "step", "samples", "labels", "layers"}``.

    ``layers[name]`` holds ``membrane`` and ``spikes`` as ``[T, S, N]`` tensors, ``threshold`` and
    ``neurons``, as described in :class:`~snnlab.engine.events.ProbeRecorded`.
    """
    import torch

    path = Path(run_path) / relpath
    if not path.exists():
        raise RunDirError(f"probe {relpath} is missing from {run_path} (older probes are pruned)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several unrelated types for a damaged file
        raise RunDirError(f"cannot read probe {path}: {str(e).splitlines()[0] if str(e) else e!r}") from None


def metric_history(events: list[Event]) -> dict[str, Any]:
    """Column-wise metrics for plotting: :meth:`~snnlab.history.RunHistory.columns` of every step.

    When a run was resumed (``RunStarted`` with ``start_epoch`` k), entries of epochs after k recorded
    before the resume are dropped, since the resumed run redoes them.
    """
    return RunHistory.of(events).columns()
