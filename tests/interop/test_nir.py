"""NIR: snnlab -> NIR -> snnlab gives the same network, a file snnTorch wrote gives snnTorch's outputs, a NIR node's
Euler equations are what the imported neuron computes, and what NIR cannot say is refused with the layer named."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

from snnlab.config import config_from_dict  # noqa: E402
from snnlab.engine.models import build_model  # noqa: E402
from snnlab.interop.nirexport import to_nir  # noqa: E402
from snnlab.interop.nirgraph import SNNTORCH_DT, NIRError  # noqa: E402
from snnlab.interop.nirimport import from_nir  # noqa: E402

FIXTURES = Path(__file__).parent.parent / "fixtures"
ZERO = {"reset": "zero", "reset_delay": False}  # NIR's reset: to v_reset, in the step that fires


def net_of(layers, dataset="bundled", neuron=None, train=None):
    """(config, model with weights drawn from seed 0 and made larger so that every layer spikes)."""
    data = {"dataset": dataset}
    if dataset == "synthetic":
        data.update(encoder="none", synthetic={"inputs": 12, "classes": 3})
    model = {"neuron": {"type": "leaky", **ZERO} if neuron is None else neuron, "layers": layers}
    config = config_from_dict({"data": data, "model": model, "train": train or {}})
    torch.manual_seed(0)
    shape = (12,) if dataset == "synthetic" else (1, 28, 28)
    model = build_model(config.layer_specs(), shape)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(4.0)
    return config, model.eval()


def through_nir(config, model, tmp_path, dt=SNNTORCH_DT):
    """Export to a file, read it back, build the imported network: (imported model, Imported)."""
    graph, _ = to_nir(model, config.layer_specs(), dt)
    nir.write(tmp_path / "net.nir", graph)
    imported = from_nir(nir.read(tmp_path / "net.nir"), dt)
    if imported.layers[0]["type"] == "linear" and config.data.dataset != "synthetic":
        imported.flatten_first()
    saved = config.to_dict()
    back = config_from_dict({"data": saved["data"], "train": saved["train"], "model": {"layers": imported.layers}})
    rebuilt = build_model(back.layer_specs(), model.input_shape)
    rebuilt.load_state_dict(imported.state_dict())
    return rebuilt.eval(), imported


def assert_same_outputs(a, b, x):
    with torch.no_grad():
        out_a, out_b = a(x, record=True), b(x, record=True)
    assert list(out_a.layers) == list(out_b.layers)
    for name in out_a.layers:
        (spk_a, mem_a), (spk_b, mem_b) = out_a.layers[name], out_b.layers[name]
        assert torch.equal(spk_a, spk_b), name
        # The same weights through the same products on the same machine: bitwise.
        assert torch.equal(mem_a, mem_b), (name, (mem_a - mem_b).abs().max())
        assert 0 < spk_a.float().mean() < 1 or name == list(out_a.layers)[-1] and spk_a.sum() == 0, name
    return out_a


def images(T=6, B=4, seed=1):
    return torch.rand(T, B, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


# --- round trips ------------------------------------------------------------------------------------------


def test_leaky_network_round_trips_exactly_with_per_neuron_beta_and_threshold(tmp_path):
    betas = np.linspace(0.5, 0.97, 20).round(3).tolist()
    thresholds = np.linspace(0.5, 1.5, 20).round(3).tolist()
    config, model = net_of([
        {"type": "flatten"},
        {"type": "linear", "out_features": 20, "neuron": {"beta": betas, "threshold": thresholds, "learn_beta": True}},
        {"type": "linear", "out_features": 10, "bias": False, "neuron": True},
    ])  # fmt: skip
    rebuilt, imported = through_nir(config, model, tmp_path)
    assert_same_outputs(model, rebuilt, images())
    hidden = imported.layers[1]["neuron"]
    assert hidden["type"] == "leaky" and hidden["beta"] == pytest.approx(betas) and hidden["learn_beta"] is True
    assert hidden["threshold"] == pytest.approx(thresholds) and imported.layers[2]["bias"] is False
    # the decay read back is the float32 beta itself, not a neighbour
    assert torch.equal(rebuilt.blocks[1].neuron.beta, model.blocks[1].neuron.beta)


def test_synaptic_network_round_trips_exactly(tmp_path):
    synaptic = {"type": "synaptic", "alpha": 0.85, "beta": 0.6, "threshold": 0.7, "surrogate": "fast_sigmoid", **ZERO}
    config, model = net_of([
        {"type": "flatten"},
        {"type": "linear", "out_features": 16, "neuron": synaptic},
        {"type": "linear", "out_features": 10, "neuron": {**synaptic, "beta": [0.5] * 5 + [0.9] * 5}},
    ])  # fmt: skip
    rebuilt, imported = through_nir(config, model, tmp_path)
    assert_same_outputs(model, rebuilt, images())
    assert imported.layers[1]["neuron"]["surrogate"] == "fast_sigmoid"  # kept in snnlab's metadata of the node


def test_neurons_without_a_reset_travel_as_an_integrator_and_a_threshold(tmp_path):
    config, model = net_of([
        {"type": "flatten"},
        {"type": "linear", "out_features": 12, "neuron": {"reset": "none", "threshold": [0.5] * 6 + [1.0] * 6}},
        {"type": "linear", "out_features": 10, "neuron": {"type": "synaptic", "reset": "none", "alpha": 0.7}},
    ])  # fmt: skip
    graph, _ = to_nir(model, config.layer_specs())
    assert {type(n).__name__ for n in graph.nodes.values()} >= {"LI", "CubaLI", "Threshold"}
    rebuilt, imported = through_nir(config, model, tmp_path)
    assert_same_outputs(model, rebuilt, images())
    assert [layer["neuron"]["reset"] for layer in imported.layers[1:]] == ["none", "none"]


def test_recurrent_neurons_round_trip_as_snntorchs_recurrent_subgraph(tmp_path):
    config, model = net_of([
        {"type": "flatten"},
        {"type": "linear", "out_features": 12, "neuron": {"type": "rleaky", "beta": [0.8] * 6 + [0.95] * 6}},
        {"type": "linear", "out_features": 10, "neuron": {"type": "rsynaptic", "all_to_all": False, "V": -0.5}},
    ])  # fmt: skip
    graph, _ = to_nir(model, config.layer_specs())
    # as nirtorch writes snnTorch's RLeaky: the loop of the LIF and its w_rec beside the chain
    assert {("fc1_lif", "fc1_w_rec"), ("fc1_w_rec", "fc1_lif"), ("fc1_lif", "fc2")} <= set(graph.edges)
    rebuilt, imported = through_nir(config, model, tmp_path)
    assert_same_outputs(model, rebuilt, images())
    neurons = [layer["neuron"] for layer in imported.layers[1:]]
    assert [(n["type"], n["all_to_all"]) for n in neurons] == [("rleaky", True), ("rsynaptic", False)]
    assert neurons[1]["V"] == -0.5


def test_lapicque_exports_its_own_constants_and_time_step(tmp_path):
    lapicque = {"type": "lapicque", "R": 2.0, "C": 0.02, "time_step": 5e-3, **ZERO}
    config, model = net_of([{"type": "flatten"}, {"type": "linear", "out_features": 10, "neuron": lapicque}])
    graph, _ = to_nir(model, config.layer_specs())  # dt: the neuron's time step
    assert graph.metadata["dt"] == 5e-3
    np.testing.assert_allclose(graph.nodes["fc1_lif"].tau, 2.0 * 0.02)  # tau = R*C, r = R
    np.testing.assert_allclose(graph.nodes["fc1_lif"].r, 2.0)
    rebuilt, imported = through_nir(config, model, tmp_path, dt=5e-3)
    assert_same_outputs(model, rebuilt, images())
    assert imported.layers[1]["neuron"]["C"] == pytest.approx(0.02)
    with pytest.raises(NIRError, match="lapicque neurons step by time_step 0.005, the file by dt 0.0001"):
        to_nir(model, config.layer_specs(), SNNTORCH_DT)


def test_conv_network_with_average_pooling_round_trips_exactly(tmp_path):
    config, model = net_of([
        {"type": "conv2d", "out_channels": 3, "kernel_size": 5, "stride": 2, "padding": 1, "neuron": True},
        {"type": "avgpool", "kernel_size": 2},
        {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "bias": False, "neuron": {"threshold": 0.5}},
        {"type": "flatten"},
        {"type": "dropout", "p": 0.3},
        {"type": "linear", "out_features": 10, "neuron": True},
    ])  # fmt: skip
    graph, dropped = to_nir(model, config.layer_specs(), SNNTORCH_DT)
    assert [type(n).__name__ for n in graph.nodes.values()] == [
        "Input", "Conv2d", "LIF", "AvgPool2d", "Conv2d", "LIF", "Flatten", "Affine", "LIF", "Output"]  # fmt: skip
    assert any("dropout1" in line for line in dropped)
    rebuilt, imported = through_nir(config, model, tmp_path)
    # dropout is left out of the file: compare in eval mode, where it is the identity
    without_dropout = [layer["type"] for layer in imported.layers]
    assert without_dropout == ["conv2d", "avgpool", "conv2d", "flatten", "linear"]
    with torch.no_grad():
        a, b = model(images(), record=True), rebuilt(images(), record=True)
    for name in a.layers:
        assert torch.equal(a.layers[name][0], b.layers[name][0]) and torch.equal(a.layers[name][1], b.layers[name][1])
    assert imported.layers[2]["bias"] is False


def test_spikingjelly_neurons_and_a_leaky_readout_round_trip(tmp_path):
    config, model = net_of([
        {"type": "linear", "out_features": 8, "neuron": {"type": "if", "threshold": 0.8, "v_reset": -0.2}},
        {"type": "linear", "out_features": 6, "neuron": {"type": "lif", "tau": 3.0, "decay_input": False,
                                                          "threshold": 0.6, "v_reset": 0.1}},
        {"type": "linear", "out_features": 5, "neuron": {"type": "lif", "tau": 2.5, "threshold": 0.1}},
        {"type": "linear", "out_features": 4, "neuron": {"type": "plif", "tau": 4.0, "threshold": 0.1}},
        {"type": "linear", "out_features": 3, "neuron": {"type": "expon", "beta": 0.9}},
    ], dataset="synthetic", neuron={}, train={"decoder": "membrane"})  # fmt: skip
    rebuilt, imported = through_nir(config, model, tmp_path, dt=1e-3)
    x = (torch.rand(10, 4, 12, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    assert_same_outputs(model, rebuilt, x)
    kinds = [(layer["neuron"]["type"], layer["neuron"].get("decay_input")) for layer in imported.layers]
    assert kinds == [("if", None), ("lif", False), ("lif", True), ("plif", True), ("expon", None)]
    assert imported.layers[1]["neuron"]["tau"] == 3.0 and imported.layers[0]["neuron"]["v_reset"] == pytest.approx(-0.2)


# --- what other tools write ---------------------------------------------------------------------------------


def fixture_network():
    imported = from_nir(nir.read(FIXTURES / "snntorch_export.nir"), SNNTORCH_DT)
    config = config_from_dict({"model": {"layers": imported.layers}})
    model = build_model(config.layer_specs(), imported.input_shape)
    model.load_state_dict(imported.state_dict())
    return model.eval(), imported


def test_a_file_snntorch_wrote_gives_snntorchs_outputs():
    """tests/fixtures/snntorch_export.nir: snnTorch 1.0.0's export_to_nir of a conv net (make_snntorch_nir.py);
    the .npz holds snnTorch's own forward pass of that network on a fixed input."""
    model, imported = fixture_network()
    assert imported.input_shape == (1, 28, 28) and not imported.notes
    kinds = [(layer["type"], layer.get("neuron", {}).get("type")) for layer in imported.layers]
    assert kinds == [("conv2d", "leaky"), ("avgpool", None), ("flatten", None), ("linear", "leaky"),
                     ("linear", "synaptic")]  # fmt: skip
    expected = np.load(FIXTURES / "snntorch_export_expected.npz")
    with torch.no_grad():
        out = model(torch.from_numpy(expected["input"].astype(np.float32)))
    assert out.spikes.sum() > 0 and (out.spikes == 0).any()
    assert np.array_equal(out.spikes.numpy(), expected["spikes"])
    np.testing.assert_allclose(out.membrane.numpy(), expected["membrane"], rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("snntorch") is None, reason="snnTorch is not installed")
def test_snntorchs_export_of_a_fresh_network_gives_its_forward_pass(tmp_path):
    sys.path.insert(0, str(FIXTURES))
    try:
        import make_snntorch_nir as maker
    finally:
        sys.path.remove(str(FIXTURES))
    from snntorch.export_nir import export_to_nir

    net, x = maker.snntorch_reference()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))  # not the fixture's weights
    graph = export_to_nir(net, torch.zeros(1, 1, 28, 28), ignore_dims=[0])
    nir.write(tmp_path / "fresh.nir", graph)
    imported = from_nir(nir.read(tmp_path / "fresh.nir"), SNNTORCH_DT)
    model = build_model(config_from_dict({"model": {"layers": imported.layers}}).layer_specs(), (1, 28, 28))
    model.load_state_dict(imported.state_dict())
    spikes, membrane = maker.snntorch_forward(net, x)
    with torch.no_grad():
        out = model.eval()(x)
    assert torch.equal(out.spikes, spikes)
    torch.testing.assert_close(out.membrane, membrane, rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("snntorch") is None, reason="snnTorch is not installed")
def test_snntorchs_export_of_a_recurrent_leaky_layer_gives_its_forward_pass(tmp_path):
    """nirtorch writes RLeaky flat: its LIF and w_rec are two nodes in a loop beside the chain."""
    import snntorch as snn
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    zero = {"reset_mechanism": "zero", "reset_delay": False, "init_hidden": True}
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 8),
        snn.RLeaky(beta=torch.full((8,), 0.85), threshold=torch.full((8,), 0.5), linear_features=8, **zero),
        torch.nn.Linear(8, 5),
        snn.Synaptic(alpha=torch.full((5,), 0.8), beta=torch.full((5,), 0.7), threshold=torch.full((5,), 0.4),
                     output=True, **zero),
    )  # fmt: skip
    with torch.no_grad():
        net[0].weight.mul_(3)
    nir.write(tmp_path / "rnn.nir", export_to_nir(net, torch.zeros(1, 12), ignore_dims=[0]))
    imported = from_nir(nir.read(tmp_path / "rnn.nir", type_check=False), SNNTORCH_DT)
    assert imported.layers[0]["neuron"]["type"] == "rleaky"
    data = {"dataset": "synthetic", "encoder": "none", "synthetic": {"inputs": 12, "classes": 5}}
    model = build_model(config_from_dict({"data": data, "model": {"layers": imported.layers}}).layer_specs(), (12,))
    model.load_state_dict(imported.state_dict())
    x = (torch.rand(15, 3, 12, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    utils.reset(net)
    with torch.no_grad():
        expected = torch.stack([net(x[t])[0] for t in range(15)])
        out = model.eval()(x, record=True)
    assert 0 < out.layers["fc1"][0].mean() < 1
    assert torch.equal(out.spikes, expected)


def euler_lif(current, tau, r, threshold, dt):
    """NIR's LIF by forward Euler, written out: v += dt/tau*(-v + r*I); spike where v > threshold, then v = 0."""
    v = np.zeros(current.shape[1:])
    spikes, membranes = [], []
    for i in current:
        v = v + dt / tau * (-v + r * i)
        spike = v > threshold
        v = np.where(spike, 0.0, v)
        spikes.append(spike)
        membranes.append(v)
    return np.array(spikes), np.array(membranes)


def test_a_norse_style_lif_with_unit_resistance_integrates_nirs_equation():
    """Norse writes r = 1, so the input is scaled by dt/tau; the import folds that into the weights."""
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(5, 4)).astype(np.float32)
    tau = np.array([2e-3, 3e-3, 5e-3, 1e-2, 2e-2])
    lif = nir.LIF(tau=tau, r=np.ones(5), v_leak=np.zeros(5), v_threshold=np.full(5, 0.3), v_reset=np.zeros(5))
    graph = nir.NIRGraph.from_list(nir.Affine(weight=weight, bias=np.zeros(5, np.float32)), lif)
    imported = from_nir(graph, dt=1e-3)
    assert "input scale" in imported.notes[0]
    model = build_model(config_from_dict({"data": {"dataset": "synthetic", "encoder": "none", "synthetic": {
        "inputs": 4, "classes": 5}}, "model": {"layers": imported.layers}}).layer_specs(), (4,))  # fmt: skip
    model.load_state_dict(imported.state_dict())
    x = rng.uniform(0, 3, size=(30, 2, 4)).astype(np.float32)
    spikes, membrane = euler_lif(np.einsum("tbi,ni->tbn", x.astype(np.float64), weight), tau, 1.0, 0.3, 1e-3)
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(x))
    assert 0 < spikes.mean() < 1
    assert np.array_equal(out.spikes.numpy() > 0, spikes)
    np.testing.assert_allclose(out.membrane.numpy(), membrane, rtol=1e-5, atol=1e-6)


def test_a_recurrent_lif_with_unit_resistance_feeds_back_through_nirs_equation():
    """The input scale dt/tau of an r = 1 node applies to its fed-back spikes too."""
    rng = np.random.default_rng(1)
    weight, w_rec = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 5)).astype(np.float32)
    tau, dt = np.array([2e-3, 3e-3, 5e-3, 1e-2, 2e-2]), 1e-3
    nodes = {
        "input": nir.Input(input_type={"input": np.array([4])}),
        "dense": nir.Affine(weight=weight, bias=np.zeros(5, np.float32)),
        "lif": nir.LIF(tau=tau, r=np.ones(5), v_leak=np.zeros(5), v_threshold=np.full(5, 0.3), v_reset=np.zeros(5)),
        "w_rec": nir.Linear(weight=w_rec),
        "output": nir.Output(output_type={"output": np.array([5])}),
    }
    edges = [("input", "dense"), ("dense", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")]
    imported = from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt)
    assert imported.layers[0]["neuron"]["type"] == "rleaky"
    data = {"dataset": "synthetic", "encoder": "none", "synthetic": {"inputs": 4, "classes": 5}}
    model = build_model(config_from_dict({"data": data, "model": {"layers": imported.layers}}).layer_specs(), (4,))
    model.load_state_dict(imported.state_dict())
    x = rng.uniform(0, 3, size=(30, 2, 4)).astype(np.float32)
    v, spike, spikes = np.zeros((2, 5)), np.zeros((2, 5)), []
    for step in x.astype(np.float64):  # NIR's Euler step, the previous step's spikes fed back through w_rec
        v = v + dt / tau * (-v + step @ weight.T + spike @ w_rec.T)
        spike = (v > 0.3).astype(np.float64)
        v = np.where(spike > 0, 0.0, v)
        spikes.append(spike)
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(x))
    assert 0 < np.mean(spikes) < 1
    assert np.array_equal(out.spikes.numpy(), np.array(spikes))


def test_sum_pooling_is_read_as_average_pooling_times_its_window():
    conv = nir.Conv2d(input_shape=(6, 6), weight=np.ones((2, 1, 3, 3), np.float32), stride=1, padding=0, dilation=1,
                      groups=1, bias=np.zeros(2, np.float32))  # fmt: skip
    lif = nir.LIF(tau=np.full((2, 4, 4), 1e-3), r=np.full((2, 4, 4), 10.0), v_leak=np.zeros((2, 4, 4)),
                  v_threshold=np.ones((2, 4, 4)), v_reset=np.zeros((2, 4, 4)))  # fmt: skip
    dense = nir.Affine(weight=np.ones((3, 8), np.float32), bias=np.zeros(3, np.float32))
    out = nir.LIF(tau=np.full(3, 1e-3), r=np.full(3, 10.0), v_leak=np.zeros(3), v_threshold=np.ones(3))
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([1, 6, 6])}),
        conv,
        lif,
        pool,
        nir.Flatten(input_type={"input": np.array([2, 2, 2])}, start_dim=0),
        dense,
        out,
    )
    imported = from_nir(graph, dt=1e-4)
    assert [layer["type"] for layer in imported.layers] == ["conv2d", "avgpool", "flatten", "linear"]
    assert np.all(imported.tensors[3]["op.weight"] == 4.0)  # the 2x2 window's sum folded into the weights


# --- refusals ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            {"type": "linear", "out_features": 10, "neuron": {"reset": "subtract"}},
            "model.layers.1 (fc1) leaky neuron: cannot export reset subtract: NIR's LIF sets the membrane to v_reset",
        ),
        (
            {"type": "linear", "out_features": 10, "neuron": {"reset": "zero"}},
            "model.layers.1 (fc1) leaky neuron: cannot export reset_delay: true",
        ),
        (
            {"type": "linear", "out_features": 10, "neuron": {"reset": "none", "inhibition": True}},
            "model.layers.1 (fc1) leaky neuron: cannot export inhibition: NIR has no winner-take-all spiking",
        ),
        (
            {"type": "linear", "out_features": 10, "neuron": {**ZERO, "graded_spikes_factor": 2.0}},
            "cannot export graded_spikes_factor: NIR has no graded spikes",
        ),
        (
            {"type": "linear", "out_features": 10, "neuron": {"type": "alpha"}},
            "model.layers.1 (fc1) alpha neuron: cannot export it: its two synaptic currents",
        ),
        (
            {"type": "linear", "out_features": 10, "neuron": {"type": "rleaky"}},
            "model.layers.1 (fc1) rleaky neuron: cannot export reset subtract",
        ),
        (
            {"type": "linear", "out_features": 10, "neuron": {"type": "if", "v_reset": None}},
            "cannot export the soft reset (v_reset: null subtracts the threshold)",
        ),
    ],
)
def test_export_refuses_what_nir_cannot_say_naming_the_layer(layer, message):
    config, model = net_of([{"type": "flatten"}, layer], neuron={})  # snnlab's default neuron: subtract, delayed
    with pytest.raises(NIRError) as err:
        to_nir(model, config.layer_specs(), SNNTORCH_DT)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_export_refuses_max_pooling():
    config, model = net_of([{"type": "conv2d", "out_channels": 2, "neuron": True}, {"type": "maxpool"},
                            {"type": "flatten"}, {"type": "linear", "out_features": 10, "neuron": True}])  # fmt: skip
    with pytest.raises(NIRError, match=r"model.layers.1 \(maxpool1\): cannot export a maxpool layer: NIR has no max"):
        to_nir(model, config.layer_specs(), SNNTORCH_DT)


def _lif(n, **over):
    values = {"tau": np.full(n, 1e-3), "r": np.full(n, 10.0), "v_leak": np.zeros(n), "v_threshold": np.ones(n),
              "v_reset": np.zeros(n), **over}  # fmt: skip
    return nir.LIF(**values)


def _dense(n_out, n_in):
    return nir.Affine(weight=np.ones((n_out, n_in), np.float32), bias=np.zeros(n_out, np.float32))


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        (
            lambda: nir.NIRGraph.from_list(_dense(3, 4), _lif(3), nir.Threshold(threshold=np.ones(3))),
            "node threshold (Threshold): snnlab has no layer for NIR's Threshold",
        ),
        (
            lambda: nir.NIRGraph.from_list(_dense(3, 4), _lif(3, v_leak=np.full(3, 0.5))),
            "node lif (LIF): v_leak 0.5 differs from v_reset 0: snnlab's neurons leak towards the value they reset to",
        ),
        (
            lambda: nir.NIRGraph.from_list(
                _dense(3, 4),
                nir.CubaLIF(
                    tau_syn=np.full(3, 1e-3),
                    tau_mem=np.full(3, 1e-3),
                    r=np.full(3, 10.0),
                    v_leak=np.ones(3),
                    v_threshold=np.ones(3),
                ),
            ),
            "snnlab's synaptic neuron leaks to 0 and resets to 0",
        ),
        (lambda: nir.NIRGraph.from_list(_dense(3, 4)), "the graph ends in Affine (node affine): snnlab's output layer"),
        (
            lambda: nir.NIRGraph(
                nodes={
                    "input": nir.Input(input_type={"input": np.array([4])}),
                    "a": _dense(3, 4),
                    "b": _dense(3, 4),
                    "lif": _lif(3),
                    "output": nir.Output(output_type={"output": np.array([3])}),
                },
                edges=[("input", "a"), ("input", "b"), ("a", "lif"), ("b", "lif"), ("lif", "output")],
            ),
            "node input has 2 successors (a, b): snnlab reads feed-forward chains only",
        ),
        (
            lambda: nir.NIRGraph(
                nodes={
                    "input": nir.Input(input_type={"input": np.array([3])}),
                    "a": _dense(3, 3),
                    "lif": _lif(3),
                    "rec": _dense(3, 3),
                    "output": nir.Output(output_type={"output": np.array([3])}),
                },
                # rec feeds lif back but also the output: not a recurrent layer's w_rec
                edges=[("input", "a"), ("a", "lif"), ("lif", "rec"), ("rec", "lif"), ("rec", "output")],
            ),
            "node rec has 2 successors (lif, output): snnlab reads feed-forward chains only",
        ),
    ],
)
def test_import_refuses_what_snnlab_cannot_build_naming_the_node(graph, message):
    with pytest.raises(NIRError) as err:
        from_nir(graph(), SNNTORCH_DT)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_snnlab_metadata_records_dt_and_the_training_settings(tmp_path):
    config, model = net_of([{"type": "flatten"}, {"type": "linear", "out_features": 10, "neuron": {
        "surrogate": "sigmoid", "surrogate_params": {"slope": 5.0}}}])  # fmt: skip
    graph, dropped = to_nir(model, config.layer_specs(), 2e-4)
    lif = graph.nodes["fc1_lif"]
    assert json.loads(lif.metadata["snnlab"])["surrogate_params"] == {"slope": 5.0}
    # tau = dt/(1 - beta) with the float32 beta the neuron holds: snnTorch's reading
    np.testing.assert_allclose(lif.tau, 2e-4 / (1 - np.float64(np.float32(0.9))), rtol=1e-12)
    np.testing.assert_allclose(lif.r, lif.tau / 2e-4)  # r = tau/dt: the input lands unscaled
    assert dropped == ["fc1: surrogate sigmoid (NIR has no gradients; kept in snnlab's metadata)"]


def test_a_graph_traced_with_a_batch_axis_loses_it(tmp_path):
    """snnTorch without ignore_dims, and Norse, write the input node with the batch axis of their sample data."""
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 4])}), "dense": _dense(3, 4), "lif": _lif(3),
             "output": nir.Output(output_type={"output": np.array([1, 3])})}  # fmt: skip
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "dense"), ("dense", "lif"), ("lif", "output")], type_check=False)
    nir.write(tmp_path / "batched.nir", graph)
    imported = from_nir(nir.read(tmp_path / "batched.nir", type_check=False), 1e-4)
    assert imported.input_shape == (4,) and imported.layers[0]["out_features"] == 3
