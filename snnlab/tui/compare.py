"""What the Surrogates pane compares: one run per chosen surrogate, or the runs of a sweep folder.

No widgets here. This module decides which surrogates (with which parameters) go into a comparison,
builds the config of each run, reads a sweep folder's runs back (and follows a live sweep: :class:`SweepFollower`),
and gives each run its name and colour; the app launches the runs and folds their events, and the pane only
draws the entries it is handed.
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snnlab import catalog
from snnlab.config import Config, config_from_dict
from snnlab.engine.events import Event, RunFailed, RunFinished, RunStarted
from snnlab.runs import EVENTS_FILE, EventTail, RunDirError, RunInfo
from snnlab.sweep import SweepRun, read_spec, read_sweep, sweep_order, sweep_run
from snnlab.tui import palette
from snnlab.tui.metrics import RunMetrics


@dataclass
class CompareEntry:
    """One run of a comparison: its surrogate's settings and the metrics of its run.

    ``name``, ``color`` and ``legend`` default to the surrogate's; a sweep sets them per grid
    combination (``legend`` "" for a further seed of a combination already in the legend)."""

    surrogate: str
    params: dict[str, float]
    metrics: RunMetrics
    name: str | None = None
    color: str | None = None
    legend: str | None = None
    cell: int | None = None  # a sweep's grid combination: the runs that differ only in their seed share it

    @property
    def label(self) -> str:
        if self.name is not None:
            return self.name
        args = ",".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.surrogate}({args})" if args else self.surrogate

    @property
    def curve_color(self) -> str:
        return self.color or color_of(self.surrogate)

    @property
    def curve_label(self) -> str:
        return self.surrogate if self.legend is None else self.legend


def color_of(surrogate: str) -> str:
    """A surrogate's colour, the same in every plot: its place in the catalog picks it."""
    keys = list(catalog.SURROGATES)
    return palette.series(keys.index(surrogate)) if surrogate in keys else palette.NEUTRAL


def compare_choices(chosen: list[str], params: dict[str, dict[str, float]]) -> list[tuple[str, dict[str, float]]]:
    """``(surrogate, parameters that differ from its defaults)`` for each chosen surrogate whose
    parameters it accepts; one with invalid parameters is left out (the pane shows why)."""
    choices = []
    for name in chosen:
        try:
            catalog.surrogate_params(name, params[name])
        except ValueError:
            continue
        defaults = catalog.SURROGATES[name].defaults
        choices.append((name, {k: v for k, v in params[name].items() if defaults.get(k) != v}))
    return choices


def compare_runs(config: Config, choices: list[tuple[str, dict[str, float]]]) -> list[tuple[CompareEntry, dict]]:
    """One (entry, config data) per surrogate: ``config`` with model.neuron's surrogate swapped.

    Layers with a custom neuron that names its own surrogate keep it. Raises ConfigError when a
    variant is not valid."""
    base = config.to_dict()
    runs = []
    for name, params in choices:
        data = copy.deepcopy(base)
        data["model"]["neuron"].update(surrogate=name, surrogate_params=dict(params))
        data["run"]["name"] = f"{base['run']['name']}-{name}"
        config_from_dict(data, source=f"compare {name}")
        runs.append((CompareEntry(name, dict(params), RunMetrics(status="queued")), data))
    return runs


def sweep_entry(run: SweepRun, keys: list[str], metrics: RunMetrics, first: bool) -> CompareEntry:
    """A sweep's run as an entry: named by its grid values and seed, coloured by its combination, in the
    legend only as the ``first`` run of its combination."""
    label = run.label(keys)
    neuron: dict[str, Any] = run.config.get("model", {}).get("neuron", {})
    return CompareEntry(
        surrogate=str(neuron.get("surrogate", "?")),
        params=dict(neuron.get("surrogate_params") or {}),
        metrics=metrics,
        name=f"{label} · seed {run.seed}" if run.seed is not None else label,
        color=palette.series(run.combination),
        legend=run.short_label if first else "",
        cell=run.combination,
    )


def sweep_entries(sweep_dir: Path) -> list[CompareEntry]:
    """Every run of a sweep folder as an entry, its metrics read from its events, one colour per grid
    combination (raises ConfigError, RunDirError)."""
    keys, found = read_sweep(sweep_dir)
    return _entries(keys, [(run, RunMetrics.of_run(run.path)) for run in found])


def _entries(keys: list[str], runs: list[tuple[SweepRun, RunMetrics]]) -> list[CompareEntry]:
    entries, previous = [], None
    for run, metrics in sorted(runs, key=lambda pair: sweep_order(pair[0])):
        entries.append(sweep_entry(run, keys, metrics, first=run.combination != previous))
        previous = run.combination
    return entries


DEAD_CHECK_S = 2.0  # how often a quiet run that has not ended is asked whether its process is still there
CHUNK = 1 << 20  # bytes of a run's history read at a time when it first appears


class SweepFollower:
    """A sweep folder, live: runs appear as the sweep creates their folders, and each run's metrics follow
    its ``events.jsonl`` as it grows.

    Two halves, one per thread, meeting in a queue (as :class:`~snnlab.tui.worker.FollowSource` does for one
    run). :meth:`follow` runs in a thread worker: every ``poll`` seconds it lists the folder and reads only
    the bytes each run appended since the last look. A run it meets for the first time is folded there, from
    its whole history, into a fresh :class:`RunMetrics` that it then hands over; after that it sends only the
    new events. :meth:`drain`, on the UI thread (the app's drain timer), folds those in and says whether
    anything changed; :meth:`entries` is then the Surrogates pane's list, in grid order.

    A run whose process is gone without an end (killed, out of memory) shows as ``died``, as ``snnlab runs``
    shows it. Raises ConfigError when the folder is not a sweep.
    """

    def __init__(self, sweep_dir: str | Path, poll: float = 0.1) -> None:
        self.path = Path(sweep_dir)
        self.poll = poll
        self.keys, self._order = read_spec(self.path)
        self._queue: queue.Queue[tuple[str, Any, Any]] = queue.Queue()
        self._stop = threading.Event()
        # The follower thread's own state.
        self._tails: dict[Path, EventTail] = {}
        self._ended: dict[Path, bool] = {}  # the last event seen ends the run (a resume may start it again)
        self._quiet_since: dict[Path, float] = {}
        # The UI thread's: each run with its entry and its legend label, made once (labels cost YAML dumps).
        self._runs: dict[Path, tuple[SweepRun, CompareEntry, str]] = {}

    # -- the follower thread

    def follow(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        """Scan every ``poll`` seconds until :meth:`close` (or until ``cancelled()``: the app shuts down)."""
        while not self._stop.is_set() and not cancelled():
            self.scan()
            self._stop.wait(self.poll)

    def scan(self) -> None:
        """One look at the folder: new runs, new events, runs found dead."""
        try:
            children = sorted(p for p in self.path.iterdir() if p not in self._tails and (p / EVENTS_FILE).is_file())
        except OSError:
            children = []  # the folder went away: keep what is shown
        for child in children:
            self._add(child)
        now = time.monotonic()
        for path, tail in self._tails.items():
            try:
                events = tail.read()
            except RunDirError:
                continue  # unreadable for now: its row keeps what it had
            if events:
                self._note(path, events, now)
                self._queue.put(("events", path, events))
            elif not self._ended[path] and now - self._quiet_since[path] >= DEAD_CHECK_S:
                self._quiet_since[path] = now
                info = RunInfo.from_dir(path)
                if info is not None and info.status == "died":
                    self._ended[path] = True
                    self._queue.put(("died", path, None))

    def _add(self, path: Path) -> None:
        try:
            run = sweep_run(path, self.keys, self._order)
        except RunDirError:
            run = SweepRun(path, tuple(None for _ in self.keys), None, len(self._order))
        metrics = RunMetrics(name=path.name, run_path=str(path), status="starting")
        tail = EventTail(path, bad=metrics.bad_lines)
        self._tails[path], self._ended[path], self._quiet_since[path] = tail, False, 0.0
        while True:  # its history so far, a chunk at a time: a long run's events are never all in memory
            try:
                events = tail.read(CHUNK)
            except RunDirError:
                break
            metrics.apply(events)
            self._note(path, events, time.monotonic())
            if not tail.behind:
                break
        self._queue.put(("run", run, metrics))

    def _note(self, path: Path, events: list[Event], now: float) -> None:
        self._quiet_since[path] = now
        for event in events:
            if isinstance(event, (RunFinished, RunFailed)):
                self._ended[path] = True
            elif isinstance(event, RunStarted):
                self._ended[path] = False

    def close(self) -> None:
        self._stop.set()

    # -- the UI thread

    def drain(self, limit: int = 5000) -> bool:
        """Fold in what the follower found since the last call; True when something changed."""
        changed = False
        for _ in range(limit):
            try:
                kind, what, data = self._queue.get_nowait()
            except queue.Empty:
                break
            changed = True
            if kind == "run":
                entry = sweep_entry(what, self.keys, data, first=True)
                self._runs[what.path] = (what, entry, entry.curve_label)
            elif what in self._runs and kind == "events":
                self._runs[what][1].metrics.apply(data)
            elif what in self._runs and kind == "died":
                metrics = self._runs[what][1].metrics
                metrics.status, metrics.error = "died", "its process ended without a word"
        return changed

    def entries(self) -> list[CompareEntry]:
        """The runs found so far, in grid order then seed order, the first of each combination in the legend."""
        entries, previous = [], None
        for run, entry, legend in sorted(self._runs.values(), key=lambda item: sweep_order(item[0])):
            entry.legend = legend if run.combination != previous else ""
            entries.append(entry)
            previous = run.combination
        return entries

    def __len__(self) -> int:
        return len(self._runs)
