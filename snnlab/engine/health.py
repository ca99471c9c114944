"""Network health: per layer, the numbers that tell why a spiking network does not learn.

After each evaluation (``run.health``) a :class:`~snnlab.engine.events.HealthReport` gives, for every spiking
layer:

- ``silent``: the share of its neurons that never fired over the whole evaluation (every test sample, every
  step), and ``saturated``: the share that fired at every step of every sample. Spikes are counted as
  events (a graded spike counts once);
- ``rate``: mean spikes per neuron per step (the evaluation's spike rate);
- ``surrogate_grad``: the mean of |dS/dU|, the surrogate's gradient where the spike function was evaluated
  (each neuron's ``surrogate_input``), on sampled training steps, over the first :data:`SURROGATE_SAMPLES`
  samples of their batches. Near zero, the membranes sit where the surrogate is flat and almost no
  gradient passes the spikes. (A segmented backward pass keeps only the output layer's record during
  training; the other layers' values then come from the evaluation's first batch.)
- ``weight_grad_norm``: the L2 norm of the gradient of the layer's weight and bias (and a recurrent
  neuron's recurrent weights), before any clipping, averaged over the sampled steps;

and for every layer with synapses (linear, conv2d, a recurrent neuron's recurrence):

- ``synops``: synaptic operations per sample, the usual energy proxy of SNN papers: every nonzero input of
  the layer, at every step, times its fan-out (the outputs it reaches: ``out_features`` for a linear layer,
  ``out_channels x kernel`` positions for a convolution, fewer at the borders). The first layer's count
  comes from the encoded input; with direct encoding that is the analog image, counted at each of the T
  steps. A recurrent neuron adds its own spikes times the fan-out of its recurrence (the spikes of the last
  step feed no later step). The gates inside LSTM neurons and LeakyParallel's input map are not counted.

:func:`warnings_for` turns those numbers into warnings with a one-line hint, past the thresholds of
``run.health``: ``silent`` (0.9: nine in ten neurons never fire), ``saturated`` (0.5: half of them fire at every
step, so they carry no information and the surrogate is flat above the threshold), and a vanishing weight
gradient: a norm below ``vanishing_grad`` (1e-7, about float32's resolution relative to weights of order 1) or
below ``vanishing_ratio`` (1e-3) of the largest layer's norm.

Cost: a training step is sampled every ``run.health.sample_every`` steps (and each epoch's last one); the
sums stay on the device until the report, so sampling never waits for the device. The silent, saturated and
SynOps counts ride along with the evaluation, which computes the spikes anyway.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn

from snnlab.engine import distributed
from snnlab.engine.events import HealthReport, HealthWarning, LayerHealth
from snnlab.engine.layers import DelayedLinear

if TYPE_CHECKING:
    from snnlab.engine.models import Block, NetOutput, SpikingNet

# Every input of these reaches each of their out_features outputs once (a delayed synapse delivers its spike
# once too, later): their synaptic operations are the nonzero inputs times out_features.
DENSE = (nn.Linear, DelayedLinear)

SURROGATE_SAMPLES = 16  # samples of a training batch whose membranes give the surrogate's gradient


class Thresholds(Protocol):
    """What :func:`warnings_for` reads: ``run.health`` of the config (``snnlab.config.schema.HealthConfig``)."""

    silent: float
    saturated: float
    vanishing_grad: float
    vanishing_ratio: float


def surrogate_grad(neuron: nn.Module, spikes: Tensor, membrane: Tensor) -> Tensor | None:
    """Mean |dS/dU| of ``neuron``'s surrogate at a forward pass's record ``[T, B, ...]`` (its first
    :data:`SURROGATE_SAMPLES` samples), a 0-d tensor on the device; None for a neuron that never fires or whose
    spike function is not a :class:`~snnlab.engine.surrogates.Surrogate`."""
    where = getattr(neuron, "surrogate_input", None)
    if where is None or not getattr(neuron, "fires", True):
        return None
    given = where(spikes[:, :SURROGATE_SAMPLES], membrane[:, :SURROGATE_SAMPLES])
    if given is None:
        return None
    x, known = given
    spike_fn: Any = neuron.spike_fn  # a Surrogate: surrogate_input gave None otherwise
    grad = spike_fn.grad(x).abs_()
    if known is None:
        return grad.mean()
    return (grad * known).sum() / known.sum().clamp_min(1)  # only the steps whose x the record tells


def fan_out(op: nn.Module, in_shape: tuple[int, ...]) -> Tensor:
    """How many outputs each input element of ``op`` reaches, shaped like one sample's input ``in_shape``."""
    if isinstance(op, DENSE):
        return torch.full(in_shape, float(op.out_features))
    if isinstance(op, nn.Conv2d):
        # The gradient of the sum of a convolution with all-ones kernels counts, per input, the (output
        # channel, position) pairs whose window covers it: exact for any stride, padding or dilation.
        x = torch.ones(1, *in_shape, dtype=torch.float64, requires_grad=True)
        kernel = torch.ones_like(op.weight, dtype=torch.float64, device="cpu")
        with torch.enable_grad():  # an evaluation runs without gradients
            nn.functional.conv2d(x, kernel, None, op.stride, op.padding, op.dilation, op.groups).sum().backward()
        assert x.grad is not None
        return x.grad[0].float()
    raise TypeError(f"no synapses in {type(op).__name__}")


def _nonzero(x: Tensor) -> Tensor:
    """1 where ``x`` is not zero, else 0, in ``x``'s dtype: a spike (graded or not) or an input that acts.
    (``x.sign().abs()`` measured 5x faster than ``(x != 0)`` and its cast on the CPU.)"""
    return x.sign().abs_()


def _synaptic(op: nn.Module) -> bool:
    return isinstance(op, (*DENSE, nn.Conv2d))


class HealthMonitor:
    """Collects one network's health between two reports: :meth:`sample` on chosen training steps,
    :meth:`evaluation` around an evaluation, then :meth:`report`."""

    def __init__(self, model: SpikingNet, settings: Any) -> None:
        self.model = model
        self.settings = settings  # run.health: sample_every and the Thresholds
        self._fans: dict[tuple[str, tuple[int, ...]], Tensor] = {}
        self._grad_sum: dict[str, Tensor] = {}
        self._surrogate_sum: dict[str, Tensor] = {}
        self._sampled: dict[str, int] = {}
        self._steps = 0
        self._evaluation: _Evaluation | None = None

    def wants(self, step: int, last_of_epoch: bool) -> bool:
        """Whether optimizer step ``step`` (counted from 1) is one to sample."""
        return last_of_epoch or step % self.settings.sample_every == 0

    @torch.no_grad()
    def sample(self, out: NetOutput) -> None:
        """Read a training step after its backward pass (before clipping): each layer's weight-gradient norm
        and its surrogate's gradient at the step's membranes."""
        for block in self.model.blocks:
            grads = [p.grad for p in _weights(block) if p.grad is not None]
            if grads:
                norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
                self._grad_sum[block.name] = self._grad_sum.get(block.name, 0) + norm
            if block.neuron is not None and block.name in out.layers:
                grad = surrogate_grad(block.neuron, *out.layers[block.name])
                if grad is not None:
                    self._surrogate_sum[block.name] = self._surrogate_sum.get(block.name, 0) + grad
                    self._sampled[block.name] = self._sampled.get(block.name, 0) + 1
        self._steps += 1

    @contextlib.contextmanager
    def evaluation(self, ctx: distributed.Context = distributed.SINGLE) -> Iterator[_Evaluation]:
        """Around an evaluation: counts every spike (forward hooks on the neurons) and every input of the layers
        with synapses (forward pre-hooks), all removed after; :meth:`_Evaluation.begin` before each batch. The
        counts are summed over ranks."""
        evaluation = _Evaluation(self)
        handles = []
        for block in self.model.blocks:
            if block.neuron is not None:
                handles.append(block.neuron.register_forward_hook(evaluation.spikes_hook(block)))
            if _synaptic(block.op):
                handles.append(block.op.register_forward_pre_hook(evaluation.inputs_hook(block.name, block.op)))
        try:
            yield evaluation
        finally:
            for handle in handles:
                handle.remove()
        if ctx.distributed:
            evaluation.all_reduce()
        self._evaluation = evaluation

    def report(self, epoch: int, step: int, rates: Mapping[str, float]) -> HealthReport:
        """The health since the last report, from the sampled steps and the last evaluation; starts anew."""
        ev, steps = self._evaluation, self._steps
        grads = {name: float(total) / steps for name, total in self._grad_sum.items()}
        surrogates = {name: float(total) / self._sampled[name] for name, total in self._surrogate_sum.items()}
        by_layer: dict[str, LayerHealth] = {}
        for block in self.model.blocks:
            name, neuron = block.name, block.neuron
            if neuron is None and not _synaptic(block.op):
                continue
            fires = neuron is not None and getattr(neuron, "fires", True)
            silent, saturated = ev.shares(name) if ev is not None and fires else (None, None)
            surrogate = surrogates.get(name)
            if surrogate is None and ev is not None:
                surrogate = ev.surrogates.get(name)
            by_layer[name] = LayerHealth(
                silent=silent,
                saturated=saturated,
                rate=rates.get(name) if neuron is not None else None,
                surrogate_grad=surrogate,
                weight_grad_norm=grads.get(name),
                synops=ev.synops_of(name) if ev is not None and name in ev.synops else None,
            )
        total = sum(h.synops for h in by_layer.values() if h.synops is not None)
        self._grad_sum, self._surrogate_sum, self._sampled, self._steps = {}, {}, {}, 0
        self._evaluation = None
        return HealthReport(
            epoch=epoch, step=step, by_layer=by_layer, synops=total, warnings=warnings_for(by_layer, self.settings)
        )

    def fan(self, name: str, op: nn.Module, in_shape: tuple[int, ...], device: torch.device) -> Tensor:
        key = (name, in_shape)
        if key not in self._fans:
            self._fans[key] = fan_out(op, in_shape).to(device)
        return self._fans[key]


def _weights(block: Block) -> Iterator[nn.Parameter]:
    """The trainable synapses of a block: its layer's weight and bias, and a recurrent neuron's recurrence."""
    yield from (p for p in block.op.parameters() if p.requires_grad)
    recurrent = getattr(block.neuron, "recurrent", None)
    if isinstance(recurrent, nn.Module):
        yield from (p for p in recurrent.parameters() if p.requires_grad)


class _Evaluation:
    """The counts of one evaluation: spikes per neuron, synaptic operations per layer, samples seen."""

    def __init__(self, monitor: HealthMonitor) -> None:
        self.monitor = monitor
        self.fired: dict[str, Tensor] = {}  # per neuron (flattened): steps x samples at which it fired
        self.synops: dict[str, Tensor] = {}  # per layer with synapses: operations summed over samples
        self.surrogates: dict[str, float] = {}  # from the first batch, for layers no training step recorded
        self.samples = 0
        self.steps = 0  # T
        self._batch = (0, 0)  # (T, B) of the forward pass under way
        self._first = True  # the forward pass under way is the evaluation's first
        self._last_spikes: tuple[int, int, Tensor | None] = (0, 0, None)  # data_ptr, per-sample size, counts

    def begin(self, inputs: Tensor) -> None:
        """Before a batch's forward pass: ``inputs [T, B, ...]``."""
        self._first = self.samples == 0
        self._last_spikes = (0, 0, None)
        self._batch = (inputs.shape[0], inputs.shape[1])
        self.steps = inputs.shape[0]
        self.samples += inputs.shape[1]

    def spikes_hook(self, block: Block) -> Callable[..., None]:
        neuron = block.neuron
        # Plain spikes are 0 or 1, so their sum counts them; graded ones are counted as nonzero values.
        binary = getattr(neuron, "graded_spikes_factor", None) is None

        def count(module: nn.Module, args: Any, outputs: tuple[Tensor, ...]) -> None:
            spikes, membrane = outputs[0], outputs[-1]
            fired = (spikes if binary else _nonzero(spikes)).flatten(2)  # [T, B, N]
            per_neuron = fired.sum((0, 1), dtype=torch.float32)  # exact up to 2**24 steps x samples
            self._add(self.fired, block.name, per_neuron)
            # The next layer's input is often these very spikes (flattened): it need not count them again.
            self._last_spikes = (spikes.data_ptr(), spikes[0, 0].numel(), per_neuron)
            fan = self._recurrent_fan(block, tuple(spikes.shape[2:]), spikes.device)
            if fan is not None and spikes.shape[0] > 1:  # the last step's spikes feed no later step
                self._add(self.synops, block.name, ((per_neuron - fired[-1].sum(0)) * fan).sum(dtype=torch.float64))
            if self._first and (grad := surrogate_grad(module, spikes, membrane)) is not None:
                self.surrogates[block.name] = float(grad)

        return count

    def inputs_hook(self, name: str, op: nn.Module) -> Callable[..., None]:
        def count(module: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0]
            T, B = self._batch
            # Before the first neuron a direct (static) input is one [B, ...] tensor for all T steps.
            per_step = T if x.shape[0] == B and T > 1 else 1
            ptr, size, counts = self._last_spikes
            if counts is not None and x.data_ptr() == ptr and x[0].numel() == size and per_step == 1:
                nonzero = counts.view(x.shape[1:])  # per input, summed over steps and samples
            elif isinstance(op, DENSE):  # the same fan-out for every input: count them all at once
                inputs = _nonzero(x).sum(dtype=torch.float64)
                self._add(self.synops, name, inputs * (op.out_features * per_step))
                return
            else:
                nonzero = _nonzero(x).sum(0, dtype=torch.float32) * per_step
            if isinstance(op, DENSE):
                ops = nonzero.sum(dtype=torch.float64) * op.out_features
            else:
                ops = (nonzero * self.monitor.fan(name, op, tuple(x.shape[1:]), x.device)).sum(dtype=torch.float64)
            self._add(self.synops, name, ops)

        return count

    def _recurrent_fan(self, block: Any, shape: tuple[int, ...], device: torch.device) -> Tensor | float | None:
        kind = getattr(block.neuron, "recurrence", None)
        if kind == "one_to_one":
            return 1.0
        if kind in ("linear", "conv"):
            return self.monitor.fan(f"{block.name}.recurrent", block.neuron.recurrent, shape, device)
        return None

    @staticmethod
    def _add(sums: dict[str, Tensor], name: str, value: Tensor) -> None:
        sums[name] = sums[name] + value if name in sums else value

    def all_reduce(self) -> None:
        """Sum the counts over ranks (each evaluated its slice of every batch)."""
        names = list(self.fired), list(self.synops)
        flat = [v for name in names[0] for v in self.fired[name].tolist()]
        flat += [float(self.synops[name]) for name in names[1]] + [float(self.samples)]
        summed = distributed.all_reduce_sum(flat)
        at = 0
        for name in names[0]:
            size = self.fired[name].numel()
            self.fired[name] = torch.tensor(summed[at : at + size])
            at += size
        for name in names[1]:
            self.synops[name] = torch.tensor(summed[at])
            at += 1
        self.samples = int(summed[at])

    def shares(self, name: str) -> tuple[float, float] | tuple[None, None]:
        """(silent, saturated) shares of a spiking layer's neurons."""
        fired = self.fired.get(name)
        if fired is None or fired.numel() == 0 or self.samples == 0:
            return None, None
        return float((fired == 0).float().mean()), float((fired >= self.steps * self.samples).float().mean())

    def synops_of(self, name: str) -> float:
        return float(self.synops[name]) / max(self.samples, 1)


# ------------------------------------------------------------------------------------------- warnings


def warnings_for(by_layer: Mapping[str, LayerHealth], limits: Thresholds) -> list[HealthWarning]:
    """The layers past a threshold, each with a one-line hint at what to change, in network order.

    A silent layer behind another silent one is blamed on the first; a vanishing gradient is blamed on the
    first silent or saturated spiking layer at or after it (a surrogate passes almost nothing back where
    the membranes stay far below or far above the threshold), otherwise on the smallest surrogate gradient
    on its way back.
    """
    silent = [n for n, h in by_layer.items() if h.silent is not None and h.silent >= limits.silent]
    saturated = [n for n, h in by_layer.items() if h.saturated is not None and h.saturated >= limits.saturated]
    norms = [h.weight_grad_norm for h in by_layer.values() if h.weight_grad_norm is not None]
    largest = max((norm for norm in norms if math.isfinite(norm)), default=0.0)
    names = list(by_layer)
    out: list[HealthWarning] = []
    for i, (name, h) in enumerate(by_layer.items()):
        spiking_before = [n for n in names[:i] if by_layer[n].silent is not None]
        if name in silent:
            if spiking_before and spiking_before[-1] in silent:
                hint = f"{spiking_before[-1]} before it is silent too: fix that first"
            else:
                hint = "lower the threshold or raise the init scale"
            out.append(HealthWarning(name, "silent", f"{name}: {_percent(h.silent)} silent: {hint}"))
        if name in saturated:
            text = f"{name}: {_percent(h.saturated)} saturated: raise the threshold or lower the init scale"
            out.append(HealthWarning(name, "saturated", text))
        norm = h.weight_grad_norm
        if norm is None or not math.isfinite(norm):
            continue
        if norm < limits.vanishing_grad or (largest > 0 and norm < limits.vanishing_ratio * largest):
            hint = _vanishing_hint(by_layer, names[i:], silent, saturated)
            text = f"{name}: weight gradient vanishing ({norm:.0e}): {hint}"
            out.append(HealthWarning(name, "vanishing_gradient", text))
    return out


def _vanishing_hint(
    by_layer: Mapping[str, LayerHealth], path: list[str], silent: list[str], saturated: list[str]
) -> str:
    """Why the gradient of the first layer of ``path`` (it and the layers after it) vanishes."""
    for name in path:
        if name in silent or name in saturated:
            return f"{name} is {'silent' if name in silent else 'saturated'}: fix that first"
    surrogates = [(by_layer[n].surrogate_grad, n) for n in path if _finite(by_layer[n].surrogate_grad)]
    if surrogates:
        value, name = min(surrogates)
        return f"surrogate gradient {value:.0e} in {name}: widen the surrogate or raise train.lr"
    return "raise train.lr or the init scale"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _percent(share: float | None) -> str:
    return f"{100 * (share or 0.0):.0f}%"
