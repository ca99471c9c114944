"""The C leaky scan (kernels/leaky.c via kernels/native.py) against the reference equations and the torch scan."""

import itertools
import shutil

import pytest
import torch

from snnlab import catalog
from snnlab.engine import surrogates
from snnlab.engine.kernels import fused, native
from snnlab.engine.kernels import reference as ref
from tests.engine.scan_checks import assert_decay_scan_matches_torch, assert_synaptic_matches_reference

SURROGATES = [i.name for i in surrogates.names()]
NEURON_RESETS = list(catalog.RESETS)  # what a neuron takes
RESETS = [*NEURON_RESETS, "zero_step"]  # what the scans take (zero_step: Synaptic's, RLeaky's, Lapicque's zero)
# 3 blocks of 512 and a ragged end; T*n above the size that is split over threads.
T, B, N = 23, 4, 1030


def test_the_c_scan_is_built_where_a_compiler_exists():
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler: the torch scan is used")
    assert native.status() == "native"


def _inputs(static: bool, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (B, N) if static else (T, B, N)
    # Multiples of 1/8 in [-1, 2]: with beta 0.5 many membranes land exactly on the threshold.
    return (torch.randint(-8, 17, shape, generator=g) / 8).float().requires_grad_()


def _scan(path: str, x, beta, thr, reset, surrogate, static, g_spk, g_mem):
    time_steps = T if static else None
    if path == "reference":
        spk, mem = ref.leaky(x, beta, thr, reset, surrogate, time_steps)
    else:
        spk, mem = fused.LeakyScan.apply(x, beta, thr, reset, surrogate, time_steps)
    grads = torch.autograd.grad((spk * g_spk).sum() + (mem * g_mem).sum(), [x, beta, thr])
    return spk, mem, grads


@pytest.mark.skipif(native.status() != "native", reason="the C scan is not available here")
@pytest.mark.parametrize("reset,surrogate", list(itertools.product(RESETS, SURROGATES)))
def test_c_scan_equals_reference(reset, surrogate):
    fn = surrogates.get(surrogate)
    for static, beta_value in itertools.product((False, True), (0.5, 0.9)):
        x = _inputs(static, seed=len(reset) + len(surrogate))
        beta = torch.tensor(beta_value, requires_grad=True)
        thr = torch.tensor(1.0, requires_grad=True)
        assert native.usable(x, beta, thr, reset, fn)
        g = torch.Generator().manual_seed(1)
        g_spk, g_mem = torch.randn(T, B, N, generator=g), torch.randn(T, B, N, generator=g)
        spk_c, mem_c, grads_c = _scan("fused", x, beta, thr, reset, fn, static, g_spk, g_mem)
        spk_r, mem_r, grads_r = _scan("reference", x, beta, thr, reset, fn, static, g_spk, g_mem)
        assert torch.equal(mem_c, mem_r) and torch.equal(spk_c, spk_r)  # the same float operations
        assert spk_c.sum() > 0 and (mem_r == 1.0).any()  # spikes, and membranes exactly at threshold
        for a, b in zip(grads_c, grads_r, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4 * max(1.0, b.abs().max().item()))


class _Cubic(surrogates.Surrogate):
    """A surrogate the C source has never heard of: grad(x) = max(0, 1 - |x|)^3."""

    name = "cubic_test"
    defaults = {"width": 1.0}

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return (1 - x.abs()).clamp_min(0) ** 3


@pytest.mark.skipif(native.status() != "native", reason="the C scan is not available here")
def test_a_surrogate_defined_only_in_python_runs_in_c():
    # The backward takes g_spk*sg from the surrogate's own torch code: no formula in leaky.c to add.
    fn = _Cubic()
    x = _inputs(False, seed=9)
    beta, thr = torch.tensor(0.5, requires_grad=True), torch.tensor(1.0, requires_grad=True)
    assert native.usable(x, beta, thr, "subtract", fn)
    g = torch.Generator().manual_seed(2)
    g_spk, g_mem = torch.randn(T, B, N, generator=g), torch.randn(T, B, N, generator=g)
    _, mem_c, grads_c = _scan("fused", x, beta, thr, "subtract", fn, False, g_spk, g_mem)
    _, mem_r, grads_r = _scan("reference", x, beta, thr, "subtract", fn, False, g_spk, g_mem)
    assert torch.equal(mem_c, mem_r)
    assert grads_c[0].abs().sum() > 0
    for a, b in zip(grads_c, grads_r, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4 * max(1.0, b.abs().max().item()))


STEPS = [i.name for i in surrogates.names() if surrogates.get(i.name).steps() is not None]


def test_the_default_and_most_closed_forms_are_written_as_steps():
    assert {"atan", "fast_sigmoid", "triangle", "super_spike"} <= set(STEPS)

    class Doubled(surrogates.ATan):  # a grad_ of its own: its values come from torch, not from ATan's steps
        def grad_(self, x: torch.Tensor) -> torch.Tensor:
            return super().grad_(x).mul_(2)

    assert native._steps(Doubled()) is None and native._steps(surrogates.get("atan")) is not None


@pytest.mark.skipif(native.status() != "native", reason="the C scan is not available here")
@pytest.mark.parametrize("surrogate", STEPS)
def test_a_surrogate_written_as_steps_runs_inside_the_c_loop_with_torchs_values(surrogate, monkeypatch):
    # leaky.c runs the surrogate's Steps itself, with the float operations its torch grad_ uses: the
    # gradients equal, bit for bit, those of the same backward fed the torch values (every reset, static
    # and sequence inputs, a broadcast spike gradient, and the ragged end of the last block).
    fn = surrogates.get(surrogate)
    g = torch.Generator().manual_seed(3)
    mem = (torch.randint(-40, 80, (T, B, N), generator=g) / 16).float()
    g_mem = torch.randn(T, B, N, generator=g)
    beta, thr = torch.tensor(0.9, requires_grad=True), torch.full((N,), 1.0, requires_grad=True)
    spike_gradients = (torch.randn(T, B, N, generator=g), torch.tensor(3.0).expand(T, B, N))  # the second broadcast
    for reset, static, g_spk in itertools.product(RESETS, (False, True), spike_gradients):
        assert native._steps(fn) is not None
        with torch.no_grad():
            in_c = native.leaky_backward(mem, g_spk, g_mem, beta, thr, reset, fn, static)
            with monkeypatch.context() as m:
                m.setattr(native, "_steps", lambda s: None)
                from_torch = native.leaky_backward(mem, g_spk, g_mem, beta, thr, reset, fn, static)
        for a, b in zip(in_c, from_torch, strict=True):
            assert torch.equal(a, b), (reset, static)


@pytest.mark.skipif(native.status() != "native", reason="the C scan is not available here")
def test_broadcast_and_strided_gradients_need_no_copy_and_are_right():
    x = _inputs(False, seed=5)
    beta, thr = torch.tensor(0.75), torch.tensor(1.0)
    fn = surrogates.get("atan")
    spk, mem = fused.LeakyScan.apply(x, beta, thr, "subtract", fn, None)
    spk_r, mem_r = ref.leaky(x, beta, thr, "subtract", fn, None)
    # The gradient of x.sum() arrives as one value with stride 0 everywhere.
    (g_c,) = torch.autograd.grad(3 * spk.sum() + mem.sum(), x, retain_graph=True)
    (g_r,) = torch.autograd.grad(3 * spk_r.sum() + mem_r.sum(), x, retain_graph=True)
    torch.testing.assert_close(g_c, g_r, rtol=1e-5, atol=1e-5)
    strided = torch.randn(N, B, T).permute(2, 1, 0)  # not contiguous
    (g_c,) = torch.autograd.grad((spk * strided).sum(), x)
    (g_r,) = torch.autograd.grad((spk_r * strided).sum(), x)
    torch.testing.assert_close(g_c, g_r, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("c_scan", [True, False])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_an_input_expanded_over_time_is_read_once_with_the_same_numbers(c_scan, reset, monkeypatch):
    if c_scan and native.status() != "native":
        pytest.skip("the C scan is not available here")
    if not c_scan:
        monkeypatch.setattr(native, "_load", lambda: None)
    fn = surrogates.get("atan")
    g = torch.Generator().manual_seed(3)
    g_spk, g_mem = torch.randn(T, B, N, generator=g), torch.randn(T, B, N, generator=g)
    results = []
    for expanded in (True, False):
        step = _inputs(True, seed=4)  # [B, N], the same current at every step
        beta = torch.full((N,), 0.75, requires_grad=True)
        thr = torch.tensor(1.0, requires_grad=True)
        x = step.expand(T, B, N) if expanded else step.expand(T, B, N).contiguous()
        spk, mem = fused.LeakyScan.apply(x, beta, thr, reset, fn, None)
        grads = torch.autograd.grad((spk * g_spk).sum() + (mem * g_mem).sum(), [step, beta, thr])
        results.append((spk, mem, *grads))
    assert results[0][0].sum() > 0
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


def test_an_expanded_input_reaches_the_c_scan_as_one_step(monkeypatch):
    if native.status() != "native":
        pytest.skip("the C scan is not available here")
    seen = []
    forward = native.leaky_forward
    monkeypatch.setattr(native, "leaky_forward", lambda current, *a: seen.append(current.shape) or forward(current, *a))
    step, beta, thr, fn = _inputs(True, seed=4), torch.tensor(0.75), torch.tensor(1.0), surrogates.get("atan")
    fused.LeakyScan.apply(step.expand(T, B, N), beta, thr, "subtract", fn, None)
    fused.LeakyScan.apply(step.expand(T, B, N) + 0, beta, thr, "subtract", fn, None)
    assert seen == [(B, N), (T, B, N)]  # no [T, B, N] copy of an expanded input; a real sequence whole


def test_the_torch_scan_is_used_where_the_c_scan_does_not_apply(monkeypatch):
    x = _inputs(False, seed=2)
    fn = surrogates.get("atan")
    per_neuron = torch.full((N,), 0.5)
    assert native.usable(x, per_neuron, torch.tensor(1.0), "subtract", fn)
    per_sample = torch.full((B, N), 0.5)  # varies over the batch: not one value per neuron
    assert not native.usable(x, per_sample, torch.tensor(1.0), "subtract", fn)
    assert not native.usable(x.double(), torch.tensor(0.5).double(), torch.tensor(1.0).double(), "subtract", fn)
    # Without the library (no compiler, or SNNLAB_NATIVE=0) the torch scan gives the same spikes.
    beta, thr = torch.tensor(0.5, requires_grad=True), torch.tensor(1.0, requires_grad=True)
    g_spk, g_mem = torch.ones(T, B, N), torch.linspace(-1, 1, T * B * N).reshape(T, B, N)
    with_c = _scan("fused", x, beta, thr, "zero", fn, False, g_spk, g_mem)
    monkeypatch.setattr(native, "_load", lambda: None)
    assert not native.usable(x, beta, thr, "zero", fn)
    without = _scan("fused", x, beta, thr, "zero", fn, False, g_spk, g_mem)
    assert torch.equal(with_c[0], without[0]) and torch.equal(with_c[1], without[1])
    for a, b in zip(with_c[2], without[2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-3)


@pytest.mark.skipif(native.status() != "native", reason="the C scan is not available here")
@pytest.mark.parametrize("reset,static", list(itertools.product(NEURON_RESETS, (False, True))))
def test_synaptic_neurons_use_the_c_scan_for_their_membrane(reset, static):
    from snnlab.engine.neurons import Synaptic

    neuron = Synaptic(alpha=0.5, beta=0.75, reset=reset, learn_alpha=True, learn_beta=True, learn_threshold=True)
    x = _inputs(static, seed=11)
    assert_synaptic_matches_reference(neuron, x, T if static else None)


@pytest.mark.skipif(native.status() != "native", reason="the C scan is not available here")
@pytest.mark.parametrize("shape", [(N,), (2, 1, 1)])
def test_per_neuron_parameters_run_in_c_and_get_their_own_gradients(shape):
    # (N,): one per neuron of a dense layer; (2, 1, 1): one per channel of a [B, 2, H, W] conv output.
    fn = surrogates.get("fast_sigmoid")
    features = (N,) if len(shape) == 1 else (2, 5, 103)
    g = torch.Generator().manual_seed(4)
    x = (torch.randint(-8, 17, (T, B, *features), generator=g) / 8).float().requires_grad_()
    beta = torch.rand(shape, generator=g).requires_grad_()
    thr = (0.5 + torch.rand(shape, generator=g)).requires_grad_()
    assert native.usable(x, beta, thr, "zero", fn)
    g_spk, g_mem = torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g)
    spk_c, mem_c, grads_c = _scan("fused", x, beta, thr, "zero", fn, False, g_spk, g_mem)
    spk_r, mem_r, grads_r = _scan("reference", x, beta, thr, "zero", fn, False, g_spk, g_mem)
    assert torch.equal(spk_c, spk_r) and torch.equal(mem_c, mem_r)
    for a, b in zip(grads_c, grads_r, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4 * max(1.0, b.abs().max().item()))


@pytest.mark.skipif(native.status() != "native", reason="the C scan is not available here")
def test_the_synaptic_current_runs_in_c_and_equals_the_torch_loop():
    assert native.decay_usable(torch.zeros(2, 3, 4), torch.rand(4))
    assert_decay_scan_matches_torch(lambda x, a, out, static, reverse: native.decay_scan(x, a, out, static, reverse))
