"""BrainPy's neurons (Expon, BrainPyLIF), the time-averaged cross-entropy and the named initialisers, against
closed forms, hand traces and BrainPy's own numbers."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn

from snnlab.engine import inits, losses
from snnlab.engine.neurons import BrainPyLIF, Expon

# --- Expon: the readout that never fires ----------------------------------------------------------------


@pytest.mark.parametrize("fused", [True, False])
def test_expon_answers_an_impulse_with_a_geometric_decay_and_never_fires(fused):
    current = torch.zeros(12, 1, 3)
    current[2] = torch.tensor([1.0, -2.0, 0.5])  # an impulse at step 2
    beta = torch.tensor([0.5, 0.9, 0.25])
    spikes, g = Expon(beta, fused=fused)(current)
    steps = torch.arange(12).view(-1, 1, 1)
    expected = torch.where(steps >= 2, current[2] * beta ** (steps - 2).clamp(min=0), torch.zeros(()))
    torch.testing.assert_close(g, expected, rtol=1e-6, atol=0)
    assert not spikes.any() and spikes.shape == g.shape


def test_expon_sums_a_constant_input_towards_its_fixed_point():
    beta = 0.9
    g = Expon(beta)(torch.ones(200, 2, 1))[1]
    t = torch.arange(1, 201, dtype=torch.float32)
    torch.testing.assert_close(g[:, 0, 0], (1 - beta**t) / (1 - beta))  # 1 + beta + ... + beta^(t-1)


def test_expon_fused_scan_is_its_step_loop_value_for_value_and_gradient_for_gradient():
    torch.manual_seed(0)
    current = torch.randn(40, 3, 5, requires_grad=True)
    weights = torch.randn(40, 3, 5)
    results = []
    for fused in (True, False):
        neuron = Expon([0.3, 0.5, 0.7, 0.9, 1.0], learn_beta=True, fused=fused)
        g = neuron(current)[1]
        (g * weights).sum().backward()
        results.append((g.detach(), current.grad.clone(), neuron.beta.grad.clone()))
        current.grad = None
    (g_f, dx_f, db_f), (g_r, dx_r, db_r) = results
    assert torch.equal(g_f, g_r)  # an elementwise scan: the same arithmetic in the same order
    torch.testing.assert_close(dx_f, dx_r, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(db_f, db_r, rtol=1e-5, atol=1e-5)


def test_expon_integrates_a_static_input_as_the_same_input_repeated():
    current = torch.randn(4, 6, requires_grad=True)
    g_static = Expon(0.8)(current, time_steps=7)[1]
    repeated = current.detach().expand(7, 4, 6).clone().requires_grad_()
    g_repeated = Expon(0.8)(repeated)[1]
    torch.testing.assert_close(g_static, g_repeated)
    g_static.sum().backward()
    g_repeated.sum().backward()
    torch.testing.assert_close(current.grad, repeated.grad.sum(0))


# --- BrainPyLIF: BrainPy's LIF behind an Expon synapse ---------------------------------------------------

_TRACE_INPUT = [[0.0, 3.0], [2.5, 0.0], [0.0, 0.0], [4.0, 1.5], [0.0, 0.0], [0.0, -1.0], [3.0, 0.0], [0.0, 2.0],
                [0.0, 0.0], [1.0, 0.0]]  # fmt: skip
# brainpy.state 0.1.0 (BrainPy 2.8.2, brainstate 0.5.4, braintools 0.3.0): Expon(tau 10 ms) into LIF(tau 20 ms,
# V_th 1, V_rest = V_reset = 0, ReluGrad()), dt 1 ms, run on _TRACE_INPUT; the gradient is that of
# sum_t (t+1) * (spikes[t] @ W) + 0.5 * sum_t V[t] with W below, with respect to the input.
_BRAINPY = {
    "subtract": {  # spk_reset="soft"
        "V": [[0.0, 0.14631173], [0.12192644, 0.27156436], [0.22630362, 0.37810993], [0.51017392, 0.54121554],
              [0.75213552, 0.67908996], [0.95690304, 0.74583727], [1.27501869, 0.79982567],
              [0.59167641, 0.94012296], [0.86148018, 1.05651474], [1.13847470, 0.20056123]],
        "spikes": [[0, 0]] * 6 + [[1, 0], [0, 0], [0, 1], [1, 0]],
        "grad": [[1.12847924, 1.93083441], [1.01694846, 1.79497755], [0.91021621, 1.64359200],
                 [0.80390239, 1.46902788], [0.69592583, 1.26744258], [0.57998258, 1.03598905],
                 [0.45382029, 0.77870107], [0.32006603, 0.50889105], [0.19021568, 0.25096399],
                 [0.07480579, 0.05666420]],
    },
    "zero": {  # spk_reset="hard"
        "V": [[0.0, 0.14631173], [0.12192644, 0.27156436], [0.22630362, 0.37810993], [0.51017392, 0.54121554],
              [0.75213552, 0.67908996], [0.95690304, 0.74583727], [1.27501869, 0.79982567],
              [0.33007053, 0.94012296], [0.61263293, 1.05651474], [0.90176392, 0.14680274]],
        "spikes": [[0, 0]] * 6 + [[1, 0], [0, 0], [0, 1], [0, 0]],
        "grad": [[1.22352564, 2.25692606], [1.09000063, 2.05049276], [0.95732081, 1.82784772],
                 [0.82696617, 1.58824837], [0.70072860, 1.33272827], [0.57708144, 1.06131506],
                 [0.45282722, 0.77734905], [0.32527202, 0.49437979], [0.19160526, 0.23650412],
                 [0.07716073, 0.04801215]],
    },
}  # fmt: skip


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_brainpy_lif_gives_brainpys_membrane_spikes_and_gradient(reset):
    current = torch.tensor(_TRACE_INPUT).unsqueeze(1).requires_grad_()  # [T, 1, 2]
    neuron = BrainPyLIF(alpha=math.exp(-0.1), beta=math.exp(-0.05), threshold=1.0, reset=reset, surrogate="relu_grad")
    spikes, _, mem = neuron(current)
    peer = _BRAINPY[reset]
    torch.testing.assert_close(mem[:, 0], torch.tensor(peer["V"]), rtol=1e-5, atol=1e-6)
    assert torch.equal(spikes[:, 0], torch.tensor(peer["spikes"], dtype=torch.float32))
    w = torch.tensor([[0.7, -0.3], [0.2, 0.9]])
    steps = torch.arange(1, 11, dtype=torch.float32).view(-1, 1, 1)
    ((spikes @ w) * steps).sum().add(0.5 * mem.sum()).backward()
    torch.testing.assert_close(current.grad[:, 0], torch.tensor(peer["grad"]), rtol=1e-5, atol=1e-6)


def test_brainpy_lif_hand_trace_of_its_three_resets():
    """alpha = beta = 1/2, threshold 1: syn = 4, 3, 1.5, 0.75 and mem = (mem' - reset)/2 + syn/2 (dyadic)."""
    current = torch.tensor([4.0, 1.0, 0.0, 0.0]).view(-1, 1, 1)
    expected = {
        "subtract": ([2.0, 2.0, 1.25, 0.5], [1, 1, 1, 0]),  # (2 - 1)/2 + 1.5, (2 - 1)/2 + 0.75, (1.25 - 1)/2 + 0.375
        "zero": ([2.0, 1.5, 0.75, 0.75], [1, 1, 0, 0]),  # (2 - 2)/2 + 1.5, (1.5 - 1.5)/2 + 0.75, 0.75/2 + 0.375
        "none": ([2.0, 2.5, 2.0, 1.375], [1, 1, 1, 1]),
    }
    for reset, (mem, spikes) in expected.items():
        spk, syn, m = BrainPyLIF(alpha=0.5, beta=0.5, threshold=1.0, reset=reset).reference(current)
        assert syn.flatten().tolist() == [4.0, 3.0, 1.5, 0.75]
        assert m.flatten().tolist() == mem, reset
        assert spk.flatten().tolist() == spikes, reset


def test_brainpy_lif_fires_at_exactly_its_threshold_as_brainpys_heaviside_does():
    """BrainPy's Heaviside is 1 at 0. alpha = beta = 1/2, threshold 1: syn = 1, then 1.5 and mem = 0.5, then 1
    exactly (0.5/2 + 1.5/2): the second step is a tie, and it fires."""
    current = torch.tensor([1.0, 1.0, 0.0]).view(-1, 1, 1)
    spk, _, mem = BrainPyLIF(alpha=0.5, beta=0.5, threshold=1.0, reset="none").reference(current)
    assert mem.flatten().tolist()[:2] == [0.5, 1.0]
    assert spk.flatten().tolist()[:2] == [0.0, 1.0]


def test_brainpy_lif_soft_reset_carries_the_spikes_gradient():
    """d mem[1] / d I[0] = beta*((1 - beta) - threshold*s'(1 - beta)) + (1 - beta)*alpha, s' the surrogate's
    slope at mem[0] = 2 (relu_grad, width 2: 0.3*(2 - 1) = 0.3); a hard reset takes mem[0] in place of the
    threshold, and none leaves the term out."""
    for reset, slope_factor in (("subtract", 1.0), ("zero", 2.0), ("none", 0.0)):
        current = torch.tensor([4.0, 1.0]).view(-1, 1, 1).requires_grad_()
        neuron = BrainPyLIF(alpha=0.5, beta=0.5, reset=reset, surrogate="relu_grad",
                            surrogate_params={"alpha": 0.3, "width": 2.0})  # fmt: skip
        neuron.reference(current)[2][1].sum().backward()
        expected = 0.5 * (0.5 - slope_factor * 0.3 * 0.5) + 0.5 * 0.5
        assert current.grad[0].item() == pytest.approx(expected), reset


# --- the loss ------------------------------------------------------------------------------------------


def test_ce_mean_membrane_is_the_cross_entropy_of_the_time_mean():
    membrane = torch.tensor([[[1.0, 3.0], [0.0, 0.0]], [[3.0, -1.0], [2.0, 4.0]], [[2.0, 1.0], [1.0, -1.0]]])
    targets = torch.tensor([0, 1])
    # means over the 3 steps: sample 0 (2, 1), sample 1 (1, 1); CE of two logits = log(1 + e^(other - own))
    expected = (math.log(1 + math.exp(1 - 2)) + math.log(1 + math.exp(1 - 1))) / 2
    assert losses.ce_mean_membrane(torch.zeros_like(membrane), membrane, targets).item() == pytest.approx(expected)
    silent = torch.zeros(5, 4, 3)  # an output still at zero: ln(classes), whatever the labels
    value = losses.loss_fn("ce_mean_membrane")(silent, silent, torch.tensor([0, 1, 2, 1]))
    assert value.item() == pytest.approx(math.log(3))


# --- initialisers ----------------------------------------------------------------------------------------

FAN_IN, FAN_OUT = 1000, 500


def _std_within_sampling_error(weight: torch.Tensor, std: float, mean: float = 0.0) -> None:
    """The sample's std and mean against the closed forms, 5 standard errors (n = 500,000 values) apart at most;
    for a normal sample the std's standard error is std/sqrt(2n), for a uniform one std/sqrt(5n/4)."""
    n = weight.numel()
    assert abs(weight.std().item() - std) < 5 * std / math.sqrt(1.25 * n), (weight.std().item(), std)
    assert abs(weight.mean().item() - mean) < 5 * std / math.sqrt(n)


GAIN_RELU = math.sqrt(2)
CLOSED_FORM_STD = [
    ("normal", {"mean": 0.5, "std": 0.2}, 0.2, 0.5),
    ("uniform", {"a": -1.0, "b": 3.0}, 4 / math.sqrt(12), 1.0),
    ("xavier_uniform", {"gain": 2.0}, 2.0 * math.sqrt(2 / (FAN_IN + FAN_OUT)), 0.0),
    ("xavier_normal", {}, math.sqrt(2 / (FAN_IN + FAN_OUT)), 0.0),
    ("kaiming_uniform", {}, GAIN_RELU / math.sqrt(FAN_IN), 0.0),
    ("kaiming_normal", {"a": 1.0}, 1 / math.sqrt(FAN_IN), 0.0),  # gain sqrt(2/(1 + 1))
    ("kaiming_normal", {"fan_out": 1}, GAIN_RELU / math.sqrt(FAN_OUT), 0.0),
    ("brainpy_kaiming_normal", {}, math.sqrt(2 / FAN_IN), 0.0),  # braintools' default scale since June 2026
    ("brainpy_kaiming_normal", {"scale": 4.4248}, math.sqrt(4.4248 / FAN_IN), 0.0),  # the tutorial's input layer
    ("brainpy_kaiming_normal", {"scale": 3.0, "fan_out": True}, math.sqrt(3 / FAN_OUT), 0.0),
]


@pytest.mark.parametrize("name,params,std,mean", CLOSED_FORM_STD)
def test_each_initialiser_draws_the_std_of_its_closed_form(name, params, std, mean):
    torch.manual_seed(1)
    layer = nn.Linear(FAN_IN, FAN_OUT)  # weight [out, in]: torch's fan_in is in_features
    inits.initialise(layer.weight, name, params)
    _std_within_sampling_error(layer.weight, std, mean)


def test_trunc_normal_stays_in_its_bounds_with_the_truncated_std():
    torch.manual_seed(2)
    weight = torch.empty(FAN_OUT, FAN_IN)
    inits.initialise(weight, "trunc_normal", {"std": 1.0, "a": -1.0, "b": 1.0})
    assert weight.min() >= -1 and weight.max() <= 1
    # a standard normal cut to [-1, 1]: variance 1 - 2*phi(1)/(Phi(1) - Phi(-1))
    phi = math.exp(-0.5) / math.sqrt(2 * math.pi)
    _std_within_sampling_error(weight, math.sqrt(1 - 2 * phi / math.erf(1 / math.sqrt(2))))


def test_orthogonal_constant_and_zeros_are_exact():
    weight = torch.empty(50, 80)
    inits.initialise(weight, "orthogonal", {"gain": 3.0})
    torch.testing.assert_close(weight @ weight.T, 9.0 * torch.eye(50), atol=1e-4, rtol=0)
    inits.initialise(weight, "constant", {"value": -0.25})
    assert (weight == -0.25).all()
    inits.initialise(weight, "zeros")
    assert not weight.any()


def test_a_conv_kernels_fans_count_its_area():
    torch.manual_seed(3)
    conv = nn.Conv2d(40, 64, kernel_size=5)  # fan_in 40*25 = 1000, fan_out 64*25 = 1600
    inits.initialise(conv.weight, "brainpy_kaiming_normal", {"scale": 2.0})
    _std_within_sampling_error(conv.weight, math.sqrt(2 / 1000))
    inits.initialise(conv.weight, "kaiming_normal", {"fan_out": 1})
    _std_within_sampling_error(conv.weight, GAIN_RELU / math.sqrt(1600))


def test_default_leaves_torchs_initialisation_and_random_stream_as_they_were():
    from snnlab.engine.models import build_model

    layers = [{"type": "linear", "out_features": 30, "neuron": {"type": "leaky"}},
              {"type": "linear", "out_features": 2, "neuron": {"type": "leaky"}}]  # fmt: skip
    torch.manual_seed(7)
    plain = build_model(layers, (20,))
    after_plain = torch.rand(3)
    torch.manual_seed(7)
    named = build_model([{**layers[0], "init": "default", "bias_init": "default"}, layers[1]], (20,))
    assert torch.equal(torch.rand(3), after_plain)
    for a, b in zip(plain.state_dict().values(), named.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    torch.manual_seed(7)
    reference = nn.Linear(20, 30)  # what the first layer is, torch's own draws
    assert torch.equal(plain.blocks[0].op.weight, reference.weight)
    assert torch.equal(plain.blocks[0].op.bias, reference.bias)


def test_a_layers_init_and_bias_init_reach_the_built_model():
    from snnlab.engine.models import build_model

    layers = [{"type": "linear", "out_features": 4, "init": "constant", "init_params": {"value": 0.5},
               "bias_init": "zeros", "neuron": {"type": "brainpy_lif"}},
              {"type": "linear", "out_features": 2, "bias_init": "constant", "bias_init_params": {"value": -1.0},
               "neuron": {"type": "expon", "beta": 0.9}}]  # fmt: skip
    model = build_model(layers, (10,))
    assert (model.blocks[0].op.weight == 0.5).all() and not model.blocks[0].op.bias.any()
    assert (model.blocks[1].op.bias == -1.0).all()
    out = model((torch.rand(6, 3, 10) < 0.5).float())
    assert out.spikes.shape == out.membrane.shape == (6, 3, 2) and not out.spikes.any()


@pytest.mark.parametrize(
    "name,params,problem",
    [
        ("xavier", {}, "unknown initialiser 'xavier'"),
        ("normal", {"sd": 1.0}, "has no parameter 'sd' (parameters: mean, std)"),
        ("normal", {"std": 0.0}, "std must be > 0"),
        ("uniform", {"a": 1.0, "b": 1.0}, "a must be below b"),
        ("kaiming_normal", {"fan_out": 0.5}, "fan_out is a switch, 0 or 1"),
        ("constant", {"value": math.nan}, "value must be a finite number"),
    ],
)
def test_bad_initialisers_are_refused_in_one_line(name, params, problem):
    with pytest.raises(ValueError, match=re.escape(problem)) as info:
        inits.initialise(torch.empty(3, 3), name, params)
    assert "\n" not in str(info.value)
