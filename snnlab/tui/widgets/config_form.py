"""The Network pane: a form generated from the config schema, validated as you type.

The form edits a plain dict (the YAML a preset holds). After every edit the dict goes through
:func:`snnlab.config.config_from_dict`; a :class:`~snnlab.config.ConfigError` is shown under the field its
``key`` names (or at the top when no field shows that key), so the messages are exactly those of
``snnlab run``. Layers are a list you can add to, remove from and reorder; each layer's neuron is
none, the model's neuron, or custom settings merged over it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalGroup, VerticalScroll
from textual.content import Content
from textual.css.query import NoMatches
from textual.lazy import Lazy
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Collapsible, Input, Select, Static

from snnlab import catalog
from snnlab.config import Config, ConfigError, NeuronConfig, config_from_dict, dump_yaml, list_presets, load_config
from snnlab.config.schema import TYPE_SETTINGS, retyped, setting_applies
from snnlab.tui import palette
from snnlab.tui.keymap import key_names_of
from snnlab.tui.messages import PresetChosen
from snnlab.tui.screens.dialogs import ErrorDialog, PathDialog
from snnlab.tui.widgets.fields import MISSING, Field, editor_value, get_path, make_field, set_path
from snnlab.tui.widgets.layer_editor import LayerEditor

# Shown first in each section; every other field of the schema sits under "more".
ESSENTIAL = {
    "data": ("dataset", "batch_size", "time_steps", "encoder", "train_size", "test_size"),
    "train": ("epochs", "optimizer", "lr", "loss", "decoder", "device", "seed"),
    "run": ("name", "runs_dir"),
}
NEURON_ESSENTIAL = ("type", "beta", "threshold", "reset", "surrogate")
SECTION_TITLES = {"data": "Data and encoding", "train": "Training", "run": "Run directory"}


def flat_fields(model: type[BaseModel], prefix: str) -> list[tuple[str, Any]]:
    """(dotted path, FieldInfo) of every leaf field of ``model``, nested sections flattened."""
    out: list[tuple[str, Any]] = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(flat_fields(ann, f"{prefix}{name}."))
        else:
            out.append((f"{prefix}{name}", info))
    return out


def neuron_fields(prefix: str, values: dict[str, Any]) -> list[Widget]:
    """Editors for a neuron at ``prefix`` (``model.neuron`` or ``model.layers.2.neuron``).

    ``model.neuron`` gets every essential editor, and the form shows or hides them as its type changes. A
    layer's own neuron gets the editors its type reads: the essentials it reads, then the rest of its type's
    settings (a ``lif`` layer shows ``tau`` and ``v_reset``, not ``beta``); the layer editor rebuilds them
    when the type changes."""
    info = NeuronConfig.model_fields
    widgets: list[Widget] = []
    names: list[str] = list(NEURON_ESSENTIAL)
    if prefix != "model.neuron":
        kind = values.get("type") or info["type"].default
        names = [n for n in names if setting_applies(kind, n)]
        names += [n for n in TYPE_SETTINGS.get(kind, ()) if n not in names]
    for name in names:
        choices = list(catalog.SURROGATES) if name == "surrogate" else None
        widgets.append(make_field(f"{prefix}.{name}", info[name], values.get(name), choices=choices))
    surrogate = values.get("surrogate") or info["surrogate"].default
    params = values.get("surrogate_params") or {}
    listed = catalog.SURROGATES.get(surrogate)
    if listed is not None:
        for key, default in listed.defaults.items():
            field = make_field(f"{prefix}.surrogate_params.{key}", None, params.get(key, default),
                               label=f"  {key}")  # fmt: skip
            field.description = f"parameter of the {surrogate} surrogate: {listed.description}"
            widgets.append(field)
    return widgets


class LaterFields(VerticalGroup):
    """The fields of a collapsed section. They mount just after the first frame (``Lazy``), which they would
    otherwise delay by half a second, and say so: the form then applies to them what it applied to the rest."""

    class Mounted(Message):
        """The fields are in the DOM now."""

        def __init__(self, fields: LaterFields) -> None:
            super().__init__()
            self.fields = fields

    def on_mount(self) -> None:
        self.post_message(self.Mounted(self))


class ConfigForm(Vertical):
    """Edits ``self.data``; posts :class:`ConfigForm.Changed` after each edit."""

    class Changed(Message):
        """The form's config after an edit: ``config`` when valid, else ``error`` (one line)."""

        def __init__(self, config: Config | None, error: str | None) -> None:
            super().__init__()
            self.config = config
            self.error = error

    def __init__(self, data: dict[str, Any], preset: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data = copy.deepcopy(data)
        self.preset = preset
        self.config: Config | None = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        presets = [(name, name) for name, _ in list_presets()]
        with Horizontal(id="form-bar"):
            yield Select(presets, value=self.preset if self.preset in dict(presets) else Select.NULL,
                         prompt="preset…", compact=True, id="preset", tooltip="load a bundled preset")  # fmt: skip
            yield Button("Load…", id="load-yaml", compact=True, tooltip="load a YAML file (ctrl+o)")
            yield Button("Save…", id="save-yaml", compact=True, tooltip="save this config as YAML (ctrl+s)")
        yield Static("", id="form-status")
        with VerticalScroll(id="form-scroll"):
            yield from self._section("data")
            yield Static("Neuron (model.neuron)", classes="section-title")
            yield from neuron_fields("model.neuron", self.data.get("model", {}).get("neuron", {}))
            with Collapsible(title="more neuron settings", collapsed=True):
                shown = (*NEURON_ESSENTIAL, "surrogate_params")
                rest = [f for f in flat_fields(NeuronConfig, "model.neuron.") if f[0].split(".")[2] not in shown]
                yield self._later(rest, "model.neuron.")
            yield Static("Layers", classes="section-title")
            yield LayerEditor(self.data, neuron_fields, id="layers")
            yield from self._section("train")
            yield from self._section("run")
        yield Static("", id="form-hint", markup=False)

    def _section(self, section: str) -> ComposeResult:
        model = Config.model_fields[section].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)  # every section is a pydantic model
        fields = flat_fields(model, f"{section}.")
        essential = [f for f in fields if f[0].split(".")[1] in ESSENTIAL[section]]
        essential.sort(key=lambda f: ESSENTIAL[section].index(f[0].split(".")[1]))
        yield Static(SECTION_TITLES[section], classes="section-title")
        for path, info in essential:
            yield make_field(path, info, get_path(self.data, path, _default(info)))
        rest = [f for f in fields if f not in essential]
        if rest:
            with Collapsible(title=f"more {section} settings ({len(rest)})", collapsed=True):
                yield self._later(rest, f"{section}.")

    def _later(self, fields: list[tuple[str, Any]], prefix: str) -> Lazy:
        """A collapsed section's ``fields``, labelled within it (nested settings keep their parent)."""
        made = [make_field(path, info, get_path(self.data, path, _default(info)), label=path.removeprefix(prefix))
                for path, info in fields]  # fmt: skip
        return Lazy(LaterFields(*made))

    def on_mount(self) -> None:
        self._show_neuron_settings()
        self.validate()

    @on(LaterFields.Mounted)
    def _later_fields(self, event: LaterFields.Mounted) -> None:
        event.stop()
        fields = event.fields

        def apply() -> None:
            if fields.is_attached:  # not replaced meanwhile by a preset or a file loaded into the form
                self._show_neuron_settings()
                self.validate()  # an error may belong to a field that was not there a moment ago

        self.call_after_refresh(apply)

    def _show_neuron_settings(self) -> None:
        """Show model.neuron's settings that its type reads, hide the others (tau is SpikingJelly's, R and C
        Lapicque's, ...); hidden ones keep their values."""
        kind = get_path(self.data, "model.neuron.type", NeuronConfig.model_fields["type"].default)
        for field in self.query(Field):
            if field.path.startswith("model.neuron."):
                field.display = setting_applies(kind, field.path.removeprefix("model.neuron.").split(".")[0])

    # -- editing

    def load(self, data: dict[str, Any], preset: str | None = None) -> None:
        """Replace the whole config (a preset or a YAML file was loaded) and rebuild the form."""
        self.data = copy.deepcopy(data)
        self.preset = preset
        self.call_later(self._rebuild)

    async def _rebuild(self) -> None:
        await self.recompose()  # every new child is mounted when this returns (but the lazy ones, later)
        self._show_neuron_settings()
        self.validate()

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed)
    def _edited(self, event: Input.Changed | Checkbox.Changed | Select.Changed) -> None:
        widget = event.control
        path = widget.name
        if widget.id == "preset" or not path or not widget.is_attached:
            return  # (not attached: an editor of the form that a loaded preset is replacing)
        event.stop()
        if path.startswith("mode:"):
            self.query_one(LayerEditor).set_neuron_mode(path.removeprefix("mode:"), str(editor_value(widget)))
        else:
            value = editor_value(widget)
            before = get_path(self.data, path, MISSING)
            if before == value:
                return  # the echo of a programmatic update; nothing changed
            if value is None and path.count(".surrogate_params."):
                value = MISSING  # an emptied surrogate parameter falls back to its default
            set_path(self.data, path, value)
            if path.endswith(".surrogate") and before is not MISSING:
                # (MISSING: the echo of an inherited surrogate, shown as a custom neuron's fields were built)
                self._surrogate_changed(path)
            if path.endswith(".neuron.type") and isinstance(value, str):
                self._neuron_type_changed(path, before, value)
                self._show_neuron_settings()
            if path.startswith("model.layers."):
                self.query_one(LayerEditor).refresh_list()
        self.validate()

    @on(LayerEditor.Rebuilt)
    def _layers_rebuilt(self, event: LayerEditor.Rebuilt) -> None:
        event.stop()
        self.validate()  # marks the error, if any, on the new fields

    def _surrogate_changed(self, path: str) -> None:
        # The old surrogate's parameters mean nothing to the new one: drop them and show the new ones.
        prefix = path.removesuffix(".surrogate")
        set_path(self.data, f"{prefix}.surrogate_params", {})
        if prefix == "model.neuron":
            self.load(self.data, self.preset)
        else:
            self.query_one(LayerEditor).rebuild()

    def _neuron_type_changed(self, path: str, before: Any, kind: str) -> None:
        # The form holds every setting explicitly: those still at the old type's default take the new type's
        # (switching to alpha brings its reset zero and beta 0.8, which its alpha 0.9 must exceed).
        prefix = path.removesuffix(".type")
        base = self.data.get("model", {}).get("neuron", {})
        old = before if isinstance(before, str) else base.get("type", NeuronConfig.model_fields["type"].default)
        own = get_path(self.data, prefix, {})
        shown = own if prefix == "model.neuron" else {**base, **own}
        changes = retyped(shown, old, kind)
        for key, value in changes.items():
            set_path(self.data, f"{prefix}.{key}", value)
        if prefix != "model.neuron":
            if changes or kind != old:  # a layer's neuron shows the new type's settings
                self.query_one(LayerEditor).rebuild()
        elif changes:
            self.load(self.data, self.preset)

    # -- files

    def load_yaml(self) -> None:
        """Ask for a YAML file and load it into the form (errors in a dialog, the form unchanged)."""

        def chosen(path: str | None) -> None:
            if path:
                try:
                    config = load_config(path)
                except ConfigError as exc:
                    self.app.push_screen(ErrorDialog("Cannot load the config", str(exc)))
                    return
                self.load(config.to_dict())
                self.notify(f"loaded {path}", markup=False)

        self.app.push_screen(PathDialog("Load a config (YAML)", "presets/", "Load"), chosen)

    def save_yaml(self) -> None:
        """Ask for a path and save the config as YAML that ``snnlab run`` reads back."""
        config = self.config
        if config is None:
            self.app.push_screen(ErrorDialog("The config is not valid", self.error or ""))
            return

        def chosen(path: str | None) -> None:
            if path:
                try:
                    Path(path).write_text(dump_yaml(config), encoding="utf-8")
                except OSError as exc:
                    self.app.push_screen(ErrorDialog("Cannot save", f"{path}: {exc.strerror or exc}"))
                    return
                self.notify(f"saved {path}", markup=False)

        self.app.push_screen(PathDialog("Save the config as YAML", f"{config.run.name}.yaml", "Save"), chosen)

    @on(Button.Pressed, "#load-yaml")
    def _load_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.load_yaml()

    @on(Button.Pressed, "#save-yaml")
    def _save_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.save_yaml()

    @on(Select.Changed, "#preset")
    def _preset_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.NULL and event.value != self.preset:
            self.post_message(PresetChosen(str(event.value)))

    def on_descendant_focus(self, event: Any) -> None:
        field = next((a for a in event.widget.ancestors if isinstance(a, Field)), None)
        hint = self.query_one("#form-hint", Static)
        hint.update(f"{field.path}: {field.description}" if field and field.description else "")

    # -- validation

    def validate(self) -> Config | None:
        """Validate ``self.data``; mark the field named by the error; post :class:`Changed`."""
        key: str | None = None
        try:
            self.config, self.error = config_from_dict(self.data, source="form"), None
        except ConfigError as exc:
            self.config, key = None, exc.key
            self.error = str(exc).removeprefix("form: ")
        self.post_message(self.Changed(self.config, self.error))
        try:
            self._mark(key)
        except NoMatches:  # between the old children and the new (a preset is loading): _rebuild marks them
            pass
        return self.config

    def _mark(self, key: str | None) -> None:
        """Show ``self.error`` under the field (or the layer list) that ``key`` names, and in the status line."""
        fields = list(self.query(Field))
        target = _field_for(fields, key) if key else None
        layers = self.query_one(LayerEditor)
        stack_error = _stack_error(key, self.error, target)
        layers.set_error(stack_error)
        if stack_error is not None:
            target = None  # shown under the layer list, not under whichever field of a layer is near
        for field in fields:
            message = None
            if field is target and self.error:
                message = self.error.removeprefix(f"{key}: ")
            field.set_error(message)
        status = self.query_one("#form-status", Static)
        if self.error:
            where = " (under the layer list)" if stack_error else "" if target else " (not shown in the form)"
            status.update(Content.from_markup(f"[b {palette.BAD}]✗[/] $error", error=f"{self.error}{where}"))
        else:
            keys = key_names_of(self.app, "lab.start")
            status.update(Content.from_markup(f"[b {palette.GOOD}]✓[/] valid config — [b]$keys[/] starts training",
                                              keys=keys))  # fmt: skip


def _default(info: Any) -> Any:
    return info.get_default(call_default_factory=True)


def _stack_error(key: str | None, error: str | None, target: Field | None) -> tuple[int | None, str] | None:
    """(layer index, message) when ``error`` is about the layer stack rather than one field: its key is
    ``model.layers`` or a layer (``model.layers.3``: a layer that does not fit its input), or a setting of a
    layer that no field shows."""
    if not key or not error or not (key == "model.layers" or key.startswith("model.layers.")):
        return None
    if target is not None and target.path.removeprefix("mode:") == key:
        return None  # a field of the highlighted layer says it
    parts = key.split(".")
    index = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
    if len(parts) > 3:  # a setting of a layer: its full key names it
        return index, error
    problem = error.removeprefix(f"{key}: ")
    return index, problem if index is None else f"layer {index}: {problem}"


def _field_for(fields: list[Field], key: str) -> Field | None:
    """The field showing ``key``, or the closest one above or below it (a list item, a mapping entry)."""
    best: Field | None = None
    for field in fields:
        path = field.path.removeprefix("mode:")
        if path == key:
            return field
        if key.startswith(path + ".") or path.startswith(key + "."):
            if best is None or len(path) > len(best.path):
                best = field
    return best
