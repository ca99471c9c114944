"""The fit loop. ``train(config, sinks, stop, pause) -> RunResult``.

Reads top to bottom: ``session.prepare`` sets up (seed, device, data, model, optimizer); :func:`train` turns every
way a run can end into its last event; ``_fit`` is the loop over epochs and batches, ``_train_step`` one
optimizer step (encode, forward, loss, backward, clip, step; on some steps a health sample) and ``_end_epoch``
what follows an epoch's batches (scheduler, evaluation, health report, probes, checkpoints). Sinks only receive
events; ``stop`` and ``pause`` (threading or multiprocessing events) are checked at batch boundaries. A stop
writes a checkpoint that ``resume`` continues from exactly.

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
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

import torch

from snnlab.engine import allocator, checkpoint, distributed, health, losses
from snnlab.engine.data import DataError, batches
from snnlab.engine.events import (
    EpochMetrics,
    Event,
    FailureReason,
    RunFailed,
    RunFinished,
    RunStarted,
    Sink,
    StepMetrics,
)
from snnlab.engine.files import WriteError
from snnlab.engine.models import count_parameters
from snnlab.engine.session import (
    Progress,
    Session,
    TrainingError,
    allocation_failed,
    device_name,
    out_of_memory,
    prepare,
)

if TYPE_CHECKING:
    from snnlab.config import Config


class Flag(Protocol):
    def is_set(self) -> bool: ...


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
    progress = Progress()
    device = "?"
    status: Literal["completed", "stopped"]
    try:
        session = session if session is not None else prepare(config, ctx)
        device = device_name(session)
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
        if not allocation_failed(exc):
            raise
        return _fail(out, progress, device, out_of_memory(config, device), FailureReason.OUT_OF_MEMORY)
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

    def save(self, session: Session, p: Progress, name: str) -> None:
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


def _fit(session: Session, p: Progress, out: _Outputs, stop: Flag | None, pause: Flag | None, run_name: str) -> None:
    """Train from where ``p`` stands to the last epoch (or ``train.max_steps``); ``p`` follows every step."""
    cfg, t = session.config, session.config.train
    drop_last, batches_per_epoch = _epoch_size(session)
    out.emit(_run_started(session, run_name, batches_per_epoch, start_epoch=p.epoch))
    session.model.train()
    for epoch in range(p.epoch + 1, t.epochs + 1):
        epoch_started = time.perf_counter()
        session.model.set_epoch(epoch, t.epochs)  # schedules over the run (delayed_linear's sigma)
        for b, (x, y) in enumerate(_shuffled(session, epoch, drop_last), start=1):
            if b <= p.batch:
                continue  # done before the checkpoint this run resumed from
            _wait_while_paused(pause, stop)
            if distributed.any_rank(stop is not None and stop.is_set(), session.device):
                raise _Stopped
            last = b == batches_per_epoch or bool(t.max_steps and p.step + 1 >= t.max_steps)
            sample = session.health is not None and session.health.wants(p.step + 1, last)
            step = _train_step(session, x, y, sample)
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


def _train_step(session: Session, x: torch.Tensor, y: torch.Tensor, sample_health: bool = False) -> _Step:
    """One optimizer step on a batch: encode, forward, loss, backward, (health sample,) clip, step.

    Every rank is given the same batch and trains on its slice of it (``distributed.whole_batch`` says how
    the slices add up to the batch). Raises ``_Diverged``, before touching the weights, when the batch's
    loss is not finite.
    """
    started = time.perf_counter()
    inputs = session.encode(x)  # the whole batch, so the encoder's generator stays in step on all ranks
    part = distributed.shard(len(y), session.ctx)
    inputs, labels = inputs[:, part], y[part]
    with session.autocast():
        # Hidden layers' records only for a health sample, and then only the samples it reads.
        out = session.trained_model(inputs, record=health.SURROGATE_SAMPLES if sample_health else False)
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
    if sample_health and session.health is not None:  # the gradients as the loss made them, before clipping
        session.health.sample(out)
    if session.config.train.grad_clip:
        torch.nn.utils.clip_grad_norm_(session.model.parameters(), session.config.train.grad_clip)
    session.optimizer.step()
    session.model.constrain()  # delays back into [0, max_delay]
    return _Step(loss_sum, correct, len(y), time.perf_counter() - started)


def _end_epoch(session: Session, p: Progress, out: _Outputs, epoch: int, epoch_started: float) -> bool:
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
        if session.health is not None:
            out.emit(session.health.report(epoch, p.step, rates))
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
    # data.drop_last leaves out a smaller last batch (as snnTorch's tutorials do); one too small for
    # batchnorm's statistics (one sample) is always left out. The shuffle differs per epoch.
    drop_last = 0 < n % bs and (session.config.data.drop_last or n % bs < session.smallest_batch)
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
        device=device_name(session),
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


def _fail(out: _Outputs, progress: Progress, device: str, message: str, reason: FailureReason) -> RunResult:
    failed = RunFailed(
        error=message, reason=reason, epoch=progress.epoch, step=progress.step, wall_time=time.time() - out.started
    )
    out.emit(failed)
    return RunResult(failed, device)
