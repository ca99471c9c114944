"""snnTorch's neuron options: graded spikes, inhibition, immediate reset, quantized states, no surrogate.

Hand-computed traces for each, the fused path against the reference where the option keeps it, and the
refusals. (Equality with snnTorch itself is measured by benchmarks/neuron_equivalence.py.)
"""

from __future__ import annotations

import math

import pytest
import torch

from snnlab.engine import surrogates
from snnlab.engine.neurons import (
    SLSTM,
    Alpha,
    Lapicque,
    Leaky,
    LeakyParallel,
    RLeaky,
    RSynaptic,
    SConv2dLSTM,
    Synaptic,
)
from snnlab.engine.quant import state_quant


def _seq(*steps: list[float]) -> torch.Tensor:
    """``[T, 1, N]`` from one list of N values per step."""
    return torch.tensor(steps, dtype=torch.float32).unsqueeze(1)


def _atan_grad(x: float, alpha: float = 2.0) -> float:
    return alpha / 2 / (1 + (math.pi / 2 * alpha * x) ** 2)


BOTH_PATHS = pytest.mark.parametrize("fused", [True, False], ids=["fused", "reference"])


# --- graded spikes ---------------------------------------------------------------------------------------


@BOTH_PATHS
def test_graded_spikes_scale_the_output_not_the_membrane(fused):
    neuron = Leaky(beta=0.5, graded_spikes_factor=2.0, learn_graded_spikes_factor=True, fused=fused)
    x = _seq([1.5], [0.0], [1.2])
    spk, mem = neuron(x)
    assert spk.flatten().tolist() == [2.0, 0.0, 2.0]
    assert mem.flatten().tolist() == pytest.approx([1.5, -0.25, 1.075])  # the reset subtracts 1, not 2
    spk.sum().backward()
    assert neuron.graded_spikes_factor.grad.item() == 2.0  # d(sum g*s)/dg = the number of spikes


@BOTH_PATHS
def test_a_recurrent_neuron_feeds_back_its_graded_spikes(fused):
    neuron = RLeaky(beta=0.5, all_to_all=False, V=0.5, graded_spikes_factor=2.0, fused=fused)
    spk, mem = neuron(_seq([1.5], [0.0], [0.0]))
    # step 1: 0.5*1.5 + 0 + V*(2*1) - 1 = 0.75
    assert spk.flatten().tolist() == [2.0, 0.0, 0.0]
    assert mem.flatten().tolist() == pytest.approx([1.5, 0.75, 0.375])


def _rleaky_with_dyadic_weights(fused: bool) -> RLeaky:
    """An all-to-all RLeaky whose recurrent map is exact in any summation order (eighths times 0/1 spikes times
    a graded factor of 1/2), so that its spikes may be compared bit for bit across the matmul."""
    neuron = RLeaky(features=5, graded_spikes_factor=0.5, learn_graded_spikes_factor=True, fused=fused)
    with torch.no_grad():
        neuron.recurrent.weight.copy_(torch.arange(-12, 13).reshape(5, 5) / 8)
        neuron.recurrent.bias.zero_()
    return neuron


def test_graded_spikes_keep_the_fused_path_and_its_gradients():
    torch.manual_seed(0)
    x = torch.rand(12, 3, 5) * 1.5
    for make in (
        lambda f: Leaky(graded_spikes_factor=0.5, learn_graded_spikes_factor=True, learn_beta=True, fused=f),
        lambda f: Synaptic(alpha=0.7, graded_spikes_factor=3.0, learn_graded_spikes_factor=True, fused=f),
        _rleaky_with_dyadic_weights,
        lambda f: RSynaptic(
            all_to_all=False, V=0.4, graded_spikes_factor=2.0, learn_graded_spikes_factor=True, fused=f
        ),  # fmt: skip
        lambda f: Alpha(alpha=0.9, beta=0.7, graded_spikes_factor=2.0, learn_graded_spikes_factor=True, fused=f),
    ):
        torch.manual_seed(1)
        fused, ref = make(True), make(False)
        ref.load_state_dict(fused.state_dict())
        assert fused.uses_fused
        outs = [n(x.clone().requires_grad_()) for n in (fused, ref)]
        torch.testing.assert_close(outs[0][0], outs[1][0], rtol=0, atol=0)  # spikes: elementwise or exact sums
        torch.testing.assert_close(outs[0][-1], outs[1][-1])
        for out in outs:
            (out[0] * torch.linspace(-1, 1, out[0].numel()).view_as(out[0])).sum().add(out[-1].sum()).backward()
        torch.testing.assert_close(fused.graded_spikes_factor.grad, ref.graded_spikes_factor.grad)


def test_graded_spikes_factor_is_one_number_other_than_zero():
    with pytest.raises(ValueError, match="other than 0"):
        Leaky(graded_spikes_factor=0.0)
    with pytest.raises(ValueError, match="one number"):
        Leaky(graded_spikes_factor=torch.ones(3))
    assert "graded_spikes_factor" not in Leaky().state_dict()  # 1 and not learned: nothing new to save


# --- inhibition ------------------------------------------------------------------------------------------


@BOTH_PATHS
def test_inhibition_lets_one_neuron_spike_but_every_neuron_above_threshold_resets(fused):
    neuron = Leaky(beta=0.5, inhibition=True, fused=fused)
    spk, mem = neuron(_seq([1.5, 2.0, 0.2], [0.0, 0.0, 0.0]))
    assert spk[0].flatten().tolist() == [0.0, 1.0, 0.0]  # only the largest membrane spikes
    # snnTorch resets from each neuron's own membrane: neuron 0 did not spike and still loses the threshold.
    assert mem[1].flatten().tolist() == pytest.approx([-0.25, 0.0, 0.1])
    assert neuron.uses_fused == fused


def test_inhibition_of_a_recurrent_neuron_feeds_back_the_winner_only():
    neuron = RLeaky(beta=0.5, all_to_all=False, V=1.0, inhibition=True)
    assert not neuron.uses_fused  # the masked spike feeds back: the scan cannot mask after the fact
    spk, mem = neuron(_seq([1.5, 2.0], [0.0, 0.0]))
    assert spk[0].flatten().tolist() == [0.0, 1.0]
    assert mem[1].flatten().tolist() == pytest.approx([-0.25, 1.0])  # neuron 0: no feedback, still reset


def test_inhibition_gradient_reaches_the_winner_only():
    x = _seq([1.2, 1.1]).requires_grad_()
    spk, _ = Leaky(inhibition=True)(x)
    spk.sum().backward()
    assert x.grad.flatten().tolist() == pytest.approx([_atan_grad(0.2), 0.0])


def test_inhibition_needs_features_of_one_axis():
    with pytest.raises(ValueError, match=r"among \[N\] features"):
        Leaky(inhibition=True)(torch.ones(3, 2, 4, 5, 5))


# --- immediate reset -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reset, expected",
    [
        # subtract: the spike of step 0 takes the threshold at once; at step 3 the delayed reset of step 2's
        # membrane (1.725 > 1) is applied by the state update and taken back (now = 0 - 1).
        ("subtract", [0.5, 0.45, 1.725, 0.8625]),
        ("zero", [0.0, 0.2, 0.0, 0.0]),
        ("none", [1.5, 0.95, 2.975, 1.4875]),
    ],
)
def test_reset_delay_false_resets_in_the_spiking_step(reset, expected):
    neuron = Leaky(beta=0.5, reset=reset, reset_delay=False)
    assert not neuron.uses_fused
    spk, mem = neuron(_seq([1.5], [0.2], [2.5], [0.0]))
    assert mem.flatten().tolist() == pytest.approx(expected)


def test_the_immediate_reset_carries_the_surrogate_gradient():
    x = _seq([1.5]).requires_grad_()
    _, mem = Leaky(beta=0.5, reset_delay=False)(x)
    mem.sum().backward()
    # mem[0] = I - spike(I - 1)*1, so dmem/dI = 1 - surrogate'(0.5)
    assert x.grad.item() == pytest.approx(1 - _atan_grad(0.5))


@pytest.mark.parametrize("neuron", ["synaptic", "rsynaptic"])
def test_reset_delay_false_on_current_based_neurons(neuron):
    kw = dict(alpha=0.5, beta=0.5, reset="zero", reset_delay=False)
    module = Synaptic(**kw) if neuron == "synaptic" else RSynaptic(all_to_all=False, V=0.0, **kw)
    spk, syn, mem = module(_seq([1.5], [0.0], [0.0]))
    assert spk.flatten().tolist() == [1.0, 0.0, 0.0]
    assert syn.flatten().tolist() == pytest.approx([1.5, 0.75, 0.375])  # the current carries on
    assert mem.flatten().tolist() == pytest.approx([0.0, 0.75, 0.75])  # zeroed in the spiking step


def test_step_by_step_equals_the_sequence_with_options():
    torch.manual_seed(3)
    x = torch.rand(10, 2, 4) * 2
    neuron = Synaptic(alpha=0.6, reset_delay=False, graded_spikes_factor=2.0, state_quant=state_quant(num_bits=6))
    spikes, _, mems = neuron(x)
    state = None
    for t in range(10):
        spk, state = neuron.step(x[t], state)
        assert torch.equal(spk, spikes[t]) and torch.equal(state.mem, mems[t])


def test_alpha_has_no_immediate_reset():
    with pytest.raises(ValueError, match="reset_delay"):
        Alpha(alpha=0.9, beta=0.8, reset_delay=False)


# --- quantized states ------------------------------------------------------------------------------------


def test_state_quant_puts_every_state_on_a_level_with_a_straight_through_gradient():
    quant = state_quant(num_bits=2, threshold=1.0)  # levels -1, -0.2667, 0.4667, 1.2
    assert quant.levels.tolist() == pytest.approx([-1.0, -0.26667, 0.46667, 1.2], abs=1e-4)
    x = _seq([0.5], [0.9]).requires_grad_()
    spk, syn, mem = Synaptic(alpha=0.5, beta=0.5, state_quant=quant)(x)
    # step 0: syn = 0.5 -> 0.4667, mem = 0.5 -> 0.4667; step 1: syn = 0.2333 + 0.9 = 1.1333 -> 1.2,
    # mem = 0.2333 + 1.1333 (the current before it was quantized) = 1.3667 -> 1.2 (above the threshold: a spike)
    assert syn.flatten().tolist() == pytest.approx([0.46667, 1.2], abs=1e-4)
    assert mem.flatten().tolist() == pytest.approx([0.46667, 1.2], abs=1e-4)
    assert spk.flatten().tolist() == [0.0, 1.0]
    mem[0].sum().backward()
    assert x.grad.flatten().tolist() == [1.0, 0.0]  # straight through both quantizers


def test_state_quant_levels():
    uniform = state_quant(num_bits=3, threshold=2.0, lower_limit=0.5, upper_limit=0.25)
    assert uniform.levels.tolist() == pytest.approx(torch.linspace(-3.0, 2.5, 8).tolist())
    geometric = state_quant(num_bits=5, uniform=False, threshold=1.0).levels
    assert geometric.numel() == 32 and geometric[0].item() == pytest.approx(-1.0)
    assert geometric[-1].item() == pytest.approx(1.2)
    gaps = geometric.diff()
    below = int((geometric < 1.0).sum())  # floor(32 * 2/2.2) = 29 levels below the threshold
    assert below == 29
    assert (gaps[: below - 1].diff() < 0).all()  # gaps shrink towards the threshold ...
    assert (gaps[below:].diff() > 0).all()  # ... and grow away from it
    centred_on_zero = state_quant(num_bits=4, uniform=False, thr_centered=False).levels
    assert int((centred_on_zero < 0).sum()) == 7  # floor(16 * 1/2.2)


def test_state_quant_picks_the_nearest_level_and_the_lower_on_a_tie():
    quant = state_quant(num_bits=1, threshold=1.0, upper_limit=0.0)  # levels -1 and 1
    x = torch.tensor([-5.0, -0.5, 0.0, 0.25, 7.0])
    assert quant(x).tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0]


def test_state_quant_refuses_nonsense():
    with pytest.raises(ValueError, match="num_bits"):
        state_quant(num_bits=0)
    with pytest.raises(TypeError, match="state_quant"):
        Leaky(state_quant=3)


# --- no surrogate ----------------------------------------------------------------------------------------


@BOTH_PATHS
def test_surrogate_disable_leaves_spikes_without_gradient(fused):
    neuron = Leaky(beta=0.5, surrogate="sigmoid", surrogate_disable=True, fused=fused)
    assert isinstance(neuron.spike_fn, surrogates.NoGradient)
    x = _seq([1.5, 0.2], [0.3, 2.0]).requires_grad_()
    spk, mem = neuron(x)
    assert spk.flatten().tolist() == [1.0, 0.0, 0.0, 1.0]
    spk.sum().backward()
    assert not x.grad.any()
    x.grad = None
    _, mem = neuron(x)
    mem.sum().backward()
    assert x.grad.flatten().tolist() == pytest.approx([1.5, 1.5, 1.0, 1.0])  # 1 + beta, then 1


# --- which neurons take what -----------------------------------------------------------------------------


def test_leaky_parallel_takes_graded_spikes_but_no_reset_option():
    neuron = LeakyParallel(3, 3, graded_spikes_factor=2.0)
    spk, _ = neuron(torch.rand(4, 2, 3) * 5)
    assert set(spk.unique().tolist()) <= {0.0, 2.0}
    for option in (dict(inhibition=True), dict(reset_delay=False), dict(state_quant=state_quant())):
        with pytest.raises(ValueError, match="LeakyParallel takes none of"):
            LeakyParallel(3, 3, **option)


def test_lapicque_takes_the_options_of_leaky():
    spk, mem = Lapicque(R=1.0, C=1e-3, time_step=1e-3 / 2, reset_delay=False, graded_spikes_factor=3.0)(
        _seq([4.0], [0.0])
    )  # beta = 0.5, the input scaled by dt/C = 0.5: mem[0] = 2 -> spike of 3, reset at once to 1
    assert spk.flatten().tolist() == [3.0, 0.0]
    assert mem.flatten().tolist() == pytest.approx([1.0, 0.5])


def test_options_show_in_the_repr():
    text = repr(Leaky(graded_spikes_factor=2.0, inhibition=True, reset_delay=False, state_quant=state_quant()))
    assert "graded_spikes_factor=2" in text and "inhibition" in text
    assert "reset_delay=False" in text and "state_quant" in text


def test_lstm_neurons_take_graded_spikes_and_quantized_states():
    torch.manual_seed(0)
    quant = state_quant(num_bits=3, threshold=0.5)
    neuron = SLSTM(4, 4, threshold=0.05, graded_spikes_factor=3.0, state_quant=quant)
    spk, syn, mem = neuron(torch.rand(6, 2, 4) * 4)
    assert set(spk.unique().tolist()) == {0.0, 3.0}
    levels = set(quant.levels.tolist())
    assert set(syn.unique().tolist()) <= levels and set(mem.unique().tolist()) <= levels
    pooled = SConv2dLSTM(2, 2, 3, max_pool=2, threshold=0.05, graded_spikes_factor=2.0)
    spk, _, mem = pooled(torch.rand(3, 1, 2, 4, 4) * 4)
    assert spk.shape[-2:] == (2, 2) and set(spk.unique().tolist()) <= {0.0, 2.0}
    for option in (dict(inhibition=True), dict(reset_delay=False)):
        with pytest.raises(ValueError, match="takes neither inhibition nor reset_delay"):
            SLSTM(4, 4, **option)
