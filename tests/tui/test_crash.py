"""When the lab breaks, `snnlab` exits 1 with one line and a log; the lab's classes keep clear of Textual's names."""

from __future__ import annotations

import ast
import inspect
import re
import sys
from typing import Any

import pytest
import typer
from textual.app import App

from snnlab import cli
from snnlab.tui import app as app_module
from tests.tui.conftest import lab_classes


class _Terminal:
    def isatty(self) -> bool:
        return True


def test_a_crash_of_the_lab_exits_1_with_one_line_and_the_traceback_in_a_log(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)

    def broken_help(self: Any) -> None:
        raise RuntimeError("help is broken [here]\nand a second line")

    monkeypatch.setattr(app_module.SnnLabApp, "action_help", broken_help)
    real_make_app = app_module.make_app

    def headless_make_app(**options: Any) -> app_module.SnnLabApp:
        lab = real_make_app(config=tiny)

        async def press_f1(pilot: Any) -> None:
            await pilot.press("tab", "tab", "f1")

        run = lab.run
        lab.run = lambda: run(headless=True, size=(80, 24), auto_pilot=press_f1)  # type: ignore[method-assign]
        return lab

    monkeypatch.setattr(app_module, "make_app", headless_make_app)
    with pytest.raises(typer.Exit) as ended:
        cli._run_lab()
    assert ended.value.exit_code == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err  # no traceback over the user's shell
    found = re.fullmatch(r"snnlab: the lab crashed \(RuntimeError: help is broken \[here\]\); details in (\S+)\n", err)
    assert found, err
    log = found.group(1)
    assert log.startswith(str(tmp_path / "cache" / "snnlab"))
    text = open(log, encoding="utf-8").read()
    assert "Traceback (most recent call last)" in text and "and a second line" in text
    assert "in broken_help" in text and "textual " in text


# Textual attributes a widget is meant to set on itself.
MEANT_TO_BE_SET = {"border_title", "border_subtitle", "virtual_size"}  # a ScrollView sets its virtual_size


def test_the_labs_classes_do_not_reuse_textuals_names_for_their_own_state():
    """``self.focused = text`` on a screen or ``self.watch = flag`` replaced what Textual itself reads (the focused
    widget, the watch() method): the lab crashed on the next key. Names Textual defines are not for lab state."""
    clashes = []
    for cls in lab_classes():
        base = next(b for b in cls.__mro__ if b.__module__.split(".")[0] == "textual")
        taken = set(dir(base)) | set(vars(App()) if issubclass(base, App) else ())
        for node in ast.walk(ast.parse(inspect.getsource(cls))):
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name)
                    and node.value.id == "self" and node.attr in taken and node.attr not in MEANT_TO_BE_SET
                    and node.attr not in vars(cls)):  # fmt: skip
                clashes.append(f"{cls.__module__}.{cls.__name__}.{node.attr} (Textual's {base.__name__}.{node.attr})")
    assert not clashes, clashes
    assert len(lab_classes()) > 10  # the walk found the lab


@pytest.mark.asyncio
async def test_brackets_the_user_types_are_shown_as_typed_not_read_as_markup(tiny, tmp_path, monkeypatch):
    from textual.widgets import Input, Static

    from snnlab.tui.app import make_app

    monkeypatch.chdir(tmp_path)
    lab = make_app(config=tiny, runs_dir=tmp_path / "[runs]")
    async with lab.run_test(size=(120, 36)) as pilot:
        editor = next(i for i in lab.main.query(Input) if i.name == "data.batch_size")
        editor.focus()
        editor.value = ""
        await pilot.press(*"[/]")
        await pilot.pause(0.2)
        assert lab.config is None and lab.crash is None
        assert "[/]" in str(lab.main.query_one("#form-status", Static).render())
        editor.value = "50"
        await pilot.pause(0.2)
        (tmp_path / "x[").mkdir()
        await pilot.press("ctrl+s")  # saved under a name that looks like markup: the notice quotes it
        await pilot.pause(0.2)
        lab.screen.query_one(Input).value = "x[/]config.yaml"
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert (tmp_path / "x[" / "]config.yaml").is_file()
        lab.action_runs()  # the runs list names its folder, brackets and all
        await pilot.pause(0.3)
        assert "[runs]" in str(lab.screen.query_one("#dialog-title", Static).render())
        assert lab.crash is None


@pytest.mark.asyncio
async def test_a_message_handled_while_the_lab_shuts_down_does_not_crash_it(tiny):
    """Found by the monkey: a value typed just before the lab closed posted a config change that was handled
    after the screens were gone, and refreshing the footer raised ScreenStackError."""
    from snnlab.tui.app import make_app
    from snnlab.tui.widgets.config_form import ConfigForm

    lab = make_app(config=tiny)
    async with lab.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    assert not lab.screen_stack
    lab._config_changed(ConfigForm.Changed(None, "data.batch_size: must be > 0"))
    assert lab.config is None
