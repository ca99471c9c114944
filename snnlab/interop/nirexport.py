"""snnlab's network as a NIR graph: :func:`to_nir`. The conventions are in :mod:`snnlab.interop.nirgraph`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np
import torch
from torch import nn

from snnlab.engine import shapes
from snnlab.engine.models import SpikingNet
from snnlab.interop.nirgraph import SNNTORCH_DT, TRAINING_SETTINGS, NIRError

_ZERO_RESET_FIX = "train it with model.neuron.reset: zero and reset_delay: false to export it"


def to_nir(
    model: SpikingNet, layer_specs: list[dict[str, Any]], dt: float | None = None
) -> tuple[nir.NIRGraph, list[str]]:
    """The NIR graph of ``model`` (built from ``layer_specs``, a config's ``layer_specs()``), and a line per thing
    the graph leaves out (surrogates, dropout). ``dt`` is the time step of the tau values in seconds, written into
    the graph's metadata; None: a lapicque neuron's ``time_step`` if there is one, else :data:`SNNTORCH_DT`.

    Raises:
        NIRError: a layer or neuron NIR cannot express, named with its index in model.layers.
    """
    steps = {spec["neuron"].get("time_step", 1e-3) for spec in layer_specs
             if spec.get("neuron", {}).get("type") == "lapicque"}  # fmt: skip
    if dt is None:
        dt = steps.pop() if len(steps) == 1 else SNNTORCH_DT
    if not dt > 0:
        raise NIRError(f"dt must be > 0 (got {dt})")
    if steps - {dt}:
        raise NIRError(
            f"the lapicque neurons step by time_step {', '.join(f'{v:g}' for v in sorted(steps))}, the "
            f"file by dt {dt:g}: NIR's graph has one time step; export with --dt equal to time_step"
        )
    shape = tuple(model.input_shape)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    dropped: list[str] = []
    feedback: dict[str, tuple[str, Any]] = {}  # a recurrent neuron's node -> (name, its w_rec node)
    for i, (block, spec) in enumerate(zip(model.blocks, layer_specs, strict=True)):
        kind = spec["type"]
        where = f"model.layers.{i} ({block.name})"
        out_shape = shapes.layer_output(kind, spec, shape)
        node = _layer_node(block.op, kind, spec, shape, where)
        if node is None:
            dropped.append(f"{block.name}: left out (dropout is the identity outside training)")
        else:
            nodes[block.name] = node
        if block.neuron is not None:
            neuron_spec = dict(spec.get("neuron", {}))
            neuron_nodes = _neuron_node(block.neuron, neuron_spec, out_shape, dt, where)
            if isinstance(neuron_nodes, _Loop):
                cell = f"{block.name}_{type(neuron_nodes.cell).__name__.lower()}"
                nodes[cell] = neuron_nodes.cell
                feedback[cell] = (f"{block.name}_w_rec", neuron_nodes.w_rec)
            for neuron_node in neuron_nodes if isinstance(neuron_nodes, list) else [neuron_nodes]:
                if not isinstance(neuron_node, _Loop):
                    nodes[f"{block.name}_{type(neuron_node).__name__.lower()}"] = neuron_node
            if "surrogate" in neuron_spec:
                dropped.append(f"{block.name}: surrogate {neuron_spec['surrogate']} (NIR has no gradients; kept in "
                               "snnlab's metadata)")  # fmt: skip
        shape = out_shape
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    names = list(nodes)
    edges = list(zip(names[:-1], names[1:], strict=True))
    for cell, (name, w_rec) in feedback.items():  # beside the chain: the cell feeds w_rec, w_rec feeds it back
        nodes[name] = w_rec
        edges += [(cell, name), (name, cell)]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=True)
    graph.metadata = {"dt": float(dt)}
    return graph, dropped


def _array(value: torch.Tensor | float, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """A parameter (one value or one per neuron) as an array of the layer's shape, as NIR's type check wants."""
    data = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    return np.ascontiguousarray(np.broadcast_to(data.astype(dtype), shape))


def _layer_node(op: nn.Module, kind: str, spec: dict[str, Any], shape: tuple[int, ...], where: str) -> Any:
    if kind == "linear":
        assert isinstance(op, nn.Linear)
        weight = op.weight.detach().cpu().numpy()
        if op.bias is None:
            return nir.Linear(weight=weight)
        return nir.Affine(weight=weight, bias=op.bias.detach().cpu().numpy())
    if kind == "conv2d":
        assert isinstance(op, nn.Conv2d)
        k, s, p = spec["kernel_size"], spec.get("stride", 1), spec.get("padding", 0)
        bias = op.bias.detach().cpu().numpy() if op.bias is not None else np.zeros(op.out_channels, np.float32)
        return nir.Conv2d(input_shape=tuple(shape[1:]), weight=op.weight.detach().cpu().numpy(), stride=(s, s),
                          padding=(p, p), dilation=(1, 1), groups=1, bias=bias,
                          metadata={} if op.bias is not None else {"snnlab": json.dumps({"bias": False})})  # fmt: skip
    if kind == "flatten":
        return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
    if kind == "avgpool":
        k = spec.get("kernel_size", 2)
        s = spec.get("stride") or k
        return nir.AvgPool2d(kernel_size=np.array([k, k]), stride=np.array([s, s]), padding=np.array([0, 0]))
    if kind == "dropout":
        return None
    why = {
        "maxpool": "NIR has no max pooling (only sum and average pooling): train with avgpool to export",
        "batchnorm": "NIR has no batch normalisation",
        "batchnorm_tt": "NIR has no batch normalisation",
    }.get(kind, "NIR has no such layer")
    raise NIRError(f"{where}: cannot export a {kind} layer: {why}")


def _neuron_node(neuron: Any, spec: dict[str, Any], shape: tuple[int, ...], dt: float, where: str) -> Any:
    kind = spec.get("type", "leaky")
    hint = {key: spec[key] for key in TRAINING_SETTINGS if key in spec}
    hint["type"] = kind
    per_neuron = [key for key in ("beta", "threshold") if isinstance(spec.get(key), list)]
    if per_neuron:
        hint["per_neuron"] = per_neuron
    metadata = {"snnlab": json.dumps(hint)}
    if kind in ("rleaky", "rsynaptic"):
        return _recurrent_node(neuron, spec, shape, dt, where, metadata)
    where = where if where.endswith(" neuron") else f"{where} {kind} neuron"  # a recurrent one's cell: named
    if kind in ("leaky", "synaptic") and neuron.reset == "none":
        _check_plain_spikes(neuron, where)
        # no reset: a leaky integrator whose membrane a threshold reads, as NIR writes it
        beta = neuron.beta.detach().clamp(0, 1).double()
        tau = _tau(beta, dt, where, "beta")
        fire = nir.Threshold(threshold=_array(neuron.threshold, shape))
        if kind == "leaky":
            return [nir.LI(tau=_array(tau, shape, np.float64), r=_array(tau / dt, shape, np.float64),
                           v_leak=np.zeros(shape), metadata=metadata), fire]  # fmt: skip
        tau_syn = _tau(neuron.alpha.detach().clamp(0, 1).double(), dt, where, "alpha")
        return [nir.CubaLI(tau_syn=_array(tau_syn, shape, np.float64), tau_mem=_array(tau, shape, np.float64),
                           r=_array(tau / dt, shape, np.float64), v_leak=np.zeros(shape),
                           w_in=_array(tau_syn / dt, shape, np.float64), metadata=metadata), fire]  # fmt: skip
    if kind == "lapicque":
        # Lapicque's own constants: mem = (1 - dt/(R*C))*mem + (dt/C)*I is NIR's Euler step with tau = R*C, r = R
        _check_zero_reset(neuron, where)
        tau = torch.as_tensor(neuron.R, dtype=torch.float64) * torch.as_tensor(neuron.C, dtype=torch.float64)
        return nir.LIF(tau=_array(tau, shape, np.float64), r=_array(torch.as_tensor(neuron.R), shape, np.float64),
                       v_leak=np.zeros(shape), v_threshold=_array(neuron.threshold, shape), v_reset=np.zeros(shape),
                       metadata=metadata)  # fmt: skip
    if kind in ("leaky", "synaptic"):
        _check_zero_reset(neuron, where)
        beta = neuron.beta.detach().clamp(0, 1).double()
        tau = _tau(beta, dt, where, "beta")
        threshold = _array(neuron.threshold, shape)
        if kind == "leaky":
            return nir.LIF(tau=_array(tau, shape, np.float64), r=_array(tau / dt, shape, np.float64),
                           v_leak=np.zeros(shape), v_threshold=threshold, v_reset=np.zeros(shape),
                           metadata=metadata)  # fmt: skip
        tau_syn = _tau(neuron.alpha.detach().clamp(0, 1).double(), dt, where, "alpha")
        return nir.CubaLIF(tau_syn=_array(tau_syn, shape, np.float64), tau_mem=_array(tau, shape, np.float64),
                           r=_array(tau / dt, shape, np.float64), v_leak=np.zeros(shape), v_threshold=threshold,
                           v_reset=np.zeros(shape), w_in=_array(tau_syn / dt, shape, np.float64),
                           metadata=metadata)  # fmt: skip
    if kind == "expon":
        tau = _tau(neuron.beta.detach().clamp(0, 1).double(), dt, where, "beta")
        return nir.LI(tau=_array(tau, shape, np.float64), r=_array(tau / dt, shape, np.float64),
                      v_leak=np.zeros(shape), metadata=metadata)  # fmt: skip
    if kind in ("if", "lif", "plif"):
        if neuron.v_reset is None:
            raise NIRError(f"{where}: cannot export the soft reset (v_reset: null subtracts the threshold): NIR's "
                           "neurons set the membrane to v_reset when they fire; train with v_reset: 0.0 to export "
                           "it")  # fmt: skip
        threshold, v_reset = _array(neuron.v_threshold, shape), _array(neuron.v_reset, shape)
        if kind == "if":
            return nir.IF(r=_array(1 / dt, shape, np.float64), v_threshold=threshold, v_reset=v_reset,
                          metadata=metadata)  # fmt: skip
        steps = float(neuron.tau)  # plif: its current 1/sigmoid(w)
        return nir.LIF(tau=_array(steps * dt, shape, np.float64),
                       r=_array(1.0 if neuron.decay_input else steps, shape, np.float64), v_leak=v_reset.copy(),
                       v_threshold=threshold, v_reset=v_reset, metadata=metadata)  # fmt: skip
    why = {
        "alpha": "its two synaptic currents (a difference of exponentials) have no NIR node",
        "leaky_parallel": "its input RNN has no NIR node",
        "slstm": "LSTM gates have no NIR node",
        "sconv2dlstm": "LSTM gates have no NIR node",
        "brainpy_lif": "BrainPy's exponential-Euler step, with its reset before the decay, is not NIR's Euler LIF",
    }.get(kind, "NIR has no such neuron")
    raise NIRError(f"{where}: cannot export it: {why}")


@dataclass
class _Loop:
    """A recurrent neuron's two nodes: its LIF (CubaLIF) and the dense ``w_rec`` that feeds its spikes back."""

    cell: Any
    w_rec: Any


def _recurrent_node(
    neuron: Any, spec: dict[str, Any], shape: tuple[int, ...], dt: float, where: str, metadata: dict[str, str]
) -> _Loop:
    """rleaky / rsynaptic as snnTorch's export writes them (through nirtorch): the LIF (CubaLIF) in the chain, and
    beside it a dense ``w_rec`` that it feeds and that feeds it back, read at the next step."""
    kind = spec["type"]
    if neuron.recurrence == "conv" or len(shape) != 1:
        raise NIRError(f"{where} {kind} neuron: cannot export a recurrence over [C, H, W] features: snnlab writes a "
                       "recurrent layer as snnTorch does, with a dense W_rec over [N] neurons")  # fmt: skip
    if neuron.reset == "none":
        raise NIRError(f"{where} {kind} neuron: cannot export a recurrent neuron without a reset; "
                       f"{_ZERO_RESET_FIX}")  # fmt: skip
    cell = _neuron_node(neuron, {**spec, "type": kind[1:]}, shape, dt, f"{where} {kind} neuron")
    cell.metadata = metadata
    if neuron.recurrence == "linear":
        w_rec: Any = nir.Affine(weight=neuron.recurrent.weight.detach().cpu().numpy(),
                                bias=neuron.recurrent.bias.detach().cpu().numpy())  # fmt: skip
    else:
        w_rec = nir.Linear(weight=np.diag(_array(neuron.V, shape)))
    return _Loop(cell, w_rec)


def _check_zero_reset(neuron: Any, where: str) -> None:
    """NIR's LIF and CubaLIF set the membrane to v_reset in the step that fires: snnlab's zero reset without delay."""
    if neuron.reset != "zero":
        raise NIRError(f"{where}: cannot export reset {neuron.reset}: NIR's LIF sets the membrane to v_reset (0) in "
                       f"the step it fires, it has no {neuron.reset} reset; {_ZERO_RESET_FIX}")  # fmt: skip
    if neuron.reset_delay:
        raise NIRError(f"{where}: cannot export reset_delay: true (a reset in the step after the spike): NIR resets "
                       f"in the step that fires; {_ZERO_RESET_FIX}")  # fmt: skip
    _check_plain_spikes(neuron, where)


def _check_plain_spikes(neuron: Any, where: str) -> None:
    """Spikes of 1, each neuron on its own, states as they are: NIR has no other kind."""
    for option, what in (("graded_spikes_factor", "graded spikes"), ("state_quant", "quantized states")):
        if getattr(neuron, option) is not None:
            raise NIRError(f"{where}: cannot export {option}: NIR has no {what}")
    if neuron.inhibition:
        raise NIRError(f"{where}: cannot export inhibition: NIR has no winner-take-all spiking")


def _tau(decay: torch.Tensor, dt: float, where: str, name: str) -> torch.Tensor:
    """``dt/(1 - decay)``: the time constant whose Euler step decays by ``decay``, in float64 so that
    ``1 - dt/tau`` gives the float32 decay back exactly."""
    if (decay >= 1).any():
        raise NIRError(f"{where}: cannot export {name} = 1 (no decay): its time constant dt/(1 - {name}) is infinite")
    return dt / (1 - decay)
