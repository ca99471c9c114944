import pytest

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
