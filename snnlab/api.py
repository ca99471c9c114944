"""The Python API, as ``snnlab`` exports it: load a config, build its network, train it, open a finished run.

The fourth face of the engine beside the CLI, the lab and the run directory: it calls the same
``session.prepare``, ``trainer.train`` and ``evaluation`` code as ``snnlab run`` and ``snnlab eval`` do, and
turns a run that fails into an exception (a script or notebook has no exit code to read).

Errors, each with the one-line message the CLI prints: :class:`~snnlab.config.ConfigError` (a config or an
override is refused, no such preset or checkpoint), :class:`~snnlab.runs.RunDirError` (no such run, a
run folder that cannot be made), :class:`~snnlab.engine.session.TrainingError` (no data or device, the
loss diverged, ... with ``reason``), :class:`~snnlab.engine.checkpoint.CheckpointError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from snnlab import config as cfgmod
from snnlab import evaluation, runs
from snnlab.history import RunHistory

if TYPE_CHECKING:
    from snnlab.engine.events import Sink
    from snnlab.engine.models import SpikingNet

PathLike = str | os.PathLike[str]


def load_config(preset_or_path: PathLike, overrides: Iterable[str] = ()) -> cfgmod.Config:
    """A bundled preset by name (``"quickstart"``) or a YAML file, with ``key=value`` overrides, validated."""
    name = preset_or_path if isinstance(preset_or_path, str) else Path(preset_or_path)
    return cfgmod.load_config(cfgmod.find_preset(name), overrides)


def build_model(config: cfgmod.Config) -> SpikingNet:
    """The network of ``config`` on the CPU, with the weights a run of ``config`` starts from (seeded by
    ``train.seed``; the global random state is left as it was). Input ``[T, B, ...]``, time first."""
    import torch

    from snnlab.engine.session import build_network

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        return build_network(config)


@dataclass
class TrainResult:
    """A finished :func:`train`: the trained ``model`` (on the device it trained on, in train mode), the final
    ``metrics`` and, when one was written, the ``run_dir``."""

    model: SpikingNet
    config: cfgmod.Config
    status: Literal["completed", "stopped"]  # stopped: interrupted (Ctrl-C, the kernel's stop button)
    metrics: dict[str, Any]  # test_accuracy, test_loss, best_accuracy, epochs, steps, wall_time
    history: RunHistory  # every event of the run, folded as `snnlab runs show` folds them
    run_dir: Path | None
    device: str


def train(config: cfgmod.Config, sinks: Sequence[Sink] = (), run_dir: PathLike | None = None) -> TrainResult:
    """Train ``config``; every event (``snnlab.engine.events``) goes to each of ``sinks`` as it happens.

    ``run_dir``: a new folder to write the run into as ``snnlab run`` does (config.yaml, events.jsonl, probes,
    checkpoints, summary.json, and the logs ``run.loggers`` names, e.g. ``tensorboard/``), so that ``snnlab
    runs``, ``eval``, ``watch`` and :func:`load_run` can open it; None writes nothing. Raises ``TrainingError``
    if the run cannot start or fails, ``LoggerUnavailable`` if a logger's package is not installed.
    """
    from snnlab.engine.events import FailureReason
    from snnlab.engine.session import TrainingError, prepare
    from snnlab.engine.trainer import train as fit
    from snnlab.interop import loggers

    if run_dir is not None:
        loggers.check(config.run.loggers)  # before anything: a missing package is one line, no folder
    session = prepare(config)  # before the folder: a run that cannot start leaves none behind
    history = RunHistory()
    folder = runs.RunDir.create_at(run_dir, config.to_dict()) if run_dir is not None else None
    lock = runs.lock_run(folder.path) if folder is not None else None
    writer = runs.RunWriter(folder) if folder is not None else None
    logged = loggers.sinks(config.run.loggers, folder.path) if folder is not None else []
    try:
        result = fit(
            config,
            [history.apply, *([writer] if writer is not None else []), *logged, *sinks],
            run_dir=folder.path if folder is not None else None,
            run_name=folder.name if folder is not None else None,
            session=session,
        )
    finally:
        for logger in logged:
            logger.close()
        if writer is not None:
            writer.close()
        if lock is not None:
            lock.release()
    if result.status == "failed":
        raise TrainingError(result.error or "the run failed", result.reason or FailureReason.ERROR)
    metrics = {
        "test_accuracy": result.final_test_accuracy,
        "test_loss": result.final_test_loss,
        "best_accuracy": result.best_accuracy,
        "epochs": result.epochs_done,
        "steps": result.steps,
        "wall_time": result.wall_time,
    }
    status: Literal["completed", "stopped"] = "stopped" if result.status == "stopped" else "completed"
    path = folder.path if folder is not None else None
    return TrainResult(session.model, config, status, metrics, history, path, result.device)


@dataclass
class Run:
    """A run directory opened by :func:`load_run`: its ``config``, its recorded ``history`` and ``model``, the
    network with the weights of ``checkpoint`` (on the CPU, in eval mode)."""

    path: Path
    config: cfgmod.Config
    history: RunHistory
    checkpoint: Path
    model: SpikingNet
    _which: evaluation.Which = field(default="best", repr=False)

    @property
    def metrics(self) -> dict[str, Any]:
        """One list per quantity, one entry per evaluation (``epoch``, ``step``, ``test_loss``,
        ``test_accuracy``, ``train_loss``, ``train_accuracy``, ``epoch_time``, ``spike_rates`` by layer):
        ``pandas.DataFrame(run.metrics)`` makes a table of it."""
        epochs: dict[str, Any] = self.history.columns()["epochs"]
        return epochs

    def evaluate(self, overrides: Iterable[str] = ()) -> evaluation.Evaluation:
        """Evaluate the checkpoint on the test split, as ``snnlab eval`` does; ``overrides`` change the
        config it is evaluated under (``["data.test_size=500"]``, ``["train.decoder=rate_first"]``)."""
        config = evaluation.run_config(self.path, list(overrides))
        return evaluation.evaluate(self.path, self._which, config)


def load_run(run: PathLike, checkpoint: evaluation.Which = "best", runs_dir: PathLike = "runs") -> Run:
    """Open a run directory (a path, or a name or unique prefix of one under ``runs_dir``) with the weights of
    its ``best`` or ``last`` checkpoint."""
    from snnlab.engine import checkpoint as ckpt
    from snnlab.engine.session import build_network, load_weights

    path = runs.find_run(runs_dir, run)
    config = evaluation.run_config(path)
    file = evaluation.checkpoint_path(path, checkpoint)
    history = runs.read_history(path)
    model = build_network(config)
    load_weights(model, ckpt.load(file, "cpu"))
    model.eval()
    return Run(path, config, history, file, model, checkpoint)
