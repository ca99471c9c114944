"""A plot widget: holds the series it was last given and draws them with :func:`render_plot` at its size.

It redraws only when handed new series or resized; the Training pane hands it data from a timer at a
few Hz, so the cost of drawing never scales with the training step rate.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

from snnlab.tui.widgets.plotting import HLine, Series, render_plot


class MetricPlot(Widget):
    """A titled line plot. ``show(series, ...)`` replaces what it draws."""

    def __init__(
        self,
        title: str = "",
        *,
        x_label: str = "",
        empty: str = "no data yet",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.border_title = title
        self.x_label = x_label
        self.empty = empty
        self.series: list[Series] = []
        self._options: dict = {}
        self._cache: tuple[tuple, Text] | None = None

    def show(
        self,
        series: Sequence[Series],
        *,
        hlines: Sequence[HLine] = (),
        x_range: tuple[float, float] | None = None,
        y_range: tuple[float, float] | None = None,
        empty: str | None = None,
    ) -> None:
        self.series = list(series)
        self._options = {"hlines": list(hlines), "x_range": x_range, "y_range": y_range}
        if empty is not None:
            self.empty = empty
        self._cache = None
        self.refresh()

    def render(self) -> Text:
        width, height = self.content_size
        key = (width, height)
        if self._cache is None or self._cache[0] != key:
            text = render_plot(self.series, width, height, x_label=self.x_label, empty=self.empty, **self._options)
            self._cache = (key, text)
        return self._cache[1]
