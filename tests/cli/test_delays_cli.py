"""`snnlab run shd-delays` end to end on files written in SHD's format: the delayed network trains, and its
checkpoint keeps each layer's sigma as the epoch schedule left it."""

from __future__ import annotations

import json

import pytest

from snnlab.engine import checkpoint
from snnlab.engine.layers import sigma_at
from tests.cli.test_cli import only_run, snnlab
from tests.cli.test_events_cli import write_shd_files

pytest.importorskip("h5py")


@pytest.mark.slow  # trains in a subprocess
def test_shd_delays_preset_runs_on_shd_format_files(tmp_path):
    write_shd_files(tmp_path / "data" / "SHD", train=32, test=16)
    sets = ["data.data_dir=data", "train.epochs=2", "data.batch_size=16", "data.time_steps=20", "train.device=cpu",
            "model.layers.0.sigma_anneal=1.0"]  # fmt: skip
    out = snnlab("run", "shd-delays", "-q", *[arg for s in sets for arg in ("--set", s)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = only_run(tmp_path)
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert len(epochs) == 2 and all(0.0 <= e["test_accuracy"] <= 1.0 for e in epochs)
    state = checkpoint.load(run / "checkpoints" / "last.pt")["model"]
    # Set at the start of epoch 2 of 2: the first layer anneals over both epochs, the others over round(0.5) = 0.
    assert state["blocks.0.op.sigma"].item() == pytest.approx(sigma_at(2, 2, 12.0, 0.23, 1.0))
    assert state["blocks.3.op.sigma"].item() == state["blocks.6.op.sigma"].item() == pytest.approx(0.23)
    delays = state["blocks.0.op.delay"]
    assert delays.shape == (256, 140) and 0 <= delays.min() and delays.max() <= 25
