"""The config: presets, overrides, the neuron merge, round trips, and the one-line error for each mistake."""

import json
import math
import re

import pytest
import yaml

from snnlab import config as cfgmod
from snnlab.config import Config, ConfigError, config_from_dict, dump_yaml, load_config
from snnlab.engine import data, neurons
from snnlab.engine.models import build_model

PRESETS = [
    "brainpy-synthetic", "fashion-csnn", "nmnist", "quickstart", "shd", "shd-delays", "snntorch-tutorial5",
    "spikingjelly-lif-fc",
]  # fmt: skip

BASE = """\
description: a small test config
data:
  dataset: bundled
  time_steps: 4
  encoder: direct
model:
  neuron:
    type: leaky
    beta: 0.9
  layers:
    - type: flatten
    - type: linear
      out_features: 32
      neuron: true
    - type: linear
      out_features: 10
      neuron: true
train:
  epochs: 1
  lr: 2.0e-3
  loss: ce_membrane
run:
  name: test
"""


def input_shape(cfg: Config) -> tuple[int, ...]:
    # Images are [1, 28, 28] per sample; the synthetic set is [T, inputs] and the model sees [T, B, inputs];
    # the event sets have their own (shd: 700 channels, merged data.events.downsample to one; nmnist: 2
    # polarities x 34 x 34).
    if cfg.data.dataset in ("shd", "nmnist"):
        return {"shd": (-(-700 // cfg.data.events.downsample),), "nmnist": (2, 34, 34)}[cfg.data.dataset]
    return (cfg.data.synthetic.inputs,) if cfg.data.dataset == "synthetic" else (1, 28, 28)


def write(tmp_path, text: str, name: str = "x.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- presets -------------------------------------------------------------------------------------------


def test_every_preset_is_listed_with_a_one_line_description():
    rows = dict(cfgmod.list_presets())
    assert sorted(rows) == PRESETS
    assert all(description and "\n" not in description for description in rows.values())


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_builds_and_round_trips(name):
    cfg = load_config(cfgmod.find_preset(name))
    model = build_model(cfg.model.layer_specs(), input_shape(cfg))
    classes = {"synthetic": cfg.data.synthetic.classes, "shd": 20}.get(cfg.data.dataset, 10)
    assert model.output_shape == (classes,)
    assert model.spiking_layers() == cfg.model.spiking_layer_names()
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert config_from_dict(yaml.safe_load(dump_yaml(cfg))) == cfg


def test_snntorch_tutorial5_is_the_tutorial_recipe():
    cfg = load_config(cfgmod.find_preset("snntorch-tutorial5"))
    d, t = cfg.data, cfg.train
    assert (d.dataset, d.batch_size, d.time_steps, d.encoder) == ("mnist", 128, 25, "direct")
    assert d.drop_last is True  # the tutorial's DataLoader(..., drop_last=True)
    assert [s.get("out_features") for s in cfg.model.layer_specs()] == [None, 1000, 10]
    assert cfg.model.neuron.kwargs()["beta"] == 0.95 and cfg.model.neuron.reset == "subtract"
    assert (t.epochs, t.optimizer, t.lr, t.betas) == (1, "adam", 5e-4, (0.9, 0.999))
    assert (t.loss, t.decoder) == ("ce_membrane", "rate_first")  # spk_rec.sum(0).max(1): ties to index 0


def test_spikingjelly_preset_is_a_single_lif_layer_with_poisson_input():
    cfg = load_config(cfgmod.find_preset("spikingjelly-lif-fc"))
    d, t = cfg.data, cfg.train
    specs = cfg.model.layer_specs()
    assert [s["type"] for s in specs] == ["flatten", "linear"] and specs[1]["bias"] is False
    neuron = specs[1]["neuron"]
    sj = {"type": "lif", "tau": 2.0, "decay_input": True, "v_threshold": 1.0, "v_reset": 0.0, "detach_reset": False}
    assert {k: neuron[k] for k in sj} == sj  # SpikingJelly's LIFNode as its example builds it
    assert (d.encoder, d.encoder_params, d.time_steps, d.batch_size) == ("rate", {"gain": 1.0}, 100, 64)
    assert (t.lr, t.loss, t.decoder, d.drop_last) == (1e-3, "mse_count", "rate_first", True)  # out_fr.argmax(1)


def test_brainpy_preset_is_the_tutorials_recipe():
    cfg = load_config(cfgmod.find_preset("brainpy-synthetic"))
    d, t, s = cfg.data, cfg.train, cfg.data.synthetic
    assert (d.dataset, d.encoder, d.batch_size) == ("synthetic", "none", 256)
    assert (s.samples, s.inputs, s.time_steps, s.rate_hz, s.dt_ms, s.classes) == (256, 100, 200, 5.0, 1.0, 2)
    hidden, out = cfg.model.layer_specs()
    assert [hidden["out_features"], out["out_features"]] == [4, 2] and hidden["bias"] and out["bias"]
    # BrainPy's LIF (tau 20 ms) behind an Expon synapse (tau 10 ms), soft reset, ReluGrad's defaults
    lif = hidden["neuron"]
    assert lif["type"] == "brainpy_lif" and lif["reset"] == "subtract" and lif["threshold"] == 1.0
    assert lif["alpha"] == pytest.approx(math.exp(-1 / 10)) and lif["beta"] == pytest.approx(math.exp(-1 / 20))
    assert (lif["surrogate"], lif["surrogate_params"]) == ("relu_grad", {"alpha": 0.3, "width": 1.0})
    assert out["neuron"] == {"type": "expon", "beta": pytest.approx(math.exp(-1 / 10)), "learn_beta": False}
    # braintools' KaimingNormal: variance scale/fan_in, 7*(1 - e^-1) into the hidden layer, sqrt(2) out; zero biases
    assert hidden["init"] == out["init"] == "brainpy_kaiming_normal"
    assert hidden["init_params"]["scale"] == pytest.approx(7 * (1 - math.exp(-1)))
    assert out["init_params"]["scale"] == pytest.approx(math.sqrt(2))
    assert hidden["bias_init"] == out["bias_init"] == "zeros"
    assert (t.epochs, t.optimizer, t.lr, t.betas) == (3000, "adam", 3e-3, (0.9, 0.999))
    assert (t.loss, t.decoder) == ("ce_mean_membrane", "membrane")


# --- defaults and the neuron merge ---------------------------------------------------------------------


def test_defaults_are_a_valid_config_that_builds():
    cfg = Config()
    assert config_from_dict({}) == cfg
    assert [s["type"] for s in cfg.model.layer_specs()] == ["flatten", "linear", "linear"]
    assert build_model(cfg.model.layer_specs(), (1, 28, 28)).output_shape == (10,)


def test_layer_neuron_true_dict_and_absent():
    cfg = config_from_dict(
        {
            "model": {
                "neuron": {"type": "synaptic", "beta": 0.8, "alpha": 0.7, "threshold": 0.5},
                "layers": [
                    {"type": "flatten"},
                    {"type": "linear", "out_features": 20},
                    {"type": "linear", "out_features": 20, "neuron": True},
                    {"type": "linear", "out_features": 10, "neuron": {"beta": 0.3, "surrogate": "sigmoid"}},
                ],
            }
        }
    )
    specs = cfg.model.layer_specs()
    assert "neuron" not in specs[0] and "neuron" not in specs[1]
    assert specs[2]["neuron"] == cfg.model.neuron.kwargs()
    merged = specs[3]["neuron"]
    assert (merged["type"], merged["alpha"], merged["threshold"]) == ("synaptic", 0.7, 0.5)  # from model.neuron
    assert (merged["beta"], merged["surrogate"]) == (0.3, "sigmoid")  # the layer's own
    layers = cfg.to_dict()["model"]["layers"]
    assert layers[2]["neuron"] is True and layers[3]["neuron"] == {"beta": 0.3, "surrogate": "sigmoid"}
    assert cfg.model.spiking_layer_names() == ["fc2", "fc3"]
    assert build_model(specs, (1, 28, 28)).spiking_layers() == ["fc2", "fc3"]


@pytest.mark.parametrize(
    "kind,keys",
    [
        ("leaky", {"reset", "beta", "learn_beta"}),
        ("synaptic", {"reset", "beta", "learn_beta", "alpha", "learn_alpha"}),
        ("rleaky", {"reset", "beta", "learn_beta", "all_to_all", "learn_recurrent", "kernel_size"}),
        (
            "rsynaptic",
            {"reset", "beta", "learn_beta", "alpha", "learn_alpha", "all_to_all", "learn_recurrent", "kernel_size"},
        ),  # fmt: skip
        ("lapicque", {"reset", "R", "C", "time_step"}),
        ("alpha", {"reset", "beta", "learn_beta", "alpha", "learn_alpha"}),
        ("leaky_parallel", {"beta", "learn_beta"}),  # no reset
        ("slstm", {"reset"}),  # no beta: the LSTM's gates decide what decays
        ("sconv2dlstm", {"reset", "kernel_size"}),
        ("brainpy_lif", {"reset", "beta", "learn_beta", "alpha", "learn_alpha"}),
        ("expon", {"beta", "learn_beta"}),  # never fires: no threshold, surrogate nor reset
    ],
)
def test_neuron_kwargs_are_what_each_neuron_takes(kind, keys):
    common = set() if kind == "expon" else {"type", "threshold", "surrogate", "surrogate_params", "learn_threshold"}
    keys = keys | {"type"}
    settings = {"type": kind}  # alpha's own defaults (beta 0.8 < alpha 0.9) apply
    kwargs = cfgmod.NeuronConfig(**settings).kwargs()
    assert set(kwargs) == common | keys
    if kind == "sconv2dlstm":  # after a conv layer, over [C, H, W]
        layers = [{"type": "conv2d", "out_channels": 2, "kernel_size": 4, "stride": 4, "neuron": settings},
                  {"type": "flatten"}, {"type": "linear", "out_features": 10, "neuron": True}]  # fmt: skip
        data, shape = {"dataset": "bundled"}, (1, 28, 28)
    else:
        layers = [{"type": "linear", "out_features": 10, "neuron": settings}]
        data, shape = {"dataset": "synthetic", "encoder": "none", "synthetic": {"inputs": 8, "classes": 10}}, (8,)
    train = {"decoder": "membrane"} if kind == "expon" else {}  # it never fires: its membrane is read
    cfg = config_from_dict({"data": data, "model": {"layers": layers}, "train": train})
    built = build_model(cfg.model.layer_specs(), shape)
    assert isinstance(built.blocks[0].neuron, neurons.NEURONS[kind])


IMAGE_DATA = ({"dataset": "bundled"}, (1, 28, 28))
SPIKE_DATA = ({"dataset": "synthetic", "encoder": "none", "synthetic": {"inputs": 8, "classes": 10}}, (8,))


@pytest.mark.parametrize(
    "kind,layer,data,problem",
    [
        ("slstm", {"type": "conv2d", "out_channels": 2, "kernel_size": 4, "stride": 4}, IMAGE_DATA,
         "an slstm neuron needs [N]"),
        ("sconv2dlstm", {"type": "linear", "out_features": 5}, SPIKE_DATA, "an sconv2dlstm neuron needs [C, H, W]"),
    ],
)  # fmt: skip
def test_an_lstm_neuron_after_the_wrong_layer_is_refused_in_one_line(kind, layer, data, problem):
    layers = [{**layer, "neuron": {"type": kind}}, {"type": "flatten"}, {"type": "linear", "neuron": True}]
    with pytest.raises(ConfigError) as info:
        config_from_dict({"data": data[0], "model": {"layers": layers}})
    message = str(info.value)
    assert "model.layers.0.neuron:" in message and problem in message and "\n" not in message.strip()
    fix = "sconv2dlstm after a conv layer" if kind == "slstm" else "slstm after a linear layer"
    assert fix in message
    with pytest.raises(ValueError, match=r"model.layers\[0\] \(\w+\) neuron: " + re.escape(problem)):
        build_model([{**layer, "neuron": {"type": kind}}], data[1])


def test_snntorch_options_reach_the_neuron_only_when_set():
    kwargs = cfgmod.NeuronConfig(graded_spikes_factor=2.0, inhibition=True, reset_delay=False,
                                 state_quant={"num_bits": 4}, threshold=0.5).kwargs()  # fmt: skip
    assert kwargs["graded_spikes_factor"] == 2.0 and kwargs["learn_graded_spikes_factor"] is False
    assert kwargs["inhibition"] is True and kwargs["reset_delay"] is False and "surrogate_disable" not in kwargs
    assert kwargs["state_quant"]["num_bits"] == 4 and kwargs["state_quant"]["threshold"] == 0.5  # the neuron's
    layers = [{"type": "linear", "out_features": 10, "neuron": {"graded_spikes_factor": 2.0, "reset_delay": False,
                                                                 "state_quant": {"num_bits": 4}}}]  # fmt: skip
    built = build_model(
        config_from_dict({"data": SPIKE_DATA[0], "model": {"layers": layers}}).model.layer_specs(), (8,)
    )
    neuron = built.blocks[0].neuron
    assert neuron.graded_spikes_factor.item() == 2.0 and not neuron.reset_delay
    assert neuron.state_quant.levels.numel() == 16 and neuron.state_quant.levels.max().item() == pytest.approx(1.2)
    plain = cfgmod.NeuronConfig().kwargs()
    assert not {"graded_spikes_factor", "inhibition", "reset_delay", "state_quant", "surrogate_disable"} & set(plain)


@pytest.mark.parametrize(
    "neuron,problem",
    [
        ({"type": "alpha", "beta": 0.8, "reset_delay": False}, "neuron type alpha has no reset_delay option"),
        ({"type": "leaky_parallel", "inhibition": True}, "neuron type leaky_parallel has no inhibition option"),
        ({"type": "slstm", "reset_delay": False}, "neuron type slstm has no reset_delay option"),
        ({"graded_spikes_factor": 0}, "must not be 0"),
        ({"state_quant": {"num_bits": 40}}, "num_bits"),
    ],
)
def test_options_a_neuron_lacks_are_refused_in_one_line(neuron, problem):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"data": SPIKE_DATA[0], "model": {"neuron": neuron}})
    assert problem in str(info.value) and "\n" not in str(info.value)


# --- BrainPy's recipe: the readout that never fires, named initialisers ---------------------------------

BRAINPY_DATA = {"dataset": "synthetic", "encoder": "none", "synthetic": {"samples": 8, "inputs": 6, "classes": 2}}
SILENT_OUT = {"type": "linear", "out_features": 2, "neuron": {"type": "expon", "beta": 0.9}}
HIDDEN = {"type": "linear", "out_features": 4, "neuron": True}
MEMBRANE = {"loss": "ce_mean_membrane", "decoder": "membrane"}


def _brainpy_config(layers=(HIDDEN, SILENT_OUT), train=MEMBRANE, neuron=None) -> Config:
    model = {"layers": list(layers), **({"neuron": neuron} if neuron else {})}
    return config_from_dict({"data": BRAINPY_DATA, "model": model, "train": dict(train)})


@pytest.mark.parametrize(
    "layers,train,neuron,message",
    [
        ((HIDDEN, SILENT_OUT), {"loss": "ce_rate", "decoder": "membrane"}, None,
         "train.loss: loss ce_rate reads the output spikes, but the output neuron (expon) never fires: use "
         "ce_mean_membrane or ce_membrane"),
        ((HIDDEN, SILENT_OUT), {"loss": "mse_count", "decoder": "membrane"}, None, "train.loss: loss mse_count"),
        ((HIDDEN, SILENT_OUT), {"loss": "ce_mean_membrane"}, None,
         "train.decoder: decoder rate reads the output spikes, but the output neuron (expon) never fires: use "
         "decoder: membrane"),
        ((HIDDEN, SILENT_OUT), {**MEMBRANE, "decoder": "latency"}, None, "train.decoder: decoder latency"),
        (({**HIDDEN, "neuron": {"type": "expon"}}, SILENT_OUT), MEMBRANE, None,
         "model.layers.0.neuron.type: expon never fires, so the layers after model.layers.0 would see no spikes: "
         "use it on the output layer only"),
        ((HIDDEN, {**SILENT_OUT, "neuron": True}), MEMBRANE, {"type": "expon"},
         "model.neuron.type: expon never fires"),  # inherited: named where it was written
        ((HIDDEN, {**SILENT_OUT, "neuron": {"type": "expon", "reset_delay": False}}), MEMBRANE, None,
         "neuron type expon has no reset_delay option"),
        (({**HIDDEN, "neuron": {"type": "brainpy_lif", "inhibition": True}}, SILENT_OUT), MEMBRANE, None,
         "neuron type brainpy_lif has no inhibition option"),
    ],
)  # fmt: skip
def test_a_readout_that_never_fires_is_refused_where_spikes_are_needed(layers, train, neuron, message):
    with pytest.raises(ConfigError) as info:
        _brainpy_config(layers, train, neuron)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_readout_that_never_fires_trains_on_its_membrane():
    cfg = _brainpy_config()
    assert cfg.model.layer_specs()[1]["neuron"] == {"type": "expon", "beta": 0.9, "learn_beta": False}
    assert _brainpy_config(train={"loss": "ce_membrane", "decoder": "membrane"}).train.loss == "ce_membrane"
    assert config_from_dict(cfg.to_dict()) == cfg
    from snnlab.config.schema import setting_applies

    assert [setting_applies("expon", k) for k in ("type", "beta", "learn_beta")] == [True] * 3
    assert not any(setting_applies("expon", k) for k in ("threshold", "surrogate", "surrogate_params", "reset",
                                                          "alpha", "graded_spikes_factor", "inhibition"))  # fmt: skip
    assert setting_applies("brainpy_lif", "alpha") and not setting_applies("brainpy_lif", "reset_delay")


INITIALISED = {**HIDDEN, "init": "brainpy_kaiming_normal", "init_params": {"scale": 4.5}, "bias_init": "zeros"}


def test_initialisers_round_trip_and_stay_out_of_specs_when_left_default():
    cfg = _brainpy_config((INITIALISED, {**SILENT_OUT, "bias_init": "constant", "bias_init_params": {"value": 2}}))
    again = config_from_dict(cfg.to_dict())
    assert again == cfg and config_from_dict(yaml.safe_load(dump_yaml(cfg))) == cfg
    hidden, out = cfg.model.layer_specs()
    assert (hidden["init"], hidden["init_params"], hidden["bias_init"]) == ("brainpy_kaiming_normal", {"scale": 4.5},
                                                                           "zeros")  # fmt: skip
    assert "bias_init_params" not in hidden and "init" not in out and out["bias_init_params"] == {"value": 2.0}
    # Left at their defaults they appear nowhere: specs and saved configs read as before these settings existed.
    plain = _brainpy_config()
    assert not {"init", "init_params", "bias_init", "bias_init_params"} & (
        set(plain.model.layer_specs()[0]) | set(plain.to_dict()["model"]["layers"][0])
    )
    conv = config_from_dict({"model": {"layers": [
        {"type": "conv2d", "out_channels": 2, "kernel_size": 4, "stride": 4, "init": "orthogonal",
         "neuron": True}, {"type": "flatten"}, {"type": "linear", "neuron": True}]}})  # fmt: skip
    assert conv.model.layer_specs()[0]["init"] == "orthogonal"


@pytest.mark.parametrize(
    "layer,message",
    [
        ({"init": "kaiming"}, "model.layers.0.init: must be one of default, zeros"),
        ({"init": "kaiming"}, "did you mean 'kaiming_normal'?"),
        ({"init": "normal", "init_params": {"sd": 0.1}},
         "model.layers.0.init_params: initialiser 'normal' has no parameter 'sd' (parameters: mean, std)"),
        ({"init_params": {"std": 0.1}}, "initialiser 'default' has no parameter 'std' (parameters: none)"),
        ({"init": "xavier_normal", "init_params": {"gain": -1}}, "initialiser 'xavier_normal': gain must be > 0"),
        ({"init": "kaiming_uniform", "init_params": {"fan_out": 3}}, "fan_out is a switch, 0 or 1 (got 3)"),
        ({"init": "trunc_normal", "init_params": {"a": 2, "b": -2}}, "a must be below b (got a 2, b -2)"),
        ({"init_params": [0.1]}, "model.layers.0.init_params: must be a mapping of parameter names to numbers"),
        ({"bias_init": "orthogonal"}, "model.layers.0.bias_init: must be one of default, zeros, constant"),
        ({"bias_init": "normal", "bias_init_params": {"std": 0}},
         "model.layers.0.bias_init_params: bias initialiser 'normal': std must be > 0"),
        ({"bias": False, "bias_init": "zeros"},
         "model.layers.0.bias_init: the layer has no bias to initialise (bias: false): remove bias_init or set "
         "bias: true"),
    ],
)  # fmt: skip
def test_bad_initialisers_are_refused_in_one_line(layer, message):
    with pytest.raises(ConfigError) as info:
        _brainpy_config(({**HIDDEN, **layer}, SILENT_OUT))
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_inhibition_after_a_conv_layer_is_refused():
    layers = [{"type": "conv2d", "out_channels": 2, "kernel_size": 4, "stride": 4, "neuron": {"inhibition": True}},
              {"type": "flatten"}, {"type": "linear", "out_features": 10, "neuron": True}]  # fmt: skip
    with pytest.raises(ConfigError, match=r"model.layers.0.neuron.inhibition: picks one neuron per sample"):
        config_from_dict({"data": IMAGE_DATA[0], "model": {"layers": layers}})


# --- overrides -----------------------------------------------------------------------------------------


def test_overrides_set_scalars_lists_and_list_items(tmp_path):
    path = write(tmp_path, BASE)
    cfg = load_config(
        path,
        [
            "train.lr=1e-3",
            "model.fused=false",
            "train.betas=[0.8, 0.99]",
            "run.probes.layers=[fc1]",
            "model.layers.1.out_features=500",
            "model.layers.-1.neuron.beta=0.5",
            "data.encoder=rate",
            "data.encoder_params.gain=2",
            "train.grad_clip=",
        ],
    )
    assert cfg.train.lr == 1e-3 and cfg.model.fused is False and cfg.train.betas == (0.8, 0.99)
    assert cfg.run.probes.layers == ["fc1"] and cfg.train.grad_clip is None
    specs = cfg.model.layer_specs()
    assert specs[1]["out_features"] == 500
    assert specs[2]["neuron"]["beta"] == 0.5 and specs[1]["neuron"]["beta"] == 0.9
    assert cfg.data.encoder_params == {"gain": 2.0}


# --- one line per mistake ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "old,new,message",
    [
        (
            "time_steps: 4",
            "time_step: 4",
            "x.yaml:4: data.time_step: unknown key 'time_step'; did you mean 'time_steps'?",
        ),
        ("lr: 2.0e-3", "lr: -1", "x.yaml:20: train.lr: must be > 0 (got -1)"),
        ("epochs: 1", "epochs: many", "x.yaml:19: train.epochs: must be a number (got 'many')"),
        ("epochs: 1", "epochs: 1.5", "x.yaml:19: train.epochs: must be a whole number (got 1.5)"),
        ("lr: 2.0e-3", "lr: .inf", "x.yaml:20: train.lr: must be a finite number (got inf)"),
        (
            "loss: ce_membrane",
            "loss: mse",
            "x.yaml:21: train.loss: must be one of ce_membrane, ce_mean_membrane, ce_rate, mse_count (got 'mse')",
        ),
        ("run:", "rnu:", "x.yaml:22: rnu: unknown key 'rnu'; did you mean 'run'?"),
        (
            "name: test",
            "name: my run",
            "x.yaml:23: run.name: may contain only letters, digits, '-', '_' and '.' (got 'my run')",
        ),
        (
            "beta: 0.9",
            "beta: 1.5",
            "x.yaml:9: model.neuron.beta: must be a number in [0, 1] or a list of them (got 1.5)",
        ),
        (
            "beta: 0.9",
            "beta: 0.9\n    surrogate: atann",
            "x.yaml:10: model.neuron.surrogate: unknown surrogate 'atann'; did you mean 'atan'?",
        ),
        (
            "beta: 0.9",
            "beta: 0.9\n    surrogate_params: {beta: 2}",
            "x.yaml:10: model.neuron.surrogate_params: surrogate 'atan' has no parameter 'beta' (parameters: alpha)",
        ),
        (
            "beta: 0.9",
            "beta: 0.9\n    surrogate_params: {alpha: -2}",
            "x.yaml:10: model.neuron.surrogate_params: surrogate 'atan': alpha must be > 0 (got -2.0)",
        ),
        (
            "beta: 0.9",
            "beta: 0.9\n    surrogate: 'mypkg.grads:'",
            "x.yaml:10: model.neuron.surrogate: 'mypkg.grads:' is not a path to a surrogate: write package.module:name",
        ),
        (
            "beta: 0.9",
            "beta: 0.9\n    surrogate: 'my-pkg:grad'",
            "x.yaml:10: model.neuron.surrogate: 'my-pkg:grad' is not a path to a surrogate: write package.module:name",
        ),
        (
            "beta: 0.9",
            "beta: 0.9\n    surrogate: q_pseudo_spike\n    surrogate_params: {alpha: 1}",
            "x.yaml:11: model.neuron.surrogate_params: surrogate 'q_pseudo_spike': alpha must be > 1 (got 1.0)",
        ),
        (
            "out_features: 32\n      neuron: true",
            "out_features: 32\n      neuron: {beta: 2, threshold: 0}",
            "x.yaml:14: model.layers.1.neuron.beta: must be a number in [0, 1] or a list of them (got 2) (and 1 more)",
        ),
        (
            "type: leaky",
            "type: alpha",
            "x.yaml: model.neuron.alpha: must be greater than beta for an alpha neuron (got alpha 0.9, beta 0.9)",
        ),
        (
            "out_features: 32\n      neuron: true",
            "out_features: 32\n      neuron: {betta: 0.5}",
            "x.yaml:14: model.layers.1.neuron.betta: unknown key 'betta'; did you mean 'beta'?",
        ),
        (
            "out_features: 32\n      neuron: true",
            "out_features: 32\n      neuron: 3",
            "x.yaml:14: model.layers.1.neuron: must be true, false or a mapping of neuron settings (got 3)",
        ),
        (
            "out_features: 32",
            "out_feature: 32",
            "x.yaml:13: model.layers.1.out_feature: unknown key 'out_feature'; did you mean 'out_features'?",
        ),
        (
            "- type: flatten",
            "- type: flatten\n      size: 3",
            "x.yaml:12: model.layers.0.size: unknown key 'size' (valid keys: type)",
        ),
        (
            "- type: flatten",
            "- type: flaten",
            "x.yaml:11: model.layers.0.type: unknown layer type 'flaten'; did you mean 'flatten'?",
        ),
        (
            "out_features: 10\n      neuron: true",
            "out_features: 10",
            "x.yaml:15: model.layers.2.neuron: the output layer must spike: set neuron: true "
            "(or a mapping of neuron settings)",
        ),
        (
            "encoder: direct",
            "encoder: rate\n  encoder_params: {gian: 2}",
            "x.yaml:6: data.encoder_params.gian: unknown parameter 'gian' for encoder 'rate'; did you mean 'gain'?",
        ),
        (
            "encoder: direct",
            "encoder: none",
            "x.yaml:5: data.encoder: encoder none is only for spike datasets (synthetic, shd, ssc, nmnist, "
            "dvs_gesture); bundled images need direct, "
            "rate, latency or delta",
        ),
        (
            "dataset: bundled",
            "dataset: synthetic",
            "x.yaml:5: data.encoder: the synthetic dataset is already spike trains: use encoder none or delta "
            "(got 'direct')",
        ),
        (
            "loss: ce_membrane",
            "loss: ce_rate\n  loss_params: {correct_rate: 0.5}",
            "x.yaml:22: train.loss_params.correct_rate: loss 'ce_rate' takes no parameters",
        ),
        (
            "name: test",
            "probes: {layers: [fc3]}",
            "x.yaml:23: run.probes.layers.0: no spiking layer 'fc3'; did you mean 'fc2'? (spiking layers: fc1, fc2)",
        ),
        ("lr: 2.0e-3", "lr: 2.0e-3\n  lr: 3", "x.yaml:21: train.lr: duplicate key 'lr'"),
        ("lr: 2.0e-3", "betas: [0.9, 1]", "x.yaml:20: train.betas.1: must be < 1 (got 1)"),
    ],
)
def test_each_mistake_gives_one_exact_line(tmp_path, monkeypatch, old, new, message):
    monkeypatch.chdir(tmp_path)
    assert old in BASE
    assert error_of(write(tmp_path, BASE.replace(old, new, 1)).name) == message


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["train.lr=-1"], "x.yaml: train.lr: must be > 0 (got -1)"),
        (["data.time_step=5"], "x.yaml: data.time_step: unknown key 'time_step'; did you mean 'time_steps'?"),
        (
            ["model.layers.1.neuron.beta=7"],
            "x.yaml: model.layers.1.neuron.beta: must be a number in [0, 1] or a list of them (got 7)",
        ),
        (["train.lr"], "--set train.lr: expected KEY=VALUE"),
        (["=3"], "--set =3: expected KEY=VALUE"),
        (
            ["model.layers.7.out_features=5"],
            "--set model.layers.7.out_features=5: model.layers has 3 items, so no item 7",
        ),
        (["train.lr.x=1"], "--set train.lr.x=1: train.lr is 0.002, not a mapping"),
        (
            ["run.probes.trace={fc3: [1]}"],
            "x.yaml: run.probes.trace.fc3: no spiking layer 'fc3'; did you mean 'fc2'? (spiking layers: fc1, fc2)",
        ),
        (
            ["run.probes.trace={fc2: [3, 10]}"],
            "x.yaml: run.probes.trace.fc2: fc2 has 10 neurons (0 to 9), so 10 is none of them",
        ),
        (["run.probes.trace={fc1: [-1]}"], "x.yaml: run.probes.trace.fc1.0: must be >= 0 (got -1)"),
        (
            ["run.name=[a"],
            "--set run.name=[a: the value is not valid YAML: expected ',' or ']', but got '<stream end>'",
        ),
    ],
)
def test_override_mistakes_name_the_key_without_a_line(tmp_path, monkeypatch, overrides, message):
    monkeypatch.chdir(tmp_path)
    assert error_of(write(tmp_path, BASE).name, overrides) == message


def test_the_error_carries_its_key_and_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, BASE.replace("lr: 2.0e-3", "lr: 0")))
    assert (info.value.key, info.value.line) == ("train.lr", 20)


def test_file_mistakes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert error_of("presets/x.yaml") == "presets/x.yaml: file not found"
    assert error_of(write(tmp_path, "data:\n  dataset: [bundled\n", "bad.yaml").name) == (
        "bad.yaml:3: invalid YAML: expected ',' or ']', but got '<stream end>'"
    )
    assert error_of(write(tmp_path, "data:\n\tdataset: mnist\n", "tab.yaml").name) == (
        "tab.yaml:2: invalid YAML: found character '\\t' that cannot start any token"
    )
    assert error_of(write(tmp_path, "- data\n- model\n", "list.yaml").name) == (
        "list.yaml: expected a mapping of sections (data, model, train, run), got a list"
    )
    assert error_of(write(tmp_path, "", "empty.yaml").name) == (
        "empty.yaml: no settings (the file is empty or only comments); a preset sets at least one of the sections "
        "data, model, train, run"
    )
    (tmp_path / "folder").mkdir()
    assert error_of("folder") == "folder: is a directory, not a YAML file"


def test_errors_from_plain_data_name_the_source():
    with pytest.raises(ConfigError, match=r"^<config>: train.lr: must be > 0 \(got 0\)$"):
        config_from_dict({"train": {"lr": 0}})
    with pytest.raises(ConfigError, match=r"^web: model.layers: must not be empty \(got \[\]\)$"):
        config_from_dict({"model": {"layers": []}}, source="web")


def test_a_run_name_too_long_for_a_folder_is_a_run_name_error(tmp_path):
    # 300 characters used to pass here and fail at mkdir, with a hint to change run.runs_dir.
    with pytest.raises(ConfigError, match=r"^<config>: run.name: is 300 characters long; at most 200 fit") as error:
        config_from_dict({"run": {"name": "a" * 300}})
    assert "runs_dir" not in str(error.value)
    config_from_dict({"run": {"name": "a" * cfgmod.MAX_RUN_NAME, "runs_dir": str(tmp_path)}})
    from snnlab.runs import RunDir

    RunDir(tmp_path, "a" * cfgmod.MAX_RUN_NAME, {}, now=0)  # the longest name still makes a folder


def test_find_preset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cfgmod.find_preset("quickstart") == cfgmod.PRESETS_DIR / "quickstart.yaml"
    assert cfgmod.find_preset("quickstart.yaml") == cfgmod.PRESETS_DIR / "quickstart.yaml"
    own = write(tmp_path, BASE, "mine.yaml")
    assert cfgmod.find_preset("mine.yaml") == own.relative_to(tmp_path)
    with pytest.raises(ConfigError, match=r"^no preset or file named 'quickstrt'; did you mean 'quickstart'\?$"):
        cfgmod.find_preset("quickstrt")
    with pytest.raises(ConfigError, match=r"^nope.yaml: file not found$"):
        cfgmod.find_preset("nope.yaml")


# --- schema and registries -----------------------------------------------------------------------------


def test_schema_rows_describe_every_field():
    rows = cfgmod.schema_rows()
    keys = [row[0] for row in rows]
    assert len(keys) == len(set(keys))
    assert all(description for _, _, _, description in rows)
    assert ("train.lr", "float (> 0)", "0.0005", "learning rate") in rows
    assert "model.layers[conv2d].kernel_size" in keys and "run.probes.neurons" in keys


def test_the_config_knows_the_shapes_the_engine_builds():
    from snnlab.engine import shapes
    from snnlab.engine.models import count_parameters

    bundled = data.load_dataset("bundled")
    facts = shapes.IMAGE_SETS["bundled"]
    assert (bundled.input_shape, bundled.num_classes) == (facts.input_shape, facts.classes)
    assert (len(bundled.train), len(bundled.test)) == (facts.train_samples, facts.test_samples)
    assert {s.input_shape for s in shapes.IMAGE_SETS.values()} == {facts.input_shape}
    for name in PRESETS:
        cfg = load_config(cfgmod.find_preset(name))
        model = build_model(cfg.model.layer_specs(), input_shape(cfg))
        assert count_parameters(model) == cfg.parameter_count(), name


# --- hostile files and values: one short line, never a traceback, a hang or a memory blow-up ------------

QUICKSTART = cfgmod.PRESETS_DIR / "quickstart.yaml"
# Nine levels of nine-fold aliases: 9**9 (387 million) values once expanded, in a few hundred bytes.
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n" for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def short_error(path, overrides=()) -> str:
    message = error_of(path, overrides)
    assert len(message) <= cfgmod.MAX_MESSAGE and message.isprintable()
    return message


@pytest.mark.parametrize(
    "text,message",
    [
        ("data:\n  dataset: bund\0led\n", "x.yaml:2: invalid YAML: character U+0000 is not allowed"),
        ("data:\n  encoder: direct\x07\n", "x.yaml:2: invalid YAML: character U+0007 is not allowed"),
        ("model: {layers: &a [*a]}\n", "x.yaml:1: alias *a is used inside the node it names"),
        (ALIAS_BOMB, "x.yaml:6: more than 100,000 values (an alias counts once per use)"),
        ("a: " + "[" * 1000 + "]" * 1000 + "\n", "x.yaml:1: nesting deeper than 20 levels"),
        ("".join("  " * i + f"k{i}:\n" for i in range(1000)), "x.yaml:20: nesting deeper than 20 levels"),
        ("train:\n  seed: " + "9" * 5000 + "\n", "x.yaml:2: a number of 5,000 digits is longer than the 4,300 allowed"),
        ("train:\n  seed: 2001-13-45\n", "x.yaml:2: cannot read '2001-13-45' as a timestamp"),
        ('data:\n  dataset: "\\U7fffffff"\n', "x.yaml:2: invalid YAML: an escape names no character"),
        ("", "x.yaml: no settings (the file is empty or only comments)"),
        ("# only a comment\n\n# and another\n", "x.yaml: no settings (the file is empty or only comments)"),
        ("---\n...\n", "x.yaml: no settings"),
        ("{}\n", "x.yaml: no settings"),
    ],
)
def test_hostile_yaml_ends_in_one_line(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    assert short_error(write(tmp_path, text).name).startswith(message)


def test_an_alias_bomb_is_refused_without_expanding_it(tmp_path):
    import time
    import tracemalloc

    assert len(ALIAS_BOMB) < 500
    tracemalloc.start()
    started = time.perf_counter()
    short_error(write(tmp_path, "description: x\n" + ALIAS_BOMB))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20 and time.perf_counter() - started < 5


def test_a_binary_file_is_not_a_config(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(bytes(range(256)) * 4)
    assert short_error(path).endswith("x.bin:2: not a text file: byte 0x80 is not UTF-8")
    path.write_bytes(b"\0" * 5000)  # valid UTF-8, but no YAML
    assert "character U+0000 is not allowed" in short_error(path)


def test_aliases_that_expand_a_little_still_work_and_overrides_change_one_use(tmp_path):
    hidden, output = "    - type: linear\n      out_features: 32", "    - type: linear\n      out_features: 10"
    text = BASE.replace(hidden, hidden.replace("- ", "- &hidden\n      ")).replace(output, "    - *hidden\n" + output)
    cfg = load_config(write(tmp_path, text), ["model.layers.2.out_features=16"])
    assert [s.get("out_features") for s in cfg.model.layer_specs()] == [None, 32, 16, 10]


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model.neuron.surrogate_params=" + "[" * 1000 + "]" * 1000], "nesting deeper than 20 levels"),
        (["train." + ".".join(["x"] * 1000) + "=1"], "the key has 1001 parts; a config nests at most 20 levels"),
        (["model.neuron.surrogate_params" + ".x" * 16 + "=[[1]]"], "nesting deeper than 20 levels"),
        (["train.seed=" + "1" * 5000], "a number of 5,000 digits is longer than the 4,300 allowed"),
        (["model.layers.7" + "7" * 5000 + ".type=linear"], "model.layers has 3 items, so no item 777"),
    ],
)
def test_hostile_overrides_end_in_one_line(overrides, message):
    assert message in short_error(QUICKSTART, overrides)


def test_errors_never_echo_a_long_input_in_full(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    long = "x" * 10_000
    messages = [
        short_error(write(tmp_path, f"data:\n  dataset: {long}\n").name),
        short_error(write(tmp_path, f"data:\n  ? {long}\n  : 1\n").name),  # a key of any length
        short_error(write(tmp_path, f"data: *{long}\n").name),  # in the YAML parser's own words
        short_error(write(tmp_path, f"data:\n  dataset: !{long} x\n").name),
        short_error(write(tmp_path, "run:\n  probes:\n    layers: [" + long + "]\n").name),
        short_error(write(tmp_path, "model:\n  neuron:\n    surrogate: " + long + "\n").name),
        short_error(write(tmp_path, "train:\n  seed: 0x" + "f" * 5000 + "\n").name),
        short_error(write(tmp_path, "model:\n  neuron:\n    beta: [" + ", ".join(["2"] * 5000) + "]\n").name),
        short_error(QUICKSTART, [long]),
        short_error(QUICKSTART, [f"train.lr=[{long}"]),
        short_error(QUICKSTART, [f"{long}=1"]),
        short_error(QUICKSTART, [f"train.lr.{long}=1"]),
        short_error(QUICKSTART, ["data.encoder_params=" + "{" + ", ".join(f"k{i}: 1" for i in range(3000)) + "}"]),
        short_error(QUICKSTART, ['run.name="\\e[31mred"']),
    ]
    with pytest.raises(ConfigError) as info:
        cfgmod.find_preset(long)
    messages.append(str(info.value))
    with pytest.raises(ConfigError) as info:
        config_from_dict({"data": {long: 1}})
    messages.append(str(info.value))
    for message in messages:
        assert len(message) <= 300 and message.isprintable() and "x" * 100 not in message, message


def test_plain_data_that_nests_without_end_is_refused():
    deep: dict = {}
    node = deep
    for _ in range(1000):
        node["x"] = {}
        node = node["x"]
    cyclic: dict = {"train": {}}
    cyclic["train"]["lr"] = cyclic
    for plain in ({"model": deep}, cyclic):
        with pytest.raises(ConfigError, match=r"nesting deeper than 20 levels"):
            config_from_dict(plain)


# --- shapes, sizes and ranges, caught before any data loads ---------------------------------------------


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["model.neuron.beta=[0.9,0.8,0.7]"],
            "quickstart.yaml: model.neuron.beta: has 3 values but model.layers.1 (linear) has 256 neurons: "
            "give one value per neuron or a single number",
        ),
        (
            ["model.layers.2.neuron={beta: [0.5, 0.5]}"],
            "quickstart.yaml: model.layers.2.neuron.beta: has 2 values but model.layers.2 (linear) has 10 neurons",
        ),
        (
            [
                "model.layers=[{type: conv2d, out_channels: 2, neuron: {beta: [0.5, 0.5]}}, {type: flatten}, "
                "{type: linear, out_features: 10, neuron: true}]"
            ],
            "quickstart.yaml: model.layers.0.neuron.beta: is a list (one value per neuron), which needs a layer of "
            "[N] neurons, but model.layers.0 (conv2d) gives [2, 26, 26]: give beta as one number",
        ),
        (
            ["model.layers.1.out_features=100000000"],
            "quickstart.yaml: model.layers.1.out_features: the network would have 79,500,000,010 parameters "
            "(296 GiB as float32), more than the limit of 1,000,000,000; model.layers.1 holds 78,500,000,000 of them",
        ),
        ([f"model.layers.1.out_features={2**63}"], "quickstart.yaml: model.layers.1.out_features: the network would "),
        (
            ["model.layers.2.out_features=7"],
            "quickstart.yaml: model.layers.2.out_features: the output layer has 7 outputs but bundled has 10 "
            "classes: set it to 10",
        ),
        (
            ["model.layers=[{type: conv2d, out_channels: 10, neuron: true}]"],
            "quickstart.yaml: model.layers.0: the output layer gives [10, 26, 26] but bundled needs [10], one per "
            "class: end with a linear layer of 10 out_features",
        ),
        (["data.time_steps=1000000000"], "quickstart.yaml: data.time_steps: one batch would hold 128 samples x "),
        (
            ["data.train_size=6000"],
            "quickstart.yaml: data.train_size: must be <= 5,000, the size of the bundled train split (got 6000)",
        ),
        (["data.test_size=1001"], "quickstart.yaml: data.test_size: must be <= 1,000, the size of the bundled test"),
        (
            [
                "model.layers=[{type: flatten}, {type: batchnorm}, {type: linear, out_features: 10, neuron: true}]",
                "data.batch_size=1",
            ],
            "quickstart.yaml: data.batch_size: must be at least 2: model.layers.1 (batchnorm) normalises each "
            "feature over the samples of a batch, and one sample has no batch statistics (got 1)",
        ),
        (
            [
                "model.layers=[{type: flatten}, {type: batchnorm}, {type: linear, out_features: 10, neuron: true}]",
                "data.train_size=1",
            ],
            "quickstart.yaml: data.train_size: must be at least 2: model.layers.1 (batchnorm)",
        ),
        (
            [
                "model.layers=[{type: flatten}, {type: linear, out_features: 8, neuron: true}, {type: batchnorm_tt}, "
                "{type: linear, out_features: 10, neuron: true}]",
                "data.batch_size=1",
            ],
            # one norm per step: after a neuron it still sees one value per feature in a batch of one
            "quickstart.yaml: data.batch_size: must be at least 2: model.layers.2 (batchnorm_tt) normalises each "
            "feature at each step over the samples of a batch",
        ),
        (["model.layers.1={type: batchnorm_tt, momentum: 2}"], "quickstart.yaml: model.layers.1.momentum: "),
        (["model.layers.1={type: batchnorm_tt, eps: 0}"], "quickstart.yaml: model.layers.1.eps: "),
        (
            ["model.layers.1={type: batchnorm_tt, time_steps: 5}"],
            "quickstart.yaml: model.layers.1.time_steps: unknown key 'time_steps'",
        ),
        ([f"train.seed={2**63}"], "quickstart.yaml: train.seed: must be < 9223372036854775808"),
        (["model.layers.1.stride=5"], "quickstart.yaml: model.layers.1.stride: unknown key 'stride'"),
        (
            ["model.layers.0={type: conv2d, out_channels: 1, kernel_size: 3, stride: 2147483648}"],
            "quickstart.yaml: model.layers.0: stride 2147483648 is larger than the input [1, 28, 28]; use at most 28",
        ),
    ],
)
def test_shape_and_size_mistakes_are_config_errors(tmp_path, monkeypatch, overrides, message):
    monkeypatch.chdir(cfgmod.PRESETS_DIR)
    assert short_error("quickstart.yaml", overrides).startswith(message)


def test_what_the_checks_allow_still_loads():
    ok = [
        ["train.seed=100000000000000"],
        [f"train.seed={2**63 - 1}"],
        ["model.neuron.beta=" + str([0.9] * 256), "model.layers.2.neuron={beta: 0.5}"],
        ["model.layers=[{type: flatten}, {type: batchnorm}, {type: linear, out_features: 10, neuron: true}]"],
        # after a neuron a batchnorm sees every step of a sample: one sample per batch is enough
        [
            "model.layers=[{type: flatten}, {type: linear, out_features: 8, neuron: true}, {type: batchnorm}, "
            "{type: linear, out_features: 10, neuron: true}]",
            "data.batch_size=1",
        ],
        [
            "model.layers=[{type: conv2d, out_channels: 2}, {type: batchnorm}, {type: flatten}, "
            "{type: linear, out_features: 10, neuron: true}]",
            "data.batch_size=1",
        ],
        # batchnorm_tt over [C, H, W]: H*W values per channel and step, even from one sample
        [
            "model.layers=[{type: conv2d, out_channels: 2}, {type: batchnorm_tt, affine: false, momentum: null}, "
            "{type: flatten}, {type: linear, out_features: 10, neuron: true}]",
            "data.batch_size=1",
        ],
    ]
    for overrides in ok:
        load_config(QUICKSTART, overrides)


def test_a_surrogate_path_is_checked_for_its_form_only_and_imported_later():
    # The config stays torch-free: the module is not imported here, nor its parameters checked.
    neuron = {"surrogate": "no_such_package.grads:my_grad", "surrogate_params": {"alpha": -3, "anything": 1}}
    cfg = config_from_dict({"model": {"neuron": neuron}})
    assert cfg.model.neuron.surrogate == "no_such_package.grads:my_grad"
    assert cfg.model.neuron.surrogate_params == {"alpha": -3.0, "anything": 1.0}
    with pytest.raises(
        ConfigError, match=r"unknown surrogate 'zigzag' \(one of 25, e\.g\. atan, .*package\.module:name"
    ):
        config_from_dict({"model": {"neuron": {"surrogate": "zigzag"}}})


# --- lapicque by beta, per-neuron thresholds, defaults that follow the neuron type -----------------------


SPIKES8 = {"dataset": "synthetic", "encoder": "none", "synthetic": {"inputs": 8, "classes": 10}}


def _lapicque_of(neuron: dict, layer_neuron=True) -> neurons.Lapicque:
    layers = [{"type": "linear", "out_features": 10, "neuron": layer_neuron}]
    cfg = config_from_dict({"data": SPIKES8, "model": {"neuron": neuron, "layers": layers}})
    again = config_from_dict(cfg.to_dict())  # what a run directory saves loads back to the same neuron
    assert again.layer_specs() == cfg.layer_specs(), (cfg.to_dict(), again.to_dict())
    built = build_model(cfg.layer_specs(), (8,)).blocks[0].neuron
    assert isinstance(built, neurons.Lapicque)
    return built


@pytest.mark.parametrize(
    "given,R,C",
    [
        ({"beta": 0.9}, 1.0, 1e-3 / math.log(1 / 0.9)),  # snnTorch: R = 1, C = dt/ln(1/beta)
        ({"beta": 0.9, "R": 2.0}, 2.0, 1e-3 / (2 * math.log(1 / 0.9))),
        ({"beta": 0.9, "C": 0.02}, 1e-3 / (0.02 * math.log(1 / 0.9)), 0.02),
        ({}, 5.0, 5e-3),  # no constants: R and C's defaults
        ({"R": 1.0, "C": 0.01}, 1.0, 0.01),
        ({"beta": 0.5, "R": 1.0, "C": 0.01}, 1.0, 0.01),  # R and C both given: they decide, beta is not read
    ],
)
def test_a_lapicque_neuron_may_be_given_beta_instead_of_r_and_c(given, R, C):
    neuron = _lapicque_of({"type": "lapicque", **given})
    assert neuron.R == pytest.approx(R, rel=1e-6) and neuron.C == pytest.approx(C, rel=1e-6)
    assert float(neuron.beta) == pytest.approx(1 - 1e-3 / (R * C), rel=1e-6)  # snnTorch's decay, not beta


def test_a_layer_that_switches_to_lapicque_does_not_take_model_neurons_beta():
    # model.neuron's beta is a leaky decay; the lapicque layer keeps R and C's defaults, as before
    assert _lapicque_of({"beta": 0.5}, {"type": "lapicque"}).R == 5.0
    assert _lapicque_of({"beta": 0.5, "R": 9.0}, {"type": "lapicque", "beta": 0.9}).R == 1.0
    assert _lapicque_of({"type": "lapicque", "beta": 0.9}, {"C": 0.02}).C == pytest.approx(0.02)
    assert _lapicque_of({"type": "lapicque", "beta": 0.9}, {"threshold": 2.0}).R == 1.0


@pytest.mark.parametrize(
    "neuron,message",
    [
        ({"type": "lapicque", "beta": 0.3}, "model.neuron.beta: must be in [1/e, 1) for a lapicque neuron (got 0.3)"),
        ({"type": "lapicque", "beta": 1.0}, "model.neuron.beta: must be in [1/e, 1) for a lapicque neuron (got 1)"),
        ({"type": "lapicque", "beta": [0.9, 0.1]}, "model.neuron.beta: must be in [1/e, 1) for a lapicque"),
        ({"type": "lapicque", "R": 1, "C": 1e-4}, "model.neuron.time_step: must be <= R*C = 0.0001 (got 0.001)"),
        ({"type": "lapicque", "beta": 0.9, "time_step": 1.0}, None),  # with beta dt is not bound by R*C
    ],
)
def test_lapicque_constants_are_checked_for_the_way_they_are_given(neuron, message):
    raw = {"data": SPIKES8, "model": {"neuron": neuron, "layers": [{"type": "linear", "neuron": True}]}}
    if message is None:
        config_from_dict(raw)
        return
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, source="x")
    assert str(info.value).startswith(f"x: {message}")


def test_threshold_is_a_number_or_one_per_neuron():
    cfg = load_config(QUICKSTART, ["model.layers.2.neuron={threshold: [0.5, 1, 1, 1, 1, 1, 1, 1, 1, 2]}"])
    spec = cfg.layer_specs()[2]["neuron"]
    assert spec["threshold"] == [0.5] + [1.0] * 8 + [2.0]
    built = build_model(cfg.layer_specs(), (1, 28, 28)).blocks[2].neuron
    assert built.threshold.tolist() == spec["threshold"]
    ones = str([1.0] * 10)
    learned = load_config(QUICKSTART, ["model.layers.2.neuron={threshold: " + ones + ", learn_threshold: true}"])
    assert learned.parameter_count() == cfg.parameter_count() + 10
    assert config_from_dict(cfg.to_dict()).layer_specs() == cfg.layer_specs()


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["model.neuron.threshold=[1, 1]"],
            "model.neuron.threshold: has 2 values but model.layers.1 (linear) has 256 "
            "neurons: give one value per neuron or a single number",
        ),  # fmt: skip
        (
            ["model.layers.2.neuron={threshold: [1, 2]}"],
            "model.layers.2.neuron.threshold: has 2 values but model.layers.2 (linear) has 10 neurons",
        ),  # fmt: skip
        (["model.neuron.threshold=[1, 0]"], "model.neuron.threshold.1: must be a number > 0 or a list of them (got 0)"),
        (["model.neuron.threshold=0"], "model.neuron.threshold: must be a number > 0 or a list of them (got 0)"),
        (["model.neuron.threshold=[]"], "model.neuron.threshold: must be a number > 0 or a list of them (got [])"),
        (["model.neuron.threshold=true"], "model.neuron.threshold: must be a number > 0 or a list of them (got true)"),
        (
            [
                "model.layers=[{type: conv2d, out_channels: 2, neuron: {threshold: [1, 1]}}, {type: flatten}, "
                "{type: linear, out_features: 10, neuron: true}]"
            ],
            "model.layers.0.neuron.threshold: is a list (one value per neuron), which needs a layer of [N] neurons",
        ),  # fmt: skip
    ],
)
def test_a_threshold_list_that_does_not_fit_is_a_config_error(monkeypatch, overrides, message):
    monkeypatch.chdir(cfgmod.PRESETS_DIR)
    assert short_error("quickstart.yaml", overrides).startswith(f"quickstart.yaml: {message}")


def test_an_alpha_neuron_named_alone_takes_the_alpha_modules_defaults():
    import inspect

    cfg = config_from_dict({"model": {"neuron": {"type": "alpha"}}})
    n = cfg.model.neuron
    assert (n.reset, n.beta, n.alpha) == ("zero", 0.8, 0.9)
    module = inspect.signature(neurons.Alpha.__init__).parameters
    assert cfgmod.schema.TYPE_DEFAULTS["alpha"] == {k: module[k].default for k in ("reset", "beta", "alpha")}
    # explicit values are kept; and the other types' defaults are the config's as before
    n = config_from_dict({"model": {"neuron": {"type": "alpha", "reset": "subtract", "beta": 0.5}}}).model.neuron
    assert (n.reset, n.beta, n.alpha) == ("subtract", 0.5, 0.9)
    for kind in ("leaky", "synaptic", "rleaky", "rsynaptic", "lapicque", "leaky_parallel"):
        n = config_from_dict({"model": {"neuron": {"type": kind}}}).model.neuron
        assert (n.reset, n.beta, n.alpha) == ("subtract", 0.9, 0.9), kind
    # a layer that switches to alpha gets its defaults too, and the saved config loads back the same
    layers = [{"type": "flatten"}, {"type": "linear", "out_features": 10, "neuron": {"type": "alpha"}}]
    cfg = config_from_dict({"model": {"neuron": {"beta": 0.85}, "layers": layers}})
    spec = cfg.layer_specs()[1]["neuron"]  # what model.neuron sets is inherited, as any setting; the rest follow alpha
    assert (spec["reset"], spec["beta"], spec["alpha"]) == ("zero", 0.85, 0.9)
    assert config_from_dict(cfg.to_dict()).layer_specs() == cfg.layer_specs()
    cfg = config_from_dict({"model": {"layers": layers}})
    spec = cfg.layer_specs()[1]["neuron"]
    assert (spec["reset"], spec["beta"], spec["alpha"]) == ("zero", 0.8, 0.9)
    assert config_from_dict(cfg.to_dict()).layer_specs() == cfg.layer_specs()
    assert isinstance(build_model(cfg.layer_specs(), (1, 28, 28)).blocks[1].neuron, neurons.Alpha)


def test_switching_a_neurons_type_moves_the_settings_still_at_the_old_default():
    from snnlab.config.schema import retyped

    leaky = Config().to_dict()["model"]["neuron"]  # the lab's form holds every setting
    assert retyped(leaky, "leaky", "alpha") == {"reset": "zero", "beta": 0.8}
    assert retyped({**leaky, "beta": 0.7}, "leaky", "alpha") == {"reset": "zero"}  # the user's beta stays
    assert retyped({**leaky, "reset": "zero", "beta": 0.8}, "alpha", "synaptic") == {"reset": "subtract", "beta": 0.9}
    assert retyped(leaky, "leaky", "synaptic") == {}


def test_drop_last_that_would_leave_out_every_batch_is_refused():
    data = {"dataset": "bundled", "train_size": 24, "batch_size": 32, "drop_last": True}
    with pytest.raises(ConfigError) as info:
        config_from_dict({"data": data})
    message = str(info.value)
    assert "data.drop_last: would leave out every batch" in message and "at most 24" in message
    assert "\n" not in message
    config_from_dict({"data": {**data, "batch_size": 24}})  # one full batch: fine


# Another valid value for each setting a type may or may not read, with what it needs around it to be read.
_OTHER_VALUES = {
    "beta": ({"beta": 0.5}, {}),
    "learn_beta": ({"learn_beta": True}, {}),
    "reset": ({"reset": "none"}, {}),
    "learn_threshold": ({"learn_threshold": True}, {}),
    "alpha": ({"alpha": 0.95}, {}),
    "learn_alpha": ({"learn_alpha": True}, {}),
    "all_to_all": ({"all_to_all": False}, {}),
    "V": ({"V": 0.5, "all_to_all": False}, {"all_to_all": False}),
    "learn_recurrent": ({"learn_recurrent": False}, {}),
    "kernel_size": ({"kernel_size": 5}, {}),
    "R": ({"R": 2.0}, {}),
    "C": ({"C": 1e-2}, {}),
    "time_step": ({"time_step": 5e-4}, {}),
    "tau": ({"tau": 3.0}, {}),
    "decay_input": ({"decay_input": False}, {}),
    "v_reset": ({"v_reset": None}, {}),
    "detach_reset": ({"detach_reset": True}, {}),
}


@pytest.mark.parametrize("kind", sorted(cfgmod.schema.TYPE_SETTINGS))
def test_the_settings_a_type_reads_are_exactly_those_the_lab_shows_for_it(kind):
    from snnlab.config.schema import setting_applies

    assert set(_OTHER_VALUES) | {"type", "threshold", "surrogate", "surrogate_params", "graded_spikes_factor",
                                 "learn_graded_spikes_factor", "inhibition", "reset_delay", "surrogate_disable",
                                 "state_quant"} == set(cfgmod.NeuronConfig.model_fields)  # fmt: skip
    for name, (changed, context) in _OTHER_VALUES.items():
        if name == "reset" and cfgmod.NeuronConfig(type=kind).reset == "none":  # the LSTMs' default
            changed = {"reset": "zero"}
        before = cfgmod.NeuronConfig(type=kind, **context).kwargs()
        after = cfgmod.NeuronConfig(type=kind, **changed).kwargs()
        assert (before != after) == setting_applies(kind, name), f"{kind}.{name}"
    plain = cfgmod.NeuronConfig(type=kind).kwargs()
    for name, changed in (("threshold", {"threshold": 0.5}), ("surrogate", {"surrogate": "sigmoid"}),
                          ("surrogate_params", {"surrogate_params": {"alpha": 3.0}})):  # fmt: skip
        after = cfgmod.NeuronConfig(type=kind, **changed).kwargs()
        assert (plain != after) == setting_applies(kind, name), f"{kind}.{name}"
