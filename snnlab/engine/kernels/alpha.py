"""The fused scan of the Alpha neuron: two decaying synaptic currents whose scaled sum is the membrane,
with a hand-written backward through time."""

from __future__ import annotations

import torch

from snnlab.engine.kernels.fused import _decay_adjoint, _decay_forward, _fired, _input_at, _reduce, _shifted_product
from snnlab.engine.surrogates import Surrogate


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
