"""The user's keymap: binding ids mapped to keys, read from a YAML file (as Posting does).

The file is ``$XDG_CONFIG_HOME/snnlab/keymap.yaml`` (``~/.config/snnlab/keymap.yaml`` when the variable is
not set), or the one ``snnlab lab --keymap FILE`` names. Each line gives a binding id (help lists them, F1)
and its new keys, in Textual's names, several separated by commas::

    lab.start: ctrl+r          # instead of s and F5
    lab.compare: ctrl+t,f8
    inside.next-sample: j

A bound id loses its default keys. Everything wrong with the file (not YAML, an unknown id, a key that is
not a key name, one key given to two actions) is a :class:`KeymapError` whose one line names the file,
the id or key, and the fix. This module knows no class of the lab: the app hands over its bindings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from textual.app import App
from textual.binding import Binding
from textual.keys import Keys, _character_to_key, key_to_character

from snnlab.config import did_you_mean

MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
NAMED_KEYS = frozenset(key.value for key in Keys) | {"space"}
EXAMPLE = "lab.start: ctrl+r"
# Keys Textual keeps for itself, before any binding of the lab is looked at.
RESERVED = {"ctrl+q": "Textual's quit key", "ctrl+c": "copy in a text field", "tab": "the next field",
            "shift+tab": "the previous field"}  # fmt: skip
KEYMAP_PLACE = "~/.config/snnlab/keymap.yaml (in $XDG_CONFIG_HOME/snnlab when that is set)"  # as help says it


class KeymapError(ValueError):
    """A keymap file that cannot be used; the message is one line for the user."""


def default_path() -> Path:
    """Where the lab looks for a keymap when none is named (the file need not exist)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "snnlab" / "keymap.yaml"


def is_key(key: str) -> bool:
    """Whether Textual can bind ``key``: a character, or a key name (``f5``, ``pagedown``, ``question_mark``)
    after any modifiers (``ctrl+shift+``)."""
    if key in NAMED_KEYS:
        return True
    *modifiers, name = key.split("+")
    if not name or any(m not in MODIFIERS for m in modifiers):
        return False
    return len(name) == 1 or name in NAMED_KEYS or key_to_character(name) is not None


def normalize(keys: str) -> list[str]:
    """The keys of a comma-separated list, each as Textual binds it (``?`` is ``question_mark``, ``F5`` is
    ``f5``; a single capital stays, being shift and the letter)."""
    return [_character_to_key(k) if len(k) == 1 else k.lower() for k in (part.strip() for part in keys.split(","))]


def read_keymap(path: str | Path | None, groups: Mapping[str, Iterable[Binding]]) -> dict[str, str]:
    """The keymap in ``path`` (None: :func:`default_path`, where a missing file means no keymap), checked
    against ``groups``: bindings that are active together, by namespace (the main screen's, a dialog's)."""
    named = path is not None
    file = Path(path) if path is not None else default_path()
    if not named and not file.is_file():
        return {}
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeymapError(f"{file}: cannot read the keymap ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise KeymapError(f"{file}: the keymap is not UTF-8 text; save it as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise KeymapError(f"{file}: not valid YAML{where}; write one `id: keys` per line, e.g. {EXAMPLE}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KeymapError(f"{file}: expected binding ids mapped to keys, e.g. {EXAMPLE}")
    return check_keymap(data, groups, str(file))


def check_keymap(data: Mapping[Any, Any], groups: Mapping[str, Iterable[Binding]], source: str) -> dict[str, str]:
    """``data`` as a keymap Textual takes (id -> comma-separated keys), or a :class:`KeymapError`."""
    groups = {name: [b for b in bindings if b.id] for name, bindings in groups.items()}
    known = {b.id for bindings in groups.values() for b in bindings}
    keymap: dict[str, str] = {}
    for binding_id, value in data.items():
        if binding_id not in known:
            hint = did_you_mean(binding_id, sorted(str(k) for k in known)) or "; help (F1) lists every id"
            raise KeymapError(f"{source}: unknown binding id {binding_id!r}{hint}")
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if not isinstance(value, str) or not value.strip():
            example = f"`{binding_id}: ctrl+r` or `{binding_id}: f5,ctrl+r`"
            raise KeymapError(f"{source}: {binding_id}: give the keys as text, e.g. {example}")
        keys = normalize(value)
        for key in keys:
            if key in RESERVED and binding_id != "lab.quit":
                raise KeymapError(f"{source}: {binding_id}: {key} is {RESERVED[key]}; give {binding_id} another key")
            if not is_key(key):
                raise KeymapError(f"{source}: {binding_id}: {key!r} is not a key; use names such as s, ctrl+r, f5, "
                                  "escape, pagedown, question_mark")  # fmt: skip
        keymap[binding_id] = ",".join(keys)
    # One key, one action among the bindings active together. Only the file is blamed: a pane may shadow an
    # app key on purpose, and that is no error of the user's.
    for bindings in groups.values():
        owner: dict[str, str] = {}
        for binding in bindings:
            assert binding.id is not None
            for key in keymap.get(binding.id, ",".join(normalize(binding.key))).split(","):
                other = owner.setdefault(key, binding.id)
                if other != binding.id and (other in keymap or binding.id in keymap):
                    mine = binding.id if binding.id in keymap else other
                    raise KeymapError(f"{source}: {key!r} is bound to both {other} and {binding.id}; "
                                      f"give {mine} another key")  # fmt: skip
    return keymap


def effective_keys(keymap: Mapping[str, str], binding: Binding) -> list[str]:
    """The keys that run ``binding`` under ``keymap``."""
    return normalize(keymap.get(binding.id or "", binding.key))


def types_text(key: str) -> bool:
    """Whether a text field takes ``key`` as text (as Textual's Input decides)."""
    character = key_to_character(key)
    return character is not None and character.isprintable()


def key_names(app: App[Any], binding: Binding, typing: bool = False) -> str:
    """The keys of ``binding`` under the app's keymap (its ``keymap`` attribute), as the footer writes them:
    ``s or F5``, ``^o``; with ``typing``, only those a text field does not take as text (``F5``), or ``-``."""
    keys = effective_keys(getattr(app, "keymap", {}), binding)
    if typing:
        keys = [key for key in keys if not types_text(key)]
    return " or ".join(app.get_key_display(Binding(key, binding.action)) for key in keys) or "-"


def first_key_of(app: App[Any], binding_id: str) -> str:
    """The first key of the app's binding ``binding_id``, for a label with room for one (``Compare runs (c)``)."""
    return key_names_of(app, binding_id).split(" or ")[0]


def key_names_of(app: App[Any], binding_id: str) -> str:
    """:func:`key_names` of the app's binding ``binding_id`` (``?`` when it has none)."""
    found = next((b for b in type(app).BINDINGS if isinstance(b, Binding) and b.id == binding_id), None)
    return key_names(app, found) if found is not None else "?"
