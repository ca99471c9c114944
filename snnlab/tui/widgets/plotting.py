"""The lab's name for the plotting engine, which lives in :mod:`snnlab.plotting` (the CLI draws with it
too, and a face never borrows from another face); the smoothing lives in :mod:`snnlab.curves`."""

from snnlab.curves import ema, smoothed
from snnlab.plotting import Band, HLine, Series, data_range, fmt_number, render, render_plot

__all__ = ["Band", "HLine", "Series", "data_range", "ema", "fmt_number", "render", "render_plot", "smoothed"]
