"""Reading run directories: events (all at once, one at a time, or followed live), the history folded from
them, summaries, configs, probes, and finding runs by name (also inside sweeps)."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snnlab.engine.events import BadLines, Event, parse_event_line
from snnlab.history import RunHistory, decoder_of
from snnlab.runs.layout import (
    _PROBE_NAME,
    EVENTS_FILE,
    PROBES_DIR,
    SUMMARY_FILE,
    SWEEP_FILE,
    RunDirError,
    RunNotFoundError,
    _os_reason,
    _process_gone,
    read_config,
)


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


class EventTail:
    """The events appended to a run's ``events.jsonl`` since the last :meth:`read`, without waiting: the
    reading half of :func:`follow_events`, for a caller that follows many runs from one loop (a sweep).

    Only the bytes appended since the last read are read. A last line without its newline is kept until it
    is finished; bad lines are skipped and counted in ``bad``. A file that does not exist yet reads as empty
    and is read from its beginning once it appears; one that shrinks (replaced, truncated) is read again.
    ``from_start=False`` skips what the file holds at the first read (up to its last complete line).
    """

    def __init__(self, path: str | os.PathLike[str], *, from_start: bool = True, bad: BadLines | None = None) -> None:
        self.file = _events_path(path)
        self.bad = bad
        self.offset = 0  # bytes of the file read so far
        self.behind = 0  # bytes the file held beyond what the last read() took
        self._pending = b""
        self._skip = not from_start and self.file.exists()

    def read(self, max_bytes: int | None = None) -> list[Event]:
        """The complete events appended since the last call, reading at most ``max_bytes`` (all by default;
        ``behind`` then says how many are left).

        Raises:
            RunDirError: the file exists but cannot be read (a folder in its place, no permission).
        """
        try:
            size = self.file.stat().st_size
            if self._skip:
                self._skip = False
                # Skip history, but only up to the last complete line: a partial one is finished later.
                with open(self.file, "rb") as f:
                    self.offset = f.read(size).rfind(b"\n") + 1
            if size < self.offset:
                self.offset, self._pending = 0, b""  # the file was replaced or truncated: read it again
            chunk = b""
            want = size - self.offset if max_bytes is None else min(size - self.offset, max_bytes)
            if want > 0:
                with open(self.file, "rb") as f:
                    f.seek(self.offset)
                    chunk = f.read(want)
            self.behind = max(0, size - self.offset - len(chunk))
        except FileNotFoundError:
            chunk, self.behind = b"", 0
        except OSError as e:
            raise RunDirError(f"cannot read {self.file}: {_os_reason(e)}") from None
        if not chunk:
            return []
        self.offset += len(chunk)
        *complete, self._pending = (self._pending + chunk).split(b"\n")
        return [event for raw in complete if (event := parse_event_line(raw, self.bad)) is not None]


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
    reads them: bad ones are skipped and counted in ``bad`` (see :class:`EventTail`).

    Raises:
        RunDirError: the file exists but cannot be read (a folder in its place, no permission).
    """
    tail = EventTail(path, from_start=from_start, bad=bad)
    while True:
        yield from tail.read()
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


@dataclass
class RunInfo:
    """One line of ``snnlab runs``: what summary.json says about a run."""

    path: Path
    name: str
    status: str  # running | completed | stopped | failed | died | unreadable
    dataset: str | None = None
    decoder: str | None = None  # of best_accuracy; None when unreadable
    best_accuracy: float | None = None
    epochs_done: int = 0
    epochs: int | None = None
    wall_time: float | None = None
    started: float | None = None
    last_accuracy: float | None = None  # test accuracy of the last evaluation
    test_loss: float | None = None  # of the last evaluation
    updated: float | None = None  # time of the last evaluation

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
            decoder=s["decoder"] if isinstance(s.get("decoder"), str) and s["decoder"] else _config_decoder(path),
            best_accuracy=num("best_accuracy"),
            epochs_done=int(num("epochs_done") or 0),
            epochs=num("epochs"),
            wall_time=num("wall_time"),
            started=num("started") if num("started") is not None else _mtime(path),
            last_accuracy=num("test_accuracy"),
            test_loss=num("test_loss"),
            updated=num("updated"),
        )


def _config_decoder(path: Path) -> str:
    """The decoder of a run whose summary.json does not name it (written before it did): config.yaml's, or
    the default of those days when that names none or cannot be read."""
    try:
        return decoder_of(read_config(path))
    except RunDirError:
        return decoder_of({})


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

    ``layers[name]`` holds ``membrane`` and ``spikes`` as ``[T, S, N]`` arrays, ``threshold`` and
    ``neurons``, as described in :class:`~snnlab.engine.events.ProbeRecorded`. Probe files are numpy
    archives (:mod:`snnlab.runs.probefile`), read without torch; runs recorded before that format hold
    ``.pt`` files, which come back with torch tensors.
    """
    path = Path(run_path) / relpath
    if not path.exists():
        raise RunDirError(f"probe {relpath} is missing from {run_path} (older probes are pruned)")
    try:
        if path.suffix == ".pt":
            import torch

            return torch.load(path, map_location="cpu", weights_only=True)
        from snnlab.runs import probefile  # numpy: listing runs does not need it

        return probefile.read_probe(str(path))
    except Exception as e:  # numpy, zipfile and torch raise several unrelated types for a damaged file
        raise RunDirError(f"cannot read probe {path}: {str(e).splitlines()[0] if str(e) else e!r}") from None


def metric_history(events: list[Event]) -> dict[str, Any]:
    """Column-wise metrics for plotting: :meth:`~snnlab.history.RunHistory.columns` of every step.

    When a run was resumed (``RunStarted`` with ``start_epoch`` k), entries of epochs after k recorded
    before the resume are dropped, since the resumed run redoes them.
    """
    return RunHistory.of(events).columns()
