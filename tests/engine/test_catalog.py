"""Every choice snnlab.catalog lists has an engine implementation.

Registries looked up by name (surrogates, neuron types, losses, datasets, the config's layer classes) are
checked against the catalog when they are imported. The choices the engine picks with an ``if`` per name
are run here, each through the function that picks it, so that one listed without an implementation fails
in this file instead of falling through to some other behaviour.
"""

import inspect
import math
from types import SimpleNamespace

import pytest
import torch

from snnlab import catalog
from snnlab.config import TrainConfig, config_from_dict
from snnlab.engine import encoders, losses, neurons
from snnlab.engine.events import FailureReason
from snnlab.engine.models import build_model
from snnlab.engine.neurons import Leaky
from snnlab.engine.session import Session, TrainingError, make_optimizer, make_scheduler, pick_device

B, T, C = 3, 5, 4


def test_a_registry_that_differs_from_the_catalog_fails_loudly():
    listed = {"a": catalog.Choice("a", "one"), "b": catalog.Choice("b", "two")}
    catalog.check_implemented("things", listed, ["b", "a"])  # the order does not matter
    with pytest.raises(RuntimeError, match=r"^things: listed in snnlab.catalog but not implemented: b$"):
        catalog.check_implemented("things", listed, ["a"])
    with pytest.raises(RuntimeError, match=r"not implemented: b; implemented but not listed in snnlab.catalog: c$"):
        catalog.check_implemented("things", listed, ["a", "c"])


def test_the_catalogs_defaults_cannot_be_changed_in_place():
    with pytest.raises(TypeError):
        catalog.SURROGATES["atan"].defaults["alpha"] = 3.0


def _parameters(function, leave_out: set[str]) -> dict[str, object]:
    """The keyword parameters of ``function`` with their defaults, less ``leave_out``."""
    return {k: p.default for k, p in inspect.signature(function).parameters.items() if k not in leave_out}


@pytest.mark.parametrize("name", list(catalog.ENCODERS))
def test_every_encoder_encodes_and_takes_the_catalogs_parameters(name):
    images = torch.rand(B, 1, 2, 2)
    if name == "none":  # only for sequences
        out = encoders.encode(name, images.unsqueeze(1).expand(B, T, 1, 2, 2), T, temporal=True)
    else:
        out = encoders.encode(name, images, T, generator=torch.Generator().manual_seed(0))
    assert out.shape == (T, B, 1, 2, 2)
    function = getattr(encoders, name, None)  # an encoder that takes parameters is the function of its name
    if function is None:
        assert not catalog.ENCODERS[name].defaults
    else:
        assert _parameters(function, {"x", "time_steps", "generator"}) == catalog.ENCODERS[name].defaults


@pytest.mark.parametrize("name", list(catalog.LOSSES))
def test_every_loss_takes_the_catalogs_parameters(name):
    spikes = (torch.rand(T, B, C) > 0.5).float()
    value = losses.loss_fn(name)(spikes, torch.randn(T, B, C), torch.tensor([0, 1, 3]))
    assert value.dim() == 0 and torch.isfinite(value)
    accepted = _parameters(losses.LOSS_FUNCTIONS[name], {"spikes", "membrane", "targets"})
    assert accepted == catalog.LOSSES[name].defaults


@pytest.mark.parametrize("name", list(catalog.DECODERS))
def test_every_decoder_decodes(name):
    predictions = losses.decode(name, (torch.rand(T, B, C) > 0.5).float(), torch.randn(T, B, C))
    assert predictions.shape == (B,) and predictions.dtype == torch.int64


@pytest.mark.parametrize("kind", list(catalog.LAYERS))
def test_every_layer_type_builds_and_runs(kind):
    features = kind in ("linear", "delayed_linear")  # these take [N] features: the image is flattened first
    first = [{"type": "flatten"}, {"type": kind, "neuron": True}] if features else [{"type": kind}]
    rest = [] if features else [{"type": "flatten"}, {"type": "linear", "neuron": True}]
    cfg = config_from_dict({"data": {"time_steps": T}, "model": {"layers": first + rest}})
    model = build_model(cfg.layer_specs(), (1, 28, 28))
    assert model(torch.rand(T, 2, 1, 28, 28)).spikes.shape == (T, 2, 10)


# Settings a neuron type needs beyond its defaults (alpha's own are beta 0.8 < alpha 0.9).
NEURON_SETTINGS: dict[str, dict] = {}
SPIKES = {"dataset": "synthetic", "encoder": "none", "batch_size": 4,
          "synthetic": {"samples": 4, "inputs": 6, "time_steps": 8, "classes": 2}}  # fmt: skip
IMAGES = {"dataset": "bundled", "train_size": 20, "test_size": 10, "batch_size": 4, "time_steps": 4}
CONV = [{"type": "conv2d", "out_channels": 2, "kernel_size": 4, "stride": 4, "neuron": True}, {"type": "flatten"}]
ONE_STEP = [
    # sconv2dlstm follows conv layers only; a neuron that never fires ends the network (the test below)
    *[(name, {}, SPIKES, []) for name in catalog.NEURONS if name not in ("sconv2dlstm", *catalog.SILENT_NEURONS)],
    ("rleaky", {"all_to_all": False, "V": 0.5}, SPIKES, []),
    ("rsynaptic", {"all_to_all": False, "V": 0.5}, SPIKES, []),
    ("rleaky", {"kernel_size": 3}, IMAGES, CONV),  # a recurrent convolution after the conv layer
    ("rsynaptic", {"kernel_size": 5}, IMAGES, CONV),
    ("sconv2dlstm", {"kernel_size": 3}, IMAGES, CONV),  # the conv layer's neuron; the linear layers' are leaky
    ("sconv2dlstm", {"kernel_size": 5}, IMAGES, CONV),
]


@pytest.mark.parametrize("name,settings,data,first", ONE_STEP)
def test_every_neuron_type_trains_a_step(name, settings, data, first):
    from snnlab.engine import trainer

    neuron = {"type": name, "learn_beta": name != "lapicque", "learn_threshold": True,
              **NEURON_SETTINGS.get(name, {}), **settings}  # fmt: skip
    if name == "sconv2dlstm":  # after the conv layer only: the linear layers after it take leaky neurons
        first = [{**first[0], "neuron": neuron}, *first[1:]]
        neuron = {"type": "leaky"}
    layers = [*first, {"type": "linear", "out_features": 5, "neuron": True}]
    out = {"type": "linear", "out_features": 2 if data is SPIKES else 10, "neuron": True}
    cfg = config_from_dict(
        {"data": data, "model": {"neuron": neuron, "layers": [*layers, out]}, "train": {"device": "cpu", "lr": 0.1}}
    )
    session = Session(cfg)
    assert isinstance(session.model.blocks[0].neuron, neurons.NEURONS[name])
    if first:
        neuron_module = session.model.blocks[0].neuron
        kernel = neuron_module.conv if name == "sconv2dlstm" else neuron_module.recurrent
        assert kernel.kernel_size == (settings["kernel_size"],) * 2
    before = {k: v.clone() for k, v in session.model.state_dict().items()}
    x, y = session.train_split.inputs[:4], session.train_split.labels[:4]
    step = trainer._train_step(session, x, y)
    assert math.isfinite(step.loss_sum)
    changed = {k for k, v in session.model.state_dict().items() if not torch.equal(v, before[k])}
    assert "blocks.0.op.weight" in changed
    # The first layer's: its spikes feed the next layer (the output layer's threshold may reach the loss of
    # membranes through the reset only, and leaky_parallel has none).
    learned = [(k, p) for k, p in session.model.named_parameters() if k.startswith("blocks.0.neuron.")]
    assert learned or name in ("lif", "if")  # SpikingJelly's lif and if have no parameters
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for _, p in learned), learned
    assert cfg.parameter_count() == sum(p.numel() for p in session.model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", catalog.SILENT_NEURONS)
def test_every_neuron_that_never_fires_trains_a_step_as_the_output(name):
    from snnlab.engine import trainer

    layers = [{"type": "linear", "out_features": 5, "neuron": True},
              {"type": "linear", "out_features": 2, "neuron": {"type": name, "learn_beta": True}}]  # fmt: skip
    train = {"device": "cpu", "lr": 0.1, "loss": "ce_mean_membrane", "decoder": "membrane"}
    cfg = config_from_dict({"data": SPIKES, "model": {"layers": layers}, "train": train})
    session = Session(cfg)
    assert isinstance(session.model.blocks[-1].neuron, neurons.NEURONS[name])
    before = {k: v.clone() for k, v in session.model.state_dict().items()}
    step = trainer._train_step(session, session.train_split.inputs[:4], session.train_split.labels[:4])
    assert math.isfinite(step.loss_sum)
    changed = {k for k, v in session.model.state_dict().items() if not torch.equal(v, before[k])}
    assert {"blocks.1.op.weight", "blocks.1.neuron.beta"} <= changed
    assert cfg.parameter_count() == sum(p.numel() for p in session.model.parameters() if p.requires_grad)


def test_every_reset_acts_differently():
    current = torch.tensor([1.5, 0.75, 0.75, 0.0, 1.25]).view(-1, 1, 1)  # spikes at once, then again
    membranes = {}
    for reset in catalog.RESETS:
        with torch.no_grad():
            membranes[reset] = tuple(Leaky(beta=0.5, reset=reset).reference(current)[1].flatten().tolist())
    assert len(set(membranes.values())) == len(catalog.RESETS), membranes


def test_every_optimizer_and_scheduler_is_built():
    model = torch.nn.Linear(2, 2)
    optimizers = [
        make_optimizer(model, TrainConfig(optimizer=name), torch.device("cpu")) for name in catalog.OPTIMIZERS
    ]
    assert len({type(o) for o in optimizers}) == len(catalog.OPTIMIZERS)
    schedulers = [make_scheduler(optimizers[0], TrainConfig(scheduler=name)) for name in catalog.SCHEDULERS]
    assert len({type(s) for s in schedulers}) == len(catalog.SCHEDULERS)


@pytest.mark.parametrize("name", list(catalog.DEVICES))
def test_every_device_is_picked_or_refused_in_words(name):
    try:
        assert isinstance(pick_device(name), torch.device)
    except TrainingError as exc:  # not on this machine
        assert exc.reason is FailureReason.DEVICE


@pytest.mark.parametrize("name", list(catalog.PRECISIONS))
def test_every_precision_is_the_autocast_of_its_dtype(name):
    session = SimpleNamespace(config=SimpleNamespace(train=TrainConfig(precision=name)), device=torch.device("cpu"))
    autocast = Session.autocast(session)
    assert autocast._enabled == (name != "float32")
    if autocast._enabled:
        assert autocast.fast_dtype == getattr(torch, name)
