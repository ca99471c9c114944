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
def test_the_triton_scan_matches_the_reference_under_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1", "SNNLAB_NATIVE": "0"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "triton_interpreted.py")]
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
    pointers = {"cur", "mem", "spk", "beta", "thr", "delta", "g_in", "d_beta", "d_thr"}
    signature = {n: "constexpr" if n in constants else "*fp32" if n in pointers else "i32" for n in names}
    source = ASTSource(kernel, signature, constexprs={(names.index(k),): v for k, v in constants.items()})
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options).asm["ptx"]


@needs_triton
def test_the_kernels_compile_for_a_gpu_and_the_forward_rounds_like_the_reference():
    # The interpreter runs the kernels' Python; this compiles them the way a GPU run would, to PTX and cubin.
    _, forward, backward = cuda._build()
    for static, reset in itertools.product((False, True), cuda.RESETS.values()):
        # With the option leaky_forward launches it with: beta*mem + I rounds twice, as in the reference.
        constants = {"STATIC": static, "RESET": reset, "BLOCK": cuda.BLOCK}
        ptx = _compile_for_h100(forward, constants, enable_fp_fusion=False)
        assert "mul.rn.f32" in ptx and "add.rn.f32" in ptx and "fma" not in ptx
        flags = {"STATIC": static, "RESET": reset, "BETA_GRAD": True, "THR_GRAD": True, "BLOCK": cuda.BLOCK}
        assert ".entry" in _compile_for_h100(backward, flags)
