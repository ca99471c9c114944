"""`snnlab run shd` end to end on files written in SHD's format, and its one-line error without them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from tests.cli.test_cli import only_run, snnlab

h5py = pytest.importorskip("h5py")


def write_shd_files(folder, train: int, test: int, seed: int = 0) -> None:
    """Samples whose class sets which quarter of the 700 channels fires, so a network can learn them."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train), ("test", test)):
        with h5py.File(folder / f"shd_{split}.h5", "w") as f:
            times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float32))
            units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
            labels = np.arange(n) % 20
            for i, label in enumerate(labels):
                count = int(rng.integers(50, 150))
                low = (label % 4) * 175
                times[i] = np.sort(rng.uniform(0, 1.2, count)).astype(np.float32)
                units[i] = rng.integers(low, low + 175, count).astype(np.uint16)
            f.create_dataset("labels", data=labels.astype(np.uint8))


@pytest.mark.slow  # trains in a subprocess
def test_shd_preset_runs_end_to_end_on_shd_format_files(tmp_path):
    write_shd_files(tmp_path / "data" / "SHD", train=40, test=20)
    sets = ["data.data_dir=data", "train.epochs=2", "data.batch_size=16", "data.time_steps=20", "train.device=cpu"]
    out = snnlab("run", "shd", "-q", *[arg for s in sets for arg in ("--set", s)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = only_run(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["dataset"] == "shd" and config["data"]["encoder"] == "none"
    epochs = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    epochs = [e for e in epochs if e["event"] == "epoch"]
    assert len(epochs) == 2 and all(0.0 <= e["test_accuracy"] <= 1.0 for e in epochs)
    # The binned frames were cached beside the data, for the next run.
    assert len(list((tmp_path / "data" / "cache").glob("shd-*.frames.npy"))) == 2


@pytest.mark.slow
def test_shd_without_its_files_exits_2_with_one_line(tmp_path):
    out = snnlab("run", "shd", "--set", "data.data_dir=nowhere", "--set", "train.device=cpu", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "shd_train.h5 and shd_test.h5" in lines[0] and "zenkelab.org" in lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
