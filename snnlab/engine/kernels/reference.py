"""Reference path: one time step at a time, plain autograd. These functions *are* the neuron equations.

Every fused kernel is tested against these, value for value and gradient for gradient. Conventions:
``x = membrane - threshold``; ``H`` is the Heaviside step (``H(0) = 0``); the reset of step ``t`` is
decided by the previous membrane and carries no gradient (snnTorch's delayed, detached reset).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

SpikeFn = Callable[[Tensor], Tensor]  # a spike_fn argument may also be a Firing
# The scans' resets: the config's (snnlab.catalog.RESETS) and "zero_step". snnTorch's zero reset differs
# between neurons: Leaky zeroes the membrane it carries over (the step's input still lands), Synaptic,
# RLeaky and Lapicque zero the whole step, input included; those neurons hand "zero_step" to the scans.


@dataclass(frozen=True)
class Firing:
    """snnTorch's options on how a step's state becomes its output spike, in place of a plain ``spike_fn``.

    Each step then runs, after its state update (snnTorch's order):

    - ``state_quant``: every state of the step (membrane, synaptic currents) is replaced by ``state_quant(s)``,
      and the spike is read from ``state_quant(mem)`` (snnTorch quantizes the membrane twice; a quantizer is
      idempotent, so this only matters for one that is not);
    - the spike: ``spike_fn(mem - threshold) * graded``, or with ``inhibition`` ``spike_fn(mem - threshold)``
      kept only at each sample's largest ``mem - threshold`` (one winner per sample and step; snnTorch does not
      scale the winner by ``graded``);
    - ``reset_delay=False``: the step's own spike resets the membrane at once instead of at the next step,
      ``now = spike/graded - reset[t]`` (``reset[t]``, already applied, is taken back), then
      ``mem -= now*threshold`` (subtract) or ``mem -= now*mem`` (zero). ``spike`` carries its surrogate
      gradient into this reset, as in snnTorch.
    """

    spike_fn: SpikeFn
    graded: Tensor | None = None
    inhibition: bool = False
    reset_delay: bool = True
    state_quant: SpikeFn | None = None

    def __call__(self, x: Tensor) -> Tensor:
        """The output spike at ``x = mem - threshold``."""
        spk = self.spike_fn(x)
        if self.inhibition:
            return spk * winner(x)
        return spk if self.graded is None else spk * self.graded


def winner(x: Tensor) -> Tensor:
    """1 where ``x`` is largest over the last axis (the neurons of a sample), 0 elsewhere; the first on ties.
    ``x``: ``[B, N]`` (a step) or ``[T, B, N]`` (a sequence)."""
    if x.dim() not in (2, 3):
        raise ValueError(f"inhibition picks one neuron per sample among [N] features, not among {list(x.shape[1:])}"
                         " (use it on a neuron after a linear layer)")  # fmt: skip
    return F.one_hot(x.argmax(-1), x.shape[-1]).to(x.dtype)


def _output(
    fire: SpikeFn | Firing,
    mem_prev: Tensor,
    threshold: Tensor,
    reset: str,
    *states: Tensor,
    view: Callable[[Tensor], Tensor] | None = None,
):
    """``(spike_t, *states_t)`` for a step whose new ``states`` end with the membrane; ``mem_prev`` is the
    membrane the step started from. A plain ``spike_fn`` fires on the membrane as it is; ``view`` is what
    the spike reads of the membrane when that is not the membrane itself (SConv2dLSTM's pooling)."""
    if not isinstance(fire, Firing):
        read = states[-1] if view is None else view(states[-1])
        return (fire(read - threshold), *states)
    if fire.state_quant is not None:
        states = tuple(fire.state_quant(s) for s in states)
    mem = states[-1]
    read = mem if view is None else view(mem)
    read = fire.state_quant(read) if fire.state_quant is not None and not fire.inhibition else read
    spk = fire(read - threshold)
    if not fire.reset_delay and reset != "none":
        now = (spk if fire.graded is None else spk / fire.graded) - _reset(mem_prev, threshold)
        mem = mem - now * (threshold if reset == "subtract" else mem)
    return (spk, *states[:-1], mem)


def _reset(mem_prev: Tensor, threshold: Tensor) -> Tensor:
    """reset[t] = H(mem[t-1] - threshold), detached from the graph."""
    return (mem_prev - threshold > 0).to(mem_prev.dtype).detach()


def _integrate(
    mem_prev: Tensor, current: Tensor, beta: Tensor, threshold: Tensor, reset: str, feedback: Tensor | None = None
) -> Tensor:
    """The membrane before the spike; a recurrent neuron's ``feedback`` is added after the input, in
    snnTorch's order (``beta*mem + I + R``), so that rounding matches it too."""
    r = _reset(mem_prev, threshold)
    if reset == "zero":
        base = beta * (1 - r) * mem_prev + current
    else:
        base = beta * mem_prev + current
    if feedback is not None:
        base = base + feedback
    if reset == "subtract":
        return base - r * threshold
    if reset == "zero_step":
        return (1 - r) * base
    return base


def leaky_step(
    current: Tensor, mem: Tensor, beta: Tensor, threshold: Tensor, reset: str, spike_fn: SpikeFn
) -> tuple[Tensor, Tensor]:
    """One step of the leaky integrate-and-fire neuron. Returns ``(spike_t, mem_t)``.

    subtract:  mem[t] = beta*mem[t-1] + I[t] - reset[t]*threshold
    zero:      mem[t] = beta*(1 - reset[t])*mem[t-1] + I[t]
    zero_step: mem[t] = (1 - reset[t])*(beta*mem[t-1] + I[t])
    none:      mem[t] = beta*mem[t-1] + I[t]
    spike[t] = H(mem[t] - threshold)
    """
    return _output(spike_fn, mem, threshold, reset, _integrate(mem, current, beta, threshold, reset))


def synaptic_step(
    current: Tensor,
    syn: Tensor,
    mem: Tensor,
    alpha: Tensor,
    beta: Tensor,
    threshold: Tensor,
    reset: str,
    spike_fn: SpikeFn,
) -> tuple[Tensor, Tensor, Tensor]:
    """One step of the current-based (second-order) neuron. Returns ``(spike_t, syn_t, mem_t)``.

    syn[t] = alpha*syn[t-1] + I[t]
    mem[t] = beta*mem[t-1] + syn[t] - reset[t]*threshold     (reset modes as in :func:`leaky_step`)
    """
    syn = alpha * syn + current
    return _output(spike_fn, mem, threshold, reset, syn, _integrate(mem, syn, beta, threshold, reset))


def rleaky_step(
    current: Tensor,
    spk: Tensor,
    mem: Tensor,
    recurrent: Callable[[Tensor], Tensor],
    beta: Tensor,
    threshold: Tensor,
    reset: str,
    spike_fn: SpikeFn,
) -> tuple[Tensor, Tensor]:
    """One step of the recurrent leaky neuron: the previous spikes feed back through ``recurrent``.

    mem[t] = beta*mem[t-1] + I[t] + R(spike[t-1]) - reset[t]*threshold    (R: linear map or per-neuron gain;
    added in this order, as snnTorch adds them)
    The feedback spike carries the surrogate gradient; the reset does not.
    """
    return _output(spike_fn, mem, threshold, reset, _integrate(mem, current, beta, threshold, reset, recurrent(spk)))


def rsynaptic_step(
    current: Tensor,
    spk: Tensor,
    syn: Tensor,
    mem: Tensor,
    recurrent: Callable[[Tensor], Tensor],
    alpha: Tensor,
    beta: Tensor,
    threshold: Tensor,
    reset: str,
    spike_fn: SpikeFn,
) -> tuple[Tensor, Tensor, Tensor]:
    """One step of the recurrent current-based neuron: the previous spikes feed the synaptic current.
    Returns ``(spike_t, syn_t, mem_t)``.

    syn[t] = alpha*syn[t-1] + I[t] + R(spike[t-1])     (added in this order, as snnTorch adds them)
    mem[t]: as in :func:`synaptic_step`
    """
    syn = alpha * syn + current + recurrent(spk)
    return _output(spike_fn, mem, threshold, reset, syn, _integrate(mem, syn, beta, threshold, reset))


def alpha_step(
    current: Tensor,
    syn_exc: Tensor,
    syn_inh: Tensor,
    mem: Tensor,
    alpha: Tensor,
    beta: Tensor,
    tau: Tensor,
    threshold: Tensor,
    reset: str,
    spike_fn: SpikeFn,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One step of snnTorch's Alpha neuron. Returns ``(spike_t, syn_exc_t, syn_inh_t, mem_t)``.

    exc' = alpha*syn_exc[t-1] + I[t]                 (excitatory current)
    inh' = beta*syn_inh[t-1] - I[t]                  (inhibitory current)
    mem' = tau*(exc' + inh'),   tau = log(alpha)/(log(beta) - log(alpha)) + 1
    subtract:  exc = exc' - reset*threshold,  inh = (1 - reset)*inh',  mem = mem' + reset*syn_inh[t-1]
    zero_step: all three times (1 - reset)
    none:      exc', inh', mem'
    The membrane does not carry over: it is read from the currents (and decides the next reset).
    """
    r = _reset(mem, threshold)
    exc = alpha * syn_exc + current
    inh = beta * syn_inh - current
    new_mem = tau * (exc + inh)
    if reset == "subtract":
        # snnTorch writes these as exc' - threshold*r, inh' - inh'*r and mem' - (-syn_inh)*r: equal values.
        new_mem = new_mem + r * syn_inh
        exc = exc - r * threshold
        inh = (1 - r) * inh
    elif reset == "zero_step":
        exc, inh, new_mem = (1 - r) * exc, (1 - r) * inh, (1 - r) * new_mem
    elif reset != "none":
        raise ValueError(f"the alpha neuron has no {reset!r} reset (subtract, zero_step or none)")
    return _output(spike_fn, mem, threshold, reset, exc, inh, new_mem)


def leaky_parallel_step(
    current: Tensor,
    mem: Tensor,
    weight_ih: Tensor,
    bias_ih: Tensor | None,
    weight_hh: Tensor,
    bias_hh: Tensor | None,
    threshold: Tensor,
    spike_fn: SpikeFn,
) -> tuple[Tensor, Tensor]:
    """One step of snnTorch's LeakyParallel, a ReLU RNN cell read as a membrane. Returns ``(spike_t, mem_t)``.

    mem[t] = ReLU(W_hh @ mem[t-1] + b_hh + W_ih @ I[t] + b_ih)      (torch's RNN cell, in its order)
    spike[t] = H(mem[t] - threshold)                                (no reset)
    """
    mem = torch.relu(F.linear(mem, weight_hh, bias_hh) + F.linear(current, weight_ih, bias_ih))
    return spike_fn(mem - threshold), mem


LSTMCell = Callable[[Tensor, tuple[Tensor, Tensor]], tuple[Tensor, Tensor]]


def _lstm_reset(syn: Tensor, h: Tensor, mem: Tensor, threshold: Tensor, reset: str) -> tuple[Tensor, Tensor]:
    """snnTorch's reset of its LSTM neurons: decided by the previous membrane, applied to the new one only
    (the cell state ``syn`` is never reset). Returns ``(syn_t, mem_t)``."""
    if reset == "none":
        return syn, h
    r = _reset(mem, threshold)
    if reset == "subtract":
        return syn, h - r * threshold
    if reset in ("zero", "zero_step"):
        return syn, h - r * h  # snnTorch subtracts the reset share of the new membrane: exactly 0 or h
    raise ValueError(f"unknown reset {reset!r}")


def slstm_step(
    current: Tensor,
    syn: Tensor,
    mem: Tensor,
    cell: LSTMCell,
    threshold: Tensor,
    reset: str,
    spike_fn: SpikeFn,
) -> tuple[Tensor, Tensor, Tensor]:
    """One step of snnTorch's SLSTM, an LSTM cell whose hidden state is read as the membrane and whose cell
    state is the synaptic current. ``cell(x, (h, c)) -> (h', c')`` is torch's ``nn.LSTMCell``. Returns
    ``(spike_t, syn_t, mem_t)``.

    i = sigmoid(W_ii x + b_ii + W_hi mem[t-1] + b_hi)      (the rows of W_ih, W_hh in torch's order: i, f, g, o)
    f = sigmoid(W_if x + b_if + W_hf mem[t-1] + b_hf)
    g = tanh(W_ig x + b_ig + W_hg mem[t-1] + b_hg)
    o = sigmoid(W_io x + b_io + W_ho mem[t-1] + b_ho)
    syn[t] = f*syn[t-1] + i*g
    h[t] = o*tanh(syn[t])
    subtract: mem[t] = h[t] - reset[t]*threshold
    zero:     mem[t] = (1 - reset[t])*h[t]
    none:     mem[t] = h[t]
    spike[t] = H(mem[t] - threshold)

    The cell sees the previous membrane after its reset; syn is never reset.
    """
    h, c = cell(current, (mem, syn))
    return _output(spike_fn, mem, threshold, reset, *_lstm_reset(c, h, mem, threshold, reset))


def sconv2dlstm_step(
    current: Tensor,
    syn: Tensor,
    mem: Tensor,
    conv: Callable[[Tensor], Tensor],
    threshold: Tensor,
    reset: str,
    spike_fn: SpikeFn,
    pool: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """One step of snnTorch's SConv2dLSTM, a convolutional LSTM cell. ``conv`` maps the input and the previous
    membrane, stacked on the channel axis, to the four gates' pre-activations, in snnTorch's order i, f, o, g
    (not torch's LSTM order). Returns ``(spike_t, syn_t, mem_t)``.

    [zi, zf, zo, zg] = conv(cat(x, mem[t-1]))    (same padding: H and W are kept)
    i, f, o = sigmoid(zi), sigmoid(zf), sigmoid(zo);  g = tanh(zg)
    syn[t] = f*syn[t-1] + i*g
    h[t] = o*tanh(syn[t]);  mem[t] from h[t] by the reset, as in :func:`slstm_step`
    spike[t] = H(pool(mem[t]) - threshold)       (pool: snnTorch's optional max or average pooling, else none)
    """
    gates = conv(torch.cat([current, mem], dim=1))
    zi, zf, zo, zg = torch.split(gates, mem.shape[1], dim=1)
    i, f, o, g = torch.sigmoid(zi), torch.sigmoid(zf), torch.sigmoid(zo), torch.tanh(zg)
    c = f * syn + i * g
    h = o * torch.tanh(c)
    return _output(spike_fn, mem, threshold, reset, *_lstm_reset(c, h, mem, threshold, reset), view=pool)


def _steps(current: Tensor, time_steps: int | None):
    """Yield the input of each step: ``current[t]``, or ``current`` itself when it is static."""
    if time_steps is None:
        yield from current
    else:
        for _ in range(time_steps):
            yield current


def leaky(current, beta, threshold, reset, spike_fn, time_steps=None) -> tuple[Tensor, Tensor]:
    """Run :func:`leaky_step` over ``current [T, B, ...]`` (or static ``[B, ...]`` for ``time_steps``)."""
    mem = current.new_zeros(current.shape[1:] if time_steps is None else current.shape)
    spikes, mems = [], []
    for i_t in _steps(current, time_steps):
        spk, mem = leaky_step(i_t, mem, beta, threshold, reset, spike_fn)
        spikes.append(spk)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


def synaptic(current, alpha, beta, threshold, reset, spike_fn, time_steps=None) -> tuple[Tensor, Tensor, Tensor]:
    """Run :func:`synaptic_step` over the sequence; returns ``(spikes, syn, mem)``, each ``[T, B, ...]``."""
    zeros = current.new_zeros(current.shape[1:] if time_steps is None else current.shape)
    syn, mem = zeros, zeros
    out: tuple[list[Tensor], list[Tensor], list[Tensor]] = [], [], []
    for i_t in _steps(current, time_steps):
        spk, syn, mem = synaptic_step(i_t, syn, mem, alpha, beta, threshold, reset, spike_fn)
        for lst, value in zip(out, (spk, syn, mem), strict=True):
            lst.append(value)
    return torch.stack(out[0]), torch.stack(out[1]), torch.stack(out[2])


def rleaky(current, recurrent, beta, threshold, reset, spike_fn, time_steps=None) -> tuple[Tensor, Tensor]:
    """Run :func:`rleaky_step` over the sequence; returns ``(spikes, mem)``."""
    zeros = current.new_zeros(current.shape[1:] if time_steps is None else current.shape)
    spk, mem = zeros, zeros
    spikes, mems = [], []
    for i_t in _steps(current, time_steps):
        spk, mem = rleaky_step(i_t, spk, mem, recurrent, beta, threshold, reset, spike_fn)
        spikes.append(spk)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


def alpha(
    current, alpha, beta, tau, threshold, reset, spike_fn, time_steps=None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Run :func:`alpha_step` over the sequence; returns ``(spikes, syn_exc, syn_inh, mem)``."""
    zeros = current.new_zeros(current.shape[1:] if time_steps is None else current.shape)
    state = (zeros, zeros, zeros)
    out: tuple[list[Tensor], ...] = ([], [], [], [])
    for i_t in _steps(current, time_steps):
        values = alpha_step(i_t, *state, alpha, beta, tau, threshold, reset, spike_fn)
        state = values[1:]
        for lst, value in zip(out, values, strict=True):
            lst.append(value)
    spikes, exc, inh, mem = (torch.stack(lst) for lst in out)
    return spikes, exc, inh, mem


def rsynaptic(
    current, recurrent, alpha, beta, threshold, reset, spike_fn, time_steps=None
) -> tuple[Tensor, Tensor, Tensor]:
    """Run :func:`rsynaptic_step` over the sequence; returns ``(spikes, syn, mem)``."""
    zeros = current.new_zeros(current.shape[1:] if time_steps is None else current.shape)
    spk, syn, mem = zeros, zeros, zeros
    out: tuple[list[Tensor], list[Tensor], list[Tensor]] = [], [], []
    for i_t in _steps(current, time_steps):
        spk, syn, mem = rsynaptic_step(i_t, spk, syn, mem, recurrent, alpha, beta, threshold, reset, spike_fn)
        for lst, value in zip(out, (spk, syn, mem), strict=True):
            lst.append(value)
    return torch.stack(out[0]), torch.stack(out[1]), torch.stack(out[2])


def leaky_parallel(
    current, weight_ih, bias_ih, weight_hh, bias_hh, threshold, spike_fn, time_steps=None
) -> tuple[Tensor, Tensor]:
    """Run :func:`leaky_parallel_step` over ``current [T, B, input_size]``; returns ``(spikes, mem)``."""
    batch = current.shape[1:-1] if time_steps is None else current.shape[:-1]
    mem = current.new_zeros((*batch, weight_hh.shape[0]))
    spikes, mems = [], []
    for i_t in _steps(current, time_steps):
        spk, mem = leaky_parallel_step(i_t, mem, weight_ih, bias_ih, weight_hh, bias_hh, threshold, spike_fn)
        spikes.append(spk)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


def lstm(step, current, state, time_steps=None) -> tuple[Tensor, Tensor, Tensor]:
    """Run an LSTM neuron's ``step(i_t, syn, mem) -> (spike, syn, mem)`` from ``state = (syn, mem)`` over the
    sequence (or a static input for ``time_steps``); returns ``(spikes, syn, mem)``, each ``[T, B, ...]``."""
    syn, mem = state
    out: tuple[list[Tensor], list[Tensor], list[Tensor]] = [], [], []
    for i_t in _steps(current, time_steps):
        spk, syn, mem = step(i_t, syn, mem)
        for lst, value in zip(out, (spk, syn, mem), strict=True):
            lst.append(value)
    return torch.stack(out[0]), torch.stack(out[1]), torch.stack(out[2])
