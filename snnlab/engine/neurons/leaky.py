"""First-order neurons: Leaky and Lapicque (Leaky with physical constants)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from snnlab.engine.kernels import fused as fk
from snnlab.engine.kernels import reference as ref
from snnlab.engine.neurons.base import SpikingNeuron


class LeakyState(NamedTuple):
    mem: Tensor


class Leaky(SpikingNeuron):
    """Leaky integrate-and-fire neuron (first order), with snnTorch's delayed, detached reset.

    ::

        reset[t] = H(mem[t-1] - threshold)                       (no gradient)
        subtract: mem[t] = beta*mem[t-1] + I[t] - reset[t]*threshold
        zero:     mem[t] = beta*(1 - reset[t])*mem[t-1] + I[t]    (the input of a reset step still lands)
        none:     mem[t] = beta*mem[t-1] + I[t]
        spike[t] = H(mem[t] - threshold)                         (surrogate gradient)
        mem[-1] = 0

    Args:
        beta: membrane decay per step, scalar or per-neuron tensor broadcastable to the features.
        threshold: firing threshold (> 0), scalar or per-neuron.
        reset: "subtract" (default), "zero" or "none".
        surrogate: a registry name (see ``surrogates.names()``), a Surrogate, or a callable ``spike(x)``.
        surrogate_params: parameters of a named surrogate, e.g. ``{"alpha": 2.0}``.
        learn_beta, learn_threshold: make beta / threshold trainable parameters.
        fused: use the fused whole-sequence kernel (default) instead of the reference loop.

    Shapes: ``current [T, B, ...]`` -> ``(spikes, mem)`` each ``[T, B, ...]``.
    """

    zero_reset = "zero"

    def forward(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        if not self.uses_fused:
            return self.reference(current, time_steps)
        beta, threshold = self._params(current)
        spk, mem = fk.LeakyScan.apply(current, beta, threshold, self.scan_reset, self.spike_fn, time_steps)
        return self._fired(spk, mem, threshold), mem

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        beta, threshold = self._params(current)
        return ref.leaky(current, beta, threshold, self.scan_reset, self.firing, time_steps)

    def init_state(self, like: Tensor) -> LeakyState:
        return LeakyState(torch.zeros_like(like))

    def step(self, current: Tensor, state: LeakyState | None = None) -> tuple[Tensor, LeakyState]:
        """One time step: ``current [B, ...]`` -> ``(spike_t, LeakyState(mem))``."""
        state = state or self.init_state(current)
        beta, threshold = self._params(current)
        spk, mem = ref.leaky_step(current, state.mem, beta, threshold, self.scan_reset, self.firing)
        return spk, LeakyState(mem)


class Lapicque(Leaky):
    """Lapicque's RC neuron, integrated with forward Euler: a Leaky neuron with physical constants.

    ::

        mem[t] = (1 - dt/(R*C))*mem[t-1] + (dt/C)*I[t] - reset[t]*threshold
        spike[t] = H(mem[t] - threshold)

    i.e. ``beta = 1 - dt/(R*C)`` and the input is scaled by ``dt/C``. Requires ``dt <= R*C``. Its zero reset
    zeroes the whole step, input included: ``mem[t] = (1 - reset[t])*((1 - dt/(R*C))*mem[t-1] + (dt/C)*I[t])``.
    """

    zero_reset = "zero_step"

    def __init__(self, R: float = 5.0, C: float = 5e-3, time_step: float = 1e-3, **kwargs) -> None:
        if not (R > 0 and C > 0 and 0 < time_step <= R * C):
            raise ValueError(f"Lapicque needs R > 0, C > 0 and 0 < time_step <= R*C (got {R}, {C}, {time_step})")
        super().__init__(beta=1 - time_step / (R * C), **kwargs)
        self.R, self.C, self.time_step = R, C, time_step

    def forward(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        if not self.uses_fused:
            return self.reference(current, time_steps)  # it scales the input itself
        return super().forward(current * (self.time_step / self.C), time_steps)

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        return super().reference(current * (self.time_step / self.C), time_steps)

    def step(self, current: Tensor, state: LeakyState | None = None) -> tuple[Tensor, LeakyState]:
        return super().step(current * (self.time_step / self.C), state)
