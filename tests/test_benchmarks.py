"""The benchmark script runs end to end (a small slice of it) and prints its table."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs a slice of the benchmark script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"
LIBRARIES = ("floor", "snnlab", "snnlab-modules", "snnlab-ref")


def test_the_benchmark_prints_a_row_per_library_and_case():
    only = ",".join(("fc-direct", "long-T100", *LIBRARIES, "speed"))
    args = [sys.executable, str(SCRIPT), "--repeats", "2", "--warmup", "1", "--only", only]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {}  # (network, library) -> cells: device, network, B, T, library, backend, step ms, ...
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 6 and cells[0] == "cpu":
            rows[cells[1], cells[4]] = cells
    assert set(rows) == {(case, lib) for case in ("fc-direct", "long-T100") for lib in LIBRARIES}
    for key, cells in rows.items():
        if key == ("long-T100", "floor"):
            assert cells[5].startswith("skipped: no layer: the neuron is the whole step")
        elif key == ("long-T100", "snnlab-modules"):
            assert cells[5].startswith("skipped: written for tutorial 5's network only")
        else:
            assert float(cells[6]) > 0, cells  # step ms
            assert float(cells[10]) > 0 and float(cells[11]) > 0, cells  # peak and saved MB, from their own process
    assert rows["fc-direct", "snnlab"][5] == "fused" and rows["fc-direct", "snnlab-ref"][5] == "reference"
    assert rows["fc-direct", "snnlab-modules"][5] == "fused, own loop"
    # the floor is snnlab's layers without their neurons: every fc-direct row is measured against it
    assert rows["fc-direct", "floor"][5] == "snnlab's layers, no neuron" and float(rows["fc-direct", "floor"][12]) == 1
    assert float(rows["fc-direct", "snnlab-ref"][12]) > 0
    assert "## Targets" in done.stdout


def test_the_memory_benchmark_prints_a_row_per_setting_and_compaction_lowers_a_deep_networks_peak():
    script = SCRIPT.parent / "bptt_memory.py"
    args = [sys.executable, str(script), "--steps", "200", "--inputs", "100", "--hidden", "256,256,256",
            "--classes", "4", "--segments", "off", "--compact", "off,on", "--repeats", "1"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    peaks = {}  # compact_spikes -> peak MB of one step
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[:2] == ["200", "off"]:
            peaks[cells[2]] = float(cells[3])
    assert set(peaks) == {"off", "on"}, done.stdout
    # three hidden layers' [200, 32, 256] spikes saved in one byte instead of four (0.83 of the peak at T=500)
    assert 0 < peaks["on"] < 0.95 * peaks["off"], peaks
