"""The Surrogates pane: compare surrogate gradients on paper, then in training.

Left: choose surrogates (listed under the library whose formula each one matches) and their parameters.
Right, top: each one's smooth stand-in for the Heaviside step and its derivative (the gradient the
network actually sees), from the same registry the engine trains with, computed in a child process
(:mod:`snnlab.tui.surrogate_curves`) so that the UI never imports torch. Right, below: "compare runs"
trains the current config once per chosen surrogate (queued one after another in the background worker);
their loss and accuracy curves are overlaid and a table gives final accuracy, wall time and spike rate. A
sweep folder (``snnlab sweep``) opens into the same plots and table: one curve per run, one colour per
grid combination.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.strip import Strip
from textual.widgets import Button, DataTable, Input, Label, OptionList, SelectionList, Static
from textual.widgets.selection_list import Selection

from snnlab import catalog
from snnlab.curves import seed_band
from snnlab.curves import x_label as x_label_of
from snnlab.formatting import format_duration, format_percent
from snnlab.plotting import Band, Series
from snnlab.tui import palette
from snnlab.tui.compare import CompareEntry, color_of, compare_choices
from snnlab.tui.keymap import first_key_of
from snnlab.tui.messages import CompareRequested
from snnlab.tui.surrogate_curves import X_RANGE, Curve, service
from snnlab.tui.widgets.fields import parse_value
from snnlab.tui.widgets.metric_plot import MetricPlot, PlotOptions
from snnlab.tui.widgets.training_pane import accuracy_series, loss_series

DEFAULT_CHOICE = ("atan", "fast_sigmoid", "triangle")
LABEL_WIDTH = 21  # of a parameter's label, as app.tcss sets it (#sg-params Label)
BAND = "minmax"  # the spread of a sweep cell's seeds around their mean: min to max ("std": mean +- 1 sd)


class CurvesReady(Message):
    """Results of a curve request (``generation`` says which): one curve or error per chosen surrogate,
    or the exception that kept the curve process from answering."""

    def __init__(self, generation: int, names: list[str], results: list[Curve | str] | BaseException) -> None:
        super().__init__()
        self.generation, self.names, self.results = generation, names, results


def grouped_choices(chosen: list[str]) -> list[Selection[str]]:
    """Every surrogate under a heading of the library its formula comes from (``catalog.SURROGATE_SOURCES``
    order, the catalog's order within each); a heading is a disabled row, its value ``"#" + source``."""
    rows: list[Selection[str]] = []
    for source in catalog.SURROGATE_SOURCES:
        names = [c.name for c in catalog.SURROGATES.values() if c.source == source]
        if names:
            rows.append(Selection(Text(source, style="bold"), f"#{source}", disabled=True))
            rows += [Selection(name, name, name in chosen) for name in names]
    return rows


class GroupedSelectionList(SelectionList[str]):
    """A SelectionList whose disabled rows are headings: drawn as plain text, without a checkbox."""

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        if 0 <= index < self.option_count and self.get_option_at_index(index).disabled:
            return OptionList.render_line(self, y)
        return super().render_line(y)


class SurrogateLab(Horizontal):
    """Chosen surrogates (``self.chosen``) with parameters (``self.params``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chosen: list[str] = list(DEFAULT_CHOICE)
        self.params: dict[str, dict[str, float]] = {s.name: dict(s.defaults) for s in catalog.SURROGATES.values()}
        self.curves_shown = False
        """Whether the plots hold curves computed for some request (the first frame has none)."""
        self._generation = 0  # of the newest curve request: older answers are dropped
        self.options = PlotOptions()  # shared by the two comparison plots
        self._entries: list[CompareEntry] = []
        self.sort: tuple[int, bool] | None = None  # the table's sort column and whether reversed; None: run order

    def compose(self) -> ComposeResult:
        with Vertical(id="sg-left"):
            yield GroupedSelectionList(*grouped_choices(self.chosen), id="sg-choose")
            with VerticalScroll(id="sg-params"):
                yield from _rows(self)
            yield Static("", id="sg-error")
            compare = first_key_of(self.app, "lab.compare")
            yield Button(f"Compare runs ({compare})", id="sg-compare", variant="primary", compact=True,
                         tooltip="train the current config once per chosen surrogate")  # fmt: skip
        with Vertical(id="sg-right"):
            with Grid(id="sg-curves"):
                yield MetricPlot("smooth(x) vs Heaviside step", x_label="x = U - θ", id="sg-smooth")
                yield MetricPlot("surrogate gradient dS/dx", x_label="x = U - θ", id="sg-grad")
            with Grid(id="sg-runs"):
                yield MetricPlot("compare: train loss", x_label="step", id="sg-loss", options=self.options,
                                 empty=f"{compare}: one run per surrogate", more_hint="see the table")  # fmt: skip
                yield MetricPlot("compare: test accuracy %", x_label="step", id="sg-acc", options=self.options,
                                 more_hint="see the table")  # fmt: skip
            table: DataTable[Any] = DataTable(id="sg-table", cursor_type="row", zebra_stripes=True)
            table.add_columns("run", "status", "final acc", "best", "time", "spike rate")
            yield table

    def on_mount(self) -> None:
        self.draw_curves()

    @on(SelectionList.SelectedChanged, "#sg-choose")
    def _choice(self, event: SelectionList.SelectedChanged) -> None:
        event.stop()
        order = list(catalog.SURROGATES)
        self.chosen = sorted((v for v in event.selection_list.selected if v in order), key=order.index)
        box = self.query_one("#sg-params", VerticalScroll)
        box.remove_children()
        box.mount_all(_rows(self))
        self.draw_curves()

    @on(Input.Changed, "#sg-params Input")
    def _param(self, event: Input.Changed) -> None:
        event.stop()
        name, key = (event.input.name or ".").split(".", 1)
        value = parse_value(event.value)
        error = self.query_one("#sg-error", Static)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            error.update(f"{name}.{key}: must be a number")
            return
        self.params[name][key] = float(value)
        self.draw_curves()

    def draw_curves(self) -> None:
        """Ask the curve process for the chosen surrogates' curves; :meth:`_curves_ready` draws them."""
        self._generation += 1
        generation, names = self._generation, list(self.chosen)
        requests = [(name, dict(self.params[name])) for name in names]
        post = self.post_message  # thread-safe; a no-op once the widget is gone

        service().request(requests, lambda results: post(CurvesReady(generation, names, results)))
        if not self.curves_shown:
            self._show([], [], "computing the curves…")

    @on(CurvesReady)
    def _curves_ready(self, message: CurvesReady) -> None:
        message.stop()
        if message.generation != self._generation:
            return  # a newer request is on its way
        if isinstance(message.results, BaseException):
            error = f"surrogate curves unavailable: {message.results or type(message.results).__name__}"
            self.query_one("#sg-error", Static).update(error)
            return
        smooth: list[Series] = []
        grad: list[Series] = []
        errors = []
        for name, result in zip(message.names, message.results, strict=True):
            if isinstance(result, str):
                errors.append(result)
                continue
            xs, ys, gs = result
            smooth.append(Series(xs, ys, color_of(name), name))
            grad.append(Series(xs, gs, color_of(name), name))
        self.curves_shown = True
        self._show(smooth, grad, "\n".join(errors))

    def _show(self, smooth: list[Series], grad: list[Series], message: str) -> None:
        step = Series([X_RANGE[0], 0.0, X_RANGE[1]], [0.0, 1.0, 1.0], palette.STEP, "H(x)", kind="step")
        self.query_one("#sg-smooth", MetricPlot).show([step, *smooth], x_range=X_RANGE, y_range=(-0.1, 1.1))
        self.query_one("#sg-grad", MetricPlot).show(grad, x_range=X_RANGE, empty="computing the curves…")
        self.query_one("#sg-error", Static).update(message)

    def request_compare(self) -> None:
        """Post :class:`CompareRequested` for the chosen surrogates with valid parameters."""
        self.post_message(CompareRequested(compare_choices(self.chosen, self.params)))

    @on(Button.Pressed, "#sg-compare")
    def _compare(self, event: Button.Pressed) -> None:
        event.stop()
        self.request_compare()

    def draw_compare(self, entries: list[CompareEntry]) -> None:
        """Overlay the comparison runs and fill the table (called from the app's redraw timer)."""
        self._entries = list(entries)
        table = self.query_one("#sg-table", DataTable)
        table.clear()
        rows = [(entry, _table_values(entry)) for entry in entries]
        if self.sort is not None:
            rows = _sorted_rows(rows, *self.sort)
        for entry, (status, final, best, wall, rate) in rows:
            table.add_row(
                Text(entry.label, style=entry.curve_color),  # the table doubles as the plots' key
                status,
                format_percent(final),
                format_percent(best),
                format_duration(wall),
                f"{rate:.3f}" if rate is not None else "-",
            )
        self._draw_compare_plots()

    def sort_by(self, column: int) -> None:
        """Sort the table by ``column``, lowest first (as the runs list does); again: reversed."""
        self.sort = (column, not self.sort[1]) if self.sort is not None and self.sort[0] == column else (column, False)
        self.draw_compare(self._entries)

    @on(DataTable.HeaderSelected, "#sg-table")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(event.column_index)

    def _draw_compare_plots(self) -> None:
        """One curve per run; the runs of a sweep cell with several seeds as their mean over a band."""
        options = self.options
        loss: list[Series] = []
        acc: list[Series] = []
        loss_bands: list[Band] = []
        acc_bands: list[Band] = []
        cells: dict[int, list[CompareEntry]] = {}
        for entry in self._entries:
            if entry.cell is not None:
                cells.setdefault(entry.cell, []).append(entry)
        banded = False
        drawn: set[int] = set()
        for entry in self._entries:
            color, name = entry.curve_color, entry.curve_label
            group = cells.get(entry.cell, []) if entry.cell is not None else []
            if len(group) > 1:
                if entry.cell in drawn:
                    continue
                drawn.add(entry.cell)  # type: ignore[arg-type]
                label = next((e.curve_label for e in group if e.curve_label), name)
                for series, bands, pick in ((loss, loss_bands, "loss"), (acc, acc_bands, "acc")):
                    curves = [_curve(e.metrics, pick, options) for e in group]
                    band = seed_band([c for c in curves if c[0]], spread=BAND)
                    if band.xs:
                        banded = True
                        bands.append(Band(band.xs, band.lo, band.hi, color))
                        series.append(Series(band.xs, band.mean, color, f"{label} ({len(group)} seeds)"))
                continue
            m = entry.metrics
            for line in loss_series(m, "", color, raw=False, options=options):
                if line.kind == "line":
                    line.label = name
                    loss.append(line)
            acc += _accuracy_curves(m, name, color, options)
        note = ("band: min-max of seeds" if BAND == "minmax" else "band: mean +- 1 sd") if banded else ""
        x_label = x_label_of(options.x_axis)
        for plot_id, series, bands in (("#sg-loss", loss, loss_bands), ("#sg-acc", acc, acc_bands)):
            plot = self.query_one(plot_id, MetricPlot)
            plot.note = note
            plot.show(series, bands=bands, x_label=x_label)

    @on(MetricPlot.OptionsChanged)
    def _options_changed(self, event: MetricPlot.OptionsChanged) -> None:
        event.stop()
        for plot in self.query(MetricPlot):
            if plot.options is self.options and plot.x_label != x_label_of(self.options.x_axis):
                plot.reset_x()
        self._draw_compare_plots()


TableValues = tuple[str, float | None, float | None, float | None, float | None]


def _table_values(entry: CompareEntry) -> TableValues:
    """A comparison run's status, final and best test accuracy, wall time and final spike rate."""
    m = entry.metrics
    final = m.last_epoch.test_accuracy if m.last_epoch else None
    return m.status, final, m.best_accuracy, m.wall_time, m.final_spike_rate()


def _sorted_rows(
    rows: list[tuple[CompareEntry, TableValues]], column: int, reverse: bool
) -> list[tuple[CompareEntry, TableValues]]:
    """``rows`` by ``column`` (0: the run's name), text A-Z and numbers lowest first, with ``reverse`` the
    other way; a run without the number (still training) last either way."""
    if column == 0:
        return sorted(rows, key=lambda row: row[0].label.lower(), reverse=reverse)
    if column == 1:
        return sorted(rows, key=lambda row: row[1][0], reverse=reverse)
    known = [row for row in rows if row[1][column - 1] is not None]
    missing = [row for row in rows if row[1][column - 1] is None]
    return sorted(known, key=lambda row: row[1][column - 1] or 0.0, reverse=reverse) + missing


def _curve(m: Any, pick: str, options: PlotOptions) -> tuple[list[float], list[float]]:
    """The smoothed train loss or the test accuracy (%) of one run, as (x, y)."""
    if pick == "loss":
        line = [s for s in loss_series(m, raw=False, options=options) if s.kind == "line"]
        return (list(line[0].xs), list(line[0].ys)) if line else ([], [])
    points = [s for s in accuracy_series(m, options=options) if s.kind == "points"]
    return (list(points[0].xs), list(points[0].ys)) if points else ([], [])


def _accuracy_curves(m: Any, name: str, color: str, options: PlotOptions) -> list[Series]:
    """Test accuracy per evaluation: a line through the points, the points labelled."""
    points = [s for s in accuracy_series(m, options=options) if s.kind == "points"]
    if not points:
        return []
    xs, ys = points[0].xs, points[0].ys
    return [Series(xs, ys, color), Series(xs, ys, color, name, kind="points")]


def _rows(lab: SurrogateLab) -> list[Any]:
    rows = []
    for name in lab.chosen:
        for key, value in lab.params[name].items():
            rows.append(
                Horizontal(Label(param_label(name, key)), Input(f"{value:g}", compact=True, name=f"{name}.{key}",
                                                                tooltip=f"{name}.{key}"))
            )  # fmt: skip
    return rows


def param_label(name: str, key: str, width: int = LABEL_WIDTH) -> str:
    """``name.key``, the name shortened with "…" where both do not fit in ``width``: the key is what
    tells the rows of one surrogate apart, so it stays whole."""
    text = f"{name}.{key}"
    if len(text) <= width:
        return text
    keep = max(1, width - len(key) - 2)
    return f"{name[:keep]}….{key}"
