"""The colours the lab chooses in Python, as Rich colour names: everything that is not in app.tcss.

app.tcss styles the widgets. What is drawn inside them (plots, the raster, table cells, the status and
progress lines) is a Rich renderable made by a plain function that the CLI's tests call without an app,
so those colours cannot come from the stylesheet; they come from here, named by what they mean. A run,
its curves, its legend entry and its row in the comparison table share one colour: ``series(k)``.
"""

from __future__ import annotations

from snnlab import plotting  # the plotting engine's own defaults, which the CLI's plots use too

SERIES = ("cyan", "magenta", "yellow", "green", "orange1", "dodger_blue1", "orchid", "salmon1", "spring_green2")
"""Curves told apart by colour alone: layers, neurons, surrogates, sweep combinations."""

OVERLAYS = ("orange1", "spring_green2", "orchid", "dodger_blue1", "gold1", "salmon1")
"""Runs overlaid on the Training plots; none is the live run's ACCENT or its TEST colour."""

ACCENT = plotting.ACCENT  # the live run's curves, ETA, the slider's filled part, keys in help
TEST = "magenta"  # test-set points over per-step training curves
RAW = "grey35"  # per-step values behind their smoothed curve
AXIS = plotting.AXIS  # ticks, axes, labels of a table's rows, binding ids
FAINT = "grey42"  # the empty part of a bar or slider
REFERENCE = plotting.REFERENCE  # a dashed reference line
STEP = "grey70"  # the Heaviside step that surrogates stand in for
GOOD = "green"  # progress done, a valid config, a right prediction
BAD = "red"  # errors, a wrong prediction
NEUTRAL = "white"  # the slider's knob; a state or surrogate the lab does not know

STATES = {
    "idle": AXIS,
    "starting": ACCENT,
    "running": GOOD,
    "paused": "yellow",
    "stopping": "yellow",
    "completed": GOOD,
    "stopped": "yellow",
    "failed": BAD,
    "watching": ACCENT,
}
"""The run's state in the status bar."""

RASTER_COLD = (30, 30, 46)  # no spike in a raster cell
RASTER_HOT = (255, 214, 10)  # every neuron of a raster cell fired


def series(k: int) -> str:
    """The colour of the ``k``-th curve of a plot."""
    return SERIES[k % len(SERIES)]


def overlay(k: int) -> str:
    """The colour of the ``k``-th run overlaid on the Training plots."""
    return OVERLAYS[k % len(OVERLAYS)]
