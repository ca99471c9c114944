"""Spiking neurons as modules over whole sequences.

Every neuron takes an input current ``[T, B, ...]`` (time first) and returns spikes and membrane
``[T, B, ...]``. When the input is the same at every step (direct encoding of a static image) pass it once
as ``[B, ...]`` with ``time_steps=T``: it is then integrated without being copied T times.

Two paths compute the same thing: ``reference`` steps through time with plain autograd (the equations in
``kernels/reference.py``), ``fused`` runs one custom autograd function over the whole sequence
(``kernels/fused.py``). ``forward`` uses the fused path unless ``fused=False`` or the surrogate is a
plain callable without a closed-form gradient.

For users who loop over time themselves, ``step(input_t, state) -> (spike_t, state)`` runs one step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from snnlab import catalog
from snnlab.engine import surrogates
from snnlab.engine.kernels import fused as fk
from snnlab.engine.kernels import reference as ref


def _as_tensor(value: float | Tensor, name: str) -> Tensor:
    tensor = torch.as_tensor(value, dtype=torch.float32).clone().detach()
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must be finite (got {value})")
    return tensor


def _short(value: Tensor) -> str:
    """A parameter as a module's repr shows it: its value, or ``[n]`` for n of them."""
    return f"{value.item():g}" if value.dim() == 0 else f"[{value.numel()}]"


class LeakyState(NamedTuple):
    mem: Tensor


class SynapticState(NamedTuple):
    syn: Tensor
    mem: Tensor


class RSynapticState(NamedTuple):
    spk: Tensor
    syn: Tensor
    mem: Tensor


class AlphaState(NamedTuple):
    syn_exc: Tensor
    syn_inh: Tensor
    mem: Tensor


class RLeakyState(NamedTuple):
    spk: Tensor
    mem: Tensor


class SpikingNeuron(nn.Module):
    """Shared parameters: ``beta`` (membrane decay, clamped to [0, 1] in the forward pass), ``threshold``,
    ``reset`` ("subtract" | "zero" | "none") and the ``surrogate`` used for the spike's gradient."""

    beta: Tensor  # a parameter or a buffer, registered by _register
    threshold: Tensor
    # What "zero" means for this neuron, as snnTorch defines it: "zero" zeroes the membrane carried over
    # (Leaky), "zero_step" the whole step, input included (Synaptic, RLeaky, Lapicque).
    zero_reset = "zero_step"

    def __init__(
        self,
        beta: float | Tensor = 0.9,
        threshold: float | Tensor = 1.0,
        reset: str = "subtract",
        surrogate: str | surrogates.Surrogate | surrogates.SpikeFn = surrogates.DEFAULT,
        surrogate_params: dict[str, float] | None = None,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        fused: bool = True,
    ) -> None:
        super().__init__()
        if reset not in catalog.RESETS:
            raise ValueError(f"reset must be one of {', '.join(catalog.RESETS)} (got {reset!r})")
        threshold_t = _as_tensor(threshold, "threshold")
        if not (threshold_t > 0).all():
            raise ValueError(f"threshold must be > 0 (got {threshold})")
        self._register("beta", _as_tensor(beta, "beta"), learn_beta)
        self._register("threshold", threshold_t, learn_threshold)
        self.reset = reset
        self.spike_fn = surrogates.resolve(surrogate, **(surrogate_params or {}))
        self.fused = fused

    def _register(self, name: str, value: Tensor, learn: bool) -> None:
        if learn:
            setattr(self, name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    @property
    def scan_reset(self) -> str:
        """The reset the scans are handed: ``reset``, with "zero" made this neuron's kind of zero."""
        return self.zero_reset if self.reset == "zero" else self.reset

    @property
    def uses_fused(self) -> bool:
        return self.fused and isinstance(self.spike_fn, surrogates.Surrogate)

    def _params(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """beta clamped to [0, 1] and threshold, in the input's dtype."""
        return self.beta.clamp(0, 1).to(like.dtype), self.threshold.to(like.dtype)

    def extra_repr(self) -> str:
        return f"beta={_short(self.beta)}, threshold={_short(self.threshold)}, reset={self.reset}, " + (
            f"surrogate={self.spike_fn!r}"
        )


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
        return fk.LeakyScan.apply(current, beta, threshold, self.scan_reset, self.spike_fn, time_steps)

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        beta, threshold = self._params(current)
        return ref.leaky(current, beta, threshold, self.scan_reset, self.spike_fn, time_steps)

    def init_state(self, like: Tensor) -> LeakyState:
        return LeakyState(torch.zeros_like(like))

    def step(self, current: Tensor, state: LeakyState | None = None) -> tuple[Tensor, LeakyState]:
        """One time step: ``current [B, ...]`` -> ``(spike_t, LeakyState(mem))``."""
        state = state or self.init_state(current)
        beta, threshold = self._params(current)
        spk, mem = ref.leaky_step(current, state.mem, beta, threshold, self.scan_reset, self.spike_fn)
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
        return fk.SynapticScan.apply(
            current, self._alpha(current), beta, threshold, self.scan_reset, self.spike_fn, time_steps
        )

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        beta, threshold = self._params(current)
        return ref.synaptic(current, self._alpha(current), beta, threshold, self.scan_reset, self.spike_fn, time_steps)

    def init_state(self, like: Tensor) -> SynapticState:
        return SynapticState(torch.zeros_like(like), torch.zeros_like(like))

    def step(self, current: Tensor, state: SynapticState | None = None) -> tuple[Tensor, SynapticState]:
        state = state or self.init_state(current)
        beta, threshold = self._params(current)
        spk, syn, mem = ref.synaptic_step(
            current, state.syn, state.mem, self._alpha(current), beta, threshold, self.scan_reset, self.spike_fn
        )
        return spk, SynapticState(syn, mem)


class _Recurrent(SpikingNeuron):
    """The recurrent map R of RLeaky and RSynaptic, built as snnTorch builds it and under its names, so that
    a snnTorch state dict loads (``recurrent.weight``/``recurrent.bias``, or ``V``):

    - ``all_to_all`` with ``features`` N: ``recurrent = nn.Linear(N, N)``, ``R(s) = s @ W.T + b``;
    - ``all_to_all`` with ``conv2d_channels`` C and ``kernel_size`` k: ``recurrent = nn.Conv2d(C, C, k,
      padding=k//2)`` over ``[C, H, W]`` features (k odd, so that R keeps H and W);
    - otherwise one gain per neuron (or a scalar) ``V``: ``R(s) = V * s``.

    ``learn_recurrent=False`` freezes the weights (``V`` becomes a buffer).
    """

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
        if self.recurrence == "one_to_one":
            return self.V.to(like.dtype), None, "one_to_one", None
        padding = self.recurrent.padding if isinstance(self.recurrent, nn.Conv2d) else None
        return self.recurrent.weight, self.recurrent.bias, self.recurrence, padding


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
        return fk.RLeakyScan.apply(
            current, weight, bias, beta, threshold, self.scan_reset, self.spike_fn, time_steps, kind, padding
        )

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        beta, threshold = self._params(current)
        return ref.rleaky(current, self._feedback, beta, threshold, self.scan_reset, self.spike_fn, time_steps)

    def init_state(self, like: Tensor) -> RLeakyState:
        return RLeakyState(torch.zeros_like(like), torch.zeros_like(like))

    def step(self, current: Tensor, state: RLeakyState | None = None) -> tuple[Tensor, RLeakyState]:
        state = state or self.init_state(current)
        beta, threshold = self._params(current)
        spk, mem = ref.rleaky_step(
            current, state.spk, state.mem, self._feedback, beta, threshold, self.scan_reset, self.spike_fn
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
        return fk.RSynapticScan.apply(current, self._alpha(current), weight, bias, beta, threshold,
                                      self.scan_reset, self.spike_fn, time_steps, kind, padding)  # fmt: skip

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        beta, threshold = self._params(current)
        return ref.rsynaptic(current, self._feedback, self._alpha(current), beta, threshold, self.scan_reset,
                             self.spike_fn, time_steps)  # fmt: skip

    def init_state(self, like: Tensor) -> RSynapticState:
        return RSynapticState(torch.zeros_like(like), torch.zeros_like(like), torch.zeros_like(like))

    def step(self, current: Tensor, state: RSynapticState | None = None) -> tuple[Tensor, RSynapticState]:
        state = state or self.init_state(current)
        beta, threshold = self._params(current)
        spk, syn, mem = ref.rsynaptic_step(current, *state, self._feedback, self._alpha(current), beta, threshold,
                                           self.scan_reset, self.spike_fn)  # fmt: skip
        return spk, RSynapticState(spk, syn, mem)


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
        return fk.AlphaScan.apply(current, *self._rates(current), self.scan_reset, self.spike_fn, time_steps)

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return ref.alpha(current, *self._rates(current), self.scan_reset, self.spike_fn, time_steps)

    def init_state(self, like: Tensor) -> AlphaState:
        return AlphaState(torch.zeros_like(like), torch.zeros_like(like), torch.zeros_like(like))

    def step(self, current: Tensor, state: AlphaState | None = None) -> tuple[Tensor, AlphaState]:
        state = state or self.init_state(current)
        spk, exc, inh, mem = ref.alpha_step(current, *state, *self._rates(current), self.scan_reset, self.spike_fn)
        return spk, AlphaState(exc, inh, mem)


class LeakyParallel(SpikingNeuron):
    """snnTorch's LeakyParallel: a leaky neuron layer with its own input weights, computed as a ReLU RNN
    (``torch.nn.RNN``) over the whole sequence at once. It is not :class:`Leaky` run in parallel: it has
    no reset, its membrane is clipped at 0 by the ReLU, and its input passes a linear map of its own.

    ::

        mem[t] = ReLU(W_hh @ mem[t-1] + b_hh + W_ih @ I[t] + b_ih),   mem[-1] = 0
        spike[t] = H(mem[t] - threshold)                               (no reset)
        W_hh = diag(beta) at initialisation (beta=None: the RNN's random initial weights, diagonal)

    ``beta`` only initialises W_hh; afterwards W_hh is the decay, trained when ``learn_beta``, its
    off-diagonal gradient zeroed (as in snnTorch, by a hook) unless ``weight_hh_enable``, which makes W_hh a
    dense matrix: every membrane then leaks into every other. Parameters and buffers carry snnTorch's
    names (``rnn.weight_ih_l0``, ``rnn.weight_hh_l0``, ``rnn.bias_ih_l0``, ``rnn.bias_hh_l0``, ``beta``,
    ``threshold``), so its state dicts load.

    Where it differs from snnTorch 1.0: a ``beta`` with one value per neuron sets each neuron's own decay
    (snnTorch documents this but leaves W_hh random); it returns ``(spikes, mem)`` like every snnlab neuron
    (snnTorch returns the spikes only); ``dropout`` is left out (``nn.RNN`` applies it between layers only,
    and there is one) and so is ``graded_spikes_factor``.

    Paths: ``forward`` calls ``nn.RNN`` (torch's own loop on the CPU, cuDNN on CUDA), ``reference`` steps
    through :func:`reference.leaky_parallel_step`; both go through matmuls, so they agree value for value
    only where the arithmetic is exact, to rounding elsewhere.

    Args:
        input_size, hidden_size: features in and neurons out.
        beta: initial decay, a number, one value per neuron, or None.
        bias: use b_ih and b_hh.
        threshold, surrogate, surrogate_params, learn_threshold, fused: as :class:`Leaky`.
        learn_beta: train W_hh.
        weight_hh_enable: a dense W_hh instead of a diagonal one.

    Shapes: ``current [T, B, input_size]`` (or static ``[B, input_size]``) -> ``(spikes, mem)`` each
    ``[T, B, hidden_size]``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        beta: float | Tensor | None = None,
        bias: bool = True,
        learn_beta: bool = False,
        weight_hh_enable: bool = False,
        **kw,
    ) -> None:
        super().__init__(beta=0.0, reset="none", **kw)
        self.rnn = nn.RNN(input_size, hidden_size, num_layers=1, nonlinearity="relu", bias=bias)
        self.hidden_size = hidden_size
        if beta is not None:
            beta_t = _as_tensor(beta, "beta").reshape(-1).clamp(0, 1)
            if beta_t.numel() not in (1, hidden_size):
                raise ValueError(f"beta must be one value or one per neuron ({hidden_size}), got {beta_t.numel()}")
        self.register_buffer("beta", beta_t if beta is not None else None)  # as snnTorch: [1], [N] or None
        weight_hh = self._weights()[2]
        with torch.no_grad():
            if beta is not None:
                weight_hh.copy_(beta_t.view(-1, 1).expand_as(weight_hh))  # every entry of row i: beta[i]
            if not weight_hh_enable:
                weight_hh.mul_(torch.eye(hidden_size))
        self.weight_hh_enable = weight_hh_enable
        if learn_beta and not weight_hh_enable:
            weight_hh.register_hook(self._diagonal)
        weight_hh.requires_grad_(learn_beta)

    def _diagonal(self, grad: Tensor) -> Tensor:
        """Keeps W_hh diagonal while it trains: its off-diagonal gradient is zeroed."""
        return grad * torch.eye(self.hidden_size, device=grad.device, dtype=grad.dtype)

    @property
    def uses_fused(self) -> bool:
        return self.fused  # nn.RNN does not need the surrogate's closed-form gradient

    def forward(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        if not self.uses_fused:
            return self.reference(current, time_steps)
        x = current.expand(time_steps, *current.shape) if time_steps is not None else current
        mem, _ = self.rnn(x)
        return self.spike_fn(mem - self.threshold.to(mem.dtype)), mem

    def _weights(self) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
        """``(W_ih, b_ih, W_hh, b_hh)``, the biases None without ``bias``."""
        weight_ih, weight_hh, *biases = self.rnn.all_weights[0]
        bias_ih, bias_hh = biases if biases else (None, None)
        return weight_ih, bias_ih, weight_hh, bias_hh

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        threshold = self.threshold.to(current.dtype)
        return ref.leaky_parallel(current, *self._weights(), threshold, self.spike_fn, time_steps)

    def init_state(self, like: Tensor) -> LeakyState:
        return LeakyState(like.new_zeros((*like.shape[:-1], self.hidden_size)))

    def step(self, current: Tensor, state: LeakyState | None = None) -> tuple[Tensor, LeakyState]:
        state = state or self.init_state(current)
        threshold = self.threshold.to(current.dtype)
        spk, mem = ref.leaky_parallel_step(current, state.mem, *self._weights(), threshold, self.spike_fn)
        return spk, LeakyState(mem)

    def extra_repr(self) -> str:
        thr = f"{self.threshold.item():g}" if self.threshold.dim() == 0 else f"[{self.threshold.numel()}]"
        dense = ", weight_hh_enable=True" if self.weight_hh_enable else ""
        return f"threshold={thr}{dense}, surrogate={self.spike_fn!r}"


NEURONS: dict[str, type[SpikingNeuron]] = {
    "leaky": Leaky,
    "synaptic": Synaptic,
    "rleaky": RLeaky,
    "lapicque": Lapicque,
    "alpha": Alpha,
    "rsynaptic": RSynaptic,
    "leaky_parallel": LeakyParallel,
}
catalog.check_implemented("neuron types", catalog.NEURONS, NEURONS)
