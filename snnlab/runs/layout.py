"""A run directory's layout, creating and opening it, and the lock of the one process training in it."""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from snnlab.engine.files import atomic_write

CONFIG_FILE = "config.yaml"
EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
SWEEP_FILE = "sweep.yaml"  # marks a folder of runs made by `snnlab sweep` (see sweep.py)
PROBES_DIR = "probes"
CHECKPOINTS_DIR = "checkpoints"
MAX_PROBES = 50

_PROBE_NAME = re.compile(r"^probe-e(\d+)-s(\d+)\.(npz|pt)$")  # .pt: runs recorded before the numpy format


class RunDirError(Exception):
    """A run directory cannot be created, opened or read; the message is one line meant for people."""


class RunNotFoundError(RunDirError):
    """``find_run`` could not resolve a name to exactly one run."""


class RunInUseError(RunDirError):
    """Another process is training in the run directory (:func:`lock_run`)."""


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
