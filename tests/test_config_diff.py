"""Configs as dotted keys, and the keys where two configs differ (the lab's runs table and config diff)."""

from snnlab.config import Config
from snnlab.config.diff import ABSENT, config_diff, flatten, varying_keys


def test_flatten_writes_keys_as_set_reads_them():
    data = {"train": {"lr": 0.001, "betas": [0.9, 0.999]}, "model": {"layers": [{"type": "linear", "size": 32},
                                                                                 {"type": "linear", "size": 10}]},
            "empty": {}}  # fmt: skip
    assert flatten(data) == {
        "train.lr": 0.001,
        "train.betas": [0.9, 0.999],  # a list of plain values is set as one value
        "model.layers.0.type": "linear",
        "model.layers.0.size": 32,
        "model.layers.1.type": "linear",
        "model.layers.1.size": 10,
        "empty": {},
    }


def test_the_diff_lists_changed_added_and_removed_keys_in_order():
    old = {"run": {"name": "a"}, "train": {"lr": 0.001, "epochs": 3, "seed": 1}, "model": {"layers": [{"size": 32}]}}
    new = {"run": {"name": "b"}, "train": {"lr": 0.002, "epochs": 3.0, "seed": True},
           "model": {"layers": [{"size": 32}, {"size": 10}]}}  # fmt: skip
    assert config_diff(old, new, skip=("run.",)) == [
        ("train.lr", 0.001, 0.002),
        ("train.seed", 1, True),  # True is not 1 here; 3 and 3.0 are one value
        ("model.layers.1.size", ABSENT, 10),
    ]
    assert config_diff(new, old, skip=("run.",))[-1] == ("model.layers.1.size", 10, ABSENT)
    assert config_diff(old, old) == []
    assert config_diff(old, new)[0] == ("run.name", "a", "b")


def test_varying_keys_of_real_configs():
    a, b, c = (Config().to_dict() for _ in range(3))
    b["train"]["lr"] = a["train"]["lr"] * 2
    c["model"]["neuron"]["surrogate"] = "sigmoid" if a["model"]["neuron"]["surrogate"] != "sigmoid" else "atan"
    c["run"]["name"] = "other"
    assert varying_keys([a, b, c], skip=("run.",)) == sorted(
        ["train.lr", "model.neuron.surrogate"], key=list(flatten(a)).index
    )
    assert varying_keys([a, a]) == []
