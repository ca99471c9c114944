"""The CLI, run as a user runs it: a subprocess, exit codes, stderr, the run directory it leaves."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def snnlab(*args, cwd, timeout=240):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "snnlab", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def write(tmp_path, data, name="preset.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data)
    return path


def only_run(tmp_path):
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    return run


@pytest.mark.slow  # trains in a subprocess
def test_a_good_preset_trains_and_writes_a_complete_run_directory(tmp_path, tiny_config_dict):
    preset = write(tmp_path, tiny_config_dict)
    out = snnlab("run", str(preset), "--set", "train.epochs=1", "--set", "train.decoder=rate_first", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = only_run(tmp_path)
    assert run.name.startswith("tiny-")
    # Every accuracy says which decoder measured it: the start line, the summary's rows, summary.json.
    assert "accuracy by the rate_first decoder" in out.stderr + out.stdout
    assert "best test accuracy" in out.stdout and "% (rate_first)" in out.stdout
    assert {"config.yaml", "events.jsonl", "summary.json", "probes", "checkpoints"} <= {p.name for p in run.iterdir()}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_done"] == 1 and summary["decoder"] == "rate_first"
    kinds = [json.loads(line)["event"] for line in (run / "events.jsonl").read_text().splitlines()]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished" and "probe" in kinds
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 1
    assert list((run / "probes").glob("*.npz")) and (run / "checkpoints" / "last.pt").is_file()
    assert "best test accuracy" in out.stdout.lower() or "accuracy" in out.stdout.lower()
    assert "Traceback" not in out.stderr

    listing = snnlab("runs", cwd=tmp_path)
    assert listing.returncode == 0 and "tiny" in listing.stdout and "completed" in listing.stdout
    shown = snnlab("runs", "show", "tiny", cwd=tmp_path)
    assert shown.returncode == 0 and "fc1" in shown.stdout


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda d: d["data"].update(time_step=5), "did you mean 'time_steps'"),
        (lambda d: d["train"].update(lr=-1), "train.lr"),
        (lambda d: d["train"].update(epochs="many"), "train.epochs"),
        (lambda d: d["model"]["neuron"].update(surrogate="atann"), "did you mean 'atan'"),
        (lambda d: d["data"].update(dataset="mnist", data_dir="{empty}", download=False), "mnist"),
    ],
)
def test_a_broken_preset_exits_2_with_one_line(tmp_path, tiny_config_dict, mutate, message):
    mutate(tiny_config_dict)
    if tiny_config_dict["data"].get("data_dir") == "{empty}":
        tiny_config_dict["data"]["data_dir"] = str(tmp_path / "nodata")
    out = snnlab("run", str(write(tmp_path, tiny_config_dict)), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("snnlab: error:")]
    assert len(errors) == 1 and message in errors[0], out.stderr
    assert "Traceback" not in out.stderr


USER_SURROGATE = """
import torch


def box(x, width=0.5):
    return (x.abs() < width).to(x.dtype) / (2 * width)
"""


@pytest.mark.slow  # trains in a subprocess
def test_a_users_own_surrogate_from_the_config_trains(tmp_path, tiny_config_dict):
    (tmp_path / "my_surrogates.py").write_text(USER_SURROGATE)  # found in the current directory
    preset = write(tmp_path, tiny_config_dict)
    sets = ["model.neuron.surrogate=my_surrogates:box", "model.neuron.surrogate_params={width: 1.0}"]
    sets += ["train.max_steps=1", "train.epochs=1"]
    out = snnlab("run", str(preset), *[arg for s in sets for arg in ("--set", s)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = only_run(tmp_path)
    kinds = [json.loads(line)["event"] for line in (run / "events.jsonl").read_text().splitlines()]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished" and "step" in kinds
    neuron = yaml.safe_load((run / "config.yaml").read_text())["model"]["neuron"]
    assert neuron["surrogate"] == "my_surrogates:box" and neuron["surrogate_params"] == {"width": 1.0}


@pytest.mark.parametrize(
    "surrogate,message",
    [
        ("no_such_module_for_snnlab:grad", "surrogate 'no_such_module_for_snnlab:grad': cannot import "
         "'no_such_module_for_snnlab': ModuleNotFoundError: No module named 'no_such_module_for_snnlab'"),
        ("my_surrogates:nothing", "surrogate 'my_surrogates:nothing': 'my_surrogates' has no 'nothing'"),
        ("my_surrogates:box:box", "model.neuron.surrogate: 'my_surrogates:box:box' is not a path to a surrogate"),
    ],
)  # fmt: skip
def test_a_bad_surrogate_path_exits_2_with_one_line(tmp_path, tiny_config_dict, surrogate, message):
    (tmp_path / "my_surrogates.py").write_text(USER_SURROGATE)
    preset = write(tmp_path, tiny_config_dict)
    out = snnlab("run", str(preset), "--set", f"model.neuron.surrogate={surrogate}", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("snnlab: error:")]
    assert len(errors) == 1 and message in errors[0], out.stderr
    assert "Traceback" not in out.stderr


def test_invalid_yaml_and_missing_file_exit_2(tmp_path):
    bad = write(tmp_path, "data:\n  dataset: [bundled\n", name="bad.yaml")
    out = snnlab("run", str(bad), cwd=tmp_path)
    assert out.returncode == 2 and "bad.yaml" in out.stderr and "invalid YAML" in out.stderr
    out = snnlab("run", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert out.returncode == 2 and "nope.yaml" in out.stderr
    assert "Traceback" not in out.stderr
    out = snnlab("run", "quickstart", "--set", "train.lr", cwd=tmp_path)
    assert out.returncode == 2 and "KEY=VALUE" in out.stderr


@pytest.mark.slow  # trains in a subprocess
def test_ctrl_c_stops_with_a_checkpoint_and_resume_continues(tmp_path, tiny_config_dict):
    # Long enough (3 epochs of 500 steps) that the stop lands well before the end, wherever it lands.
    tiny_config_dict["data"].update(train_size=5000, batch_size=10, time_steps=25)
    tiny_config_dict["train"]["epochs"] = 3
    preset = write(tmp_path, tiny_config_dict)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "snnlab", "run", str(preset)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.time() + 120
    events = None
    while time.time() < deadline:
        runs = list((tmp_path / "runs").glob("tiny-*/events.jsonl")) if (tmp_path / "runs").exists() else []
        if runs and '"event": "step"' in runs[0].read_text():
            events = runs[0]
            break
        time.sleep(0.05)
    assert events is not None, "training never started"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    run = events.parent
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary.get("epochs_done", 0) < 3
    assert (run / "checkpoints" / "last.pt").is_file()
    assert "--resume" in stderr and "Traceback" not in stderr

    out = snnlab("run", "--resume", str(run), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_done"] == 3
    lines = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "run_started" for e in lines) == 2
    assert [e["epoch"] for e in lines if e["event"] == "epoch"] == [1, 2, 3]  # each epoch evaluated once

    out = snnlab("run", "--resume", str(run), cwd=tmp_path)
    assert out.returncode == 2 and "--set train.epochs=4" in out.stderr


def test_presets_version_and_help(tmp_path):
    out = snnlab("presets", cwd=tmp_path)
    assert out.returncode == 0
    for name in ("quickstart", "snntorch-tutorial5", "spikingjelly-lif-fc", "brainpy-synthetic", "fashion-csnn"):
        assert name in out.stdout
    assert snnlab("--version", cwd=tmp_path).stdout.startswith("snnlab ")
    assert snnlab("run", cwd=tmp_path).returncode == 2


def test_a_killed_run_is_listed_as_died_not_running(tmp_path, tiny_config_dict):
    tiny_config_dict["data"].update(train_size=5000, batch_size=10, time_steps=25)
    tiny_config_dict["train"]["epochs"] = 3
    preset = write(tmp_path, tiny_config_dict)
    proc = subprocess.Popen([sys.executable, "-m", "snnlab", "run", str(preset), "-q"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:
        summaries = list((tmp_path / "runs").glob("tiny-*/summary.json")) if (tmp_path / "runs").exists() else []
        if summaries and json.loads(summaries[0].read_text() or "{}").get("status") == "running":
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the run never started")
    out = snnlab("runs", "--runs-dir", "runs", cwd=tmp_path)
    assert "running" in out.stdout and "died" not in out.stdout  # alive: taken at its word
    proc.kill()  # SIGKILL: no chance to write its end
    proc.wait(timeout=30)
    assert json.loads(summaries[0].read_text())["status"] == "running"  # what the file still says
    out = snnlab("runs", "--runs-dir", "runs", cwd=tmp_path)
    assert out.returncode == 0 and "died" in out.stdout and "running" not in out.stdout
    out = snnlab("runs", "show", summaries[0].parent.name, "--runs-dir", "runs", cwd=tmp_path)
    assert out.returncode == 0 and "died" in out.stdout.splitlines()[0]


def test_a_reader_that_goes_away_does_not_end_the_run(tmp_path, tiny_config_dict):
    # `snnlab run preset 2>&1 | head -1`: every later write hits a closed pipe.
    preset = write(tmp_path, tiny_config_dict)
    proc = subprocess.Popen([sys.executable, "-m", "snnlab", "run", str(preset)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert proc.stdout.readline().startswith("run tiny-")
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    summary = json.loads((only_run(tmp_path) / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_done"] == 2


def test_lab_with_set_but_no_preset_says_what_is_missing(tmp_path):
    out = snnlab("lab", "--set", "train.lr=0.1", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == "snnlab: error: --set needs a preset: snnlab lab PRESET --set KEY=VALUE"


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n" for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    "preset,args,message",
    [
        ("data:\n  dataset: bund\0led\n", [], "preset.yaml:2: invalid YAML: character U+0000 is not allowed"),
        (ALIAS_BOMB, [], "preset.yaml:6: more than 100,000 values"),
        ("# nothing but a comment\n", [], "preset.yaml: no settings (the file is empty or only comments)"),
        ("quickstart", ["--set", "model.neuron.beta=[0.9,0.8,0.7]"], "model.neuron.beta: has 3 values but"),
        ("quickstart", ["--set", "train.lr=" + "[" * 1000 + "]" * 1000], "nesting deeper than 20 levels"),
        ("quickstart", ["--set", f"model.layers.1.out_features={2**63}"], "the network would have"),
        ("missing-data", [], "dataset 'mnist' not found"),
        ("quickstart", ["--device", "cuda"], "train.device is 'cuda' but no CUDA device is available"),
    ],
)
def test_a_config_that_cannot_run_exits_2_with_one_line_and_no_run_directory(tmp_path, tiny_config_dict, preset,
                                                                             args, message):  # fmt: skip
    if preset == "missing-data":
        tiny_config_dict["data"].update(dataset="mnist", data_dir=str(tmp_path / "no-data"), download=False)
        preset = str(write(tmp_path, tiny_config_dict))
    elif preset != "quickstart":
        preset = str(write(tmp_path, preset))
    if "cuda" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    out = snnlab("run", preset, *args, "--set", f"run.runs_dir={tmp_path / 'runs'}", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.splitlines()
    assert line.startswith("snnlab: error: ") and message in line and len(line) < 450, line
    assert not (tmp_path / "runs").exists()
