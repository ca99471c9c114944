"""The fused scans of the recurrent neurons, RLeaky and RSynaptic: the leaky (and synaptic) scans of
``fused.py`` with the feedback R(spike[t-1]) added to each step's drive, and its adjoint in the backward
(see ``fused.py`` for the recursions)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.grad import conv2d_weight

from snnlab.engine.kernels.fused import (
    _fired,
    _input_at,
    _leaky_step_into,
    _membrane_adjoint,
    _reduce,
    _shifted_product,
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
            scratch = torch.empty_like(mem[0])
            zeros = torch.zeros_like(mem[0])
            for t in range(shape[0]):
                feedback = _feedback(spk[t - 1] if t > 0 else zeros, weight, bias, recurrence, padding)
                _leaky_step_into(_input_at(current, t, static), mem, spk, t, beta, threshold, reset, scratch, feedback)
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
