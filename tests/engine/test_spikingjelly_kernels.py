"""The C scan of SpikingJelly's IF, LIF and PLIF (leaky.c via kernels/native.py) against the torch scan of
kernels/spikingjelly.py, which it replaces on the CPU, and against the step loop.

Both directions are bit for bit the torch scan's: the same float operations in the same order. A surrogate
written as Steps runs inside the C scan; one with a ``grad_`` of its own (SpikingJelly's default
``sj_sigmoid``) runs in torch on one step's slice at a time, as the torch scan calls it (a call over the whole
sequence could round the last bit of a few elements differently).
"""

import itertools

import pytest
import torch

from snnlab.engine import surrogates
from snnlab.engine.kernels import native
from snnlab.engine.kernels import spikingjelly as sj
from snnlab.engine.neurons import IF, LIF, PLIF

pytestmark = pytest.mark.skipif(native.status() != "native", reason="the C scan is not available here")

T, B, N = 11, 3, 1100  # 3 blocks of 512 per step (7 in all), the last one ragged
STEPS_SURROGATES = ["atan", "triangle", "super_spike"]  # written as Steps: run inside the C scan
OWN_GRAD = ["sj_sigmoid", "sigmoid", "s2nn"]  # a grad_ of their own: computed by torch, handed to C
KINDS = [
    (kind, decay)
    for kind, decay in itertools.product(["if", "lif", "plif"], [True, False])
    if kind != "if" or decay  # IF has no decay_input
]


def _leak(kind: str, tau: float, w: torch.Tensor):
    return None if kind == "if" else tau if kind == "lif" else w.sigmoid()


def _inputs(static: bool, dyadic: bool, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (B, N) if static else (T, B, N)
    if dyadic:  # multiples of 1/8 with tau 2: many membranes land exactly on the threshold (a tie fires)
        return torch.randint(-8, 17, shape, generator=g) / 8
    return torch.randn(shape, generator=g) * 1.5 + 0.6


def run(use_c: bool, kind, x0, tau, dyn, fn, static, g_spk, g_v, monkeypatch):
    """(spikes, v, dL/dx, dL/dw) through the C scan or the torch scan."""
    with monkeypatch.context() as m:
        if not use_c:
            m.setattr(native, "sj_usable", lambda *args: False)
        x = x0.clone().requires_grad_()
        w = torch.tensor(-0.4, requires_grad=True)  # PLIF's q = sigmoid(w)
        leak = _leak(kind, tau, w)
        assert sj.path(x, leak, fn) == ("C" if use_c else "torch")
        spk, v = sj.scan(x, leak, dyn, fn, T if static else None)
        loss = (spk * g_spk).sum() if g_spk is not None else 0
        loss = loss + ((v * g_v).sum() if g_v is not None else 0)
        grads = torch.autograd.grad(loss, [x, w] if kind == "plif" else [x])
    return spk, v, grads


def _membrane_before_reset(x, v, kind, tau, dyn, static):
    """h[t] from x[t] and v[t-1], as the scans charge it."""
    v_prev = torch.cat([sj.initial(v[:1], dyn.v_reset), v[:-1]])
    return sj.charge(x, v_prev, _leak(kind, tau, torch.tensor(0.0)), dyn.decay_input, dyn.v_reset)


def _weights(seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, N, generator=g), torch.randn(T, B, N, generator=g)


@pytest.mark.parametrize("kind, decay", KINDS)
@pytest.mark.parametrize("v_reset", [0.0, None, -0.3])
@pytest.mark.parametrize("detach", [False, True])
def test_the_c_scan_is_the_torch_scan_bit_for_bit(kind, decay, v_reset, detach, monkeypatch):
    dyn = sj.Dynamics(decay, 1.0, v_reset, detach)
    g_spk, g_v = _weights(1)
    for static, dyadic, surrogate in itertools.product((False, True), (False, True), STEPS_SURROGATES):
        fn = surrogates.get(surrogate)
        x = _inputs(static, dyadic, seed=len(surrogate))
        tau = 2.0 if dyadic else 1.7
        c = run(True, kind, x, tau, dyn, fn, static, g_spk, g_v, monkeypatch)
        t = run(False, kind, x, tau, dyn, fn, static, g_spk, g_v, monkeypatch)
        assert 0 < c[0].mean() < 1
        if dyadic and kind != "plif" and v_reset != -0.3:  # membranes exactly at the threshold fired
            h = _membrane_before_reset(x, c[1], kind, tau, dyn, static)
            assert (h == dyn.v_threshold).any() and (c[0][h == dyn.v_threshold] == 1).all()
        assert torch.equal(c[0], t[0]) and torch.equal(c[1], t[1])
        for a, b in zip(c[2], t[2], strict=True):
            assert torch.equal(a, b), (static, dyadic, surrogate)


@pytest.mark.parametrize("kind, decay", KINDS)
@pytest.mark.parametrize("surrogate", OWN_GRAD)
def test_a_surrogate_with_its_own_grad_is_bit_for_bit_too(kind, decay, surrogate, monkeypatch):
    fn = surrogates.get(surrogate)
    g_spk, g_v = _weights(2)
    for v_reset, detach, static in itertools.product((0.0, None), (False, True), (False, True)):
        dyn = sj.Dynamics(decay, 1.0, v_reset, detach)
        x = _inputs(static, False, seed=3)
        c = run(True, kind, x, 1.7, dyn, fn, static, g_spk, g_v, monkeypatch)
        t = run(False, kind, x, 1.7, dyn, fn, static, g_spk, g_v, monkeypatch)
        assert torch.equal(c[0], t[0]) and torch.equal(c[1], t[1])
        for a, b in zip(c[2], t[2], strict=True):
            assert torch.equal(a, b), (v_reset, detach, static)


def test_one_output_alone_and_a_broadcast_gradient(monkeypatch):
    # g_spk or g_v absent (None inside the scan), and the gradient of .sum(): one value with stride 0
    fn = surrogates.get("atan")
    x = _inputs(False, False, seed=5)
    for kind, v_reset in itertools.product(("lif", "plif", "if"), (0.0, None)):
        dyn = sj.Dynamics(True, 1.0, v_reset, False)
        for g_spk, g_v in ((torch.randn(T, B, N), None), (None, torch.randn(T, B, N))):
            c = run(True, kind, x, 1.7, dyn, fn, False, g_spk, g_v, monkeypatch)
            t = run(False, kind, x, 1.7, dyn, fn, False, g_spk, g_v, monkeypatch)
            assert all(torch.equal(a, b) for a, b in zip(c[2], t[2], strict=True))
        results = []
        for use_c in (True, False):
            with monkeypatch.context() as m:
                if not use_c:
                    m.setattr(native, "sj_usable", lambda *args: False)
                xi = x.clone().requires_grad_()
                w = torch.tensor(0.3, requires_grad=True)
                spk, v = sj.scan(xi, _leak(kind, 1.7, w), dyn, fn)
                results.append(torch.autograd.grad(3 * spk.sum() + v.sum(), [xi, w], allow_unused=True))
        assert torch.equal(results[0][0], results[1][0])
        if kind == "plif":
            assert torch.equal(results[0][1], results[1][1])


def test_a_large_layer_split_over_threads_and_a_strided_input(monkeypatch):
    fn = surrogates.get("atan")
    g = torch.Generator().manual_seed(6)
    x = (torch.randn(25, 64, 1000, generator=g) + 0.5).transpose(0, 1)  # [64, 25, 1000] seen as [T=64, 25, ...]
    assert not x.is_contiguous()
    weights = torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # T*n above the size split over threads
    try:
        dyn = sj.Dynamics(True, 1.0, None, False)
        c = run_shape(True, x, dyn, fn, weights, monkeypatch)
        t = run_shape(False, x, dyn, fn, weights, monkeypatch)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(c, t, strict=True))


def run_shape(use_c, x0, dyn, fn, weights, monkeypatch):
    with monkeypatch.context() as m:
        if not use_c:
            m.setattr(native, "sj_usable", lambda *args: False)
        x = x0.clone().requires_grad_()
        w = torch.tensor(-0.2, requires_grad=True)
        spk, v = sj.scan(x, w.sigmoid(), dyn, fn)
        return (spk, v, *torch.autograd.grad((spk * weights[0]).sum() + (v * weights[1]).sum(), [x, w]))


def test_the_neurons_take_the_c_scan_and_other_cases_the_torch_scan():
    x = torch.rand(4, 2, 3)
    fn = surrogates.get("sj_sigmoid")
    for neuron in (IF(), LIF(), PLIF()):
        assert sj.path(x, neuron.leak(x), neuron.spike_fn) == "C"
    assert sj.path(x.double(), 2.0, fn) == "torch"
    assert sj.path(x, torch.tensor([0.5, 0.5]), fn) == "torch"  # q is one value per layer
    assert not native.sj_usable(x, torch.tensor(0.5, dtype=torch.float64), fn)
    # float64 through the neuron: the torch scan, still equal to the step loop
    neuron = LIF(tau=1.7, v_reset=None)
    xd = (torch.randn(9, 2, 3, dtype=torch.float64) + 0.8).requires_grad_()
    spk, v = neuron(xd)
    spk_r, v_r = neuron.reference(xd)
    assert torch.equal(spk, spk_r) and torch.equal(v, v_r)


def test_without_the_library_the_torch_scan_runs(monkeypatch):
    monkeypatch.setattr(native, "_load", lambda: None)
    x = torch.rand(4, 2, 3)
    assert sj.path(x, 2.0, surrogates.get("atan")) == "torch"
    spk, v = LIF()(x * 2)
    spk_r, v_r = LIF().reference(x * 2)
    assert torch.equal(spk, spk_r) and torch.equal(v, v_r)


@pytest.mark.parametrize("static", [False, True])
def test_plifs_w_alone_when_the_input_needs_no_gradient(static, monkeypatch):
    # Input data straight into a PLIF: only dL/dw is wanted, and the C scan computes only that.
    fn = surrogates.get("sj_sigmoid")
    x = _inputs(static, False, seed=9)
    grads = []
    for use_c in (True, False):
        with monkeypatch.context() as m:
            if not use_c:
                m.setattr(native, "sj_usable", lambda *args: False)
            neuron = PLIF(init_tau=1.7, v_reset=None, surrogate=fn)
            spk, v = neuron(x, T) if static else neuron(x)
            grads.append(torch.autograd.grad(spk.sum() + (v * v).sum(), neuron.w)[0])
    assert grads[0] != 0 and torch.equal(grads[0], grads[1])
