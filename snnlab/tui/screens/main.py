"""The main screen: four panes on one screen, a tab strip to pick one, the status bar and the footer.

Layout: on a large terminal (or after ``l``) the panes share a 2x2 grid whose split moves with
ctrl+arrows; on a small one (80x24) one pane fills the screen and 1-4 or the tabs switch it. Any pane
can be maximized (``z``, escape restores). ``watch`` starts with Training beside Inside.

Focus: each pane has a home that takes no text (its own widget when that takes focus and holds the pane's
keys, as the Inside pane's does; else the pane itself). Switching panes focuses the home, so the letter
keys keep working; escape from a field goes back to it, and escape at home restores a maximized pane.
Below :data:`NARROW` columns the screen has the ``-narrow`` class, which the stylesheet uses to stack what
sits side by side on a wider terminal.
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
NARROW = 100  # below this width the panes rearrange (the stylesheet's .-narrow rules)


class Pane(Vertical):
    """A titled pane that can be maximized whatever inside it has focus. It takes focus itself (it is the
    home of most panes), so a key pressed there reaches the app's bindings and none is typed anywhere."""

    ALLOW_MAXIMIZE = True
    can_focus = True


class MainScreen(Screen[None]):
    """Holds the panes and decides which are visible and how big."""

    BINDINGS = [
        Binding("escape", "leave", "Leave", id="lab.leave"),  # shown only while a field has focus
        Binding("escape", "restore", "Restore pane", id="lab.leave", show=False),  # one key, so one id
    ]

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
        # Compact: the training keys, help and the palette fit in 80 columns. Below NARROW columns the palette's
        # entry (ctrl+p, in help) and the keys that cannot be used now leave the footer to the pane's own keys.
        yield Footer(compact=True)

    def _first_or_lazy(self, key: str, widget: Widget) -> Widget:
        return widget if key == self.active else Lazy(widget)

    def on_mount(self) -> None:
        for key, label in PANES.items():
            self.query_one(f"#pane-{key}", Pane).border_title = label
        self.query_one(Tabs).active = f"tab-{self.active}"
        self.apply_layout()

    def on_resize(self) -> None:
        self.apply_layout()

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
        narrow = self.app.size.width < NARROW
        if self.has_class("-narrow") != narrow:
            self.set_class(narrow, "-narrow")
            self.query_one(Footer).show_command_palette = not narrow
            self.app.refresh_bindings()  # the footer recomposes: greyed keys hide or come back (check_action)
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

    def home(self, key: str) -> Widget:
        """The widget of pane ``key`` that holds focus when nothing in it is being edited: the pane's own
        widget when it takes focus (its keys then work, as the Inside pane's do), else the pane."""
        pane = self.query_one(f"#pane-{key}", Pane)
        own = next(iter(pane.children), None)
        return own if own is not None and own.can_focus else pane

    def _focus_into(self, key: str) -> None:
        self.home(key).focus()

    def pane_of(self, widget: Widget | None) -> str | None:
        """The key of the pane that holds ``widget``, if any."""
        for node in widget.ancestors_with_self if widget is not None else ():
            if isinstance(node, Pane) and node.id:
                return node.id.removeprefix("pane-")
        return None

    def editing(self) -> str | None:
        """The pane whose field (anything but its home) has focus, if any."""
        key = self.pane_of(self.focused)
        return key if key is not None and self.focused is not self.home(key) else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Escape does one thing at a time, and the footer names it only while it leaves a field.
        if action == "leave":
            return self.editing() is not None
        if action == "restore":
            return self.editing() is None and self.maximized is not None
        return True

    def action_leave(self) -> None:
        """Escape in a field: focus goes to the pane's home, where the letter keys work."""
        key = self.editing()
        if key is not None:
            self.home(key).focus()

    def action_restore(self) -> None:
        """Escape at home: restore the maximized pane."""
        self.minimize()

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
            return
        # Focus must be inside what is maximized: left outside (on the tabs), Textual moves it to a widget of
        # its own choosing, once a text field of another pane, where every later key was typed.
        if self.pane_of(self.focused) != self.active:
            self._focus_into(self.active)
        self.maximize(self.query_one(f"#pane-{self.active}", Pane), container=False)

    def toggle_layout(self) -> str:
        self.layout_mode = "single" if self.effective_layout == "grid" else "grid"
        self.apply_layout()
        return self.layout_mode

    def resize_split(self, d_col: int, d_row: int) -> None:
        col, row = self.split
        self.split = (min(max(col + d_col, 20), 80), min(max(row + d_row, 20), 80))
        self.apply_layout()
