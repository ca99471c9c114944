"""First-order neurons: Leaky and Lapicque (Leaky with physical constants)."""

from __future__ import annotations

import math
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

    def forward_from(
        self, current: Tensor, state: LeakyState, time_steps: int | None = None
    ) -> tuple[Tensor, Tensor, LeakyState] | None:
        """``forward`` continued from ``state`` (where an earlier part of the sequence left the neuron):
        ``(spikes, mem, state at the end)``, or None where only the step loop can do it.

        The fused scan starts from rest, so the first step is taken here, with the reference's arithmetic,
        and its membrane becomes the scan's first input: from rest the scan's step 0 computes
        ``beta*0 + I[0]`` (no reset), which is that membrane exactly. The later steps are the scan's own."""
        if not self.uses_fused:
            return None
        current = self._scaled(current.expand(time_steps, *current.shape) if time_steps is not None else current)
        beta, threshold = self._params(current)
        first = ref.leaky_step(current[0], state.mem, beta, threshold, self.scan_reset, self.spike_fn)[1]
        folded = torch.cat([first.unsqueeze(0), current[1:]])
        spk, mem = fk.LeakyScan.apply(folded, beta, threshold, self.scan_reset, self.spike_fn, None)
        # A copy: a view of the last step would keep the whole [T, B, ...] membrane alive with the state.
        return self._fired(spk, mem, threshold), mem, LeakyState(mem[-1].clone())

    def _scaled(self, current: Tensor) -> Tensor:
        """The input as the membrane receives it (Lapicque scales it by dt/C)."""
        return current

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

    i.e. the decay is ``1 - dt/(R*C)`` and the input is scaled by ``dt/C``. Its zero reset zeroes the whole
    step, input included: ``mem[t] = (1 - reset[t])*((1 - dt/(R*C))*mem[t-1] + (dt/C)*I[t])``.

    The constants are given as snnTorch 1.0's ``Lapicque`` takes them: R and C, or ``beta`` alone, or beta
    with one of R and C. beta stands for ``exp(-dt/(R*C))`` and the missing constants are derived from it:

    - beta alone: R = 1 and C = dt/ln(1/beta);
    - beta and R: C = dt/(R*ln(1/beta));
    - beta and C: R = dt/(C*ln(1/beta)).

    The update above is then used unchanged, as snnTorch does, so a neuron given beta does **not** decay by
    beta: it decays by ``1 - dt/(R*C) = 1 - ln(1/beta)`` (0.8946 for beta = 0.9), the Euler step of
    exp(-dt/(R*C)), and its input is scaled by ``dt/C``: ``ln(1/beta)`` with beta alone, ``R*ln(1/beta)``
    with R. This matches snnTorch's equations exactly; ``self.beta`` holds the decay actually used.

    Args:
        beta: exp(-dt/(R*C)), scalar or one per neuron, in [1/e, 1): below 1/e the decay 1 - ln(1/beta)
            would be negative (dt > R*C, an unstable Euler step), and beta = 1 gives C = infinity.
        R, C: resistance and capacitance (> 0). With neither beta nor R nor C given, R = 5 and C = 5e-3.
        time_step: the Euler step dt (> 0); with R and C it must be at most R*C.
        **kwargs: as :class:`Leaky` (threshold, reset, surrogate, ...).
    """

    zero_reset = "zero_step"

    def __init__(
        self,
        beta: float | Tensor | list[float] | None = None,
        R: float | None = None,
        C: float | None = None,
        time_step: float = 1e-3,
        **kwargs,
    ) -> None:
        if not time_step > 0:
            raise ValueError(f"Lapicque needs time_step > 0 (got {time_step})")
        if beta is None and R is None and C is None:
            R, C = 5.0, 5e-3
        given = [name for name, v in (("beta", beta), ("R", R), ("C", C)) if v is not None]
        if len(given) != 2 and given != ["beta"]:
            raise ValueError(
                "Lapicque takes beta, or two of beta, R and C (the third follows from beta = exp(-dt/(R*C))); "
                f"got {' and '.join(given) or 'none'}"
            )
        for name, v in (("R", R), ("C", C)):
            if v is not None and not v > 0:
                raise ValueError(f"Lapicque needs {name} > 0 (got {v})")
        scale: float | Tensor
        if beta is None:
            assert R is not None and C is not None
            if time_step > R * C:
                raise ValueError(f"Lapicque needs time_step <= R*C (got R={R}, C={C}, time_step={time_step})")
            decay: float | Tensor = 1 - time_step / (R * C)
            scale = time_step / C
            constants: tuple[float | Tensor, float | Tensor] = (R, C)
        else:
            b = torch.as_tensor(beta, dtype=torch.float32)
            if not (torch.isfinite(b).all() and (b >= math.exp(-1)).all() and (b < 1).all()):
                raise ValueError(
                    f"Lapicque(beta=...) needs 1/e <= beta < 1 (got {beta}): its update decays by 1 - ln(1/beta), "
                    "negative below 1/e, and beta = 1 leaves no input (C = dt/ln(1) is infinite)"
                )
            dt = torch.as_tensor(time_step, dtype=torch.float32)
            log_inv = torch.log(1 / b)
            R_t = torch.as_tensor(1.0 if R is None else R, dtype=torch.float32)
            if C is None:
                C_t = dt / (R_t * log_inv)
            else:
                C_t = torch.as_tensor(C, dtype=torch.float32)
                R_t = dt / (C_t * log_inv)
            decay = 1 - dt / (R_t * C_t)
            scale = dt / C_t
            constants = (_plain(R_t), _plain(C_t))
            scale = _plain(scale)
        super().__init__(beta=decay, **kwargs)
        (self.R, self.C), self.time_step = constants, time_step
        if isinstance(scale, Tensor):  # one per neuron: moves with the module, not saved (R, C, dt are not)
            self.register_buffer("input_scale", scale, persistent=False)
        else:
            self.input_scale = scale

    def _scaled(self, current: Tensor) -> Tensor:
        return current * self.input_scale

    def forward(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        if not self.uses_fused:
            return self.reference(current, time_steps)  # it scales the input itself
        return super().forward(self._scaled(current), time_steps)

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        return super().reference(self._scaled(current), time_steps)

    def step(self, current: Tensor, state: LeakyState | None = None) -> tuple[Tensor, LeakyState]:
        return super().step(self._scaled(current), state)


def _plain(value: Tensor) -> float | Tensor:
    """A single value as a Python float, several as the tensor."""
    return value.item() if value.numel() == 1 else value
