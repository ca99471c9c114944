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
``time_steps``; its gradient is the sum of ``delta`` over time, so no ``[T, B, ...]`` input is stored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.grad import conv2d_weight

from snnlab.engine.kernels import cuda, native
from snnlab.engine.surrogates import Surrogate


def _reduce(grad: Tensor | None, like: Tensor) -> Tensor | None:
    """Sum a broadcast gradient back to the parameter's shape (``None`` when not needed)."""
    if grad is None or not like.requires_grad:
        return None
    return grad.sum_to_size(like.shape) if like.dim() else grad.sum().reshape(like.shape)


def _input_at(current: Tensor, t: int, static: bool) -> Tensor:
    return current if static else current[t]


def _leaky_step_into(i_t, mem_out, spk_out, t, beta, threshold, reset, scratch) -> None:
    """Write mem[t] and spike[t] in place: the reference's arithmetic, in the same order."""
    mem = mem_out[t]
    if t == 0:
        # mem[-1] = 0 and reset[0] = 0, so mem[0] = beta*0 + I[0], as the reference computes it.
        torch.mul(beta, torch.zeros_like(mem), out=mem)
        mem.add_(i_t)
    else:
        prev, spk_prev = mem_out[t - 1], spk_out[t - 1]  # reset[t] = H(mem[t-1] - thr) = spike[t-1]
        if reset == "zero":
            torch.mul(beta, torch.sub(1, spk_prev, out=scratch), out=scratch)
            torch.mul(scratch, prev, out=mem)
            mem.add_(i_t)
        elif reset == "zero_step":
            torch.mul(beta, prev, out=mem)
            mem.add_(i_t)
            mem.mul_(torch.sub(1, spk_prev, out=scratch))  # 0 or 1: exact
        else:
            torch.mul(beta, prev, out=mem)
            mem.add_(i_t)
            if reset == "subtract":
                # spike is 0 or 1, so spike*threshold is exact and this equals mem - reset*threshold.
                mem.addcmul_(spk_prev, threshold, value=-1)
    # mem > threshold is mem - threshold > 0 for finite floats (IEEE subtraction of unequal values is never 0).
    torch.gt(mem, threshold, out=spk_out[t])


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
        with torch.no_grad():
            _scan_forward(ctx, current, beta, threshold, reset, surrogate, time_steps, mem, spk)
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
            d_alpha = (eps[1:] * syn[:-1]).sum(0) if syn.shape[0] > 1 else torch.zeros_like(syn[0])
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


# The recurrent map of RLeaky and RSynaptic, R(spike[t-1]), by kind: "linear" (all-to-all, weight [N, N]),
# "conv" (all-to-all, weight [C, C, kh, kw], "same" padding) or "one_to_one" (weight V, no bias).
def _feedback(spk: Tensor, weight: Tensor, bias: Tensor | None, kind: str, padding) -> Tensor:
    """R(spk), with the calls the modules make (nn.Linear, nn.Conv2d), so that the rounding matches."""
    if kind == "linear":
        return F.linear(spk, weight, bias)
    if kind == "conv":
        return F.conv2d(spk, weight, bias, padding=padding)
    return weight * spk


def _feedback_adjoint(grad: Tensor, weight: Tensor, kind: str, padding) -> Tensor:
    """dL/dspk from dL/dR(spk)."""
    if kind == "linear":
        return grad @ weight
    if kind == "conv":
        return F.conv_transpose2d(grad, weight, padding=padding)
    return grad * weight


def _feedback_grads(grads: Tensor, spk: Tensor, weight: Tensor, bias_needs_grad: bool, kind: str, padding):
    """``(dL/dweight, dL/dbias)`` of R over the sequence: ``grads [T, B, ...]`` = dL/dR(spike[t-1]) at every
    step, ``spk`` the spikes ``[T-1, B, ...]`` that fed steps 1 to T-1 (step 0 is fed spike[-1] = 0)."""
    grad_weight = grad_bias = None
    if weight.requires_grad:
        if spk.shape[0] == 0:
            grad_weight = torch.zeros_like(weight)
        elif kind == "linear":
            n = weight.shape[0]
            grad_weight = grads[1:].reshape(-1, n).t() @ spk.reshape(-1, n)
        elif kind == "conv":
            grad_weight = conv2d_weight(spk.flatten(0, 1), weight.shape, grads[1:].flatten(0, 1), padding=padding)
        else:
            grad_weight = _reduce(grads[1:] * spk, weight)
    if bias_needs_grad:  # a bias is added at every step, step 0 included
        grad_bias = grads.sum((0, 1, 3, 4)) if kind == "conv" else grads.reshape(-1, grads.shape[-1]).sum(0)
    return grad_weight, grad_bias


class RLeakyScan(torch.autograd.Function):
    """Fused recurrent leaky neuron: the membrane is driven by ``I[t] + R(spike[t-1])``.

    ``recurrence`` is "linear" (``weight [N, N]``), "conv" (``weight [C, C, kh, kw]``, with ``padding``) or
    "one_to_one" (``weight`` = V, broadcastable to the features); ``bias`` may be ``None``.
    """

    @staticmethod
    def forward(ctx, current, weight, bias, beta, threshold, reset, surrogate, time_steps, recurrence: str, padding):
        ctx.set_materialize_grads(False)
        static = time_steps is not None
        shape = (time_steps, *current.shape) if static else current.shape
        mem = current.new_empty(shape)
        spk = current.new_empty(shape)
        with torch.no_grad():
            drive = torch.empty_like(mem[0])
            scratch = torch.empty_like(mem[0])
            zeros = torch.zeros_like(mem[0])
            for t in range(shape[0]):
                feedback = _feedback(spk[t - 1] if t > 0 else zeros, weight, bias, recurrence, padding)
                torch.add(_input_at(current, t, static), feedback, out=drive)
                _leaky_step_into(drive, mem, spk, t, beta, threshold, reset, scratch)
        ctx.save_for_backward(mem, weight, beta, threshold)
        ctx.bias_needs_grad = bias is not None and bias.requires_grad
        ctx.reset, ctx.surrogate, ctx.static = reset, surrogate, static
        ctx.recurrence, ctx.padding = recurrence, padding
        return spk, mem

    @staticmethod
    def backward(ctx, g_spk, g_mem):
        mem, weight, beta, threshold = ctx.saved_tensors
        ctx.beta, ctx.threshold = beta, threshold

        def feedback(t: int, delta_t: Tensor) -> Tensor:  # spike[t-1] drives mem[t] through R
            return _feedback_adjoint(delta_t, weight, ctx.recurrence, ctx.padding)

        deltas, d_beta, d_thr = _membrane_adjoint(ctx, mem, g_spk, g_mem, feedback)
        grad_weight, grad_bias = _feedback_grads(deltas, _fired(mem[:-1], threshold), weight, ctx.bias_needs_grad,
                                                 ctx.recurrence, ctx.padding)  # fmt: skip
        grad_in = deltas.sum(0) if ctx.static else deltas
        return (grad_in, grad_weight, grad_bias, _reduce(d_beta, beta), _reduce(d_thr, threshold),
                None, None, None, None, None)  # fmt: skip


class RSynapticScan(torch.autograd.Function):
    """Fused recurrent current-based neuron: ``syn[t] = alpha*syn[t-1] + I[t] + R(spike[t-1])`` drives a leaky
    membrane. Arguments as :class:`RLeakyScan`, plus ``alpha``; returns ``(spikes, syn, membrane)``.

    The feedback couples the two adjoints: spike[t] feeds syn[t+1], so ``eps[t+1] = dL/dsyn[t+1]`` must be
    known before step t of the membrane's adjoint; it is built inside the membrane's backward loop.
    """

    @staticmethod
    def forward(ctx, current, alpha, weight, bias, beta, threshold, reset, surrogate, time_steps, recurrence: str,
                padding):  # fmt: skip
        ctx.set_materialize_grads(False)
        static = time_steps is not None
        shape = (time_steps, *current.shape) if static else current.shape
        syn, mem, spk = (current.new_empty(shape) for _ in range(3))
        with torch.no_grad():
            scratch = torch.empty_like(mem[0])
            zeros = torch.zeros_like(mem[0])
            for t in range(shape[0]):
                # syn[t] = (alpha*syn[t-1] + I[t]) + R(spike[t-1]), the reference's order
                torch.mul(alpha, syn[t - 1] if t > 0 else zeros, out=syn[t]).add_(_input_at(current, t, static))
                syn[t].add_(_feedback(spk[t - 1] if t > 0 else zeros, weight, bias, recurrence, padding))
                _leaky_step_into(syn[t], mem, spk, t, beta, threshold, reset, scratch)
        ctx.save_for_backward(syn, mem, alpha, weight, beta, threshold)
        ctx.bias_needs_grad = bias is not None and bias.requires_grad
        ctx.reset, ctx.surrogate, ctx.static = reset, surrogate, static
        ctx.recurrence, ctx.padding = recurrence, padding
        return spk, syn, mem

    @staticmethod
    def backward(ctx, g_spk, g_syn, g_mem):
        syn, mem, alpha, weight, beta, threshold = ctx.saved_tensors
        ctx.beta, ctx.threshold = beta, threshold
        T = mem.shape[0]
        eps = torch.empty_like(mem)  # dL/dsyn[t]

        def close(t: int, delta_t: Tensor) -> None:
            """eps[t] = gsyn[t] + delta[t] + alpha*eps[t+1] (delta: dL/dsyn[t] through the membrane)."""
            if g_syn is not None:
                torch.add(delta_t, g_syn[t], out=eps[t])
            else:
                eps[t].copy_(delta_t)
            if t < T - 1:
                eps[t].addcmul_(alpha.expand_as(eps[t]), eps[t + 1])

        def feedback(t: int, delta_t: Tensor) -> Tensor:  # spike[t-1] drives syn[t] through R
            close(t, delta_t)
            return _feedback_adjoint(eps[t], weight, ctx.recurrence, ctx.padding)

        deltas, d_beta, d_thr = _membrane_adjoint(ctx, mem, g_spk, g_mem, feedback)
        close(0, deltas[0])
        d_alpha = _shifted_product(eps, syn) if alpha.requires_grad else None
        grad_weight, grad_bias = _feedback_grads(eps, _fired(mem[:-1], threshold), weight, ctx.bias_needs_grad,
                                                 ctx.recurrence, ctx.padding)  # fmt: skip
        grad_in = eps.sum(0) if ctx.static else eps
        return (grad_in, _reduce(d_alpha, alpha), grad_weight, grad_bias, _reduce(d_beta, beta),
                _reduce(d_thr, threshold), None, None, None, None, None)  # fmt: skip


class AlphaScan(torch.autograd.Function):
    """Fused alpha neuron (``reference.alpha_step``). Returns ``(spikes, syn_exc, syn_inh, membrane)``.

    ``tau`` comes in computed from alpha and beta (``log(alpha)/(log(beta) - log(alpha)) + 1``); its gradient
    goes back out, and autograd takes it on to alpha and beta. Without a reset the two currents are decay
    scans (C or Triton where they apply) and the membrane is ``tau*(exc + inh)``; with one, every state depends
    on the previous step's spike, so both passes step through time in torch, one step's tensors at a time.

    Adjoint (``M[t] = dL/dmem[t] = gmem[t] + gspk[t]*sg[t]``, ``Ep``/``Ip``: dL/d of the currents before the
    reset, ``c = 1 - reset[t]`` for zero_step, else 1)::

        Mp[t] = c*M[t]                                             (dL/dmem')
        E[t]  = gexc[t] + alpha*Ep[t+1]                            (dL/dexc[t])
        Iv[t] = ginh[t] + beta*Ip[t+1] + reset[t+1]*M[t+1]          (last term: subtract only)
        Ep[t] = c*E[t] + tau*Mp[t];   Ip[t] = c'*Iv[t] + tau*Mp[t]  (c' = 1 - reset[t] for subtract too)
        dL/dI[t] = Ep[t] - Ip[t];  dL/dtau = sum_t Mp[t]*(exc'[t] + inh'[t])
        dL/dalpha = sum_t Ep[t]*exc[t-1];  dL/dbeta = sum_t Ip[t]*inh[t-1]
        dL/dthr = -sum_t gspk[t]*sg[t] - sum_t reset[t]*E[t]       (second term: subtract only)
    """

    @staticmethod
    def forward(ctx, current, alpha, beta, tau, threshold, reset: str, surrogate: Surrogate, time_steps):
        ctx.set_materialize_grads(False)
        static = time_steps is not None
        shape = (time_steps, *current.shape) if static else current.shape
        exc, inh, mem, spk = (current.new_empty(shape) for _ in range(4))
        with torch.no_grad():
            if reset == "none":
                _decay_forward(current, alpha, time_steps, exc)
                _decay_forward(-current, beta, time_steps, inh)  # beta*inh + (-I) is beta*inh - I, bit for bit
                torch.mul(tau, torch.add(exc, inh, out=mem), out=mem)
                torch.gt(mem, threshold, out=spk)
            else:
                _alpha_forward(current, alpha, beta, tau, threshold, reset, static, exc, inh, mem, spk)
        ctx.save_for_backward(current, exc, inh, mem, alpha, beta, tau, threshold)
        ctx.reset, ctx.surrogate, ctx.static = reset, surrogate, static
        return spk, exc, inh, mem

    @staticmethod
    def backward(ctx, g_spk, g_exc, g_inh, g_mem):
        current, exc, inh, mem, alpha, beta, tau, threshold = ctx.saved_tensors
        if ctx.reset == "none":
            grads = _alpha_adjoint_free(ctx, exc, inh, mem, alpha, beta, tau, threshold, g_spk, g_exc, g_inh, g_mem)
        else:
            grads = _alpha_adjoint(ctx, current, exc, inh, mem, alpha, beta, tau, threshold, g_spk, g_exc, g_inh,
                                   g_mem)  # fmt: skip
        d_in, d_alpha, d_beta, d_tau, d_thr = grads
        if ctx.static:
            d_in = d_in.sum(0)
        return (d_in, _reduce(d_alpha, alpha), _reduce(d_beta, beta), _reduce(d_tau, tau),
                _reduce(d_thr, threshold), None, None, None)  # fmt: skip


def _alpha_forward(current, alpha, beta, tau, threshold, reset, static, exc, inh, mem, spk) -> None:
    """The alpha neuron with a reset, step by step, with the reference's operations in its order."""
    zeros = torch.zeros_like(mem[0])
    for t in range(mem.shape[0]):
        i_t = _input_at(current, t, static)
        exc_prev, inh_prev = (exc[t - 1], inh[t - 1]) if t > 0 else (zeros, zeros)
        torch.mul(alpha, exc_prev, out=exc[t]).add_(i_t)
        torch.mul(beta, inh_prev, out=inh[t]).sub_(i_t)
        torch.mul(tau, torch.add(exc[t], inh[t], out=mem[t]), out=mem[t])
        if t > 0:
            r = spk[t - 1]  # reset[t] = H(mem[t-1] - threshold) = spike[t-1]; 0 or 1, so every product is exact
            if reset == "subtract":
                mem[t].addcmul_(r, inh_prev)
                exc[t].addcmul_(r, threshold, value=-1)
                inh[t].mul_(1 - r)
            else:  # zero_step
                keep = 1 - r
                exc[t].mul_(keep)
                inh[t].mul_(keep)
                mem[t].mul_(keep)
        torch.gt(mem[t], threshold, out=spk[t])


def _alpha_adjoint_free(ctx, exc, inh, mem, alpha, beta, tau, threshold, g_spk, g_exc, g_inh, g_mem):
    """The adjoint without a reset: M = dL/dmem is local, and each current's adjoint is a decay scan."""
    if g_spk is not None:
        m = ctx.surrogate.grad_(mem - threshold).mul_(g_spk)  # gspk*sg
        d_thr = -m if threshold.requires_grad else None
        if g_mem is not None:
            m.add_(g_mem)
    else:
        m, d_thr = (g_mem if g_mem is not None else torch.zeros_like(mem)), None
    tm = tau * m
    e_p = _decay_adjoint(tm + g_exc if g_exc is not None else tm.clone(), alpha)
    i_p = _decay_adjoint(tm + g_inh if g_inh is not None else tm, beta)
    d_tau = m * (exc + inh) if tau.requires_grad else None
    d_alpha = _shifted_product(e_p, exc) if alpha.requires_grad else None
    d_beta = _shifted_product(i_p, inh) if beta.requires_grad else None
    return e_p.sub_(i_p), d_alpha, d_beta, d_tau, d_thr


def _shifted_product(adjoint: Tensor, state: Tensor) -> Tensor:
    """``sum_t adjoint[t] * state[t-1]`` (state[-1] = 0): a decay's gradient."""
    if state.shape[0] < 2:
        return torch.zeros_like(state[0])
    return (adjoint[1:] * state[:-1]).sum(0)


def _alpha_adjoint(ctx, current, exc, inh, mem, alpha, beta, tau, threshold, g_spk, g_exc, g_inh, g_mem):
    """The adjoint with a reset, from the last step to the first (see :class:`AlphaScan`)."""
    subtract = ctx.reset == "subtract"
    T = mem.shape[0]
    d_in = torch.empty_like(mem)
    zeros = torch.zeros_like(mem[0])
    d_alpha = torch.zeros_like(mem[0]) if alpha.requires_grad else None
    d_beta = torch.zeros_like(mem[0]) if beta.requires_grad else None
    d_tau = torch.zeros_like(mem[0]) if tau.requires_grad else None
    d_thr = torch.zeros_like(mem[0]) if threshold.requires_grad else None
    # Ep[t+1], Ip[t+1], M[t+1] and spike[t] = reset[t+1]; zero after the last step
    e_next = i_next = m_next = spk_t = zeros
    for t in range(T - 1, -1, -1):
        r = _fired(mem[t - 1], threshold) if t > 0 else zeros  # reset[t]
        m = zeros.clone() if g_mem is None else g_mem[t].clone()
        if g_spk is not None:
            sg = ctx.surrogate.grad_(mem[t] - threshold).mul_(g_spk[t])
            m.add_(sg)
            if d_thr is not None:
                d_thr.sub_(sg)
        e = zeros.clone() if g_exc is None else g_exc[t].clone()  # E[t]
        i = zeros.clone() if g_inh is None else g_inh[t].clone()  # Iv[t]
        e.addcmul_(alpha.expand_as(e), e_next)
        i.addcmul_(beta.expand_as(i), i_next)
        if subtract:
            i.addcmul_(spk_t, m_next)
        if subtract and d_thr is not None:
            d_thr.addcmul_(r, e, value=-1)
        keep = 1 - r
        if not subtract:  # zero_step: every state of the step is scaled by 1 - reset
            m_p = m * keep
            e.mul_(keep)
        else:
            m_p = m
        i.mul_(keep)
        tm = tau * m_p
        e.add_(tm)  # Ep[t]
        i.add_(tm)  # Ip[t]
        torch.sub(e, i, out=d_in[t])
        if t > 0:
            if d_alpha is not None:
                d_alpha.addcmul_(e, exc[t - 1])
            if d_beta is not None:
                d_beta.addcmul_(i, inh[t - 1])
        if d_tau is not None:
            # exc' + inh' rebuilt as the forward pass computed them
            i_t = _input_at(current, t, ctx.static)
            exc_prev, inh_prev = (exc[t - 1], inh[t - 1]) if t > 0 else (zeros, zeros)
            d_tau.addcmul_(m_p, (alpha * exc_prev + i_t) + (beta * inh_prev - i_t))
        e_next, i_next, m_next, spk_t = e, i, m, r
    return d_in, d_alpha, d_beta, d_tau, d_thr
