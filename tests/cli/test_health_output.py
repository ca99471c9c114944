"""Health reports in the headless face: warnings in ``snnlab run``'s output when they appear and clear, and
the last report's table in the summary and ``snnlab runs show``."""

from __future__ import annotations

import io
from pathlib import Path

from snnlab.console import ConsoleSink, show_run
from snnlab.engine.events import Event, HealthReport, HealthWarning, LayerHealth
from tests.cli.test_runs import training_events, write_run


def report(epoch: int, warnings: list[HealthWarning], silent: float = 0.2) -> HealthReport:
    layers = {
        "fc1": LayerHealth(silent, 0.0, 0.125, 0.31, 2.5e-3, 49_194.24),
        "fc2": LayerHealth(0.97, 0.0, 0.004, 1.2e-6, 13.0, 466.0),
    }
    return HealthReport(epoch=epoch, step=20 * epoch, by_layer=layers, synops=49_660.24, warnings=warnings, time=1.0)


SILENT = HealthWarning("fc2", "silent", "fc2: 97% silent: lower the threshold or raise the init scale")
SATURATED = HealthWarning("fc1", "saturated", "fc1: 60% saturated (fire at every step): raise the threshold")


def test_warnings_are_printed_when_they_appear_and_when_they_clear_not_at_every_evaluation():
    out = io.StringIO()
    sink = ConsoleSink(stream=out, quiet=True)
    worse = HealthWarning("fc2", "silent", "fc2: 99% silent: lower the threshold or raise the init scale")
    for event in (report(1, [SILENT]), report(2, [worse, SATURATED]), report(3, [SATURATED]), report(4, [])):
        sink(event)
    assert out.getvalue().splitlines() == [
        "health warning: fc2: 97% silent: lower the threshold or raise the init scale",
        "health warning: fc1: 60% saturated (fire at every step): raise the threshold",
        "health: fc2: no longer silent",
        "health: fc1: no longer saturated",
    ]


def with_health(events: list[Event]) -> list[Event]:
    last = max(i for i, e in enumerate(events) if type(e).__name__ == "EpochMetrics")
    return events[: last + 1] + [report(2, [SILENT])] + events[last + 1 :]


def test_runs_show_prints_the_last_health_report_and_an_old_run_none(tmp_path: Path):
    out = io.StringIO()
    show_run(write_run(tmp_path / "new", with_health(training_events())).path, out)
    lines = [" ".join(line.split()) for line in out.getvalue().splitlines()]
    start = lines.index("health (epoch 2)")
    assert lines[start + 1 : start + 6] == [
        "layer silent satur. rate dS/dU |∇W| SynOps",
        "fc1 20% 0% 0.125 0.31 0.0025 49.2k",
        "fc2 97% 0% 0.004 1.2e-06 13 466",
        "total 49.7k",
        "fc2: 97% silent: lower the threshold or raise the init scale",
    ]
    old = io.StringIO()
    show_run(write_run(tmp_path / "old", training_events()).path, old)
    assert "health" not in old.getvalue() and "test accuracy (%)" in old.getvalue()
