"""The Inside pane: what the neurons did, evaluation by evaluation.

Pick a layer, a test sample and a group of neurons; see their membrane over the T steps against the
threshold with each spike marked, and the spike raster of the whole layer. Below them, the health of
every layer at the last evaluation (:class:`HealthPanel`). Step through evaluations
(the slider, ``[`` and ``]``) to watch a neuron learn to fire. Probes come from training in memory, or
from a run directory's ``probes/`` files, which are loaded in a thread worker on demand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.timer import Timer
from textual.widgets import Button, Select, Static

from snnlab.engine.events import ProbeRecorded
from snnlab.tui import palette
from snnlab.tui.messages import ProbeLoaded
from snnlab.tui.widgets.health_panel import HealthPanel
from snnlab.tui.widgets.raster_view import RasterView
from snnlab.tui.widgets.slider import Slider
from snnlab.tui.widgets.trace_view import TraceView

GROUP = 4  # neurons drawn together; more lines than this make a terminal plot unreadable
PLAY_SECONDS = 0.6  # per evaluation, when playing them


class InsidePane(Vertical, can_focus=True):
    """Shows one probe at a time; ``set_probes`` hands it the run's probes (newest last)."""

    # Pairs share one footer entry ("[] eval"): the Inside pane's keys and the lab's fit in 100 columns.
    EVAL, SAMPLE, NEURONS = (Binding.Group(name, compact=True) for name in ("eval", "sample", "neurons"))
    BINDINGS = [
        Binding("left_square_bracket", "eval(-1)", "Prev eval", id="inside.prev-eval", group=EVAL),
        Binding("right_square_bracket", "eval(1)", "Next eval", id="inside.next-eval", group=EVAL),
        Binding("comma", "sample(-1)", "Prev sample", id="inside.prev-sample", group=SAMPLE),
        Binding("full_stop", "sample(1)", "Next sample", id="inside.next-sample", group=SAMPLE),
        Binding("N", "neurons(-1)", "Prev neurons", id="inside.prev-neurons", group=NEURONS),
        Binding("n", "neurons(1)", "Next neurons", id="inside.next-neurons", group=NEURONS),
        Binding("y", "layer", "Layer", id="inside.next-layer", tooltip="Next layer"),
        Binding("P", "play", "Play evals", id="inside.play", show=False),  # in help; the footer has no room
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probes: list[ProbeRecorded] = []
        self.run_path: Path | None = None
        self.index = -1  # -1 follows the newest probe
        self.sample = 0
        self.group = 0
        self.layer_name: str | None = None
        self._loaded: dict[tuple[int, int], dict[str, Any]] = {}
        self._loading: set[tuple[int, int]] = set()
        self._select_names: list[str] = []
        self._player: Timer | None = None  # steps through the evaluations while playing

    def compose(self) -> ComposeResult:
        with Horizontal(id="inside-bar"):
            yield Select([], prompt="layer", compact=True, id="inside-layer", allow_blank=True)
            yield Button("◀", id="eval-prev", compact=True, tooltip="earlier evaluation ([)")
            yield Static("no probes yet", id="inside-eval")
            yield Button("▶", id="eval-next", compact=True, tooltip="later evaluation (])")
            yield Slider(id="eval-slider")
        with Horizontal(id="inside-bar2"):
            yield Button("◀ sample", id="sample-prev", compact=True)
            yield Button("sample ▶", id="sample-next", compact=True, tooltip="next test sample (.)")
            yield Button("neurons ▶", id="neurons-next", compact=True, tooltip="next group of neurons (n)")
            yield Static("", id="inside-sample")
        with Horizontal(id="inside-body"):
            yield TraceView(id="trace")
            yield RasterView(id="raster")
        yield HealthPanel(id="health")

    # -- data in

    def on_mount(self) -> None:
        # Probes handed over while the pane was mounting (it mounts after the lab's first frame) reached a
        # Select that its own mount then reset: draw once more when every child is in.
        self.call_after_refresh(self.redraw)

    def set_probes(self, probes: list[ProbeRecorded], run_path: str | Path | None = None) -> None:
        """New probe list (called from the redraw timer when the run's probes changed)."""
        self.probes = probes
        self.run_path = Path(run_path) if run_path else None
        self.redraw()

    def _current(self) -> ProbeRecorded | None:
        if not self.probes:
            return None
        return self.probes[self.index if 0 <= self.index < len(self.probes) else -1]

    def _layers(self, probe: ProbeRecorded) -> dict[str, Any] | None:
        if probe.layers:
            return probe.layers
        key = (probe.epoch, probe.step)
        if key in self._loaded:
            return self._loaded[key]
        if probe.path and self.run_path is not None and key not in self._loading:
            self._loading.add(key)
            self._load(key, str(self.run_path), probe.path)
        return None

    @work(thread=True, group="probe-load", exit_on_error=False)
    def _load(self, key: tuple[int, int], run_path: str, relpath: str) -> None:
        # Reading a file (and, for a run recorded before the numpy format, importing torch) must not stall the
        # UI: a thread, then a message.
        from snnlab.runs import RunDirError, load_probe

        try:
            data = load_probe(run_path, relpath)
            layers = {
                name: {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in layer.items()}
                for name, layer in data["layers"].items()
            }
            self.post_message(ProbeLoaded(key, layers))
        except RunDirError as exc:
            self.post_message(ProbeLoaded(key, None, str(exc)))

    @on(ProbeLoaded)
    def _loaded_probe(self, message: ProbeLoaded) -> None:
        self._loading.discard(message.key)
        if message.layers is not None:
            self._loaded[message.key] = message.layers
            self.redraw()
        elif message.error:
            error = Content.from_markup(f"[{palette.BAD}]$error", error=message.error)
            self.query_one("#inside-sample", Static).update(error)

    # -- drawing

    def redraw(self) -> None:
        probe = self._current()
        slider = self.query_one(Slider)
        label = self.query_one("#inside-eval", Static)
        if probe is None:
            label.update("no probes yet: they are recorded at each evaluation")
            slider.set(0, 0)
            return
        position = self.index if 0 <= self.index < len(self.probes) else len(self.probes) - 1
        slider.set(position, len(self.probes) - 1)
        label.update(f"eval {position + 1}/{len(self.probes)} · epoch {probe.epoch} · step {probe.step}")
        layers = self._layers(probe)
        if layers is None:
            self.query_one("#inside-sample", Static).update("loading probe…")
            return
        names = list(layers)
        select = self.query_one("#inside-layer", Select)
        if self.layer_name not in names:
            self.layer_name = names[0] if names else None
        if not select.is_mounted:
            # A value set before the Select's own mount is kept but not shown (its mount sets the same value
            # again, which changes nothing, so the prompt stays): set it once the Select is in.
            self.call_after_refresh(self.redraw)
        else:
            if self._select_names != names:
                self._select_names = names
                select.set_options([(n, n) for n in names])
            if self.layer_name is not None and select.value != self.layer_name:
                select.value = self.layer_name
        layer = layers.get(self.layer_name) if self.layer_name else None
        if layer is None:
            return
        count = np.asarray(layer["membrane"]).shape[2]
        samples = np.asarray(layer["membrane"]).shape[1]
        self.sample %= max(samples, 1)
        self.group %= max(1, -(-count // GROUP))
        neurons = list(range(self.group * GROUP, min(count, (self.group + 1) * GROUP)))
        self.query_one(TraceView).show_layer(layer, self.sample, neurons)
        raster = np.asarray(layer.get("raster", layer["spikes"]))[:, self.sample, :]
        indices = layer.get("raster_neurons", None if "raster" in layer else layer.get("neurons"))
        self.query_one(RasterView).show(
            raster, self.layer_name or "", neurons=indices, previous=self._previous_raster()
        )
        self.query_one("#inside-sample", Static).update(self._sample_text(probe, layers, count))

    def _previous_raster(self) -> np.ndarray | None:
        """The shown layer's raster on the shown sample at the evaluation before the shown one (if loaded)."""
        position = self.index if 0 <= self.index < len(self.probes) else len(self.probes) - 1
        if position < 1:
            return None
        layers = self._layers(self.probes[position - 1])
        layer = layers.get(self.layer_name) if layers and self.layer_name else None
        if layer is None:
            return None
        return np.asarray(layer.get("raster", layer["spikes"]))[:, self.sample, :]

    def _sample_text(self, probe: ProbeRecorded, layers: dict[str, Any], count: int) -> str:
        """``sample 1/4 #0 label 7 → 5 ✗ · neurons 5-8/16``: which input, what the network said, who is drawn."""
        index = probe.samples[self.sample] if self.sample < len(probe.samples) else "?"
        label = probe.labels[self.sample] if self.sample < len(probe.labels) else None
        text = f"sample {self.sample + 1}/{len(probe.samples)} #{index} label {label}"
        output = layers.get(probe.layer_names[-1] if probe.layer_names else list(layers)[-1])
        if output is not None and label is not None:
            # The output layer's spike counts decide the class (rate decoding), as in evaluation.
            counts = np.asarray(output.get("raster", output["spikes"]))[:, self.sample, :].sum(axis=0)
            predicted = int(counts.argmax()) if counts.max() > 0 else None
            mark = f"[{palette.GOOD}]✓[/]" if predicted == label else f"[{palette.BAD}]✗[/]"
            text += f" → {predicted if predicted is not None else '-'} {mark}"
        first = self.group * GROUP
        return text + f" · neurons {first + 1}-{min(count, first + GROUP)}/{count}"

    # -- user input

    def action_eval(self, delta: int) -> None:
        if self.probes:
            current = self.index if 0 <= self.index < len(self.probes) else len(self.probes) - 1
            target = min(max(current + delta, 0), len(self.probes) - 1)
            # Back at the newest: follow new probes again as they arrive.
            self.index = -1 if target == len(self.probes) - 1 else target
            self.redraw()

    def action_play(self) -> None:
        """Play the evaluations from the shown one to the newest (again: stop)."""
        if self._player is not None:
            self._stop_playing()
            return
        if len(self.probes) < 2:
            self.notify("one evaluation so far: nothing to play", markup=False)
            return
        if not 0 <= self.index < len(self.probes) - 1:
            self.index = 0  # at the newest: play from the first
            self.redraw()
        self._player = self.set_interval(PLAY_SECONDS, self._play_step, name="play evaluations")
        self.query_one("#inside-eval", Static).add_class("-playing")

    def _play_step(self) -> None:
        if not 0 <= self.index < len(self.probes) - 1:
            self._stop_playing()
            return
        self.action_eval(1)

    def _stop_playing(self) -> None:
        if self._player is not None:
            self._player.stop()
            self._player = None
        self.query_one("#inside-eval", Static).remove_class("-playing")

    def action_sample(self, delta: int) -> None:
        self.sample += delta
        self.redraw()

    def action_neurons(self, delta: int) -> None:
        self.group += delta
        self.redraw()

    def action_layer(self) -> None:
        probe = self._current()
        layers = self._layers(probe) if probe else None
        if layers:
            names = list(layers)
            self.layer_name = (
                names[(names.index(self.layer_name) + 1) % len(names)] if self.layer_name in names else names[0]
            )
            self.redraw()

    @on(Select.Changed, "#inside-layer")
    def _layer_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.NULL and event.value != self.layer_name:
            self.layer_name = str(event.value)
            self.redraw()

    @on(Slider.Changed)
    def _slid(self, event: Slider.Changed) -> None:
        event.stop()
        self.index = -1 if event.value == len(self.probes) - 1 else event.value
        self.redraw()

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        actions = {
            "eval-prev": lambda: self.action_eval(-1),
            "eval-next": lambda: self.action_eval(1),
            "sample-prev": lambda: self.action_sample(-1),
            "sample-next": lambda: self.action_sample(1),
            "neurons-next": lambda: self.action_neurons(1),
        }
        if event.button.id in actions:
            event.stop()
            actions[event.button.id]()
