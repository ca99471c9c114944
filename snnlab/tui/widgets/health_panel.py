"""The health panel: per layer, why the network may not learn, from the last evaluation's health report.

One row per layer (silent and saturated shares, spike rate, mean surrogate gradient, weight-gradient norm,
SynOps per sample), the cells past a ``run.health`` threshold in the warning colour, then one line per
warning with its hint. The numbers come from :class:`~snnlab.engine.events.HealthReport`, the same event
that ``snnlab run`` prints its warnings from; :func:`health_view` is a plain function, drawn the same way
in a test without an app.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from snnlab.engine.events import HealthReport
from snnlab.formatting import HEALTH_COLUMNS, format_count, health_cells
from snnlab.tui import palette

# The column of HEALTH_COLUMNS that each problem is about.
_PROBLEM_COLUMN = {"silent": 0, "saturated": 1, "vanishing_gradient": 4}


def health_view(report: HealthReport | None) -> RenderableType:
    """The table and the warnings of ``report``; a line saying when the first comes, before one exists."""
    if report is None:
        return Text("reported after each evaluation: silent and saturated neurons, gradients, SynOps", palette.AXIS)
    flagged = {(w.layer, _PROBLEM_COLUMN[w.problem]) for w in report.warnings if w.problem in _PROBLEM_COLUMN}
    rows = {name: health_cells(layer) for name, layer in report.by_layer.items()}
    table = Table(box=None, padding=(0, 1), header_style=palette.AXIS, pad_edge=False)
    table.add_column("layer", no_wrap=True, overflow="ellipsis")  # the one that gives way on a narrow pane
    for k, column in enumerate(HEALTH_COLUMNS):
        width = max([len(column), *(len(cells[k]) for cells in rows.values())])
        table.add_column(column, justify="right", no_wrap=True, min_width=width)
    for name, cells in rows.items():
        styled = [
            Text(cell, f"bold {palette.BAD}" if (name, k) in flagged else "", justify="right")
            for k, cell in enumerate(cells)
        ]
        warned = any(layer_name == name for layer_name, _ in flagged)
        table.add_row(Text(name, f"bold {palette.BAD}" if warned else ""), *styled)
    lines = [Text.assemble(("▲ ", palette.BAD), warning.message) for warning in report.warnings]
    return Group(table, *lines)


def health_title(report: HealthReport | None) -> str:
    if report is None:
        return "health"
    return f"health · epoch {report.epoch} · {format_count(report.synops)} SynOps/sample"


class HealthPanel(Static):
    """Shows :func:`health_view` of the run's last report; the app calls :meth:`show` from its redraw timer."""

    def __init__(self, **kwargs) -> None:
        super().__init__(health_view(None), **kwargs)
        self._shown: HealthReport | None = None
        self.border_title = health_title(None)

    def show(self, report: HealthReport | None) -> None:
        if report is self._shown:
            return
        self._shown = report
        self.border_title = health_title(report)
        self.update(health_view(report))
