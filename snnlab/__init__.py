"""snnlab: a terminal lab for training spiking neural networks with surrogate gradients.

Importing this package is cheap: torch and the faces load only when their modules are imported, and the
Python API below imports what it needs when it is first called::

    import snnlab

    config = snnlab.load_config("quickstart", overrides=["train.epochs=1"])
    result = snnlab.train(config, run_dir="runs/notebook-1")
    run = snnlab.load_run("runs/notebook-1")  # config, metrics, model with the best weights

The functions are :mod:`snnlab.api`'s; so are :class:`TrainResult` and :class:`Run`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from snnlab.api import PathLike, Run, TrainResult
    from snnlab.config import Config, ConfigError
    from snnlab.engine.checkpoint import CheckpointError
    from snnlab.engine.events import Sink
    from snnlab.engine.models import SpikingNet
    from snnlab.engine.session import TrainingError
    from snnlab.evaluation import Evaluation, Which
    from snnlab.runs import RunDirError

__all__ = [
    "CheckpointError",
    "Config",
    "ConfigError",
    "Evaluation",
    "Run",
    "RunDirError",
    "TrainResult",
    "TrainingError",
    "__version__",
    "build_model",
    "load_config",
    "load_run",
    "train",
]


def load_config(preset_or_path: PathLike, overrides: Iterable[str] = ()) -> Config:
    """A bundled preset by name (``"quickstart"``) or a YAML file, with ``key=value`` overrides, validated.
    Raises :class:`ConfigError` with the one-line message the CLI prints."""
    from snnlab import api

    return api.load_config(preset_or_path, overrides)


def build_model(config: Config) -> SpikingNet:
    """The network of ``config`` (a ``torch.nn.Module``) on the CPU, with the weights a run of it starts from."""
    from snnlab import api

    return api.build_model(config)


def train(config: Config, sinks: Sequence[Sink] = (), run_dir: PathLike | None = None) -> TrainResult:
    """Train ``config``: the trained model, the final metrics and the run directory (written when ``run_dir``
    names a new folder). Each event goes to ``sinks`` as it happens. Raises :class:`TrainingError` on failure."""
    from snnlab import api

    return api.train(config, sinks, run_dir)


def load_run(run: PathLike, checkpoint: Which = "best", runs_dir: PathLike = "runs") -> Run:
    """A run directory (path, or name under ``runs_dir``): its config, recorded metrics and the model with the
    weights of its ``best`` or ``last`` checkpoint."""
    from snnlab import api

    return api.load_run(run, checkpoint, runs_dir)


# Where the names that only annotate above live; imported on first use, so `import snnlab` stays cheap.
_LAZY = {
    "CheckpointError": "snnlab.engine.checkpoint",
    "Config": "snnlab.config",
    "ConfigError": "snnlab.config",
    "Evaluation": "snnlab.evaluation",
    "Run": "snnlab.api",
    "RunDirError": "snnlab.runs",
    "TrainResult": "snnlab.api",
    "TrainingError": "snnlab.engine.session",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'snnlab' has no attribute {name!r}")
