"""Runs as plain JSON-ready dicts, for scripts: ``snnlab runs --json`` and ``snnlab runs show RUN --json``.

They hold what the tables show, with whole values (full names and paths, numbers unrounded, accuracies as
fractions like events.jsonl and summary.json hold them). A number that is not finite (a diverged loss) is
written as null, so that any JSON reader takes the output.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from snnlab.engine.events import BadLines
from snnlab.runs.layout import RunDirError, read_config
from snnlab.runs.reading import RunInfo, read_history


def finite(data: Any) -> Any:
    """``data`` with every NaN and infinity, at any depth, replaced by None."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [finite(value) for value in data]
    return data


def info_record(info: RunInfo, sweep: str | None = None) -> dict[str, Any]:
    """One run of ``snnlab runs --json``: the row of the listing, and the rest of what summary.json says.
    ``run`` is the folder name that ``runs show``, ``eval`` and ``--resume`` accept; ``sweep`` the sweep
    folder holding the run (None for one of its own)."""
    return finite(
        {
            "run": info.path.name,
            "name": info.name,
            "path": str(info.path),
            "sweep": sweep,
            "status": info.status,
            "dataset": info.dataset,
            "epochs_done": info.epochs_done,
            "epochs": info.epochs,
            "best_accuracy": info.best_accuracy,
            "decoder": info.decoder,
            "wall_time": info.wall_time,
            "started": info.started,
            "test_accuracy": info.last_accuracy,
            "test_loss": info.test_loss,
            "updated": info.updated,
        }
    )


def run_record(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[str]]:
    """One run for ``snnlab runs show RUN --json``: its config, the numbers of its summary table, and one row
    per evaluation (as events.jsonl holds them; a redone epoch of a resumed run counts once).

    Like ``show_run`` it holds what can be read (null for the rest) and returns one line per file that could
    not be read, for the caller to report.
    """
    path = Path(path)
    info = RunInfo.from_dir(path)
    problems: list[str] = []
    record: dict[str, Any] = {"run": path.name, "path": str(path), "status": info.status if info else "unknown"}
    try:
        record["config"] = read_config(path) or None
    except RunDirError as exc:
        problems.append(str(exc))
        record["config"] = None
    bad = BadLines()
    try:
        history = read_history(path, bad)
    except RunDirError as exc:
        problems.append(str(exc))
        record.update(metrics=None, epochs=[], health=None, skipped_lines=0)
        return finite(record), problems
    last, best = history.last_epoch, history.best_epoch
    record["metrics"] = {
        "status": history.status,
        "epochs_done": history.epochs_done,
        "epochs": history.epochs or None,
        "steps": history.steps_done,
        "decoder": history.decoder,
        "best_accuracy": history.best_accuracy,
        "best_epoch": best.epoch if best is not None else None,
        "final_test_loss": history.final_test_loss,
        "final_test_accuracy": history.final_test_accuracy,
        "wall_time": history.wall_time,
        "device": history.device,
        "samples_per_s": history.mean_samples_per_s,
        "spike_rates": dict(last.spike_rates) if last is not None else None,
        "error": history.error,
        "reason": history.reason,
    }
    record["epochs"] = [_plain(row.to_dict()) for row in history.epoch_rows]
    record["health"] = _plain(history.health.to_dict()) if history.health is not None else None
    record["skipped_lines"] = bad.count  # lines of events.jsonl that hold no valid event
    return finite(record), problems


def _plain(event: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key != "event"}
