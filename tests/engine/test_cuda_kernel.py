"""The Triton scan for CUDA, checked on this machine's CPU through Triton's interpreter.

The cases live in ``triton_interpreted.py``; they run in their own interpreter because
``TRITON_INTERPRET`` and ``SNNLAB_NATIVE`` must be set before anything loads the kernels.
"""

import importlib.util
import inspect
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snnlab.engine import surrogates
from snnlab.engine.kernels import cuda

HERE = Path(__file__).parent
needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed")


@needs_triton
@pytest.mark.slow  # every reset x every surrogate (~120 cases) through Triton's interpreter, in a fresh process
def test_the_triton_scan_matches_the_reference_under_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1", "SNNLAB_NATIVE": "0"}
    one_process = ["-n", "0", "-p", "no:cacheprovider"]  # it is one test of the suite, whose workers are busy
    command = [sys.executable, "-m", "pytest", "-q", *one_process, str(HERE / "triton_interpreted.py")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout


def test_cpu_tensors_never_take_the_triton_scan_outside_the_interpreter():
    x = torch.zeros(2, 3, 4)
    assert not cuda.usable(x, torch.tensor(0.9), torch.tensor(1.0), "subtract", surrogates.get("atan"))


def _compile_for_h100(kernel, constants: dict, **options) -> str:
    """Compile a kernel ahead of time for sm_90 (no GPU needed: Triton ships ptxas) and return its PTX."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = list(inspect.signature(kernel.fn).parameters)
    pointers = {"cur", "mem", "spk", "beta", "thr", "delta", "g_in", "d_beta", "d_thr", "x", "y", "a"}
    pointers |= {"v_out", "q", "v", "g_spk", "g_v", "sg", "g_x", "dq"}  # SpikingJelly's kernels
    floats = {"tau", "vth", "vr"}

    def kind(n: str) -> str:
        return "constexpr" if n in constants else "*fp32" if n in pointers else "fp32" if n in floats else "i32"

    signature = {n: kind(n) for n in names}
    source = ASTSource(kernel, signature, constexprs={(names.index(k),): v for k, v in constants.items()})
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options).asm["ptx"]


@needs_triton
def test_the_kernels_compile_for_a_gpu_and_the_forward_rounds_like_the_reference():
    # The interpreter runs the kernels' Python; this compiles them the way a GPU run would, to PTX and cubin.
    _, forward, backward, decay, sj_forward, sj_backward = cuda._build()
    for static, reset in itertools.product((False, True), cuda.RESETS.values()):
        # With the option leaky_forward launches it with: beta*mem + I rounds twice, as in the reference.
        constants = {"STATIC": static, "RESET": reset, "BLOCK": cuda.BLOCK}
        ptx = _compile_for_h100(forward, constants, enable_fp_fusion=False)
        assert "mul.rn.f32" in ptx and "add.rn.f32" in ptx and "fma" not in ptx
        flags = {"STATIC": static, "RESET": reset, "BETA_GRAD": True, "THR_GRAD": True, "BLOCK": cuda.BLOCK}
        assert ".entry" in _compile_for_h100(backward, flags, enable_fp_fusion=True)
    for static, reverse in ((False, False), (True, False), (False, True)):
        constants = {"STATIC": static, "REVERSE": reverse, "BLOCK": cuda.BLOCK}
        ptx = _compile_for_h100(decay, constants, enable_fp_fusion=False)
        assert "mul.rn.f32" in ptx and "add.rn.f32" in ptx and "fma" not in ptx
    # SpikingJelly's neurons: LIF divides by tau with a correctly rounded division, as torch does (Triton's
    # plain / would be an approximate one); PLIF multiplies by q; nothing fused, forward or backward.
    for kind, decay_input, hard in itertools.product((0, 1, 2), (False, True), (False, True)):
        constants = {"STATIC": False, "KIND": kind, "DECAY": decay_input, "HARD": hard, "BLOCK": cuda.BLOCK}
        ptx = _compile_for_h100(sj_forward, constants, enable_fp_fusion=False)
        assert "add.rn.f32" in ptx and "fma" not in ptx and "div.full" not in ptx and "div.approx" not in ptx
        assert ("div.rn.f32" in ptx) == (kind == 1)
        flags = {**constants, "DETACH": False, "HAS_GS": True, "HAS_GV": True, "WANT_X": True, "WANT_Q": kind == 2}
        ptx = _compile_for_h100(sj_backward, flags, enable_fp_fusion=False)
        assert "fma" not in ptx and ("div.rn.f32" in ptx) == (kind == 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("reset", list(cuda.RESETS))
@pytest.mark.parametrize("static", [False, True])
def test_on_a_gpu_the_triton_scan_equals_the_reference(reset, static):
    from snnlab.engine.kernels import fused
    from snnlab.engine.kernels import reference as ref
    from tests.engine.scan_checks import assert_grads_close

    fn = surrogates.get("atan")
    g = torch.Generator().manual_seed(3)
    T, B, N = 25, 64, 1000
    x = torch.randn((B, N) if static else (T, B, N), generator=g) * 0.7 + 0.3
    beta, thr = torch.rand(N, generator=g) * 0.5 + 0.5, torch.rand(N, generator=g) * 0.5 + 0.75
    g_spk, g_mem = torch.randn(T, B, N, generator=g), torch.randn(T, B, N, generator=g)
    results = []
    for device in ("cuda", "cpu"):
        leaves = [t.to(device).requires_grad_() for t in (x, beta, thr)]
        if device == "cuda":
            assert cuda.usable(*leaves, reset, fn, static)
            spk, mem = fused.LeakyScan.apply(*leaves, reset, fn, T if static else None)
        else:
            spk, mem = ref.leaky(*leaves, reset, fn, T if static else None)
        loss = (spk * g_spk.to(device)).sum() + (mem * g_mem.to(device)).sum()
        results.append((spk.cpu(), mem.cpu(), [t.cpu() for t in torch.autograd.grad(loss, leaves)]))
    assert cuda.status() == "triton"
    (spk, mem, grads), (spk_r, mem_r, grads_r) = results
    assert torch.equal(mem, mem_r) and torch.equal(spk, spk_r)  # no fused multiply-add in the forward
    assert_grads_close(grads, grads_r)
