"""A NIR graph as snnlab's layers and weights: :func:`from_nir`. The conventions are in
:mod:`snnlab.interop.nirgraph`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import nir
import numpy as np
import torch

from snnlab.engine import shapes
from snnlab.interop.nirgraph import TRAINING_SETTINGS, NIRError

_SCALE_RTOL = 1e-6  # an input scale r*dt/tau this close to 1 is 1: float32 files round tau and r


@dataclass
class Imported:
    """A NIR graph as snnlab's model: the config's layer dicts, each layer's tensors (``op.weight``,
    ``neuron.beta``, ... in the built block), the input shape per step, and notes for the user."""

    layers: list[dict[str, Any]]
    tensors: list[dict[str, np.ndarray]]
    input_shape: tuple[int, ...]
    notes: list[str] = field(default_factory=list)

    def flatten_first(self) -> None:
        """Put a flatten before the first layer, so that [C, H, W] images reach a first layer that takes [N]."""
        self.layers.insert(0, {"type": "flatten"})
        self.tensors.insert(0, {})

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors as the state dict of the :class:`SpikingNet` built from :attr:`layers`."""
        return {f"blocks.{i}.{key}": torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
                for i, tensors in enumerate(self.tensors) for key, value in tensors.items()}  # fmt: skip


def from_nir(graph: nir.NIRGraph, dt: float) -> Imported:
    """snnlab's layers and weights for a feed-forward NIR graph whose tau values are in steps of ``dt`` seconds.

    Raises:
        NIRError: a node snnlab has no layer or neuron for, or a graph that is not a chain; named, with why.
    """
    if not dt > 0:
        raise NIRError(f"dt must be > 0 (got {dt})")
    graph = _with_recurrent_subgraphs(graph)
    chain = _chain(graph)
    start = graph.nodes[chain[0]]
    shape = _input_shape(start, [graph.nodes[name] for name in chain[1:-1]])
    out = Imported([], [], shape)
    pending_sum: tuple[str, float] | None = None  # a sum pool's k*k, folded into the next layer's weights
    inner = chain[1:-1]
    fired = set()  # Threshold nodes read as the spike of the leaky integrator before them
    for position, name in enumerate(inner):
        node = graph.nodes[name]
        where = f"node {name} ({type(node).__name__})"
        if name in fired:
            continue
        if isinstance(node, (nir.LI, nir.CubaLI)) and position + 1 < len(inner):
            following = graph.nodes[inner[position + 1]]
            if isinstance(following, nir.Threshold):
                fired.add(inner[position + 1])
                node = _Fired(node, following.threshold)
        if isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d)):
            layer, tensors, shape = _weighted(node, shape, where)
            if pending_sum is not None:
                tensors["op.weight"] = tensors["op.weight"] * np.float32(pending_sum[1])
                out.notes.append(f"{pending_sum[0]}: sum pooling read as average pooling, its {pending_sum[1]:g} "
                                 f"folded into the weights of {name}")  # fmt: skip
                pending_sum = None
            out.layers.append(layer)
            out.tensors.append(tensors)
        elif isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, _Fired, nir.NIRGraph)):
            if not out.layers or out.layers[-1]["type"] not in ("linear", "conv2d") or "neuron" in out.layers[-1]:
                after = f"after {out.layers[-1]['type']}" if out.layers else "on the input"
                raise NIRError(f"{where}: a neuron {after}: snnlab puts a neuron only after a linear or conv2d layer")
            if pending_sum is not None:
                raise NIRError(f"{pending_sum[0]}: sum pooling before a neuron: snnlab pools by averaging, and no "
                               "weights follow to take the pool's k*k")  # fmt: skip
            if isinstance(node, nir.NIRGraph):
                neuron, tensors, scale = _recurrent(node, shape, dt, where)
            else:
                neuron, tensors, scale = _neuron(node, shape, dt, where)
            if scale is not None:
                _fold(out.tensors[-1], scale, where)
                if "neuron.recurrent.weight" in tensors:  # the fed-back spikes reach the membrane scaled too
                    recurrent = {"op.weight": tensors.pop("neuron.recurrent.weight"),
                                 "op.bias": tensors.pop("neuron.recurrent.bias")}  # fmt: skip
                    _fold(recurrent, scale, where)
                    tensors.update({f"neuron.recurrent.{key[3:]}": value for key, value in recurrent.items()})
                out.notes.append(f"{name}: its input scale r*dt/tau (here {_show(scale)}) is folded into the "
                                 f"weights before it")  # fmt: skip
            out.layers[-1]["neuron"] = neuron
            out.tensors[-1].update(tensors)
        elif isinstance(node, nir.Flatten):
            flat = _flattened(node, shape, where)
            if flat != shape:
                out.layers.append({"type": "flatten"})
                out.tensors.append({})
            shape = flat
        elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            k, s = _pool(node, shape, where)
            out.layers.append({"type": "avgpool", "kernel_size": k, "stride": s})
            out.tensors.append({})
            shape = shapes.layer_output("avgpool", out.layers[-1], shape)
            if isinstance(node, nir.SumPool2d):
                pending_sum = (name, float(k * k))
        else:
            raise NIRError(f"{where}: snnlab has no layer for NIR's {type(node).__name__}")
    if pending_sum is not None:
        raise NIRError(f"{pending_sum[0]}: sum pooling at the end: snnlab pools by averaging, and no weights follow")
    if not out.layers or "neuron" not in out.layers[-1]:
        raise NIRError(f"the graph ends in {type(graph.nodes[chain[-2]]).__name__} (node {chain[-2]}): snnlab's "
                       "output layer is a linear or conv2d layer with a neuron")  # fmt: skip
    return out


def _with_recurrent_subgraphs(graph: nir.NIRGraph) -> nir.NIRGraph:
    """The graph with each loop of a LIF (CubaLIF) and a dense node that only feeds it back made one recurrent
    subgraph, as snnTorch's import does: nirtorch writes snnTorch's RLeaky flat, its ``1.lif`` and ``1.w_rec``
    among the other nodes."""
    nodes, edges = dict(graph.nodes), sorted(set(graph.edges))
    for cell, dense in [(a, b) for a, b in edges if (b, a) in edges]:
        if not (
            isinstance(nodes.get(cell), (nir.LIF, nir.CubaLIF))
            and isinstance(nodes.get(dense), (nir.Affine, nir.Linear))
        ):
            continue
        if [e for e in edges if dense in e] != sorted([(cell, dense), (dense, cell)]):
            continue  # the dense node reaches elsewhere too: not a recurrence
        size = np.array([np.asarray(nodes[dense].weight).shape[0]])
        loop = {"input": nir.Input(input_type={"input": size}), "lif": nodes[cell], "w_rec": nodes.pop(dense),
                "output": nir.Output(output_type={"output": size})}  # fmt: skip
        inner = [("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")]
        nodes[cell] = nir.NIRGraph(nodes=loop, edges=inner, type_check=False)
        edges = [e for e in edges if dense not in e]
    if len(nodes) == len(graph.nodes):
        return graph
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph.metadata, type_check=False)


def _chain(graph: nir.NIRGraph) -> list[str]:
    """The node names from the input to the output of a graph that is one chain; else a NIRError."""
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRError(f"the graph has {len(inputs)} inputs and {len(outputs)} outputs: snnlab builds networks with "
                       "one of each")  # fmt: skip
    edges = sorted(set(graph.edges))
    successors: dict[str, list[str]] = {}
    for a, b in edges:
        successors.setdefault(a, []).append(b)
    chain = [inputs[0]]
    while chain[-1] != outputs[0]:
        following = successors.get(chain[-1], [])
        if len(following) != 1:
            what = "no successor" if not following else f"{len(following)} successors ({', '.join(following)})"
            raise NIRError(f"node {chain[-1]} has {what}: snnlab reads feed-forward chains only")
        if following[0] in chain:
            raise NIRError(f"node {following[0]} is reached twice (a recurrent loop): snnlab reads feed-forward "
                           "chains only")  # fmt: skip
        chain.append(following[0])
    unused = set(graph.nodes) - set(chain)
    if unused or len(edges) != len(chain) - 1:
        extra = ", ".join(sorted(unused)) or "edges besides the chain"
        raise NIRError(f"the graph has {extra} off the path from input to output: snnlab reads feed-forward "
                       "chains only")  # fmt: skip
    return chain


def _input_shape(node: Any, following: list[Any]) -> tuple[int, ...]:
    """The input per sample and step; a leading batch axis of 1 (a graph traced with a batch) is dropped."""
    shape = tuple(int(v) for v in np.asarray(node.input_type["input"]).reshape(-1))
    first = following[0] if following else None
    wants = 3 if isinstance(first, (nir.Conv2d, nir.AvgPool2d, nir.SumPool2d)) else None
    if isinstance(first, (nir.Affine, nir.Linear)):
        wants = 1
    if wants is not None and len(shape) == wants + 1 and shape[0] == 1:
        shape = shape[1:]
    if not shape or any(v < 1 for v in shape):
        raise NIRError(f"the input node has shape {list(shape)}: snnlab needs a known input shape")
    return shape


def _show(value: np.ndarray | float) -> str:
    values = np.unique(np.asarray(value))
    return f"{values[0]:g}" if values.size == 1 else f"{values.min():g} to {values.max():g}"


def _uniform(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A node's parameter as float64 of the layer's shape (a NIR file may hold one value for all)."""
    array = np.asarray(value, dtype=np.float64)
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        raise NIRError(f"a parameter of shape {list(array.shape)} does not fit the layer's {list(shape)}") from None


def _weighted(node: Any, shape: tuple[int, ...], where: str) -> tuple[dict[str, Any], dict[str, np.ndarray], tuple]:
    weight = np.asarray(node.weight, dtype=np.float32)
    if isinstance(node, (nir.Affine, nir.Linear)):
        if len(shape) != 1:
            raise NIRError(f"{where}: a dense layer on input {list(shape)}: a flatten must come first")
        if weight.ndim != 2 or weight.shape[1] != shape[0]:
            raise NIRError(f"{where}: weight {list(weight.shape)} does not take the {shape[0]} inputs before it")
        tensors = {"op.weight": weight}
        if isinstance(node, nir.Affine):
            tensors["op.bias"] = np.asarray(node.bias, dtype=np.float32).reshape(weight.shape[0])
        layer = {"type": "linear", "out_features": int(weight.shape[0]), "bias": isinstance(node, nir.Affine)}
        return layer, tensors, (int(weight.shape[0]),)
    if len(shape) != 3 or weight.ndim != 4 or weight.shape[1] != shape[0]:
        raise NIRError(f"{where}: weight {list(weight.shape)} does not fit input {list(shape)} ([C, H, W])")
    if int(node.groups) != 1 or any(int(d) != 1 for d in np.atleast_1d(node.dilation)):
        raise NIRError(f"{where}: groups or dilation other than 1: snnlab's conv2d has neither")
    if weight.shape[2] != weight.shape[3]:
        raise NIRError(f"{where}: kernel {list(weight.shape[2:])}: snnlab's conv2d takes square kernels")
    k = int(weight.shape[2])
    stride = sorted({int(v) for v in np.atleast_1d(node.stride)})
    padding: Any = node.padding
    if isinstance(padding, (str, bytes)):
        padding = padding.decode() if isinstance(padding, bytes) else padding
        if padding == "same" and stride == [1] and k % 2 == 1:
            padding = [k // 2]
        elif padding == "valid":
            padding = [0]
        else:
            raise NIRError(f"{where}: padding {padding!r} with kernel {k}, stride {stride}: snnlab takes a number")
    pads = sorted({int(v) for v in np.atleast_1d(padding)})
    if len(stride) != 1 or len(pads) != 1:
        raise NIRError(f"{where}: stride {stride} and padding {pads} differ by axis: snnlab's conv2d takes one of each")
    bias = np.asarray(node.bias, dtype=np.float32).reshape(weight.shape[0])
    hint = _hint(node)
    layer = {"type": "conv2d", "out_channels": int(weight.shape[0]), "kernel_size": k, "stride": stride[0],
             "padding": pads[0], "bias": not (hint.get("bias") is False and not bias.any())}  # fmt: skip
    tensors = {"op.weight": weight}
    if layer["bias"]:
        tensors["op.bias"] = bias
    try:
        return layer, tensors, shapes.layer_output("conv2d", layer, shape)
    except ValueError as exc:
        raise NIRError(f"{where}: {exc}") from None


def _flattened(node: Any, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    start, end = int(node.start_dim), int(node.end_dim)
    start, end = start % len(shape), end % len(shape)
    if start != 0 or end != len(shape) - 1:
        raise NIRError(f"{where}: flattens axes {start} to {end} of {list(shape)}: snnlab flattens a whole sample")
    return (math.prod(shape),)


def _pool(node: Any, shape: tuple[int, ...], where: str) -> tuple[int, int]:
    kernel = sorted({int(v) for v in np.atleast_1d(node.kernel_size)})
    stride = sorted({int(v) for v in np.atleast_1d(node.stride)})
    if len(kernel) != 1 or len(stride) != 1:
        raise NIRError(f"{where}: kernel {kernel} or stride {stride} differ by axis: snnlab pools square windows")
    if np.any(np.atleast_1d(node.padding) != 0):
        raise NIRError(f"{where}: padding: snnlab's pooling has none")
    if len(shape) != 3:
        raise NIRError(f"{where}: pooling on input {list(shape)}: it needs [C, H, W]")
    return kernel[0], stride[0]


def _hint(node: Any) -> dict[str, Any]:
    """What snnlab wrote into a node's metadata (nothing for files from elsewhere)."""
    raw = (getattr(node, "metadata", None) or {}).get("snnlab")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    try:
        hint = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return {}
    return hint if isinstance(hint, dict) else {}


def _scale(value: np.ndarray) -> np.ndarray | None:
    """An input scale, or None where it is 1 (to float rounding)."""
    return None if np.allclose(value, 1.0, rtol=_SCALE_RTOL, atol=0) else value


def _fold(tensors: dict[str, np.ndarray], scale: np.ndarray, where: str) -> None:
    """Multiply the weights (and bias) of a layer by a per-output scale ``[N]`` or ``[C, H, W]`` (one per channel)."""
    weight = tensors["op.weight"]
    if scale.ndim == 3:
        per_channel = scale.reshape(scale.shape[0], -1)
        if not np.all(per_channel == per_channel[:, :1]):
            raise NIRError(f"{where}: its input scale r*dt/tau varies within a channel: a conv layer cannot take it")
        scale = per_channel[:, 0]
    factor = scale.astype(np.float32)
    tensors["op.weight"] = weight * factor.reshape(-1, *([1] * (weight.ndim - 1)))
    if "op.bias" in tensors:
        tensors["op.bias"] = tensors["op.bias"] * factor


def _per_neuron(
    name: str, value: np.ndarray, shape: tuple[int, ...], keep_list: bool, where: str
) -> tuple[float | list[float], np.ndarray]:
    """A neuron parameter for the config (one number when all are equal, else a list for an [N] layer) and the
    tensor its module holds (``[]`` or ``[N]``)."""
    value32 = value.astype(np.float32)
    flat = value32.reshape(-1)
    if np.all(flat == flat[0]) and not (keep_list and len(shape) == 1):
        return float(flat[0]), np.asarray(flat[0])
    if len(shape) != 1:
        raise NIRError(f"{where}: {name} varies across the {list(shape)} neurons of a conv layer: snnlab takes one "
                       f"{name} per conv layer")  # fmt: skip
    return [float(v) for v in flat], flat


def _decay(tau: np.ndarray, dt: float, where: str, name: str) -> np.ndarray:
    decay = 1 - dt / tau
    if not np.all((decay >= 0) & (decay <= 1)):
        raise NIRError(f"{where}: {name} = 1 - dt/tau outside [0, 1] (tau {_show(tau)}, dt {dt:g}): the Euler step "
                       "is unstable for tau < dt; give the file's time step with --dt")  # fmt: skip
    return decay


def _neuron(node: Any, shape: tuple[int, ...], dt: float, where: str) -> tuple[dict[str, Any], dict, Any]:
    """(the config's neuron mapping, its tensors, the input scale to fold into the weights before it or None)."""
    hint = _hint(node.integrator if isinstance(node, _Fired) else node)
    kind = hint.get("type")
    keep = set(hint.get("per_neuron", []))
    settings = {key: hint[key] for key in TRAINING_SETTINGS if key in hint}
    if isinstance(node, _Fired):
        return _without_reset(node, shape, dt, where, keep, settings)
    if isinstance(node, nir.CubaLI):
        raise NIRError(f"{where}: a CubaLI that no Threshold reads: snnlab's readout (expon) has no synaptic current")
    if isinstance(node, nir.LI):
        if np.any(_uniform(node.v_leak, shape) != 0):
            raise NIRError(f"{where}: v_leak other than 0: snnlab's readout (expon) leaks towards 0")
        tau = _uniform(node.tau, shape)
        beta, beta_t = _per_neuron("beta", _decay(tau, dt, where, "beta"), shape, "beta" in keep, where)
        spec = {"type": "expon", "beta": beta, **{k: v for k, v in settings.items() if k == "learn_beta"}}
        return spec, {"neuron.beta": beta_t}, _scale(_uniform(node.r, shape) * dt / tau)
    threshold = _uniform(node.v_threshold, shape)
    if not np.all(threshold > 0):
        raise NIRError(f"{where}: v_threshold {_show(threshold)}: snnlab's thresholds are > 0")
    v_reset = _uniform(node.v_reset, shape) if getattr(node, "v_reset", None) is not None else np.zeros(shape)
    sj_settings = {k: v for k, v in settings.items() if k in ("surrogate", "surrogate_params", "detach_reset")}
    if isinstance(node, nir.IF):
        v_th, v_r = _one(threshold, "v_threshold", where), _one(v_reset, "v_reset", where)
        spec = {"type": "if", "threshold": v_th, "v_reset": v_r, **sj_settings}
        return spec, {}, _scale(_uniform(node.r, shape) * dt)
    v_leak = _uniform(node.v_leak, shape)
    if isinstance(node, nir.LIF) and (kind in ("lif", "plif") or np.any(v_leak != 0) or np.any(v_reset != 0)):
        return _spikingjelly_lif(node, shape, dt, where, kind == "plif", threshold, v_leak, v_reset, sj_settings)
    if np.any(v_leak != 0) or np.any(v_reset != 0):
        raise NIRError(f"{where}: v_leak {_show(v_leak)} and v_reset {_show(v_reset)}: snnlab's synaptic neuron "
                       "leaks to 0 and resets to 0")  # fmt: skip
    base = {"reset": "zero", "reset_delay": False, **settings}
    base.pop("detach_reset", None)
    if isinstance(node, nir.LIF) and kind == "lapicque":
        lapicque = _lapicque(node, shape, dt, where, threshold, base)
        if lapicque is not None:
            return lapicque
    if isinstance(node, nir.LIF):
        tau = _uniform(node.tau, shape)
        beta, beta_t = _per_neuron("beta", _decay(tau, dt, where, "beta"), shape, "beta" in keep, where)
        th, th_t = _per_neuron("threshold", threshold, shape, "threshold" in keep, where)
        base.pop("learn_alpha", None)
        spec = {"type": "leaky", "beta": beta, "threshold": th, **base}
        return spec, {"neuron.beta": beta_t, "neuron.threshold": th_t}, _scale(_uniform(node.r, shape) * dt / tau)
    tau_syn, tau_mem = _uniform(node.tau_syn, shape), _uniform(node.tau_mem, shape)
    alpha_v = _decay(tau_syn, dt, where, "alpha").astype(np.float32)
    if np.any(alpha_v.reshape(-1) != alpha_v.reshape(-1)[0]):
        raise NIRError(f"{where}: tau_syn varies across neurons: snnlab's synaptic neuron takes one alpha per layer")
    beta, beta_t = _per_neuron("beta", _decay(tau_mem, dt, where, "beta"), shape, "beta" in keep, where)
    th, th_t = _per_neuron("threshold", threshold, shape, "threshold" in keep, where)
    alpha = float(alpha_v.reshape(-1)[0])
    spec = {"type": "synaptic", "alpha": alpha, "beta": beta, "threshold": th, **base}
    # I[t] = alpha*I[t-1] + (w_in*dt/tau_syn)*S[t] and v[t] = beta*v[t-1] + (r*dt/tau_mem)*I[t]: both scales
    # reach v only through I, so one factor on the weights gives v exactly (I is scaled by the second).
    scale = _uniform(node.w_in, shape) * dt / tau_syn * _uniform(node.r, shape) * dt / tau_mem
    tensors = {"neuron.alpha": np.asarray(np.float32(alpha)), "neuron.beta": beta_t, "neuron.threshold": th_t}
    return spec, tensors, _scale(scale)


def _one(value: np.ndarray, name: str, where: str) -> float:
    flat = value.reshape(-1)
    if not np.all(flat == flat[0]):
        raise NIRError(f"{where}: {name} varies across neurons ({_show(value)}): this snnlab neuron takes one {name}")
    return float(np.float32(flat[0]))


def _spikingjelly_lif(
    node: Any,
    shape: tuple[int, ...],
    dt: float,
    where: str,
    parametric: bool,
    threshold: np.ndarray,
    v_leak: np.ndarray,
    v_reset: np.ndarray,
    settings: dict[str, Any],
) -> tuple[dict[str, Any], dict, Any]:
    """A LIF that leaks towards its reset value: SpikingJelly's lif (or plif), tau in steps."""
    if not np.array_equal(v_leak, v_reset):
        raise NIRError(f"{where}: v_leak {_show(v_leak)} differs from v_reset {_show(v_reset)}: snnlab's neurons leak "
                       "towards the value they reset to")  # fmt: skip
    steps = float(f"{_one(_uniform(node.tau, shape) / dt, 'tau', where):.9g}")  # tau*dt/dt, rounding undone
    if not steps > 1:
        raise NIRError(f"{where}: tau/dt = {steps:g}: SpikingJelly's lif needs a time constant above one step")
    r = _one(_uniform(node.r, shape), "r", where)
    spec = {"type": "plif" if parametric else "lif", "tau": steps, "threshold": _one(threshold, "v_threshold", where),
            "v_reset": _one(v_reset, "v_reset", where), **settings}  # fmt: skip
    if math.isclose(r, 1.0, rel_tol=_SCALE_RTOL):
        return {**spec, "decay_input": True}, _plif_tensors(parametric, steps), None
    if math.isclose(r, steps, rel_tol=_SCALE_RTOL):
        return {**spec, "decay_input": False}, _plif_tensors(parametric, steps), None
    # h = v + (v_r - v + r*x)/tau: decay_input with the input scaled by r
    return {**spec, "decay_input": True}, _plif_tensors(parametric, steps), np.full(shape, r)


def _plif_tensors(parametric: bool, steps: float) -> dict[str, np.ndarray]:
    return {"neuron.w": np.asarray(-math.log(steps - 1.0), dtype=np.float32)} if parametric else {}


@dataclass
class _Fired:
    """A leaky integrator (LI or CubaLI) and the Threshold that reads it: a neuron without a reset."""

    integrator: Any
    threshold: Any


def _without_reset(
    node: _Fired, shape: tuple[int, ...], dt: float, where: str, keep: set[str], settings: dict[str, Any]
) -> tuple[dict[str, Any], dict, Any]:
    """leaky (LI) or synaptic (CubaLI) with ``reset: none``: the integrator's membrane, spiking where a Threshold
    node reads it above its threshold."""
    li = node.integrator
    threshold = _uniform(node.threshold, shape)
    if not np.all(threshold > 0):
        raise NIRError(f"{where}: threshold {_show(threshold)}: snnlab's thresholds are > 0")
    if np.any(_uniform(li.v_leak, shape) != 0):
        raise NIRError(f"{where}: v_leak other than 0: snnlab's neurons without a reset leak towards 0")
    th, th_t = _per_neuron("threshold", threshold, shape, "threshold" in keep, where)
    base = {"reset": "none", **{k: v for k, v in settings.items() if k != "detach_reset"}}
    if isinstance(li, nir.LI):
        tau = _uniform(li.tau, shape)
        beta, beta_t = _per_neuron("beta", _decay(tau, dt, where, "beta"), shape, "beta" in keep, where)
        base.pop("learn_alpha", None)
        spec = {"type": "leaky", "beta": beta, "threshold": th, **base}
        return spec, {"neuron.beta": beta_t, "neuron.threshold": th_t}, _scale(_uniform(li.r, shape) * dt / tau)
    tau_syn, tau_mem = _uniform(li.tau_syn, shape), _uniform(li.tau_mem, shape)
    alpha = _one(_decay(tau_syn, dt, where, "alpha"), "tau_syn", where)
    beta, beta_t = _per_neuron("beta", _decay(tau_mem, dt, where, "beta"), shape, "beta" in keep, where)
    spec = {"type": "synaptic", "alpha": alpha, "beta": beta, "threshold": th, **base}
    scale = _uniform(li.w_in, shape) * dt / tau_syn * _uniform(li.r, shape) * dt / tau_mem
    tensors = {"neuron.alpha": np.asarray(np.float32(alpha)), "neuron.beta": beta_t, "neuron.threshold": th_t}
    return spec, tensors, _scale(scale)


def _lapicque(
    node: Any, shape: tuple[int, ...], dt: float, where: str, threshold: np.ndarray, base: dict[str, Any]
) -> tuple[dict[str, Any], dict, Any] | None:
    """A LIF snnlab wrote from a lapicque neuron, back with its R and C (None where they vary across neurons:
    then it reads as a leaky neuron, the same equation)."""
    r, tau = _uniform(node.r, shape).reshape(-1), _uniform(node.tau, shape).reshape(-1)
    if not (np.all(r == r[0]) and np.all(tau == tau[0])) or dt > tau[0]:
        return None
    th, th_t = _per_neuron("threshold", threshold, shape, False, where)
    R, C = float(r[0]), float(tau[0] / r[0])
    spec = {"type": "lapicque", "R": R, "C": C, "time_step": dt, "threshold": th,
            **{k: v for k, v in base.items() if k not in ("learn_beta", "learn_alpha")}}  # fmt: skip
    # the module derives its decay 1 - dt/(R*C) and input scale dt/C from these itself
    decay = np.float32(1 - dt / (R * C))
    return spec, {"neuron.beta": np.asarray(decay), "neuron.threshold": th_t}, None


def _recurrent(node: nir.NIRGraph, shape: tuple[int, ...], dt: float, where: str) -> tuple[dict[str, Any], dict, Any]:
    """A recurrent subgraph as snnTorch writes RLeaky and RSynaptic (Input -> LIF or CubaLIF <-> Affine or Linear,
    LIF -> Output): rleaky or rsynaptic, the recurrence all-to-all, or one gain V when W_rec is a uniform diagonal."""
    kinds: dict[str, list[str]] = {}
    for key, inner in node.nodes.items():
        kinds.setdefault(type(inner).__name__, []).append(key)
    cells = kinds.get("LIF", []) + kinds.get("CubaLIF", [])
    dense = kinds.get("Affine", []) + kinds.get("Linear", [])
    if len(node.nodes) != 4 or len(cells) != 1 or len(dense) != 1 or not kinds.get("Input") or not kinds.get("Output"):
        raise NIRError(f"{where}: a subgraph of {', '.join(sorted(kinds))}: snnlab reads subgraphs only as a recurrent "
                       "layer (Input, LIF or CubaLIF, its Affine or Linear W_rec, Output)")  # fmt: skip
    cell, w_rec = node.nodes[cells[0]], node.nodes[dense[0]]
    if not {(cells[0], dense[0]), (dense[0], cells[0])} <= set(node.edges):
        raise NIRError(f"{where}: its {dense[0]} does not feed {cells[0]} back: not a recurrent layer")
    spec, tensors, scale = _neuron(cell, shape, dt, f"{where} {cells[0]}")
    if spec["type"] not in ("leaky", "synaptic") or spec.get("reset") != "zero":
        raise NIRError(f"{where}: a recurrent {spec['type']} neuron: snnlab's recurrent neurons are leaky and synaptic")
    spec["type"] = "r" + spec["type"]
    weight = np.asarray(w_rec.weight, dtype=np.float32)
    n = shape[0] if len(shape) == 1 else 0
    if weight.shape != (n, n):
        raise NIRError(f"{where}: W_rec of shape {list(weight.shape)} for {list(shape)} neurons: snnlab's recurrence "
                       "maps [N] neurons to themselves")  # fmt: skip
    bias = np.asarray(w_rec.bias, dtype=np.float32).reshape(n) if isinstance(w_rec, nir.Affine) else np.zeros(n)
    diagonal = np.diag(weight)
    one_gain = np.array_equal(weight, np.diag(diagonal)) and np.all(diagonal == diagonal[0])
    if scale is None and not bias.any() and one_gain:
        spec.update(all_to_all=False, V=float(diagonal[0]))
        tensors["neuron.V"] = np.asarray(diagonal[0])
    else:
        spec["all_to_all"] = True
        tensors.update({"neuron.recurrent.weight": weight, "neuron.recurrent.bias": bias.astype(np.float32)})
    return spec, tensors, scale
