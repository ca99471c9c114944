"""Help and the command palette are written from the bindings: help lists every key of the lab and its
panes, and neither help nor the palette names a key that is not bound."""

from __future__ import annotations

import copy

import pytest
from rich.style import Style
from rich.text import Text
from textual.binding import Binding

from snnlab.tui.app import SnnLabApp, make_app
from snnlab.tui.commands import PALETTE, palette_commands
from snnlab.tui.screens.help import PANE_HELP, HelpScreen
from snnlab.tui.screens.main import PANES, Pane
from tests.conftest import TINY
from tests.tui.conftest import lab_classes


def promised(app: SnnLabApp) -> list[Binding]:
    """The keys help lists: the app's, and those of the widget in each pane. (A control inside a pane, such
    as the evaluation slider or a text field, keeps its usual keys, as Textual's own widgets do.)"""
    found = [b for b in type(app).BINDINGS if isinstance(b, Binding)]
    for pane in app.main.query(Pane):
        for widget in pane.children:
            found += [b for b in vars(type(widget)).get("BINDINGS", []) if isinstance(b, Binding)]
    return found


def key_spellings(app: SnnLabApp, bindings: list[Binding]) -> set[str]:
    """Every way a bound key may be written: as bound (``full_stop``) and as shown (``.``)."""
    keys = {key for binding in bindings for key in binding.key.split(",")}
    return keys | {app.get_key_display(Binding(key, "")) for key in keys}


def bold_words(text: Text) -> list[str]:
    """The first word of each bold stretch of ``text``: where help names a key."""
    words = []
    for span in text.spans:
        style = Style.parse(span.style) if isinstance(span.style, str) else span.style
        if style.bold:
            words.append(text.plain[span.start : span.end].split()[0])
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
        assert [binding_id for _, _, binding_id in help_screen.rows] == list(dict.fromkeys(b.id for b in bindings))
        assert [(key, does) for key, does, _ in help_screen.rows] == list(
            dict.fromkeys((b.key, b.description) for b in bindings)
        )
        named = bold_words(help_screen.panes)
        assert len(named) >= len(PANES) + 6  # each pane's key, and the keys that work inside the panes
        assert set(named) <= key_spellings(app, bindings), set(named) - key_spellings(app, bindings)
        assert help_screen.palette_key == app.COMMAND_PALETTE_BINDING


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
        assert ("Start training", "train the current config (s)") in offered
        # Choosing an entry runs its binding's action.
        show_inside = next(callback for title, _, callback in commands if title == "Show the Inside pane")
        await show_inside()
        assert app.main.active == "inside"
