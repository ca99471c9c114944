"""BrainPy's neurons of its surrogate-gradient tutorial (``brainpy.state``, formerly ``brainstate.nn``).

``Expon``, the exponential synapse the tutorial puts after its output layer, as a non-spiking readout.
BrainPy integrates ``dg/dt = -g/tau`` with the exponential Euler step, exact for this linear equation, and
then adds the step's input::

    g[t] = beta*g[t-1] + I[t],    beta = exp(-dt/tau),  g[-1] = 0
    spike[t] = 0                  (it never fires)

The layer's output, and what losses and decoders read as its membrane, is ``g``: a leaky integrator of the
previous layer's weighted spikes. It belongs at the output only (the layer after it would see no spikes).
With tau 10 ms and dt 1 ms, ``beta = exp(-0.1) = 0.904837``.

``BrainPyLIF``, the tutorial's hidden layer: an ``Expon`` synapse feeding BrainPy's ``LIF``. The LIF's
``tau dV/dt = -V + I`` is integrated by the exponential Euler step too, so its input is scaled by
``1 - beta``, and its reset (soft: subtract the threshold, with the spike's surrogate gradient) is applied to
the previous membrane before it decays::

    syn[t] = alpha*syn[t-1] + I[t]                                  (the Expon synapse, alpha = exp(-dt/tau_syn))
    mem[t] = beta*(mem[t-1] - threshold*spike[t-1]) + (1 - beta)*syn[t]       (subtract, BrainPy's "soft")
    mem[t] = beta*(mem[t-1] - sg(mem[t-1])*spike[t-1]) + (1 - beta)*syn[t]    (zero, BrainPy's "hard")
    spike[t] = H((mem[t] - threshold)/threshold), H(0) = 1          (the surrogate sees V scaled by V_th - V_reset)

with ``beta = exp(-dt/tau_mem)``, ``V_rest = V_reset = 0`` and ``sg`` a stop-gradient. snnTorch's Synaptic
differs in three places: its input is not scaled, its reset comes after the decay and carries no gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from snnlab.engine.kernels import fused as fk
from snnlab.engine.neurons.base import _as_tensor, _short
from snnlab.engine.neurons.synaptic import _SynapticCurrent


class ExponState(NamedTuple):
    g: Tensor


class ExponScan(torch.autograd.Function):
    """``g[t] = beta*g[t-1] + I[t]`` over the whole sequence (the synaptic current's scan), and its adjoint
    ``eps[t] = dL/dg[t] + beta*eps[t+1]``: ``dL/dI[t] = eps[t]``, ``dL/dbeta = sum_t eps[t]*g[t-1]``."""

    @staticmethod
    def forward(ctx, current: Tensor, beta: Tensor, time_steps: int | None):
        static = time_steps is not None
        steps = current.shape[0] if time_steps is None else time_steps
        features = current.shape if static else current.shape[1:]
        g = current.new_empty((steps, *features))
        with torch.no_grad():
            fk._decay_forward(current, beta, time_steps, g)
        ctx.save_for_backward(g, beta)
        ctx.static = static
        return g

    @staticmethod
    def backward(ctx, grad_g):
        g, beta = ctx.saved_tensors
        eps = fk._decay_adjoint(grad_g.contiguous().clone(), beta)
        d_beta = fk._shifted_product(eps, g) if beta.requires_grad else None
        return (eps.sum(0) if ctx.static else eps), fk._reduce(d_beta, beta), None


class Expon(nn.Module):
    """Non-spiking exponential-synapse readout (BrainPy's ``Expon``).

    ::

        g[t] = beta*g[t-1] + I[t]      (beta clamped to [0, 1])
        spike[t] = 0

    Args:
        beta: decay per step, ``exp(-dt/tau)``; a number or one per neuron.
        learn_beta: make beta a trained parameter.
        fused: run the whole-sequence scan (:class:`ExponScan`, in C on the CPU) instead of the step loop.

    Shapes: ``current [T, B, ...]`` (or ``[B, ...]`` with ``time_steps``) -> ``(spikes, g)`` each ``[T, B, ...]``;
    the spikes are zeros.
    """

    beta: Tensor
    threshold: Tensor  # zero, never compared: it never fires (a probe records no threshold for it)
    fires = False

    def __init__(self, beta: float | Tensor = 0.9, learn_beta: bool = False, fused: bool = True) -> None:
        super().__init__()
        value = _as_tensor(beta, "beta")
        if learn_beta:
            self.beta = nn.Parameter(value)
        else:
            self.register_buffer("beta", value)
        self.register_buffer("threshold", torch.zeros(()), persistent=False)
        self.fused = fused

    def _beta(self, like: Tensor) -> Tensor:
        return self.beta.clamp(0, 1).to(like.dtype)

    def forward(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        if not self.fused:
            return self.reference(current, time_steps)
        g = ExponScan.apply(current, self._beta(current), time_steps)
        return torch.zeros_like(g), g

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        """The step loop with plain autograd: the equation above, one step at a time."""
        steps = time_steps if time_steps is not None else current.shape[0]
        state = None
        out = []
        for t in range(steps):
            _, state = self.step(current if time_steps is not None else current[t], state)
            out.append(state.g)
        g = torch.stack(out)
        return torch.zeros_like(g), g

    def init_state(self, like: Tensor) -> ExponState:
        return ExponState(torch.zeros_like(like))

    def step(self, current: Tensor, state: ExponState | None = None) -> tuple[Tensor, ExponState]:
        """One step: ``current [B, ...]`` -> ``(zeros, ExponState(g))``."""
        state = state or self.init_state(current)
        g = self._beta(current) * state.g + current
        return torch.zeros_like(g), ExponState(g)

    def extra_repr(self) -> str:
        return f"beta={_short(self.beta)}, never fires"


class BrainPyLIFState(NamedTuple):
    syn: Tensor
    spk: Tensor
    mem: Tensor  # last, as in every neuron's state


class BrainPyLIF(_SynapticCurrent):
    """BrainPy's ``LIF`` behind an ``Expon`` synapse, integrated as BrainPy integrates them (equations in the
    module's docstring).

    Args: ``alpha`` (synaptic decay, ``exp(-dt/tau_syn)``), ``beta`` (membrane decay, ``exp(-dt/tau_mem)``),
    ``threshold`` (V_th; V_rest and V_reset are 0), ``reset`` ("subtract": BrainPy's soft reset, the default;
    "zero": its hard reset; "none"), the surrogate, and ``learn_alpha``, ``learn_beta``, ``learn_threshold``.
    snnTorch's options (graded spikes, inhibition, ...) do not apply.

    One path: the step loop with plain autograd (the reset's gradient runs through the previous spike,
    which no fused scan here carries). Shapes: ``current [T, B, ...]`` -> ``(spikes, syn, mem)``.
    """

    def forward(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        return self.reference(current, time_steps)

    def surrogate_input(self, spikes: Tensor, membrane: Tensor) -> tuple[Tensor, Tensor | None] | None:
        """``(mem - threshold) / threshold``: BrainPy's surrogate sees the membrane scaled by V_th - V_reset."""
        where = super().surrogate_input(spikes, membrane)
        return None if where is None else (where[0] / self.threshold.to(membrane.device, torch.float32), where[1])

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        steps = time_steps if time_steps is not None else current.shape[0]
        state = None
        spikes, syns, mems = [], [], []
        for t in range(steps):
            spk, state = self.step(current if time_steps is not None else current[t], state)
            spikes.append(spk)
            syns.append(state.syn)
            mems.append(state.mem)
        return torch.stack(spikes), torch.stack(syns), torch.stack(mems)

    def init_state(self, like: Tensor) -> BrainPyLIFState:
        return BrainPyLIFState(torch.zeros_like(like), torch.zeros_like(like), torch.zeros_like(like))

    def step(self, current: Tensor, state: BrainPyLIFState | None = None) -> tuple[Tensor, BrainPyLIFState]:
        """One step: ``current [B, ...]`` -> ``(spike_t, BrainPyLIFState(syn, spike, mem))``."""
        state = state or self.init_state(current)
        beta, threshold = self._params(current)
        syn = self._alpha(current) * state.syn + current
        if self.reset == "subtract":
            mem = state.mem - threshold * state.spk
        elif self.reset == "zero":
            mem = state.mem - state.mem.detach() * state.spk
        else:
            mem = state.mem
        mem = beta * mem + (1 - beta) * syn
        # BrainPy's Heaviside is 1 at 0: a membrane exactly at threshold fires (a user's own spike function
        # without that variant decides for itself).
        fire = getattr(self.spike_fn, "spike_at_threshold", self.spike_fn)
        spk = fire((mem - threshold) / threshold)
        return spk, BrainPyLIFState(syn, spk, mem)
