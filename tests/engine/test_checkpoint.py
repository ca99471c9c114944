"""Checkpoint files: checksum, refusal of damaged or planted files, atomic replacement, permissions."""

from __future__ import annotations

import errno
import hashlib
import os
import stat

import pytest
import torch

from snnlab.config import config_from_dict
from snnlab.engine import checkpoint, files
from snnlab.engine.files import WriteError
from snnlab.engine.session import Progress, Session
from snnlab.engine.trainer import train


class Planted:
    """Unpickling this creates a folder: the marker that code from a checkpoint ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


class FullDisk:
    """A file on a disk that has ``room`` bytes left: the write that passes it writes what fits, then fails."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, data):
        if len(data) > self.room:
            self.f.write(memoryview(data)[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def plant(path, marker, *, with_checksum: bool) -> None:
    """A checkpoint whose pickle runs code. ``with_checksum``: wrapped in the current format with a valid
    checksum (a checksum proves nothing against someone who writes the file, so weights_only must hold)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".raw")
    torch.save({"format": checkpoint.FORMAT, "progress": {"epoch": 1, "batch": 0}, "x": Planted(marker)}, raw)
    payload = raw.read_bytes()
    raw.unlink()
    if with_checksum:
        digest = hashlib.sha256(payload).hexdigest()
        payload = f"{checkpoint.FORMAT}\nsha256:{digest}\n".encode() + payload
    path.write_bytes(payload)


def state_of(tiny_config_dict, **train) -> dict:
    tiny_config_dict["train"].update(train)
    session = Session(config_from_dict(tiny_config_dict))
    return session.state(Progress(epoch=1, step=4, last_test=(0.5, 0.25), elapsed=12.5))


@pytest.mark.parametrize("with_checksum", [False, True])
def test_a_planted_pickle_is_refused_without_running(tmp_path, with_checksum):
    marker = tmp_path / "pwned"
    plant(tmp_path / "last.pt", marker, with_checksum=with_checksum)
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load(tmp_path / "last.pt")
    assert not marker.exists()
    assert str(tmp_path / "last.pt") in str(err.value) and "\n" not in str(err.value)
    if with_checksum:
        assert "refusing to load" in str(err.value)


@pytest.mark.parametrize("scheduler", ["none", "cosine", "step"])
def test_every_part_of_the_state_round_trips_with_weights_only(tmp_path, tiny_config_dict, scheduler):
    state = state_of(tiny_config_dict, scheduler=scheduler, optimizer="adam")
    checkpoint.save(tmp_path / "last.pt", state)
    back = checkpoint.load(tmp_path / "last.pt")
    assert back["progress"] == state["progress"] and back["config"] == state["config"]
    assert back["scheduler"] == state["scheduler"]
    assert torch.equal(back["rng"]["torch"], state["rng"]["torch"])
    assert all(torch.equal(back["model"][k], v) for k, v in state["model"].items())
    session = Session(config_from_dict(tiny_config_dict))
    assert session.restore(back) == Progress(**state["progress"])


def test_a_checkpoint_with_4_kib_zeroed_is_refused(tmp_path, tiny_config_dict):
    path = tmp_path / "checkpoints" / "last.pt"
    checkpoint.save(path, state_of(tiny_config_dict))
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(4096)
    path.write_bytes(bytes(data))
    with pytest.raises(checkpoint.CheckpointError, match=r"damaged checkpoint \(its checksum does not match\)") as err:
        checkpoint.load(path)
    message = str(err.value)
    assert message.startswith(str(path)) and "best.pt" in message and "\n" not in message


def test_a_checkpoint_from_before_the_checksum_still_loads_but_never_runs_code(tmp_path, tiny_config_dict):
    path = tmp_path / "last.pt"
    state = state_of(tiny_config_dict)
    torch.save({"format": "snnlab-checkpoint-1", **state}, path)
    loaded = checkpoint.load(path)
    assert loaded["format"] == "snnlab-checkpoint-1" and loaded["progress"] == state["progress"]
    marker = tmp_path / "ran"
    torch.save({"format": "snnlab-checkpoint-1", "payload": Planted(marker)}, path)
    with pytest.raises(checkpoint.CheckpointError, match="holds Python objects"):
        checkpoint.load(path)
    assert not marker.exists()


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, tiny_config_dict, monkeypatch):
    path = tmp_path / "last.pt"
    old = state_of(tiny_config_dict)
    checkpoint.save(path, old)
    before = path.read_bytes()
    real_open = open

    monkeypatch.setattr(files, "open", lambda *a, **k: FullDisk(real_open(*a, **k), 10_000), raising=False)
    with pytest.raises(WriteError) as err:
        checkpoint.save(path, state_of(tiny_config_dict, lr=0.5))
    assert str(err.value) == f"cannot write {path}: No space left on device (free some space, then resume the run)"
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    monkeypatch.undo()
    assert checkpoint.load(path)["progress"] == old["progress"]


def test_latest_takes_best_pt_when_last_pt_is_missing_or_damaged(tmp_path, tiny_config_dict):
    folder = tmp_path / "checkpoints"
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint there"):
        checkpoint.latest(folder)
    checkpoint.save(folder / "best.pt", state_of(tiny_config_dict))
    path, state, note = checkpoint.latest(folder)
    assert path == folder / "best.pt" and state["progress"]["epoch"] == 1
    assert note == f"{folder / 'last.pt'}: missing; resuming from best.pt instead (end of epoch 1)"
    (folder / "last.pt").write_bytes(b"snnlab-checkpoint-2\nsha256:" + b"0" * 64 + b"\nrubbish")
    path, _, note = checkpoint.latest(folder)
    assert path == folder / "best.pt" and "damaged checkpoint" in note and "resuming from best.pt" in note
    (folder / "best.pt").write_bytes(b"PK\x03\x04")
    with pytest.raises(checkpoint.CheckpointError, match=r"last.pt: damaged .*best.pt: damaged checkpoint"):
        checkpoint.latest(folder)
    checkpoint.save(folder / "last.pt", state_of(tiny_config_dict))
    assert checkpoint.latest(folder)[0] == folder / "last.pt" and checkpoint.latest(folder)[2] is None


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_every_file_of_a_run_gets_the_mode_a_plain_open_gives(tmp_path, tiny_config_dict, umask):
    from snnlab.runs import RunDir, RunWriter

    tiny_config_dict["train"]["epochs"] = 1
    old = os.umask(umask)
    try:
        run = RunDir(tmp_path, "modes", tiny_config_dict)
        with RunWriter(run) as writer:
            assert train(config_from_dict(tiny_config_dict), [writer], run_dir=run.path).status == "completed"
    finally:
        os.umask(old)
    written = [p for p in run.path.rglob("*") if p.is_file()]
    names = {p.relative_to(run.path).as_posix() for p in written}
    assert {"summary.json", "events.jsonl", "checkpoints/last.pt", "checkpoints/best.pt"} <= names
    assert any(n.startswith("probes/") for n in names)
    modes = {p.relative_to(run.path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in written}
    assert modes == dict.fromkeys(names, 0o666 & ~umask)
