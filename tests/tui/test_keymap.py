"""The user's keymap: a YAML file of binding ids and keys under $XDG_CONFIG_HOME/snnlab (or --keymap),
checked with one-line errors, applied to the lab, and shown by help and the footer."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snnlab.tui.app import binding_groups, make_app
from snnlab.tui.keymap import KeymapError, default_path, read_keymap
from snnlab.tui.screens.help import HelpScreen
from tests.conftest import TINY
from tests.tui.test_keys import footer, lab_with_fake_launch


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def write_keymap(home: Path, text: str) -> Path:
    path = home / "snnlab" / "keymap.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_default_file_follows_xdg_config_home_and_may_be_missing(config_home, monkeypatch):
    assert default_path() == config_home / "snnlab" / "keymap.yaml"
    assert read_keymap(None, binding_groups()) == {}
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert default_path() == Path.home() / ".config" / "snnlab" / "keymap.yaml"


def test_a_keymap_file_is_read_and_normalized(config_home):
    write_keymap(config_home, "lab.start: ctrl+r\nlab.help: [F1, '!']\ninside.next-sample: j  # was .\n")
    assert read_keymap(None, binding_groups()) == {
        "lab.start": "ctrl+r",
        "lab.help": "f1,exclamation_mark",
        "inside.next-sample": "j",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lab.strat: ctrl+r", "unknown binding id 'lab.strat'; did you mean 'lab.start'?"),
        ("nothing.like.it: ctrl+r", "unknown binding id 'nothing.like.it'; help (F1) lists every id"),
        ("lab.start: ctrl+rr", "lab.start: 'ctrl+rr' is not a key; use names such as s, ctrl+r, f5"),
        ("lab.start: hyper+", "lab.start: 'hyper+' is not a key"),
        ("lab.start: 5", "lab.start: give the keys as text, e.g. `lab.start: ctrl+r`"),
        ("lab.start: c", "'c' is bound to both lab.start and lab.compare; give lab.start another key"),
        ("lab.start: n", "'n' is bound to both lab.start and inside.next-neurons; give lab.start another key"),
        ("lab.start: f9\nlab.stop: f9", "'f9' is bound to both"),
        # a leaf widget's key (a plot's) clashes with the main keys, though not with another leaf's
        ("lab.start: m", "'m' is bound to both lab.start and lab.plot-smoothing"),
        ("lab.start: ctrl+q", "lab.start: ctrl+q is Textual's quit key; give lab.start another key"),
        ("lab.help: tab", "lab.help: tab is the next field; give lab.help another key"),
        ("lab.start: [ctrl+r", "not valid YAML at line 1; write one `id: keys` per line, e.g. lab.start: ctrl+r"),
        ("- lab.start\n- ctrl+r", "expected binding ids mapped to keys, e.g. lab.start: ctrl+r"),
    ],
)
def test_a_bad_keymap_is_one_line_naming_the_file_the_id_or_key_and_the_fix(config_home, text, expected):
    path = write_keymap(config_home, text)
    with pytest.raises(KeymapError) as caught:
        read_keymap(None, binding_groups())
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message


def test_a_named_keymap_that_is_missing_is_an_error(tmp_path):
    with pytest.raises(KeymapError, match=r"missing\.yaml: cannot read the keymap"):
        read_keymap(tmp_path / "missing.yaml", binding_groups())


def test_the_default_keys_do_not_clash():
    # The lab's own keys give no key to two ids among the bindings active together.
    for group in binding_groups().values():
        seen: dict[str, str] = {}
        for binding in group:
            for key in binding.key.split(","):
                assert seen.setdefault(key, binding.id or "") == binding.id, (key, seen[key], binding.id)


@pytest.mark.asyncio
async def test_the_lab_uses_the_keymap_and_help_and_footer_show_it(config_home):
    write_keymap(config_home, "lab.start: ctrl+r\nlab.pause: ctrl+t\n")
    app, started = lab_with_fake_launch()
    app.keymap = read_keymap(None, binding_groups())
    app.set_keymap(app.keymap)
    async with app.run_test(size=(120, 36)) as pilot:  # wide: the greyed Pause is shown
        await pilot.pause()
        assert footer(app)["Start"] == ("^r", True) and footer(app)["Pause"] == ("^t", False)
        await pilot.press("s")  # no longer bound
        await pilot.pause()
        assert started == []
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert len(started) == 1
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        rows = {binding_id: key for key, _, binding_id in app.screen.rows}
        assert rows["lab.start"] == "^r" and rows["lab.pause"] == "^t" and rows["lab.stop"] == "x or F7"


def test_make_app_reads_a_keymap_file(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("lab.compare: ctrl+t\n", encoding="utf-8")
    assert make_app(config=copy.deepcopy(TINY), keymap=path).keymap == {"lab.compare": "ctrl+t"}
    path.write_text("lab.compare: s\n", encoding="utf-8")
    with pytest.raises(KeymapError, match="'s' is bound to both lab.start and lab.compare"):
        make_app(config=copy.deepcopy(TINY), keymap=path)


@pytest.mark.parametrize("args", [["lab", "--keymap", "{file}"], ["lab"], []])
def test_the_cli_refuses_a_bad_keymap_with_one_line(tmp_path, args):
    home = tmp_path / "xdg"
    bad = write_keymap(home, "lab.strat: ctrl+r\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(home)}
    command = [sys.executable, "-m", "snnlab", *[a.format(file=bad) for a in args]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"snnlab: error: {bad}: unknown binding id 'lab.strat'; did you mean 'lab.start'?\n"


def test_two_leaf_widgets_may_share_a_key_but_not_with_the_main_keys():
    groups = binding_groups()
    keys = {name: {k for b in group for k in b.key.split(",")} for name, group in groups.items()}
    assert {"left", "right"} <= keys["MetricPlot"] & keys["Slider"]  # never focused together
    assert "t" in keys["MetricPlot"] & keys["RasterView"]
    ids = {name: {b.id for b in group} for name, group in groups.items()}
    assert ids["main"] < ids["MetricPlot"] and ids["main"] < ids["Slider"]  # each leaf is checked against main
    assert "slider.earlier" not in ids["MetricPlot"] and "lab.plot-left" not in ids["Slider"]
