"""The benchmark networks, written the way each library's own tutorials write them.

Cases (all time-first, ``[T, B, ...]``):

- ``fc-direct``: snnTorch tutorial 5, 784-1000-10 with Leaky neurons (beta 0.95), B=128, T=25, the static
  image fed at every step, loss = sum over steps of the cross-entropy of the output membrane.
- ``fc-rate``: the same network fed Bernoulli (Poisson rate) spikes drawn inside the step.
- ``conv-direct``: conv 12 k5 -> LIF -> maxpool 2 -> conv 32 k5 -> LIF -> maxpool 2 -> fc 10 -> LIF on
  28x28 images, B=128, T=10.
- ``long-T100`` / ``long-T500`` / ``long-T1000``: one layer of 1,000 Leaky neurons driven by random
  currents ``[T, 32, 1000]`` that require grad; loss = spikes.sum() + membrane.sum(); no weights, so the
  "step" is forward + loss + backward. Memory is the point of these.

Libraries: ``snnlab`` (fused kernels, the default), ``snnlab-ref`` (``model.set_fused(False)``, plain
autograd), ``snntorch`` (``snn.Leaky`` stepped in a Python loop, tutorial 5 style) and ``spikingjelly``
(``activation_based``, multi-step ``LIFNode``). Every builder returns a :class:`Bench` whose ``step()``
is one full training step: encode, forward, loss, backward, optimizer step.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnlab.engine import encoders, losses
from snnlab.engine.models import build_model
from snnlab.engine.neurons import Leaky

BETA = 0.95
LR = 5e-4  # tutorial 5's Adam settings
LIBRARIES = ("floor", "snnlab", "snnlab-modules", "snnlab-bf16", "snnlab-ref", "snntorch", "spikingjelly")


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "fc" | "conv" | "long"
    encoding: str  # "direct" | "rate" | "current"
    batch: int
    time_steps: int
    note: str = ""


CASES = (
    Case("fc-direct", "fc", "direct", 128, 25, "tutorial 5: 784-1000-10, static image every step"),
    Case("fc-rate", "fc", "rate", 128, 25, "784-1000-10, Poisson (Bernoulli) input"),
    Case("conv-direct", "conv", "direct", 128, 10, "c12k5-LIF-mp2-c32k5-LIF-mp2-fc10-LIF"),
    Case("long-T100", "long", "current", 32, 100, "1 Leaky layer x 1000, random currents"),
    Case("long-T500", "long", "current", 32, 500, "1 Leaky layer x 1000, random currents"),
    Case("long-T1000", "long", "current", 32, 1000, "1 Leaky layer x 1000, random currents"),
)
CASE_BY_NAME = {c.name: c for c in CASES}


def peer_versions() -> dict[str, str | None]:
    """Installed version of each peer, or None when it does not import."""
    versions: dict[str, str | None] = {}
    for lib, module in (("snntorch", "snntorch"), ("spikingjelly", "spikingjelly.activation_based.neuron")):
        try:
            importlib.import_module(module)
            from importlib.metadata import version

            versions[lib] = version(lib)
        except Exception as exc:  # a peer that fails to import is skipped, with the reason
            versions[lib] = None
            versions[f"{lib}_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return versions


# ---------------------------------------------------------------------------------------------- inputs


def images(batch: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``batch`` Fashion-MNIST images ``[B, 1, 28, 28]`` in [0, 1] from the bundled sample, and labels."""
    from snnlab.engine.data import load_dataset

    split = load_dataset("bundled").train
    return split.inputs[:batch].to(device), split.labels[:batch].to(device)


def currents(case: Case, device: torch.device, seed: int = 0) -> Tensor:
    """Random input currents ``[T, B, 1000]`` in [0, 0.2): about one spike every ten steps at beta 0.95."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(case.time_steps, case.batch, 1000, generator=g) * 0.2).to(device)


def rate_spikes(x: Tensor, time_steps: int, generator: torch.Generator | None = None) -> Tensor:
    return encoders.rate(x, time_steps, generator=generator)


# ---------------------------------------------------------------------------------------------- benches


@dataclass
class Bench:
    """One library's network on one case. ``step()`` is one full training step."""

    model: nn.Module
    loss: Callable[[], Tensor]  # encode + forward + loss (a graph ready for backward)
    optimizer: torch.optim.Optimizer | None
    leaves: list[Tensor] = field(default_factory=list)  # inputs that require grad (long cases)
    backend: str = ""

    def clear_grads(self) -> None:
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        for leaf in self.leaves:
            leaf.grad = None

    def step(self) -> Tensor:
        self.clear_grads()
        loss = self.loss()
        loss.backward()
        if self.optimizer is not None:
            self.optimizer.step()
        return loss.detach()


def snnlab_layers(kind: str, beta: float = BETA, reset: str = "subtract") -> list[dict]:
    neuron = {"type": "leaky", "beta": beta, "reset": reset}
    if kind == "fc":
        return [
            {"type": "flatten"},
            {"type": "linear", "out_features": 1000, "neuron": neuron},
            {"type": "linear", "out_features": 10, "neuron": neuron},
        ]
    if kind == "conv":
        return [
            {"type": "conv2d", "out_channels": 12, "kernel_size": 5, "neuron": neuron},
            {"type": "maxpool", "kernel_size": 2},
            {"type": "conv2d", "out_channels": 32, "kernel_size": 5, "neuron": neuron},
            {"type": "maxpool", "kernel_size": 2},
            {"type": "flatten"},
            {"type": "linear", "out_features": 10, "neuron": neuron},
        ]
    raise ValueError(kind)


def build(library: str, case: Case, device: torch.device) -> Bench:
    torch.manual_seed(0)
    builder = {"floor": _snnlab, "snnlab": _snnlab, "snnlab-modules": _snnlab_modules, "snnlab-bf16": _snnlab,
               "snnlab-ref": _snnlab, "snntorch": _snntorch, "spikingjelly": _spikingjelly}  # fmt: skip
    return builder[library](case, device, library)


def _adam(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=LR, betas=(0.9, 0.999))


def _snnlab(case: Case, device: torch.device, library: str) -> Bench:
    fused = library != "snnlab-ref"
    # snnlab-bf16: train.precision bfloat16, i.e. the layers under autocast and the neurons in float32.
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=library == "snnlab-bf16")
    if case.kind == "long":
        lif = Leaky(beta=BETA, fused=fused).to(device)
        x = currents(case, device).requires_grad_(True)

        def long_loss() -> Tensor:
            spk, mem = lif(x)
            return spk.sum() + mem.sum()

        return Bench(lif, long_loss, None, [x], "fused" if fused else "reference")
    model = build_model(snnlab_layers(case.kind), (1, 28, 28)).to(device)
    model.set_fused(fused)
    if library == "floor":
        from snnlab.engine.allocator import keep_freed_memory

        keep_freed_memory()  # as snnlab's scans set it when they load: the floor of snnlab's own process
        for block in model.blocks:
            if block.neuron is not None:
                block.neuron = NoNeuron()
    x, y = images(case.batch, device)
    gen = torch.Generator(device=device).manual_seed(1)

    def loss() -> Tensor:
        inputs = encoders.encode(case.encoding, x, case.time_steps, generator=gen)
        with autocast:
            out = model(inputs)
            return losses.ce_membrane(out.spikes, out.membrane, y)

    backend = ("fused" if fused else "reference") + (", bfloat16 layers" if library == "snnlab-bf16" else "")
    if library == "floor":
        backend = "snnlab's layers, no neuron"
    return Bench(model, loss, _adam(model), backend=backend)


class NoNeuron(nn.Module):
    """In place of a neuron: its input current passes as both spikes and membrane. A network of these does
    the layers' work (matmuls, convolutions, pooling), the loss and the optimizer step, and nothing else: the
    floor that no neuron implementation can go below (the "floor" rows)."""

    def forward(self, current: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        seq = current.expand(time_steps, *current.shape) if time_steps is not None else current
        return seq, seq


class ModulesFC(nn.Module):
    """Tutorial 5's network as a user writes it with snnlab's modules in their own loop: ``nn.Linear`` and
    ``snnlab.engine.neurons.Leaky`` on whole ``[T, B, N]`` sequences, no config, no trainer. The image is
    the same at every step, so ``fc1`` runs once on it and its current is repeated over the steps (as a
    ``[T, B, 1000]`` view); Poisson spikes differ per step and go through ``fc1`` whole."""

    def __init__(self, beta: float = BETA):
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(784, 1000), Leaky(beta=beta)
        self.fc2, self.lif2 = nn.Linear(1000, 10), Leaky(beta=beta)

    def forward(self, x: Tensor, time_steps: int | None = None) -> tuple[Tensor, Tensor]:
        """``x``: a batch of images ``[B, ...]`` with ``time_steps``, or a sequence ``[T, B, ...]``."""
        if time_steps is not None:
            cur1 = self.fc1(x.flatten(1))
            cur1 = cur1.expand(time_steps, *cur1.shape)
        else:
            cur1 = self.fc1(x.flatten(2))
        spk1, _ = self.lif1(cur1)
        return self.lif2(self.fc2(spk1))


def _snnlab_modules(case: Case, device: torch.device, library: str) -> Bench:
    """snnlab without the engine around it: the modules, plain Adam, the loop below (fc cases only)."""
    if case.kind != "fc":
        raise ValueError(f"snnlab-modules is written for the fc cases, not {case.name}")
    model = ModulesFC().to(device)
    x, y = images(case.batch, device)
    gen = torch.Generator(device=device).manual_seed(1)

    def loss() -> Tensor:
        if case.encoding == "rate":
            spk, mem = model(encoders.rate(x, case.time_steps, generator=gen))
        else:
            spk, mem = model(x, case.time_steps)
        return losses.ce_membrane(spk, mem, y)

    return Bench(model, loss, _adam(model), backend="fused, own loop")


# ---------------------------------------------------------------------------------------------- snnTorch


class SnnTorchFC(nn.Module):
    """snnTorch tutorial 5's network, stepped in Python; ``record`` keeps every layer (for the checks)."""

    def __init__(self, beta: float = BETA, record: bool = False):
        super().__init__()
        import snntorch as snn

        self.fc1, self.lif1 = nn.Linear(784, 1000), snn.Leaky(beta=beta)
        self.fc2, self.lif2 = nn.Linear(1000, 10), snn.Leaky(beta=beta)
        self.record = record

    def forward(self, x_seq: Tensor) -> tuple[Tensor, Tensor, dict]:
        mem1, mem2 = self.lif1.reset_mem(), self.lif2.reset_mem()
        spk2_rec, mem2_rec, hidden = [], [], ([], [])
        for step in range(x_seq.shape[0]):
            cur1 = self.fc1(x_seq[step].flatten(1))
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
            if self.record:
                hidden[0].append(spk1)
                hidden[1].append(mem1)
        spk2, mem2 = torch.stack(spk2_rec), torch.stack(mem2_rec)
        layers = {"fc1": tuple(map(torch.stack, hidden)), "fc2": (spk2, mem2)} if self.record else {}
        return spk2, mem2, layers


class SnnTorchConv(nn.Module):
    """conv-LIF-pool x2 then fc-LIF, stepped in Python as in snnTorch's tutorial 6."""

    def __init__(self, beta: float = BETA, record: bool = False):
        super().__init__()
        import snntorch as snn

        self.conv1, self.lif1 = nn.Conv2d(1, 12, 5), snn.Leaky(beta=beta)
        self.conv2, self.lif2 = nn.Conv2d(12, 32, 5), snn.Leaky(beta=beta)
        self.fc1, self.lif3 = nn.Linear(32 * 4 * 4, 10), snn.Leaky(beta=beta)
        self.record = record

    def forward(self, x_seq: Tensor) -> tuple[Tensor, Tensor, dict]:
        mem1, mem2, mem3 = self.lif1.reset_mem(), self.lif2.reset_mem(), self.lif3.reset_mem()
        rec: dict[str, tuple[list, list]] = {"conv1": ([], []), "conv2": ([], []), "fc1": ([], [])}
        for step in range(x_seq.shape[0]):
            spk1, mem1 = self.lif1(self.conv1(x_seq[step]), mem1)
            spk2, mem2 = self.lif2(self.conv2(F.max_pool2d(spk1, 2)), mem2)
            spk3, mem3 = self.lif3(self.fc1(F.max_pool2d(spk2, 2).flatten(1)), mem3)
            for name, (s, m) in zip(rec, ((spk1, mem1), (spk2, mem2), (spk3, mem3)), strict=True):
                if self.record or name == "fc1":
                    rec[name][0].append(s)
                    rec[name][1].append(m)
        layers = {k: (torch.stack(s), torch.stack(m)) for k, (s, m) in rec.items() if s}
        return *layers["fc1"], layers


class SnnTorchLong(nn.Module):
    def __init__(self, beta: float = BETA, record: bool = False):
        super().__init__()
        import snntorch as snn

        self.lif = snn.Leaky(beta=beta)

    def forward(self, x_seq: Tensor) -> tuple[Tensor, Tensor, dict]:
        mem = self.lif.reset_mem()
        spk_rec, mem_rec = [], []
        # unbind, not x_seq[step]: indexing a leaf that requires grad makes each step's backward write a
        # full [T, B, N] zero tensor (15 s a step at T=500), which would measure PyTorch, not snnTorch.
        for x_t in x_seq.unbind(0):
            spk, mem = self.lif(x_t, mem)
            spk_rec.append(spk)
            mem_rec.append(mem)
        spk, mem = torch.stack(spk_rec), torch.stack(mem_rec)
        return spk, mem, {"lif": (spk, mem)}


SNNTORCH_NETS = {"fc": SnnTorchFC, "conv": SnnTorchConv, "long": SnnTorchLong}


def tutorial_loss(mem_rec: Tensor, targets: Tensor) -> Tensor:
    """snnTorch tutorial 5: ``loss_val += loss(mem_rec[step], targets)`` for every step."""
    loss_val = torch.zeros((1), dtype=mem_rec.dtype, device=mem_rec.device)
    for step in range(mem_rec.shape[0]):
        loss_val += F.cross_entropy(mem_rec[step], targets)
    return loss_val


def _snntorch(case: Case, device: torch.device, library: str) -> Bench:
    from snntorch import spikegen

    model = SNNTORCH_NETS[case.kind]().to(device)
    if case.kind == "long":
        x = currents(case, device).requires_grad_(True)

        def long_loss() -> Tensor:
            spk, mem, _ = model(x)
            return spk.sum() + mem.sum()

        return Bench(model, long_loss, None, [x], "python loop")
    x, y = images(case.batch, device)

    def loss() -> Tensor:
        if case.encoding == "rate":
            x_seq = spikegen.rate(x, num_steps=case.time_steps)
        else:
            x_seq = x.unsqueeze(0).expand(case.time_steps, *x.shape)  # the same image every step
        _, mem_rec, _ = model(x_seq)
        return tutorial_loss(mem_rec, y)

    return Bench(model, loss, _adam(model), backend="python loop")


# ---------------------------------------------------------------------------------------------- SpikingJelly


def sj_lif(beta: float = BETA, reset: str = "subtract", store_v_seq: bool = False, threshold: float = 1.0) -> nn.Module:
    """A SpikingJelly ``LIFNode`` configured as close to snnTorch's Leaky as it goes.

    ``decay_input=False`` and ``tau = 1/(1-beta)`` give ``H[t] = beta*V[t-1] + X[t]``; ``detach_reset``
    matches the detached reset; the ATan surrogate with alpha 2 is the same formula. What cannot match:
    SpikingJelly resets immediately (``V[t] = H[t] - thr*S[t]``, then decays V), so a soft reset
    subtracts ``beta*thr`` from the next step where snnTorch subtracts ``thr``; it fires on ``H >= thr``
    (snnTorch: ``>``); and it records the post-reset V, not the pre-reset membrane. ``reset='zero'``
    (hard reset to 0) agrees exactly with snnlab's ``reset='zero'``.
    """
    from spikingjelly.activation_based import neuron, surrogate

    node = neuron.LIFNode(
        tau=1.0 / (1.0 - beta),
        decay_input=False,
        v_threshold=threshold,
        v_reset=None if reset == "subtract" else 0.0,
        surrogate_function=surrogate.ATan(alpha=2.0),
        detach_reset=True,
        step_mode="m",
        store_v_seq=store_v_seq,
    )
    return node


def sj_backend(device: torch.device) -> str:
    """Which LIF implementation SpikingJelly runs here.

    0.0.0.0.x has a ``backend`` attribute ('torch', 'cupy'); 2.x picks its implementation by device
    (a registered CPU op with a hand-written backward on CPU, native CUDA or Triton kernels on CUDA).
    """
    node = sj_lif()
    if hasattr(node, "backend"):
        return _sj_old_backend(node, device)
    return "auto: sj_lif CPU op" if device.type == "cpu" else "auto: CUDA/Triton kernel"


def _sj_old_backend(node: nn.Module, device: torch.device) -> str:
    if device.type == "cuda":
        for name in ("triton", "cupy"):
            if name in getattr(node, "supported_backends", ()):
                try:
                    importlib.import_module(name)
                    return name
                except ImportError:
                    continue
    return "torch"


def _sj_set_backend(model: nn.Module, backend: str) -> None:
    for m in model.modules():
        if hasattr(m, "backend") and backend in getattr(m, "supported_backends", ()):
            m.backend = backend


def sj_net(
    kind: str, beta: float = BETA, reset: str = "subtract", record: bool = False, threshold: float = 1.0
) -> nn.Module:
    from spikingjelly.activation_based import layer

    def lif(store: bool) -> nn.Module:
        return sj_lif(beta, reset, store, threshold)

    if kind == "fc":
        return nn.Sequential(
            layer.Flatten(step_mode="m"),
            layer.Linear(784, 1000, step_mode="m"),
            lif(record),
            layer.Linear(1000, 10, step_mode="m"),
            lif(True),
        )
    if kind == "conv":
        return nn.Sequential(
            layer.Conv2d(1, 12, 5, step_mode="m"),
            lif(record),
            layer.MaxPool2d(2, step_mode="m"),
            layer.Conv2d(12, 32, 5, step_mode="m"),
            lif(record),
            layer.MaxPool2d(2, step_mode="m"),
            layer.Flatten(step_mode="m"),
            layer.Linear(32 * 4 * 4, 10, step_mode="m"),
            lif(True),
        )
    if kind == "long":
        return nn.Sequential(lif(True))
    raise ValueError(kind)


def sj_forward(model: nn.Module, x_seq: Tensor) -> tuple[Tensor, Tensor]:
    """Output spikes and the output layer's (post-reset) membrane ``V`` over time."""
    from spikingjelly.activation_based import functional

    functional.reset_net(model)
    spikes = model(x_seq)
    return spikes, model[-1].v_seq


def _spikingjelly(case: Case, device: torch.device, library: str) -> Bench:
    model = sj_net(case.kind).to(device)
    backend = sj_backend(device)
    _sj_set_backend(model, backend)
    if case.kind == "long":
        x = currents(case, device).requires_grad_(True)

        def long_loss() -> Tensor:
            spk, v = sj_forward(model, x)
            return spk.sum() + v.sum()

        return Bench(model, long_loss, None, [x], backend)
    x, y = images(case.batch, device)
    gen = torch.Generator(device=device).manual_seed(1)

    def loss() -> Tensor:
        if case.encoding == "rate":
            x_seq = rate_spikes(x, case.time_steps, gen)
        else:
            x_seq = x.unsqueeze(0).repeat(case.time_steps, 1, 1, 1, 1)  # as SpikingJelly's examples do
        _, v_seq = sj_forward(model, x_seq)
        return losses.ce_membrane(v_seq, v_seq, y)

    return Bench(model, loss, _adam(model), backend=backend)
