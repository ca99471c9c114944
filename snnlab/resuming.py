"""Continuing a run (``snnlab run --resume RUN``): which run directory, with which config, from which checkpoint.

Everything that can refuse a resume is checked here, before anything in the run directory changes: the run
exists and is not in use, the new config loads, there is a checkpoint that loads, the config changes only
what ``engine/resume.py`` allows, and epochs are left to train. The new config reaches config.yaml only once
the engine has loaded the checkpoint (the face writes it on ``RunStarted``). :func:`resume_refusal` tells from
the folder alone, without torch, why a run cannot be continued (the lab asks it before starting a worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from snnlab import runs
from snnlab.config import Config, ConfigError, find_preset, load_config


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
        if missing := _no_checkpoint(run_dir):
            raise ConfigError(missing)
        from snnlab.engine import checkpoint, resume  # torch: only once a checkpoint is to be read

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


def _no_checkpoint(run_dir: runs.RunDir) -> str | None:
    if any((run_dir.checkpoints_dir / file).exists() for file in ("last.pt", "best.pt")):
        return None
    return (
        f"{run_dir.path.name} has no checkpoint to continue from: it ended before its first one "
        f"(written every run.checkpoint_every epochs, every run.checkpoint_steps steps if set, and when "
        f"stopped with Ctrl-C); start it anew with: snnlab run {run_dir.config_path}"
    )


def resume_refusal(path: Path) -> str | None:
    """Why the run directory ``path`` cannot be continued with its own config, as far as its files tell
    without loading the checkpoint (which :func:`open_resume` does): it completed, another process trains
    in it, or it has no checkpoint. None when it may be continued."""
    info = runs.RunInfo.from_dir(path)
    name = Path(path).name
    if info is not None and info.status == "completed":
        return (
            f"{name} completed all {info.epochs_done} of its epochs: nothing to continue (re-run its config as a new "
            f"run, or continue with more: snnlab run --resume {path} --set train.epochs={info.epochs_done + 1})"
        )
    if info is not None and info.status == "running":
        return f"{name} is still running in another process; wait for it to end or stop it first"
    try:
        return _no_checkpoint(runs.RunDir.open(path))
    except runs.RunDirError as exc:
        return str(exc)
