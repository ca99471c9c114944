"""`snnlab export` and `snnlab import` as a user runs them: subprocesses, exit codes, one-line errors, and an
imported run that `snnlab run --resume` trains on."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

nir = pytest.importorskip("nir")

from snnlab import runs  # noqa: E402
from snnlab.config import config_from_dict  # noqa: E402
from snnlab.engine import checkpoint  # noqa: E402
from snnlab.engine.models import build_model  # noqa: E402
from tests.cli.test_cli import snnlab  # noqa: E402

ZERO = {"type": "leaky", "beta": 0.8, "reset": "zero", "reset_delay": False}
SMALL = ["--set", "data.train_size=200", "--set", "data.test_size=100", "--set", "data.batch_size=50",
         "--set", "data.time_steps=4", "--set", "train.device=cpu"]  # fmt: skip


def make_run(tmp_path, config_dict, name="made"):
    """A run directory holding config.yaml and checkpoints/best.pt of a network drawn from seed 0 (no training)."""
    config = config_from_dict(config_dict)
    torch.manual_seed(0)
    model = build_model(config.layer_specs(), (1, 28, 28))
    run = runs.RunDir.create_at(tmp_path / "runs" / name, config.to_dict())
    checkpoint.save(run.checkpoints_dir / "best.pt", {"model": model.state_dict(), "config": config.to_dict(),
                                                      "progress": {"epoch": 1}})  # fmt: skip
    return run.path, model


def model_of(run_path, name="last.pt"):
    state = checkpoint.load(run_path / "checkpoints" / name)
    config = config_from_dict(state["config"])
    model = build_model(config.layer_specs(), (1, 28, 28))
    model.load_state_dict(state["model"])
    return model.eval(), config


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("snnlab: error:")]


def test_export_then_import_gives_a_run_with_the_same_network(tmp_path, tiny_config_dict):
    tiny_config_dict["model"]["neuron"] = {**ZERO, "surrogate": "sigmoid"}
    run, model = make_run(tmp_path, tiny_config_dict)
    out = snnlab("export", "made", "-o", "net.nir", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "wrote net.nir" in out.stdout and "surrogate sigmoid" in out.stderr
    graph = nir.read(tmp_path / "net.nir")
    assert float(graph.metadata["dt"]) == 1e-4 and "made/checkpoints/best.pt (epoch 1)" in graph.metadata["source"]
    assert sorted(type(n).__name__ for n in graph.nodes.values()) == ["Affine", "Affine", "Flatten", "Input", "LIF",
                                                                      "LIF", "Output"]  # fmt: skip
    out = snnlab("import", "net.nir", "-o", "runs/imported", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "snnlab run --resume runs/imported" in out.stdout
    back, config = model_of(tmp_path / "runs" / "imported")
    # the run's own settings travel in the file's metadata: data, training, every neuron's surrogate
    assert config.data.train_size == 200 and config.model.layers[1].neuron.surrogate == "sigmoid"
    assert yaml.safe_load((tmp_path / "runs" / "imported" / "config.yaml").read_text())["train"]["seed"] == 1
    summary = json.loads((tmp_path / "runs" / "imported" / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["epochs_done"] == 0
    x = torch.rand(5, 3, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2
    with torch.no_grad():
        a, b = model.eval()(x, record=True), back(x, record=True)
    for name in a.layers:
        assert torch.equal(a.layers[name][0], b.layers[name][0]) and torch.equal(a.layers[name][1], b.layers[name][1])
    assert a.layers["fc1"][0].sum() > 0
    listed = snnlab("runs", cwd=tmp_path)
    assert "imported" in listed.stdout and "stopped" in listed.stdout  # `snnlab runs` lists it, ready to continue


def test_export_refuses_a_reset_nir_cannot_say_in_one_line(tmp_path, tiny_config_dict):
    make_run(tmp_path, tiny_config_dict)  # snnlab's default neuron: subtract reset, delayed
    out = snnlab("export", "made", "-o", "net.nir", cwd=tmp_path)
    assert out.returncode == 2
    assert error_lines(out.stderr) == [
        "snnlab: error: model.layers.1 (fc1) leaky neuron: cannot export reset subtract: NIR's LIF sets the membrane "
        "to v_reset (0) in the step it fires, it has no subtract reset; train it with model.neuron.reset: zero and "
        "reset_delay: false to export it"
    ]
    assert "Traceback" not in out.stderr and not (tmp_path / "net.nir").exists()
    out = snnlab("export", "made", "-o", "net.nir", "--checkpoint", "last", cwd=tmp_path)
    assert out.returncode == 2
    (line,) = error_lines(out.stderr)
    assert "made has no last.pt in " in line and line.endswith(
        "checkpoints: export a run that has reached a checkpoint"
    )


def test_import_errors_are_one_line(tmp_path):
    (tmp_path / "junk.nir").write_bytes(b"not hdf5 at all")
    out = snnlab("import", "junk.nir", "-o", "imp", cwd=tmp_path)
    assert out.returncode == 2 and len(error_lines(out.stderr)) == 1 and "Traceback" not in out.stderr
    assert "junk.nir: not a NIR file snnlab can read" in out.stderr and not (tmp_path / "imp").exists()
    weight = np.ones((10, 12), np.float32)
    lif = nir.LIF(tau=np.full(10, 1e-3), r=np.full(10, 10.0), v_leak=np.zeros(10), v_threshold=np.ones(10))
    nir.write(tmp_path / "small.nir", nir.NIRGraph.from_list(nir.Affine(weight=weight, bias=np.zeros(10)), lif))
    out = snnlab("import", "small.nir", "-o", "imp", "--set", "data.dataset=bundled", "--set", "data.encoder=direct",
                 cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2
    assert error_lines(out.stderr) == ["snnlab: error: small.nir: the network takes [12] per step but bundled gives "
                                       "[1, 28, 28]; pick data with --set data.dataset=..."]  # fmt: skip
    out = snnlab("import", "small.nir", "-o", "imp", cwd=tmp_path)  # 12 inputs, 10 classes: the synthetic task
    assert out.returncode == 0, out.stderr
    assert "the file names no dt" in out.stderr
    assert yaml.safe_load((tmp_path / "imp" / "config.yaml").read_text())["data"]["synthetic"]["inputs"] == 12
    out = snnlab("import", "small.nir", "-o", "imp", cwd=tmp_path)
    assert out.returncode == 2 and "imp: it exists already" in out.stderr


@pytest.mark.slow  # trains in a subprocess
def test_an_imported_snntorch_file_trains_on_with_resume(tmp_path):
    """The file snnTorch wrote (tests/fixtures) becomes a run on the bundled data, and --resume trains it."""
    from tests.interop.test_nir import FIXTURES

    out = snnlab("import", str(FIXTURES / "snntorch_export.nir"), "-o", "imp", *SMALL, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    before, _ = model_of(tmp_path / "imp")
    out = snnlab("run", "--resume", "imp", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "imp" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_done"] == 1 and summary["steps"] == 4
    after, _ = model_of(tmp_path / "imp")
    assert not torch.equal(before.blocks[0].op.weight, after.blocks[0].op.weight)  # it trained
    assert torch.equal(before.blocks[3].neuron.beta, after.blocks[3].neuron.beta)  # snnTorch's per-neuron decay kept


def test_without_the_nir_package_the_commands_say_how_to_get_it(tmp_path):
    code = ("import sys; sys.modules['nir'] = None; sys.argv = ['snnlab', 'import', 'x.nir', '-o', 'out']; "
            "from snnlab.cli import main; main()")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert error_lines(out.stderr) == ["snnlab: error: NIR files need the nir package: pip install 'snnlab[nir]'"]
