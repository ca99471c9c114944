"""Export what the lab shows: an SVG screenshot of the current view and the run's metrics as CSV."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

from textual.app import App

from snnlab.tui.metrics import RunMetrics


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """Rows of differing keys in one table: the columns are the union, in first-seen order."""
    columns = list(dict.fromkeys(key for row in rows for key in row)) or ["kind"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def export_view(app: App[Any], metrics: RunMetrics, folder: Path, prefix: str) -> tuple[Path, Path]:
    """Write what ``app`` shows as ``<prefix>-<time>.svg`` and ``metrics`` as ``metrics-<time>.csv`` into
    ``folder``; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    svg = Path(app.save_screenshot(f"{prefix}-{stamp}.svg", str(folder)))
    return svg, write_csv(metrics.csv_rows(), folder / f"metrics-{stamp}.csv")
