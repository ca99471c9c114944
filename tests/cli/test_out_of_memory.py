"""A run that runs out of memory ends with one line that names the fix, and its run directory says why."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

from snnlab import load_config
from snnlab.engine.session import out_of_memory

DATA_LIMIT = 2 * 2**30  # bytes of heap and private mappings the run may hold


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (DATA_LIMIT, DATA_LIMIT))


@pytest.mark.slow
def test_a_run_out_of_memory_says_to_segment_the_backward_pass(tmp_path):
    # 128 samples x 15,000 steps x 256 neurons is 1.8 GiB a buffer in float32: the first step cannot get its buffers
    # under the limit, as on a machine with too little memory (the limit keeps the test off the real machine's).
    command = [sys.executable, "-m", "snnlab", "run", "quickstart", "--set", "data.time_steps=15000"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, preexec_fn=_limit_memory)
    assert done.returncode == 1, done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("snnlab: error:")]
    assert error == [
        "snnlab: error: out of memory on cpu; set train.bptt_segment=auto (the same gradients, activations kept "
        "for about sqrt(T) steps) or lower data.batch_size or data.time_steps"
    ]
    assert "Traceback" not in done.stderr
    (run,) = (tmp_path / "runs").iterdir()
    last = json.loads((run / "events.jsonl").read_text().splitlines()[-1])
    assert (last["event"], last["reason"], last["step"]) == ("run_failed", "out_of_memory", 0)


def test_the_advice_leaves_out_segments_once_they_are_on():
    config = load_config("quickstart", overrides=["train.bptt_segment=auto"])
    assert out_of_memory(config, "cuda:0") == "out of memory on cuda:0; lower data.batch_size or data.time_steps"
    assert "bptt_segment" in out_of_memory(load_config("quickstart"), "cpu")
