"""A run whose files cannot be written: full disk, read-only files, planted or damaged checkpoints.

Faults are injected at the one place snnlab opens files for writing (``open`` as seen by
``snnlab.engine.files`` and the ``snnlab.runs`` modules), because the tests run as root, for whom chmod does not make a
file read-only. One test also fills a real tmpfs where mounting is permitted. The CLI runs in-process
(``snnlab.cli.main``) so the patches reach it; the planted-pickle test runs it as a subprocess, as a user would.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from snnlab import cli
from snnlab.engine import checkpoint, files
from snnlab.runs import layout, reading, writer

from ..engine.test_checkpoint import FullDisk, plant


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """``snnlab ARGS`` in this process: the exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["snnlab", *args])
    with pytest.raises(SystemExit) as end:
        cli.main()
    return end.value.code, capsys.readouterr().err


def preset(tmp_path, tiny_config_dict, epochs: int = 2) -> str:
    tiny_config_dict["train"]["epochs"] = epochs
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict))
    return str(path)


def only_run(tmp_path) -> Path:
    (run,) = (tmp_path / "runs").iterdir()
    return run


def break_writes(monkeypatch, hit, error: int, room: int = 0) -> None:
    """Files opened for writing whose path satisfies ``hit``: EACCES refuses the open (a read-only file or
    folder), ENOSPC lets ``room`` bytes through per file, then fails."""

    def fake_open(file, mode="r", *args, **kwargs):
        if not any(c in mode for c in "wax+") or not hit(Path(file)):
            return builtins.open(file, mode, *args, **kwargs)
        if error != errno.ENOSPC:
            raise OSError(error, os.strerror(error), str(file))
        return FullDisk(builtins.open(file, mode, *args, **kwargs), room)

    for module in (files, layout, reading, writer):
        monkeypatch.setattr(module, "open", fake_open, raising=False)


def no_temporary_files(run: Path) -> bool:
    return not [p for p in run.rglob("*") if p.name.endswith(".tmp")]


def test_disk_full_at_a_checkpoint_fails_in_one_line_keeps_the_old_one_and_resume_continues(
    tmp_path, tiny_config_dict, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(monkeypatch, capsys, "run", preset(tmp_path, tiny_config_dict, epochs=1))
    assert code == 0, err
    run = only_run(tmp_path)
    last = run / "checkpoints" / "last.pt"
    before = last.read_bytes()

    break_writes(monkeypatch, lambda p: p.parent.name == "checkpoints", errno.ENOSPC, room=20_000)
    code, err = run_cli(monkeypatch, capsys, "run", "--resume", str(run), "--set", "train.epochs=2")
    assert code == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("snnlab: error")]
    assert errors == [
        f"snnlab: error: cannot write {last}: No space left on device (free some space, then resume the run)"
    ]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["reason"] == "write" and str(last) in summary["error"]
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "run_failed"
    assert last.read_bytes() == before and no_temporary_files(run)

    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(monkeypatch, capsys, "run", "--resume", str(run), "--set", "train.epochs=2")
    assert code == 0, err
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


@pytest.mark.parametrize(
    "target,error,reason",
    [
        ("events.jsonl", errno.EACCES, "Permission denied (make it writable"),
        ("events.jsonl", errno.ENOSPC, "No space left on device (free some space"),
        ("checkpoints", errno.EACCES, "Permission denied (make it writable"),
        ("probes", errno.ENOSPC, "No space left on device (free some space"),
        ("summary.json", errno.ENOSPC, "No space left on device (free some space"),
    ],
)
def test_any_file_of_a_run_that_cannot_be_written_ends_it_as_failed_in_one_line(
    tmp_path, tiny_config_dict, monkeypatch, capsys, target, error, reason
):
    def hit(path: Path) -> bool:
        # The temporary file of an atomic write is ".<name>.<random>.tmp" beside the target.
        return target in (path.name, path.parent.name) or path.name.startswith(f".{target}.")

    monkeypatch.chdir(tmp_path)
    break_writes(monkeypatch, hit, error, room=100)
    code, err = run_cli(monkeypatch, capsys, "run", preset(tmp_path, tiny_config_dict))
    assert code == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("snnlab: error")]
    assert len(errors) == 1 and "snnlab: error: cannot write runs/tiny-" in errors[0] and reason in errors[0], err
    run = only_run(tmp_path)
    assert no_temporary_files(run)
    if target != "summary.json":  # what can still be written says how the run ended
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "failed" and summary["reason"] == "write"
    if target != "events.jsonl":
        lines = (run / "events.jsonl").read_text().splitlines()
        assert json.loads(lines[-1])["event"] == "run_failed"
    else:  # a half-written line is cut back, so every line that is there still parses
        assert all(json.loads(line) for line in (run / "events.jsonl").read_text().splitlines())


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs, where this process may mount one (root, outside most containers)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk_ends_the_run_in_one_line(small_disk, tiny_config_dict, monkeypatch, capsys):
    monkeypatch.chdir(small_disk)
    tiny_config_dict["run"]["runs_dir"] = str(small_disk / "runs")
    config = preset(small_disk, tiny_config_dict, epochs=2)
    # Leave room for the small files and one checkpoint (about 320 kB), not for the second.
    filler = small_disk / "filler"
    filler.write_bytes(bytes(4 * 2**20 - 560_000))
    code, err = run_cli(monkeypatch, capsys, "run", config)
    assert code == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("snnlab: error")]
    assert len(errors) == 1 and "No space left on device (free some space, then resume the run)" in errors[0], err
    run = only_run(small_disk)
    assert json.loads((run / "summary.json").read_text())["status"] == "failed" and no_temporary_files(run)
    filler.unlink()
    code, err = run_cli(monkeypatch, capsys, "run", "--resume", str(run))
    assert code == 0, err
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


def test_resume_falls_back_to_best_pt_and_says_so(tmp_path, tiny_config_dict, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(monkeypatch, capsys, "run", preset(tmp_path, tiny_config_dict, epochs=1))
    assert code == 0, err
    run = only_run(tmp_path)
    (run / "checkpoints" / "last.pt").unlink()  # e.g. the disk filled up while it was being written
    code, err = run_cli(monkeypatch, capsys, "run", "--resume", str(run), "--set", "train.epochs=2")
    assert code == 0, err
    assert f"snnlab: {run / 'checkpoints' / 'last.pt'}: missing; resuming from best.pt instead (end of epoch 1)" in err
    assert json.loads((run / "summary.json").read_text())["epochs_done"] == 2


def test_resume_never_runs_a_planted_pickle(tmp_path, tiny_config_dict, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(monkeypatch, capsys, "run", preset(tmp_path, tiny_config_dict, epochs=1))
    assert code == 0, err
    run = only_run(tmp_path)
    marker = tmp_path / "pwned"
    plant(run / "checkpoints" / "last.pt", marker, with_checksum=True)
    plant(run / "checkpoints" / "best.pt", marker, with_checksum=False)
    out = subprocess.run(
        [sys.executable, "-m", "snnlab", "run", "--resume", str(run), "--set", "train.epochs=2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert not marker.exists()
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [
        f"snnlab: error: {run / 'checkpoints' / 'last.pt'}: holds Python objects, not just tensors and plain values, "
        f"and {run / 'checkpoints' / 'best.pt'}: holds Python objects, not just tensors and plain values; "
        "start the run anew"
    ]
    assert checkpoint.FORMAT == "snnlab-checkpoint-2"
