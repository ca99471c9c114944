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
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import Tensor, nn

from snnlab.engine import inits, quant, shapes
from snnlab.engine.encoders import is_static
from snnlab.engine.layers import BatchNormTT
from snnlab.engine.neurons import NEURONS, Neuron


@dataclass
class NetOutput:
    """What a forward pass returns. ``spikes`` / ``membrane``: the output layer's ``[T, B, C]``;
    ``layers``: every spiking layer's ``(spikes, membrane)`` by name, in order."""

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
    """A feed-forward stack of :class:`Block`. ``forward(x [T, B, ...]) -> NetOutput``."""

    def __init__(self, blocks: list[Block], input_shape: tuple[int, ...], output_shape: tuple[int, ...]):
        super().__init__()
        # A ModuleList at run time (it registers the blocks); typed by what it holds.
        self.blocks = cast("list[Block]", nn.ModuleList(blocks))
        self.input_shape = input_shape
        self.output_shape = output_shape

    def forward(self, x: Tensor) -> NetOutput:
        T, B = x.shape[:2]
        static = is_static(x)
        h = x[0] if static else x
        layers: dict[str, tuple[Tensor, Tensor]] = {}
        for block in self.blocks:
            if getattr(block.op, "takes_time", False):
                # One norm (or map) per step: the output differs per step even when the input does not.
                h = block.op(h.expand(T, *h.shape) if static else h)
                static = False
            elif static:
                h = block.op(h)
            else:
                h = block.op(h.flatten(0, 1)).unflatten(0, (T, B))
            if block.neuron is not None:
                with _full_precision(h):
                    h = h.float() if h.dtype in (torch.bfloat16, torch.float16) else h
                    outputs = block.neuron(h, T) if static else block.neuron(h)
                static = False
                h = outputs[0]
                layers[block.name] = (outputs[0], outputs[-1])
        spikes, membrane = layers[self.blocks[-1].name]
        return NetOutput(spikes, membrane, layers)

    def spiking_layers(self) -> list[str]:
        return [b.name for b in self.blocks if b.neuron is not None]

    def set_fused(self, fused: bool) -> None:
        """Use the fused kernels (True) or the reference loops (False) in every neuron."""
        for block in self.blocks:
            if block.neuron is not None:
                block.neuron.fused = fused


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
    if kind == "conv2d":
        weights = _initialisers(spec)
        out, k = spec.pop("out_channels"), spec.pop("kernel_size")
        stride, padding = spec.pop("stride", 1), spec.pop("padding", 0)
        conv = nn.Conv2d(shape[0], out, k, stride=stride, padding=padding, **spec)
        return _initialised(conv, *weights), out_shape
    if kind in ("maxpool", "avgpool"):
        k = spec.pop("kernel_size", 2)
        stride = spec.pop("stride", None) or k
        return (nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d)(k, stride=stride, **spec), out_shape
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


def _initialised(op: nn.Linear | nn.Conv2d, weight: tuple[str, Any], bias: tuple[str, Any]) -> nn.Module:
    """``op`` with its weight and bias initialised as named. torch has drawn its own initialisation already, so
    that "default" leaves every weight, and the random stream after it, as it was before these settings."""
    inits.initialise(op.weight, *weight)
    if op.bias is not None:
        inits.initialise(op.bias, *bias)
    elif bias[0] != "default":
        raise ValueError("bias_init needs a bias: the layer has bias: false")
    return op


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def spike_rates(output: NetOutput) -> dict[str, float]:
    """Mean spikes per neuron per step for each spiking layer."""
    return {name: spk.mean().item() for name, (spk, _) in output.layers.items()}
