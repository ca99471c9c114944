"""The Triton leaky scan (kernels/cuda.py) against the reference equations, run by Triton's interpreter.

Not collected by the main run: ``test_cuda_kernel.py`` runs this file in a fresh interpreter with
``TRITON_INTERPRET=1`` (the kernels then run on CPU tensors) and ``SNNLAB_NATIVE=0`` (so that the C scan
does not take the CPU tensors first).
"""

import itertools
import os

import pytest
import torch

from snnlab import catalog
from snnlab.engine import surrogates
from snnlab.engine.kernels import cuda, fused, native
from snnlab.engine.kernels import reference as ref
from snnlab.engine.kernels import spikingjelly as sj
from tests.engine.scan_checks import (
    assert_decay_scan_matches_torch,
    assert_grads_close,
    assert_synaptic_matches_reference,
)

assert os.environ.get("TRITON_INTERPRET") == "1" and os.environ.get("SNNLAB_NATIVE") == "0"

SURROGATES = [i.name for i in surrogates.names()]
NEURON_RESETS = list(catalog.RESETS)  # what a neuron takes
RESETS = [*NEURON_RESETS, "zero_step"]  # what the scans take (zero_step: Synaptic's, RLeaky's, Lapicque's zero)
T, B, N = 9, 3, 350  # B * N = 1050: 2 programs of BLOCK = 1024, the last one ragged (26 elements)


def _inputs(shape, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # Multiples of 1/8 in [-1, 2]: with beta 0.5 many membranes land exactly on the threshold.
    return (torch.randint(-8, 17, shape, generator=g) / 8).float().requires_grad_()


def _run(scan, x, beta, thr, reset, fn, time_steps, g_spk, g_mem):
    spk, mem = scan(x, beta, thr, reset, fn, time_steps)
    grads = torch.autograd.grad((spk * g_spk).sum() + (mem * g_mem).sum(), [x, beta, thr])
    return spk, mem, grads


@pytest.fixture(autouse=True)
def _the_kernels_ran():
    """A kernel that fails falls back to the torch scan, which would pass these tests too: catch that."""
    yield
    assert cuda.status() == "triton"


def test_the_triton_scan_is_the_one_in_use():
    assert cuda.status() == "triton" and native.status().startswith("torch scan")


@pytest.mark.parametrize("reset,surrogate", list(itertools.product(RESETS, SURROGATES)))
def test_triton_scan_equals_reference(reset, surrogate):
    fn = surrogates.get(surrogate)
    for static, beta_value in itertools.product((False, True), (0.5, 0.9)):
        x = _inputs((B, N) if static else (T, B, N), seed=len(reset) + len(surrogate))
        beta = torch.tensor(beta_value, requires_grad=True)
        thr = torch.tensor(1.0, requires_grad=True)
        time_steps = T if static else None
        assert cuda.usable(x, beta, thr, reset, fn, static)
        g = torch.Generator().manual_seed(1)
        g_spk, g_mem = torch.randn(T, B, N, generator=g), torch.randn(T, B, N, generator=g)
        spk, mem, grads = _run(fused.LeakyScan.apply, x, beta, thr, reset, fn, time_steps, g_spk, g_mem)
        spk_r, mem_r, grads_r = _run(ref.leaky, x, beta, thr, reset, fn, time_steps, g_spk, g_mem)
        assert torch.equal(mem, mem_r) and torch.equal(spk, spk_r)  # the same float operations
        assert spk.sum() > 0 and (mem_r == 1.0).any()  # spikes, and membranes exactly at threshold
        assert_grads_close(grads, grads_r)


@pytest.mark.parametrize("shape", [(N,), (2, 1, 1)])
@pytest.mark.parametrize("reset", RESETS)
def test_per_neuron_parameters_get_their_own_gradients(shape, reset):
    fn = surrogates.get("fast_sigmoid")
    features = (N,) if len(shape) == 1 else (2, 5, 35)
    g = torch.Generator().manual_seed(4)
    x = _inputs((T, B, *features), seed=4)
    beta = torch.rand(shape, generator=g).requires_grad_()
    thr = (0.5 + torch.rand(shape, generator=g)).requires_grad_()
    assert cuda.usable(x, beta, thr, reset, fn)
    g_spk, g_mem = torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g)
    spk, mem, grads = _run(fused.LeakyScan.apply, x, beta, thr, reset, fn, None, g_spk, g_mem)
    spk_r, mem_r, grads_r = _run(ref.leaky, x, beta, thr, reset, fn, None, g_spk, g_mem)
    assert torch.equal(spk, spk_r) and torch.equal(mem, mem_r)
    assert_grads_close(grads, grads_r)


def test_gradients_of_one_output_alone_and_broadcast_gradients():
    fn = surrogates.get("atan")
    x = _inputs((T, B, N), seed=5)
    beta, thr = torch.tensor(0.75, requires_grad=True), torch.tensor(1.0, requires_grad=True)
    spk, mem = fused.LeakyScan.apply(x, beta, thr, "subtract", fn, None)
    spk_r, mem_r = ref.leaky(x, beta, thr, "subtract", fn, None)
    for loss, loss_r in (((3 * spk).sum(), (3 * spk_r).sum()), (mem.sum(), mem_r.sum())):
        got = torch.autograd.grad(loss, [x, beta, thr], retain_graph=True)
        assert_grads_close(got, torch.autograd.grad(loss_r, [x, beta, thr], retain_graph=True))


@pytest.mark.parametrize("reset,static", list(itertools.product(NEURON_RESETS, (False, True))))
def test_synaptic_neurons_use_the_triton_scan_for_their_membrane(reset, static):
    from snnlab.engine.neurons import Synaptic

    neuron = Synaptic(alpha=0.5, beta=0.75, reset=reset, learn_alpha=True, learn_beta=True, learn_threshold=True)
    x = _inputs((B, N) if static else (T, B, N), seed=11)
    assert_synaptic_matches_reference(neuron, x, T if static else None)


def test_the_synaptic_current_runs_in_triton_and_equals_the_torch_loop():
    assert cuda.decay_usable(torch.zeros(2, 3, 4), torch.rand(4))
    assert_decay_scan_matches_torch(lambda x, a, out, static, reverse: cuda.decay_scan(x, a, out, static, reverse))


def test_a_threshold_learned_below_zero_gets_the_torch_scans_gradient(monkeypatch):
    # Thresholds start > 0 but a learned one is not clamped; reset[0] is 0 whatever its sign.
    fn = surrogates.get("atan")
    x = _inputs((T, B, N), seed=8)
    beta, thr = torch.tensor(0.9, requires_grad=True), torch.tensor(-0.5, requires_grad=True)
    g = torch.Generator().manual_seed(3)
    g_spk, g_mem = torch.randn(T, B, N, generator=g), torch.randn(T, B, N, generator=g)
    spk, mem, grads = _run(fused.LeakyScan.apply, x, beta, thr, "subtract", fn, None, g_spk, g_mem)
    monkeypatch.setattr(cuda, "usable", lambda *args: False)
    spk_t, mem_t, grads_t = _run(fused.LeakyScan.apply, x, beta, thr, "subtract", fn, None, g_spk, g_mem)
    assert torch.equal(spk, spk_t) and torch.equal(mem, mem_t)
    assert_grads_close(grads, grads_t)


def test_a_kernel_that_fails_falls_back_to_the_torch_scan_and_says_why(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no kernel image is available for execution on the device")

    kernels = cuda._load()
    monkeypatch.setattr(cuda._LIBRARY, "value", (kernels[0], _Launcher(broken), *kernels[2:]))
    fn = surrogates.get("atan")
    x = _inputs((T, B, N), seed=6)
    beta, thr = torch.tensor(0.9, requires_grad=True), torch.tensor(1.0, requires_grad=True)
    g = torch.Generator().manual_seed(2)
    g_spk, g_mem = torch.randn(T, B, N, generator=g), torch.randn(T, B, N, generator=g)
    spk, mem, grads = _run(fused.LeakyScan.apply, x, beta, thr, "subtract", fn, None, g_spk, g_mem)
    spk_r, mem_r, grads_r = _run(ref.leaky, x, beta, thr, "subtract", fn, None, g_spk, g_mem)
    assert torch.equal(spk, spk_r) and torch.equal(mem, mem_r)
    assert_grads_close(grads, grads_r)
    assert cuda.status() == "torch scan (Triton kernel failed: RuntimeError: no kernel image is available for " \
        "execution on the device)"  # fmt: skip
    assert not cuda.usable(x, beta, thr, "subtract", fn)
    monkeypatch.undo()  # the real kernels again, for the fixture's check


SJ_KINDS = [("if", True), ("lif", True), ("lif", False), ("plif", True), ("plif", False)]


def _sj_run(use_triton: bool, kind, x0, dyn, fn, static, g_spk, g_v, monkeypatch):
    """SpikingJelly's neuron through the Triton scan or the torch scan: (spikes, v, dL/dx[, dL/dw])."""
    with monkeypatch.context() as m:
        if not use_triton:
            m.setattr(cuda, "sj_usable", lambda *args: False)
        x = x0.clone().requires_grad_()
        w = torch.tensor(-0.4, requires_grad=True)
        leak = None if kind == "if" else 2.0 if kind == "lif" else w.sigmoid()
        assert sj.path(x, leak, fn) == ("Triton" if use_triton else "torch")
        spk, v = sj.scan(x, leak, dyn, fn, T if static else None)
        loss = (spk * g_spk).sum() if g_spk is not None else 0
        loss = loss + ((v * g_v).sum() if g_v is not None else 0)
        return spk, v, torch.autograd.grad(loss, [x, w] if kind == "plif" else [x])


@pytest.mark.parametrize("kind,decay", SJ_KINDS)
@pytest.mark.parametrize("v_reset", [0.0, None, -0.3])
def test_spikingjelly_neurons_in_triton_equal_the_torch_scan(kind, decay, v_reset, monkeypatch):
    # Forward bit for bit (tau 2 and multiples of 1/8: ties at the threshold fire); the backward bit for bit
    # with atan (the same operations, the surrogate by torch in both), to rounding with sj_sigmoid (its exp
    # over the whole sequence may round a last bit differently from torch's call per step).
    g = torch.Generator().manual_seed(12)
    g_spk, g_v = torch.randn(T, B, N, generator=g), torch.randn(T, B, N, generator=g)
    for detach, static, surrogate in itertools.product((False, True), (False, True), ("atan", "sj_sigmoid")):
        dyn = sj.Dynamics(decay, 1.0, v_reset, detach)
        fn = surrogates.get(surrogate)
        x = _inputs((B, N) if static else (T, B, N), seed=len(surrogate)).detach()
        got = _sj_run(True, kind, x, dyn, fn, static, g_spk, g_v, monkeypatch)
        want = _sj_run(False, kind, x, dyn, fn, static, g_spk, g_v, monkeypatch)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        assert 0 < got[0].mean() < 1
        for a, b in zip(got[2], want[2], strict=True):
            if surrogate == "atan":
                assert torch.equal(a, b), (detach, static)
            else:
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * max(1.0, b.abs().max().item()))


def test_spikingjelly_neurons_in_triton_with_one_output_or_a_broadcast_gradient(monkeypatch):
    fn = surrogates.get("atan")
    x = _inputs((T, B, N), seed=13).detach()
    for kind, v_reset in (("plif", 0.0), ("lif", None), ("if", -0.3)):
        dyn = sj.Dynamics(True, 1.0, v_reset, False)
        for g_spk, g_v in (
            (torch.randn(T, B, N), None),
            (None, torch.randn(T, B, N)),
            (torch.ones(1).expand(T, B, N), None),
        ):
            got = _sj_run(True, kind, x, dyn, fn, False, g_spk, g_v, monkeypatch)
            want = _sj_run(False, kind, x, dyn, fn, False, g_spk, g_v, monkeypatch)
            assert all(torch.equal(a, b) for a, b in zip(got[2], want[2], strict=True))


def test_a_spikingjelly_kernel_that_fails_falls_back_to_the_torch_scan(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no kernel image is available for execution on the device")

    kernels = cuda._load()
    monkeypatch.setattr(cuda._LIBRARY, "value", (*kernels[:5], _Launcher(broken)))  # the backward fails
    fn = surrogates.get("atan")
    x = _inputs((T, B, N), seed=14).detach()
    dyn = sj.Dynamics(True, 1.0, 0.0, False)
    g = torch.Generator().manual_seed(5)
    g_spk, g_v = torch.randn(T, B, N, generator=g), torch.randn(T, B, N, generator=g)
    got = _sj_run(True, "plif", x, dyn, fn, False, g_spk, g_v, monkeypatch)
    assert cuda.status().startswith("torch scan (Triton kernel failed: RuntimeError")
    want = _sj_run(False, "plif", x, dyn, fn, False, g_spk, g_v, monkeypatch)
    assert all(torch.equal(a, b) for a, b in zip(got[2], want[2], strict=True))
    monkeypatch.undo()  # the real kernels again, for the fixture's check


class _Launcher:
    """Stands in for a jitted kernel: ``kernel[grid](...)`` calls ``fn``."""

    def __init__(self, fn):
        self.fn = fn

    def __getitem__(self, grid):
        return self.fn
