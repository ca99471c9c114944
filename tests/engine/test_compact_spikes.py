"""Hidden layers' records only when asked, and hidden spikes saved for the backward pass in one byte: the same
outputs and gradients bit for bit, and the float spikes gone once the next layer has run."""

import gc
import weakref

import pytest
import torch

from snnlab import catalog
from snnlab.engine.kernels import native
from snnlab.engine.models import binary_spikes, build_model

FC = [
    {"type": "linear", "out_features": 12, "neuron": {"type": "leaky", "beta": 0.8}},
    {"type": "linear", "out_features": 10, "neuron": {"type": "lif", "tau": 2.0}},
    {"type": "linear", "out_features": 3, "neuron": {"type": "leaky"}},
]
CONV = [
    {"type": "conv2d", "out_channels": 3, "kernel_size": 3, "neuron": {"type": "leaky", "beta": 0.9}},
    {"type": "maxpool", "kernel_size": 2},
    {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "neuron": {"type": "synaptic"}},
    {"type": "flatten"},
    {"type": "linear", "out_features": 3, "neuron": {"type": "leaky"}},
]
GRADED = [
    {"type": "linear", "out_features": 12, "neuron": {"type": "leaky", "graded_spikes_factor": 0.5}},
    {"type": "linear", "out_features": 3, "neuron": {"type": "leaky"}},
]
NETS = {"fc": (FC, (6,)), "conv": (CONV, (1, 10, 10)), "graded": (GRADED, (6,))}


def _net(name: str):
    layers, shape = NETS[name]
    torch.manual_seed(0)
    model = build_model(layers, shape)
    model.compact_spikes = True
    x = torch.rand(9, 4, *shape, generator=torch.Generator().manual_seed(1)) * 3
    return model, x


def _grads(model, x, record):
    model.zero_grad(set_to_none=True)
    out = model(x, record=record)
    (out.membrane.square().mean() + out.spikes.mean()).backward()
    return out, {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("name", NETS)
def test_outputs_and_gradients_are_the_same_bit_for_bit_whatever_is_recorded(name):
    model, x = _net(name)
    whole, expected = _grads(model, x, True)  # every layer kept whole: nothing saved in one byte
    assert sum(float(spk.detach().sum()) for spk, _ in list(whole.layers.values())[:-1]) > 0, "no hidden spike"
    for record in (False, 2):
        out, grads = _grads(model, x, record)
        assert torch.equal(out.spikes, whole.spikes) and torch.equal(out.membrane, whole.membrane)
        assert grads.keys() == expected.keys()
        for key, grad in grads.items():
            assert torch.equal(grad, expected[key]), (record, key)


def test_hidden_layers_are_kept_only_when_asked_and_a_number_keeps_copies_of_the_first_samples():
    model, x = _net("fc")
    with torch.no_grad():
        whole = model(x, record=True)
        assert list(whole.layers) == ["fc1", "fc2", "fc3"]
        assert list(model(x).layers) == ["fc3"]
        assert torch.equal(model(x).layers["fc3"][0], whole.spikes)
        some = model(x, record=2)
    assert list(some.layers) == ["fc1", "fc2", "fc3"] and torch.equal(some.spikes, whole.spikes)
    for name in ("fc1", "fc2"):
        for kept, full in zip(some.layers[name], whole.layers[name], strict=True):
            assert kept.shape == (9, 2, full.shape[2]) and torch.equal(kept, full[:, :2])
            assert kept.untyped_storage().nbytes() == kept.numel() * 4  # a copy, not a view holding all samples


def _spikes_alive_after_forward(name: str, record, compact: bool = True) -> list[bool]:
    """For each hidden layer, whether its float spikes still exist when the forward pass is done."""
    model, x = _net(name)
    model.compact_spikes = compact
    refs = []
    hidden = [b.neuron for b in model.blocks if b.neuron is not None][:-1]
    hooks = [n.register_forward_hook(lambda m, i, out: refs.append(weakref.ref(out[0]))) for n in hidden]
    out = model(x, record=record)
    for hook in hooks:
        hook.remove()
    gc.collect()
    alive = [ref() is not None for ref in refs]
    out.membrane.sum().backward()  # the backward pass still works from the one-byte copies
    return alive


def test_the_float_spikes_of_hidden_layers_go_once_the_next_layer_has_run():
    assert _spikes_alive_after_forward("fc", False) == [False, False]
    assert _spikes_alive_after_forward("conv", 1) == [False, False]  # the max pool and conv2d save bytes too
    assert _spikes_alive_after_forward("fc", True) == [True, True]  # kept whole: nothing to gain
    assert _spikes_alive_after_forward("graded", False) == [True]  # 0.5 is not a byte: saved as it is
    assert _spikes_alive_after_forward("fc", False, compact=False) == [True, True]  # the default: float32
    with torch.no_grad():
        model, x = _net("fc")
        refs = []
        model.blocks[0].neuron.register_forward_hook(lambda m, i, out: refs.append(weakref.ref(out[1])))
        model(x)
        gc.collect()
        assert refs[0]() is None  # without gradients a hidden membrane is not kept either


@pytest.mark.parametrize("kind", catalog.NEURONS)
def test_binary_spikes_is_only_said_of_neurons_whose_spikes_are_0_or_1(kind):
    shape = (2, 6, 6) if kind == "sconv2dlstm" else (6,)
    layer = {"type": "conv2d", "out_channels": 2, "kernel_size": 1} if len(shape) > 1 else {"type": "linear"}
    layer = {**layer, "out_features": 8} if layer["type"] == "linear" else layer
    neuron = {"type": kind, "threshold": 0.05} if kind in ("slstm", "sconv2dlstm") else {"type": kind}  # tanh < 1
    model = build_model([{**layer, "neuron": neuron}], shape)
    neuron = model.blocks[0].neuron
    x = torch.randn(20, 3, *shape, generator=torch.Generator().manual_seed(2)) * 4
    with torch.no_grad():
        spikes = model(x).spikes
    assert binary_spikes(neuron) == (kind not in catalog.SILENT_NEURONS)  # a readout that never fires has none
    if binary_spikes(neuron):
        assert spikes.sum() > 0 and torch.equal(spikes, (spikes != 0).float()), kind


def test_graded_spikes_and_a_users_own_spike_function_are_not_binary():
    graded = build_model(GRADED, (6,)).blocks[0].neuron
    own = build_model([{"type": "linear", "out_features": 3, "neuron": {"type": "leaky"}}], (6,)).blocks[0].neuron
    own.spike_fn = lambda x: torch.sigmoid(x)
    assert not binary_spikes(graded) and not binary_spikes(own)


def test_under_bfloat16_autocast_the_layers_save_the_spikes_in_one_byte_and_the_gradients_do_not_change(monkeypatch):
    from snnlab.engine import models

    packed = []
    real = models._OneByte.__init__

    def counting(self, t):
        packed.append(t.dtype)
        real(self, t)

    monkeypatch.setattr(models._OneByte, "__init__", counting)
    model, x = _net("conv")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        whole, expected = _grads(model, x, True)
        assert packed == []
        out, grads = _grads(model, x, False)
    # The pooled spikes saved by conv2 and conv2's by fc3 (bfloat16); the max pool's C path keeps only the chosen
    # places (one byte each), the torch pool saves conv1's spikes (float32).
    pooled_in_c = native.status() == "native"
    assert packed == [torch.float32] * (not pooled_in_c) + [torch.bfloat16, torch.bfloat16]
    assert torch.equal(out.membrane, whole.membrane)
    for key, grad in grads.items():
        assert torch.equal(grad, expected[key]), key


def test_a_run_with_compact_spikes_trains_and_reports_health_exactly_as_one_without(tmp_path, tiny_config_dict):
    from snnlab.config import config_from_dict
    from snnlab.engine.events import HealthReport, StepMetrics
    from snnlab.engine.trainer import train

    tiny_config_dict["data"]["encoder"] = "rate"
    tiny_config_dict["run"]["health"] = {"sample_every": 1}  # a health sample (first samples' copies) every step
    runs = {}
    for compact in (False, True):
        tiny_config_dict["train"]["compact_spikes"] = compact
        events = []
        train(config_from_dict(tiny_config_dict), [events.append], run_dir=tmp_path / str(compact))
        runs[compact] = events
    for kind in (StepMetrics, HealthReport):
        plain, compact = ([e for e in runs[c] if isinstance(e, kind)] for c in (False, True))
        assert plain and len(plain) == len(compact)
        for a, b in zip(plain, compact, strict=True):
            for timing in ("time", "step_time", "samples_per_s"):  # the only fields that may differ
                if hasattr(a, timing):
                    setattr(a, timing, 0)
                    setattr(b, timing, 0)
            assert a == b
