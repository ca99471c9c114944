"""`snnlab run --resume`: what it may change, what it refuses (leaving the run as it was), the lock that
keeps one process per run directory, and a run killed outright continuing to the same weights."""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from snnlab.engine import checkpoint
from tests.cli.test_cli import only_run, snnlab, write

pytestmark = pytest.mark.slow  # training subprocesses, killed and resumed


def digest(run: Path) -> dict[str, str]:
    """Every file under the run directory (hidden ones too) -> hash of its bytes."""
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(run.rglob("*"))
    }


def events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]


def logged_step(folder: Path) -> int:
    """The last optimizer step in the events of the one run under ``folder`` (0 before any)."""
    steps = [0]
    for path in folder.glob("runs/*/events.jsonl"):
        for line in path.read_text().splitlines():
            if '"event": "step"' in line and line.endswith("}"):
                steps.append(json.loads(line)["step"])
    return max(steps)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("snnlab: error:")]


def start(preset: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "snnlab", "run", str(preset), "-q"], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_refused_resumes_leave_the_run_untouched_and_a_changed_lr_is_applied(tmp_path, tiny_config_dict):
    out = snnlab("run", str(write(tmp_path, tiny_config_dict)), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = only_run(tmp_path)
    before = digest(run)
    refusals = {
        "train.optimizer=sgd": "--resume cannot change train.optimizer (adam -> sgd): the optimizer state would not "
        "fit; start a new run",
        "model.layers.1.out_features=128": "--resume cannot change model.layers.1.out_features (32 -> 128): the "
        "checkpoint's weights belong to the old network; start a new run",
    }
    for change, message in refusals.items():
        out = snnlab("run", "--resume", str(run), "--set", "train.epochs=3", "--set", change, cwd=tmp_path)
        assert out.returncode == 2, out.stderr
        assert error_lines(out.stderr) == [f"snnlab: error: {message}"], out.stderr
        assert "Traceback" not in out.stderr
        assert digest(run) == before, change

    # A plain resume still works after the refusals (config.yaml was not rewritten by them), and the new
    # learning rate reaches the optimizer rather than only config.yaml.
    out = snnlab("run", "--resume", str(run), "--set", "train.epochs=3", "--set", "train.lr=0.5", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lrs = {e["epoch"]: e["lr"] for e in events(run) if e["event"] == "step"}
    assert lrs == {1: 0.002, 2: 0.002, 3: 0.5}
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert {group["lr"] for group in state["optimizer"]["param_groups"]} == {0.5}
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"] == 0.5


def test_a_run_in_use_is_refused_and_one_killed_before_its_first_checkpoint_says_to_start_anew(
    tmp_path, tiny_config_dict
):
    tiny_config_dict["data"].update(train_size=5000, batch_size=10, time_steps=25)  # a long first epoch
    proc = start(write(tmp_path, tiny_config_dict), tmp_path)
    try:
        wait_for(lambda: (tmp_path / "runs").is_dir() and any((tmp_path / "runs").glob("*/events.jsonl"))
                 and '"event": "step"' in next((tmp_path / "runs").glob("*/events.jsonl")).read_text(),
                 "the first step")  # fmt: skip
        # Frozen, it keeps its lock and cannot reach the end of epoch 1 (and its checkpoint) however long the
        # second process takes to start on a busy machine.
        os.kill(proc.pid, signal.SIGSTOP)
        run = only_run(tmp_path)
        before = digest(run)
        out = snnlab("run", "--resume", str(run), cwd=tmp_path)
        assert proc.poll() is None, "the run ended before the second process tried it"
        assert out.returncode == 2, out.stderr
        (line,) = error_lines(out.stderr)
        assert f"run {run.name} is in use: process {proc.pid} is training in it" in line, line
        after = digest(run)
        assert after[".lock"] == before[".lock"] and after["config.yaml"] == before["config.yaml"]
    finally:
        proc.kill()  # SIGKILL in epoch 1: no checkpoint written
        proc.wait(timeout=30)
    assert not (run / "checkpoints" / "last.pt").exists()
    before = digest(run)
    out = snnlab("run", "--resume", run.name, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    (line,) = error_lines(out.stderr)
    assert "has no checkpoint to continue from" in line, line
    assert line.endswith(f"start it anew with: snnlab run {Path('runs') / run.name / 'config.yaml'}"), line
    assert digest(run) == before


def test_a_run_killed_at_a_random_point_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, tiny_config_dict):
    tiny_config_dict["data"].update(train_size=1000, encoder="rate")  # rate: the encoder's RNG must carry over
    tiny_config_dict["train"]["epochs"] = 6
    tiny_config_dict["run"]["checkpoint_steps"] = 7  # 20 batches an epoch: the kill may resume mid-epoch
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir(), killed.mkdir()
    out = snnlab("run", str(write(straight, tiny_config_dict)), "-q", cwd=straight)
    assert out.returncode == 0, out.stderr

    proc = start(write(killed, tiny_config_dict), killed)
    # The kill lands at a random step, not after a random time: how many steps a second holds depends on the
    # machine, and a run that finished before its kill would prove nothing. Steps 8-60 of 120: after the
    # first checkpoint (step 7), with half the run left as margin for the kill to arrive.
    kill_step = random.randint(8, 60)
    wait_for(lambda: logged_step(killed) >= kill_step or proc.poll() is not None, f"step {kill_step}")
    assert proc.poll() is None, f"the run ended before the kill at step {kill_step}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    run = only_run(killed)
    progress = checkpoint.load(run / "checkpoints" / "last.pt")["progress"]
    done = (progress["epoch"], progress["batch"])
    assert done < (6, 0), kill_step

    out = snnlab("run", "--resume", str(run), "-q", cwd=killed)  # at once: the OS released the dead run's lock
    assert out.returncode == 0, (kill_step, out.stderr)
    a = checkpoint.load(only_run(straight) / "checkpoints" / "last.pt")
    b = checkpoint.load(run / "checkpoints" / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), (name, kill_step, done)
    final = lambda r: [e for e in events(r) if e["event"] == "epoch"][-1]  # noqa: E731
    metrics = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
    assert {k: final(run)[k] for k in metrics} == {k: final(only_run(straight))[k] for k in metrics}


def test_the_lock_names_a_live_holder_only(tmp_path):
    from snnlab.runs import RunDir, RunInUseError, lock_run

    run = RunDir(tmp_path / "runs", "demo", {"run": {"name": "demo"}})
    gone = subprocess.Popen(["true"])
    gone.wait()
    (run.path / ".lock").write_text(f"{gone.pid}\n")  # left by a process killed before
    with lock_run(run.path, record=False):  # a resume still checking its config: has not written its pid
        with pytest.raises(RunInUseError) as refused:
            lock_run(run.path)
        assert str(refused.value).startswith(f"run {run.name} is in use: another process is training in it;")
    assert (run.path / ".lock").read_text() == f"{gone.pid}\n"
    with lock_run(run.path):
        with pytest.raises(RunInUseError, match=f"is in use: process {os.getpid()} is training"):
            lock_run(run.path)
    lock_run(run.path).release()
