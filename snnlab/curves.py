"""What is done to a run's numbers before they are plotted: smoothing, the choice of x, seeds into a band.

Plain Python over lists (no torch, no user-interface library), shared by the lab and the CLI, so that a
smoothed curve has the same values in both and in the tests that compute them by hand.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

# --------------------------------------------------------------------------------------------- smoothing


@dataclass(frozen=True)
class Smoothing:
    """How a per-step curve is smoothed.

    ``ema``: an exponential moving average with weight ``amount`` on the past,
    ``s[i] = amount * s[i-1] + (1 - amount) * v[i]``, divided by ``1 - amount ** (i + 1)`` (the sum of the
    weights so far) so the first points are not pulled towards 0, as TensorBoard's slider does.
    ``mean``: the mean of the last ``amount`` points (fewer at the start). ``auto``: an EMA whose weight
    follows the length, about a thirtieth of the points. ``off``: the values as they are. Amounts count
    stored points: a long run keeps its per-step series downsampled, one point per bucket of steps."""

    kind: str = "auto"  # auto | off | ema | mean
    amount: float = 0.0

    @property
    def label(self) -> str:
        if self.kind == "ema":
            return f"EMA {self.amount:g}"
        if self.kind == "mean":
            return f"mean of {int(self.amount)}"
        return "auto (EMA)" if self.kind == "auto" else "off"

    def apply(self, values: Sequence[float]) -> list[float]:
        if self.kind == "off":
            return list(values)
        if self.kind == "mean":
            return moving_mean(values, int(self.amount))
        weight = auto_weight(len(values)) if self.kind == "auto" else self.amount
        return ema(values, weight)


SMOOTHINGS = (
    Smoothing("auto"),
    Smoothing("off"),
    Smoothing("ema", 0.6),
    Smoothing("ema", 0.9),
    Smoothing("ema", 0.99),
    Smoothing("mean", 10),
    Smoothing("mean", 50),
)
"""The smoothings a key cycles through, in order."""


def next_smoothing(current: Smoothing) -> Smoothing:
    k = SMOOTHINGS.index(current) if current in SMOOTHINGS else -1
    return SMOOTHINGS[(k + 1) % len(SMOOTHINGS)]


def auto_weight(n: int) -> float:
    """The EMA weight of an average over about n/30 points: ``1 - 2 / (window + 1)``."""
    window = max(1, n // 30)
    return 1.0 - 2.0 / (window + 1)


def ema(values: Sequence[float], weight: float) -> list[float]:
    """Bias-corrected exponential moving average (see :class:`Smoothing`); a non-finite value is passed
    through and skipped by the average."""
    out: list[float] = []
    avg = norm = 0.0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        avg = weight * avg + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out.append(avg / norm)
    return out


def moving_mean(values: Sequence[float], window: int) -> list[float]:
    """Mean of the last ``window`` finite values at each point (a non-finite value is passed through)."""
    window = max(window, 1)
    out: list[float] = []
    recent: list[float] = []
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        recent.append(v)
        if len(recent) > window:
            recent.pop(0)
        out.append(sum(recent) / len(recent))
    return out


def smoothed(values: Sequence[float]) -> list[float]:
    """A per-step training curve as drawn by default: :class:`Smoothing` ``auto``."""
    return Smoothing().apply(values)


# --------------------------------------------------------------------------------------------- x axes

X_AXES = ("step", "epoch", "time")
"""What a per-step curve can be drawn against: the global step, the epoch (fractional within one) or
the wall time in seconds since the run first started (pauses and the gaps between resumed sessions
included, as TensorBoard's "relative" axis)."""


def next_x_axis(current: str) -> str:
    return X_AXES[(X_AXES.index(current) + 1) % len(X_AXES)] if current in X_AXES else X_AXES[0]


def x_label(axis: str) -> str:
    return "time s" if axis == "time" else axis


def steps_to(axis: str, steps: Sequence[float], *, steps_per_epoch: int, clock: tuple[Sequence[float], Sequence[float]],
             start: float | None) -> list[float]:  # fmt: skip
    """``steps`` on ``axis``. Epochs: step / steps_per_epoch (a step at an epoch's end reads a whole number).
    Time: from ``clock`` (step points and their event times, ascending), the time of the first clock point
    at or after each step, minus ``start``; NaN where the run logged no time for it."""
    if axis == "epoch":
        per = steps_per_epoch or 1
        return [s / per for s in steps]
    if axis == "time":
        cxs, cts = clock
        out = []
        for s in steps:
            i = bisect_right(cxs, s - 1e-9)
            ok = i < len(cxs) and start is not None
            out.append(float(cts[i]) - start if ok else math.nan)  # type: ignore[operator]
        return out
    return [float(s) for s in steps]


# --------------------------------------------------------------------------------------------- seed bands


@dataclass
class SeedBand:
    """The runs of one sweep cell on a common x grid: their mean and their spread.

    ``lo``/``hi`` are the minimum and maximum of the runs at each x (``spread="minmax"``) or the mean
    minus and plus the sample standard deviation (``spread="std"``); ``n`` is how many runs cover each x."""

    xs: list[float]
    mean: list[float]
    lo: list[float]
    hi: list[float]
    n: list[int]


def seed_band(runs: Sequence[tuple[Sequence[float], Sequence[float]]], *, points: int = 400,
              spread: str = "minmax") -> SeedBand:  # fmt: skip
    """Mean and spread of several runs' (x, y) curves (x ascending).

    Each run is read at every x of a grid by linear interpolation between its two neighbouring points; a
    run counts at x only between its first and last point, so a seed that is behind (a live sweep) leaves
    the band where it stops instead of pulling the mean. With at most ``points`` distinct x over all runs,
    the grid is those x; otherwise ``points`` evenly spaced x from the first to the last."""
    curves = [
        ([float(x) for x, y in zip(xs, ys, strict=False) if math.isfinite(y)],
         [float(y) for y in ys if math.isfinite(y)])
        for xs, ys in runs
    ]  # fmt: skip
    curves = [c for c in curves if c[0]]
    if not curves:
        return SeedBand([], [], [], [], [])
    every = sorted({x for xs, _ in curves for x in xs})
    if len(every) > points:
        a, b = every[0], every[-1]
        every = [a + (b - a) * i / (points - 1) for i in range(points)]
    out = SeedBand([], [], [], [], [])
    for x in every:
        values = [v for xs, ys in curves if (v := _at(xs, ys, x)) is not None]
        if not values:
            continue
        mean = sum(values) / len(values)
        if spread == "std":
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            lo, hi = mean - sd, mean + sd
        else:
            lo, hi = min(values), max(values)
        out.xs.append(x)
        out.mean.append(mean)
        out.lo.append(lo)
        out.hi.append(hi)
        out.n.append(len(values))
    return out


def _at(xs: list[float], ys: list[float], x: float) -> float | None:
    if not xs[0] <= x <= xs[-1]:
        return None
    i = bisect_right(xs, x)
    if i >= len(xs) or xs[i - 1] == x:
        return ys[i - 1]
    x0, x1 = xs[i - 1], xs[i]
    return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - x0) / (x1 - x0)
