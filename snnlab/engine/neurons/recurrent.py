"""Recurrent neurons: RLeaky and RSynaptic, whose spikes feed back through a map R."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from snnlab.engine.kernels import recurrent as recurrent_scan
from snnlab.engine.kernels import reference as ref
from snnlab.engine.neurons.base import SpikingNeuron, _as_tensor
from snnlab.engine.neurons.synaptic import _SynapticCurrent


class RLeakyState(NamedTuple):
    spk: Tensor
    mem: Tensor


class RSynapticState(NamedTuple):
    spk: Tensor
    syn: Tensor
    mem: Tensor


class _Recurrent(SpikingNeuron):
    """The recurrent map R of RLeaky and RSynaptic, built as snnTorch builds it and under its names, so that
    a snnTorch state dict loads (``recurrent.weight``/``recurrent.bias``, or ``V``):

    - ``all_to_all`` with ``features`` N: ``recurrent = nn.Linear(N, N)``, ``R(s) = s @ W.T + b``;
    - ``all_to_all`` with ``conv2d_channels`` C and ``kernel_size`` k: ``recurrent = nn.Conv2d(C, C, k,
      padding=k//2)`` over ``[C, H, W]`` features (k odd, so that R keeps H and W);
    - otherwise one gain per neuron (or a scalar) ``V``: ``R(s) = V * s``.

    ``learn_recurrent=False`` freezes the weights (``V`` becomes a buffer). With a ``graded_spikes_factor``
    g the graded spikes feed back, ``R(g*s)``; the scans, which see plain spikes s, get R's weight times g.
    """

    feeds_back = True

    def __init__(
        self,
        features: int | None = None,
        all_to_all: bool = True,
        V: float | Tensor = 1.0,
        learn_recurrent: bool = True,
        conv2d_channels: int | None = None,
        kernel_size: int | tuple[int, int] | None = None,
        **kw,
    ) -> None:
        super().__init__(**kw)
        self.all_to_all = all_to_all
        name = type(self).__name__
        conv = conv2d_channels is not None or kernel_size is not None
        if not all_to_all:
            if features or conv:
                raise ValueError(f"{name} with all_to_all=False takes V, not features, conv2d_channels or kernel_size")
            self.recurrence = "one_to_one"
            self.V: Tensor
            self._register("V", _as_tensor(V, "V"), learn_recurrent)
            return
        if features and conv:
            raise ValueError(f"{name} takes either features (linear) or conv2d_channels and kernel_size (conv)")
        if features:
            self.recurrence = "linear"
            self.recurrent: nn.Linear | nn.Conv2d = nn.Linear(features, features)
        elif conv2d_channels and kernel_size:
            k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else (kernel_size[0], kernel_size[1])
            if any(size % 2 == 0 for size in k):
                raise ValueError(f"{name}'s recurrent kernel_size must be odd to keep the feature map's size (got "
                                 f"{kernel_size})")  # fmt: skip
            self.recurrence = "conv"
            self.recurrent = nn.Conv2d(conv2d_channels, conv2d_channels, k, padding=(k[0] // 2, k[1] // 2))
        else:
            raise ValueError(f"{name} with all_to_all=True needs features (the layer's neuron count) or "
                             "conv2d_channels and kernel_size")  # fmt: skip
        self.recurrent.requires_grad_(learn_recurrent)

    def _feedback(self, spk: Tensor) -> Tensor:
        return self.V.to(spk.dtype) * spk if self.recurrence == "one_to_one" else self.recurrent(spk)

    def _recurrence(self, like: Tensor) -> tuple[Tensor, Tensor | None, str, Any]:
        """``(weight, bias, kind, padding)`` for the scans."""
        graded = self.graded_spikes_factor
        if self.recurrence == "one_to_one":
            weight = self.V.to(like.dtype)
            return weight if graded is None else weight * graded, None, "one_to_one", None
        padding = self.recurrent.padding if isinstance(self.recurrent, nn.Conv2d) else None
        weight = self.recurrent.weight if graded is None else self.recurrent.weight * graded
        return weight, self.recurrent.bias, self.recurrence, padding


class RLeaky(_Recurrent):
    """Recurrent leaky neuron: each neuron's spikes feed back into the layer at the next step.

    ::

        mem[t] = beta*mem[t-1] + I[t] + R(spike[t-1]) - reset[t]*threshold
        zero reset: mem[t] = (1 - reset[t])*(beta*mem[t-1] + I[t] + R(spike[t-1]))
        R(s) = s @ W.T + b        (all_to_all=True, features=N: a learnable linear map over the layer's N neurons)
        R(s) = conv2d(s, W) + b   (all_to_all=True, conv2d_channels=C, kernel_size=k: over [C, H, W] features)
        R(s) = V * s              (all_to_all=False: one learnable gain per neuron, or a scalar)
        spike[-1] = 0

    The feedback spike carries the surrogate gradient; the reset does not.

    Args: as :class:`Leaky`, plus ``features`` (N, for a linear all-to-all map), ``conv2d_channels`` and
    ``kernel_size`` (for a convolutional one, as snnTorch's), ``all_to_all``, ``V`` (initial one-to-one gain)
    and ``learn_recurrent``.
    Shapes: ``current [T, B, N]`` (or ``[T, B, C, H, W]`` with a conv map) -> ``(spikes, mem)``.
    """

    def forward(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        if not self.uses_fused:
            return self.reference(current, time_steps)
        beta, threshold = self._params(current)
        weight, bias, kind, padding = self._recurrence(current)
        spk, mem = recurrent_scan.RLeakyScan.apply(
            current, weight, bias, beta, threshold, self.scan_reset, self.spike_fn, time_steps, kind, padding
        )
        return self._fired(spk, mem, threshold), mem

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        beta, threshold = self._params(current)
        return ref.rleaky(current, self._feedback, beta, threshold, self.scan_reset, self.firing, time_steps)

    def init_state(self, like: Tensor) -> RLeakyState:
        return RLeakyState(torch.zeros_like(like), torch.zeros_like(like))

    def step(self, current: Tensor, state: RLeakyState | None = None) -> tuple[Tensor, RLeakyState]:
        state = state or self.init_state(current)
        beta, threshold = self._params(current)
        spk, mem = ref.rleaky_step(
            current, state.spk, state.mem, self._feedback, beta, threshold, self.scan_reset, self.firing
        )
        return spk, RLeakyState(spk, mem)


class RSynaptic(_SynapticCurrent, _Recurrent):
    """Recurrent current-based neuron: each neuron's spikes feed back into its synaptic current at the next
    step (snnTorch's RSynaptic).

    ::

        syn[t] = alpha*syn[t-1] + I[t] + R(spike[t-1])           (R as in :class:`RLeaky`)
        mem[t] = beta*mem[t-1] + syn[t] - reset[t]*threshold      (subtract; none: no reset term)
        mem[t] = (1 - reset[t])*(beta*mem[t-1] + syn[t])          (zero: the whole step; syn carries on)
        spike[t] = H(mem[t] - threshold),  spike[-1] = 0

    Args: as :class:`RLeaky`, plus ``alpha`` (synaptic decay, clamped to [0, 1]) and ``learn_alpha``.
    Shapes: ``current [T, B, N]`` (or ``[T, B, C, H, W]``) -> ``(spikes, syn, mem)``.
    """

    def forward(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        if not self.uses_fused:
            return self.reference(current, time_steps)
        beta, threshold = self._params(current)
        weight, bias, kind, padding = self._recurrence(current)
        spk, syn, mem = recurrent_scan.RSynapticScan.apply(current, self._alpha(current), weight, bias, beta,
                                                           threshold, self.scan_reset, self.spike_fn, time_steps,
                                                           kind, padding)  # fmt: skip
        return self._fired(spk, mem, threshold), syn, mem

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        beta, threshold = self._params(current)
        return ref.rsynaptic(current, self._feedback, self._alpha(current), beta, threshold, self.scan_reset,
                             self.firing, time_steps)  # fmt: skip

    def init_state(self, like: Tensor) -> RSynapticState:
        return RSynapticState(torch.zeros_like(like), torch.zeros_like(like), torch.zeros_like(like))

    def step(self, current: Tensor, state: RSynapticState | None = None) -> tuple[Tensor, RSynapticState]:
        state = state or self.init_state(current)
        beta, threshold = self._params(current)
        spk, syn, mem = ref.rsynaptic_step(current, *state, self._feedback, self._alpha(current), beta, threshold,
                                           self.scan_reset, self.firing)  # fmt: skip
        return spk, RSynapticState(spk, syn, mem)
