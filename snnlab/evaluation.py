"""Evaluating a run's checkpoint on the test split (``snnlab eval RUN``, ``snnlab.load_run(RUN).evaluate()``).

The run's config.yaml, with ``--set`` overrides, says what to evaluate on (another dataset, decoder or test
size); the engine's own ``Session.evaluate`` does the counting, so a checkpoint evaluated here gives the loss and
accuracy that the run recorded at that checkpoint's epoch. Nothing in the run directory is written.

Choosing the run, the config and the checkpoint needs no torch; :func:`evaluate` imports the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from snnlab import runs
from snnlab.config import Config, ConfigError, load_config

Which = Literal["best", "last"]
CHECKPOINTS: tuple[Which, ...] = ("best", "last")


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` measured: test loss and accuracy (by ``decoder``) of a checkpoint's weights."""

    run: Path
    checkpoint: Path
    epoch: int  # completed epochs when the checkpoint was written
    step: int
    dataset: str
    test_samples: int
    decoder: str
    loss: float
    accuracy: float
    spike_rates: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": str(self.run),
            "checkpoint": str(self.checkpoint),
            "epoch": self.epoch,
            "step": self.step,
            "dataset": self.dataset,
            "test_samples": self.test_samples,
            "decoder": self.decoder,
            "loss": self.loss,
            "accuracy": self.accuracy,
            "spike_rates": dict(self.spike_rates),
        }


def run_config(run_path: Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The run's config.yaml with ``overrides`` (``key=value``) applied and checked.

    Raises:
        ConfigError: the file is missing or does not load, or an override is refused (one line).
    """
    path = Path(run_path) / runs.CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{run_path} has no {runs.CONFIG_FILE}: not a run directory, or its config was removed")
    return load_config(path, overrides)


def checkpoint_path(run_path: Path, which: Which) -> Path:
    """The run's ``checkpoints/<which>.pt``.

    Raises:
        ConfigError: no such checkpoint; the message says what the run has instead.
    """
    if which not in CHECKPOINTS:
        raise ConfigError(f"checkpoint '{which}': choose one of {', '.join(CHECKPOINTS)}")
    folder = Path(run_path) / runs.CHECKPOINTS_DIR
    path = folder / f"{which}.pt"
    if path.is_file():
        return path
    others = [name for name in CHECKPOINTS if name != which and (folder / f"{name}.pt").is_file()]
    if others:
        name = Path(run_path).name
        raise ConfigError(f"{name} has no {which}.pt but has {others[0]}.pt: evaluate it with --checkpoint {others[0]}")
    raise ConfigError(
        f"{Path(run_path).name} has no checkpoint: it ended before its first one (written at the end of every "
        f"run.checkpoint_every epochs); train it anew with: snnlab run {Path(run_path) / runs.CONFIG_FILE}"
    )


def evaluate(run_path: Path, which: Which, config: Config) -> Evaluation:
    """Evaluate the run's ``which`` checkpoint on the test split of ``config`` (:func:`run_config`).

    Raises:
        ConfigError: no such checkpoint.
        snnlab.engine.session.TrainingError: the data or device is not available, or the model does not fit it.
        snnlab.engine.checkpoint.CheckpointError: the checkpoint is damaged or is not this network's.
    """
    path = checkpoint_path(run_path, which)
    from snnlab.engine import checkpoint  # torch: only once there is something to evaluate
    from snnlab.engine.session import load_weights, prepare

    session = prepare(config)
    state = checkpoint.load(path, session.device)
    load_weights(session.model, state)
    loss, accuracy, rates = session.evaluate()
    progress = state.get("progress", {})
    return Evaluation(
        run=Path(run_path),
        checkpoint=path,
        epoch=int(progress.get("epoch", 0)),
        step=int(progress.get("step", 0)),
        dataset=config.data.dataset,
        test_samples=len(session.test_split),
        decoder=config.train.decoder,
        loss=loss,
        accuracy=accuracy,
        spike_rates=rates,
    )
