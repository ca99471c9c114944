"""Regenerate the README screenshots (assets/lab-*.svg) from a real short training run.

    python -m tests.tui.screenshots [--runs-dir /tmp/snnlab-shots]

Not a test: it trains the quickstart preset on part of the bundled data, then a surrogate comparison,
and saves one SVG per pane at 120x36; then runs a small sweep and saves it opened in the Surrogates pane.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from snnlab.config import find_preset, load_config
from snnlab.sweep import run_sweep
from snnlab.tui.app import make_app

ASSETS = Path(__file__).resolve().parents[2] / "assets"


async def shoot(runs_dir: str, size: tuple[int, int]) -> None:
    overrides = [f"run.runs_dir={runs_dir}", "data.train_size=2000", "data.test_size=500", "train.epochs=4"]
    app = make_app(config=load_config(find_preset("quickstart"), overrides))
    app.animation_level = "none"

    async def until(condition, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            await pilot.pause(0.1)

    async def save(name: str) -> None:
        await pilot.pause(0.5)
        app.clear_notifications()
        await pilot.pause(0.2)
        app.save_screenshot(f"lab-{name}.svg", str(ASSETS))

    async with app.run_test(size=size) as pilot:
        await pilot.press("1")
        await save("network")
        await pilot.press("2", "s")
        await until(lambda: app.view.status == "completed")
        await save("training")
        await pilot.press("3", "left_square_bracket", "left_square_bracket", "n")
        await save("inside")
        await pilot.press("4", "c")
        await until(lambda: app.compare and all(e.metrics.finished for e in app.compare) and app.job is None)
        await save("surrogates")

    # A sweep: 3 surrogates x 2 seeds, each run its own process, then opened like `snnlab watch SWEEP`.
    grid = {"model.neuron.surrogate": ["atan", "fast_sigmoid", "sigmoid"]}
    result = await asyncio.to_thread(run_sweep, find_preset("quickstart"), grid, 2, overrides, 2, lambda *_: None)
    app = make_app(sweep=result.sweep_dir)
    app.animation_level = "none"
    async with app.run_test(size=size) as pilot:
        await until(lambda: len(app.compare) == 6)
        await save("sweep")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(shoot(args.runs_dir or tmp, (120, 36)))
    print("\n".join(str(p) for p in sorted(ASSETS.glob("lab-*.svg"))))


if __name__ == "__main__":
    main()
