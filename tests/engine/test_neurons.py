import itertools
import math

import numpy as np
import pytest
import torch

from snnlab import catalog
from snnlab.engine import neurons, surrogates
from snnlab.engine.neurons import Alpha, Lapicque, Leaky, LeakyParallel, RLeaky, RSynaptic, Synaptic

SURROGATES = [i.name for i in surrogates.names()]
RESETS = list(catalog.RESETS)
KINDS = ["leaky", "synaptic", "rleaky", "rleaky_one_to_one", "rleaky_conv", "lapicque", "alpha", "rsynaptic",
         "rsynaptic_one_to_one", "rsynaptic_conv", "leaky_parallel"]  # fmt: skip
T, B, F = 7, 3, 6
CONV = (2, 3, 4)  # [C, H, W] features of the kinds with a recurrent convolution


def features(kind):
    return CONV if kind.endswith("_conv") else (F,)


def dyadic_(module, seed=3):
    """Recurrent weights on a dyadic grid: spikes are 0/1, so every sum in the feedback matmul or convolution is
    exact and the result is the same in any summation order. Random weights would leave the bits to the BLAS
    or convolution kernel, which differ between CPUs (and with memory alignment), and a 1-ulp change can flip a
    spike."""
    g = torch.Generator().manual_seed(seed)
    weights = module.recurrent if hasattr(module, "recurrent") else module
    with torch.no_grad():
        for name, p in weights.named_parameters():
            if name not in ("beta", "threshold", "rnn.weight_hh_l0"):
                p.copy_(torch.randint(-4, 5, p.shape, generator=g) / 8)
    return module


def make(kind, reset, surrogate):
    common = dict(reset=reset, surrogate=surrogate, learn_threshold=True)
    # Dyadic parameters keep the arithmetic exact, so inputs on a dyadic grid land exactly on threshold.
    beta = torch.tensor([0.5, 0.75, 0.25, 1.5, 0.5, -0.25])  # includes values clamped to [0, 1]
    if kind == "leaky":
        return Leaky(beta=beta, learn_beta=True, **common)
    if kind == "synaptic":
        return Synaptic(alpha=0.5, beta=beta, learn_alpha=True, learn_beta=True, **common)
    channel_beta = torch.tensor([0.5, 0.75]).view(2, 1, 1)
    conv = dict(conv2d_channels=CONV[0], kernel_size=3, beta=channel_beta, learn_beta=True, **common)
    if kind == "rleaky":
        return dyadic_(RLeaky(features=F, beta=beta, learn_beta=True, **common))
    if kind == "rleaky_one_to_one":
        return RLeaky(all_to_all=False, V=torch.full((F,), 0.25), beta=beta, learn_beta=True, **common)
    if kind == "rleaky_conv":
        return dyadic_(RLeaky(**conv))
    if kind == "rsynaptic":
        return dyadic_(RSynaptic(features=F, alpha=0.5, beta=beta, learn_alpha=True, learn_beta=True, **common))
    if kind == "rsynaptic_one_to_one":
        V = torch.tensor([0.25, -0.5, 0.5, 0.125, 0.25, 1.0])
        return RSynaptic(all_to_all=False, V=V, alpha=0.5, beta=beta, learn_alpha=True, learn_beta=True, **common)
    if kind == "rsynaptic_conv":
        return dyadic_(RSynaptic(alpha=torch.tensor([0.5, 0.25]).view(2, 1, 1), learn_alpha=True, **conv))
    if kind == "leaky_parallel":  # no reset; beta sets the diagonal of W_hh
        return dyadic_(LeakyParallel(F, F, beta=beta, learn_beta=True, surrogate=surrogate, learn_threshold=True))
    if kind == "alpha":
        # Per-neuron rates below 1 and beta below alpha, as the alpha neuron needs (tau is not dyadic).
        alpha = torch.tensor([0.75, 0.875, 0.5, 0.9375, 0.625, 0.75])
        beta = torch.tensor([0.5, 0.75, 0.25, 0.5, 0.125, 0.5])
        return Alpha(alpha=alpha, beta=beta, learn_alpha=True, learn_beta=True, **common)
    return Lapicque(R=1.0, C=0.25, time_step=0.125, **common)


def inputs(static: bool, seed: int, kind: str = "leaky"):
    g = torch.Generator().manual_seed(seed)
    shape = (B, *features(kind)) if static else (T, B, *features(kind))
    # Multiples of 1/4 in [-1, 2]: many membranes hit threshold 1.0 exactly.
    return (torch.randint(-4, 9, shape, generator=g) / 4).float().requires_grad_()


def run(neuron, x, static, path):
    fn = neuron if path == "fused" else neuron.reference
    outputs = fn(x, T) if static else fn(x)
    weights = [torch.linspace(-1, 1, o.numel()).reshape(o.shape) for o in outputs]
    loss = sum((o * w).sum() for o, w in zip(outputs, weights, strict=True))
    params = [x] + [p for p in neuron.parameters() if p.requires_grad]
    return outputs, torch.autograd.grad(loss, params)


@pytest.mark.parametrize("kind,reset,surrogate", list(itertools.product(KINDS, RESETS, SURROGATES)))
def test_fused_equals_reference(kind, reset, surrogate):
    neuron = make(kind, reset, surrogate)
    assert neuron.uses_fused
    for static in (False, True):
        x = inputs(static, seed=len(kind) + len(reset), kind=kind)
        out_f, grad_f = run(neuron, x, static, "fused")
        out_r, grad_r = run(neuron, x, static, "reference")
        for a, b in zip(out_f, out_r, strict=True):
            assert torch.equal(a, b)
        # A parameter's gradient sums adjoint x state over steps and positions (a conv bias: T*B*H*W terms) and
        # may cancel to far less than its terms: rleaky_conv's threshold gradient is 0.25 from terms up to ~6;
        # with spike_rate_escape, whose gradient is nowhere zero, RSynaptic's adjoints grow to ~1e6 while its
        # alpha gradient sums to 10. Both paths then round in different orders at the size of the terms (for
        # rleaky_conv's threshold the fused one is the closer to a float64 run: 2e-6 against 1.2e-5), so the
        # tolerance follows the largest gradient of the pass, which bounds the adjoints; a wrong gradient is
        # off by far more than 1e-5 of that.
        scale = max(1.0, *(g.abs().max().item() for g in grad_r))
        for a, b in zip(grad_f, grad_r, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * scale)


def test_inputs_do_hit_threshold_exactly():
    neuron = Leaky(beta=0.5, threshold=1.0, reset="none")
    x = torch.tensor([[[1.0]], [[0.5]], [[0.75]]])  # mem: 1.0, 1.0, 1.25
    spk, mem = neuron(x)
    assert mem.flatten().tolist() == [1.0, 1.0, 1.25]
    assert spk.flatten().tolist() == [0.0, 0.0, 1.0]  # H(0) = 0


def test_leaky_closed_form_subtract_and_zero():
    # Constant input 0.6, beta 0.5, threshold 1, subtract reset; hand-computed:
    # m0=0.6, m1=0.9, m2=1.05 (spike), m3=0.525+0.6-1=0.125, m4=0.6625
    spk, mem = Leaky(beta=0.5, threshold=1.0)(torch.full((5, 1, 1), 0.6))
    torch.testing.assert_close(mem.flatten(), torch.tensor([0.6, 0.9, 1.05, 0.125, 0.6625]))
    assert spk.flatten().tolist() == [0, 0, 1, 0, 0]
    # zero reset: m3 = 0.5*(1-1)*1.05 + 0.6 = 0.6
    _, mem = Leaky(beta=0.5, threshold=1.0, reset="zero")(torch.full((5, 1, 1), 0.6))
    torch.testing.assert_close(mem.flatten(), torch.tensor([0.6, 0.9, 1.05, 0.6, 0.9]))


def test_leaky_without_reset_is_a_geometric_filter():
    T_ = 12
    x = torch.randn(T_, 4, 5)
    beta = 0.8
    _, mem = Leaky(beta=beta, threshold=100.0, reset="none")(x)
    kernel = beta ** torch.arange(T_, dtype=torch.float32)
    expected = torch.stack([(kernel[: t + 1].flip(0).view(-1, 1, 1) * x[: t + 1]).sum(0) for t in range(T_)])
    torch.testing.assert_close(mem, expected, rtol=1e-5, atol=1e-5)


def test_synaptic_closed_form():
    spk, syn, mem = Synaptic(alpha=0.5, beta=0.5, threshold=10.0)(torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1))
    assert syn.flatten().tolist() == [1.0, 0.5, 0.25]
    assert mem.flatten().tolist() == [1.0, 1.0, 0.75]


@pytest.mark.parametrize("path", ["fused", "reference"])
def test_zero_reset_of_synaptic_rleaky_and_lapicque_zeroes_the_whole_step(path):
    # snnTorch's Synaptic, RLeaky and Lapicque set the membrane of the step after a spike to 0, input
    # included (Leaky's zero keeps the input: see test_leaky_closed_form_subtract_and_zero).
    x = torch.ones(5, 1, 1)
    neuron = Synaptic(alpha=0.5, beta=0.5, threshold=1.0, reset="zero")
    spk, syn, mem = neuron(x) if path == "fused" else neuron.reference(x)
    # syn: 1, 1.5, 1.75, 1.875, 1.9375 (untouched by the reset); mem: 1, 0.5+1.5 = 2 (spike), 0,
    # 0 + 1.875 (spike), 0
    assert syn.flatten().tolist() == [1.0, 1.5, 1.75, 1.875, 1.9375]
    assert mem.flatten().tolist() == [1.0, 2.0, 0.0, 1.875, 0.0]
    assert spk.flatten().tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    rleaky = RLeaky(all_to_all=False, V=0.5, beta=0.5, threshold=1.0, reset="zero")
    spk, mem = rleaky(x * 1.25) if path == "fused" else rleaky.reference(x * 1.25)
    # mem: 1.25 (spike), 0, 0 + 1.25 + 0 (spike), 0, 1.25
    assert mem.flatten().tolist() == [1.25, 0.0, 1.25, 0.0, 1.25]
    lapicque = Lapicque(R=1.0, C=0.5, time_step=0.25, threshold=1.0, reset="zero")  # beta 0.5, scale 0.5
    spk, mem = lapicque(x * 3) if path == "fused" else lapicque.reference(x * 3)
    assert mem.flatten().tolist() == [1.5, 0.0, 1.5, 0.0, 1.5]
    # Gradients through a zeroed step: none of mem[t]'s input reaches it.
    x = torch.ones(5, 1, 1, requires_grad=True)
    _, _, mem = Synaptic(alpha=0.5, beta=0.5, threshold=1.0, reset="zero", fused=path == "fused")(x)
    (g,) = torch.autograd.grad(mem[2].sum(), x)
    assert g.flatten().tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]


def test_alpha_without_reset_is_a_difference_of_exponentials():
    a, b = 0.875, 0.625
    neuron = Alpha(alpha=a, beta=b, threshold=100.0, reset="none")
    tau = np.log(a) / (np.log(b) - np.log(a)) + 1
    T_ = 10
    x = torch.randn(T_, 4, 5)
    spk, exc, inh, mem = neuron(x)
    k = torch.arange(T_, dtype=torch.float64)
    kernel = tau * (a**k - b**k)  # mem[t] = tau * sum_k (a^k - b^k) I[t-k]; k = 0 contributes nothing
    expected = torch.stack([(kernel[: t + 1].flip(0).view(-1, 1, 1) * x[: t + 1].double()).sum(0) for t in range(T_)])
    torch.testing.assert_close(mem.double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(exc + inh, mem / float(tau), rtol=1e-5, atol=1e-6)
    assert not spk.any()


@pytest.mark.parametrize("path", ["fused", "reference"])
def test_alpha_resets_by_hand(path):
    # alpha 0.5, beta 0.25: tau = log(0.5)/(log(0.25) - log(0.5)) + 1 = 2; constant input 1, threshold 0.25.
    # t0: exc 1, inh -1, mem 0. t1: exc 1.5, inh -1.25, mem 0.5 (spike).
    expected = {
        # t2 (reset): exc' 1.75, inh' -1.3125, mem' 0.875 -> exc 1.5, inh 0, mem 0.875 + (-1.25) = -0.375.
        # t3: exc 1.75, inh -1, mem 1.5 (spike). t4: mem' 1.25 -> mem 1.25 - 1 = 0.25, exactly the threshold.
        "subtract": ([0, 1, 0, 1, 0], [1, 1.5, 1.5, 1.75, 1.625], [-1, -1.25, 0, -1, 0], [0, 0.5, -0.375, 1.5, 0.25]),
        # t2 (reset): everything 0. t3, t4: as t0, t1.
        "zero": ([0, 1, 0, 0, 1], [1, 1.5, 0, 1, 1.5], [-1, -1.25, 0, -1, -1.25], [0, 0.5, 0, 0, 0.5]),
        "none": (
            [0, 1, 1, 1, 1],
            [1, 1.5, 1.75, 1.875, 1.9375],
            [-1, -1.25, -1.3125, -1.328125, -1.33203125],
            [0, 0.5, 0.875, 1.09375, 1.2109375],
        ),  # fmt: skip
    }
    for reset, want in expected.items():
        neuron = Alpha(alpha=0.5, beta=0.25, threshold=0.25, reset=reset)
        assert neuron._rates(torch.ones(1))[2].item() == 2.0  # log(0.25) is twice log(0.5) in float too
        out = neuron(torch.ones(5, 1, 1)) if path == "fused" else neuron.reference(torch.ones(5, 1, 1))
        assert [o.flatten().tolist() for o in out] == [list(map(float, w)) for w in want], reset


def test_alpha_takes_snntorchs_default_reset_and_names():
    neuron = Alpha(alpha=0.9, beta=0.8, learn_alpha=True, learn_beta=True, learn_threshold=True)
    assert neuron.reset == "zero" and neuron.scan_reset == "zero_step"
    assert {name for name, _ in neuron.named_parameters()} == {"alpha", "beta", "threshold"}
    assert set(Alpha(alpha=0.9, beta=0.8).state_dict()) == {"alpha", "beta", "threshold"}  # buffers, as snnTorch's
    with pytest.raises(ValueError, match="alpha must be greater than beta"):
        Alpha(alpha=0.8, beta=0.8)
    with pytest.raises(ValueError, match="alpha must be greater than beta"):
        Alpha(alpha=torch.tensor([0.9, 0.5]), beta=torch.tensor([0.8, 0.6]))


def test_lapicque_scales_its_input_once_on_either_path():
    # fused=False (or a plain callable surrogate) used to scale the input by dt/C twice.
    x = torch.full((6, 2, 3), 3.0)
    fused = Lapicque(R=1.0, C=0.5, time_step=0.25)(x)
    plain = Lapicque(R=1.0, C=0.5, time_step=0.25, fused=False)(x)
    assert plain[1].flatten()[:3].tolist() == [1.5, 1.5, 1.5]  # (dt/C)*3 = 1.5 at t = 0
    for a, b in zip(fused, plain, strict=True):
        assert torch.equal(a, b)


def test_rleaky_feeds_spikes_back():
    n = RLeaky(all_to_all=False, V=0.5, beta=0.0, threshold=1.0, learn_recurrent=False)
    _, mem = n(torch.tensor([2.0, 0.0, 0.0]).view(3, 1, 1))
    # t0: 2 (spike). t1: 0 + 0.5*1 - 1*1 = -0.5. t2: 0 + 0 (no spike at t1) = 0.
    assert mem.flatten().tolist() == [2.0, -0.5, 0.0]


@pytest.mark.parametrize("path", ["fused", "reference"])
def test_rsynaptic_feeds_spikes_into_its_current_by_hand(path):
    # alpha = beta = V = 0.5, threshold 1, one input of 2 at t0. syn[t] = 0.5*syn + I + 0.5*spike[t-1].
    expected = {
        # t0: syn 2, mem 2 (spike). t1: syn 1 + 0.5 = 1.5, mem 1 + 1.5 - 1 = 1.5 (spike).
        # t2: syn 0.75 + 0.5 = 1.25, mem 0.75 + 1.25 - 1 = 1.0 (no spike: H(0) = 0). t3: syn 0.625, mem 1.125.
        "subtract": ([1, 1, 0, 1], [2, 1.5, 1.25, 0.625], [2, 1.5, 1.0, 1.125]),
        # t1: the whole membrane step is zeroed (syn carries on), so no spike feeds back at t2.
        "zero": ([1, 0, 0, 0], [2, 1.5, 0.75, 0.375], [2, 0, 0.75, 0.75]),
        "none": ([1, 1, 1, 1], [2, 1.5, 1.25, 1.125], [2, 2.5, 2.5, 2.375]),
    }
    for reset, want in expected.items():
        neuron = RSynaptic(all_to_all=False, V=0.5, alpha=0.5, beta=0.5, threshold=1.0, reset=reset)
        x = torch.tensor([2.0, 0.0, 0.0, 0.0]).view(4, 1, 1)
        out = neuron(x) if path == "fused" else neuron.reference(x)
        assert [o.flatten().tolist() for o in out] == [list(map(float, w)) for w in want], reset


def test_a_centre_tap_recurrent_convolution_is_one_to_one():
    # A kernel whose only weight is each channel's own centre is R(s) = V * s per channel.
    v = torch.tensor([0.5, -0.25])
    for cls in (RLeaky, RSynaptic):
        conv = cls(conv2d_channels=2, kernel_size=3, beta=0.5, threshold=1.0)
        with torch.no_grad():
            conv.recurrent.weight.zero_()
            conv.recurrent.bias.zero_()
            conv.recurrent.weight[[0, 1], [0, 1], 1, 1] = v
        gain = cls(all_to_all=False, V=v.view(2, 1, 1), beta=0.5, threshold=1.0)
        x = inputs(False, seed=5, kind="rleaky_conv").detach()
        for a, b in zip(conv(x), gain(x), strict=True):
            assert torch.equal(a, b)


def test_a_recurrent_convolution_feeds_a_spike_to_its_neighbours():
    # One tap above the centre: R(s)[h, w] = s[h-1, w], so a spike at (1, 2) reaches (2, 2) one step later.
    neuron = RLeaky(conv2d_channels=1, kernel_size=3, beta=0.0, threshold=1.0, reset="none")
    with torch.no_grad():
        neuron.recurrent.weight.zero_()
        neuron.recurrent.bias.zero_()
        neuron.recurrent.weight[0, 0, 0, 1] = 1.5
    x = torch.zeros(3, 1, 1, 4, 4)
    x[0, 0, 0, 1, 2] = 2.0
    spk, mem = neuron(x)
    assert mem[1, 0, 0, 2, 2] == 1.5 and mem[1].count_nonzero() == 1 and mem[2, 0, 0, 3, 2] == 1.5
    assert spk[:, 0, 0].nonzero().tolist() == [[0, 1, 2], [1, 2, 2], [2, 3, 2]]


def test_recurrent_neurons_take_snntorchs_names_and_shapes():
    # The names snnTorch 1.0 gives these entries, so that its state dicts load (the benchmark loads them).
    assert set(RSynaptic(features=4).state_dict()) == {"alpha", "beta", "threshold", "recurrent.weight",
                                                      "recurrent.bias"}  # fmt: skip
    assert set(RSynaptic(all_to_all=False, V=0.5).state_dict()) == {"alpha", "beta", "threshold", "V"}
    conv = RLeaky(conv2d_channels=4, kernel_size=5, learn_beta=True)
    assert {n for n, _ in conv.named_parameters()} == {"beta", "recurrent.weight", "recurrent.bias"}
    assert isinstance(conv.recurrent, torch.nn.Conv2d) and conv.recurrent.padding == (2, 2)
    assert conv.recurrent.weight.shape == (4, 4, 5, 5)
    frozen = RSynaptic(all_to_all=False, V=0.5, learn_recurrent=False)
    assert not list(frozen.parameters()) and "V" in frozen.state_dict()
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        RLeaky(conv2d_channels=2, kernel_size=2)
    with pytest.raises(ValueError, match="either features"):
        RSynaptic(features=4, conv2d_channels=2, kernel_size=3)
    with pytest.raises(ValueError, match="needs features"):
        RSynaptic(conv2d_channels=2)
    with pytest.raises(ValueError, match="takes V"):
        RLeaky(all_to_all=False, features=4)


def test_leaky_parallel_is_a_relu_rnn_with_a_diagonal_decay():
    neuron = LeakyParallel(1, 1, beta=0.5, threshold=1.0)
    with torch.no_grad():
        neuron.rnn.weight_ih_l0.fill_(1.0)
        neuron.rnn.bias_ih_l0.zero_()
        neuron.rnn.bias_hh_l0.zero_()
    x = torch.tensor([1.0, 1.0, -2.0, 0.75, 1.0]).view(5, 1, 1)
    for out in (neuron(x), neuron.reference(x)):
        # mem: 1, 0.5 + 1 = 1.5 (spike, no reset), ReLU(0.75 - 2) = 0, 0.75, 0.375 + 1 = 1.375 (spike)
        assert [o.flatten().tolist() for o in out] == [[0, 1, 0, 0, 1], [1.0, 1.5, 0.0, 0.75, 1.375]]


def test_leaky_parallel_takes_snntorchs_names_and_keeps_its_decay_diagonal():
    beta = torch.tensor([0.25, 0.5, 1.5])  # one per neuron, clamped to [0, 1]
    torch.manual_seed(0)  # the RNN's input weights: some draws leave every neuron below the ReLU
    neuron = LeakyParallel(2, 3, beta=beta, learn_beta=True)
    assert set(neuron.state_dict()) == {"beta", "threshold", "rnn.weight_ih_l0", "rnn.weight_hh_l0",
                                        "rnn.bias_ih_l0", "rnn.bias_hh_l0"}  # fmt: skip
    assert torch.equal(neuron.rnn.weight_hh_l0, torch.diag(torch.tensor([0.25, 0.5, 1.0])))
    _, mem = neuron(torch.rand(6, 4, 2, generator=torch.Generator().manual_seed(0)))
    mem.sum().backward()
    grad = neuron.rnn.weight_hh_l0.grad
    assert torch.equal(grad, torch.diag(grad.diagonal())) and grad.diagonal().any()
    assert "beta" not in LeakyParallel(2, 3).state_dict()  # beta=None: the RNN's own initial W_hh, diagonal
    assert LeakyParallel(2, 3).rnn.weight_hh_l0.count_nonzero() <= 3
    dense = LeakyParallel(2, 3, beta=0.5, weight_hh_enable=True)  # snnTorch fills all of W_hh with beta then
    assert torch.equal(dense.rnn.weight_hh_l0, torch.full((3, 3), 0.5))
    assert not dense.rnn.weight_hh_l0.requires_grad and neuron.rnn.weight_hh_l0.requires_grad
    with pytest.raises(ValueError, match="one value or one per neuron"):
        LeakyParallel(2, 3, beta=[0.5, 0.5])


def test_lapicque_is_leaky_with_rc_constants():
    x = torch.rand(6, 2, 3)
    _, mem_l = Lapicque(R=2.0, C=0.5, time_step=0.25)(x)
    _, mem_k = Leaky(beta=1 - 0.25 / (2.0 * 0.5))(x * (0.25 / 0.5))
    torch.testing.assert_close(mem_l, mem_k)


@pytest.mark.parametrize("kind", KINDS)
def test_step_matches_sequence(kind):
    neuron = make(kind, "subtract", "atan")
    x = inputs(False, seed=1, kind=kind).detach()
    full = neuron(x)
    state, spikes = None, []
    for t in range(T):
        spk, state = neuron.step(x[t], state)
        spikes.append(spk)
    torch.testing.assert_close(torch.stack(spikes), full[0])
    torch.testing.assert_close(state.mem, full[-1][-1])


def test_beta_is_clamped_and_gets_no_gradient_outside_0_1():
    neuron = Leaky(beta=torch.tensor([1.5, 0.5]), learn_beta=True)
    x = torch.rand(5, 2, 2)
    _, mem = neuron(x)
    _, mem_ref = Leaky(beta=torch.tensor([1.0, 0.5]))(x)
    torch.testing.assert_close(mem, mem_ref)
    mem.sum().backward()
    assert neuron.beta.grad[0] == 0 and neuron.beta.grad[1] != 0


def test_plain_callable_surrogate_uses_the_reference_path():
    def spike(x):
        return surrogates.get("sigmoid")(x)

    neuron = Leaky(surrogate=spike)
    assert not neuron.uses_fused
    spk, _ = neuron(torch.rand(4, 2, 3) * 2)
    assert spk.shape == (4, 2, 3)


def test_static_input_equals_repeated_input():
    x = torch.rand(4, 8, requires_grad=True)
    n = Leaky(beta=0.9, threshold=0.5)
    spk_s, mem_s = n(x, 10)
    (g_static,) = torch.autograd.grad(mem_s.sum() + spk_s.sum(), x)
    spk_r, mem_r = n(x.unsqueeze(0).repeat(10, 1, 1))
    (g_repeat,) = torch.autograd.grad(mem_r.sum() + spk_r.sum(), x)
    assert torch.equal(spk_s, spk_r) and torch.equal(mem_s, mem_r)
    torch.testing.assert_close(g_static, g_repeat)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="reset must be one of"):
        Leaky(reset="soft")
    with pytest.raises(ValueError, match="threshold must be > 0"):
        Leaky(threshold=0)
    with pytest.raises(ValueError, match="needs features"):
        RLeaky()
    assert set(neurons.NEURONS) >= {"leaky", "synaptic", "rleaky", "lapicque"}


# --- SLSTM and SConv2dLSTM: LSTM cells whose hidden state spikes ------------------------------------------


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _lstm_by_hand(x, w_in, w_mem, bias, threshold, reset, order="ifgo"):
    """One neuron's (syn, mem, spike) over the inputs ``x``, in float64, from gate pre-activations
    ``w_in[k]*x + w_mem[k]*mem + bias[k]`` with the gates k listed in ``order`` (torch's LSTMCell: ifgo,
    SConv2dLSTM: ifog), and snnTorch's reset: decided by the previous membrane, acting on the new one."""
    syn = mem = 0.0
    out = []
    for x_t in x:
        z = {k: w_in[n] * x_t + w_mem[n] * mem + bias[n] for n, k in enumerate(order)}
        i, f, o, g = _sigmoid(z["i"]), _sigmoid(z["f"]), _sigmoid(z["o"]), np.tanh(z["g"])
        syn = f * syn + i * g
        h = o * np.tanh(syn)
        fired_before = mem > threshold
        if reset == "subtract":
            h -= threshold * fired_before
        elif reset == "zero":
            h *= 1 - fired_before
        mem = h
        out.append((syn, mem, float(mem > threshold)))
    return np.array(out).T  # syn, mem, spike


LSTM_GATES = dict(w_in=[1.0, 2.0, 0.5, 1.5], w_mem=[0.5, -1.0, 1.0, 0.25], bias=[0.0, 0.25, 0.125, -0.5])


def _slstm_by_hand_weights(reset, threshold=0.25):
    neuron = neurons.SLSTM(1, 1, threshold=threshold, reset=reset, learn_threshold=True)
    with torch.no_grad():
        neuron.lstm_cell.weight_ih.copy_(torch.tensor(LSTM_GATES["w_in"]).view(4, 1))
        neuron.lstm_cell.weight_hh.copy_(torch.tensor(LSTM_GATES["w_mem"]).view(4, 1))
        neuron.lstm_cell.bias_ih.copy_(torch.tensor(LSTM_GATES["bias"]))
        neuron.lstm_cell.bias_hh.zero_()
    return neuron


X_LSTM = [1.0, 0.5, 2.0, -1.0, 1.0, 1.0, 0.0, 3.0]


@pytest.mark.parametrize("reset", RESETS)
def test_slstm_follows_the_lstm_equations_and_each_reset_by_hand(reset):
    neuron = _slstm_by_hand_weights(reset)
    spk, syn, mem = neuron(torch.tensor(X_LSTM).view(-1, 1, 1))
    syn_h, mem_h, spk_h = _lstm_by_hand(X_LSTM, threshold=0.25, reset=reset, order="ifgo", **LSTM_GATES)
    np.testing.assert_allclose(syn.flatten().detach().numpy(), syn_h, atol=1e-6)
    np.testing.assert_allclose(mem.flatten().detach().numpy(), mem_h, atol=1e-6)
    assert spk.flatten().tolist() == spk_h.tolist()
    assert 0 < spk_h.sum() < len(X_LSTM)  # some steps fire, some do not: the reset has work to do


def test_the_lstm_resets_act_differently_and_never_touch_syn():
    x = torch.tensor(X_LSTM).view(-1, 1, 1)
    traces = {r: _slstm_by_hand_weights(r)(x) for r in RESETS}
    mems = {r: tuple(out[2].flatten().tolist()) for r, out in traces.items()}
    assert len(set(mems.values())) == len(RESETS), mems
    # The first step cannot reset (mem[-1] = 0), so every mode starts alike; without W_hh syn would never differ.
    assert len({m[0] for m in mems.values()}) == 1


def test_slstm_without_recurrent_weights_has_a_closed_form():
    # W_hh = 0 and a constant input: constant gates, so syn[t] = i*g*(1 - f^(t+1))/(1 - f), mem[t] = o*tanh(syn[t]).
    neuron = neurons.SLSTM(1, 1, threshold=0.5)
    assert neuron.reset == "none"  # snnTorch's default for its LSTMs
    with torch.no_grad():
        neuron.lstm_cell.weight_ih.copy_(torch.tensor([[0.5], [1.0], [2.0], [-0.5]]))  # i, f, g, o
        neuron.lstm_cell.weight_hh.zero_()
        neuron.lstm_cell.bias_ih.zero_()
        neuron.lstm_cell.bias_hh.zero_()
    spk, syn, mem = neuron(torch.ones(6, 1, 1))
    i, f, g, o = _sigmoid(0.5), _sigmoid(1.0), np.tanh(2.0), _sigmoid(-0.5)
    t = np.arange(6)
    syn_c = i * g * (1 - f ** (t + 1)) / (1 - f)
    np.testing.assert_allclose(syn.flatten().detach().numpy(), syn_c, rtol=1e-6)
    np.testing.assert_allclose(mem.flatten().detach().numpy(), o * np.tanh(syn_c), rtol=1e-6)
    assert spk.flatten().tolist() == (o * np.tanh(syn_c) > 0.5).astype(float).tolist()


def _sconv_by_hand_weights(reset, kernel_size=1, threshold=0.25, **kw):
    """SConv2dLSTM(1, 1) with the gates of LSTM_GATES in its order (i, f, o, g) on the kernel's centre tap."""
    neuron = neurons.SConv2dLSTM(1, 1, kernel_size, threshold=threshold, reset=reset, learn_threshold=True, **kw)
    c = kernel_size // 2
    with torch.no_grad():
        neuron.conv.weight.zero_()
        neuron.conv.weight[:, 0, c, c] = torch.tensor([LSTM_GATES["w_in"][k] for k in (0, 1, 3, 2)])
        neuron.conv.weight[:, 1, c, c] = torch.tensor([LSTM_GATES["w_mem"][k] for k in (0, 1, 3, 2)])
        neuron.conv.bias.copy_(torch.tensor([LSTM_GATES["bias"][k] for k in (0, 1, 3, 2)]))
    return neuron


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("kernel_size", [1, 3])
def test_sconv2dlstm_follows_its_gate_order_and_each_reset_by_hand(reset, kernel_size):
    # A centre-tap kernel makes each pixel its own LSTM; the pixels see different inputs.
    neuron = _sconv_by_hand_weights(reset, kernel_size)
    x = torch.tensor(X_LSTM).view(-1, 1, 1, 1, 1) * torch.tensor([1.0, 0.5, -1.0, 2.0]).view(1, 1, 1, 2, 2)
    spk, syn, mem = neuron(x)
    assert spk.shape == syn.shape == mem.shape == (len(X_LSTM), 1, 1, 2, 2)
    for r, c in itertools.product(range(2), range(2)):
        pixel = x[:, 0, 0, r, c].tolist()
        syn_h, mem_h, spk_h = _lstm_by_hand(pixel, threshold=0.25, reset=reset, order="ifog", **{
            k: [v[n] for n in (0, 1, 3, 2)] for k, v in LSTM_GATES.items()})  # fmt: skip
        np.testing.assert_allclose(syn[:, 0, 0, r, c].detach().numpy(), syn_h, atol=1e-6)
        np.testing.assert_allclose(mem[:, 0, 0, r, c].detach().numpy(), mem_h, atol=1e-6)
        assert spk[:, 0, 0, r, c].tolist() == spk_h.tolist()


def test_sconv2dlstm_is_slstm_with_its_gates_reordered_on_a_single_pixel():
    torch.manual_seed(0)
    cell = neurons.SLSTM(3, 2, threshold=0.05, reset="subtract")
    conv = neurons.SConv2dLSTM(3, 2, 1, threshold=0.05, reset="subtract")
    ifog = [0, 1, 3, 2]  # torch's LSTMCell stacks i, f, g, o; SConv2dLSTM splits i, f, o, g
    w_ih, w_hh = (w.view(4, 2, -1)[ifog].reshape(8, -1) for w in (cell.lstm_cell.weight_ih, cell.lstm_cell.weight_hh))
    bias = (cell.lstm_cell.bias_ih + cell.lstm_cell.bias_hh).view(4, 2)[ifog].reshape(8)
    with torch.no_grad():
        conv.conv.weight.copy_(torch.cat([w_ih, w_hh], dim=1).view(8, 5, 1, 1))
        conv.conv.bias.copy_(bias)
    x = torch.rand(10, 4, 3) * 4 - 1
    spk_c, syn_c, mem_c = cell(x)
    spk_v, syn_v, mem_v = conv(x.view(10, 4, 3, 1, 1))
    torch.testing.assert_close(mem_v.view(10, 4, 2), mem_c, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(syn_v.view(10, 4, 2), syn_c, rtol=1e-5, atol=1e-6)
    assert 0 < spk_c.sum() < spk_c.numel()
    assert torch.equal(spk_v.view(10, 4, 2), spk_c)


@pytest.mark.parametrize("pool", ["max_pool", "avg_pool"])
def test_sconv2dlstm_pools_the_membrane_it_fires_from_but_resets_from_the_whole_map(pool):
    torch.manual_seed(1)
    neuron = neurons.SConv2dLSTM(2, 3, 3, threshold=0.05, reset="zero", **{pool: 2})
    plain = neurons.SConv2dLSTM(2, 3, 3, threshold=0.05, reset="zero")
    plain.load_state_dict(neuron.state_dict())
    x = torch.rand(6, 2, 2, 4, 6) * 3
    spk, syn, mem = neuron(x)
    _, syn_p, mem_p = plain(x)
    assert spk.shape == (6, 2, 3, 2, 3) and mem.shape == syn.shape == (6, 2, 3, 4, 6)
    assert torch.equal(mem, mem_p) and torch.equal(syn, syn_p)  # the state is the unpooled neuron's
    pooled = (torch.nn.functional.max_pool2d if pool == "max_pool" else torch.nn.functional.avg_pool2d)(
        mem.flatten(0, 1), 2
    ).unflatten(0, (6, 2))
    assert torch.equal(spk, (pooled > 0.05).float())
    assert 0 < spk.sum() < spk.numel()


@pytest.mark.parametrize("kind", ["slstm", "sconv2dlstm"])
@pytest.mark.parametrize("reset", RESETS)
def test_lstm_step_static_input_and_gradients(kind, reset):
    torch.manual_seed(2)
    if kind == "slstm":
        neuron, shape = neurons.SLSTM(3, 4, threshold=0.05, reset=reset, learn_threshold=True), (5, 3)
    else:
        neuron, shape = neurons.SConv2dLSTM(3, 2, 3, threshold=0.05, reset=reset, learn_threshold=True), (5, 3, 2, 4)
    assert not neuron.uses_fused  # no fused kernel: forward is the reference loop
    x = (torch.rand(T, *shape) * 3 - 1).requires_grad_()
    spk, syn, mem = neuron(x)
    assert 0 < spk.sum() < spk.numel()
    ref_out = neuron.reference(x)
    assert all(torch.equal(a, b) for a, b in zip((spk, syn, mem), ref_out, strict=True))
    # step() from no state equals the sequence
    state, spikes = None, []
    for t in range(T):
        s, state = neuron.step(x[t], state)
        spikes.append(s)
    assert torch.equal(torch.stack(spikes), spk)
    assert torch.equal(state.syn, syn[-1]) and torch.equal(state.mem, mem[-1])
    # gradients reach the input, every weight and the learnable threshold
    (spk.sum() + mem.sum()).backward()
    for name, p in [("input", x), *neuron.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    # a static input with time_steps equals it repeated, gradients included
    x0 = x[0].detach().requires_grad_()
    static = neuron(x0, T)
    (g_static,) = torch.autograd.grad(static[0].sum() + static[2].sum(), x0)
    x_rep = x0.detach().unsqueeze(0).repeat(T, *[1] * x0.dim()).requires_grad_()
    repeated = neuron(x_rep)
    (g_rep,) = torch.autograd.grad(repeated[0].sum() + repeated[2].sum(), x_rep)
    assert all(torch.equal(a, b) for a, b in zip(static, repeated, strict=True))
    torch.testing.assert_close(g_static, g_rep.sum(0))


def test_lstm_neurons_take_snntorchs_names_and_refuse_what_they_cannot_do():
    assert set(neurons.SLSTM(2, 3).state_dict()) == {"threshold", "lstm_cell.weight_ih", "lstm_cell.weight_hh",
                                                     "lstm_cell.bias_ih", "lstm_cell.bias_hh"}  # fmt: skip
    assert set(neurons.SLSTM(2, 3, bias=False).state_dict()) == {
        "threshold",
        "lstm_cell.weight_ih",
        "lstm_cell.weight_hh",
    }
    conv = neurons.SConv2dLSTM(2, 3, (3, 5))
    assert set(conv.state_dict()) == {"threshold", "conv.weight", "conv.bias"}
    assert conv.conv.weight.shape == (12, 5, 3, 5) and conv.conv.padding == (1, 2)
    assert "threshold" in dict(neurons.SLSTM(2, 3, learn_threshold=True).named_parameters())
    assert neurons.SConv2dLSTM(1, 1, 3).reset == "none"
    with pytest.raises(ValueError, match="must be odd"):
        neurons.SConv2dLSTM(1, 1, 2)
    with pytest.raises(ValueError, match="not both"):
        neurons.SConv2dLSTM(1, 1, 3, max_pool=2, avg_pool=2)
    with pytest.raises(ValueError, match="reset must be one of"):
        neurons.SLSTM(1, 1, reset="soft")


@pytest.mark.parametrize("path", ["fused", "reference"])
@pytest.mark.parametrize(
    "given,R,C,decay,scale",
    [
        # snnTorch 1.0's _lapicque_cases: beta alone sets R = 1, C = dt/ln(1/beta); with R or C the other follows
        ({"beta": math.exp(-0.5), "time_step": 0.1}, 1.0, 0.2, 0.5, 0.5),
        ({"beta": math.exp(-0.5), "R": 2.0, "time_step": 0.1}, 2.0, 0.1, 0.5, 1.0),
        ({"beta": math.exp(-0.25), "C": 0.5, "time_step": 0.25}, 2.0, 0.5, 0.75, 0.5),
    ],
)
def test_lapicque_given_beta_decays_by_one_minus_log_of_its_inverse_as_snntorch(given, R, C, decay, scale, path):
    neuron = Lapicque(threshold=1.0, reset="subtract", fused=path == "fused", **given)
    assert neuron.R == pytest.approx(R, rel=1e-6) and neuron.C == pytest.approx(C, rel=1e-6)
    assert float(neuron.beta) == pytest.approx(decay, rel=1e-6)  # 1 - dt/(R*C) = 1 - ln(1/beta), not beta
    assert neuron.input_scale == pytest.approx(scale, rel=1e-6)  # dt/C
    x = torch.tensor([3.0, 1.0, 0.0, 2.0, 0.0]).view(5, 1, 1)
    spk, mem = neuron(x) if path == "fused" else neuron.reference(x)
    want, m, fired = [], 0.0, 0.0
    for t in range(5):  # snnTorch: mem = scale*I + decay*mem - reset*threshold, reset from the previous mem
        m = scale * float(x[t]) + decay * m - fired
        fired = float(m > 1.0)
        want.append(m)
    torch.testing.assert_close(mem.flatten(), torch.tensor(want), rtol=0, atol=1e-5)
    assert spk.flatten().tolist() == [float(v > 1.0) for v in want]


def test_lapicque_takes_beta_or_two_of_beta_r_and_c():
    assert float(Lapicque(beta=0.9).beta) == pytest.approx(1 - math.log(1 / 0.9), rel=1e-6)  # 0.8946, not 0.9
    assert float(Lapicque().beta) == pytest.approx(0.96)  # no constants at all: R = 5, C = 5e-3, dt = 1e-3
    for kwargs, given in [({"beta": 0.9, "R": 1.0, "C": 1.0}, "beta and R and C"), ({"R": 1.0}, "R"),
                          ({"C": 1.0}, "C")]:  # fmt: skip
        with pytest.raises(ValueError, match=f"Lapicque takes beta, or two of beta, R and C .*; got {given}$"):
            Lapicque(**kwargs)
    for beta in (0.3, 1.0, [0.9, 0.2], float("nan")):
        with pytest.raises(ValueError, match=r"needs 1/e <= beta < 1"):
            Lapicque(beta=beta)
    with pytest.raises(ValueError, match="needs R > 0"):
        Lapicque(beta=0.9, R=-1.0)
    with pytest.raises(ValueError, match="needs time_step <= R\\*C"):
        Lapicque(R=1.0, C=1e-4)


def test_lapicque_with_one_beta_per_neuron_scales_each_neurons_input():
    betas = [math.exp(-0.5), math.exp(-0.25)]
    neuron = Lapicque(beta=betas, threshold=100.0, reset="none")
    torch.testing.assert_close(neuron.beta, torch.tensor([0.5, 0.75]))
    torch.testing.assert_close(neuron.input_scale, torch.tensor([0.5, 0.25]))
    assert "input_scale" not in neuron.state_dict()  # derived from R, C and dt, as they are not saved
    _, mem = neuron(torch.ones(2, 3, 2))
    torch.testing.assert_close(mem[1], torch.tensor([[0.75, 0.4375]] * 3))
