"""SpikingJelly 2.0's IFNode, LIFNode and ParametricLIFNode, with its equations and its names.

Per step (``v_r = v_reset``, or 0 with the soft reset)::

    IF:                        h[t] = v[t-1] + x[t]
    LIF, decay_input=True:     h[t] = v[t-1] + (x[t] - (v[t-1] - v_r)) / tau
    LIF, decay_input=False:    h[t] = v[t-1] - (v[t-1] - v_r) / tau + x[t]
    PLIF: LIF with 1/tau = sigmoid(w), w learnt, w = -log(init_tau - 1) at the start
    spike[t] = H(h[t] - v_threshold), H(0) = 1: a membrane exactly at threshold fires
    soft reset (v_reset=None):  v[t] = h[t] - spike[t]*v_threshold
    hard reset (v_reset=x):     v[t] = spike[t]*v_reset + (1 - spike[t])*h[t]
    v[-1] = v_reset (hard) or 0 (soft)

The reset happens in the step that fires (snnTorch delays it by one step). ``detach_reset=True`` takes
the spike inside the reset out of the gradient; the output spike keeps its surrogate gradient. ``forward``
returns the spikes and ``v[t]``, the membrane after the reset (SpikingJelly's ``v_seq``).

These are not :class:`~snnlab.engine.neurons.base.SpikingNeuron`: they have no beta, their threshold is a
fixed number, and snnTorch's options (graded spikes, inhibition, ...) do not apply. Their state dict is
SpikingJelly's: empty for IF and LIF, ``w`` for PLIF, so a SpikingJelly PLIF's state dict loads.

The fast path is :class:`snnlab.engine.kernels.spikingjelly.Scan` (whole sequence, hand-written backward:
C on the CPU, Triton on CUDA, a torch scan otherwise); ``fused=False`` or :meth:`reference` runs the step
loop with autograd.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from snnlab.engine import surrogates
from snnlab.engine.kernels import spikingjelly as sj

DEFAULT_SURROGATE = "sj_sigmoid"  # SpikingJelly's default, Sigmoid(alpha=4)


class SpikingJellyState(NamedTuple):
    v: Tensor


class SpikingJellyNeuron(nn.Module):
    """What IF, LIF and PLIF share: ``v_threshold``, ``v_reset``, ``detach_reset`` and the surrogate."""

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate: str | surrogates.Surrogate = DEFAULT_SURROGATE,
        surrogate_params: dict[str, float] | None = None,
        decay_input: bool = True,
        fused: bool = True,
    ) -> None:
        super().__init__()
        if not math.isfinite(v_threshold):
            raise ValueError(f"v_threshold must be finite (got {v_threshold})")
        if v_reset is not None and not math.isfinite(v_reset):
            raise ValueError(f"v_reset must be a finite number or None for the soft reset (got {v_reset})")
        spike_fn = surrogates.resolve(surrogate, **(surrogate_params or {}))
        if not isinstance(spike_fn, surrogates.Surrogate):
            raise TypeError("a SpikingJelly neuron needs a Surrogate (a name or an instance), not a plain callable")
        self.spike_fn = spike_fn
        self.dynamics = sj.Dynamics(decay_input, float(v_threshold), None if v_reset is None else float(v_reset),
                                    bool(detach_reset))  # fmt: skip
        self.fused = fused

    @property
    def v_threshold(self) -> float:
        return self.dynamics.v_threshold

    @property
    def v_reset(self) -> float | None:
        return self.dynamics.v_reset

    @property
    def detach_reset(self) -> bool:
        return self.dynamics.detach_reset

    @property
    def decay_input(self) -> bool:
        return self.dynamics.decay_input

    @property
    def threshold(self) -> Tensor:
        """``v_threshold`` as a tensor, as other neurons expose their threshold (the lab's probes read it)."""
        return torch.tensor(self.v_threshold)

    def leak(self, like: Tensor) -> sj.Leak:
        raise NotImplementedError

    def surrogate_input(self, spikes: Tensor, membrane: Tensor) -> tuple[Tensor, Tensor | None]:
        """Where the spike function was evaluated, ``(h - v_threshold, known)``, from the spikes and the membrane
        after the reset ``v`` that ``forward`` returns: the soft reset took ``v_threshold`` off ``h`` where it
        fired (every step known); the hard reset overwrote ``h`` there, so only the steps without a spike are."""
        v, fired = membrane.float(), spikes != 0
        if self.v_reset is None:
            return v + fired.float() * self.v_threshold - self.v_threshold, None
        return v - self.v_threshold, ~fired

    def forward(self, x: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        """``x [T, B, ...]`` (or ``[B, ...]`` with ``time_steps``) -> ``(spikes, v)``, each ``[T, B, ...]``."""
        if not self.fused:
            return self.reference(x, time_steps)
        return sj.scan(x, self.leak(x), self.dynamics, self.spike_fn, time_steps)

    def reference(self, x: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        return sj.reference(x, self.leak(x), self.dynamics, self.spike_fn, time_steps)

    def init_state(self, like: Tensor) -> SpikingJellyState:
        return SpikingJellyState(sj.initial(like, self.v_reset))

    def step(self, x: Tensor, state: SpikingJellyState | None = None) -> tuple[Tensor, SpikingJellyState]:
        """One step: ``x [B, ...]`` -> ``(spike_t, SpikingJellyState(v))``."""
        state = state or self.init_state(x)
        spike, v = sj.step(x, state.v, self.leak(x), self.dynamics, self.spike_fn)
        return spike, SpikingJellyState(v)

    def extra_repr(self) -> str:
        d = self.dynamics
        return (
            f"v_threshold={d.v_threshold:g}, v_reset={d.v_reset if d.v_reset is None else format(d.v_reset, 'g')}, "
            f"detach_reset={d.detach_reset}, surrogate={self.spike_fn!r}"
        )


class IF(SpikingJellyNeuron):
    """SpikingJelly's IFNode: ``h[t] = v[t-1] + x[t]``, then fire and reset (see the module's docstring).

    Args:
        v_threshold: firing threshold; a membrane at or above it fires.
        v_reset: the membrane after a spike (hard reset), or None to subtract v_threshold (soft reset).
        detach_reset: no gradient through the spike inside the reset.
        surrogate, surrogate_params: the spike's surrogate gradient (default SpikingJelly's Sigmoid, alpha 4).
        fused: the whole-sequence scan (default) or the step loop.
    """

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate: str | surrogates.Surrogate = DEFAULT_SURROGATE,
        surrogate_params: dict[str, float] | None = None,
        fused: bool = True,
    ) -> None:
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, surrogate_params, True, fused)

    def leak(self, like: Tensor) -> sj.Leak:
        return None


class LIF(SpikingJellyNeuron):
    """SpikingJelly's LIFNode: the membrane relaxes towards ``v_r`` with time constant ``tau`` (> 1)::

        decay_input=True:   h[t] = v[t-1] + (x[t] - (v[t-1] - v_r)) / tau
        decay_input=False:  h[t] = v[t-1] - (v[t-1] - v_r) / tau + x[t]

    then fires and resets as the module's docstring says. Other arguments as :class:`IF`'s.
    """

    def __init__(
        self,
        tau: float = 2.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate: str | surrogates.Surrogate = DEFAULT_SURROGATE,
        surrogate_params: dict[str, float] | None = None,
        fused: bool = True,
    ) -> None:
        if not (isinstance(tau, int | float) and math.isfinite(tau) and tau > 1):
            raise ValueError(f"tau must be a number > 1 (got {tau})")
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, surrogate_params, decay_input, fused)
        self.tau = float(tau)

    def leak(self, like: Tensor) -> sj.Leak:
        return self.tau

    def extra_repr(self) -> str:
        return f"tau={self.tau:g}, decay_input={self.decay_input}, " + super().extra_repr()


class PLIF(SpikingJellyNeuron):
    """SpikingJelly's ParametricLIFNode: a LIF whose ``1/tau = sigmoid(w)`` is learnt, one ``w`` per layer.

    ``w`` starts at ``-log(init_tau - 1)``, so that ``sigmoid(w) = 1/init_tau``; ``init_tau > 1``::

        decay_input=True:   h[t] = v[t-1] + (x[t] - (v[t-1] - v_r)) * sigmoid(w)
        decay_input=False:  h[t] = v[t-1] - (v[t-1] - v_r) * sigmoid(w) + x[t]

    then fires and resets as the module's docstring says. Other arguments as :class:`IF`'s.
    """

    def __init__(
        self,
        init_tau: float = 2.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate: str | surrogates.Surrogate = DEFAULT_SURROGATE,
        surrogate_params: dict[str, float] | None = None,
        fused: bool = True,
    ) -> None:
        if not (isinstance(init_tau, int | float) and math.isfinite(init_tau) and init_tau > 1):
            raise ValueError(f"init_tau must be a number > 1 (got {init_tau})")
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, surrogate_params, decay_input, fused)
        self.w = nn.Parameter(torch.as_tensor(-math.log(init_tau - 1.0), dtype=torch.float32))

    @property
    def tau(self) -> float:
        """The current time constant, ``1/sigmoid(w)``."""
        return 1.0 / torch.sigmoid(self.w.detach()).item()

    def leak(self, like: Tensor) -> sj.Leak:
        return self.w.sigmoid().to(like.dtype)

    def extra_repr(self) -> str:
        return f"tau={self.tau:g}, decay_input={self.decay_input}, " + super().extra_repr()
