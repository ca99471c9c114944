"""What a run is built from: ``prepare(config) -> Session`` picks the device, loads the data and builds the
model, optimizer and scheduler (the pre-flight a face runs before it writes anything), and a session's
``state``/``restore`` carry it through a checkpoint together with its :class:`Progress`.

The fit loop that drives a session is ``trainer.py``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from snnlab.engine import checkpoint, distributed, losses, resume, shapes
from snnlab.engine.data import DataError, Split, batches, load_dataset
from snnlab.engine.encoders import encode
from snnlab.engine.events import FailureReason, ProbeRecorded
from snnlab.engine.health import HealthMonitor
from snnlab.engine.kernels import cuda, native
from snnlab.engine.models import SpikingNet, build_model, lr_groups
from snnlab.formatting import first_line

if TYPE_CHECKING:
    from snnlab.config import Config


class TrainingError(Exception):
    """A failure the user can act on, one line, with the reason it ends the run for."""

    def __init__(self, message: str, reason: FailureReason = FailureReason.ERROR):
        super().__init__(message)
        self.reason = reason


@dataclass
class Progress:
    """Where training stands; everything a checkpoint needs besides the module states."""

    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in the epoch under way
    step: int = 0  # optimizer steps
    best_accuracy: float = 0.0
    loss_sum: float = 0.0  # running train metrics of the epoch under way
    correct: int = 0
    seen: int = 0
    last_test: tuple[float, float] | None = None  # (loss, accuracy)
    elapsed: float = 0.0  # wall time of every session of the run up to this state, in seconds


def pick_device(requested: str) -> torch.device:
    """``auto`` prefers CUDA, then Apple's MPS, then the CPU."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            "train.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'", FailureReason.DEVICE
        )
    if requested == "mps" and not torch.backends.mps.is_available():
        raise TrainingError("train.device is 'mps' but MPS is not available; use 'auto' or 'cpu'", FailureReason.DEVICE)
    return torch.device(requested)


def make_optimizer(model: torch.nn.Module, cfg, device: torch.device) -> torch.optim.Optimizer:
    # One group at train.lr, then one per scaled rate (delayed_linear's delays); "lr_scale" stays in the group so
    # that a resume with another train.lr keeps the ratio.
    groups = lr_groups(model)
    params = groups[0][0] if len(groups) == 1 else [
        {"params": ps, "lr": cfg.lr * scale, "lr_scale": scale} for ps, scale in groups
    ]  # fmt: skip
    # The fused implementations update all parameters in one kernel (measured 2.4 -> 0.4 ms per Adam
    # step on the tutorial-5 network on CPU); they exist for CPU and CUDA tensors.
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **fused)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def make_scheduler(optimizer: torch.optim.Optimizer, cfg):
    """Stepped once per epoch."""
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "none":
        return None
    raise ValueError(f"unknown scheduler {cfg.scheduler!r}")


class Session:
    """Everything built from a config: data, model, optimizer. The TUI and benchmarks reuse it."""

    def __init__(
        self, config: Config, device: torch.device | None = None, ctx: distributed.Context = distributed.SINGLE
    ):
        self.config = config
        self.ctx = ctx
        d, t = config.data, config.train
        torch.manual_seed(t.seed)
        self.device = device or pick_device(t.device)
        if ctx.distributed and device is None and self.device.type == "cuda":
            self.device = torch.device("cuda", ctx.local_rank)  # one GPU per process
        self.dataset = load_dataset(
            d.dataset,
            d.data_dir,
            train_size=d.train_size,
            test_size=d.test_size,
            seed=t.seed,
            download=d.download,
            synthetic=d.synthetic.model_dump(),
            time_steps=d.time_steps,
            events=d.events.model_dump(),
        )
        self.train_split = self.dataset.train.to(self.device)
        self.test_split = self.dataset.test.to(self.device)
        input_shape = self.dataset.input_shape[1:] if self.dataset.temporal else self.dataset.input_shape
        self.model: SpikingNet = build_network(config, input_shape).to(self.device)
        if self.model.output_shape != (self.dataset.num_classes,):
            raise TrainingError(
                f"model.layers: the last layer has {list(self.model.output_shape)} outputs but "
                f"{d.dataset} has {self.dataset.num_classes} classes; set its out_features to "
                f"{self.dataset.num_classes}",
                FailureReason.CONFIG,
            )
        # A batchnorm that needs two samples per batch needs them on every rank (each normalises its own slice).
        self.smallest_batch = 1 if config.smallest_batch() == 1 else config.smallest_batch() * ctx.world_size
        if d.batch_size < self.smallest_batch:
            raise TrainingError(
                f"data.batch_size: must be at least {self.smallest_batch} with batchnorm on {ctx.world_size} "
                f"processes, so that each has {config.smallest_batch()} samples (got {d.batch_size})",
                FailureReason.CONFIG,
            )
        if d.drop_last and len(self.train_split) < d.batch_size:  # the config checks this where it knows the size
            raise TrainingError(
                f"data.drop_last: the {len(self.train_split):,} training samples are fewer than one batch of "
                f"{d.batch_size:,}, so every batch would be left out; lower data.batch_size or set drop_last: false",
                FailureReason.CONFIG,
            )
        if t.precision == "bfloat16" and not _bfloat16_ok(self.device):
            raise TrainingError(
                f"train.precision: bfloat16 is not supported on {self.device}"
                + (" (a GPU of compute capability 8.0 or newer has it)" if self.device.type == "cuda" else "")
                + "; set train.precision: float32",
                FailureReason.CONFIG,
            )
        # The module that trains: DDP averages gradients over ranks. ``self.model`` stays the plain
        # module, for checkpoints, evaluation and probes.
        self.trained_model: torch.nn.Module = self.model
        if ctx.distributed:
            device_ids = [self.device] if self.device.type == "cuda" else None
            self.trained_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=device_ids, find_unused_parameters=False
            )
        self.optimizer = make_optimizer(self.model, t, self.device)
        self.scheduler = make_scheduler(self.optimizer, t)
        self.loss_fn = losses.loss_fn(t.loss, **t.loss_params)
        # Per-layer health (run.health): the trainer samples steps into it, evaluate() counts spikes for it.
        self.health = HealthMonitor(self.model, config.run.health) if config.run.health.enabled else None
        self.encoder_generator = torch.Generator(device=self.device).manual_seed(t.seed)

    def autocast(self) -> torch.autocast:
        """Where the forward pass and the loss run: bfloat16 matmuls and convolutions with
        ``train.precision: bfloat16`` (neurons integrate in float32, see ``SpikingNet.forward``)."""
        enabled = self.config.train.precision == "bfloat16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        d = self.config.data
        return encode(
            d.encoder,
            x,
            d.time_steps,
            temporal=self.dataset.temporal,
            generator=generator or self.encoder_generator,
            **d.encoder_params,
        )

    @torch.no_grad()
    def evaluate(self, split: Split | None = None) -> tuple[float, float, dict[str, float]]:
        """Loss, accuracy and spike rate per layer on a whole split (the test split by default).

        The encoder draws from its own fixed-seed generator, so repeated evaluations see the same spikes.
        With several ranks each evaluates its slice of every batch and the sums are added over ranks.
        With ``run.health`` on, the spikes and synaptic operations are counted for the next health report.
        """
        split = split or self.test_split
        self.model.eval()
        generator = torch.Generator(device=self.device).manual_seed(self.config.train.seed + 1)
        loss_sum, correct = 0.0, 0.0
        rates = {block.name: 0.0 for block in self.model.blocks if block.neuron is not None}
        counting = self.health.evaluation(self.ctx) if self.health is not None else contextlib.nullcontext()
        with counting as health:
            for x, y in batches(split, self.config.data.batch_size, shuffle=False):
                inputs = self.encode(x, generator)  # the whole batch, so every rank draws the same spikes
                part = distributed.shard(len(y), self.ctx)
                inputs, y = inputs[:, part], y[part]
                if len(y) == 0:
                    continue
                if health is not None:
                    health.begin(inputs)
                with self.autocast():
                    out = self.model(inputs, record=True)  # every layer's spike rate
                    loss_sum += self.loss_fn(out.spikes, out.membrane, y).item() * len(y)
                correct += int((losses.decode(self.config.train.decoder, out.spikes, out.membrane) == y).sum())
                for name, (spk, _) in out.layers.items():
                    rates[name] = rates.get(name, 0.0) + spk.mean().item() * len(y)
        if self.ctx.distributed:
            names = list(rates)
            loss_sum, correct, *sums = distributed.all_reduce_sum([loss_sum, correct, *rates.values()], self.device)
            rates = dict(zip(names, sums, strict=True))
        n = len(split)
        self.model.train()
        return loss_sum / n, correct / n, {k: v / n for k, v in rates.items()}

    @torch.no_grad()
    def probe(self, epoch: int, step: int) -> ProbeRecorded:
        """Membrane and spikes of chosen neurons for a few fixed test samples."""
        cfg = self.config.run.probes
        n = len(self.test_split)
        samples = torch.linspace(0, n - 1, min(cfg.samples, n)).long().tolist()
        x = self.test_split.inputs[samples]
        self.model.eval()
        inputs = self.encode(x, torch.Generator(device=self.device).manual_seed(self.config.train.seed + 2))
        with self.autocast():
            out = self.model(inputs, record=True)
        self.model.train()
        layers: dict[str, dict[str, Any]] = {}
        wanted = cfg.layers or list(out.layers)
        for name in wanted:
            if name not in out.layers:
                continue
            spk, mem = (v.flatten(2) for v in out.layers[name])  # [T, S, N]
            count = spk.shape[2]
            spaced = torch.linspace(0, count - 1, min(cfg.neurons, count)).long().tolist()
            neurons = torch.tensor(sorted({*spaced, *cfg.trace.get(name, ())}), dtype=torch.long)
            raster = torch.linspace(0, count - 1, min(MAX_RASTER, count)).long()
            neuron = next(b.neuron for b in self.model.blocks if b.name == name and b.neuron is not None)
            layers[name] = {
                "membrane": mem[:, :, neurons].float().cpu(),
                "spikes": spk[:, :, neurons].to(torch.uint8).cpu(),
                "raster": spk[:, :, raster].to(torch.uint8).cpu(),
                "raster_neurons": raster.tolist(),
                "neurons": neurons.tolist(),
                # None for a readout that never fires (expon): the viewer draws no threshold line for it.
                "threshold": float(neuron.threshold.float().mean()) if getattr(neuron, "fires", True) else None,
            }
        labels = self.test_split.labels[samples].tolist()
        return ProbeRecorded(epoch=epoch, step=step, samples=samples, labels=labels, layers=layers)

    def state(self, progress: Progress) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "progress": vars(progress).copy(),
            "rng": checkpoint.rng_state(),
            "encoder_rng": self.encoder_generator.get_state(),
            "config": self.config.to_dict(),
        }

    def restore(self, state: dict[str, Any]) -> Progress:
        """Continue from a checkpoint; changes the config makes to it must be ones ``resume`` allows."""
        try:
            changes = resume.check(state.get("config"), self.config.to_dict())
        except resume.ResumeRefused as exc:
            raise TrainingError(str(exc), FailureReason.CONFIG) from None
        load_weights(self.model, state)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise checkpoint.CheckpointError(f"checkpoint does not fit this model: {first_line(exc)}") from None
        if self.scheduler and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        # Loading brought back the old hyper-parameters along with the optimizer's state.
        resume.apply(changes, self.optimizer, self.scheduler)
        checkpoint.restore_rng(state["rng"])
        self.encoder_generator.set_state(state["encoder_rng"].cpu())  # a CPU byte tensor for any device
        return Progress(**state["progress"])


def load_weights(model: torch.nn.Module, state: dict[str, Any]) -> None:
    """Put a checkpoint's model weights (``state["model"]``) into ``model`` (``snnlab eval``, ``snnlab.load_run``).

    Raises:
        checkpoint.CheckpointError: the weights do not fit the model (another network's checkpoint).
    """
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise checkpoint.CheckpointError(f"checkpoint does not fit this model: {first_line(exc)}") from None


def build_network(config: Config, input_shape: tuple[int, ...] | None = None) -> SpikingNet:
    """The network of ``config`` as a run builds it, on the CPU, with torch's current random state.

    ``input_shape``: per sample and time step; by default the dataset's as the config knows it (without
    loading the data: ``shapes.data_shape``, which a test holds to what ``load_dataset`` gives).
    """
    if input_shape is None:
        input_shape = shapes.data_shape(config.data.dataset, config.data.synthetic.model_dump()).input_shape
    try:
        model = build_model(config.layer_specs(), input_shape)
    except ValueError as exc:
        raise TrainingError(str(exc), FailureReason.CONFIG) from None
    model.set_fused(config.model.fused)
    model.bptt_segment = config.train.bptt_segment  # segments recomputed in the backward pass (None: off)
    model.compact_spikes = config.train.compact_spikes  # hidden spikes saved in one byte
    return model


def prepare(config: Config, ctx: distributed.Context = distributed.SINGLE) -> Session:
    """The pre-flight: pick the device, load the data, build the model and optimizer. Raises TrainingError
    (reason ``device``, ``data``, ``config``, ``out_of_memory``) for what the user can fix; a face calls this
    before it writes anything, so a run that cannot start leaves nothing behind."""
    try:
        return Session(config, ctx=ctx)
    except DataError as exc:
        raise TrainingError(str(exc), FailureReason.DATA) from None
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not allocation_failed(exc):
            raise
        raise TrainingError(out_of_memory(config, config.train.device), FailureReason.OUT_OF_MEMORY) from None


MAX_RASTER = 4096  # neurons of a layer in a probe's raster (evenly spaced when the layer has more)


def out_of_memory(config: Config, device: str) -> str:
    """The one-line failure of a run that ran out of memory, naming what to change: a segmented backward pass
    first where it is off (the same gradients in about sqrt(T) of the activations' memory), else the batch or
    the sequence."""
    shrink = "lower data.batch_size or data.time_steps"
    if config.train.bptt_segment is None:
        segment = "set train.bptt_segment=auto (the same gradients, activations kept for about sqrt(T) steps)"
        return f"out of memory on {device}; {segment} or {shrink}"
    return f"out of memory on {device}; {shrink}"


def allocation_failed(exc: BaseException) -> bool:
    # The CPU allocator raises a plain RuntimeError rather than torch.OutOfMemoryError.
    return isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in str(exc)


def _bfloat16_ok(device: torch.device) -> bool:
    if device.type == "cuda":  # natively, not emulated (is_bf16_supported() also says yes for emulation)
        return torch.cuda.get_device_capability(device)[0] >= 8
    return device.type == "cpu"


def device_name(session: Session) -> str:
    """The device as the run's start line shows it, with the scan in use when it is not the one-pass kernel
    and the precision when it is not float32."""
    name = _kernel_name(session.device)
    return name if session.config.train.precision == "float32" else f"{name}, {session.config.train.precision}"


def _kernel_name(device: torch.device) -> str:
    if device.type == "cuda":
        name, kernel = f"cuda ({torch.cuda.get_device_name(device)})", cuda.status()
        return name if kernel == "triton" else f"{name}, {kernel}"
    if device.type == "cpu":
        kernel = native.status()  # say so when the C scan is not available, and why
        return "cpu" if kernel == "native" else f"cpu, {kernel}"
    return device.type
