"""The runs list (open, overlay, compare configs, continue, re-run) and the config diff of two runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Label

from snnlab.config import ConfigError
from snnlab.config.diff import ABSENT, config_diff
from snnlab.resuming import resume_refusal
from snnlab.sweep import SUMMARY_CSV, format_value
from snnlab.tui.keymap import key_names_of
from snnlab.tui.runs_table import SKIP, RunRow, columns, folder_rows, short_name, sort_rows

RELOAD_S = 2.0  # how often the table is read again while one of its runs is under way
DESCENDING_FIRST = ("best acc", "last acc", "epochs")  # a first press on these shows the best first
MARK = "● "


class RowsLoaded(Message):
    """The rows of the folder shown, read by a thread worker."""

    def __init__(self, folder: Path, keys: list[str], rows: list[RunRow]) -> None:
        super().__init__()
        self.folder, self.keys, self.rows = folder, keys, rows


class RunsScreen(ModalScreen[tuple[str, Path] | None]):
    """The runs of a folder in a sortable table: the runs under ``runs_dir`` with its sweeps, or the runs of
    the sweep ``sweep`` (its grid keys as columns; backspace lists ``runs_dir``).

    Dismisses with ``(what, path)``: ``open`` a run (enter), ``overlay`` it on the plots (o), open a ``sweep``
    (enter on one), ``resume`` a run from its checkpoint (c) or ``rerun`` its config as a new run (n). Two runs
    marked with space (or one, and the cursor on another) show their config diff (d)."""

    BINDINGS = [
        Binding("enter", "choose('open')", "Open", id="runs.open"),
        Binding("o", "choose('overlay')", "Overlay", id="runs.overlay"),
        Binding("space", "mark", "Mark", id="runs.mark", tooltip="Mark a run to compare its config"),
        Binding("d", "diff", "Diff", id="runs.diff", tooltip="Config diff of the marked runs"),
        Binding("c", "choose('resume')", "Continue", id="runs.resume", tooltip="Continue the run from its checkpoint"),
        Binding("n", "choose('rerun')", "Re-run", id="runs.rerun", tooltip="Train the run's config as a new run"),
        Binding("backspace", "all_runs", "All runs", id="runs.all", show=False),
        *[
            Binding(str((i + 1) % 10), f"sort({i})", f"Sort by column {i + 1}", id=f"runs.sort-{i + 1}", show=False)
            for i in range(10)
        ],
        Binding("escape", "cancel", "Close", id="runs.close"),
    ]

    def __init__(self, runs_dir: str | Path, sweep: str | Path | None = None) -> None:
        super().__init__(classes="dialog")
        self.runs_dir = Path(runs_dir)
        self.sweep = Path(sweep) if sweep else None
        self.keys: list[str] = []
        self.rows: list[RunRow] = []  # in the order shown
        self.loaded: list[RunRow] = []  # in the folder's order
        self.marked: list[Path] = []
        self.sort: tuple[int, bool] | None = None  # (column, descending)
        self._configs: dict[Path, dict[str, Any]] = {}
        self._timer: Any = None
        self.ready = False  # the rows of the folder shown are in the table

    @property
    def folder(self) -> Path:
        return self.sweep or self.runs_dir

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="runs-box"):
            yield Label(self._title(), id="dialog-title")
            yield Label(
                "enter open · o overlay · space mark · d config diff · c continue · n re-run · 1-9 sort", id="runs-keys"
            )
            table: DataTable[Any] = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield table
            with Horizontal(id="dialog-buttons"):
                yield Button("Open", id="runs-open", variant="primary")
                yield Button("Overlay", id="runs-overlay")
                yield Button("Close", id="runs-close")

    def _title(self, empty: bool = False) -> Content:
        if self.sweep is not None:
            markup = "[b]Runs of sweep $path[/]  (backspace: all runs)"
            return Content.from_markup(markup, path=self.sweep.name)
        if empty:
            markup = "[b]No runs in $path/ yet[/]: close this and press $keys to train"
            return Content.from_markup(markup, path=str(self.runs_dir), keys=key_names_of(self.app, "lab.start"))
        return Content.from_markup("[b]Runs in $path/[/]", path=str(self.runs_dir))  # a path may hold brackets

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.load()
        self._timer = self.set_interval(RELOAD_S, self._reload, pause=True)

    @work(thread=True, group="runs-rows", exclusive=True, exit_on_error=False)
    def load(self) -> None:
        """Read the folder's rows (summaries and configs) away from the UI thread."""
        folder = self.folder
        try:
            keys, rows = folder_rows(folder, sweep=self.sweep is not None, configs=self._configs)
        except ConfigError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.post_message(RowsLoaded(folder, keys, rows))

    def _reload(self) -> None:
        if not self.is_current:
            return  # the diff is shown over it
        self.load()

    @on(RowsLoaded)
    def _loaded(self, message: RowsLoaded) -> None:
        if message.folder != self.folder:
            return  # read before backspace changed the folder
        self.keys, self.loaded = message.keys, message.rows
        self._fill()
        self.ready = True
        self.query_one("#dialog-title", Label).update(self._title(empty=not self.loaded))
        # A sweep writes summary.csv at its end: until then it may start more runs.
        unfinished_sweep = self.sweep is not None and not (self.sweep / SUMMARY_CSV).exists()
        live = unfinished_sweep or any(row.status in ("running", "starting") for row in self.loaded)
        if live:
            self._timer.resume()
        else:
            self._timer.pause()

    def _fill(self) -> None:
        """Put the rows into the table in the chosen order, keeping the cursor on the same run."""
        table = self.query_one(DataTable)
        current = self.current
        self.rows = sort_rows(self.loaded, self.sort[0], self.keys, self.sort[1]) if self.sort else list(self.loaded)
        table.clear(columns=True)
        for i, title in enumerate(columns(self.keys)):
            arrow = (" ▼" if self.sort[1] else " ▲") if self.sort and self.sort[0] == i else ""
            table.add_column(Text(f"{title}{arrow}"), key=str(i))
        for row in self.rows:
            # A sweep's runs are told apart by their values and seeds, not by when they started.
            shown = short_name(row.name) if self.sweep is not None else row.name
            name = (MARK if row.path in self.marked else "") + shown
            table.add_row(name, *row.cells(), key=str(row.path))
        if current is not None and current in self.rows:
            table.move_cursor(row=self.rows.index(current), animate=False)

    @property
    def current(self) -> RunRow | None:
        """The row under the cursor."""
        row = self.query_one(DataTable).cursor_row
        return self.rows[row] if 0 <= row < len(self.rows) else None

    # -- actions

    def action_sort(self, column: int) -> None:
        """Sort by ``column``; the same column again reverses the order."""
        if column >= len(columns(self.keys)):
            return
        if self.sort and self.sort[0] == column:
            self.sort = (column, not self.sort[1])
        else:
            self.sort = (column, columns(self.keys)[column] in DESCENDING_FIRST)
        self._fill()

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.action_sort(event.column_index)

    def action_mark(self) -> None:
        row = self.current
        if row is None:
            return
        if row.kind != "run":
            self.notify("a sweep has no config of its own: open it (enter) and mark its runs", severity="warning")
            return
        if row.path in self.marked:
            self.marked.remove(row.path)
        else:
            self.marked = [*self.marked, row.path][-2:]  # two at most: a third mark drops the oldest
        self._fill()

    def action_diff(self) -> None:
        current = self.current
        pair = list(self.marked)
        if len(pair) == 1 and current is not None and current.kind == "run" and current.path != pair[0]:
            pair.append(current.path)
        if len(pair) != 2:
            self.notify("mark a run with space, then press d on another (or mark two)", severity="warning")
            return
        old, new = (next(r for r in self.loaded if r.path == p) for p in pair)
        self.app.push_screen(ConfigDiffScreen(old.name, new.name, config_diff(old.config, new.config, SKIP)))

    def action_choose(self, what: str) -> None:
        row = self.current
        if row is None:
            return
        if row.kind == "sweep":
            if what in ("open", "overlay"):
                self.dismiss(("sweep", row.path))
            else:
                self.notify("that is a sweep: open it (enter), then pick one of its runs", severity="warning")
            return
        if what == "resume" and (why := resume_refusal(row.path)):
            self.notify(why, title="Cannot continue", severity="warning", markup=False)
            return
        self.dismiss((what, row.path))

    def action_all_runs(self) -> None:
        if self.sweep is None:
            return
        self.sweep, self.keys, self.loaded, self.sort, self.marked = None, [], [], None, []
        self.ready = False
        self._fill()
        self.query_one("#dialog-title", Label).update(self._title())
        self.load()

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_choose("open")

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        if event.button.id == "runs-open":
            self.action_choose("open")
        elif event.button.id == "runs-overlay":
            self.action_choose("overlay")
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfigDiffScreen(ModalScreen[None]):
    """The config keys whose values differ between two runs: ``key: old -> new``."""

    BINDINGS = [Binding("escape,enter,d", "dismiss", "Close", id="diff.close")]

    def __init__(self, old: str, new: str, diff: list[tuple[str, Any, Any]]) -> None:
        super().__init__(classes="dialog")
        self.old, self.new, self.diff = old, new, diff

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="runs-box"):
            title = "[b]Config diff:[/] $old -> $new"
            yield Label(Content.from_markup(title, old=self.old, new=self.new), id="dialog-title")
            table: DataTable[Any] = DataTable(id="diff-table", cursor_type="row", zebra_stripes=True)
            yield table
            with Horizontal(id="dialog-buttons"):
                yield Button("Close", id="diff-close", variant="primary")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        old, new = short_name(self.old), short_name(self.new)
        table.add_columns("key", old if old != new else self.old, new if old != new else self.new)
        for key, old, new in self.diff:
            table.add_row(key, _shown(old), _shown(new))
        if not self.diff:
            table.add_row("(the two configs are the same)", "", "")
        table.focus()

    @on(Button.Pressed, "#diff-close")
    def _close(self) -> None:
        self.dismiss(None)


def _shown(value: Any) -> str:
    return "(absent)" if value is ABSENT else format_value(value)
