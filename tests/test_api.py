"""The Python API as a user calls it: the README's example, run on a tiny config, and a fresh interpreter."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import snnlab

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The Python block of the README's "Python API" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


def test_the_readmes_example_runs_and_its_numbers_agree(tmp_path, monkeypatch, tiny_config_dict, capsys):
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(tiny_config_dict))
    code = readme_example()
    assert '"quickstart"' in code  # the example as written, with only its preset swapped for a tiny one
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code.replace('"quickstart"', repr(str(preset))), "README.md", "exec"), scope)

    result, run, evaluation = scope["result"], scope["run"], scope["evaluation"]
    assert isinstance(scope["model"], torch.nn.Module) and isinstance(result.model, torch.nn.Module)
    assert result.status == "completed" and result.run_dir == Path("runs/notebook-1")
    assert result.metrics["epochs"] == 2 and result.config.train.lr == 1e-3
    # What the run recorded, what it returned and what evaluating its best checkpoint gives agree exactly.
    events = [json.loads(line) for line in (tmp_path / "runs/notebook-1/events.jsonl").read_text().splitlines()]
    recorded = [e for e in events if e["event"] == "epoch"]
    assert run.metrics["test_accuracy"] == [e["test_accuracy"] for e in recorded]
    assert result.metrics["test_accuracy"] == recorded[-1]["test_accuracy"]
    best = recorded[[e["test_accuracy"] for e in recorded].index(result.metrics["best_accuracy"])]
    assert (evaluation.epoch, evaluation.accuracy, evaluation.loss) == (
        best["epoch"],
        best["test_accuracy"],
        best["test_loss"],
    )
    assert run.checkpoint.name == "best.pt" and not run.model.training
    printed = capsys.readouterr().out
    assert "epoch 1: test accuracy" in printed and "epoch 2: test accuracy" in printed


def test_build_model_gives_the_weights_a_run_starts_from_and_leaves_the_random_state(tiny_config_dict):
    from snnlab.config import config_from_dict
    from snnlab.engine.session import prepare

    config = config_from_dict(tiny_config_dict)
    before = torch.get_rng_state()
    model = snnlab.build_model(config)
    assert torch.equal(torch.get_rng_state(), before)
    started = prepare(config).model.state_dict()
    weights = model.state_dict()
    assert list(weights) == list(started) and all(torch.equal(weights[k], started[k]) for k in weights)
    out = model(torch.rand(4, 3, 1, 28, 28))  # [T, B, C, H, W]
    assert out.spikes.shape == out.membrane.shape == (4, 3, 10)


def test_errors_are_the_clis_exceptions(tmp_path, tiny_config_dict):
    with pytest.raises(snnlab.ConfigError, match="did you mean 'time_steps'"):
        snnlab.load_config("quickstart", overrides=["data.time_step=5"])
    config = snnlab.load_config("quickstart", overrides=[f"data.data_dir={tmp_path}", "data.download=false"])
    missing = config.model_copy(update={"data": config.data.model_copy(update={"dataset": "mnist"})})
    with pytest.raises(snnlab.TrainingError) as failed:
        snnlab.train(missing, run_dir=tmp_path / "run")
    assert failed.value.reason == "data" and not (tmp_path / "run").exists()  # nothing left behind
    with pytest.raises(snnlab.RunDirError, match="no run 'nope'"):
        snnlab.load_run("nope", runs_dir=tmp_path)


def test_a_fresh_interpreter_loads_a_config_without_torch(tmp_path, tiny_config_dict):
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(tiny_config_dict))
    code = (
        "import sys, snnlab\n"
        f"config = snnlab.load_config({str(preset)!r}, overrides=['train.epochs=3'])\n"
        "print(type(config).__name__, config.train.epochs, config.data.dataset, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Config", "3", "bundled", "False"]


def test_the_package_is_marked_typed():
    assert (ROOT / "snnlab" / "py.typed").is_file()
    package_data = (ROOT / "pyproject.toml").read_text().split("[tool.setuptools.package-data]", 1)[1]
    assert '"py.typed"' in package_data.split("\n[", 1)[0]


def test_train_writes_the_loggers_its_config_names_into_the_run_directory(tmp_path, tiny_config_dict):
    from snnlab.config import config_from_dict
    from tests.cli.test_tensorboard import expected_series, f32, read_tensorboard, series

    tiny_config_dict["run"]["loggers"] = ["tensorboard"]
    result = snnlab.train(config_from_dict(tiny_config_dict), run_dir=tmp_path / "run")
    board = read_tensorboard(tmp_path / "run" / "tensorboard")
    expected = expected_series(tmp_path / "run")
    assert series(board, "test/accuracy") == expected["test/accuracy"] != []
    assert series(board, "test/accuracy")[-1][1] == f32(result.metrics["test_accuracy"])
