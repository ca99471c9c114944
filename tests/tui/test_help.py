"""Help and the command palette are written from the bindings: help lists every key of the lab and its
panes, and neither help nor the palette names a key that is not bound."""

from __future__ import annotations

import copy

import pytest
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.binding import Binding

from snnlab.tui.app import SnnLabApp, make_app
from snnlab.tui.commands import PALETTE, palette_commands
from snnlab.tui.screens.help import PANE_HELP, HelpScreen
from snnlab.tui.screens.main import PANES, MainScreen
from tests.conftest import TINY
from tests.tui.conftest import lab_classes


def promised(app: SnnLabApp) -> list[Binding]:
    """The keys help lists: the app's, the main screen's, and those of every widget of the lab's own in it
    (panes, plots, the raster, the slider). A Textual control (a text field) keeps its usual keys."""
    found = [b for b in [*type(app).BINDINGS, *MainScreen.BINDINGS] if isinstance(b, Binding)]
    classes = dict.fromkeys(type(w) for w in app.main.query("*") if type(w).__module__.startswith("snnlab."))
    for cls in classes:
        found += [b for b in vars(cls).get("BINDINGS", []) if isinstance(b, Binding)]
    return found


def key_spellings(app: SnnLabApp, bindings: list[Binding]) -> set[str]:
    """Every way a bound key may be written: as bound (``full_stop``) and as shown (``.``)."""
    keys = {key for binding in bindings for key in binding.key.split(",")}
    return keys | {app.get_key_display(Binding(key, "")) for key in keys}


def cell_texts(table: Table) -> list[Text]:
    return [cell for column in table.columns for cell in column.cells if isinstance(cell, Text)]


def bold_words(table: Table) -> list[str]:
    """Each key that help names (a bold stretch of the right column: ``s or F5`` gives ``s`` and ``F5``)."""
    words = []
    for text in cell_texts(table)[len(table.rows) :]:  # the right column; the left one holds the headings
        for span in text.spans:
            style = Style.parse(span.style) if isinstance(span.style, str) else span.style
            if style.bold:
                words += [w for w in text.plain[span.start : span.end].split() if w != "or"]
    return words


def test_every_binding_of_the_lab_has_an_id():
    for owner in lab_classes():
        for binding in vars(owner).get("BINDINGS", []):  # its own, not those of Textual's classes
            assert isinstance(binding, Binding) and binding.id, f"{owner.__name__}: {binding} has no id"


def test_help_describes_every_pane():
    assert list(PANE_HELP) == list(PANES)


@pytest.mark.asyncio
async def test_help_lists_every_binding_and_names_no_key_that_is_not_bound():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        help_screen = app.screen
        bindings = promised(app)
        rows = {binding_id: (key, does) for key, does, binding_id in help_screen.rows}
        assert len(rows) == len(help_screen.rows) and set(rows) == {b.id for b in bindings}
        first = list({b.id: b for b in reversed(bindings)}.values())[::-1]  # the first binding of each id
        shown = {b.id: " or ".join(app.get_key_display(Binding(k, "")) for k in b.key.split(",")) for b in first}
        assert rows == {b.id: (shown[b.id], b.description) for b in first}
        assert {"lab.plot-smoothing", "inside.trace-neuron", "slider.later"} <= set(rows)  # widgets inside panes
        # Keys as a user types them, never Textual's names for them.
        assert ("s or F5", "Start") in [(key, does) for key, does, _ in help_screen.rows]
        assert not any("full_stop" in key or "question_mark" in key for key, _, _ in help_screen.rows)
        headings = [text.plain for text in cell_texts(help_screen.panes)[: len(help_screen.panes.rows)]]
        assert headings[: len(PANES)] == list(PANES.values())
        named = bold_words(help_screen.panes)
        assert len(named) >= 5 + 2 + 6  # the Inside pane's keys, compare's two, and the six that work while typing
        assert set(named) <= key_spellings(app, bindings), set(named) - key_spellings(app, bindings)
        assert {"F5", "F6", "F7", "F8", "F1", "esc"} <= set(named)  # how to act while typing
        assert help_screen.palette_key == "^p"


@pytest.mark.asyncio
async def test_help_text_wraps_to_the_screen_and_starts_with_no_stray_character():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        box = app.screen.query_one("#help-panes")
        lines = [strip.text for strip in box.render_lines(box.region.reset_offset)]
        assert lines[0].startswith("1 Network") and all("\\" not in line for line in lines)
        assert max(len(line.rstrip()) for line in lines) <= box.size.width < 80
        # Whole paragraphs, wrapped where the screen ends: no line is broken short of the width on purpose.
        text = " ".join(line.strip() for line in lines if line.strip())
        assert "layers: add, remove, reorder; each layer's neuron: none, the model's, or custom." in text


@pytest.mark.asyncio
async def test_the_palette_offers_the_bindings_by_their_keys():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        by_id = {b.id: b for b in type(app).BINDINGS if isinstance(b, Binding)}
        assert set(PALETTE) <= set(by_id)
        commands = palette_commands(app)
        titles = [title for title, _, _ in commands]
        assert titles[:2] == ["Start training", "Compare surrogates"] and "Stop training" not in titles
        spellings = key_spellings(app, list(by_id.values()))
        offered = [(title, help_text) for title, help_text, _ in commands if not title.startswith("Load preset")]
        assert len(offered) == len(PALETTE) - 2  # all but pause and stop, with no run under way
        for title, help_text in offered:
            keys = help_text.removeprefix("key ") if help_text.startswith("key ") else help_text.rsplit("(", 1)[1][:-1]
            assert set(keys.split(" or ")) <= spellings, title
        assert ("Start training", "train the current config (s or F5)") in offered
        # Choosing an entry runs its binding's action.
        show_inside = next(callback for title, _, callback in commands if title == "Show the Inside pane")
        await show_inside()
        assert app.main.active == "inside"
