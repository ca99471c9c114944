"""LeakyParallel: snnTorch's leaky layer computed as a ReLU RNN."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from snnlab.engine.kernels import reference as ref
from snnlab.engine.neurons.base import SpikingNeuron, _as_tensor
from snnlab.engine.neurons.leaky import LeakyState


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
    and there is one). Of snnTorch's options it has ``graded_spikes_factor`` and ``surrogate_disable``.

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
        if self.inhibition or not self.reset_delay or self.state_quant is not None:
            raise ValueError("LeakyParallel takes none of inhibition, reset_delay or state_quant (it is a ReLU RNN "
                             "with no reset)")  # fmt: skip
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
        threshold = self.threshold.to(mem.dtype)
        return self._fired(self.spike_fn(mem - threshold), mem, threshold), mem

    def _weights(self) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
        """``(W_ih, b_ih, W_hh, b_hh)``, the biases None without ``bias``."""
        weight_ih, weight_hh, *biases = self.rnn.all_weights[0]
        bias_ih, bias_hh = biases if biases else (None, None)
        return weight_ih, bias_ih, weight_hh, bias_hh

    def reference(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        threshold = self.threshold.to(current.dtype)
        return ref.leaky_parallel(current, *self._weights(), threshold, self.firing, time_steps)

    def init_state(self, like: Tensor) -> LeakyState:
        return LeakyState(like.new_zeros((*like.shape[:-1], self.hidden_size)))

    def step(self, current: Tensor, state: LeakyState | None = None) -> tuple[Tensor, LeakyState]:
        state = state or self.init_state(current)
        threshold = self.threshold.to(current.dtype)
        spk, mem = ref.leaky_parallel_step(current, state.mem, *self._weights(), threshold, self.firing)
        return spk, LeakyState(mem)

    def extra_repr(self) -> str:
        thr = f"{self.threshold.item():g}" if self.threshold.dim() == 0 else f"[{self.threshold.numel()}]"
        dense = ", weight_hh_enable=True" if self.weight_hh_enable else ""
        return f"threshold={thr}{dense}, surrogate={self.spike_fn!r}"
