"""The Network pane's form when a neuron's type changes: settings whose default depends on the type follow it."""

from __future__ import annotations

import copy

import pytest
from textual.widgets import Checkbox, Input, Select

from snnlab.tui.app import make_app
from snnlab.tui.widgets.fields import Field
from tests.conftest import TINY
from tests.tui.conftest import wait_for


def field(app, path: str) -> Field:
    return next(f for f in app.main.query(Field) if f.path == path)


@pytest.mark.asyncio
async def test_switching_the_neuron_type_to_alpha_brings_its_defaults_and_a_valid_config():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(120, 40)) as pilot:
        form = app.main.query_one("#form")
        assert form.data["model"]["neuron"]["beta"] == 0.9
        field(app, "model.neuron.type").query_one(Select).value = "alpha"
        # valid: alpha 0.9 > beta 0.8 (the config's beta 0.9 would be refused)
        await wait_for(pilot, lambda: app.config is not None and app.config.model.neuron.type == "alpha", 30)
        neuron = form.data["model"]["neuron"]
        assert (neuron["type"], neuron["reset"], neuron["beta"], neuron["alpha"]) == ("alpha", "zero", 0.8, 0.9)
        assert (app.config.model.neuron.reset, app.config.model.neuron.beta) == ("zero", 0.8)
        await wait_for(pilot, lambda: field(app, "model.neuron.beta").query_one(Input).value == "0.8", 30)
        # A beta the user chose stays when the type changes again; the reset goes back to leaky's.
        form.data["model"]["neuron"]["beta"] = 0.7
        field(app, "model.neuron.type").query_one(Select).value = "leaky"
        await wait_for(pilot, lambda: app.config is not None and app.config.model.neuron.type == "leaky", 30)
        neuron = form.data["model"]["neuron"]
        assert (neuron["type"], neuron["reset"], neuron["beta"]) == ("leaky", "subtract", 0.7)
        assert (app.config.model.neuron.reset, app.config.model.neuron.beta) == ("subtract", 0.7)


async def _add_layer(app, pilot, after: int, kind: str) -> list[str]:
    """Press the layer editor's button for ``kind`` with layer ``after`` highlighted; the form's layer types once
    the new layer is in."""
    layers = app.main.query_one("#form").data["model"]["layers"]
    count = len(layers)
    app.main.query_one("#layer-list").highlighted = after
    await pilot.pause()
    app.main.query_one(f"#add-{kind}").press()
    await wait_for(pilot, lambda: len(layers) == count + 1, 30, "the layer to be added")
    return [layer["type"] for layer in layers]


@pytest.mark.asyncio
async def test_a_batchnorm_tt_layer_can_be_added_and_shows_its_settings():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(120, 40)) as pilot:
        kinds = await _add_layer(app, pilot, after=1, kind="batchnorm_tt")
        assert kinds == ["flatten", "linear", "batchnorm_tt", "linear"]
        await wait_for(pilot, lambda: any(f.path == "model.layers.2.momentum" for f in app.main.query(Field)), 30)
        assert {f.path for f in app.main.query(Field)} >= {f"model.layers.2.{k}" for k in ("eps", "momentum", "affine")}
        await wait_for(pilot, lambda: app.config is not None and len(app.config.model.layers) == 4, 30)
        assert app.config.layer_specs()[2]["time_steps"] == TINY["data"]["time_steps"]


@pytest.mark.asyncio
async def test_a_delayed_linear_layer_can_be_added_and_the_config_takes_it():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(120, 40)) as pilot:
        kinds = await _add_layer(app, pilot, after=0, kind="delayed_linear")  # after the flatten
        assert kinds == ["flatten", "delayed_linear", "linear", "linear"]
        await wait_for(pilot, lambda: any(f.path == "model.layers.1.max_delay" for f in app.main.query(Field)), 30)
        assert {f.path for f in app.main.query(Field)} >= {f"model.layers.1.{k}" for k in ("out_features", "sigma_end")}
        await wait_for(pilot, lambda: app.config is not None and len(app.config.model.layers) == 4, 30)
        assert app.config.model.layers[1].type == "delayed_linear" and app.config.model.layers[1].max_delay == 25


@pytest.mark.asyncio
async def test_the_neurons_nested_settings_are_labelled_with_their_parent_and_editable():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(120, 40)) as pilot:
        bits = field(app, "model.neuron.state_quant.num_bits")
        assert str(bits.label) == "state_quant.num_bits"
        # state_quant.threshold is not the neuron's threshold: both have their own editor
        assert field(app, "model.neuron.state_quant.threshold").path != field(app, "model.neuron.threshold").path
        bits.query_one(Input).value = "4"
        await wait_for(pilot, lambda: app.config is not None and app.config.model.neuron.state_quant.num_bits == 4, 30)
        assert app.main.query_one("#form").data["model"]["neuron"]["state_quant"]["num_bits"] == 4
        assert app.config.model.neuron.kwargs()["state_quant"]["num_bits"] == 4


@pytest.mark.asyncio
async def test_the_form_shows_the_settings_the_neuron_type_reads():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(120, 40)) as pilot:

        def shown(name: str) -> bool:
            return field(app, f"model.neuron.{name}").display

        assert shown("beta") and shown("reset") and shown("state_quant.num_bits")
        assert not shown("tau") and not shown("v_reset") and not shown("R")
        field(app, "model.neuron.type").query_one(Select).value = "lif"
        await wait_for(pilot, lambda: app.config is not None and app.config.model.neuron.type == "lif", 30)
        await wait_for(pilot, lambda: shown("tau"), 30)
        assert shown("v_reset") and shown("detach_reset") and shown("threshold") and shown("surrogate")
        assert not shown("beta") and not shown("reset") and not shown("state_quant.num_bits")
        field(app, "model.neuron.type").query_one(Select).value = "lapicque"
        await wait_for(pilot, lambda: app.config is not None and app.config.model.neuron.type == "lapicque", 30)
        await wait_for(pilot, lambda: shown("R"), 30)
        assert shown("C") and shown("time_step") and not shown("tau") and not shown("learn_beta")


@pytest.mark.asyncio
async def test_a_linear_layers_initialisers_are_chosen_by_name_in_the_layer_editor():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.query_one("#layer-list").highlighted = 1
        await wait_for(pilot, lambda: any(f.path == "model.layers.1.init" for f in app.main.query(Field)), 30)
        init = field(app, "model.layers.1.init").query_one(Select)
        assert [str(label) for label, _ in init._options][:3] == ["default", "zeros", "constant"]
        assert {"model.layers.1.init_params", "model.layers.1.bias_init"} <= {f.path for f in app.main.query(Field)}
        init.value = "brainpy_kaiming_normal"
        await wait_for(pilot, lambda: app.config is not None and app.config.model.layers[1].init != "default", 30)
        assert app.config.layer_specs()[1]["init"] == "brainpy_kaiming_normal"


@pytest.mark.asyncio
async def test_every_layer_button_fits_an_80_column_terminal():
    from textual.widgets import Button

    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1", "z")
        await pilot.pause()
        buttons = list(app.main.query_one("#layer-buttons").query(Button))
        assert len(buttons) == 9 and {b.id for b in buttons} >= {"add-delayed_linear", "remove-layer", "layer-down"}
        assert all(0 < b.region.width and b.region.right <= 79 for b in buttons), [(b.id, b.region) for b in buttons]


@pytest.mark.asyncio
async def test_a_layers_own_neuron_shows_the_settings_its_type_reads():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(120, 40)) as pilot:
        form = app.main.query_one("#form")

        def paths() -> set[str]:
            return {f.path for f in app.main.query(Field) if f.path.startswith("model.layers.2.neuron.")}

        app.main.query_one("#layer-list").highlighted = 2
        await pilot.pause()
        field(app, "mode:model.layers.2.neuron").query_one(Select).value = "custom"

        def mounted(path: str) -> bool:  # the field and its editor: a field composes its editor a moment later
            return path in paths() and bool(field(app, path).query("Select, Input"))

        await wait_for(pilot, lambda: mounted("model.layers.2.neuron.type"), 30, "the custom neuron's fields")
        assert {"model.layers.2.neuron.beta", "model.layers.2.neuron.reset"} <= paths()
        assert "model.layers.2.neuron.tau" not in paths()
        await pilot.pause()
        field(app, "model.layers.2.neuron.type").query_one(Select).value = "lif"
        gone = {"model.layers.2.neuron.beta", "model.layers.2.neuron.reset"}  # leaky's, not lif's
        await wait_for(pilot, lambda: mounted("model.layers.2.neuron.tau") and not gone & paths(), 30, "lif's")
        lif = ("v_reset", "detach_reset", "decay_input", "threshold")
        assert {f"model.layers.2.neuron.{k}" for k in lif} <= paths()
        await pilot.pause()
        field(app, "model.layers.2.neuron.tau").query_one(Input).value = "3.5"
        await wait_for(pilot, lambda: app.config is not None and app.config.model.layers[2].neuron.tau == 3.5, 30)
        assert form.data["model"]["layers"][2]["neuron"]["type"] == "lif"


@pytest.mark.asyncio
async def test_the_bptt_segment_field_takes_auto_a_number_or_nothing_and_flags_zero():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(120, 40)) as pilot:
        segment = field(app, "train.bptt_segment")
        assert str(segment.label) == "bptt_segment" and "recompute" in segment.description
        editor = segment.query_one(Input)  # a free entry (auto, a number, or empty for null), not a choice
        assert editor.value == ""
        editor.value = "auto"
        await wait_for(pilot, lambda: app.config is not None and app.config.train.bptt_segment == "auto", 30)
        editor.value = "3"
        await wait_for(pilot, lambda: app.config is not None and app.config.train.bptt_segment == 3, 30)
        editor.value = "0"
        await wait_for(pilot, lambda: segment.error is not None, 30)
        assert "must be a number of time steps >= 1, auto or null" in segment.error


@pytest.mark.asyncio
async def test_a_layer_stack_that_cannot_be_built_is_flagged_under_the_layer_list_and_not_started():
    # The form runs the config's shape check, the one `snnlab run` runs before building anything.
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(80, 24)) as pilot:
        form, editor = app.main.query_one("#form"), app.main.query_one("#layers")
        app.main.query_one("#layer-list").highlighted = 2  # linear 10
        await pilot.pause()
        editor.query_one("#add-conv2d").press()
        await wait_for(pilot, lambda: app.config is None, 30, "the config to be refused")
        problem = "input has shape [10]; conv2d needs [C, H, W]"
        assert form.error == f"model.layers.3: {problem}"
        status = str(form.query_one("#form-status").render())
        assert status.startswith("✗") and "valid config" not in status and "under the layer list" in status
        error = editor.query_one("#layer-error")
        assert error.display and str(error.render()) == f"✗ layer 3: {problem}"
        prompts = [str(option.prompt) for option in editor.query_one("#layer-list").options]
        assert prompts[3].startswith("✗ 3  conv2d") and prompts[2].startswith("  2  linear 10")
        assert not any(f.has_class("-invalid") for f in app.main.query(Field))  # no field is to blame
        app.main.query_one("#pane-network").focus()
        await pilot.press("s")
        await pilot.pause()
        assert app.job is None and app.screen.query_one("#dialog-title")  # the reason, not a run
        await pilot.press("escape")
        # Removing the conv makes it valid again, and the list and the line under it say so.
        editor.query_one("#remove-layer").press()
        await wait_for(pilot, lambda: app.config is not None, 30, "the config to be valid again")
        assert not error.display and editor.error is None
        assert [str(o.prompt) for o in editor.query_one("#layer-list").options][2].startswith("2  linear 10")
        assert "valid config — s or F5 starts training" in str(form.query_one("#form-status").render())


@pytest.mark.asyncio
async def test_the_compact_spikes_field_is_a_checkbox_that_sets_the_config():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(120, 40)) as pilot:
        compact = field(app, "train.compact_spikes")
        assert str(compact.label) == "compact_spikes" and "one byte" in compact.description
        box = compact.query_one(Checkbox)
        assert box.value is False
        box.value = True
        await wait_for(pilot, lambda: app.config is not None and app.config.train.compact_spikes is True, 30)
