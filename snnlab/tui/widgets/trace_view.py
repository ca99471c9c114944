"""Membrane traces of chosen neurons over the T steps of one sample, with the threshold and the spikes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from snnlab.plotting import HLine, Series
from snnlab.tui import palette
from snnlab.tui.widgets.metric_plot import MetricPlot


class TraceView(MetricPlot):
    """``show_layer(layer, sample, neurons)`` draws membrane[t, sample, n] for each chosen neuron."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("membrane", x_label="time step", empty="no probe recorded yet", **kwargs)

    def show_layer(self, layer: dict[str, Any] | None, sample: int, neurons: Sequence[int]) -> None:
        """``layer`` is one entry of a probe's ``layers``: membrane/spikes [T, S, N], threshold, neurons.

        ``neurons`` are positions in the probe's recorded neurons (not model indices)."""
        if layer is None:
            self.show([], empty="no probe for this layer")
            return
        membrane = np.asarray(layer["membrane"], dtype=np.float32)  # [T, S, N]
        spikes = np.asarray(layer["spikes"])
        recorded = layer.get("threshold", 1.0)
        threshold = None if recorded is None else float(recorded)  # None: a layer that never fires
        steps = list(range(1, membrane.shape[0] + 1))
        series: list[Series] = []
        for k, n in enumerate(neurons):
            color = palette.series(k)
            model_index = layer["neurons"][n] if n < len(layer["neurons"]) else n
            trace = membrane[:, sample, n].tolist()
            series.append(Series(steps, trace, color, f"#{model_index}"))
            fired = [t for t in steps if spikes[t - 1, sample, n]]
            if fired:
                # On the neuron's own trace, so overlaid neurons' spikes stay apart.
                series.append(Series(fired, [trace[t - 1] for t in fired], color, kind="points", marker="▲"))
        low = float(min(membrane[:, sample, list(neurons)].min(), 0.0)) if len(neurons) else 0.0
        top = 0.0 if threshold is None else threshold
        high = float(max(membrane[:, sample, list(neurons)].max(), top)) if len(neurons) else top
        self.show(
            series,
            hlines=[] if threshold is None else [HLine(threshold, palette.AXIS, f"threshold {threshold:g}")],
            x_range=(1, max(len(steps), 2)),
            y_range=(low, high + 0.1 * (high - low or 1)),
        )
