"""Every choice a config can name, listed once: what it is called, one line on what it does, and for those
that take parameters, their names and defaults.

The config builds its allowed values from these lists, the lab's form and Surrogates pane show them, and
each engine registry is checked against them when it is imported, so that a choice added here without an
implementation (or implemented without being listed) fails at once rather than when someone picks it.
The implementations whose names are not looked up in a registry (an ``if`` per choice) are covered by
``tests/engine/test_catalog.py``, which runs every choice listed here through the engine.

This module imports neither torch nor any user interface, so a config can be checked, and the lab can draw
its form, without either.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Choice:
    """One value of a setting: its ``name``, a one-line ``description``, and the parameters it takes with
    their defaults (``defaults``; a bool default marks a switch, any other a number)."""

    name: str
    description: str
    defaults: Mapping[str, float | bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Shared by every caller: read-only, so that nobody changes a default for everyone.
        object.__setattr__(self, "defaults", types.MappingProxyType(dict(self.defaults)))


def _listing(*choices: Choice) -> dict[str, Choice]:
    return {choice.name: choice for choice in choices}


DATASETS = _listing(
    Choice("bundled", "Fashion-MNIST sample shipped with snnlab: 5,000 train / 1,000 test 28x28 images, no download"),
    Choice("mnist", "MNIST handwritten digits: 60,000 train / 10,000 test 28x28 images (~12 MB download)"),
    Choice("fashion-mnist", "Fashion-MNIST clothing: 60,000 train / 10,000 test 28x28 images (~30 MB download)"),
    Choice("kmnist", "Kuzushiji-MNIST cursive Japanese: 60,000 train / 10,000 test 28x28 images (~20 MB download)"),
    Choice(
        "synthetic",
        "Poisson spike trains with random labels to memorise (BrainPy surrogate-gradient tutorial)",
        {"samples": 256, "inputs": 100, "time_steps": 200, "rate_hz": 5.0, "dt_ms": 1.0, "classes": 2},
    ),
)

ENCODERS = _listing(
    Choice("direct", "the input itself as a constant current at every step"),
    Choice("rate", "Bernoulli spikes with probability gain*x per step (Poisson rate coding)", {"gain": 1.0}),
    Choice(
        "latency",
        "one spike per input, earlier for larger values (linear or RC/log timing)",
        {"tau": 5.0, "threshold": 0.01, "linear": False},
    ),
    Choice(
        "delta",
        "a spike where the input changes by more than a threshold (+1 up, -1 down if off_spikes)",
        {"threshold": 0.1, "off_spikes": False},
    ),
    Choice("none", "the input is already a spike sequence [B, T, ...] (temporal datasets)"),
)

LAYERS = _listing(
    Choice("linear", "fully connected layer"),
    Choice("conv2d", "2-D convolution"),
    Choice("maxpool", "2-D max pooling"),
    Choice("avgpool", "2-D average pooling"),
    Choice("flatten", "flatten [C, H, W] to [C*H*W]"),
    Choice("dropout", "dropout (one mask for all steps before the 1st neuron)"),
    Choice("batchnorm", "batch normalisation over features or channels"),
)

NEURONS = _listing(
    Choice("leaky", "leaky integrate-and-fire (LIF): the membrane decays by beta each step"),
    Choice("synaptic", "current-based LIF: a synaptic current decaying by alpha feeds the membrane"),
    Choice("rleaky", "recurrent LIF: a layer's spikes feed back into it at the next step"),
    Choice("lapicque", "Lapicque's RC circuit: a LIF neuron with physical R, C and Euler step"),
    Choice("rsynaptic", "recurrent current-based LIF: a layer's spikes feed its synaptic current at the next step"),
    Choice("leaky_parallel", "snnTorch's LeakyParallel: a ReLU RNN read as LIF, own N x N input weights, no reset"),
    Choice("alpha", "alpha neuron: excitatory (decay alpha) and inhibitory (beta < alpha) currents make the membrane"),
)

RESETS = _listing(
    Choice("subtract", "after a spike, subtract the threshold from the membrane"),
    Choice("zero", "after a spike, set the membrane to zero"),
    Choice("none", "no reset: the membrane keeps integrating after a spike"),
)

SURROGATES = _listing(
    Choice("atan", "arctangent; grad (alpha/2)/(1+(pi/2*alpha*x)^2)", {"alpha": 2.0}),
    Choice("fast_sigmoid", "fast sigmoid (SuperSpike); grad 1/(slope*|x|+1)^2", {"slope": 25.0}),
    Choice("sigmoid", "logistic sigmoid; grad slope*s*(1-s), s = sigmoid(slope*x)", {"slope": 25.0}),
    Choice("triangle", "triangle; grad max(0, 1-|x|/width)/width", {"width": 1.0}),
    Choice("straight_through", "straight-through estimator; grad 1"),
    Choice("gaussian", "Gaussian; grad exp(-x^2/(2 sigma^2))/(sqrt(2 pi) sigma)", {"sigma": 0.5}),
    Choice("erf", "error function; grad alpha/sqrt(pi)*exp(-(alpha*x)^2)", {"alpha": 2.0}),
    Choice("soft_sign", "soft sign; grad alpha/(2(1+|alpha*x|)^2)", {"alpha": 2.0}),
    Choice("piecewise_quadratic", "piecewise quadratic; grad alpha - alpha^2*|x| on |x| <= 1/alpha", {"alpha": 1.0}),
)

LOSSES = _listing(
    Choice("ce_membrane", "cross-entropy on the output membrane at every step, summed over time"),
    Choice("ce_rate", "cross-entropy on the output spike counts"),
    Choice(
        "mse_count",
        "MSE between output firing rates and target rates (correct_rate / incorrect_rate)",
        {"correct_rate": 1.0, "incorrect_rate": 0.0},
    ),
)

DECODERS = _listing(
    Choice("rate", "most spikes wins; ties broken by the highest membrane"),
    Choice("latency", "first spike wins; ties (and silent outputs) broken by the highest membrane"),
    Choice("membrane", "highest membrane potential over time wins"),
)

OPTIMIZERS = _listing(
    Choice("adam", "Adam (betas, weight_decay as an L2 penalty)"),
    Choice("adamw", "Adam with decoupled weight decay"),
    Choice("sgd", "stochastic gradient descent with momentum"),
)

SCHEDULERS = _listing(
    Choice("none", "a constant learning rate"),
    Choice("cosine", "cosine annealing from lr towards zero over the epochs"),
    Choice("step", "multiply the learning rate by gamma every step_size epochs"),
)

DEVICES = _listing(
    Choice("auto", "cuda if there is one, else mps, else cpu"),
    Choice("cpu", "the CPU"),
    Choice("cuda", "an NVIDIA GPU"),
    Choice("mps", "an Apple GPU (Metal)"),
)

PRECISIONS = _listing(
    Choice("float32", "everything in float32"),
    Choice("bfloat16", "linear and conv layers in bfloat16 (torch.autocast); neurons stay float32"),
)


def surrogate_params(
    name: str, params: Mapping[str, float], defaults: Mapping[str, float] | None = None
) -> dict[str, float]:
    """All parameters of surrogate ``name``: its defaults updated by ``params``.

    Raises ValueError, one line, for a parameter the surrogate does not take or a value that is not > 0.
    ``defaults`` are those listed here unless given (a surrogate written outside snnlab brings its own).
    """
    if defaults is None:
        defaults = SURROGATES[name].defaults
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise ValueError(f"surrogate '{name}' has no parameter {unknown[0]!r} (parameters: {allowed})")
    merged = {**defaults, **{key: float(value) for key, value in params.items()}}
    for key, value in merged.items():
        if not value > 0:
            raise ValueError(f"surrogate '{name}': {key} must be > 0 (got {value})")
    return merged


def check_implemented(what: str, listed: Mapping[str, Choice], implemented: Iterable[str]) -> None:
    """Raise RuntimeError when a registry of ``what`` (e.g. "neuron types") does not hold exactly the choices
    listed here. Engine modules call it as they are imported."""
    implemented = set(implemented)
    missing = [name for name in listed if name not in implemented]
    unlisted = sorted(implemented - set(listed))
    if missing or unlisted:
        problems = [f"listed in snnlab.catalog but not implemented: {', '.join(missing)}"] if missing else []
        problems += [f"implemented but not listed in snnlab.catalog: {', '.join(unlisted)}"] if unlisted else []
        raise RuntimeError(f"{what}: {'; '.join(problems)}")
