"""How numbers look in a cell of any table snnlab shows (durations, percentages, plain numbers), and how an
error reads in a one-line message.

Shared by every face (the console, the lab, sweeps), so it imports none of them and nothing heavy: a
face that borrowed these from another face would load that face's libraries along with them.
"""

from __future__ import annotations

import math
from typing import Any


def format_duration(seconds: float | None) -> str:
    """``12.3s``, ``4m 05s``, ``2h 03m``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_percent(fraction: float | None) -> str:
    """A fraction in [0, 1] (how events store accuracies) as ``85.3%``; ``-`` when unknown."""
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def format_accuracy(fraction: float | None, decoder: str) -> str:
    """``80.6% (rate_first)``: an accuracy with the decoder that measured it (``-`` when there is none yet)."""
    return f"{format_percent(fraction)} ({decoder})" if fraction is not None else format_percent(None)


def format_number(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals; ``-`` when unknown."""
    return "-" if value is None else f"{value:.{digits}f}"


# A health report's columns (``snnlab.engine.events.LayerHealth``), as the console and the lab both show them,
# short enough for the lab's Inside pane beside the Training pane: silent and saturated shares of the neurons,
# spike rate, mean surrogate gradient dS/dU, weight-gradient norm, synaptic operations per sample.
HEALTH_COLUMNS = ("silent", "satur.", "rate", "dS/dU", "|∇W|", "SynOps")


def health_cells(layer: Any) -> tuple[str, ...]:
    """One layer of a health report as the cells under :data:`HEALTH_COLUMNS`; ``-`` where a number does not
    apply (a readout that never fires, a layer without weights)."""
    return (
        _share(layer.silent),
        _share(layer.saturated),
        format_number(layer.rate),
        _short(layer.surrogate_grad),
        _short(layer.weight_grad_norm),
        format_count(layer.synops),
    )


def format_count(value: float | None) -> str:
    """A large count the short way: ``466``, ``49.2k``, ``1.3M``, ``2.0G``; ``-`` when unknown."""
    if value is None or not math.isfinite(value):
        return "-"
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


def _share(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.0f}%"


def _short(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def first_line(error: BaseException) -> str:
    """An exception's first line of text, for a one-line message; its type's name when it has no text."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
