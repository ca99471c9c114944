"""SpikingJelly's IF, LIF and parametric LIF: the one-step equations and a whole-sequence scan.

Each step charges the membrane, fires, and resets in the same step (no delay)::

    charge   IF:                       h[t] = v[t-1] + x[t]
             LIF, decay_input:         h[t] = v[t-1] + (x[t] - (v[t-1] - v_r)) / tau
             LIF, not decay_input:     h[t] = v[t-1] - (v[t-1] - v_r) / tau + x[t]
             PLIF: the same as LIF with ``* q`` for ``/ tau``, q = sigmoid(w) = 1/tau
    fire     s[t] = H(h[t] - v_threshold),  H(0) = 1 (a membrane at threshold fires), surrogate gradient
    reset    soft (v_reset None):      v[t] = h[t] - s[t]*v_threshold
             hard (v_reset a number):  v[t] = s[t]*v_reset + (1 - s[t])*h[t]
    v[-1] = v_reset (hard) or 0 (soft);  v_r = v_reset, or 0 with the soft reset

``detach_reset`` cuts the gradient through ``s[t]`` inside the reset (not through the output spike). The
recorded membrane is ``v[t]``, after the reset. The expressions are written as SpikingJelly 2.0 writes them,
operation for operation, so that the values agree with it bit for bit where the arithmetic is the same.

:func:`reference` steps with plain autograd. :class:`Scan` is the fast path: one autograd function over the
sequence whose forward runs without a graph (the same expressions as :func:`step`, so equal bit for bit) and
saves only the input and the membrane ``v`` (an output); its backward rebuilds ``h[t]`` from ``v[t-1]`` and
``x[t]`` and walks back through time (``e[t] = dL/dv[t]``, ``sg[t] = surrogate.grad(h[t] - v_threshold)``)::

    ds[t] = gspk[t] + e[t] * (-v_threshold (soft) | v_reset - h[t] (hard))     (without detach_reset)
    dh[t] = e[t] * (1 (soft) | 1 - s[t] (hard)) + ds[t] * sg[t]
    dx[t] = dh[t] * a   (decay_input; a = 1/tau, q, or 1 for IF)   |  dh[t]  (not decay_input)
    e[t-1] = gv[t-1] + dh[t] - dh[t]*a                                    (IF: + dh[t])
    dL/dq = sum_t dh[t] * (x[t] - (v[t-1] - v_r))  (decay_input)  |  -sum_t dh[t] * (v[t-1] - v_r)

That torch code runs one step at a time. Where it can, :class:`Scan` hands the whole sequence to a one-pass
kernel with the same expressions instead (:func:`path` says which runs):

- C (``leaky.c`` through ``native.py``) on CPU float32 tensors: every element walks through time once, in
  blocks split over threads. Forward and backward are bit for bit this torch scan's, for every surrogate: one
  written as :class:`~snnlab.engine.surrogates.Steps` runs inside the C loop, any other runs its own torch
  ``grad_`` on each step's slice of ``h - v_threshold`` (computed in C), as this scan calls it per step.
- Triton (``cuda.py``) on CUDA float32 tensors, without fused multiply-adds: the forward is this scan's bit
  for bit; the backward repeats its operations, with the surrogate's gradient evaluated by torch over the
  whole sequence first (a last-bit difference is possible there for a surrogate with ``exp`` and the like).
  Checked on the CPU through Triton's interpreter; a failed launch falls back to this torch scan.

Anything else (float64, a ``q`` that is not one value) takes the torch scan; so does everything with
``SNNLAB_NATIVE=0`` / ``SNNLAB_TRITON=0``. A static input (the same current at every step) is passed as
``[B, ...]`` with ``time_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from snnlab.engine.kernels import cuda, native
from snnlab.engine.kernels.fused import _input_at
from snnlab.engine.surrogates import Surrogate

# The leak: tau (LIF, a number), q = sigmoid(w) (PLIF, a 0-d tensor), or None (IF: no leak).
Leak = float | Tensor | None


@dataclass(frozen=True)
class Dynamics:
    """What a SpikingJelly neuron does besides its leak."""

    decay_input: bool = True
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    detach_reset: bool = False


def charge(x: Tensor, v: Tensor, leak: Leak, decay_input: bool, v_reset: float | None) -> Tensor:
    """``h[t]`` from ``x[t]`` and ``v[t-1]``."""
    if leak is None:
        return v + x
    rest = 0.0 if v_reset is None else v_reset
    if isinstance(leak, float):
        return v + (x - (v - rest)) / leak if decay_input else v - (v - rest) / leak + x
    return v + (x - (v - rest)) * leak if decay_input else v - (v - rest) * leak + x


def reset(h: Tensor, spike: Tensor, v_threshold: float, v_reset: float | None) -> Tensor:
    """``v[t]`` from ``h[t]`` and ``s[t]``."""
    if v_reset is None:
        return h - spike * v_threshold
    return spike * v_reset + (1.0 - spike) * h


def initial(like: Tensor, v_reset: float | None) -> Tensor:
    """``v[-1]``: v_reset (hard reset) or 0 (soft)."""
    return torch.full_like(like, 0.0 if v_reset is None else v_reset)


def step(x: Tensor, v: Tensor, leak: Leak, dyn: Dynamics, surrogate: Surrogate) -> tuple[Tensor, Tensor]:
    """One step with autograd: ``(s[t], v[t])``."""
    h = charge(x, v, leak, dyn.decay_input, dyn.v_reset)
    spike = surrogate.spike_at_threshold(h - dyn.v_threshold)
    v = reset(h, spike.detach() if dyn.detach_reset else spike, dyn.v_threshold, dyn.v_reset)
    return spike, v


def reference(
    x: Tensor, leak: Leak, dyn: Dynamics, surrogate: Surrogate, time_steps: int | None = None
) -> tuple[Tensor, Tensor]:
    """The step loop: ``x [T, B, ...]`` (or ``[B, ...]`` with ``time_steps``) -> ``(spikes, v)`` ``[T, B, ...]``."""
    static = time_steps is not None
    steps = time_steps if time_steps is not None else x.shape[0]
    v = initial(_input_at(x, 0, static), dyn.v_reset)
    spikes, voltages = [], []
    for t in range(steps):
        spike, v = step(_input_at(x, t, static), v, leak, dyn, surrogate)
        spikes.append(spike)
        voltages.append(v)
    return torch.stack(spikes), torch.stack(voltages)


class Scan(torch.autograd.Function):
    """The whole sequence in one autograd function (see the module's docstring for the backward)."""

    @staticmethod
    def forward(ctx, x: Tensor, leak: Leak, dyn: Dynamics, surrogate: Surrogate, time_steps: int | None):
        ctx.set_materialize_grads(False)
        static = time_steps is not None
        steps = time_steps if time_steps is not None else x.shape[0]
        first = _input_at(x, 0, static)
        spikes = first.new_empty((steps, *first.shape))
        voltages = torch.empty_like(spikes)
        ctx.kernel = None
        with torch.no_grad():
            if native.sj_usable(x, leak, surrogate):
                native.sj_forward(x, leak, dyn, time_steps, spikes, voltages)
                ctx.kernel = native
            elif cuda.sj_usable(x, leak, surrogate) and cuda.sj_forward(x, leak, dyn, time_steps, spikes, voltages):
                ctx.kernel = cuda
            else:
                _forward(x, leak, dyn, static, spikes, voltages)
        ctx.save_for_backward(x, voltages, leak if isinstance(leak, Tensor) else None)
        ctx.leak_number, ctx.dyn, ctx.surrogate, ctx.static = leak, dyn, surrogate, static
        return spikes, voltages

    @staticmethod
    def backward(ctx, g_spk: Tensor | None, g_v: Tensor | None):
        x, voltages, leak_tensor = ctx.saved_tensors
        leak: Leak = leak_tensor if leak_tensor is not None else ctx.leak_number
        dyn, surrogate, static = ctx.dyn, ctx.surrogate, ctx.static
        want_x, want_q = ctx.needs_input_grad[0], ctx.needs_input_grad[1] and isinstance(leak, Tensor)
        if ctx.kernel is not None and (want_x or want_q):
            out = ctx.kernel.sj_backward(x, voltages, g_spk, g_v, leak, dyn, surrogate, static, want_x, want_q)
            if out is not None:  # None: the Triton kernel could not run
                dx_k, dq_k = out
                d_leak_k = dq_k.sum().reshape(leak.shape) if dq_k is not None and isinstance(leak, Tensor) else None
                return dx_k, d_leak_k, None, None, None
        rest = 0.0 if dyn.v_reset is None else dyn.v_reset
        steps = voltages.shape[0]
        v0 = initial(voltages[0], dyn.v_reset)
        dx = torch.zeros_like(x) if static else torch.empty_like(x)
        dq = torch.zeros_like(voltages[0]) if want_q else None
        e = torch.zeros_like(voltages[0])  # dL/dv[t] from step t+1
        for t in range(steps - 1, -1, -1):
            v_prev = voltages[t - 1] if t > 0 else v0
            x_t = _input_at(x, t, static)
            h = charge(x_t, v_prev, leak, dyn.decay_input, dyn.v_reset)
            z = h - dyn.v_threshold
            if g_v is not None:
                e = e + g_v[t]
            ds = g_spk[t] if g_spk is not None else torch.zeros_like(h)
            if not dyn.detach_reset:
                ds = ds + e * (-dyn.v_threshold if dyn.v_reset is None else dyn.v_reset - h)
            dh = ds * surrogate.grad(z)
            if dyn.v_reset is None:
                dh = dh + e
            else:
                dh = dh + e * (1.0 - (z >= 0).to(h.dtype))
            if leak is None:
                through, e = dh, dh
            else:
                scaled = dh / leak if isinstance(leak, float) else dh * leak
                through = scaled if dyn.decay_input else dh
                e = dh - scaled
            if want_x:
                if static:
                    dx += through
                else:
                    dx[t] = through
            if dq is not None:
                dq += dh * (x_t - (v_prev - rest)) if dyn.decay_input else -(dh * (v_prev - rest))
        d_leak = dq.sum().reshape(leak.shape) if dq is not None and isinstance(leak, Tensor) else None
        return (dx if want_x else None), d_leak, None, None, None


def _forward(x: Tensor, leak: Leak, dyn: Dynamics, static: bool, spikes: Tensor, voltages: Tensor) -> None:
    """The torch scan: fill ``spikes``/``voltages`` step by step, without a graph."""
    v = initial(_input_at(x, 0, static), dyn.v_reset)
    for t in range(spikes.shape[0]):
        h = charge(_input_at(x, t, static), v, leak, dyn.decay_input, dyn.v_reset)
        spike = (h - dyn.v_threshold >= 0).to(h.dtype)  # as Surrogate.spike_at_threshold computes it
        v = reset(h, spike, dyn.v_threshold, dyn.v_reset)
        spikes[t], voltages[t] = spike, v


def path(x: Tensor, leak: Leak, surrogate: Surrogate) -> str:
    """Which scan :func:`scan` runs for these arguments: ``"C"``, ``"Triton"`` or ``"torch"``."""
    if native.sj_usable(x, leak, surrogate):
        return "C"
    return "Triton" if cuda.sj_usable(x, leak, surrogate) else "torch"


def scan(
    x: Tensor, leak: Leak, dyn: Dynamics, surrogate: Surrogate, time_steps: int | None = None
) -> tuple[Tensor, Tensor]:
    """The fast path: the same result as :func:`reference`."""
    spikes, voltages = Scan.apply(x, leak, dyn, surrogate, time_steps)
    return spikes, voltages
