"""The benchmark script runs end to end (a small slice of it) and prints its table."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs a slice of the benchmark script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"
LIBRARIES = ("snnlab", "snnlab-bf16", "snnlab-ref")


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
        if key == ("long-T100", "snnlab-bf16"):
            assert cells[5].startswith("skipped: no layer to run in bfloat16")
        else:
            assert float(cells[6]) > 0, cells  # step ms
    assert rows["fc-direct", "snnlab"][5] == "fused" and rows["fc-direct", "snnlab-ref"][5] == "reference"
    assert "## Targets" in done.stdout
