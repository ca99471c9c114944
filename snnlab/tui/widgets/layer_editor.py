"""The layer stack of the Network pane: a list of layers plus an editor for the highlighted one.

Add linear, conv, pooling, flatten, batchnorm_tt and delayed_linear layers; remove and reorder them. The
editor shows the schema's fields of the layer's type and its neuron: none, the model's neuron, or custom
settings merged over it. It edits the form's dict in place and posts :class:`LayerEditor.Rebuilt` after a
change of structure; the form validates after every change, and an error about the stack itself (a conv
after a linear layer: the config's shape check, the run's own) shows under the list, its layer marked ✗.
The neuron's fields are the form's: it hands over the function that builds them, so a custom neuron looks
the same here as the model's neuron does in the form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, OptionList, Static

from snnlab.config import LAYERS
from snnlab.tui.widgets.fields import make_field

NEW_LAYERS: dict[str, dict[str, Any]] = {
    "linear": {"type": "linear", "out_features": 128, "neuron": True},
    "conv2d": {"type": "conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1, "neuron": True},
    "maxpool": {"type": "maxpool", "kernel_size": 2},
    "flatten": {"type": "flatten"},
    "batchnorm_tt": {"type": "batchnorm_tt"},  # one norm per time step (snnTorch's BNTT), the run's T of them
    "delayed_linear": {"type": "delayed_linear", "out_features": 128, "max_delay": 25, "neuron": True},
}
# Short enough for all nine buttons in 80 columns; each button's tooltip names its layer type in full.
BUTTON_LABELS = {"conv2d": "+conv", "batchnorm_tt": "+bntt", "delayed_linear": "+delayed"}
MODES = ("none", "model neuron", "custom")

NeuronFields = Callable[[str, dict[str, Any]], list[Widget]]
"""Editors for the neuron at a config path (``model.layers.2.neuron``), given its settings."""


def layer_summary(index: int, layer: dict[str, Any]) -> str:
    """One line per layer: ``2  linear 256   ⚡ model neuron``."""
    kind = layer.get("type", "?")
    size = layer.get("out_features") or layer.get("out_channels") or ""
    if kind in ("maxpool", "avgpool"):
        size = f"k{layer.get('kernel_size', 2)}"
    neuron = layer.get("neuron", False)
    spikes = (
        ""
        if neuron is False or "neuron" not in LAYERS.get(kind, LAYERS["flatten"]).model_fields
        else ("  ⚡ model neuron" if neuron is True else "  ⚡ custom neuron")
    )
    return f"{index}  {kind} {size}{spikes}"


class LayerEditor(Vertical):
    """Shares the form's ``data`` dict; ``model.layers`` is the list it edits."""

    class Rebuilt(Message):
        """Layers were added, removed, moved or their neuron changed kind: the editor shows new fields."""

    def __init__(self, data: dict[str, Any], neuron_fields: NeuronFields, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data = data
        self.neuron_fields = neuron_fields
        self.index = 0
        self.error: tuple[int | None, str] | None = None  # (layer, message) of a stack that cannot be built

    @property
    def stack(self) -> list[dict[str, Any]]:
        model = self.data.setdefault("model", {})
        return model.setdefault("layers", [])

    def compose(self) -> ComposeResult:
        yield OptionList(*[self._summary(i, layer) for i, layer in enumerate(self.stack)], id="layer-list")
        yield Static("", id="layer-error", markup=False)
        with Horizontal(id="layer-buttons"):
            for kind in NEW_LAYERS:
                yield Button(BUTTON_LABELS.get(kind, f"+{kind}"), id=f"add-{kind}", compact=True,
                             tooltip=f"insert a {kind} layer after the highlighted one")  # fmt: skip
            yield Button("remove", id="remove-layer", compact=True, variant="error")
            yield Button("↑", id="layer-up", compact=True, tooltip="move the layer up")
            yield Button("↓", id="layer-down", compact=True, tooltip="move the layer down")
        with Vertical(id="layer-fields"):
            yield from self._fields()

    def _fields(self) -> ComposeResult:
        if not self.stack:
            return
        self.index = min(self.index, len(self.stack) - 1)
        i, layer = self.index, self.stack[self.index]
        cls = LAYERS.get(layer.get("type", ""), None)
        if cls is None:
            return
        for name, info in cls.model_fields.items():
            if name in ("type", "neuron"):
                continue
            yield make_field(f"model.layers.{i}.{name}", info, layer.get(name, info.default))
        if "neuron" in cls.model_fields:
            neuron = layer.get("neuron", False)
            mode = "none" if neuron is False else "model neuron" if neuron is True else "custom"
            yield make_field(f"mode:model.layers.{i}.neuron", cls.model_fields["neuron"], mode,
                             label="neuron", choices=list(MODES))  # fmt: skip
            if isinstance(neuron, dict):
                merged = {**self.data.get("model", {}).get("neuron", {}), **neuron}
                yield from self.neuron_fields(f"model.layers.{i}.neuron", merged)

    def on_mount(self) -> None:
        self._highlight()

    def _highlight(self) -> None:
        option_list = self.query_one(OptionList)
        if self.stack:
            option_list.highlighted = min(self.index, len(self.stack) - 1)

    def _summary(self, index: int, layer: dict[str, Any]) -> str:
        if self.error is None or self.error[0] is None:
            return layer_summary(index, layer)
        return ("✗ " if self.error[0] == index else "  ") + layer_summary(index, layer)  # columns stay aligned

    def set_error(self, error: tuple[int | None, str] | None) -> None:
        """Show why the stack cannot be built (``(layer index or None, message)``) under the list, and mark
        that layer in it; None clears both."""
        if error == self.error:
            return
        self.error = error
        self.query_one("#layer-error", Static).update(f"✗ {error[1]}" if error else "")
        self.set_class(error is not None, "-invalid")
        self.refresh_list()

    def refresh_list(self) -> None:
        """Update the one-line summaries after a field of a layer changed."""
        option_list = self.query_one(OptionList)
        for i, layer in enumerate(self.stack):
            if i < option_list.option_count:
                option_list.replace_option_prompt_at_index(i, self._summary(i, layer))

    def rebuild(self) -> None:
        """Redraw list and editor (after a structural change), then post :class:`Rebuilt`.

        The list is refilled in place rather than recomposed: a new OptionList highlights its first option
        as it is built, and that highlight, arriving after the rebuild, would move the editor to layer 0."""
        option_list = self.query_one(OptionList)
        option_list.clear_options()
        option_list.add_options([self._summary(i, layer) for i, layer in enumerate(self.stack)])
        self._show_fields()
        self._highlight()
        self.call_after_refresh(self.post_message, self.Rebuilt())

    def _show_fields(self) -> None:
        fields = self.query_one("#layer-fields", Vertical)
        fields.remove_children()
        fields.mount_all(list(self._fields()))

    @on(OptionList.OptionHighlighted, "#layer-list")
    def _select(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option_index != self.index:
            self.index = event.option_index
            self._show_fields()

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        event.stop()
        layers, i = self.stack, self.index
        if button.startswith("add-"):
            layers.insert(i + 1 if layers else 0, dict(NEW_LAYERS[button.removeprefix("add-")]))
            self.index = i + 1 if len(layers) > 1 else 0
        elif button == "remove-layer" and layers:
            layers.pop(i)
            self.index = max(0, i - 1)
        elif button == "layer-up" and i > 0:
            layers[i - 1], layers[i] = layers[i], layers[i - 1]
            self.index = i - 1
        elif button == "layer-down" and i + 1 < len(layers):
            layers[i + 1], layers[i] = layers[i], layers[i + 1]
            self.index = i + 1
        else:
            return
        self.rebuild()

    def set_neuron_mode(self, path: str, mode: str) -> None:
        """``path`` is ``model.layers.i.neuron``; ``mode`` one of :data:`MODES`."""
        index = int(path.split(".")[2])
        layer = self.stack[index]
        current = layer.get("neuron", False)
        wanted: Any = {"none": False, "model neuron": True}.get(mode, current if isinstance(current, dict) else {})
        if wanted == current and type(wanted) is type(current):
            return
        layer["neuron"] = wanted
        self.rebuild()
