"""torchrun with two CPU processes (gloo): one run directory, the metrics of one process, resumable."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # torchrun with two processes

TIMEOUT = 180


def launch(args, cwd, nproc, timeout=TIMEOUT):
    """``snnlab *args`` in ``cwd``: a plain process, or ``nproc`` ranks under torchrun on this machine."""
    scratch = Path(cwd) / "tmp"  # torchrun's own temporary folders, kept out of the machine's /tmp
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "TMPDIR": str(scratch)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    if nproc == 1:
        command = [sys.executable, "-m", "snnlab", *args]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",  # a rendezvous on localhost at a port the store picks itself: no port race
            "--nproc_per_node",
            str(nproc),
            "-m",
            "snnlab",
            *args,
        ]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def epochs(run):
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    return [e for e in events if e["event"] == "epoch"]


def healths(run):
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    return [e for e in events if e["event"] == "health"]


def assert_same_health(a, b):
    """Each rank counts its slice of the test split; the sums over ranks give the one-process numbers."""
    assert [e["epoch"] for e in a] == [e["epoch"] for e in b] and a
    for x, y in zip(a, b, strict=True):
        assert x["synops"] == pytest.approx(y["synops"], rel=1e-6)
        for layer, numbers in x["by_layer"].items():
            other = y["by_layer"][layer]
            for key in ("silent", "saturated", "synops"):
                assert numbers[key] == pytest.approx(other[key], rel=1e-6), (x["epoch"], layer, key)
            assert numbers["weight_grad_norm"] == pytest.approx(other["weight_grad_norm"], rel=1e-3)


def assert_same(a, b):
    assert [e["epoch"] for e in a] == [e["epoch"] for e in b]
    for x, y in zip(a, b, strict=True):
        for key in ("test_loss", "test_accuracy", "train_loss", "train_accuracy"):
            assert x[key] == pytest.approx(y[key], abs=1e-4), (x["epoch"], key)
        for layer, rate in x["spike_rates"].items():
            assert rate == pytest.approx(y["spike_rates"][layer], abs=1e-4)


@pytest.mark.parametrize("encoder", ["direct", "rate"])
def test_two_processes_train_like_one_and_resume(tmp_path, tiny_config_dict, encoder):
    tiny_config_dict["data"]["encoder"] = encoder
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config_dict))
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    for folder in (one, two):
        (folder / "tiny.yaml").write_text(yaml.safe_dump(tiny_config_dict))

    single = launch(["run", "tiny.yaml", "-q"], one, 1)
    assert single.returncode == 0, single.stderr
    double = launch(["run", "tiny.yaml", "-q"], two, 2)
    assert double.returncode == 0, double.stderr + double.stdout

    (run1,) = (one / "runs").iterdir()
    (run2,) = (two / "runs").iterdir()  # only rank 0 made a run directory
    assert_same(epochs(run2), epochs(run1))
    assert_same_health(healths(run2), healths(run1))
    assert json.loads((run2 / "summary.json").read_text())["status"] == "completed"
    assert double.stdout.count("run directory:") == 1  # only rank 0 reports

    # The two-process checkpoint continues with one process and with two, to the same third epoch.
    (two / "copy").mkdir()
    run2b = two / "copy" / run2.name
    subprocess.run(["cp", "-r", str(run2), str(run2b)], check=True)
    resumed1 = launch(["run", "--resume", str(run2), "--set", "train.epochs=3", "-q"], two, 1)
    assert resumed1.returncode == 0, resumed1.stderr
    resumed2 = launch(["run", "--resume", str(run2b), "--set", "train.epochs=3", "-q"], two, 2)
    assert resumed2.returncode == 0, resumed2.stderr + resumed2.stdout
    third1, third2 = epochs(run2)[-1], epochs(run2b)[-1]
    assert third1["epoch"] == third2["epoch"] == 3
    assert_same([third2], [third1])
    assert {p.name for p in (two / "runs").iterdir()} == {run2.name}  # resuming made no new directory


def test_a_failing_run_fails_the_job_with_each_rank_naming_the_error(tmp_path, tiny_config_dict):
    tiny_config_dict["train"]["lr"] = 1e300  # a valid config whose loss diverges at the second step
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config_dict))
    job = launch(["run", "tiny.yaml", "-q"], tmp_path, 2)
    assert job.returncode != 0
    errors = [line for line in job.stderr.splitlines() if line.startswith("snnlab: error")]
    assert len(errors) == 2 and all("loss became nan" in line for line in errors), job.stderr
    assert sum(line.startswith("snnlab: error (rank 1)") for line in errors) == 1
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"
