"""The rows of the runs table: one per run (or sweep) of a folder, with the config keys that tell them apart.

No widgets here. A sweep folder's columns are its grid keys; a plain runs folder's are the keys whose values
differ between its runs (``run.*`` left out: every run has its own name). The numbers come from each run's
summary.json, the values from its config.yaml; :func:`sort_rows` orders rows by any column, missing values
last whichever the direction.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snnlab.config.diff import flatten, varying_keys
from snnlab.formatting import format_duration, format_percent
from snnlab.runs import RunDirError, RunInfo, list_runs, read_config
from snnlab.sweep import format_value, list_sweeps, read_spec, run_count

STAT_COLUMNS = ("status", "best acc", "last acc", "loss", "epochs", "time")
_STARTED = re.compile(r"-\d{8}-\d{6}(-\d+)?$")  # the start time (and -2, -3) a run's folder name ends with
MAX_KEY_COLUMNS = 5  # of a plain runs folder; a sweep shows all its grid keys
SKIP = ("run.", "description")


@dataclass
class RunRow:
    """One line of the runs table."""

    path: Path
    kind: str  # "run" | "sweep"
    status: str
    config: dict[str, Any] = field(default_factory=dict)
    values: tuple[Any, ...] = ()  # of the key columns
    best: float | None = None
    last: float | None = None
    loss: float | None = None
    epochs_done: int | None = None
    epochs: int | None = None
    duration: float | None = None
    runs: int = 0  # of a sweep

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def of_run(cls, info: RunInfo, configs: dict[Path, dict[str, Any]] | None = None) -> RunRow:
        """The row of a run from its summary, and its config (from ``configs`` when it holds it; read into it
        otherwise: the table is read again while runs go on, and only summaries change)."""
        configs = {} if configs is None else configs
        if info.path not in configs:
            try:
                configs[info.path] = read_config(info.path)
            except RunDirError:
                configs[info.path] = {}  # its numbers still show; the config columns stay empty
        config = configs[info.path]
        ended = info.wall_time
        running = info.updated - info.started if info.updated and info.started else None
        return cls(info.path, "run", info.status, config, best=info.best_accuracy, last=info.last_accuracy,
                   loss=info.test_loss, epochs_done=info.epochs_done, epochs=info.epochs,
                   duration=ended if ended is not None else running)  # fmt: skip

    def sort_value(self, column: int, keys: list[str]) -> Any:
        """The value this row sorts by in ``column`` (of ``columns(keys)``); None sorts last."""
        if column == 0:
            return self.name
        if column <= len(keys):
            value = self.values[column - 1] if column - 1 < len(self.values) else None
            return value if isinstance(value, (int, float, str)) else (None if value is None else format_value(value))
        stat = STAT_COLUMNS[column - 1 - len(keys)]
        return {
            "status": self.status,
            "best acc": self.best,
            "last acc": self.last,
            "loss": self.loss,
            "epochs": self.epochs_done if self.kind == "run" else self.runs,
            "time": self.duration,
        }[stat]

    def cells(self) -> list[str]:
        """The row's cells after its name, as the table shows them."""
        values = ["-" if v is None else format_value(v) for v in self.values]
        if self.kind == "sweep":
            return [*values, "sweep", "-", "-", "-", f"{self.runs} runs", "-"]
        epochs = f"{self.epochs_done}/{self.epochs}" if self.epochs else str(self.epochs_done or 0)
        loss = f"{self.loss:.4f}" if self.loss is not None else "-"
        return [*values, self.status, format_percent(self.best), format_percent(self.last), loss, epochs,
                format_duration(self.duration)]  # fmt: skip


def columns(keys: list[str]) -> list[str]:
    """The table's column titles: ``run``, the keys (by their last part where that names one alone:
    ``surrogate`` for ``model.neuron.surrogate``), then the numbers."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    unique = [short for short in last if last.count(short) == 1 and short not in ("run", *STAT_COLUMNS)]
    return ["run", *(short if short in unique else k for k, short in zip(keys, last, strict=True)), *STAT_COLUMNS]


def short_name(name: str) -> str:
    """A run's folder name without the start time it ends with: the runs of one sweep differ before it."""
    return _STARTED.sub("", name) or name


def folder_rows(
    folder: Path, sweep: bool = False, configs: dict[Path, dict[str, Any]] | None = None
) -> tuple[list[str], list[RunRow]]:
    """(key columns, rows) of a runs folder (its runs, newest first, then its sweeps) or, with ``sweep``, of a
    sweep folder (its runs, grid keys as columns). Reads every run's summary and config (configs already in
    ``configs`` are not read again): call it off the UI thread. Raises ConfigError when ``sweep`` is set and
    the folder is not a sweep."""
    grid = read_spec(folder)[0] if sweep else None
    rows = [RunRow.of_run(info, configs) for info in list_runs(folder)]
    if grid is not None:
        keys = grid
    else:
        keys = varying_keys([r.config for r in rows], SKIP)[:MAX_KEY_COLUMNS] if len(rows) > 1 else []
    for row in rows:
        flat = flatten(row.config)
        row.values = tuple(flat.get(k) for k in keys)
    if not sweep:
        rows += [RunRow(p, "sweep", "sweep", values=tuple(None for _ in keys), runs=run_count(p))
                 for p in list_sweeps(folder)]  # fmt: skip
    return keys, rows


def sort_rows(rows: list[RunRow], column: int, keys: list[str], reverse: bool = False) -> list[RunRow]:
    """``rows`` ordered by ``column``; rows without a value there come last either way, and values of mixed
    types (numbers and text in one key) sort numbers first."""

    def key(row: RunRow) -> tuple[int, Any]:
        value = row.sort_value(column, keys)
        if value is None or isinstance(value, float) and math.isnan(value):
            return (0, 0)
        return (2, value) if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, str(value))

    present = [r for r in rows if key(r)[0]]
    missing = [r for r in rows if not key(r)[0]]
    # Numbers and text apart, so that they never meet in one comparison.
    numbers = sorted((r for r in present if key(r)[0] == 2), key=key, reverse=reverse)
    texts = sorted((r for r in present if key(r)[0] == 1), key=key, reverse=reverse)
    return numbers + texts + missing
