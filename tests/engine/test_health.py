"""Network health: silent and saturated shares, surrogate and weight gradients, SynOps, and the warnings.

The counts are checked against hand counts on tiny networks whose spikes are known; the warnings on
networks built to be silent, saturated or without a gradient, and on one that is healthy."""

from __future__ import annotations

import copy
import json
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from snnlab.config import config_from_dict
from snnlab.engine.events import EpochMetrics, HealthReport, LayerHealth, StepMetrics, event_from_json
from snnlab.engine.health import HealthMonitor, fan_out, surrogate_grad, warnings_for
from snnlab.engine.models import build_model
from snnlab.engine.neurons import NEURONS
from snnlab.engine.trainer import train
from tests.conftest import TINY

LIMITS = SimpleNamespace(silent=0.9, saturated=0.5, vanishing_grad=1e-7, vanishing_ratio=1e-3, sample_every=10)


def _reports(overrides: dict | None = None, hidden_neuron: dict | None = None, epochs: int = 1) -> list[HealthReport]:
    data = copy.deepcopy(TINY)
    data["train"]["epochs"] = epochs
    data["run"]["probes"]["enabled"] = False
    for key, value in (overrides or {}).items():
        *path, name = key.split(".")
        section = data
        for part in path:
            section = section.setdefault(part, {})
        section[name] = value
    if hidden_neuron is not None:
        data["model"]["layers"][1].update(hidden_neuron)
    events: list = []
    result = train(config_from_dict(data), [events.append])
    assert result.status == "completed", result.error
    return [e for e in events if isinstance(e, HealthReport)]


# ----------------------------------------------------------------------------------- hand counts


def _known_net() -> tuple[nn.Module, torch.Tensor]:
    """4 inputs -> fc1 (4 neurons) -> fc2 (2 neurons). fc1's neurons copy inputs 0 and 1, never fire (2) and
    fire at every step (3): beta 0 and a zero reset make each step's membrane that step's current."""
    layers = [
        {"type": "linear", "out_features": 4, "neuron": {"type": "leaky", "beta": 0.0, "reset": "zero"}},
        {"type": "linear", "out_features": 2, "neuron": {"type": "leaky", "beta": 0.0, "reset": "zero"}},
    ]
    net = build_model(layers, (4,))
    with torch.no_grad():
        fc1 = net.blocks[0].op
        fc1.weight.copy_(torch.diag(torch.tensor([10.0, 10.0, 0.0, 10.0])))
        fc1.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 10.0]))
    x = torch.zeros(3, 2, 4)  # [T, B, N]
    x[0, 0] = torch.tensor([1.0, 0, 0, 1])
    x[1, 0] = torch.tensor([1.0, 1, 0, 0])
    x[0, 1] = torch.tensor([0.0, 0, 1, 0])
    x[1, 1] = torch.tensor([1.0, 1, 1, 1])
    x[2, 1] = torch.tensor([0.0, 1, 0, 0])
    return net, x


def _evaluate(net: nn.Module, x: torch.Tensor) -> HealthReport:
    monitor = HealthMonitor(net, LIMITS)
    with torch.no_grad(), monitor.evaluation() as health:
        health.begin(x)
        out = net(x, record=True)
    rates = {name: float(spk.mean()) for name, (spk, _) in out.layers.items()}
    return monitor.report(1, 1, rates)


def test_synops_and_shares_match_a_hand_count_on_known_spikes():
    net, x = _known_net()
    report = _evaluate(net, x)
    fc1, fc2 = report.by_layer["fc1"], report.by_layer["fc2"]
    # Nonzero inputs: sample 0 has 2 + 2 + 0, sample 1 has 1 + 4 + 1 = 10 in all, each reaching fc1's 4
    # neurons: 40 operations over 2 samples.
    assert fc1.synops == 20.0
    # fc1's spikes: neuron 0 (3), neuron 1 (3), neuron 2 (0), neuron 3 (3 steps x 2 samples = 6): 12 spikes,
    # each reaching fc2's 2 neurons: 24 operations over 2 samples.
    assert fc2.synops == 12.0
    assert report.synops == 32.0
    assert (fc1.silent, fc1.saturated) == (0.25, 0.25)
    assert fc1.rate == 12 / (3 * 2 * 4)
    assert fc1.weight_grad_norm is None  # no training step was sampled


def test_a_direct_input_counts_its_nonzero_values_at_every_step():
    net, _ = _known_net()
    image = torch.tensor([[0.5, 0.0, 0.2, 0.0], [0.0, 0.0, 0.0, 0.3]])  # 3 nonzero values in 2 samples
    static = image.expand(5, 2, 4)  # what the direct encoder hands the network: the same view at every step
    report = _evaluate(net, static)
    assert report.by_layer["fc1"].synops == 3 * 5 * 4 / 2


def test_fan_out_of_a_convolution_is_counted_per_input_position():
    edges = torch.tensor([1.0, 2, 2, 1])  # 4 inputs, kernel 3, stride 1: the window covers the middle twice
    conv = nn.Conv2d(1, 2, 3)
    assert torch.equal(fan_out(conv, (1, 4, 4)), 2 * torch.outer(edges, edges)[None])
    strided = nn.Conv2d(3, 5, 3, stride=2, padding=1)  # outputs at padded 0-2 and 2-4: input 1 is in both
    edges = torch.tensor([1.0, 2, 1, 1])
    assert torch.equal(fan_out(strided, (3, 4, 4)), 5 * torch.outer(edges, edges).expand(3, 4, 4))
    assert torch.equal(fan_out(nn.Linear(7, 3), (7,)), torch.full((7,), 3.0))


def test_synops_of_a_conv_net_match_its_convolutions_of_the_nonzero_inputs():
    """Each layer's SynOps against the (output, input) pairs its convolution sums over a nonzero input:
    the convolution of the inputs' nonzero pattern with an all-ones kernel, summed."""
    layers = [
        {"type": "conv2d", "out_channels": 2, "kernel_size": 3, "neuron": {"type": "leaky", "threshold": 0.3}},
        {"type": "conv2d", "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1,
         "neuron": {"type": "leaky", "threshold": 0.1}},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "out_features": 4, "neuron": {"type": "leaky"}},
    ]  # fmt: skip
    torch.manual_seed(0)  # the layers' initial weights: every layer receives some spikes
    net = build_model(layers, (1, 10, 10))
    x = (torch.rand(4, 3, 1, 10, 10, generator=torch.Generator().manual_seed(3)) < 0.4).float()
    seen: dict[str, list[torch.Tensor]] = {}
    for block in net.blocks:
        block.op.register_forward_pre_hook(lambda m, args, name=block.name: seen.setdefault(name, []).append(args[0]))
    report = _evaluate(net, x)
    for block in net.blocks:
        if isinstance(block.op, nn.Conv2d):
            op, (inputs,) = block.op, seen[block.name]
            kernel = torch.ones_like(op.weight)
            pairs = nn.functional.conv2d((inputs != 0).float(), kernel, None, op.stride, op.padding).sum()
            assert report.by_layer[block.name].synops == pytest.approx(float(pairs) / 3, rel=1e-6)
    (inputs,) = seen["fc1"]
    assert 0 < report.by_layer["fc1"].synops == float((inputs != 0).sum()) * 4 / 3
    assert report.by_layer["conv2"].synops > 0 and "maxpool1" not in report.by_layer  # no synapses, no spikes


def test_a_recurrent_layer_adds_its_spikes_times_the_fan_out_of_its_recurrence():
    layers = [{"type": "linear", "out_features": 6, "neuron": {"type": "rleaky", "beta": 0.5}},
              {"type": "linear", "out_features": 2, "neuron": {"type": "leaky"}}]  # fmt: skip
    torch.manual_seed(0)
    net = build_model(layers, (4,))
    x = (torch.rand(5, 3, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float() * 3
    report = _evaluate(net, x)
    with torch.no_grad():
        spikes = net(x, record=True).layers["fc1"][0]
    feed_forward = float((x != 0).sum()) * 6 / 3
    recurrent = float((spikes[:-1] != 0).sum()) * 6 / 3  # the last step's spikes feed no later step
    assert recurrent > 0
    assert report.by_layer["fc1"].synops == pytest.approx(feed_forward + recurrent, rel=1e-6)


def test_the_surrogate_gradient_is_read_where_the_spike_function_was_evaluated():
    leaky = NEURONS["leaky"](beta=0.0, reset="none", surrogate="atan")  # alpha 2: grad(x) = 1 / (1 + (pi x)^2)
    current = torch.cat([torch.ones(2, 1, 3), torch.zeros(2, 1, 3)])  # membrane 1 (x = 0), then 0 (x = -1)
    spikes, membrane = leaky(current)
    expected = (1.0 + 1 / (1 + math.pi**2)) / 2
    assert float(surrogate_grad(leaky, spikes, membrane)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "kind, options, fires_at_zero",
    [("leaky", {}, False), ("synaptic", {"alpha": 0.8}, False), ("alpha", {"alpha": 0.8, "beta": 0.7}, False),
     ("lapicque", {"beta": 0.9}, False), ("brainpy_lif", {}, True)],
)  # fmt: skip
def test_each_neuron_says_where_its_spike_function_was_evaluated(kind, options, fires_at_zero):
    neuron = NEURONS[kind](**options)
    gain = 15.0 if kind == "lapicque" else 1.5  # Lapicque scales its input by dt/C = ln(1/beta)
    current = torch.rand(30, 4, 8, generator=torch.Generator().manual_seed(2)) * gain
    outputs = neuron(current)
    spikes, membrane = outputs[0], outputs[-1]
    x, known = neuron.surrogate_input(spikes, membrane)
    known = torch.ones_like(spikes, dtype=torch.bool) if known is None else known
    assert spikes.any() and known.any()
    assert torch.equal(((x >= 0) if fires_at_zero else (x > 0))[known].float(), spikes[known])


def test_a_neuron_whose_record_does_not_tell_gives_no_surrogate_gradient():
    delayed = NEURONS["leaky"](reset_delay=False)  # its record is the membrane after a reset in the same step
    spikes, membrane = delayed(torch.rand(6, 2, 3) * 3)
    assert delayed.surrogate_input(spikes, membrane) is None and surrogate_grad(delayed, spikes, membrane) is None
    readout = NEURONS["expon"]()  # never fires
    assert surrogate_grad(readout, *readout(torch.rand(6, 2, 3))) is None


@pytest.mark.parametrize("v_reset", [None, 0.0])
def test_spikingjellys_input_to_the_spike_function_is_recovered_from_the_membrane_after_the_reset(v_reset):
    lif = NEURONS["lif"](tau=2.0, v_threshold=1.0, v_reset=v_reset)
    current = torch.rand(20, 4, 8, generator=torch.Generator().manual_seed(1)) * 3
    spikes, v = lif(current)
    x, known = lif.surrogate_input(spikes, v)
    assert spikes.any() and (~spikes.bool()).any()
    # The soft reset tells every step; the hard reset hides h where it fired.
    known = torch.ones_like(spikes, dtype=torch.bool) if v_reset is None else known
    assert v_reset is None or torch.equal(~known, spikes.bool())
    assert torch.equal((x[known] >= 0).float(), spikes[known])  # fires exactly where h - v_threshold >= 0


# ----------------------------------------------------------------------------------- whole runs


def test_a_healthy_network_reports_every_layer_and_no_warning():
    (report,) = _reports()
    assert list(report.by_layer) == ["fc1", "fc2"] and report.warnings == []
    for layer in report.by_layer.values():
        assert 0 < layer.rate < 1 and layer.silent < 0.9 and layer.saturated < 0.5
        assert layer.surrogate_grad > 1e-3 and layer.weight_grad_norm > 1e-3
    assert report.synops == sum(layer.synops for layer in report.by_layer.values())


def test_a_network_with_a_huge_threshold_is_reported_silent_with_its_gradient_gone():
    (report,) = _reports({"model.neuron": {"type": "leaky", "beta": 0.9, "threshold": 1000.0}})
    fc1, fc2 = report.by_layer["fc1"], report.by_layer["fc2"]
    assert fc1.silent == fc2.silent == 1.0 and fc1.rate == 0.0 and fc2.synops == 0.0
    messages = {(w.layer, w.problem): w.message for w in report.warnings}
    assert messages[("fc1", "silent")] == "fc1: 100% silent: lower the threshold or raise the init scale"
    assert messages[("fc2", "silent")] == "fc2: 100% silent: fc1 before it is silent too: fix that first"
    # fc2's weights see fc1's (silent) spikes and the loss directly; fc1's gradient goes through fc1's flat
    # surrogate, 1000 below its threshold.
    assert fc1.surrogate_grad < 1e-6 and fc1.weight_grad_norm < 1e-3 * fc2.weight_grad_norm
    assert messages[("fc1", "vanishing_gradient")].endswith("fc1 is silent: fix that first")


def test_a_network_driven_far_above_threshold_is_reported_saturated():
    (report,) = _reports(hidden_neuron={"bias_init": "constant", "bias_init_params": {"value": 50.0}})
    fc1 = report.by_layer["fc1"]
    assert fc1.saturated == 1.0 and fc1.rate == 1.0 and fc1.silent == 0.0
    messages = {(w.layer, w.problem): w.message for w in report.warnings}
    assert messages[("fc1", "saturated")] == "fc1: 100% saturated: raise the threshold or lower the init scale"
    assert messages[("fc1", "vanishing_gradient")].endswith("fc1 is saturated: fix that first")


def test_a_layer_whose_spikes_pass_no_gradient_has_a_vanishing_weight_gradient():
    (report,) = _reports(hidden_neuron={"neuron": {"type": "leaky", "beta": 0.9, "surrogate_disable": True}})
    fc1 = report.by_layer["fc1"]
    assert fc1.weight_grad_norm == 0.0 and fc1.surrogate_grad == 0.0
    (warning,) = report.warnings
    assert warning.layer == "fc1" and warning.problem == "vanishing_gradient"
    assert warning.message == (
        "fc1: weight gradient vanishing (0e+00): surrogate gradient 0e+00 in fc1: widen the surrogate or raise train.lr"
    )


def test_a_segmented_backward_pass_still_reports_every_layer():
    # Training keeps only the output layer's record then: fc1's surrogate gradient comes from the evaluation.
    (report,) = _reports({"train.bptt_segment": 2})
    assert all(layer.surrogate_grad > 1e-3 and layer.weight_grad_norm > 1e-3 for layer in report.by_layer.values())


def test_health_changes_nothing_in_training_and_can_be_turned_off(tmp_path):
    data = copy.deepcopy(TINY)
    on, off = [], []
    train(config_from_dict(data), [on.append], run_dir=tmp_path / "on")
    data["run"]["health"] = {"enabled": False}
    train(config_from_dict(data), [off.append], run_dir=tmp_path / "off")
    assert [e.loss for e in on if isinstance(e, StepMetrics)] == [e.loss for e in off if isinstance(e, StepMetrics)]
    assert not any(isinstance(e, HealthReport) for e in off)
    kinds = [type(e).__name__ for e in on if isinstance(e, EpochMetrics | HealthReport)]
    assert kinds == ["EpochMetrics", "HealthReport"] * 2  # one report after each evaluation


def test_sampled_steps_follow_sample_every_and_every_epochs_last(monkeypatch):
    sampled = []
    monkeypatch.setattr(HealthMonitor, "sample", lambda self, out: sampled.append(1))
    monitor_wants = HealthMonitor.wants
    steps = []
    monkeypatch.setattr(
        HealthMonitor, "wants", lambda self, step, last: steps.append(step) or monitor_wants(self, step, last)
    )
    _reports({"run.health": {"sample_every": 3}}, epochs=2)
    assert steps == list(range(1, 9)) and len(sampled) == 4  # steps 3, 4 (end of epoch 1), 6, 8


# ----------------------------------------------------------------------------------- warnings alone


def _layer(**numbers) -> LayerHealth:
    base = dict(silent=0.1, saturated=0.0, rate=0.2, surrogate_grad=0.3, weight_grad_norm=1.0, synops=10.0)
    return LayerHealth(**{**base, **numbers})


def test_thresholds_are_inclusive_and_readouts_that_never_fire_are_not_silent():
    layers = {"fc1": _layer(silent=0.9), "fc2": _layer(saturated=0.49), "fc3": _layer(silent=None, saturated=None)}
    assert [(w.layer, w.problem) for w in warnings_for(layers, LIMITS)] == [("fc1", "silent")]


def test_a_gradient_small_against_the_largest_vanishes_and_the_blame_goes_downstream():
    layers = {"fc1": _layer(weight_grad_norm=5e-4), "fc2": _layer(saturated=0.8), "fc3": _layer()}
    problems = [(w.layer, w.problem) for w in warnings_for(layers, LIMITS)]
    assert problems == [("fc1", "vanishing_gradient"), ("fc2", "saturated")]
    message = warnings_for(layers, LIMITS)[0].message
    assert message == "fc1: weight gradient vanishing (5e-04): fc2 is saturated: fix that first"
    layers["fc1"] = _layer(weight_grad_norm=2e-3)  # above 1e-3 of the largest (1.0)
    assert [w.problem for w in warnings_for(layers, LIMITS)] == ["saturated"]


# ----------------------------------------------------------------------------------- the event


def test_a_health_report_survives_the_events_file():
    report = HealthReport(epoch=2, step=40, synops=12.5, time=1.0, by_layer={
        "fc1": _layer(weight_grad_norm=math.nan),
        "pool": LayerHealth(None, None, None, None, None, 12.5),
    }, warnings=warnings_for({"fc1": _layer(silent=1.0)}, LIMITS))  # fmt: skip
    back = event_from_json(json.dumps(report.to_dict()))
    assert isinstance(back, HealthReport) and back.by_layer["pool"] == report.by_layer["pool"]
    assert math.isnan(back.by_layer["fc1"].weight_grad_norm) and back.warnings == report.warnings


def test_a_delayed_layer_counts_each_nonzero_input_once_per_synapse():
    # A delayed synapse delivers its input once, later: nonzero inputs times out_features, as a linear layer.
    delayed = {"type": "delayed_linear", "max_delay": 3}
    layers = [{**delayed, "out_features": 5, "neuron": {"type": "leaky", "threshold": 0.2}},
              {**delayed, "out_features": 2, "neuron": {"type": "leaky"}}]  # fmt: skip
    torch.manual_seed(0)
    net = build_model(layers, (6,))
    x = (torch.rand(7, 3, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    seen: dict[str, list[torch.Tensor]] = {}
    for block in net.blocks:
        block.op.register_forward_pre_hook(lambda m, args, name=block.name: seen.setdefault(name, []).append(args[0]))
    report = _evaluate(net, x)
    (first,), (second,) = seen["delayed_linear1"], seen["delayed_linear2"]
    assert report.by_layer["delayed_linear1"].synops == float((first != 0).sum()) * 5 / 3
    assert 0 < report.by_layer["delayed_linear2"].synops == float((second != 0).sum()) * 2 / 3
