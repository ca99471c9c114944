"""The leaky scan in Triton, for CUDA tensors: one kernel launch forward and one backward per layer.

The torch scan in ``fused.py`` launches a handful of small kernels per time step; on a GPU that is launch
overhead, T times over. Here each program walks ``BLOCK`` neighbouring elements through the whole sequence
in registers, the way ``leaky.c`` does on the CPU, with the reference's operations in the same order.

The surrogate gradient is not restated here: before the backward kernel, torch evaluates the registry's
own ``grad_`` on ``mem - threshold`` for the whole sequence (one elementwise pass over a buffer the
backward needs anyway, as it becomes dL/dI), so every registry surrogate, present or future, works.

Used for :class:`~snnlab.engine.kernels.fused.LeakyScan` and ``SynapticScan`` (its membrane, and its
synaptic current with ``decay_kernel``) on CUDA float32 tensors with a registry surrogate and parameters
that are scalars or one per neuron, and for SpikingJelly's IF, LIF and PLIF (``kernels/spikingjelly.py``;
``sj_forward_kernel`` and ``sj_backward_kernel``, with a correctly rounded division by tau as torch's).
Without Triton, with ``SNNLAB_TRITON=0``, or when the kernel fails to compile, the torch scan runs;
:func:`status` says which and why. ``TRITON_INTERPRET=1`` runs the same kernels on CPU tensors through
Triton's interpreter, which is how the tests check them on a machine without a GPU.
"""

from __future__ import annotations

import contextlib
import os

import torch
from torch import Tensor

from snnlab.engine.kernels import native
from snnlab.engine.kernels.lazy import LazyLibrary, Unavailable
from snnlab.engine.kernels.native import RESETS, features_of, is_periodic, periodic

BLOCK = 1024
Grads = tuple[Tensor, Tensor | None, Tensor | None]  # dL/dI, dL/dbeta, dL/dthreshold


def _interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _build() -> tuple:
    import triton
    import triton.language as tl

    @triton.jit
    def leaky_forward_kernel(cur, mem, spk, beta, thr, T, n, beta_n, thr_n, STATIC: tl.constexpr,
                             RESET: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
        # Launched with enable_fp_fusion=False: k*mem + I is then a rounded product and a rounded sum, as
        # the reference and torch compute it. A fused multiply-add would round once and move membranes
        # (and so spikes at the threshold) away from the reference's.
        cols = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        live = cols < n
        b = tl.load(beta + cols % beta_n, mask=live, other=0.0)
        th = tl.load(thr + cols % thr_n, mask=live, other=1.0)
        u = tl.zeros([BLOCK], dtype=tl.float32)  # mem[-1] = 0
        s = tl.zeros([BLOCK], dtype=tl.float32)  # spike[-1] = reset[0] = 0
        i_ptr, m_ptr, s_ptr = cur + cols, mem + cols, spk + cols
        for _ in range(T):
            i_t = tl.load(i_ptr, mask=live, other=0.0)
            k = b * (1.0 - s) if RESET == 1 else b  # zero reset: (beta*(1 - reset))*mem; exact, as s is 0 or 1
            u = k * u + i_t
            if RESET == 0:  # subtract: spike is 0 or 1, so spike*threshold is exact (fused or not)
                u = u - s * th
            if RESET == 3:  # zero_step: the whole step, input included; 0 or 1, so exact
                u = u * (1.0 - s)
            s = tl.where(u > th, 1.0, 0.0)
            tl.store(m_ptr, u, mask=live)
            tl.store(s_ptr, s, mask=live)
            if not STATIC:
                i_ptr += n
            m_ptr += n
            s_ptr += n

    @triton.jit
    def leaky_backward_kernel(delta, mem, g_in, d_beta, d_thr, beta, thr, T, n, beta_n, thr_n, last,
                              STATIC: tl.constexpr, RESET: tl.constexpr, BETA_GRAD: tl.constexpr,
                              THR_GRAD: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
        # ``delta`` arrives holding g_spk*sg + g_mem and leaves holding dL/dmem, step by step from the end:
        # delta[t] += k[t+1]*delta[t+1], with k = beta (subtract, none, zero_step) or beta*(1 - reset[t+1]) (zero).
        # ``last`` = (T-1)*n comes from the host: as a product of two int32 values here it could overflow.
        cols = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        live = cols < n
        b = tl.load(beta + cols % beta_n, mask=live, other=0.0)
        th = tl.load(thr + cols % thr_n, mask=live, other=1.0)
        after = tl.zeros([BLOCK], dtype=tl.float32)  # delta[t+1]
        s_next = tl.zeros([BLOCK], dtype=tl.float32)  # spike[t] = reset[t+1]
        total = tl.zeros([BLOCK], dtype=tl.float32)  # sum_t delta[t] (static input)
        db = tl.zeros([BLOCK], dtype=tl.float32)
        dt = tl.zeros([BLOCK], dtype=tl.float32)
        d_ptr = delta + cols + last  # delta[T-1]
        m_ptr = mem + cols + (last - n)  # mem[t-1]
        for i in range(T):  # t = T-1-i
            # t > 0 as a block-shaped mask (a scalar condition in a mask is refused by newer interpreters)
            has_prev = (tl.zeros([BLOCK], dtype=tl.int32) + i) < T - 1
            m_prev = tl.load(m_ptr, mask=live & has_prev, other=0.0)
            s_prev = tl.where((m_prev > th) & has_prev, 1.0, 0.0)  # reset[t]; none at t = 0 (mem[-1] = 0)
            d = tl.load(d_ptr, mask=live, other=0.0)
            if i > 0:
                if RESET == 1:
                    d = d + (b * (1.0 - s_next)) * after
                else:
                    d = d + b * after
            if RESET == 3:  # zero_step: delta holds dL/dI[t] = (1 - reset[t])*dL/dmem[t] (see fused.py)
                d = d * (1.0 - s_prev)
            tl.store(d_ptr, d, mask=live)
            if STATIC:
                total += d
            if BETA_GRAD:
                if RESET == 1:
                    db += d * (m_prev * (1.0 - s_prev))
                else:
                    db += d * m_prev
            if THR_GRAD:
                if RESET == 0:
                    dt -= d * s_prev
            after, s_next = d, s_prev
            d_ptr -= n
            m_ptr -= n
        if STATIC:
            tl.store(g_in + cols, total, mask=live)
        if BETA_GRAD:
            tl.store(d_beta + cols, db, mask=live)
        if THR_GRAD:
            tl.store(d_thr + cols, dt, mask=live)

    @triton.jit
    def decay_kernel(x, y, a, T, n, a_n, last, STATIC: tl.constexpr, REVERSE: tl.constexpr, BLOCK: tl.constexpr):
        # y[t] = a*y[t-1] + x[t] (the synaptic current), or from the end with REVERSE (its adjoint). Launched
        # without FMA contraction, like the forward above. x may be y itself: x[t] is read before y[t] is written.
        cols = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        live = cols < n
        av = tl.load(a + cols % a_n, mask=live, other=0.0)
        start = last if REVERSE else 0
        x_ptr = x + cols + (0 if STATIC else start)
        y_ptr = y + cols + start
        v = tl.zeros([BLOCK], dtype=tl.float32)
        for _ in range(T):
            v = av * v + tl.load(x_ptr, mask=live, other=0.0)
            tl.store(y_ptr, v, mask=live)
            if REVERSE:
                if not STATIC:
                    x_ptr -= n
                y_ptr -= n
            else:
                if not STATIC:
                    x_ptr += n
                y_ptr += n

    @triton.jit
    def sj_forward_kernel(x, spk, v_out, q, T, n, tau, vth, vr, STATIC: tl.constexpr, KIND: tl.constexpr,
                          DECAY: tl.constexpr, HARD: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
        # SpikingJelly's IF (KIND 0), LIF (1: a division by tau) and PLIF (2: a product with q), as
        # kernels/spikingjelly.py writes them, operation for operation; launched without FMA contraction.
        cols = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        live = cols < n
        zero = tl.zeros([BLOCK], dtype=tl.float32)
        thr = zero + vth
        rest = zero + vr  # v_reset (hard), 0 (soft: the host passes 0)
        leak = zero + tl.load(q) if KIND == 2 else zero + tau
        v = rest  # v[-1]
        x_ptr, s_ptr, v_ptr = x + cols, spk + cols, v_out + cols
        for _ in range(T):
            xt = tl.load(x_ptr, mask=live, other=0.0)
            if KIND == 0:
                h = v + xt
            elif KIND == 1:
                h = v + tl.math.div_rn(xt - (v - rest), leak) if DECAY else v - tl.math.div_rn(v - rest, leak) + xt
            else:
                h = v + (xt - (v - rest)) * leak if DECAY else v - (v - rest) * leak + xt
            fired = tl.where(h - thr >= 0.0, 1.0, 0.0)
            if HARD:
                v = fired * rest + (1.0 - fired) * h
            else:
                v = h - fired * thr
            tl.store(s_ptr, fired, mask=live)
            tl.store(v_ptr, v, mask=live)
            if not STATIC:
                x_ptr += n
            s_ptr += n
            v_ptr += n

    @triton.jit
    def sj_backward_kernel(x, v, g_spk, g_v, sg, g_x, dq, q, T, n, last, tau, vth, vr, STATIC: tl.constexpr,
                           KIND: tl.constexpr, DECAY: tl.constexpr, HARD: tl.constexpr, DETACH: tl.constexpr,
                           HAS_GS: tl.constexpr, HAS_GV: tl.constexpr, WANT_X: tl.constexpr,
                           WANT_Q: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
        # The torch scan's backward step for step (kernels/spikingjelly.py), from t = T-1 down; ``sg`` holds
        # surrogate'(h[t] - v_threshold), computed by torch. ``last`` = (T-1)*n comes from the host.
        cols = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        live = cols < n
        zero = tl.zeros([BLOCK], dtype=tl.float32)
        thr = zero + vth
        rest = zero + vr
        leak = zero + tl.load(q) if KIND == 2 else zero + tau
        e = zero  # dL/dv[t] from step t+1
        total = zero  # static input: dL/dx summed over time
        acc = zero  # PLIF: dL/dq per element
        x_ptr = x + cols + (0 if STATIC else last)
        v_ptr = v + cols + (last - n)  # v[t-1]
        at = cols + last  # [t] in the [T, n] buffers
        for i in range(T):  # t = T-1-i
            has_prev = (tl.zeros([BLOCK], dtype=tl.int32) + i) < T - 1
            vp = tl.where(has_prev, tl.load(v_ptr, mask=live & has_prev, other=0.0), rest)
            xt = tl.load(x_ptr, mask=live, other=0.0)
            if KIND == 0:
                h = vp + xt
            elif KIND == 1:
                h = vp + tl.math.div_rn(xt - (vp - rest), leak) if DECAY else vp - tl.math.div_rn(vp - rest, leak) + xt
            else:
                h = vp + (xt - (vp - rest)) * leak if DECAY else vp - (vp - rest) * leak + xt
            z = h - thr
            if HAS_GV:
                e = e + tl.load(g_v + at, mask=live, other=0.0)
            ds = tl.load(g_spk + at, mask=live, other=0.0) if HAS_GS else zero
            if not DETACH:
                ds = ds + e * (rest - h if HARD else -thr)
            dh = ds * tl.load(sg + at, mask=live, other=0.0)
            if HARD:
                dh = dh + e * (1.0 - tl.where(z >= 0.0, 1.0, 0.0))
            else:
                dh = dh + e
            if KIND == 0:
                through = dh
                e = dh
            else:
                scaled = tl.math.div_rn(dh, leak) if KIND == 1 else dh * leak
                through = scaled if DECAY else dh
                e = dh - scaled
            if WANT_X:
                if STATIC:
                    total = total + through
                else:
                    tl.store(g_x + at, through, mask=live)
            if WANT_Q:
                if DECAY:
                    acc = acc + dh * (xt - (vp - rest))
                else:
                    acc = acc + -(dh * (vp - rest))
            if not STATIC:
                x_ptr -= n
            v_ptr -= n
            at -= n
        if WANT_X and STATIC:
            tl.store(g_x + cols, total, mask=live)
        if WANT_Q:
            tl.store(dq + cols, acc, mask=live)

    return triton, leaky_forward_kernel, leaky_backward_kernel, decay_kernel, sj_forward_kernel, sj_backward_kernel


def _setup() -> tuple:
    try:
        return _build()
    except ImportError as exc:
        raise Unavailable("Triton is not installed") from exc
    except Exception as exc:  # noqa: BLE001 - any failure to set up Triton means the torch scan
        raise Unavailable(f"Triton failed: {type(exc).__name__}: {exc}") from exc


_LIBRARY: LazyLibrary[tuple] = LazyLibrary("SNNLAB_TRITON", _setup)


def _load() -> tuple | None:
    return _LIBRARY.get()


def _give_up(exc: Exception) -> None:
    """A kernel failed to compile or launch: use the torch scan from now on, and say why."""
    _LIBRARY.give_up(f"Triton kernel failed: {type(exc).__name__}: {exc}")


def status() -> str:
    """``"triton"`` when the Triton scan is in use on CUDA, else why not."""
    return "triton" if _load() is not None else f"torch scan ({_LIBRARY.why_not})"


def _on_device(current: Tensor, *params: Tensor) -> bool:
    """float32 tensors on one device where the kernels run: CUDA, or the CPU under Triton's interpreter."""
    return (current.device.type == "cuda" or (_interpreted() and current.device.type == "cpu")) and all(
        p.dtype == torch.float32 and p.device == current.device for p in (current, *params)
    )


def usable(current: Tensor, beta: Tensor, threshold: Tensor, reset: str, surrogate, static: bool = False) -> bool:
    """Whether this scan can run in Triton (on CUDA, or on the CPU under Triton's interpreter)."""
    features = features_of(current, static)
    return (
        _on_device(current, beta, threshold)
        and reset in RESETS
        and callable(getattr(surrogate, "grad_", None))
        and is_periodic(beta, features)
        and is_periodic(threshold, features)
        and _load() is not None
    )


def _launch(which: int, tensors: tuple, out: Tensor, params: tuple[Tensor, ...], extra: tuple = (),
            **constants) -> bool:  # fmt: skip
    """Run kernel ``which`` (1 leaky forward, 2 leaky backward, 3 decay, 4 and 5 SpikingJelly forward and
    backward) over the elements of ``out`` ``[T, B, ...]``. Arguments: ``*tensors, *params (as periodic
    vectors), T, n, *their lengths, *extra``. False when it could not run."""
    kernels = _load()
    if kernels is None:
        return False
    triton, kernel = kernels[0], kernels[which]
    T, n = out.shape[0], out[0].numel()
    vectors = [periodic(p, tuple(out.shape[2:])) for p in params]
    # Triton launches on the current CUDA device: make it the tensors' (cuda:1 without set_device).
    device = torch.cuda.device(out.device) if out.device.type == "cuda" else contextlib.nullcontext()
    try:
        with device:
            kernel[(triton.cdiv(n, BLOCK),)](*tensors, *vectors, T, n, *(v.numel() for v in vectors), *extra,
                                             BLOCK=BLOCK, **constants)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - e.g. no kernel image for this GPU: fall back, never crash a run
        _give_up(exc)
        return False
    return True


def leaky_forward(current: Tensor, beta: Tensor, threshold: Tensor, reset: str, time_steps: int | None,
                  mem: Tensor, spk: Tensor) -> bool:  # fmt: skip
    """Fill ``mem``/``spk`` ``[T, B, ...]`` (contiguous float32) from ``current`` (static if ``time_steps``).

    False (nothing written) when the kernel could not run; the caller then runs the torch scan."""
    tensors = (current.contiguous(), mem, spk)
    return _launch(1, tensors, mem, (beta, threshold), STATIC=time_steps is not None, RESET=RESETS[reset],
                   enable_fp_fusion=False)  # fmt: skip


def leaky_backward(mem: Tensor, g_spk: Tensor | None, g_mem: Tensor | None, beta: Tensor, threshold: Tensor,
                   reset: str, surrogate, static: bool) -> Grads | None:  # fmt: skip
    """``(dL/dI, dL/dbeta, dL/dthreshold)`` as :func:`native.leaky_backward` returns them, or None when the
    kernel could not run (the caller then runs the torch scan's backward)."""
    if _load() is None:
        return None
    delta = torch.empty_like(mem)
    d_thr_sg = None
    if g_spk is not None:
        torch.sub(mem, threshold, out=delta)
        surrogate.grad_(delta).mul_(g_spk)  # g_spk*sg, as the torch scan orders it
        if threshold.requires_grad:
            d_thr_sg = delta.sum(0)  # dL/dthr gets -sum_t g_spk*sg (the spike's own dependence)
        if g_mem is not None:
            delta.add_(g_mem)
    elif g_mem is not None:
        delta.copy_(g_mem)
    else:
        delta.zero_()
    g_in = mem.new_empty(mem.shape[1:]) if static else delta
    d_beta = mem.new_empty(mem.shape[1:]) if beta.requires_grad else None
    d_thr = mem.new_empty(mem.shape[1:]) if threshold.requires_grad else None
    dummy = mem.new_empty(1)
    tensors = (delta, mem, g_in if static else dummy, dummy if d_beta is None else d_beta,
               dummy if d_thr is None else d_thr)  # fmt: skip
    last = (mem.shape[0] - 1) * mem[0].numel()  # offset of step T-1, computed here where it cannot overflow
    # Fused multiply-adds are fine here (gradients agree to rounding); said, as Triton's default will change.
    if not _launch(2, tensors, mem, (beta, threshold), (last,), STATIC=static, RESET=RESETS[reset],
                   BETA_GRAD=d_beta is not None, THR_GRAD=d_thr is not None, enable_fp_fusion=True):  # fmt: skip
        return None
    if d_thr is not None and d_thr_sg is not None:
        d_thr.sub_(d_thr_sg)
    return g_in, _reduce(d_beta, beta), _reduce(d_thr, threshold)


def _reduce(per_element: Tensor | None, param: Tensor) -> Tensor | None:
    """Per-element sums over time ``[B, *features]`` -> the gradient in the parameter's shape (summed in
    float64, as the C scan sums)."""
    if per_element is None:
        return None
    return per_element.double().sum_to_size(param.shape).to(param.dtype)


def decay_usable(current: Tensor, alpha: Tensor, static: bool = False) -> bool:
    """Whether the synaptic current ``syn[t] = alpha*syn[t-1] + I[t]`` can run in Triton."""
    return _on_device(current, alpha) and is_periodic(alpha, features_of(current, static)) and _load() is not None


def decay_scan(x: Tensor, alpha: Tensor, out: Tensor, static: bool = False, reverse: bool = False) -> bool:
    """As :func:`native.decay_scan`; False (``out`` untouched) when the kernel could not run."""
    last = (out.shape[0] - 1) * out[0].numel()
    return _launch(3, (x.contiguous(), out), out, (alpha,), (last,), STATIC=static, REVERSE=reverse,
                   enable_fp_fusion=False)  # fmt: skip


def sj_usable(x: Tensor, leak, surrogate) -> bool:
    """Whether a SpikingJelly scan (IF, LIF, PLIF; kernels/spikingjelly.py) can run in Triton."""
    return (
        _on_device(x, *([leak] if isinstance(leak, Tensor) else []))
        and (not isinstance(leak, Tensor) or leak.numel() == 1)
        and callable(getattr(surrogate, "grad", None))
        and _load() is not None
    )


def _sj_arguments(x: Tensor, leak, dyn) -> tuple[Tensor, tuple, dict]:
    """PLIF's q as a one-element tensor (a dummy otherwise), the float arguments and the constants."""
    kind = native.SJ_KINDS[native.sj_kind(leak)]
    q = leak.detach().reshape(1).contiguous() if isinstance(leak, Tensor) else x.new_zeros(1)
    tau = float(leak) if kind == 1 else 0.0
    hard = dyn.v_reset is not None
    floats = (tau, float(dyn.v_threshold), float(dyn.v_reset) if hard else 0.0)
    return q, floats, dict(KIND=kind, DECAY=bool(dyn.decay_input), HARD=hard)


def sj_forward(x: Tensor, leak, dyn, time_steps: int | None, spikes: Tensor, voltages: Tensor) -> bool:
    """As :func:`native.sj_forward`; False (nothing written) when the kernel could not run."""
    q, floats, constants = _sj_arguments(x, leak, dyn)
    tensors = (x.contiguous(), spikes, voltages, q)
    return _launch(4, tensors, voltages, (), floats, STATIC=time_steps is not None, enable_fp_fusion=False,
                   **constants)  # fmt: skip


def sj_backward(x: Tensor, voltages: Tensor, g_spk: Tensor | None, g_v: Tensor | None, leak, dyn, surrogate,
                static: bool, want_x: bool, want_q: bool) -> tuple[Tensor | None, Tensor | None] | None:  # fmt: skip
    """As :func:`native.sj_backward`, or None when the kernel could not run (the caller then runs the torch
    scan's backward). The surrogate's gradient is computed by torch over the whole sequence first."""
    if _load() is None:
        return None
    from snnlab.engine.kernels import spikingjelly as sj

    x = x.contiguous()
    q, floats, constants = _sj_arguments(x, leak, dyn)
    v_prev = torch.cat([sj.initial(voltages[:1], dyn.v_reset), voltages[:-1]])
    h = sj.charge(x, v_prev, leak.detach() if isinstance(leak, Tensor) else leak, dyn.decay_input, dyn.v_reset)
    sg = surrogate.grad_(h.sub_(dyn.v_threshold)).contiguous()
    dummy = voltages.new_empty(1)
    g_x = x.new_empty(x.shape) if want_x else None
    dq = voltages.new_empty(voltages.shape[1:]) if want_q else None
    tensors = (x, voltages, dummy if g_spk is None else g_spk.contiguous(), dummy if g_v is None else g_v.contiguous(),
               sg, dummy if g_x is None else g_x, dummy if dq is None else dq, q)  # fmt: skip
    last = (voltages.shape[0] - 1) * voltages[0].numel()
    # Without FMA contraction, as the forward: the torch scan's backward, rounding for rounding.
    if not _launch(5, tensors, voltages, (), (last, *floats), STATIC=static, DETACH=bool(dyn.detach_reset),
                   HAS_GS=g_spk is not None, HAS_GV=g_v is not None, WANT_X=want_x, WANT_Q=want_q,
                   enable_fp_fusion=False, **constants):  # fmt: skip
        return None
    return g_x, dq
