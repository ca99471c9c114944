"""Continuing a run (``snnlab run --resume RUN``): which run directory, with which config, from which checkpoint.

Everything that can refuse a resume is checked here, before anything in the run directory changes: the run
exists and is not in use, the new config loads, there is a checkpoint that loads, the config changes only
what ``engine/resume.py`` allows, and epochs are left to train. The new config reaches config.yaml only once
the engine has loaded the checkpoint (the face writes it on ``RunStarted``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from snnlab import runs
from snnlab.config import Config, ConfigError, find_preset, load_config
from snnlab.engine import checkpoint, resume


@dataclass
class Resume:
    """A run that can be continued, checked and (unless asked not to) locked."""

    run_dir: runs.RunDir
    config: Config  # the new config: the run's own (or a preset's) with the --set overrides
    checkpoint: Path  # last.pt, or best.pt when last.pt cannot be used
    lock: runs.RunLock | None  # held for the caller to release; None when not asked to lock
    note: str | None  # why best.pt was taken instead of last.pt, for the user


def open_resume(
    name: str, preset: str | None, overrides: list[str], *, runs_dir: Path = Path("runs"), lock: bool = True
) -> Resume:
    """The run ``name`` (a run directory, or a name or unique prefix under ``runs_dir``) ready to continue.

    ``preset``: a config to continue with instead of the run's config.yaml. ``lock``: claim the run directory
    (under torchrun only rank 0 does; the others read the same files).

    Raises:
        runs.RunDirError: no such run, or another process trains in it.
        ConfigError: the config does not load, no checkpoint can be used, the config changes what the
            checkpoint depends on, or the run has no epochs left (one line each, saying what to do).
    """
    path = Path(name) if Path(name).is_dir() else runs.find_run(runs_dir, name)
    run_dir = runs.RunDir.open(path)
    held = runs.lock_run(run_dir.path, record=False) if lock else None  # the pid only once accepted
    try:
        config = load_config(find_preset(preset) if preset else run_dir.config_path, overrides)
        if not any((run_dir.checkpoints_dir / file).exists() for file in ("last.pt", "best.pt")):
            raise ConfigError(
                f"{run_dir.path.name} has no checkpoint to continue from: it ended before its first one "
                f"(written every run.checkpoint_every epochs, every run.checkpoint_steps steps if set, and when "
                f"stopped with Ctrl-C); start it anew with: snnlab run {run_dir.config_path}"
            )
        try:
            ckpt, state, note = checkpoint.latest(run_dir.checkpoints_dir)
            resume.check(state.get("config"), config.to_dict())
        except (checkpoint.CheckpointError, resume.ResumeRefused) as exc:
            raise ConfigError(str(exc)) from None
        done = state["progress"]["epoch"]
        if done >= config.train.epochs and state["progress"]["batch"] == 0:
            raise ConfigError(
                f"{run_dir.path.name} already finished {done} of {config.train.epochs} epochs; "
                f"continue with --set train.epochs={done + 1}"
            )
    except BaseException:
        if held is not None:
            held.release()
        raise
    if held is not None:
        held.record_pid()
    return Resume(run_dir, config, ckpt, held, note)
