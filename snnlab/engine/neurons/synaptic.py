"""Neurons with a synaptic current: Synaptic and Alpha (and the base RSynaptic shares with them)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from snnlab.engine.kernels import alpha as alpha_scan
from snnlab.engine.kernels import fused as fk
from snnlab.engine.kernels import reference as ref
from snnlab.engine.neurons.base import SpikingNeuron, _as_tensor, _short


class SynapticState(NamedTuple):
    syn: Tensor
    mem: Tensor


class AlphaState(NamedTuple):
    syn_exc: Tensor
    syn_inh: Tensor
    mem: Tensor


class _SynapticCurrent(SpikingNeuron):
    """A neuron with a synaptic current that decays by ``alpha`` (clamped to [0, 1] in the forward pass):
    Synaptic, RSynaptic and Alpha. ``learn_alpha`` makes it a parameter."""

    alpha: Tensor

    def __init__(self, alpha: float | Tensor = 0.9, beta: float | Tensor = 0.8, learn_alpha: bool = False, **kw):
        super().__init__(beta=beta, **kw)
        self._register("alpha", _as_tensor(alpha, "alpha"), learn_alpha)

    def _alpha(self, like: Tensor) -> Tensor:
        return self.alpha.clamp(0, 1).to(like.dtype)

    def extra_repr(self) -> str:
        return f"alpha={_short(self.alpha)}, " + super().extra_repr()


class Synaptic(_SynapticCurrent):
    """Current-based (second-order) leaky integrate-and-fire neuron.

    ::

        syn[t] = alpha*syn[t-1] + I[t]
        mem[t] = beta*mem[t-1] + syn[t] - reset[t]*threshold      (subtract; none as in Leaky)
        mem[t] = (1 - reset[t])*(beta*mem[t-1] + syn[t])          (zero: the whole step; syn carries on)
        spike[t] = H(mem[t] - threshold)

    Args: as :class:`Leaky`, plus ``alpha`` (synaptic decay, clamped to [0, 1]) and ``learn_alpha``.
    Shapes: ``current [T, B, ...]`` -> ``(spikes, syn, mem)`` each ``[T, B, ...]``.
    """

    def forward(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        if not self.uses_fused:
            return self.reference(current, time_steps)
        beta, threshold = self._params(current)
        spk, syn, mem = fk.SynapticScan.apply(
            current, self._alpha(current), beta, threshold, self.scan_reset, self.spike_fn, time_steps
        )
        return self._fired(spk, mem, threshold), syn, mem

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        beta, threshold = self._params(current)
        return ref.synaptic(current, self._alpha(current), beta, threshold, self.scan_reset, self.firing, time_steps)

    def init_state(self, like: Tensor) -> SynapticState:
        return SynapticState(torch.zeros_like(like), torch.zeros_like(like))

    def step(self, current: Tensor, state: SynapticState | None = None) -> tuple[Tensor, SynapticState]:
        state = state or self.init_state(current)
        beta, threshold = self._params(current)
        spk, syn, mem = ref.synaptic_step(
            current, state.syn, state.mem, self._alpha(current), beta, threshold, self.scan_reset, self.firing
        )
        return spk, SynapticState(syn, mem)


class Alpha(_SynapticCurrent):
    """snnTorch's alpha neuron: an excitatory and an inhibitory synaptic current, decaying at different
    rates, whose sum (scaled by ``tau``) is the membrane, so that an input spike moves the membrane along a
    difference of exponentials (rising, then falling back) instead of a jump.

    ::

        tau = log(alpha)/(log(beta) - log(alpha)) + 1
        exc' = alpha*syn_exc[t-1] + I[t]
        inh' = beta*syn_inh[t-1] - I[t]
        mem' = tau*(exc' + inh')                       (the membrane carries nothing over of its own)
        zero (the default, as in snnTorch): syn_exc, syn_inh, mem = (1 - reset[t]) * (exc', inh', mem')
        subtract: syn_exc = exc' - reset[t]*threshold, syn_inh = (1 - reset[t])*inh',
                  mem = mem' + reset[t]*syn_inh[t-1]    (snnTorch's subtract reset, as it computes it)
        none:     exc', inh', mem'
        reset[t] = H(mem[t-1] - threshold) (no gradient),  spike[t] = H(mem[t] - threshold)

    Without a reset, ``mem[t] = tau * sum_k (alpha^k - beta^k) * I[t-k]``. ``alpha`` must exceed ``beta``
    (else a positive input drives the membrane negative) and ``beta`` must be below 1 (else tau divides by
    zero); both are clamped to [0, 1] in the forward pass. Unlike snnTorch 1.0, whose ``learn_alpha=True``
    fails in its constructor, alpha can be learned.

    Args: as :class:`Leaky` (``reset`` defaults to "zero"), plus ``alpha`` (excitatory decay; ``beta`` is the
    inhibitory one) and ``learn_alpha``.
    Shapes: ``current [T, B, ...]`` -> ``(spikes, syn_exc, syn_inh, mem)`` each ``[T, B, ...]``, snnTorch's order.
    """

    def __init__(
        self,
        alpha: float | Tensor = 0.9,
        beta: float | Tensor = 0.8,
        learn_alpha: bool = False,
        reset: str = "zero",
        **kw,
    ) -> None:
        super().__init__(alpha=alpha, beta=beta, learn_alpha=learn_alpha, reset=reset, **kw)
        a, b = self.alpha.detach().clamp(0, 1), self.beta.detach().clamp(0, 1)
        if (a <= b).any():
            raise ValueError(f"alpha must be greater than beta (got alpha {alpha}, beta {beta})")
        if not self.reset_delay:
            raise ValueError("Alpha has no reset_delay=False: its membrane is rebuilt from the currents every step")
        if (b == 1).any():
            raise ValueError("beta must be below 1: tau = log(alpha)/(log(beta) - log(alpha)) + 1 divides by zero")

    def _rates(self, like: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """alpha and beta clamped to [0, 1], tau, and the threshold, in the input's dtype."""
        beta, threshold = self._params(like)
        alpha = self.alpha.clamp(0, 1).to(like.dtype)
        log_alpha = torch.log(alpha)
        return alpha, beta, log_alpha / (torch.log(beta) - log_alpha) + 1, threshold

    def forward(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if not self.uses_fused:
            return self.reference(current, time_steps)
        rates = self._rates(current)
        spk, exc, inh, mem = alpha_scan.AlphaScan.apply(current, *rates, self.scan_reset, self.spike_fn, time_steps)
        return self._fired(spk, mem, rates[-1]), exc, inh, mem

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return ref.alpha(current, *self._rates(current), self.scan_reset, self.firing, time_steps)

    def init_state(self, like: Tensor) -> AlphaState:
        return AlphaState(torch.zeros_like(like), torch.zeros_like(like), torch.zeros_like(like))

    def step(self, current: Tensor, state: AlphaState | None = None) -> tuple[Tensor, AlphaState]:
        state = state or self.init_state(current)
        spk, exc, inh, mem = ref.alpha_step(current, *state, *self._rates(current), self.scan_reset, self.firing)
        return spk, AlphaState(exc, inh, mem)
