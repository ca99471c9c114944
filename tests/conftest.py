import os

import pytest
from hypothesis import settings

# Property tests run the same examples in every CI run (derandomized, no example database); a slow CI
# machine must not fail them on time alone. HYPOTHESIS_PROFILE=dev draws new examples each run.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TINY = {
    "description": "tiny run for tests",
    "data": {"dataset": "bundled", "train_size": 200, "test_size": 100, "batch_size": 50, "time_steps": 4},
    "model": {
        "neuron": {"type": "leaky", "beta": 0.9},
        "layers": [
            {"type": "flatten"},
            {"type": "linear", "out_features": 32, "neuron": True},
            {"type": "linear", "out_features": 10, "neuron": True},
        ],
    },
    "train": {"epochs": 2, "lr": 0.002, "seed": 1, "device": "cpu"},
    "run": {"name": "tiny", "probes": {"neurons": 4, "samples": 2}},
}


@pytest.fixture
def tiny_config_dict():
    import copy

    return copy.deepcopy(TINY)


@pytest.fixture(autouse=True, scope="session")
def _no_run_lands_in_the_checkout():
    """Tests write their runs under tmp_path: a run directory that appears in the checkout's ``runs/`` (a
    config left with the default ``runs_dir``) fails the session, naming it."""
    from pathlib import Path

    runs = Path(__file__).resolve().parents[1] / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()
    yield
    after = set(runs.iterdir()) if runs.is_dir() else set()
    assert not after - before, (
        f"tests wrote run directories into the checkout: {sorted(p.name for p in after - before)}"
    )
