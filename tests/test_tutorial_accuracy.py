"""benchmarks/tutorial_accuracy.py: its verdict rule on hand-made accuracies, and a resumed run that has
every seed already done trains nothing and prints the table from the results file."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "tutorial_accuracy.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("tutorial_accuracy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def side(*percents):
    return {str(seed): {"accuracy": p / 100, "seconds": 10.0} for seed, p in enumerate(percents)}


def test_stats_and_verdict_by_hand(script):
    a = script.stats([70.0, 72.0, 74.0])  # mean 72, sample SD 2
    b = script.stats([71.0, 73.0, 75.0])  # mean 73, sample SD 2
    assert (a["mean"], a["sd"], a["min"], a["max"]) == pytest.approx((72.0, 2.0, 70.0, 74.0))
    v = script.verdict(a, b)
    assert v["diff"] == pytest.approx(-1.0)
    assert v["pooled_sd"] == pytest.approx(2.0)
    assert v["welch_t"] == pytest.approx(-1.0 / (8 / 3) ** 0.5)
    assert v["ranges_overlap"] and v["within"]

    far = script.verdict(a, script.stats([80.0, 82.0, 84.0]))  # 10 points apart, pooled SD 2
    assert far["diff"] == pytest.approx(-10.0) and not far["within"] and not far["ranges_overlap"]

    # the edge: a gap of exactly one pooled SD is still within, a hair more is not
    edge = script.stats([74.0, 76.0, 78.0])  # mean 76: 4 points from a, pooled SD 2
    assert not script.verdict(a, edge)["within"]
    assert script.verdict(a, script.stats([72.0, 74.0, 76.0]))["within"]  # 2 points, SD 2


def test_a_resumed_run_with_every_seed_done_prints_the_table(tmp_path):
    results = {
        "snntorch-tutorial5": {"snnlab": side(70, 72, 74), "tutorial": side(80, 82, 84)},
        "spikingjelly-lif-fc": {"snnlab": side(70, 72, 74), "tutorial": side(71, 73, 75)},
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    # a peer interpreter that cannot run: any attempt to train would fail the run's rows, not pass
    args = [sys.executable, str(SCRIPT), "--seeds", "3", "--json", str(path), "--peer-python", "/nonexistent"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "seed" not in done.stderr  # nothing was started
    out = done.stdout
    assert "| snntorch-tutorial5 | snnlab | 3 | 72.00% | 2.00 | 70.00 - 74.00 | 10 |" in out
    assert "| snntorch-tutorial5 | tutorial | 3 | 82.00% | 2.00 | 80.00 - 84.00 | 10 |" in out
    assert "- snntorch-tutorial5: difference of means -10.00 points" in out
    assert "**NOT within seed spread**" in out
    assert "- spikingjelly-lif-fc: difference of means -1.00 points, pooled SD 2.00" in out
    assert "**within seed spread**" in out
    assert json.loads(path.read_text()) == results


def test_an_unknown_comparison_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--only", "tutorial6"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: unknown comparison tutorial6; choose from snntorch-tutorial5, spikingjelly-lif-fc"
    )
