"""How long one plot takes to draw: snnlab's braille engine against plotext, on the Training pane's case.

The case: the loss plot with the live run (raw and smoothed, 2000 points each, plus test points) and 3
overlaid runs (2000 points each, plus test points), at the size the plot has in a 120x36 terminal with the
Training pane alone (one plot of its 2x2 grid: 56x13 cells) and at a whole 120x36 screen (118x34). The lab
redraws at 4 Hz, several plots a time, so a plot should cost a few milliseconds. plotext (if installed)
draws the same lines, without test points, legend or bands, which is less work than snnlab's.

    python benchmarks/bench_plots.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

from snnlab.curves import smoothed
from snnlab.plotting import Series, render_plot

POINTS = 2000
SIZES = ((56, 13), (118, 34))


def curves(k: int, rng: random.Random) -> tuple[list[float], list[float]]:
    xs = [float(10 * i) for i in range(POINTS)]
    ys = [2.3 * math.exp(-x / 4000) + 0.3 + 0.1 * k + 0.15 * rng.random() for x in xs]
    return xs, ys


def case() -> list[Series]:
    rng = random.Random(0)
    series: list[Series] = []
    for k in range(3):  # the overlays, behind
        xs, ys = curves(k + 1, rng)
        series.append(Series(xs, smoothed(ys), f"color({k + 2})", f"#{k + 1}"))
        series.append(Series(xs[199::200], ys[199::200], f"color({k + 2})", f"#{k + 1} test", "points", legend=False))
    xs, ys = curves(0, rng)
    series.append(Series(xs, ys, "grey35", z=-1))
    series.append(Series(xs, smoothed(ys), "cyan", "train", z=1))
    series.append(Series(xs[199::200], ys[199::200], "magenta", "test", "points", z=1))
    return series


def timed(draw, repeats: int) -> tuple[float, float]:
    draw()  # warm-up: imports, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        draw()
        times.append(1000 * (time.perf_counter() - start))
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def plotext_draw(series: list[Series], width: int, height: int):
    import plotext as plt

    lines = [s for s in series if s.kind == "line"]

    def draw() -> str:
        if hasattr(plt, "clear_figure"):  # plotext 5.x
            plt.clear_figure()
            plt.plotsize(width, height)
            for s in lines:
                plt.plot(list(s.xs), list(s.ys), marker="braille")
            return plt.build()
        fig = plt.figure  # plotext 6.x
        fig.clear()
        fig.plot_size(width, height)
        for s in lines:
            fig.draw(fig.signal(list(s.xs), list(s.ys)).lines(True))
        return fig.build().string(colorless=False)

    return draw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    series = case()
    try:
        import plotext  # noqa: F401

        have_plotext = True
    except ImportError:
        have_plotext = False
    print(f"loss plot: live run + 3 overlays, {POINTS} points each; median / p95 of {args.repeats} draws, ms")
    print(f"{'size':>8}  {'snnlab':>15}  {'plotext':>15}")
    for width, height in SIZES:
        ours = timed(lambda w=width, h=height: render_plot(series, w, h, x_label="step"), args.repeats)
        theirs = timed(plotext_draw(series, width, height), args.repeats) if have_plotext else None
        other = f"{theirs[0]:6.1f} / {theirs[1]:6.1f}" if theirs else "not installed"
        print(f"{width:>4}x{height:<3}  {ours[0]:6.1f} / {ours[1]:6.1f}  {other:>15}")


if __name__ == "__main__":
    main()
