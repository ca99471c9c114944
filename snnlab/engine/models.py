"""Build spiking networks from a plain description: a list of layers, each optionally followed by a neuron.

A layer description is a dict such as ``{"type": "linear", "out_features": 1000, "neuron": {"type":
"leaky", "beta": 0.95}}``, its type one of :data:`snnlab.catalog.LAYERS`. A linear or conv2d layer may name
its weight and bias initialisers (``init``, ``init_params``, ``bias_init``, ``bias_init_params``:
:mod:`snnlab.engine.inits`); without them it keeps torch's own.

Layers act on the whole sequence in one call (``[T*B, ...]``), not in a loop over time. While the
activity is still static (direct encoding, before the first neuron) layers run once on ``[B, ...]``
and the first neuron integrates that constant current for T steps; a dropout there therefore keeps
one mask for all steps. A layer that treats each step differently (``batchnorm_tt``, one norm per step)
takes the whole ``[T, B, ...]`` sequence; a static input is repeated over the T steps before it.

Segmented backward pass (``SpikingNet.bptt_segment``, the config's ``train.bptt_segment``): while gradients
are recorded, the network runs a segment of S steps at a time, every block over those steps, each neuron
continuing from its state at the segment's start (Leaky and Lapicque with their fused scan, the others with
their ``step`` loop). Each segment is wrapped in ``torch.utils.checkpoint``, so only the states at segment
boundaries and the output layer's record are kept for the backward pass; a segment's activations are
recomputed there, one segment at a time. Memory grows as ``T/S`` boundary states plus one segment's
activations, least at ``S ~ sqrt(T)``, for about one more forward pass of time (more for the neurons that
step in Python; BENCHMARKS.md has the numbers). Losses and gradients equal the unsegmented pass's to float
rounding (the layers' matmuls see other shapes). A static part (direct encoding, before the first neuron)
still runs once, outside the segments.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.utils.checkpoint
from torch import Tensor, nn

from snnlab.engine import inits, quant, shapes
from snnlab.engine.encoders import is_static
from snnlab.engine.layers import BatchNormTT, DelayedLinear, MaxPool2d
from snnlab.engine.neurons import NEURONS, Neuron
from snnlab.engine.surrogates import Surrogate


@dataclass
class NetOutput:
    """What a forward pass returns. ``spikes`` / ``membrane``: the output layer's ``[T, B, C]``;
    ``layers``: the spiking layers' ``(spikes, membrane)`` by name, in order: the output layer's, and the hidden
    layers' that the forward pass's ``record`` asked for (whole, or their first samples). In a segmented pass
    (``SpikingNet.bptt_segment``) the output layer's alone, since keeping every hidden layer's whole
    ``[T, B, N]`` record would undo the memory bound (evaluation and probes run without gradients, unsegmented,
    and see every layer)."""

    spikes: Tensor
    membrane: Tensor
    layers: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)


class Block(nn.Module):
    """One layer (or none) and the neuron after it (or none)."""

    def __init__(self, name: str, op: nn.Module | None, neuron: Neuron | None):
        super().__init__()
        self.name = name
        self.op: nn.Module = op if op is not None else nn.Identity()
        self.neuron: Neuron | None = neuron


class SpikingNet(nn.Module):
    """A feed-forward stack of :class:`Block`. ``forward(x [T, B, ...]) -> NetOutput``.

    ``bptt_segment``: None (default) keeps the whole sequence's activations for the backward pass; a number
    of steps S, or "auto" for ``ceil(sqrt(T))``, recomputes them segment by segment (see the module's
    docstring) whenever gradients are recorded and S < T.

    ``compact_spikes``: True keeps a hidden layer's spikes, where the next layer saves them for its backward pass,
    in one byte each instead of four (:func:`_spikes_in_one_byte`); the same gradients. Measured on the CPU (see
    BENCHMARKS.md), the conversions cost 10-20% of a step, and the backward pass turns each layer's bytes back
    into a float copy while that layer's gradient is computed: the peak falls with two or more hidden layers
    and rises with one. Off by default; a segmented pass (``bptt_segment``) keeps no hidden spikes to compact.
    """

    def __init__(self, blocks: list[Block], input_shape: tuple[int, ...], output_shape: tuple[int, ...]):
        super().__init__()
        # A ModuleList at run time (it registers the blocks); typed by what it holds.
        self.blocks = cast("list[Block]", nn.ModuleList(blocks))
        self.input_shape = input_shape
        self.output_shape = output_shape
        self.bptt_segment: int | str | None = None
        self.compact_spikes = False

    def forward(self, x: Tensor, record: bool | int = False) -> NetOutput:
        """The network over ``x [T, B, ...]``. ``record``: which hidden layers' spikes and membranes
        ``NetOutput.layers`` keeps besides the output layer's: none (False, the default), every one whole
        (True: evaluation, probes), or a number n, their first n samples (copies: the health monitor's
        sample). With ``compact_spikes``, while gradients are recorded, a hidden layer's spikes that are not kept
        whole are saved for the next layer's backward pass in one byte each, not four."""
        T, B = x.shape[:2]
        static = is_static(x)
        h = x[0] if static else x
        length = segment_steps(self.bptt_segment, T)
        if length < T and torch.is_grad_enabled():
            return self._segmented(h, static, T, B, length)
        last = self.blocks[-1].name
        layers: dict[str, tuple[Tensor, Tensor]] = {}
        compact: Tensor | None = None  # the spikes the next layer may save in one byte
        for block in self.blocks:
            if compact is not None and isinstance(block.op, _CAST) and torch.is_autocast_enabled(h.device.type):
                # The cast autocast would make, made here, so that the copy the layer saves is known as spikes.
                h = compact = h.to(torch.get_autocast_dtype(h.device.type))
            with _spikes_in_one_byte(compact):
                if getattr(block.op, "takes_time", False):
                    # One norm (or map) per step: the output differs per step even when the input does not.
                    h = block.op(h.expand(T, *h.shape) if static else h)
                    static = False
                elif static:
                    h = block.op(h)
                else:
                    h = block.op(h.flatten(0, 1)).unflatten(0, (T, B))
            compact = h if compact is not None and isinstance(block.op, _KEEPS_SPIKES) else None
            if block.neuron is not None:
                with _full_precision(h):
                    h = h.float() if h.dtype in (torch.bfloat16, torch.float16) else h
                    outputs = block.neuron(h, T) if static else block.neuron(h)
                static = False
                h, membrane = outputs[0], outputs[-1]
                del outputs  # nothing but h may hold a hidden layer's spikes once the next layer has run
                if block.name == last or record is True:
                    layers[block.name] = (h, membrane)
                else:
                    if record is not False:
                        layers[block.name] = (h[:, :record].clone(), membrane[:, :record].clone())
                    if self.compact_spikes and torch.is_grad_enabled() and binary_spikes(block.neuron):
                        compact = h
                del membrane
        spikes, membrane = layers[last]
        return NetOutput(spikes, membrane, layers)

    def _segmented(self, h: Tensor, static: bool, T: int, B: int, length: int) -> NetOutput:
        """The forward pass in segments of ``length`` steps, each recomputed in the backward pass."""
        blocks = list(self.blocks)
        _refuse_delays(blocks)
        for block in blocks:
            if getattr(block.op, "takes_time", False):
                cast("BatchNormTT", block.op).check_steps(T)
        first, op_done = 0, False  # the static part runs once: ops up to the first neuron or per-step layer
        while static and not getattr(blocks[first].op, "takes_time", False):
            h = blocks[first].op(h)
            if blocks[first].neuron is not None:
                op_done = True
                break
            first += 1
        segment = blocks[first:]
        _refuse_batch_statistics(segment)
        norms = [m for block in segment for m in block.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        states: list[Any] = [None] * sum(block.neuron is not None for block in segment)
        spikes, membranes = [], []
        for start in range(0, T, length):
            steps = min(length, T - start)
            x = h if static else h[start : start + steps]
            # Recomputing a segment must not move batchnorm_tt's running statistics a second time.
            spk, mem, states = torch.utils.checkpoint.checkpoint(
                _run_segment, segment, op_done, x, static, start, steps, B, states,
                use_reentrant=False, context_fn=lambda: (contextlib.nullcontext(), _frozen_statistics(norms)),
            )  # fmt: skip
            spikes.append(spk)
            membranes.append(mem)
        spikes_t, membrane_t = torch.cat(spikes), torch.cat(membranes)
        return NetOutput(spikes_t, membrane_t, {blocks[-1].name: (spikes_t, membrane_t)})

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Tell the layers with a schedule over training (``delayed_linear``'s sigma) that epoch ``epoch`` (from 1)
        of ``epochs`` begins. The trainer calls it before each epoch's first batch, a resumed run included."""
        for block in self.blocks:
            if isinstance(block.op, DelayedLinear):
                block.op.set_epoch(epoch, epochs)

    def constrain(self) -> None:
        """Put constrained parameters back in their range after an optimizer step (``delayed_linear``'s delays)."""
        for block in self.blocks:
            if isinstance(block.op, DelayedLinear):
                block.op.constrain()

    def spiking_layers(self) -> list[str]:
        return [b.name for b in self.blocks if b.neuron is not None]

    def set_fused(self, fused: bool) -> None:
        """Use the fused kernels (True) or the reference loops (False) in every neuron."""
        for block in self.blocks:
            if block.neuron is not None:
                block.neuron.fused = fused


def segment_steps(setting: int | str | None, time_steps: int) -> int:
    """The segment length of a ``bptt_segment`` setting for T steps: T (no segments) for None, ``ceil(sqrt(T))``
    for "auto", else the number itself (a length of T or more is a single segment)."""
    if setting is None:
        return time_steps
    if setting == "auto":
        return math.isqrt(time_steps - 1) + 1 if time_steps > 1 else 1
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ValueError(f"bptt_segment must be a number of steps >= 1, 'auto' or None (got {setting!r})")
    return setting


def _run_segment(
    blocks: list[Block], op_done: bool, h: Tensor, static: bool, start: int, steps: int, B: int, states: list[Any]
) -> tuple[Tensor, Tensor, list[Any]]:
    """Steps ``start .. start + steps - 1`` of ``blocks``: ``h`` is those steps' input ``[steps, B, ...]`` (or the
    static ``[B, ...]``), ``states`` each neuron's state before them (None: its initial state). Returns the
    last block's spikes and membrane ``[steps, B, ...]`` and each neuron's state after the segment.

    A neuron with ``forward_from`` (Leaky, Lapicque) runs its fused scan from the segment's starting state;
    every other steps through time with its ``step`` (every neuron type has one and it starts from any state,
    where the fused scans start from rest), i.e. its reference path."""
    new_states: list[Any] = []
    spikes = membrane = h
    for i, block in enumerate(blocks):
        if i == 0 and op_done:
            pass
        elif getattr(block.op, "takes_time", False):
            h = block.op(h.expand(steps, *h.shape) if static else h, start=start)
            static = False
        elif static:
            h = block.op(h)
        else:
            h = block.op(h.flatten(0, 1)).unflatten(0, (steps, B))
        if block.neuron is not None:
            with _full_precision(h):
                h = h.float() if h.dtype in (torch.bfloat16, torch.float16) else h
                state = states[len(new_states)]
                neuron: Any = block.neuron  # every neuron type has init_state and step (not in a common base)
                state = state if state is not None else neuron.init_state(h if static else h[0])
                resume = getattr(neuron, "forward_from", None)  # a fused path that starts from a state
                done = resume(h, state, steps if static else None) if resume is not None else None
                spikes, membrane, state = done if done is not None else _step_through(neuron, h, static, steps,
                                                                                      state)  # fmt: skip
            new_states.append(state)
            static = False
            h = spikes
    return spikes, membrane, new_states


def _step_through(neuron: Any, h: Tensor, static: bool, steps: int, state: Any) -> tuple[Tensor, Tensor, Any]:
    """``steps`` of the neuron's ``step`` from ``state``: ``(spikes, membrane, state at the end)``."""
    spikes, membrane = [], []
    for t in range(steps):
        spk, state = neuron.step(h if static else h[t], state)
        spikes.append(spk)
        membrane.append(state[-1])  # every neuron's state ends with its membrane
    return torch.stack(spikes), torch.stack(membrane), state


def _refuse_delays(blocks: list[Block]) -> None:
    """A delayed layer reads up to max_delay steps back, which a segment that starts later does not hold."""
    for block in blocks:
        if isinstance(block.op, DelayedLinear):
            raise ValueError(
                f"{block.name}: a delayed_linear layer reads inputs up to max_delay steps back, across segment "
                "boundaries, which bptt_segment cannot split; turn bptt_segment off"
            )


def _refuse_batch_statistics(blocks: list[Block]) -> None:
    """A batchnorm over the folded ``[T*B, ...]`` sequence takes its statistics over all T steps, which a
    segment does not see: segmenting would change what it computes."""
    for block in blocks:
        if isinstance(block.op, nn.BatchNorm1d | nn.BatchNorm2d):
            raise ValueError(
                f"{block.name}: a batchnorm after the first neuron (or on a temporal input) normalises over all "
                "time steps at once, which bptt_segment cannot split; use batchnorm_tt or turn bptt_segment off"
            )


@contextlib.contextmanager
def _frozen_statistics(norms: list[nn.modules.batchnorm._BatchNorm]) -> Iterator[None]:
    """Batch norms that leave their running statistics as they are: momentum 0 (the update keeps the old
    value exactly) and the batch count put back afterwards."""
    saved = [(bn.momentum, None if bn.num_batches_tracked is None else bn.num_batches_tracked.clone()) for bn in norms]
    for bn in norms:
        bn.momentum = 0.0
    try:
        yield
    finally:
        with torch.no_grad():
            for bn, (momentum, count) in zip(norms, saved, strict=True):
                bn.momentum = momentum
                if count is not None and bn.num_batches_tracked is not None:
                    bn.num_batches_tracked.copy_(count)


def binary_spikes(neuron: nn.Module) -> bool:
    """Whether every spike ``neuron`` emits is exactly 0 or 1: its spike function a :class:`Surrogate` (a
    Heaviside step), its spikes not graded. A user's own spike function may return anything: False."""
    return (
        isinstance(getattr(neuron, "spike_fn", None), Surrogate)
        and getattr(neuron, "graded_spikes_factor", None) is None
    )


_KEEPS_SPIKES = (nn.Identity, nn.Flatten, nn.MaxPool2d)  # layers whose output is 0 or 1 where their input is
_CAST = (nn.Linear, nn.Conv2d)  # layers that autocast runs in lower precision, casting their input


class _OneByte:
    """A saved 0/1 tensor kept as bool, turned back into its dtype (exactly) when the backward pass reads it."""

    __slots__ = ("bits", "dtype")

    def __init__(self, t: Tensor) -> None:
        self.bits, self.dtype = t.to(torch.bool), t.dtype

    def unpack(self) -> Tensor:
        return self.bits.to(self.dtype)


@contextlib.contextmanager
def _spikes_in_one_byte(spikes: Tensor | None) -> Iterator[None]:
    """While a layer runs on a hidden layer's ``spikes`` (0 or 1, see :func:`binary_spikes`), whatever it saves
    for its backward pass that is those spikes (its input, for the weight gradient of a linear or conv2d layer)
    is kept in one byte per spike, and the float spikes can go once the layer's forward is done. The backward
    pass gets the same values back, so gradients do not change. ``spikes`` None: nothing changes."""
    if spikes is None:
        yield
        return
    where, size, dtype = spikes.untyped_storage().data_ptr(), spikes.numel(), spikes.dtype

    def pack(t: Tensor) -> Tensor | _OneByte:
        if t.dtype == dtype and t.numel() == size and t.is_contiguous() and t.untyped_storage().data_ptr() == where:
            return _OneByte(t)
        return t

    def unpack(saved: Tensor | _OneByte) -> Tensor:
        return saved.unpack() if isinstance(saved, _OneByte) else saved

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield


def _full_precision(h: Tensor):
    """Under autocast (``train.precision: bfloat16``) the layers run in bfloat16, but a neuron integrates in
    float32, its recurrent feedback (RLeaky, RSynaptic) included: autocast is off inside it."""
    if torch.is_autocast_enabled(h.device.type):
        return torch.autocast(h.device.type, enabled=False)
    return contextlib.nullcontext()


def _neuron(spec: dict[str, Any], shape: tuple[int, ...]) -> Neuron:
    spec = dict(spec)
    kind = spec.pop("type", "leaky")
    if kind not in NEURONS:
        raise ValueError(f"unknown neuron {kind!r} (choose from: {', '.join(NEURONS)})")
    cls = NEURONS[kind]
    shapes.check_neuron({"type": kind, **spec}, shape)
    if kind in shapes.RECURRENT and spec.get("all_to_all", True):
        # The recurrent map follows the layer: a linear map over [N] features, a convolution over [C, H, W].
        kernel_size = spec.pop("kernel_size", 3)
        if len(shape) == 1:
            spec.setdefault("features", shape[0])
        else:
            spec.setdefault("conv2d_channels", shape[0])
            spec.setdefault("kernel_size", kernel_size)
    if isinstance(spec.get("state_quant"), dict):  # the config's settings of the quantizer
        spec["state_quant"] = quant.state_quant(**spec["state_quant"])
    if kind in ("leaky_parallel", "slstm"):  # its own input map (an RNN's or an LSTM cell's), N -> N
        spec.setdefault("input_size", shape[0])
        spec.setdefault("hidden_size", shape[0])
    if kind == "sconv2dlstm":  # its gates' convolution, C -> C, keeping H and W
        spec.setdefault("in_channels", shape[0])
        spec.setdefault("out_channels", shape[0])
        spec.setdefault("kernel_size", 3)
    return cls(**spec)


def build_model(layers: list[dict[str, Any]], input_shape: tuple[int, ...]) -> SpikingNet:
    """Build a :class:`SpikingNet` for per-sample inputs of ``input_shape`` (e.g. ``(1, 28, 28)``).

    A ``batchnorm_tt`` layer's dict names the run's number of steps, ``time_steps`` (``Config.layer_specs()``
    fills it in from the data section).

    Raises ValueError naming the layer (``model.layers[2]: ...``) when a layer does not fit its input.
    """
    if not layers:
        raise ValueError("model.layers: the network needs at least one layer")
    shape = tuple(input_shape)
    blocks: list[Block] = []
    counts: dict[str, int] = {}
    for i, raw in enumerate(layers):
        spec = dict(raw)
        kind = spec.pop("type")
        neuron_spec = spec.pop("neuron", None)
        where = f"model.layers[{i}] ({kind})"
        try:
            op, shape = _layer(kind, spec, shape)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        counts[kind] = counts.get(kind, 0) + 1
        prefix = {"linear": "fc", "conv2d": "conv"}.get(kind, kind)
        name = f"{prefix}{counts[kind]}"
        try:
            neuron = _neuron(neuron_spec, shape) if neuron_spec is not None else None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where} neuron: {exc}") from None
        blocks.append(Block(name, op, neuron))
    if blocks[-1].neuron is None:
        raise ValueError(f"model.layers[{len(layers) - 1}]: the last layer needs a neuron (the output layer spikes)")
    return SpikingNet(blocks, tuple(input_shape), shape)


def _layer(kind: str, spec: dict[str, Any], shape: tuple[int, ...]) -> tuple[nn.Module, tuple[int, ...]]:
    out_shape = shapes.layer_output(kind, spec, shape)  # raises when the layer does not fit its input
    if kind == "linear":
        weights = _initialisers(spec)
        out = spec.pop("out_features")
        return _initialised(nn.Linear(shape[0], out, **spec), *weights), out_shape
    if kind == "delayed_linear":
        weights = _initialisers(spec)
        out, max_delay = spec.pop("out_features"), spec.pop("max_delay")
        return _initialised(DelayedLinear(shape[0], out, max_delay, **spec), *weights), out_shape
    if kind == "conv2d":
        weights = _initialisers(spec)
        out, k = spec.pop("out_channels"), spec.pop("kernel_size")
        stride, padding = spec.pop("stride", 1), spec.pop("padding", 0)
        conv = nn.Conv2d(shape[0], out, k, stride=stride, padding=padding, **spec)
        return _initialised(conv, *weights), out_shape
    if kind in ("maxpool", "avgpool"):
        k = spec.pop("kernel_size", 2)
        stride = spec.pop("stride", None) or k
        return (MaxPool2d if kind == "maxpool" else nn.AvgPool2d)(k, stride=stride, **spec), out_shape
    if kind == "flatten":
        return nn.Flatten(), out_shape
    if kind == "dropout":
        return nn.Dropout(spec.pop("p", 0.5)), out_shape
    if kind == "batchnorm":
        return (nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d)(shape[0], **spec), out_shape
    if kind == "batchnorm_tt":  # layer_output has checked time_steps
        return BatchNormTT(shape[0], spec.pop("time_steps"), image=len(shape) == 3, **spec), out_shape
    raise AssertionError(kind)  # layer_output has refused unknown types


def _initialisers(spec: dict[str, Any]) -> tuple[tuple[str, Any], tuple[str, Any]]:
    """Take a layer's ``init``, ``init_params``, ``bias_init`` and ``bias_init_params`` out of ``spec``."""
    weight = (spec.pop("init", "default"), spec.pop("init_params", None))
    return weight, (spec.pop("bias_init", "default"), spec.pop("bias_init_params", None))


def _initialised(
    op: nn.Linear | nn.Conv2d | DelayedLinear, weight: tuple[str, Any], bias: tuple[str, Any]
) -> nn.Module:
    """``op`` with its weight and bias initialised as named. torch has drawn its own initialisation already, so
    that "default" leaves every weight, and the random stream after it, as it was before these settings."""
    inits.initialise(op.weight, *weight)
    if op.bias is not None:
        inits.initialise(op.bias, *bias)
    elif bias[0] != "default":
        raise ValueError("bias_init needs a bias: the layer has bias: false")
    return op


def lr_groups(model: nn.Module) -> list[tuple[list[nn.Parameter], float]]:
    """The trained parameters in groups by their learning rate's scale over train.lr: ``[(params, 1.0), ...]``,
    the unscaled group first, then one per scale that a module asks for in its ``lr_scales`` (parameter name ->
    scale; ``delayed_linear``'s delays)."""
    scaled: dict[int, float] = {}
    for module in model.modules():
        for name, scale in getattr(module, "lr_scales", {}).items():
            scaled[id(getattr(module, name))] = scale
    groups: dict[float, list[nn.Parameter]] = {1.0: []}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault(scaled.get(id(p), 1.0), []).append(p)
    return [(params, scale) for scale, params in groups.items() if params or scale == 1.0]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def spike_rates(output: NetOutput) -> dict[str, float]:
    """Mean spikes per neuron per step for each spiking layer."""
    return {name: spk.mean().item() for name, (spk, _) in output.layers.items()}
