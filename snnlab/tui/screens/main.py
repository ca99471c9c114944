"""The main screen: four panes on one screen, a tab strip to pick one, the status bar and the footer.

Layout: on a large terminal (or after ``l``) the panes share a 2x2 grid whose split moves with
ctrl+arrows; on a small one (80x24) one pane fills the screen and 1-4 or the tabs switch it. Any pane
can be maximized (``z``, escape restores). ``watch`` starts with Training beside Inside.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.lazy import Lazy
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Tab, Tabs

from snnlab.tui.widgets.config_form import ConfigForm
from snnlab.tui.widgets.inside_pane import InsidePane
from snnlab.tui.widgets.status_bar import StatusBar
from snnlab.tui.widgets.surrogate_lab import SurrogateLab
from snnlab.tui.widgets.training_pane import TrainingPane

PANE_NAMES = {"network": "Network", "training": "Training", "inside": "Inside", "surrogates": "Surrogates"}
PANES = {key: f"{i} {name}" for i, (key, name) in enumerate(PANE_NAMES.items(), start=1)}  # "1 Network": key 1
GRID_MIN = (140, 40)  # below this size "auto" shows one pane at a time
WATCH_GRID_MIN = (110, 24)  # watch shows two panes side by side, which needs less


class Pane(Vertical):
    """A titled pane that can be maximized whatever inside it has focus."""

    ALLOW_MAXIMIZE = True


class MainScreen(Screen[None]):
    """Holds the panes and decides which are visible and how big."""

    def __init__(self, config_data: dict[str, Any], preset: str | None, watch: bool = False) -> None:
        super().__init__(id="main")
        self.config_data = config_data
        self.preset = preset
        self.watching = watch  # not `watch`: Textual's DOMNode.watch() is a method the framework calls
        self.active = "training" if watch else "network"
        self.layout_mode = "auto"  # auto | grid | single
        self.split = (50, 50)  # column and row shares of the grid, in percent

    def compose(self) -> ComposeResult:
        yield Tabs(*[Tab(label, id=f"tab-{key}") for key, label in PANES.items()], id="pane-tabs")
        with Grid(id="panes"):
            with Pane(id="pane-network"):
                yield ConfigForm(self.config_data, self.preset, id="form")
            # The first frame shows the Network pane (or Training, watching); the others mount right after
            # it, which halves the time to that first frame (benchmarks/bench_tui_latency.py).
            with Pane(id="pane-training"):
                yield self._first_or_lazy("training", TrainingPane(id="training"))
            with Pane(id="pane-inside"):
                yield self._first_or_lazy("inside", InsidePane(id="inside"))
            with Pane(id="pane-surrogates"):
                yield self._first_or_lazy("surrogates", SurrogateLab(id="surrogates"))
        yield StatusBar(id="status")
        yield Footer()

    def _first_or_lazy(self, key: str, widget: Widget) -> Widget:
        return widget if key == self.active else Lazy(widget)

    def on_mount(self) -> None:
        for key, label in PANES.items():
            self.query_one(f"#pane-{key}", Pane).border_title = label
        self.query_one(Tabs).active = f"tab-{self.active}"
        self.apply_layout()

    def on_resize(self) -> None:
        self.apply_layout()

    def pane_bindings(self) -> list[Binding]:
        """The keys of the panes themselves (the widget each pane holds, not those it inherits), pane by pane."""
        return [binding for pane in self.query(Pane) for widget in pane.children
                for binding in vars(type(widget)).get("BINDINGS", []) if isinstance(binding, Binding)]  # fmt: skip

    # -- layout

    @property
    def effective_layout(self) -> str:
        if self.layout_mode != "auto":
            return self.layout_mode
        width, height = self.app.size
        min_width, min_height = WATCH_GRID_MIN if self.watching else GRID_MIN
        return "grid" if width >= min_width and height >= min_height else "single"

    def visible_panes(self) -> list[str]:
        if self.effective_layout == "single":
            return [self.active]
        if self.watching:
            return ["training", "inside"]
        return list(PANES)

    def apply_layout(self) -> None:
        visible = self.visible_panes()
        grid = self.query_one("#panes", Grid)
        for key in PANES:
            pane = self.query_one(f"#pane-{key}", Pane)
            if pane.display != (key in visible):  # restyling is not free: touch only what changes
                pane.display = key in visible
        columns = 2 if len(visible) > 1 else 1
        rows = 2 if len(visible) > 2 else 1
        grid.styles.grid_size_columns = columns
        grid.styles.grid_size_rows = rows
        col, row = self.split
        grid.styles.grid_columns = f"{col}fr {100 - col}fr" if columns == 2 else "1fr"
        grid.styles.grid_rows = f"{row}fr {100 - row}fr" if rows == 2 else "1fr"
        for key in PANES:
            pane = self.query_one(f"#pane-{key}", Pane)
            active = key == self.active and len(visible) > 1
            if pane.has_class("-active") != active:
                pane.set_class(active, "-active")

    def show_pane(self, key: str, focus: bool = True) -> None:
        """Make ``key`` the active pane (shown alone in single layout) and focus into it."""
        if key not in PANES:
            return
        self.active = key
        tabs = self.query_one(Tabs)
        if tabs.active != f"tab-{key}":
            tabs.active = f"tab-{key}"
        if self.maximized is not None:
            self.maximize(self.query_one(f"#pane-{key}", Pane), container=False)
        self.apply_layout()
        if focus:
            self.call_after_refresh(self._focus_into, key)

    def _focus_into(self, key: str) -> None:
        pane = self.query_one(f"#pane-{key}", Pane)
        target = {"inside": "#inside", "training": None}.get(key, "")
        if target:
            pane.query_one(target).focus()
            return
        if target is None:
            self.set_focus(None)
            return
        focusable = [w for w in pane.query("*") if w.focusable]
        if focusable:
            focusable[0].focus()

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        # Only the tab that is active now counts: an older activation still in the queue must not
        # switch back (two in flight would otherwise ping-pong forever).
        if event.tab.id != self.query_one(Tabs).active:
            return
        key = (event.tab.id or "").removeprefix("tab-")
        if key in PANES and key != self.active:
            self.active = key
            self.apply_layout()

    def toggle_maximize(self) -> None:
        if self.maximized is not None:
            self.minimize()
        else:
            self.maximize(self.query_one(f"#pane-{self.active}", Pane), container=False)

    def toggle_layout(self) -> str:
        self.layout_mode = "single" if self.effective_layout == "grid" else "grid"
        self.apply_layout()
        return self.layout_mode

    def resize_split(self, d_col: int, d_row: int) -> None:
        col, row = self.split
        self.split = (min(max(col + d_col, 20), 80), min(max(row + d_row, 20), 80))
        self.apply_layout()
