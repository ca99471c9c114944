"""Shared pieces of the TUI tests: a tiny config, a fake event stream and a way to wait on the app."""

from __future__ import annotations

import contextlib
import copy
import difflib
import html
import importlib
import inspect
import math
import pickle
import pkgutil
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from snnlab.engine.events import (
    EpochMetrics,
    Event,
    HealthReport,
    HealthWarning,
    LayerHealth,
    ProbeRecorded,
    RunFinished,
    RunStarted,
    StepMetrics,
)
from tests.conftest import TINY

T, SAMPLES, RECORDED, FC1, CLASSES = 10, 2, 4, 32, 10


@pytest.fixture
def tiny(tmp_path: Path) -> dict[str, Any]:
    """The engine tests' tiny config (200/100 bundled samples, T=4, 32 hidden), writing under tmp_path."""
    data = copy.deepcopy(TINY)
    data["run"]["runs_dir"] = str(tmp_path / "runs")
    return data


def _probe(epoch: int, step: int, sharpness: float, at: float) -> ProbeRecorded:
    """A deterministic probe: membranes that charge towards the threshold faster as ``sharpness`` grows."""
    t = np.arange(1, T + 1, dtype=np.float32)[:, None, None]
    n = np.arange(RECORDED, dtype=np.float32)[None, None, :]
    s = np.arange(SAMPLES, dtype=np.float32)[None, :, None]
    membrane = sharpness * (0.25 + 0.1 * n + 0.05 * s) * t - np.floor(sharpness * (0.25 + 0.1 * n) * t)
    spikes = np.diff(np.floor(sharpness * (0.25 + 0.1 * n + 0 * s) * np.concatenate([0 * t[:1], t])), axis=0) > 0
    raster = (np.arange(FC1)[None, None, :] * 7 + np.arange(T)[:, None, None] * 3 + epoch) % 5 == 0
    out = np.zeros((T, SAMPLES, CLASSES), dtype=np.uint8)
    out[:, 0, 3] = 1  # sample 0 is predicted as class 3 (its label), sample 1 as class 1 (label 7)
    out[::2, 1, 1] = 1
    layers = {
        "fc1": {
            "membrane": membrane.astype(np.float32),
            "spikes": np.broadcast_to(spikes, (T, SAMPLES, RECORDED)).astype(np.uint8),
            "raster": np.broadcast_to(raster, (T, SAMPLES, FC1)).astype(np.uint8),
            "neurons": [0, 10, 21, 31],
            "threshold": 1.0,
        },
        "fc2": {
            "membrane": out.astype(np.float32) * 1.2,
            "spikes": out[:, :, :RECORDED],
            "raster": out,
            "neurons": [0, 3, 6, 9],
            "threshold": 1.0,
        },
    }
    return ProbeRecorded(epoch=epoch, step=step, samples=[0, 99], labels=[3, 7], layers=layers, time=at)


def _health(epoch: int, step: int, at: float) -> HealthReport:
    """A network whose output layer is mostly silent, so that the hidden layer's gradient vanishes too."""
    silent = (0.97, 0.93, 0.91, 0.9)[min(epoch, 4) - 1]
    layers = {
        "fc1": LayerHealth(0.3 - 0.05 * epoch, 0.0, 0.05 + 0.03 * epoch, 0.21, 4e-5 / epoch, 25_088.0 + 10 * epoch),
        "fc2": LayerHealth(silent, 0.0, 0.2 - 0.02 * epoch, 0.004, 0.8, 96.0 * epoch),
    }
    warnings = [
        HealthWarning("fc1", "vanishing_gradient", f"fc1: weight gradient vanishing ({4e-5 / epoch:.0e}): fc2 is "
                      "silent: fix that first"),
        HealthWarning("fc2", "silent", f"fc2: {100 * silent:.0f}% silent: lower the threshold or raise the init scale"),
    ]  # fmt: skip
    total = sum(layer.synops or 0.0 for layer in layers.values())
    return HealthReport(epoch=epoch, step=step, by_layer=layers, synops=total, warnings=warnings, time=at)


def fake_events(
    name: str = "fake-run", epochs: int = 3, steps: int = 20, finish: bool = True, health: bool = True
) -> list[Event]:
    """A whole run as the engine would emit it, with fixed times: snapshots need the same pixels every time.
    ``health``: a health report after each evaluation."""
    clock = 1_700_000_000.0
    events: list[Event] = [
        RunStarted(
            run_name=name,
            device="cpu",
            config=copy.deepcopy(TINY),
            num_parameters=25_450,
            train_size=200,
            test_size=100,
            steps_per_epoch=steps,
            epochs=epochs,
            time=clock,
        )  # fmt: skip
    ]
    step = 0
    for epoch in range(1, epochs + 1):
        for batch in range(1, steps + 1):
            step += 1
            clock += 0.05
            loss = 2.3 * math.exp(-step / 25) + 0.4 + 0.15 * math.sin(step * 1.7)
            acc = min(0.95, 0.1 + 0.8 * (1 - math.exp(-step / 20)) + 0.05 * math.cos(step))
            speed = 4000.0 + 10 * batch
            events.append(StepMetrics(epoch=epoch, step=step, batch=batch, batches=steps, loss=loss, accuracy=acc,
                                      samples_per_s=speed, lr=2e-3, step_time=0.05, time=clock))  # fmt: skip
        clock += 0.5
        test_acc = 0.3 + 0.15 * epoch
        events.append(EpochMetrics(epoch=epoch, step=step, train_loss=1.2 / epoch, train_accuracy=0.25 + 0.15 * epoch,
                                   test_loss=1.3 / epoch, test_accuracy=test_acc,
                                   spike_rates={"fc1": 0.05 + 0.03 * epoch, "fc2": 0.2 - 0.02 * epoch},
                                   epoch_time=1.5, best_accuracy=test_acc, time=clock))  # fmt: skip
        if health:
            events.append(_health(epoch, step, clock))
        events.append(_probe(epoch, step, 0.5 + 0.4 * epoch, clock))
    if finish:
        events.append(RunFinished(status="completed", epochs_done=epochs, steps=step, best_accuracy=0.3 + 0.15 * epochs,
                                  final_test_accuracy=0.3 + 0.15 * epochs, final_test_loss=1.3 / epochs,
                                  wall_time=clock - 1_700_000_000.0 + 1.0, time=clock + 1))  # fmt: skip
    return events


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Let the app run until ``condition()`` holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or condition}")
        await pilot.pause(0.05)


async def show_pane(pilot: Any, digit: str) -> None:
    """Press a pane's digit and wait until the focus the switch gives that pane's home has landed (it lands
    after the next refresh, so a widget focused at once could lose focus to it on a loaded machine)."""
    await pilot.press(digit)
    await pilot.app.main.wait_for_refresh()  # runs after the switch's own after-refresh callback


def lab_classes() -> list[type]:
    """Every Textual class (app, screens, widgets) that the lab defines."""
    from textual.dom import DOMNode

    import snnlab.tui

    found: list[type] = []
    for info in pkgutil.walk_packages(snnlab.tui.__path__, "snnlab.tui."):
        module = importlib.import_module(info.name)
        found += [c for c in vars(module).values()
                  if inspect.isclass(c) and issubclass(c, DOMNode) and c.__module__ == info.name]  # fmt: skip
    return found


@pytest.fixture(autouse=True)
def _lab_mounted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lab mounts its hidden panes and the collapsed sections of its form just after the first frame
    (``textual.lazy.Lazy``), so that the frame comes sooner. A pilot could press a key in that instant, a
    user hardly: the tests begin once everything is mounted (test_startup.py covers the instant)."""
    from textual.lazy import Lazy

    from snnlab.tui.app import SnnLabApp

    original = SnnLabApp.run_test

    @contextlib.asynccontextmanager
    async def run_test(self: SnnLabApp, *args: Any, **kwargs: Any) -> Any:
        async with original(self, *args, **kwargs) as pilot:
            await wait_for(pilot, lambda: not self.main.query(Lazy), 30, "the lazily mounted widgets")
            yield pilot

    run_test.unpatched = original  # type: ignore[attr-defined]  # for the test of that instant
    monkeypatch.setattr(SnnLabApp, "run_test", run_test)


async def runs_listed(pilot: Any, timeout: float = 20.0) -> None:
    """Wait until the runs list (r) shows the rows of its folder (a thread worker reads them)."""
    await wait_for(pilot, lambda: getattr(pilot.app.screen, "ready", False), timeout, "the runs list's rows")


_SVG_TEXT = re.compile(
    r'<text class="[^"]*" x="([\d.]+)" y="[\d.]+" textLength="[\d.]+" '
    r'clip-path="url\(#[\w-]*-line-(\d+)\)">([^<]*)</text>'
)


def svg_lines(svg: str) -> list[str]:
    """The characters of a Textual SVG screenshot, one string per terminal line (colours dropped)."""
    cells: dict[int, dict[int, str]] = {}
    for x, line, text in _SVG_TEXT.findall(svg):
        column = round(float(x) / 12.2)  # Textual's SVGs draw a cell 12.2 units wide
        cells.setdefault(int(line), {})[column] = html.unescape(text)
    out = []
    for line in range(max(cells, default=-1) + 1):
        row = ""
        for column, text in sorted(cells.get(line, {}).items()):
            row = row.ljust(column) + text
        out.append(row.rstrip())
    return out


@pytest.fixture
def snap_compare(snap_compare: Callable[..., bool], request: pytest.FixtureRequest) -> Callable[..., bool]:
    """The plugin's comparison, printing a text diff on a mismatch: CI keeps the output, not the HTML report."""

    def compare(app: Any, *args: Any, **kwargs: Any) -> bool:
        result = snap_compare(app, *args, **kwargs)
        if not result:
            from pytest_textual_snapshot import node_to_report_path

            data = pickle.loads(node_to_report_path(request.node).read_bytes())
            expected, actual = svg_lines(data[1]), svg_lines(data[2])
            diff = list(difflib.unified_diff(expected, actual, "snapshot", "this run", lineterm=""))
            print("\n".join(diff) if diff else "the snapshot and this run differ only in colours or styles")
        return result

    return compare
