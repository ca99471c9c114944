"""Key-press-to-screen latency of the lab while it trains the quickstart preset.

For each worker mode (training in a child process, or in a thread of the UI process) and for an
idle lab as the baseline, switch panes with a key many times and time each press from the moment the
key event reaches the app to the moment the frame showing the other pane is written to the terminal
driver (``App._display``). Pilot's own waiting (it polls until the process looks idle) is not counted.
Prints the median and p95 in milliseconds and the training speed reached meanwhile, and in as long a
window right after with no key pressed (what the UI's work costs the training).

Then the start-up: ``python -m snnlab`` in a pseudo-terminal (120x36), timed from the launch to the
first frame written to the terminal, with the UI process's resident memory at that moment and whether it
has loaded torch (its shared library mapped). The median of ``--starts`` launches.

    python benchmarks/bench_tui_latency.py [--presses 60] [--starts 5]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import pty
import select
import signal
import statistics
import struct
import sys
import tempfile
import termios
import time
from typing import Any

from textual import events

from snnlab.config import find_preset, load_config
from snnlab.engine.events import StepMetrics
from snnlab.runs import read_events
from snnlab.tui.app import make_app


async def measure(mode: str | None, presses: int, runs_dir: str) -> dict[str, Any]:
    # Enough epochs that the run is still training when the presses end: steps/s is the training speed.
    config = load_config(find_preset("quickstart"), [f"run.runs_dir={runs_dir}", "train.epochs=500"])
    app = make_app(config=config, mode=mode or "process")
    app.animation_level = "none"
    latencies: list[float] = []
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.5)
        if mode is not None:
            await pilot.press("2", "s")
            deadline = time.monotonic() + 60
            while app.view.step < 5 and time.monotonic() < deadline:  # past start-up: training for real
                await pilot.pause(0.05)
        frames: list[tuple[float, str]] = []
        display = app._display

        def recording_display(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            frames.append((time.perf_counter(), app.main.active))

        app._display = recording_display  # type: ignore[method-assign]
        pressing_from = time.time()
        for i in range(presses):
            key, pane = ("3", "inside") if i % 2 == 0 else ("2", "training")
            t0 = time.perf_counter()
            app.post_message(events.Key(key, key))
            while not any(t > t0 and active == pane for t, active in frames[-5:]):
                await asyncio.sleep(0.001)
            shown = next(t for t, active in frames[-5:] if t > t0 and active == pane)
            latencies.append(1000 * (shown - t0))
            await asyncio.sleep(0.25)  # a user does not press keys faster than this
        # The same time with no key pressed, right after: the training speed the UI's own work is set against
        # (the machine's load changes slowly, the pane switching is what differs).
        quiet_from = time.time()
        if mode is not None:
            await asyncio.sleep(quiet_from - pressing_from)
        quiet_to = time.time()
        run_path = app.job.run_path if app.job is not None else None
        if app.job is not None:
            await pilot.press("x")
    # Steps counted by the engine's own timestamps (events.jsonl), not by what the UI had drained: a busy UI
    # reads its events late, and counting its view would move steps from one window into the next.
    pressing = quiet = float("nan")
    if run_path is not None:
        pressing = _steps_per_s(run_path, pressing_from, quiet_from)
        quiet = _steps_per_s(run_path, quiet_from, quiet_to)
    latencies.sort()
    return {
        "mode": mode or "idle (no training)",
        "median": statistics.median(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "max": latencies[-1],
        "steps/s": pressing,
        "quiet steps/s": quiet,
    }


def _steps_per_s(run_path: str | os.PathLike[str], start: float, end: float) -> float:
    """Optimizer steps per second between wall-clock ``start`` and ``end``, from the run's step events."""
    steps = [(e.time, e.step) for e in read_events(run_path) if isinstance(e, StepMetrics)]
    reached = [step for t, step in steps if t <= start], [step for t, step in steps if t <= end]
    return (max(reached[1], default=0) - max(reached[0], default=0)) / (end - start)


FIRST_FRAME_MARK = b"Network"  # the first pane's title: written once the main screen is composed


def start_up(runs_dir: str, timeout: float = 60.0) -> dict[str, Any]:
    """Launch the lab in a pseudo-terminal; seconds to its first frame, its RSS then, whether torch is in."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the lab
        os.chdir(runs_dir)
        os.execv(sys.executable, [sys.executable, "-m", "snnlab"])
    t0 = time.perf_counter()
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    seen, first = b"", None
    try:
        while time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    break
                if FIRST_FRAME_MARK in seen:
                    first = time.perf_counter() - t0
                    break
        rss, torch_loaded = _memory(pid)
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)
    if first is None:
        raise SystemExit(f"the lab drew no frame in {timeout:.0f} s; its output began {seen[:300]!r}")
    return {"first frame s": first, "rss MB": rss, "torch": torch_loaded}


def _memory(pid: int) -> tuple[float, bool]:
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    with open(f"/proc/{pid}/maps") as f:
        torch_loaded = any("libtorch" in line for line in f)
    return rss, torch_loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument("--modes", default="idle,process,thread", help="'' for start-up only")
    parser.add_argument("--starts", type=int, default=5, help="launches timed for the start-up (0: none)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        starts = [start_up(runs_dir) for _ in range(args.starts)]
        if starts:
            times = sorted(s["first frame s"] for s in starts)
            print(f"start-up, {len(starts)} launches of `python -m snnlab` at 120x36: first frame median "
                  f"{statistics.median(times):.2f} s (min {times[0]:.2f}, max {times[-1]:.2f}); UI process "
                  f"RSS {statistics.median(s['rss MB'] for s in starts):.0f} MB; torch loaded: "
                  f"{any(s['torch'] for s in starts)}")  # fmt: skip
        for mode in filter(None, args.modes.split(",")):
            rows.append(asyncio.run(measure(None if mode == "idle" else mode, args.presses, runs_dir)))
    if not rows:
        return
    print(f"{'worker':<22}{'median ms':>10}{'p95 ms':>10}{'max ms':>10}{'steps/s pressing':>18}{'steps/s quiet':>15}")
    for r in rows:
        print(f"{r['mode']:<22}{r['median']:>10.1f}{r['p95']:>10.1f}{r['max']:>10.1f}{r['steps/s']:>18.1f}"
              f"{r['quiet steps/s']:>15.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
