"""LSTM neurons: snnTorch's SLSTM and SConv2dLSTM, LSTM cells whose hidden state spikes."""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from snnlab.engine.kernels import reference as ref
from snnlab.engine.neurons.base import SpikingNeuron


class LSTMState(NamedTuple):
    """The state of an LSTM neuron, in snnTorch's order: the cell state ``syn`` and the hidden state ``mem``."""

    syn: Tensor
    mem: Tensor


class _LSTMNeuron(SpikingNeuron):
    """What SLSTM and SConv2dLSTM share: a threshold and a reset, no beta (the LSTM's gates decide what decays),
    and one path. There is no fused whole-sequence kernel: each step's matmuls or convolution dominate its
    cost, and the recurrence through the gates cannot be scanned, so ``forward`` and ``reference`` both step
    through :func:`reference.lstm`.

    Of snnTorch's options they take ``graded_spikes_factor``, ``state_quant`` (on syn and mem) and
    ``surrogate_disable``; not ``reset_delay`` (snnTorch's LSTM neurons have none) nor ``inhibition``
    (snnTorch 1.0 accepts it and ignores it)."""

    def __init__(self, reset: str = "none", **kw) -> None:
        super().__init__(beta=0.0, reset=reset, **kw)
        self.register_buffer("beta", None)  # no beta: snnTorch's state dict has none to load
        if self.inhibition or not self.reset_delay:
            raise ValueError(f"{type(self).__name__} takes neither inhibition nor reset_delay")

    @property
    def uses_fused(self) -> bool:
        return False  # no fused kernel (see the class docstring): both paths are the step loop

    def _step(self, current: Tensor, syn: Tensor, mem: Tensor, threshold: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One step: ``(spike_t, syn_t, mem_t)``."""
        raise NotImplementedError

    def init_state(self, like: Tensor) -> LSTMState:
        raise NotImplementedError

    def forward(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        return self.reference(current, time_steps)

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        first = current if time_steps is not None else current[0]
        step = partial(self._step, threshold=self.threshold.to(current.dtype))
        return ref.lstm(step, current, self.init_state(first), time_steps)

    def step(self, current: Tensor, state: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        state = state or self.init_state(current)
        spk, syn, mem = self._step(current, *state, threshold=self.threshold.to(current.dtype))
        return spk, LSTMState(syn, mem)

    def extra_repr(self) -> str:
        thr = f"{self.threshold.item():g}" if self.threshold.dim() == 0 else f"[{self.threshold.numel()}]"
        return f"threshold={thr}, reset={self.reset}, surrogate={self.spike_fn!r}"


class SLSTM(_LSTMNeuron):
    """snnTorch's SLSTM: an LSTM cell (``torch.nn.LSTMCell``) whose hidden state is the membrane and whose
    cell state is the synaptic current; the membrane spikes when it crosses the threshold.

    ::

        i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (W_ih @ I[t] + b_ih + W_hh @ mem[t-1] + b_hh)
        syn[t] = f*syn[t-1] + i*g                          (the cell state, never reset)
        h[t]   = o*tanh(syn[t])
        mem[t] = h[t] - reset[t]*threshold                 (subtract)
               = (1 - reset[t])*h[t]                       (zero)
               = h[t]                                      (none, the default, as in snnTorch)
        spike[t] = H(mem[t] - threshold),  reset[t] = H(mem[t-1] - threshold) (detached),  syn[-1] = mem[-1] = 0

    The membrane is ``o*tanh(syn)``, inside (-1, 1) before any reset: a threshold of 1 (the default) never
    fires. Parameters carry snnTorch's names (``lstm_cell.weight_ih``, ``lstm_cell.weight_hh``,
    ``lstm_cell.bias_ih``, ``lstm_cell.bias_hh``, ``threshold``), so its state dicts load.

    One path: ``forward`` is the step loop of :func:`reference.slstm_step` over the cell, as is ``reference``
    (there is no fused whole-sequence kernel: the cell's matmuls dominate each step and its gates do not scan).

    Where it differs from snnTorch 1.0: with ``input_size != hidden_size`` snnTorch's SLSTM zeroes its state at
    every step (it compares the state's shape with the input's), so it never carries anything over; here the
    state carries over as an LSTM's does. With equal sizes (what the config builds) the two agree. Left out:
    ``inhibition``, ``state_quant``, ``graded_spikes_factor``.

    Args:
        input_size, hidden_size: features in and neurons out.
        bias: use b_ih and b_hh.
        threshold, learn_threshold, surrogate, surrogate_params: as :class:`Leaky`.
        reset: "none" (default), "subtract" or "zero"; either reset acts on the membrane only.

    Shapes: ``current [T, B, input_size]`` (or static ``[B, input_size]`` with ``time_steps``) ->
    ``(spikes, syn, mem)`` each ``[T, B, hidden_size]``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, reset: str = "none", **kw) -> None:
        super().__init__(reset=reset, **kw)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.lstm_cell = nn.LSTMCell(input_size, hidden_size, bias=bias)

    def init_state(self, like: Tensor) -> LSTMState:
        zeros = like.new_zeros((*like.shape[:-1], self.hidden_size))
        return LSTMState(zeros, zeros)

    def _step(self, current: Tensor, syn: Tensor, mem: Tensor, threshold: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return ref.slstm_step(current, syn, mem, self.lstm_cell, threshold, self.reset, self.firing)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, " + super().extra_repr()


class SConv2dLSTM(_LSTMNeuron):
    """snnTorch's SConv2dLSTM: a convolutional LSTM cell over ``[C, H, W]`` feature maps whose hidden state is
    the membrane and whose cell state is the synaptic current.

    ::

        [zi, zf, zo, zg] = conv(cat(I[t], mem[t-1]))   (one Conv2d, in_channels + out_channels -> 4*out_channels,
                                                        padding kernel_size//2: H and W are kept)
        i, f, o = sigmoid(zi), sigmoid(zf), sigmoid(zo);  g = tanh(zg)     (snnTorch's gate order: i, f, o, g)
        syn[t] = f*syn[t-1] + i*g,  h[t] = o*tanh(syn[t])
        mem[t] from h[t] by the reset, as in :class:`SLSTM` (default "none")
        spike[t] = H(pool(mem[t]) - threshold)           (pool: max_pool or avg_pool of that window, else none)

    The reset is decided by the unpooled membrane. Parameters carry snnTorch's names (``conv.weight``,
    ``conv.bias``, ``threshold``), so its state dicts load.

    One path: ``forward`` is the step loop of :func:`reference.sconv2dlstm_step` over the convolution, as is
    ``reference`` (there is no fused whole-sequence kernel: the convolution dominates each step and its gates
    do not scan).

    Where it differs from snnTorch 1.0: an even ``kernel_size`` is refused (its padding would grow the map by
    one each step, and snnTorch then zeroes the state at every step). Left out: ``inhibition``,
    ``state_quant``, ``graded_spikes_factor``.

    Args:
        in_channels, out_channels: channels in and out.
        kernel_size: odd, an int or (kh, kw).
        bias: the convolution's bias.
        max_pool, avg_pool: pool the membrane over that window before the threshold (at most one of them; 0:
            none). The spikes are then ``[H/p, W/p]``, syn and mem stay ``[H, W]``.
        threshold, learn_threshold, surrogate, surrogate_params, reset: as :class:`SLSTM`.

    Shapes: ``current [T, B, in_channels, H, W]`` (or static ``[B, in_channels, H, W]`` with ``time_steps``)
    -> ``(spikes, syn, mem)``, syn and mem ``[T, B, out_channels, H, W]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        bias: bool = True,
        max_pool: int | tuple[int, int] = 0,
        avg_pool: int | tuple[int, int] = 0,
        reset: str = "none",
        **kw,
    ) -> None:
        super().__init__(reset=reset, **kw)
        if max_pool and avg_pool:
            raise ValueError("SConv2dLSTM takes max_pool or avg_pool, not both")
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else (kernel_size[0], kernel_size[1])
        if any(size % 2 == 0 for size in k):
            raise ValueError(
                f"SConv2dLSTM's kernel_size must be odd to keep the feature map's size (got {kernel_size})"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.max_pool, self.avg_pool = max_pool, avg_pool
        self.conv = nn.Conv2d(
            in_channels + out_channels, 4 * out_channels, k, padding=(k[0] // 2, k[1] // 2), bias=bias
        )

    def _pool(self, mem: Tensor) -> Tensor:
        if self.max_pool:
            return F.max_pool2d(mem, self.max_pool)
        return F.avg_pool2d(mem, self.avg_pool)

    def init_state(self, like: Tensor) -> LSTMState:
        zeros = like.new_zeros((like.shape[0], self.out_channels, *like.shape[2:]))
        return LSTMState(zeros, zeros)

    def _step(self, current: Tensor, syn: Tensor, mem: Tensor, threshold: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        pool = self._pool if self.max_pool or self.avg_pool else None
        return ref.sconv2dlstm_step(current, syn, mem, self.conv, threshold, self.reset, self.firing, pool)

    def extra_repr(self) -> str:
        pool = (
            f", max_pool={self.max_pool}" if self.max_pool else f", avg_pool={self.avg_pool}" if self.avg_pool else ""
        )
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.conv.kernel_size}{pool}, " + (
            super().extra_repr()
        )
