"""resuming.open_resume: what it checks before a resume may touch a run directory, and the lock it leaves."""

import os

import pytest

from snnlab import resuming
from snnlab.config import ConfigError, config_from_dict
from snnlab.engine import checkpoint
from snnlab.engine.session import Progress, Session
from snnlab.runs import RunDir, RunInUseError, lock_run


def stopped_run(tmp_path, tiny_config_dict, **progress) -> RunDir:
    """A run of the tiny config with last.pt at ``progress`` (no training: the state of a fresh session)."""
    config = config_from_dict(tiny_config_dict)
    run = RunDir(tmp_path / "runs", "tiny", config.to_dict())
    checkpoint.save(run.checkpoints_dir / "last.pt", Session(config).state(Progress(**progress)))
    return run


def test_a_stopped_run_opens_with_its_config_checkpoint_and_lock(tmp_path, tiny_config_dict):
    run = stopped_run(tmp_path, tiny_config_dict, epoch=1, step=4)
    target = resuming.open_resume(run.name, None, ["train.lr=0.5"], runs_dir=tmp_path / "runs")
    try:
        assert target.run_dir.path == run.path and target.checkpoint == run.checkpoints_dir / "last.pt"
        assert target.config.train.lr == 0.5 and target.note is None
        assert (run.path / ".lock").read_text() == f"{os.getpid()}\n"  # accepted: the pid is recorded
        with pytest.raises(RunInUseError):
            resuming.open_resume(str(run.path), None, [])
    finally:
        target.lock.release()
    unlocked = resuming.open_resume(str(run.path), None, [], lock=False)  # another torchrun rank
    assert unlocked.lock is None and unlocked.checkpoint == target.checkpoint


def test_a_damaged_last_checkpoint_falls_back_to_best_with_a_note(tmp_path, tiny_config_dict):
    run = stopped_run(tmp_path, tiny_config_dict, epoch=1, step=4)
    (run.checkpoints_dir / "last.pt").rename(run.checkpoints_dir / "best.pt")
    (run.checkpoints_dir / "last.pt").write_bytes(b"not a checkpoint")
    target = resuming.open_resume(str(run.path), None, [], lock=False)
    assert target.checkpoint == run.checkpoints_dir / "best.pt"
    assert "resuming from best.pt instead (end of epoch 1)" in target.note


@pytest.mark.parametrize(
    "progress, overrides, message",
    [
        ({"epoch": 1}, ["train.optimizer=sgd"], "--resume cannot change train.optimizer (adam -> sgd): the optimizer"),
        ({"epoch": 2}, [], "already finished 2 of 2 epochs; continue with --set train.epochs=3"),
        (None, [], "has no checkpoint to continue from"),
        ({"epoch": 1}, ["train.lr=fast"], "train.lr"),
    ],
)
def test_a_refused_resume_says_why_in_one_line_and_leaves_the_run_unlocked_and_untouched(
    tmp_path, tiny_config_dict, progress, overrides, message
):
    run = stopped_run(tmp_path, tiny_config_dict, **(progress or {}))
    if progress is None:
        (run.checkpoints_dir / "last.pt").unlink()
    (run.path / ".lock").write_text("12345\n")  # left by an earlier process
    before = {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError) as refused:
        resuming.open_resume(run.name, None, overrides, runs_dir=tmp_path / "runs")
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()} == before
    lock_run(run.path).release()  # the refused resume let go of its claim
