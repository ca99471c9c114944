"""SpikingJelly's LIF, IF and PLIF: hand traces of every mode, the fused scan against the step loop, PLIF's w,
and the config. (The comparison with SpikingJelly itself is benchmarks/spikingjelly_equivalence.py.)"""

import itertools
import math

import pytest
import torch

from snnlab.config.schema import NeuronConfig
from snnlab.engine import surrogates
from snnlab.engine.models import build_model
from snnlab.engine.neurons import IF, LIF, NEURONS, PLIF

RESETS = [0.0, None, -0.3]


def run(neuron, x, fused=True):
    neuron.fused = fused
    return neuron(torch.tensor(x, dtype=torch.float32).reshape(-1, 1))


def column(t):
    return t.reshape(-1).tolist()


@pytest.mark.parametrize("fused", [True, False])
def test_lif_hard_reset_decay_input_by_hand(fused):
    # h = v + (x - (v - 0))/2: 0.75, 0.875, then 1.9375 fires and resets to 0; 0 + 0.5/2
    spk, v = run(LIF(tau=2.0), [1.5, 1.0, 3.0, 0.5], fused)
    assert column(spk) == [0, 0, 1, 0]
    assert column(v) == [0.75, 0.875, 0.0, 0.25]


@pytest.mark.parametrize("fused", [True, False])
def test_lif_soft_reset_without_decay_input_fires_at_the_threshold(fused):
    # h = v - v/2 + x: exactly 1.0 at the first step, which fires (H(0) = 1) and subtracts 1; then 0 + 0.75
    spk, v = run(LIF(tau=2.0, decay_input=False, v_reset=None), [1.0, 0.75, 0.5], fused)
    assert column(spk) == [1, 0, 0]
    assert column(v) == [0.0, 0.75, 0.875]


@pytest.mark.parametrize("fused", [True, False])
def test_lif_reset_to_a_negative_voltage_starts_there_and_decays_towards_it(fused):
    # v[-1] = -0.3; h = v + (x - (v + 0.3))/2: -0.3 + 1.5 = 1.2 fires, back to -0.3; then -0.3 + 0.5 = 0.2
    spk, v = run(LIF(tau=2.0, v_reset=-0.3), [3.0, 1.0, 0.0], fused)
    assert column(spk) == [1, 0, 0]
    expected = [-0.3, -0.3 + 0.5, 0.2 + (0.0 - 0.5) / 2]
    assert column(v) == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize("fused", [True, False])
def test_if_integrates_without_leak_and_a_tie_fires(fused):
    spk, v = run(IF(v_reset=None), [0.5, 0.5, 0.25, 0.75], fused)  # 0.5, 1.0 fires -> 0, 0.25, 1.0 fires -> 0
    assert column(spk) == [0, 1, 0, 1]
    assert column(v) == [0.5, 0.0, 0.25, 0.0]
    spk, v = run(IF(), [0.999, 0.25], fused)  # hard reset to 0: 0.999 stays, 1.249 fires
    assert column(spk) == [0, 1]
    assert column(v) == [pytest.approx(0.999), 0.0]


def test_the_tie_fires_where_snnlabs_own_spike_does_not():
    atan = surrogates.get("atan")
    x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
    assert atan.spike_at_threshold(x).tolist() == [0, 1, 1]
    assert atan.spike(x).tolist() == [0, 0, 1]
    atan.spike_at_threshold(x).sum().backward()
    assert torch.equal(x.grad, atan.grad(x.detach()))


# Two steps of IF, threshold 1, triangle surrogate (grad max(0, 1 - |z|)), x = [1.5, 0.2], loss = v[1]:
# step 0 fires (z = 0.5, sg = 0.5), step 1 does not (soft: z = -0.3, sg = 0.7; hard: z = -0.8, sg = 0.2).
#   soft, through the reset:  dh1 = 1 - 1*0.7 = 0.3;  dh0 = 0.3 - 0.3*0.5 = 0.15
#   hard, through the reset:  dh1 = 1 + (0 - 0.2)*0.2 = 0.96;  dh0 = 0.96*(1 - 1) + 0.96*(0 - 1.5)*0.5 = -0.72
#   detach_reset: the reset passes no gradient to the spike: dh1 = 1; soft dh0 = 1, hard dh0 = (1 - 1)*1 = 0
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(
    "v_reset, detach, expected",
    [(None, False, [0.15, 0.3]), (None, True, [1.0, 1.0]), (0.0, False, [-0.72, 0.96]), (0.0, True, [0.0, 1.0])],
)
def test_detach_reset_gradient_by_hand(fused, v_reset, detach, expected):
    neuron = IF(v_reset=v_reset, detach_reset=detach, surrogate="triangle", fused=fused)
    x = torch.tensor([[1.5], [0.2]], requires_grad=True)
    spk, v = neuron(x)
    assert column(spk) == [1, 0]
    v[1].sum().backward()
    assert column(x.grad) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("fused", [True, False])
def test_plif_tau_from_w_and_its_gradient(fused):
    # detach_reset: otherwise the reset's spike adds its surrogate term even below threshold
    neuron = PLIF(init_tau=3.0, detach_reset=True, fused=fused)
    assert neuron.w.item() == pytest.approx(-math.log(2.0))
    assert neuron.tau == pytest.approx(3.0)
    q = 1 / 3
    # one step below threshold from v = 0: v = x*q, so dv/dw = x * q*(1 - q)
    spk, v = neuron(torch.tensor([[0.6]]))
    assert v.item() == pytest.approx(0.6 * q)
    v.sum().backward()
    assert neuron.w.grad.item() == pytest.approx(0.6 * q * (1 - q), rel=1e-6)
    # without decay_input, from v = 0 the leak has nothing to act on: no gradient
    flat = PLIF(init_tau=3.0, decay_input=False, detach_reset=True, fused=fused)
    flat(torch.tensor([[0.6]]))[1].sum().backward()
    assert flat.w.grad.item() == 0.0
    # two steps without decay_input: v1 = v0 - v0*q + x1, dv1/dw = -v0 * q*(1 - q)
    flat.w.grad = None
    flat(torch.tensor([[0.6], [0.1]]))[1][1].sum().backward()
    assert flat.w.grad.item() == pytest.approx(-0.6 * q * (1 - q), rel=1e-6)


def test_plif_state_dict_is_spikingjellys():
    neuron = PLIF()
    assert list(neuron.state_dict()) == ["w"]
    neuron.load_state_dict({"w": torch.tensor(0.25)})
    assert neuron.tau == pytest.approx(1 / torch.sigmoid(torch.tensor(0.25)).item())
    assert list(LIF().state_dict()) == [] and list(IF().state_dict()) == []


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="tau"):
        LIF(tau=1.0)
    with pytest.raises(ValueError, match="init_tau"):
        PLIF(init_tau=0.5)
    with pytest.raises(TypeError, match="Surrogate"):
        IF(surrogate=lambda x: (x >= 0).float())


def make(kind, decay_input, v_reset, detach, surrogate):
    common = dict(v_reset=v_reset, detach_reset=detach, surrogate=surrogate)
    if kind == "if":
        return IF(**common)
    if kind == "lif":
        return LIF(tau=1.7, decay_input=decay_input, **common)
    return PLIF(init_tau=1.7, decay_input=decay_input, **common)


CASES = [
    case
    for case in itertools.product(
        ["lif", "if", "plif"], [True, False], RESETS, [False, True], ["atan", "sj_sigmoid", "triangle"]
    )
    if case[0] != "if" or case[1]  # IF has no decay_input
]


@pytest.mark.parametrize("kind, decay_input, v_reset, detach, surrogate", CASES)
def test_fused_equals_reference(kind, decay_input, v_reset, detach, surrogate):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(12, 3, 5, generator=g) * 1.5 + 0.6
    w_spk, w_v = torch.randn(2, *x.shape, generator=g)
    neuron = make(kind, decay_input, v_reset, detach, surrogate)
    results = []
    for fused in (True, False):
        neuron.fused = fused
        neuron.zero_grad()
        xi = x.clone().requires_grad_()
        spk, v = neuron(xi)
        ((spk * w_spk).sum() + (v * w_v).sum()).backward()
        w_grad = neuron.w.grad.clone() if kind == "plif" else None
        results.append((spk, v, xi.grad, w_grad))
    (s1, v1, gx1, gw1), (s2, v2, gx2, gw2) = results
    assert 0 < s1.mean() < 1
    assert torch.equal(s1, s2) and torch.equal(v1, v2)
    torch.testing.assert_close(gx1, gx2, rtol=1e-5, atol=1e-6)
    if kind == "plif":
        torch.testing.assert_close(gw1, gw2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["lif", "if", "plif"])
@pytest.mark.parametrize("v_reset", RESETS)
def test_static_input_and_step_agree_with_the_sequence(kind, v_reset):
    neuron = make(kind, True, v_reset, False, "atan")
    current = torch.rand(3, 4) * 1.2
    for fused in (True, False):
        neuron.fused = fused
        neuron.zero_grad()
        c_static = current.clone().requires_grad_()
        spk_s, v_s = neuron(c_static, time_steps=6)
        (spk_s.sum() + v_s.sum()).backward()
        c_seq = current.clone().expand(6, 3, 4).clone().requires_grad_()
        spk, v = neuron(c_seq)
        (spk.sum() + v.sum()).backward()
        assert torch.equal(spk_s, spk) and torch.equal(v_s, v)
        torch.testing.assert_close(c_static.grad, c_seq.grad.sum(0), rtol=1e-5, atol=1e-6)
    state, steps = None, []
    for _ in range(6):
        s, state = neuron.step(current, state)
        steps.append(s)
    assert torch.equal(torch.stack(steps), spk) and torch.equal(state.v, v[-1])


def test_config_builds_spikingjelly_neurons():
    for kind, cls in (("lif", LIF), ("if", IF), ("plif", PLIF)):
        assert NEURONS[kind] is cls
        cfg = NeuronConfig(type=kind, tau=4.0, decay_input=False, v_reset=None, threshold=0.5, detach_reset=True)
        model = build_model([{"type": "linear", "out_features": 4, "neuron": cfg.kwargs()}], (3,))
        neuron = model.blocks[0].neuron
        assert isinstance(neuron, cls)
        assert (neuron.v_threshold, neuron.v_reset, neuron.detach_reset) == (0.5, None, True)
        if kind != "if":
            assert neuron.decay_input is False and neuron.tau == pytest.approx(4.0)
        out = model(torch.rand(5, 2, 3))
        assert out.spikes.shape == (5, 2, 4)
    assert NeuronConfig(type="lif").kwargs()["v_reset"] == 0.0
    with pytest.raises(ValueError, match="neuron type plif has no graded_spikes_factor option"):
        NeuronConfig(type="plif", graded_spikes_factor=2.0)
    with pytest.raises(ValueError, match="greater than 1"):
        NeuronConfig(type="lif", tau=0.5)
