"""Fused whole-sequence scans with a hand-written backward through time.

Each scan is one ``torch.autograd.Function`` over the full sequence ``[T, B, ...]``: the forward pass
writes membrane and spikes into preallocated outputs without building a graph, and saves only the
membrane (an output anyway) and the parameters. Everything else the backward pass needs is rebuilt
from the membrane: ``spike[t] = H(mem[t] - threshold)``, ``reset[t+1] = spike[t]`` and the surrogate
gradient at ``mem[t] - threshold``. The arithmetic follows ``reference.py`` operation for operation, so
forward values match it exactly and gradients to float rounding.

Adjoint of the leaky scan (``delta[t] = dL/dmem[t]``, ``sg[t] = surrogate.grad(mem[t] - threshold)``)::

    delta[t] = gmem[t] + gspk[t]*sg[t] + k[t+1]*delta[t+1],   k = beta (subtract, none) or beta*(1-reset) (zero)
    dL/dI[t] = delta[t]
    dL/dbeta = sum_t delta[t] * mem[t-1]             (zero reset: * (1 - reset[t]))

With ``zero_step`` (mem[t] = (1-reset[t])*(beta*mem[t-1] + I[t])) the buffer holds dL/dI[t] =
(1-reset[t])*dL/dmem[t] instead, which turns the recursion into the subtract one (k = beta) and makes
dL/dbeta = sum_t dL/dI[t] * mem[t-1]::

    delta[t] = (1-reset[t]) * (gmem[t] + gspk[t]*sg[t] + beta*delta[t+1])
    dL/dthr  = -sum_t gspk[t]*sg[t]  - sum_t delta[t]*reset[t]      (second term: subtract reset only)

The synaptic scan adds ``eps[t] = dL/dsyn[t] = gsyn[t] + delta[t] + alpha*eps[t+1]``; the recurrent scans
add the feedback ``gspk[t] += R'(delta[t+1])`` (RLeaky; ``eps[t+1]`` for RSynaptic, whose spikes feed its
current) before ``sg[t]`` is applied, ``R'`` being the adjoint of the recurrent map: ``@ W`` (all-to-all
linear), a transposed convolution (all-to-all conv) or ``* V`` (one-to-one).

:class:`LeakyScan` and the membrane of :class:`SynapticScan` hand float32 scans with scalar or per-neuron
parameters to a one-pass kernel with the same arithmetic: ``native.py`` (C) on the CPU, ``cuda.py``
(Triton) on CUDA. The torch code below is the path everywhere else, and the fallback when a kernel
cannot run.

A static input (direct encoding: the same current at every step) is passed as ``[B, ...]`` with
``time_steps``; its gradient is the sum of ``delta`` over time, so no ``[T, B, ...]`` input is stored. A
``[T, B, ...]`` input that repeats one step without copying it (stride 0 along time, ``expand``) is read as
static by :class:`LeakyScan`'s forward pass, with the same values; its gradient stays per step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from snnlab.engine.kernels import cuda, native
from snnlab.engine.surrogates import Surrogate


def _reduce(grad: Tensor | None, like: Tensor) -> Tensor | None:
    """Sum a broadcast gradient back to the parameter's shape (``None`` when not needed)."""
    if grad is None or not like.requires_grad:
        return None
    return grad.sum_to_size(like.shape) if like.dim() else grad.sum().reshape(like.shape)


def _repeated_over_time(current: Tensor) -> bool:
    """Whether ``current [T, B, ...]`` is one step broadcast over time (stride 0 along T), as ``expand`` makes it."""
    return current.dim() >= 2 and current.shape[0] > 1 and current.stride(0) == 0


def _input_at(current: Tensor, t: int, static: bool) -> Tensor:
    return current if static else current[t]


def _leaky_step_into(i_t, mem_out, spk_out, t, beta, threshold, reset, scratch, feedback=None) -> None:
    """Write mem[t] and spike[t] in place: the reference's arithmetic, in the same order. A recurrent
    neuron's ``feedback`` R(spike[t-1]) is added after the input, as snnTorch adds it."""
    mem = mem_out[t]
    if t == 0:
        # mem[-1] = 0 and reset[0] = 0, so mem[0] = beta*0 + I[0], as the reference computes it.
        torch.mul(beta, torch.zeros_like(mem), out=mem)
        _add_drive(mem, i_t, feedback)
    else:
        prev, spk_prev = mem_out[t - 1], spk_out[t - 1]  # reset[t] = H(mem[t-1] - thr) = spike[t-1]
        if reset == "zero":
            torch.mul(beta, torch.sub(1, spk_prev, out=scratch), out=scratch)
            torch.mul(scratch, prev, out=mem)
            _add_drive(mem, i_t, feedback)
        elif reset == "zero_step":
            torch.mul(beta, prev, out=mem)
            _add_drive(mem, i_t, feedback)
            mem.mul_(torch.sub(1, spk_prev, out=scratch))  # 0 or 1: exact
        else:
            torch.mul(beta, prev, out=mem)
            _add_drive(mem, i_t, feedback)
            if reset == "subtract":
                # spike is 0 or 1, so spike*threshold is exact and this equals mem - reset*threshold.
                mem.addcmul_(spk_prev, threshold, value=-1)
    # mem > threshold is mem - threshold > 0 for finite floats (IEEE subtraction of unequal values is never 0).
    torch.gt(mem, threshold, out=spk_out[t])


def _add_drive(mem: Tensor, i_t: Tensor, feedback: Tensor | None) -> None:
    mem.add_(i_t)
    if feedback is not None:
        mem.add_(feedback)


def _leaky_forward(current, beta, threshold, reset, time_steps, mem_out, spk_out) -> None:
    """Fill ``mem_out``/``spk_out`` ``[T, B, ...]`` in place from ``current`` (static if ``time_steps``)."""
    static = time_steps is not None
    scratch = torch.empty_like(mem_out[0])
    for t in range(mem_out.shape[0]):
        _leaky_step_into(_input_at(current, t, static), mem_out, spk_out, t, beta, threshold, reset, scratch)


def _fired(mem_t: Tensor, threshold: Tensor, out: Tensor | None = None) -> Tensor:
    """spike = H(mem - threshold), rebuilt from the saved membrane.

    Written straight into a float tensor: a bool result converted afterwards measured ~10x slower."""
    if out is None:
        out = torch.empty_like(mem_t)
    return torch.gt(mem_t, threshold, out=out)


def _membrane_adjoint(ctx, mem, g_spk, g_mem, feedback=None):
    """Backward through time of the leaky membrane.

    Returns ``delta [T, ...]`` (dL/dmem[t]) and the parameter gradients ``(d_beta, d_threshold)``
    before reduction to the parameters' shapes. With ``feedback`` (recurrent neurons) the spike of
    step t also receives ``feedback(t + 1, delta[t+1])``.

    It walks back one step at a time on purpose: every temporary is one step's size and stays in
    cache, which measured faster on CPU than whole-sequence ops on ``[T, B, N]`` temporaries.
    Spikes are rebuilt from the membrane step by step instead of being saved.
    """
    beta, threshold, reset, surrogate = ctx.beta, ctx.threshold, ctx.reset, ctx.surrogate
    T = mem.shape[0]
    delta = torch.empty_like(mem)
    d_beta = torch.zeros_like(mem[0]) if beta.requires_grad else None
    d_threshold = torch.zeros_like(mem[0]) if threshold.requires_grad else None
    # Two buffers take turns: spike[t] lives in buffers[t % 2], spike[t-1] in the other.
    buffers = (torch.empty_like(mem[0]), torch.empty_like(mem[0]))
    spk_t: Tensor | None = None  # spike[t]; the last step has no successor that needs it
    for t in range(T - 1, -1, -1):
        spk_prev = _fired(mem[t - 1], threshold, buffers[(t - 1) % 2]) if t > 0 else None  # = reset[t]
        g_s = g_spk[t] if g_spk is not None else None
        if feedback is not None and t < T - 1:
            fb = feedback(t + 1, delta[t + 1])
            g_s = fb if g_s is None else g_s + fb
        d = delta[t]
        if g_s is not None:
            torch.sub(mem[t], threshold, out=d)
            surrogate.grad_(d).mul_(g_s)
            if d_threshold is not None:
                d_threshold.sub_(d)
            if g_mem is not None:
                d.add_(g_mem[t])
        elif g_mem is not None:
            d.copy_(g_mem[t])
        else:
            d.zero_()
        if t < T - 1:
            assert spk_t is not None  # set by step t+1
            k = beta * (1 - spk_t) if reset == "zero" else beta  # spk_t = reset[t+1]
            d.addcmul_(k, delta[t + 1])
        if t > 0:
            assert spk_prev is not None
            if reset == "zero_step":
                d.mul_(1 - spk_prev)  # now dL/dI[t]; 0 or 1, so exact
            if d_beta is not None:
                d_beta.addcmul_(d, mem[t - 1] * (1 - spk_prev) if reset == "zero" else mem[t - 1])
            if d_threshold is not None and reset == "subtract":
                d_threshold.addcmul_(d, spk_prev, value=-1)
        spk_t = spk_prev
    return delta, d_beta, d_threshold


def _scan_forward(ctx, current, beta, threshold, reset, surrogate, time_steps, mem, spk) -> None:
    """Fill ``mem``/``spk`` with the one-pass scan that applies (C on the CPU, Triton on CUDA), else the
    torch scan; ``ctx.kernel`` remembers which, for the backward pass."""
    static = time_steps is not None
    ctx.kernel = None
    if native.usable(current, beta, threshold, reset, surrogate, static):
        native.leaky_forward(current, beta, threshold, reset, time_steps, mem, spk)
        ctx.kernel = native
    elif cuda.usable(current, beta, threshold, reset, surrogate, static) and cuda.leaky_forward(
        current, beta, threshold, reset, time_steps, mem, spk
    ):
        ctx.kernel = cuda
    else:
        _leaky_forward(current, beta, threshold, reset, time_steps, mem, spk)


def _scan_backward(ctx, mem, g_spk, g_mem, beta, threshold, static: bool):
    """``(dL/dI, dL/dbeta, dL/dthreshold)`` of a leaky scan, the gradients in the parameters' shapes."""
    if ctx.kernel is not None:
        out = ctx.kernel.leaky_backward(mem, g_spk, g_mem, beta, threshold, ctx.reset, ctx.surrogate, static)
        if out is not None:  # None: the Triton kernel could not run
            return out
    ctx.beta, ctx.threshold = beta, threshold
    delta, d_beta, d_thr = _membrane_adjoint(ctx, mem, g_spk, g_mem)
    return delta.sum(0) if static else delta, _reduce(d_beta, beta), _reduce(d_thr, threshold)


class LeakyScan(torch.autograd.Function):
    """Fused leaky integrate-and-fire over ``[T, B, ...]``. Returns ``(spikes, membrane)``."""

    @staticmethod
    def forward(ctx, current, beta, threshold, reset: str, surrogate: Surrogate, time_steps: int | None):
        ctx.set_materialize_grads(False)
        shape = (time_steps, *current.shape) if time_steps is not None else current.shape
        mem = current.new_empty(shape)
        spk = current.new_empty(shape)
        source, steps = current, time_steps
        if time_steps is None and _repeated_over_time(current):
            # The same values at every step (e.g. ``I.expand(T, ...)``): read the one step instead of a
            # [T, B, ...] copy; the backward pass still returns the gradient of every step.
            source, steps = current[0], shape[0]
        with torch.no_grad():
            _scan_forward(ctx, source, beta, threshold, reset, surrogate, steps, mem, spk)
        ctx.save_for_backward(mem, beta, threshold)
        ctx.reset, ctx.surrogate, ctx.static = reset, surrogate, time_steps is not None
        return spk, mem

    @staticmethod
    def backward(ctx, g_spk, g_mem):
        mem, beta, threshold = ctx.saved_tensors
        grad_in, d_beta, d_thr = _scan_backward(ctx, mem, g_spk, g_mem, beta, threshold, ctx.static)
        return grad_in, d_beta, d_thr, None, None, None


def _decay_forward(current: Tensor, alpha: Tensor, time_steps: int | None, out: Tensor) -> None:
    """``out[t] = alpha*out[t-1] + I[t]`` (``I`` static if ``time_steps``): the synaptic current, in C on the
    CPU, in Triton on CUDA, else step by step in torch."""
    static = time_steps is not None
    if native.decay_usable(current, alpha, static):
        native.decay_scan(current, alpha, out, static)
    elif not (cuda.decay_usable(current, alpha, static) and cuda.decay_scan(current, alpha, out, static)):
        for t in range(out.shape[0]):
            if t == 0:
                torch.mul(alpha, torch.zeros_like(out[0]), out=out[0])
                out[0].add_(_input_at(current, 0, static))
            else:
                torch.mul(alpha, out[t - 1], out=out[t])
                out[t].add_(_input_at(current, t, static))


def _decay_adjoint(base: Tensor, alpha: Tensor) -> Tensor:
    """``eps[t] = base[t] + alpha*eps[t+1]`` from the end, the adjoint of :func:`_decay_forward`; may
    overwrite ``base``."""
    if native.decay_usable(base, alpha):
        return native.decay_scan(base, alpha, base, reverse=True)
    if cuda.decay_usable(base, alpha) and cuda.decay_scan(base, alpha, base, reverse=True):
        return base
    eps = torch.empty_like(base)
    eps[-1] = base[-1]
    alpha_b = alpha.expand_as(base[0])
    for t in range(base.shape[0] - 2, -1, -1):
        torch.addcmul(base[t], alpha_b, eps[t + 1], out=eps[t])
    return eps


def _shifted_product(adjoint: Tensor, state: Tensor) -> Tensor:
    """``sum_t adjoint[t] * state[t-1]`` (state[-1] = 0): a decay's gradient."""
    if state.shape[0] < 2:
        return torch.zeros_like(state[0])
    return (adjoint[1:] * state[:-1]).sum(0)


class SynapticScan(torch.autograd.Function):
    """Fused current-based neuron. Returns ``(spikes, synaptic current, membrane)``."""

    @staticmethod
    def forward(ctx, current, alpha, beta, threshold, reset: str, surrogate: Surrogate, time_steps):
        ctx.set_materialize_grads(False)
        static = time_steps is not None
        shape = (time_steps, *current.shape) if static else current.shape
        syn = current.new_empty(shape)
        with torch.no_grad():
            _decay_forward(current, alpha, time_steps, syn)
            mem = torch.empty_like(syn)
            spk = torch.empty_like(syn)
            # The membrane is a leaky scan driven by syn: the one-pass scan where it applies.
            _scan_forward(ctx, syn, beta, threshold, reset, surrogate, None, mem, spk)
        ctx.save_for_backward(syn, mem, alpha, beta, threshold)
        ctx.reset, ctx.surrogate, ctx.static = reset, surrogate, static
        return spk, syn, mem

    @staticmethod
    def backward(ctx, g_spk, g_syn, g_mem):
        syn, mem, alpha, beta, threshold = ctx.saved_tensors
        delta, d_beta, d_thr = _scan_backward(ctx, mem, g_spk, g_mem, beta, threshold, static=False)
        # eps[t] = dL/dsyn[t] = gsyn[t] + delta[t] + alpha*eps[t+1]; delta is this function's own buffer
        eps = _decay_adjoint(delta if g_syn is None else delta + g_syn, alpha)
        d_alpha = None
        if alpha.requires_grad:
            d_alpha = _shifted_product(eps, syn)
        grad_current = eps.sum(0) if ctx.static else eps
        return (
            grad_current,
            _reduce(d_alpha, alpha),
            d_beta,
            d_thr,
            None,
            None,
            None,
        )
