"""The leaky scan in C (``leaky.c``), built on first use with the system's C compiler and loaded with ctypes.

The fused torch scan issues ~4 ops per time step forward and ~8 backward; on the CPU that is dispatch
overhead and repeated passes over memory. ``leaky.c`` walks every element through time once, in cache-
sized blocks split over threads, with the same float operations as ``reference.py``, so its spikes and
membranes are bit for bit the reference's and gradients agree to rounding. A surrogate's formula lives in
one place, ``surrogates.py``: the backward runs a surrogate written as :class:`~snnlab.engine.surrogates.Steps`
(a chain of elementwise primitives, ATan among them) itself on each block of elements while it walks back,
and takes ``dL/dspike * surrogate'(mem - threshold)`` computed by the surrogate's own ``grad_`` over the whole
sequence for any other (as the Triton scan does); so every surrogate of the registry runs here.

It is used for :class:`LeakyScan` (and the membrane of :class:`SynapticScan`) on CPU float32 tensors with
a registry surrogate and ``beta``/``threshold`` that are scalars or one per neuron (learnable or not).
``snnlab_decay_scan`` runs the synaptic current ``syn[t] = alpha*syn[t-1] + I[t]`` and its adjoint.
``snnlab_sj_forward`` / ``snnlab_sj_backward`` run SpikingJelly's IF, LIF and PLIF (``kernels/spikingjelly.py``)
on CPU float32 tensors, bit for bit its torch scan both ways (:func:`sj_usable`).
``snnlab_maxpool_forward`` / ``snnlab_maxpool_backward`` (``pool.c``, built into the same library) pool windows that
tile the image for :class:`snnlab.engine.layers.MaxPool2d`.
Everything else (CUDA, other dtypes, parameters that vary over the batch) stays on the torch path. No
compiler, a failed build or ``SNNLAB_NATIVE=0`` also means the torch path; :func:`status` says which and
why.

The shared library is cached under ``$XDG_CACHE_HOME/snnlab`` (``~/.cache/snnlab``), keyed by the source,
the compiler and the CPU, and built atomically, so concurrent processes (torchrun, sweeps) share one build.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from snnlab.engine.allocator import keep_freed_memory
from snnlab.engine.files import cache_dir
from snnlab.engine.kernels.lazy import LazyLibrary, Unavailable
from snnlab.engine.surrogates import Surrogate

SOURCES = [Path(__file__).with_name(name) for name in ("leaky.c", "pool.c")]  # one library
FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared"]
# OpenMP where the compiler has it: the library then links libgomp.so.1, which resolves to the copy torch
# has already loaded, so the scan runs on torch's own thread pool.
OPENMP = ["-fopenmp"]
RESETS = {"subtract": 0, "zero": 1, "none": 2, "zero_step": 3}  # the reset codes of leaky.c and cuda.py
# leaky.c's codes for the primitives of surrogates.Steps (its run_steps)
STEPS = {"add": 0, "sub": 1, "mul": 2, "div": 3, "rdiv": 4, "square": 5, "abs": 6, "clamp_min": 7, "fill": 8}


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return next((line for line in f if line.startswith(("model name", "flags"))), "")
    except OSError:
        return platform.processor()


def _build(cc: str) -> Path:
    source = b"\0".join(path.read_bytes() for path in SOURCES)
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha256(
        b"\0".join(
            [
                source,
                " ".join(FLAGS + OPENMP).encode(),
                version.encode(),
                _cpu_model().encode(),
                platform.machine().encode(),
            ]
        )  # fmt: skip
    ).hexdigest()[:16]
    target = cache_dir() / f"leaky-{key}.so"
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = target.parent
    except OSError:
        folder = Path(tempfile.gettempdir())
        target = folder / target.name
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        built = Path(tmp) / target.name
        for extra in (OPENMP, []):  # without OpenMP (e.g. Apple's clang) the parts run one after another
            out = subprocess.run([cc, *FLAGS, *extra, "-o", str(built), *map(str, SOURCES), "-lm"], capture_output=True,
                                 text=True, timeout=120)  # fmt: skip
            if out.returncode == 0:
                break
        else:
            raise OSError(f"{cc} failed: {(out.stderr or out.stdout).strip().splitlines()[:1]}")
        os.replace(built, target)  # atomic: a concurrent build of the same key writes the same bytes
    return target


def _library() -> ctypes.CDLL:
    """The loaded library; callers have checked :func:`usable` or :func:`decay_usable`."""
    lib = _load()
    if lib is None:
        raise RuntimeError(f"the C scan is not available ({_LIBRARY.why_not})")
    return lib


def _open() -> ctypes.CDLL:
    if not sys.platform.startswith(("linux", "darwin")):
        raise Unavailable(f"not built on {sys.platform}")
    cc = _compiler()
    if cc is None:
        raise Unavailable("no C compiler (cc, gcc or clang) on PATH")
    try:
        lib = ctypes.CDLL(str(_build(cc)))
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"build failed: {exc}") from exc
    i64, i, p = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
    lib.snnlab_leaky_forward.argtypes = [p, i, p, p, i64, i64, p, i64, p, i64, i, i]
    lib.snnlab_leaky_backward.argtypes = [p, p, p, i, p, p, i, p, i, p, i, i64, i64, p, i64, p, i64, i, p, p, i]
    lib.snnlab_decay_scan.argtypes = [p, i, p, i64, i64, p, i64, i, i]
    f = ctypes.c_float
    lib.snnlab_sj_forward.argtypes = [p, i, p, p, i64, i64, i, i, f, f, i, f, i]
    lib.snnlab_sj_z.argtypes = [p, i, p, p, i64, i64, i, i, f, f, i, f, i]
    lib.snnlab_sj_backward.argtypes = [p, p, p, i, p, i, p, p, p, i, p, p, i, i64, i64, i, i, f, f, i, f, i, i]
    lib.snnlab_maxpool_forward.argtypes = [p, p, p, i64, i64, i64, i, i]
    lib.snnlab_maxpool_backward.argtypes = [p, p, p, i64, i64, i64, i, i]
    return lib


_LIBRARY = LazyLibrary("SNNLAB_NATIVE", _open)


def _load() -> ctypes.CDLL | None:
    keep_freed_memory()  # once: a CPU scan is about to run, in snnlab's trainer or in a user's own loop
    return _LIBRARY.get()


def status() -> str:
    """``"native"`` when the C scan is in use, else why not."""
    return "native" if _load() is not None else f"torch scan ({_LIBRARY.why_not})"


def periodic(param: Tensor, features: tuple[int, ...]) -> Tensor:
    """``param`` as ``leaky.c`` reads it: one value per element of a sample's features, flat (element e of a
    ``[B, *features]`` slice uses ``[e % len]``), or a single value. Callers check :func:`is_periodic` first."""
    if param.numel() == 1:
        return param.reshape(1).contiguous()
    if not is_periodic(param, features):
        raise ValueError(f"a parameter of shape {tuple(param.shape)} varies over the batch of {features} features")
    return param.expand(features).contiguous().reshape(-1)


def features_of(current: Tensor, static: bool) -> tuple[int, ...]:
    """A sample's feature shape: ``current`` is ``[B, *features]`` when static, else ``[T, B, *features]``."""
    return tuple(current.shape[1:] if static else current.shape[2:])


def is_periodic(param: Tensor, features: tuple[int, ...]) -> bool:
    """Whether :func:`periodic` can read ``param`` (without building the vector)."""
    if param.numel() == 1:
        return True
    try:
        return param.dim() <= len(features) and torch.broadcast_shapes(param.shape, features) == features
    except RuntimeError:
        return False


def usable(current: Tensor, beta: Tensor, threshold: Tensor, reset: str, surrogate, static: bool = False) -> bool:
    """Whether this scan can run in C (and the library is there)."""
    features = features_of(current, static)
    return (
        current.device.type == "cpu"
        and current.dtype == beta.dtype == threshold.dtype == torch.float32
        and reset in RESETS
        and callable(getattr(surrogate, "grad_", None))
        and is_periodic(beta, features)
        and is_periodic(threshold, features)
        and _load() is not None
    )


def _threads(work: int) -> int:
    return 1 if work < 1 << 16 else torch.get_num_threads()


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _gradient(g: Tensor | None) -> tuple[Tensor | None, bool]:
    """A gradient as ``leaky.c`` reads it: contiguous, or one value broadcast everywhere (``True``), as the
    gradient of ``x.sum()`` arrives; materializing that would cost a whole ``[T, B, ...]`` buffer."""
    if g is None:
        return None, False
    if g.numel() and all(s == 0 for s in g.stride()):
        return g, True
    return g.contiguous(), False


def leaky_forward(current: Tensor, beta: Tensor, threshold: Tensor, reset: str, time_steps: int | None,
                  mem: Tensor, spk: Tensor) -> None:  # fmt: skip
    """Fill ``mem``/``spk`` ``[T, B, ...]`` (contiguous float32) from ``current`` (static if ``time_steps``)."""
    current = current.contiguous()
    T = mem.shape[0]
    n = mem[0].numel()
    features = tuple(mem.shape[2:])
    b, th = periodic(beta, features), periodic(threshold, features)
    _library().snnlab_leaky_forward(
        current.data_ptr(), int(time_steps is not None), mem.data_ptr(), spk.data_ptr(), T, n,
        b.data_ptr(), b.numel(), th.data_ptr(), th.numel(), RESETS[reset], _threads(T * n),
    )  # fmt: skip


def _param_grad(partial: Tensor | None, param: Tensor, features: tuple[int, ...]) -> Tensor | None:
    """Per-thread, per-period sums -> the gradient in the parameter's shape."""
    if partial is None:
        return None
    total = partial.sum(0).to(param.dtype)
    if param.numel() == 1:
        return total.reshape(param.shape)
    return total.reshape(features).sum_to_size(param.shape)


def _steps(surrogate) -> tuple[ctypes.Array, ctypes.Array] | None:
    """The surrogate's gradient as leaky.c's step codes and constants, when its ``grad_`` is its ``steps``."""
    if type(surrogate).grad_ is not Surrogate.grad_ or not callable(getattr(surrogate, "steps", None)):
        return None  # a grad_ of its own (or no Surrogate at all): its values come from torch
    steps = surrogate.steps()
    if steps is None or any(op not in STEPS for op, _ in steps.ops):
        return None
    codes = (ctypes.c_int * len(steps.ops))(*(STEPS[op] for op, _ in steps.ops))
    constants = (ctypes.c_float * len(steps.ops))(*(c for _, c in steps.ops))  # rounded to float, as torch does
    return codes, constants


def leaky_backward(mem: Tensor, g_spk: Tensor | None, g_mem: Tensor | None, beta: Tensor, threshold: Tensor,
                   reset: str, surrogate, static: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:  # fmt: skip
    """``(dL/dI, dL/dbeta, dL/dthreshold)``: dL/dI is ``[B, ...]`` for a static input; the parameter
    gradients have the parameters' shapes, or are None when the parameter does not require grad."""
    T = mem.shape[0]
    n = mem[0].numel()
    features = tuple(mem.shape[2:])
    b, th = periodic(beta, features), periodic(threshold, features)
    g_in = mem.new_empty(mem.shape[1:] if static else mem.shape)
    g_sg = None
    steps = _steps(surrogate) if g_spk is not None else None
    if g_spk is not None and steps is None:
        # g_spk*sg by the surrogate's own torch code, in the order the torch scan uses. leaky.c reads g_sg[t]
        # before it writes dL/dI[t] to the same place, so a sequence's g_in can hold it.
        g_sg = g_in if not static else torch.empty_like(mem)
        surrogate.grad_(torch.sub(mem, threshold, out=g_sg)).mul_(g_spk)
        g_spk = None
    codes, constants = steps if steps is not None else (None, None)
    g_spk, spk_const = _gradient(g_spk)
    g_mem, mem_const = _gradient(g_mem)
    threads = _threads(T * n)
    d_beta = torch.zeros(threads, b.numel(), dtype=torch.float64) if beta.requires_grad else None
    d_thr = torch.zeros(threads, th.numel(), dtype=torch.float64) if threshold.requires_grad else None
    _library().snnlab_leaky_backward(
        mem.data_ptr(), _ptr(g_sg), _ptr(g_spk), int(spk_const), codes, constants, len(codes or ()), _ptr(g_mem),
        int(mem_const), g_in.data_ptr(), int(static), T, n,
        b.data_ptr(), b.numel(), th.data_ptr(), th.numel(), RESETS[reset], _ptr(d_beta), _ptr(d_thr), threads,
    )  # fmt: skip
    return g_in, _param_grad(d_beta, beta, features), _param_grad(d_thr, threshold, features)


def decay_usable(current: Tensor, alpha: Tensor, static: bool = False) -> bool:
    """Whether the synaptic current ``syn[t] = alpha*syn[t-1] + I[t]`` can run in C."""
    return (
        current.device.type == "cpu"
        and current.dtype == alpha.dtype == torch.float32
        and is_periodic(alpha, features_of(current, static))
        and _load() is not None
    )


def decay_scan(x: Tensor, alpha: Tensor, out: Tensor, static: bool = False, reverse: bool = False) -> Tensor:
    """``out[t] = alpha*out[t-1] + x[t]`` over ``out`` ``[T, B, ...]`` (x ``[B, ...]`` when static); with
    ``reverse``, from the end (``out[t] = alpha*out[t+1] + x[t]``), which is the recurrence's adjoint.
    ``out`` may be ``x`` itself. Returns ``out``."""
    x = x.contiguous()
    a = periodic(alpha, tuple(out.shape[2:]))
    T, n = out.shape[0], out[0].numel()
    _library().snnlab_decay_scan(x.data_ptr(), int(static), out.data_ptr(), T, n, a.data_ptr(), a.numel(), int(reverse),
                              _threads(T * n))  # fmt: skip
    return out


# SpikingJelly's neurons (kernels/spikingjelly.py): leaky.c's codes for IF, LIF (a tau) and PLIF (q = sigmoid(w)).
SJ_KINDS = {"if": 0, "lif": 1, "plif": 2}


def sj_kind(leak: float | Tensor | None) -> str:
    """``"if"``, ``"lif"`` or ``"plif"`` from the leak as kernels/spikingjelly.py passes it."""
    return "if" if leak is None else "plif" if isinstance(leak, Tensor) else "lif"


def sj_usable(x: Tensor, leak: float | Tensor | None, surrogate) -> bool:
    """Whether a SpikingJelly scan (IF, LIF, PLIF) can run in C: CPU float32, PLIF's q one float32 value."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and (not isinstance(leak, Tensor) or _one_cpu_float(leak))
        and callable(getattr(surrogate, "grad", None))
        and _load() is not None
    )


def _one_cpu_float(t: Tensor) -> bool:
    return t.numel() == 1 and t.dtype == torch.float32 and t.device.type == "cpu"


def _sj_constants(leak: float | Tensor | None, dyn) -> tuple:
    """kind, tau or q, v_threshold, hard reset, v_reset: as leaky.c's SpikingJelly entry points take them."""
    kind = sj_kind(leak)
    value = 0.0 if leak is None else float(leak.item()) if isinstance(leak, Tensor) else float(leak)
    hard = dyn.v_reset is not None
    return SJ_KINDS[kind], value, dyn.v_threshold, int(hard), dyn.v_reset if hard else 0.0


def sj_forward(x: Tensor, leak: float | Tensor | None, dyn, time_steps: int | None, spikes: Tensor,
               voltages: Tensor) -> None:  # fmt: skip
    """Fill ``spikes``/``voltages`` ``[T, B, ...]`` (contiguous float32) from ``x`` (static if ``time_steps``)."""
    x = x.contiguous()
    T, n = voltages.shape[0], voltages[0].numel()
    kind, value, vth, hard, vr = _sj_constants(leak, dyn)
    _library().snnlab_sj_forward(x.data_ptr(), int(time_steps is not None), spikes.data_ptr(), voltages.data_ptr(),
                                 T, n, kind, int(dyn.decay_input), value, vth, hard, vr, _threads(T * n))  # fmt: skip


def sj_backward(
    x: Tensor,
    voltages: Tensor,
    g_spk: Tensor | None,
    g_v: Tensor | None,
    leak: float | Tensor | None,
    dyn,
    surrogate,
    static: bool,
    want_x: bool,
    want_q: bool,
) -> tuple[Tensor | None, Tensor | None]:
    """``(dL/dx, dL/dq per element [B, ...])`` of :func:`sj_forward` (None where not wanted); the caller sums
    dL/dq's elements, as the torch scan does. The surrogate's gradient runs here from its Steps, or comes from
    its own torch code, one step at a time (the same float operations as the torch scan's either way)."""
    x = x.contiguous()
    T, n = voltages.shape[0], voltages[0].numel()
    kind, value, vth, hard, vr = _sj_constants(leak, dyn)
    steps = _steps(surrogate)
    sg = None
    if steps is None:
        # z[t] = h[t] - v_threshold in C, then the surrogate's own grad_ on each step's slice: the torch scan
        # calls it on one step's [B, ...] at a time, and a call over the whole sequence could round a last bit
        # differently (torch's vectorized loops leave a size-dependent tail to scalar code, exp included).
        sg = voltages.new_empty(voltages.shape)
        _library().snnlab_sj_z(x.data_ptr(), int(static), voltages.data_ptr(), sg.data_ptr(), T, n, kind,
                               int(dyn.decay_input), value, vth, hard, vr, _threads(T * n))  # fmt: skip
        for t in range(T):
            out = surrogate.grad_(sg[t])
            if out.data_ptr() != sg[t].data_ptr():  # a grad_ that returned a new tensor after all
                sg[t].copy_(out)
    codes, constants = steps if steps is not None else (None, None)
    g_spk, spk_const = _gradient(g_spk)
    g_v, v_const = _gradient(g_v)
    g_x = x.new_empty(x.shape) if want_x else None
    dq = voltages.new_empty(voltages.shape[1:]) if want_q else None
    _library().snnlab_sj_backward(
        x.data_ptr(), voltages.data_ptr(), _ptr(g_spk), int(spk_const), _ptr(g_v), int(v_const), _ptr(sg), codes,
        constants, len(codes or ()), _ptr(g_x), _ptr(dq), int(static), T, n, kind, int(dyn.decay_input), value, vth,
        hard, vr, int(dyn.detach_reset), _threads(T * n),
    )  # fmt: skip
    return g_x, dq


# Max pooling over windows that tile the image (pool.c).
MAX_POOL_WINDOW = 15  # the chosen element's place in a k x k window is kept in one byte


def maxpool_usable(x: Tensor, kernel: int) -> bool:
    """Whether ``pool.c`` can pool ``x [B, C, H, W]`` with ``kernel``-sized windows at stride ``kernel``."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and 1 <= kernel <= MAX_POOL_WINDOW
        and min(x.shape[-2:]) >= kernel
        and _load() is not None
    )


def maxpool_forward(x: Tensor, kernel: int) -> tuple[Tensor, Tensor]:
    """``(pooled, where)``: the maxima ``[B, C, H//k, W//k]`` and each one's place in its window (uint8)."""
    x = x.contiguous()
    B, C, H, W = x.shape
    out = x.new_empty((B, C, H // kernel, W // kernel))
    where = torch.empty(out.shape, dtype=torch.uint8)
    _library().snnlab_maxpool_forward(x.data_ptr(), out.data_ptr(), where.data_ptr(), B * C, H, W, kernel,
                                      _threads(x.numel()))  # fmt: skip
    return out, where


def maxpool_backward(grad_out: Tensor, where: Tensor, shape: torch.Size, kernel: int) -> Tensor:
    """The input's gradient ``shape`` of :func:`maxpool_forward`: ``grad_out`` at each chosen element, else 0."""
    grad_out = grad_out.contiguous()
    grad_in = grad_out.new_empty(shape)
    B, C, H, W = shape
    _library().snnlab_maxpool_backward(grad_out.data_ptr(), where.data_ptr(), grad_in.data_ptr(), B * C, H, W,
                                       kernel, _threads(grad_in.numel()))  # fmt: skip
    return grad_in
