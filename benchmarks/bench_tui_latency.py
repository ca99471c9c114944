"""Key-press-to-screen latency of the lab while it trains the quickstart preset.

For each worker mode (training in a child process, or in a thread of the UI process) and for an
idle lab as the baseline, switch panes with a key many times and time each press from the moment the
key event reaches the app to the moment the frame showing the other pane is written to the terminal
driver (``App._display``). Pilot's own waiting (it polls until the process looks idle) is not counted.
Prints the median and p95 in milliseconds and the training speed reached meanwhile.

    python benchmarks/bench_tui_latency.py [--presses 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from typing import Any

from textual import events

from snnlab.config import find_preset, load_config
from snnlab.tui.app import make_app


async def measure(mode: str | None, presses: int, runs_dir: str) -> dict[str, Any]:
    config = load_config(find_preset("quickstart"), [f"run.runs_dir={runs_dir}", "train.epochs=20"])
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
        first_step, started = app.view.step, time.monotonic()
        for i in range(presses):
            key, pane = ("3", "inside") if i % 2 == 0 else ("2", "training")
            t0 = time.perf_counter()
            app.post_message(events.Key(key, key))
            while not any(t > t0 and active == pane for t, active in frames[-5:]):
                await asyncio.sleep(0.001)
            shown = next(t for t, active in frames[-5:] if t > t0 and active == pane)
            latencies.append(1000 * (shown - t0))
            await asyncio.sleep(0.25)  # a user does not press keys faster than this
        steps = app.view.step - first_step
        elapsed = time.monotonic() - started
        if app.job is not None:
            await pilot.press("x")
    latencies.sort()
    return {
        "mode": mode or "idle (no training)",
        "median": statistics.median(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "max": latencies[-1],
        "steps/s": steps / elapsed if mode else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument("--modes", default="idle,process,thread")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for mode in args.modes.split(","):
            rows.append(asyncio.run(measure(None if mode == "idle" else mode, args.presses, runs_dir)))
    print(f"{'worker':<22}{'median ms':>10}{'p95 ms':>10}{'max ms':>10}{'train steps/s':>15}")
    for r in rows:
        print(f"{r['mode']:<22}{r['median']:>10.1f}{r['p95']:>10.1f}{r['max']:>10.1f}{r['steps/s']:>15.1f}")


if __name__ == "__main__":
    main()
