"""Form fields generated from the config schema: one widget per pydantic field, named by its dotted path.

A field is a label, an input widget whose ``name`` is the config path (``data.batch_size``,
``model.layers.1.neuron.beta``) and an error line under it. The widget kind follows the field's type:
a Literal becomes a Select, a bool a Checkbox, the surrogate name a Select of the catalog's, everything
else an Input whose text is parsed as YAML (so ``1e-3``, ``null``, ``[0.9, 0.99]`` all work).
"""

from __future__ import annotations

import typing
from typing import Any, Literal

import yaml
from pydantic.fields import FieldInfo
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static

MISSING = object()  # "no value": deletes the key in set_path
_RAISE = object()


def get_path(data: Any, path: str, default: Any = _RAISE) -> Any:
    """``data["a"]["b"][1]`` for ``"a.b.1"``; ``default`` (or KeyError) when absent."""
    node = data
    for part in path.split("."):
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            if default is _RAISE:
                raise KeyError(path) from None
            return default
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``"a.b.1.c"`` in nested dicts/lists, creating dicts on the way (a ``neuron: true`` too)."""
    parts = path.split(".")
    node: Any = data
    for part in parts[:-1]:
        key: Any = int(part) if isinstance(node, list) else part
        child = node[key] if isinstance(node, list) else node.get(key)
        if not isinstance(child, (dict, list)):
            child = {}
            node[key] = child
        node = child
    last: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
    if value is MISSING:
        if isinstance(node, dict):
            node.pop(last, None)
    else:
        node[last] = value


def show_value(value: Any) -> str:
    """A value as the user would type it: '' for null, YAML flow style for lists and mappings."""
    if value is None:
        return ""
    if isinstance(value, (list, dict, tuple)):
        return yaml.safe_dump(list(value) if isinstance(value, tuple) else value, default_flow_style=True).strip()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_value(text: str) -> Any:
    """The typed text as data: '' is null, otherwise YAML (falling back to the raw text)."""
    text = text.strip()
    if not text:
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def literal_options(annotation: Any) -> list[str] | None:
    """The choices of a ``Literal[...]`` annotation, else None."""
    if typing.get_origin(annotation) is Literal:
        return [str(a) for a in typing.get_args(annotation)]
    return None


class Field(Vertical):
    """Label, editor and inline error of one config value. ``name`` is the dotted config path."""

    def __init__(self, path: str, label: str, editor: Widget, description: str = "") -> None:
        super().__init__(name=path, classes="field")
        self.path = path
        self.label = label
        self.editor = editor
        self.description = description
        self.error: str | None = None
        editor.tooltip = description or None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label, classes="field-label")
            yield self.editor
        yield Static(self._error_text(), classes="field-error", markup=False)  # messages quote what was typed

    def _error_text(self) -> str:
        return f"↳ {self.error}" if self.error else ""

    def set_error(self, message: str | None) -> None:
        """Show ``message`` under the editor (None clears it); safe before the field is composed."""
        self.error = message
        self.set_class(bool(message), "-invalid")
        for line in self.query(".field-error").results(Static):
            line.update(self._error_text())


def make_field(path: str, info: FieldInfo | None, value: Any, *, label: str | None = None,
               choices: list[str] | None = None) -> Field:  # fmt: skip
    """A :class:`Field` for ``path`` whose editor fits ``info``'s type (or the given ``choices``)."""
    name = label or path.rsplit(".", 1)[-1]
    description = (info.description or "") if info else ""
    options = choices or (literal_options(info.annotation) if info else None)
    editor: Widget
    if options:
        current = str(value) if value is not None else options[0]
        if current not in options:
            options = [*options, current]  # keep an unknown value visible so its error can be shown
        editor = Select([(o, o) for o in options], value=current, allow_blank=False, compact=True, name=path)
    elif info is not None and info.annotation is bool:
        editor = Checkbox("", value=bool(value), compact=True, name=path)
    else:
        editor = Input(show_value(value), compact=True, name=path, placeholder="null" if value is None else "")
    return Field(path, name, editor, description)


def editor_value(widget: Widget) -> Any:
    """The config value a field's editor holds now."""
    if isinstance(widget, Select):
        return widget.value
    if isinstance(widget, Checkbox):
        return widget.value
    if isinstance(widget, Input):
        return parse_value(widget.value)
    raise TypeError(type(widget).__name__)
