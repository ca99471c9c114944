"""The C scans really run where they are meant to: a network built from a config, trained one step on the CPU.

Every scan falls back to the torch path when the C one does not apply (``native.usable`` and friends say no),
and the torch path computes the same numbers, so the equivalence tests would pass on it too. These tests
count the calls that reach the C library instead: a neuron type that should run in C but quietly runs the
torch scan (a changed dtype, a parameter of the wrong shape, a build that failed) fails here.
"""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
import torch

from snnlab.engine.kernels import native
from snnlab.engine.models import build_model

pytestmark = pytest.mark.skipif(
    not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")), reason="no C compiler: the torch scans run"
)


class _Counting:
    """Stands in for the loaded library: forwards every call and counts it by function name."""

    def __init__(self, lib) -> None:
        self._lib = lib
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str):
        fn = getattr(self._lib, name)

        def counted(*args):
            self.calls[name] += 1
            return fn(*args)

        return counted


@pytest.fixture
def c_calls(monkeypatch) -> Counter[str]:
    lib = native._load()
    assert lib is not None, f"the C scan did not build: {native.status()}"
    counting = _Counting(lib)
    monkeypatch.setattr(native._LIBRARY, "value", counting)
    return counting.calls


# (neuron spec, the C functions one training step must reach)
CASES = {
    "leaky": ({"type": "leaky", "beta": 0.9}, {"snnlab_leaky_forward", "snnlab_leaky_backward"}),
    "leaky-per-neuron": (
        {"type": "leaky", "beta": [0.8, 0.85, 0.9, 0.95] * 8, "learn_beta": True, "learn_threshold": True},
        {"snnlab_leaky_forward", "snnlab_leaky_backward"},
    ),
    "leaky-zero-reset": (
        {"type": "leaky", "beta": 0.9, "reset": "zero"},
        {"snnlab_leaky_forward", "snnlab_leaky_backward"},
    ),
    "lapicque": ({"type": "lapicque"}, {"snnlab_leaky_forward", "snnlab_leaky_backward"}),
    "synaptic": (
        {"type": "synaptic", "alpha": 0.8, "beta": 0.9},
        {"snnlab_decay_scan", "snnlab_leaky_forward", "snnlab_leaky_backward"},
    ),
    "spikingjelly-lif": ({"type": "lif", "tau": 2.0}, {"snnlab_sj_forward", "snnlab_sj_backward"}),
    "spikingjelly-if": ({"type": "if", "v_reset": None}, {"snnlab_sj_forward", "snnlab_sj_backward"}),
    "spikingjelly-plif": ({"type": "plif", "decay_input": False}, {"snnlab_sj_forward", "snnlab_sj_backward"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_training_step_on_the_cpu_runs_the_c_scan(case, c_calls):
    neuron, expected = CASES[case]
    model = build_model(
        [
            {"type": "linear", "out_features": 32, "neuron": neuron},
            {"type": "linear", "out_features": 10, "neuron": {k: v for k, v in neuron.items() if k != "beta"}},
        ],
        (20,),
    )
    g = torch.Generator().manual_seed(0)
    x = torch.rand(15, 8, 20, generator=g) * 4
    out = model(x, record=8)  # as a training step that takes a health sample: hidden records as copies
    loss = out.membrane.square().mean() + out.spikes.mean()
    loss.backward()
    assert out.layers["fc1"][0].sum() > 0, "no spike: the backward's spike path went unchecked"
    missing = expected - set(c_calls)
    assert not missing, f"{case}: the torch scan ran instead of {sorted(missing)} (C calls seen: {dict(c_calls)})"


def test_the_quickstart_preset_trains_in_c(c_calls):
    """Through the whole engine (config, session, trainer), as ``snnlab run quickstart`` trains."""
    import snnlab

    result = snnlab.train(snnlab.load_config("quickstart", overrides=["train.epochs=1"]))
    assert result.status == "completed"
    assert {"snnlab_leaky_forward", "snnlab_leaky_backward"} <= set(c_calls), dict(c_calls)


def test_a_conv_step_pools_in_c(c_calls):
    model = build_model(
        [
            {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "neuron": {"type": "leaky", "beta": 0.9}},
            {"type": "maxpool", "kernel_size": 2},
            {"type": "flatten"},
            {"type": "linear", "out_features": 10, "neuron": {"type": "leaky", "beta": 0.9}},
        ],
        (1, 10, 10),
    )
    x = torch.rand(6, 4, 1, 10, 10, generator=torch.Generator().manual_seed(0)) * 4
    out = model(x)
    (out.membrane.square().mean() + out.spikes.mean()).backward()
    expected = {"snnlab_maxpool_forward", "snnlab_maxpool_backward", "snnlab_leaky_forward", "snnlab_leaky_backward"}
    assert expected <= set(c_calls), dict(c_calls)
