"""The fit loop. ``train(config, sinks, stop, pause) -> RunResult``.

Reads top to bottom: :func:`prepare` sets up (seed, device, data, model, optimizer); :func:`train` turns every
way a run can end into its last event; ``_fit`` is the loop over epochs and batches, ``_train_step`` one
optimizer step (encode, forward, loss, backward, clip, step) and ``_end_epoch`` what follows an epoch's
batches (scheduler, evaluation, probes, checkpoints). Sinks only receive events; ``stop`` and ``pause``
(threading or multiprocessing events) are checked at batch boundaries. A stop writes a checkpoint that
``resume`` continues from exactly.

Under torchrun (``distributed.py``) every rank runs this same loop on its slice of each global batch, with
the model wrapped in DistributedDataParallel; metrics and the stop flag are summed over ranks, and only
the rank given sinks and a ``run_dir`` (rank 0) writes anything.

``train`` tunes the process's malloc to keep freed memory (see ``allocator.py``): the same large
buffers come back every step, and re-faulting them in cost about half the step time on CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

import torch

from snnlab.engine import allocator, checkpoint, distributed, losses, resume
from snnlab.engine.data import DataError, Split, batches, load_dataset
from snnlab.engine.encoders import encode
from snnlab.engine.events import (
    EpochMetrics,
    Event,
    FailureReason,
    ProbeRecorded,
    RunFailed,
    RunFinished,
    RunStarted,
    Sink,
    StepMetrics,
)
from snnlab.engine.files import WriteError
from snnlab.engine.kernels import cuda, native
from snnlab.engine.models import SpikingNet, build_model, count_parameters

if TYPE_CHECKING:
    from snnlab.config import Config


class Flag(Protocol):
    def is_set(self) -> bool: ...


class TrainingError(Exception):
    """A failure the user can act on, one line, with the reason it ends the run for."""

    def __init__(self, message: str, reason: FailureReason = FailureReason.ERROR):
        super().__init__(message)
        self.reason = reason


class _Stopped(Exception):
    pass


class _Diverged(Exception):
    """The loss of a batch is not finite; ``train`` names the epoch, the step and the checkpoints left."""

    def __init__(self, loss: float):
        super().__init__(loss)
        self.loss = loss


@dataclass(frozen=True)
class RunResult:
    """How a run ended: the last event it emitted (``final``) and the device it ran on. The properties
    read that event, so that what a caller is told is what the sinks were told."""

    final: RunFinished | RunFailed
    device: str

    @property
    def status(self) -> Literal["completed", "stopped", "failed"]:
        return self.final.status if isinstance(self.final, RunFinished) else "failed"

    @property
    def epochs_done(self) -> int:
        return self.final.epochs_done if isinstance(self.final, RunFinished) else self.final.epoch

    @property
    def steps(self) -> int:
        return self.final.steps if isinstance(self.final, RunFinished) else self.final.step

    @property
    def wall_time(self) -> float | None:
        return self.final.wall_time  # train always sets it (RunFailed allows None for files of older versions)

    @property
    def best_accuracy(self) -> float | None:
        """None after a failure, as for the two below: a failed run reports no result."""
        return self.final.best_accuracy if isinstance(self.final, RunFinished) else None

    @property
    def final_test_accuracy(self) -> float | None:
        return self.final.final_test_accuracy if isinstance(self.final, RunFinished) else None

    @property
    def final_test_loss(self) -> float | None:
        return self.final.final_test_loss if isinstance(self.final, RunFinished) else None

    @property
    def error(self) -> str | None:
        return self.final.error if isinstance(self.final, RunFailed) else None

    @property
    def reason(self) -> FailureReason | None:
        return FailureReason.of(self.final.reason) if isinstance(self.final, RunFailed) else None


@dataclass
class _Progress:
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
    params = [p for p in model.parameters() if p.requires_grad]
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
        )
        self.train_split = self.dataset.train.to(self.device)
        self.test_split = self.dataset.test.to(self.device)
        input_shape = self.dataset.input_shape[1:] if self.dataset.temporal else self.dataset.input_shape
        try:
            self.model: SpikingNet = build_model(config.model.layer_specs(), input_shape).to(self.device)
        except ValueError as exc:
            raise TrainingError(str(exc), FailureReason.CONFIG) from None
        if self.model.output_shape != (self.dataset.num_classes,):
            raise TrainingError(
                f"model.layers: the last layer has {list(self.model.output_shape)} outputs but "
                f"{d.dataset} has {self.dataset.num_classes} classes; set its out_features to "
                f"{self.dataset.num_classes}",
                FailureReason.CONFIG,
            )
        self.model.set_fused(config.model.fused)
        # A batchnorm that needs two samples per batch needs them on every rank (each normalises its own slice).
        self.smallest_batch = 1 if config.smallest_batch() == 1 else config.smallest_batch() * ctx.world_size
        if d.batch_size < self.smallest_batch:
            raise TrainingError(
                f"data.batch_size: must be at least {self.smallest_batch} with batchnorm on {ctx.world_size} "
                f"processes, so that each has {config.smallest_batch()} samples (got {d.batch_size})",
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
        """
        split = split or self.test_split
        self.model.eval()
        generator = torch.Generator(device=self.device).manual_seed(self.config.train.seed + 1)
        loss_sum, correct = 0.0, 0.0
        rates = {block.name: 0.0 for block in self.model.blocks if block.neuron is not None}
        for x, y in batches(split, self.config.data.batch_size, shuffle=False):
            inputs = self.encode(x, generator)  # the whole batch, so every rank draws the same spikes
            part = distributed.shard(len(y), self.ctx)
            inputs, y = inputs[:, part], y[part]
            if len(y) == 0:
                continue
            with self.autocast():
                out = self.model(inputs)
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
            out = self.model(inputs)
        self.model.train()
        layers: dict[str, dict[str, Any]] = {}
        wanted = cfg.layers or list(out.layers)
        for name in wanted:
            if name not in out.layers:
                continue
            spk, mem = (v.flatten(2) for v in out.layers[name])  # [T, S, N]
            count = spk.shape[2]
            neurons = torch.linspace(0, count - 1, min(cfg.neurons, count)).long()
            raster = torch.linspace(0, count - 1, min(4096, count)).long()
            neuron = next(b.neuron for b in self.model.blocks if b.name == name and b.neuron is not None)
            layers[name] = {
                "membrane": mem[:, :, neurons].float().cpu(),
                "spikes": spk[:, :, neurons].to(torch.uint8).cpu(),
                "raster": spk[:, :, raster].to(torch.uint8).cpu(),
                "neurons": neurons.tolist(),
                "threshold": float(neuron.threshold.float().mean()),
            }
        labels = self.test_split.labels[samples].tolist()
        return ProbeRecorded(epoch=epoch, step=step, samples=samples, labels=labels, layers=layers)

    def state(self, progress: _Progress) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "progress": vars(progress).copy(),
            "rng": checkpoint.rng_state(),
            "encoder_rng": self.encoder_generator.get_state(),
            "config": self.config.to_dict(),
        }

    def restore(self, state: dict[str, Any]) -> _Progress:
        """Continue from a checkpoint; changes the config makes to it must be ones ``resume`` allows."""
        try:
            changes = resume.check(state.get("config"), self.config.to_dict())
        except resume.ResumeRefused as exc:
            raise TrainingError(str(exc), FailureReason.CONFIG) from None
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise checkpoint.CheckpointError(f"checkpoint does not fit this model: {first}") from None
        if self.scheduler and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        # Loading brought back the old hyper-parameters along with the optimizer's state.
        resume.apply(changes, self.optimizer, self.scheduler)
        checkpoint.restore_rng(state["rng"])
        self.encoder_generator.set_state(state["encoder_rng"].cpu())  # a CPU byte tensor for any device
        return _Progress(**state["progress"])


def prepare(config: Config, ctx: distributed.Context = distributed.SINGLE) -> Session:
    """The pre-flight: pick the device, load the data, build the model and optimizer. Raises TrainingError
    (reason ``device``, ``data``, ``config``, ``out_of_memory``) for what the user can fix; a face calls this
    before it writes anything, so a run that cannot start leaves nothing behind."""
    try:
        return Session(config, ctx=ctx)
    except DataError as exc:
        raise TrainingError(str(exc), FailureReason.DATA) from None
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not _allocation_failed(exc):
            raise
        message = _OUT_OF_MEMORY.format(device=config.train.device)
        raise TrainingError(message, FailureReason.OUT_OF_MEMORY) from None


_OUT_OF_MEMORY = "out of memory on {device}; lower data.batch_size or data.time_steps"


def _allocation_failed(exc: BaseException) -> bool:
    # The CPU allocator raises a plain RuntimeError rather than torch.OutOfMemoryError.
    return isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in str(exc)


def train(
    config: Config,
    sinks: list[Sink] | tuple[Sink, ...] = (),
    stop: Flag | None = None,
    pause: Flag | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
    run_name: str | None = None,
    ctx: distributed.Context = distributed.SINGLE,
    session: Session | None = None,
) -> RunResult:
    """Train ``config``; every observable thing goes to ``sinks`` as an event.

    Args:
        run_dir: folder whose ``checkpoints/`` receive ``last.pt`` and ``best.pt`` (none: no checkpoints).
        resume: a checkpoint file to continue from.
        ctx: this process's place under torchrun (see ``distributed.setup``); give sinks and ``run_dir``
            to rank 0 only.
        session: what :func:`prepare` built for ``config`` (default: built here).
    """
    out = _Outputs(sinks, Path(run_dir) / "checkpoints" if run_dir is not None else None, started=time.time())
    allocator.keep_freed_memory()
    progress = _Progress()
    device = "?"
    status: Literal["completed", "stopped"]
    try:
        session = session if session is not None else prepare(config, ctx)
        device = _device_name(session)
        if resume is not None:
            progress = session.restore(checkpoint.load(resume, session.device))
            out.started -= progress.elapsed
        _fit(session, progress, out, stop, pause, run_name or config.run.name)
        status = "completed"
    except _Stopped:
        status = "stopped"
    except _Diverged as exc:  # raised before the step that would have counted: progress names the one that failed
        message = (
            f"loss became {exc.loss} at epoch {progress.epoch + 1}, step {progress.step + 1}; lower train.lr or set "
            f"train.grad_clip{out.kept()}"
        )
        return _fail(out, progress, device, message, FailureReason.NAN_LOSS)
    except (TrainingError, DataError, checkpoint.CheckpointError) as exc:
        return _fail(out, progress, device, str(exc), getattr(exc, "reason", FailureReason.DATA))
    except WriteError as exc:
        return _fail(out, progress, device, str(exc), FailureReason.WRITE)
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not _allocation_failed(exc):
            raise
        return _fail(out, progress, device, _OUT_OF_MEMORY.format(device=device), FailureReason.OUT_OF_MEMORY)
    except KeyboardInterrupt:
        status = "stopped"
    try:
        if status == "stopped" and session is not None:
            out.save(session, progress, "last.pt")
        test = progress.last_test
        finished = RunFinished(
            status=status,
            epochs_done=progress.epoch,
            steps=progress.step,
            best_accuracy=progress.best_accuracy,
            final_test_accuracy=test[1] if test else None,
            final_test_loss=test[0] if test else None,
            wall_time=time.time() - out.started,
        )
        out.emit(finished)
    except WriteError as exc:  # a stop that cannot be saved, or an end that cannot be recorded, is a failure
        return _fail(out, progress, device, str(exc), FailureReason.WRITE)
    return RunResult(finished, device)


@dataclass
class _Outputs:
    """Where one session of a run sends what it makes: events to the sinks, checkpoints to ``ckpt_dir``."""

    sinks: Sequence[Sink]
    ckpt_dir: Path | None  # None: a run without checkpoints
    started: float  # wall clock at the start, moved back by the time of earlier sessions once resumed

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink(event)

    def save(self, session: Session, p: _Progress, name: str) -> None:
        if self.ckpt_dir is None:
            return
        p.elapsed = time.time() - self.started  # carried into a resumed session, so the run's wall time adds up
        checkpoint.save(self.ckpt_dir / name, session.state(p))

    def kept(self) -> str:
        """What a failure message can truthfully say about the checkpoints left behind."""
        if self.ckpt_dir is None:
            return ""
        kept = [name for name in ("last.pt", "best.pt") if (self.ckpt_dir / name).is_file()]
        if not kept:
            return " (no checkpoint was written before it)"
        return f" ({' and '.join(kept)} in {self.ckpt_dir} {'are' if len(kept) > 1 else 'is'} kept)"


def _fit(session: Session, p: _Progress, out: _Outputs, stop: Flag | None, pause: Flag | None, run_name: str) -> None:
    """Train from where ``p`` stands to the last epoch (or ``train.max_steps``); ``p`` follows every step."""
    cfg, t = session.config, session.config.train
    drop_last, batches_per_epoch = _epoch_size(session)
    out.emit(_run_started(session, run_name, batches_per_epoch, start_epoch=p.epoch))
    session.model.train()
    for epoch in range(p.epoch + 1, t.epochs + 1):
        epoch_started = time.perf_counter()
        for b, (x, y) in enumerate(_shuffled(session, epoch, drop_last), start=1):
            if b <= p.batch:
                continue  # done before the checkpoint this run resumed from
            _wait_while_paused(pause, stop)
            if distributed.any_rank(stop is not None and stop.is_set(), session.device):
                raise _Stopped
            step = _train_step(session, x, y)
            p.step, p.batch = p.step + 1, b
            p.loss_sum += step.loss_sum
            p.correct += step.correct
            p.seen += step.size
            if p.step % cfg.run.log_every == 0 or b == batches_per_epoch:
                out.emit(step.metrics(epoch, p.step, b, batches_per_epoch, session.optimizer.param_groups[0]["lr"]))
            if t.max_steps and p.step >= t.max_steps:
                break
            every = cfg.run.checkpoint_steps
            if every and p.step % every == 0 and b < batches_per_epoch:
                # Within a long epoch, so that a run killed outright loses at most these steps; the epoch's
                # end writes its own checkpoint.
                out.save(session, p, "last.pt")
        if _end_epoch(session, p, out, epoch, epoch_started):
            break


class _Step(NamedTuple):
    """What one optimizer step did, summed over the whole batch (every rank's slice)."""

    loss_sum: float
    correct: int
    size: int  # samples in the batch
    seconds: float  # encode, forward, loss, backward and optimizer step

    def metrics(self, epoch: int, step: int, batch: int, batches: int, lr: float) -> StepMetrics:
        return StepMetrics(
            epoch=epoch,
            step=step,
            batch=batch,
            batches=batches,
            loss=self.loss_sum / self.size,
            accuracy=self.correct / self.size,
            samples_per_s=self.size / self.seconds,
            lr=lr,
            step_time=self.seconds,
        )


def _train_step(session: Session, x: torch.Tensor, y: torch.Tensor) -> _Step:
    """One optimizer step on a batch: encode, forward, loss, backward, clip, step.

    Every rank is given the same batch and trains on its slice of it (``distributed.whole_batch`` says how
    the slices add up to the batch). Raises ``_Diverged``, before touching the weights, when the batch's
    loss is not finite.
    """
    started = time.perf_counter()
    inputs = session.encode(x)  # the whole batch, so the encoder's generator stays in step on all ranks
    part = distributed.shard(len(y), session.ctx)
    inputs, labels = inputs[:, part], y[part]
    with session.autocast():
        out = session.trained_model(inputs)
        loss = session.loss_fn(out.spikes, out.membrane, labels) if len(labels) else None
    if loss is None:  # a last batch smaller than the world: this rank only joins the gradient average
        loss, correct = out.membrane.sum() * 0.0, 0
    else:
        with torch.no_grad():
            correct = int((losses.decode(session.config.train.decoder, out.spikes, out.membrane) == labels).sum())
    ctx, device = session.ctx, session.device
    loss, loss_sum, correct = distributed.whole_batch(loss, correct, len(labels), len(y), ctx, device)
    if not math.isfinite(loss_sum / len(y)):
        raise _Diverged(loss_sum / len(y))
    session.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if session.config.train.grad_clip:
        torch.nn.utils.clip_grad_norm_(session.model.parameters(), session.config.train.grad_clip)
    session.optimizer.step()
    return _Step(loss_sum, correct, len(y), time.perf_counter() - started)


def _end_epoch(session: Session, p: _Progress, out: _Outputs, epoch: int, epoch_started: float) -> bool:
    """Once an epoch's batches are done: the scheduler's step, the evaluation (every ``run.eval_every``
    epochs and after the last), probes and checkpoints. True when training ends with this epoch."""
    cfg, t = session.config, session.config.train
    if session.scheduler:
        session.scheduler.step()
    last_epoch = epoch == t.epochs or bool(t.max_steps and p.step >= t.max_steps)
    train_loss, train_acc = p.loss_sum / max(p.seen, 1), p.correct / max(p.seen, 1)
    p.epoch, p.batch, p.loss_sum, p.correct, p.seen = epoch, 0, 0.0, 0, 0
    improved = False
    if epoch % cfg.run.eval_every == 0 or last_epoch:
        test_loss, test_acc, rates = session.evaluate()
        improved = test_acc > p.best_accuracy or p.last_test is None
        p.best_accuracy = max(p.best_accuracy, test_acc)
        p.last_test = (test_loss, test_acc)
        out.emit(
            EpochMetrics(
                epoch=epoch,
                step=p.step,
                train_loss=train_loss,
                train_accuracy=train_acc,
                test_loss=test_loss,
                test_accuracy=test_acc,
                spike_rates=rates,
                epoch_time=time.perf_counter() - epoch_started,
                best_accuracy=p.best_accuracy,
            )
        )
        if cfg.run.probes.enabled:
            out.emit(session.probe(epoch, p.step))
    # last.pt before best.pt: it is the one a resume needs, so on a disk about to fill up it goes first.
    if epoch % cfg.run.checkpoint_every == 0 or last_epoch:
        out.save(session, p, "last.pt")
    if improved:
        out.save(session, p, "best.pt")
    return last_epoch


def _epoch_size(session: Session) -> tuple[bool, int]:
    """Whether each epoch leaves out its last batch, and how many batches it has then."""
    n, bs = len(session.train_split), session.config.data.batch_size
    # A last batch too small for batchnorm's statistics (one sample) is left out; the shuffle differs per epoch.
    drop_last = 0 < n % bs < session.smallest_batch
    return drop_last, n // bs if drop_last else math.ceil(n / bs)


def _shuffled(session: Session, epoch: int, drop_last: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The training batches of ``epoch``. Their order depends only on (seed, epoch), so a resumed run sees the
    same batches; torch takes seeds below 2**64, and the modulo changes nothing for seeds that fitted before."""
    seed, batch_size = session.config.train.seed, session.config.data.batch_size
    order = torch.Generator(device=session.device).manual_seed((seed * 1_000_003 + epoch) % 2**64)
    return batches(session.train_split, batch_size, shuffle=True, generator=order, drop_last=drop_last)


def _run_started(session: Session, run_name: str, batches_per_epoch: int, start_epoch: int) -> RunStarted:
    cfg = session.config
    return RunStarted(
        run_name=run_name,
        device=_device_name(session),
        config=cfg.to_dict(),
        num_parameters=count_parameters(session.model),
        train_size=len(session.train_split),
        test_size=len(session.test_split),
        steps_per_epoch=batches_per_epoch,
        epochs=cfg.train.epochs,
        start_epoch=start_epoch,
    )


def _wait_while_paused(pause: Flag | None, stop: Flag | None) -> None:
    while pause is not None and pause.is_set() and not (stop is not None and stop.is_set()):
        time.sleep(0.05)


def _fail(out: _Outputs, progress: _Progress, device: str, message: str, reason: FailureReason) -> RunResult:
    failed = RunFailed(
        error=message, reason=reason, epoch=progress.epoch, step=progress.step, wall_time=time.time() - out.started
    )
    out.emit(failed)
    return RunResult(failed, device)


def _bfloat16_ok(device: torch.device) -> bool:
    if device.type == "cuda":  # natively, not emulated (is_bf16_supported() also says yes for emulation)
        return torch.cuda.get_device_capability(device)[0] >= 8
    return device.type == "cpu"


def _device_name(session: Session) -> str:
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
