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

import math
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bound:
    """The values a parameter takes: finite numbers above ``low`` (or equal to it when ``closed``), whole
    numbers only when ``whole``. The default, ``Bound()``, is "> 0"."""

    low: float = 0.0
    closed: bool = False
    whole: bool = False

    def allows(self, value: float) -> bool:
        above = value >= self.low if self.closed else value > self.low
        return math.isfinite(value) and above and (not self.whole or value == int(value))

    def __str__(self) -> str:
        if self.low == -math.inf:
            return "a whole number" if self.whole else "a number"
        limit = f"{'>=' if self.closed else '>'} {self.low:g}"
        return f"a whole number {limit}" if self.whole else limit


POSITIVE = Bound()
NONNEGATIVE = Bound(closed=True)
ANY_NUMBER = Bound(low=-math.inf)


@dataclass(frozen=True)
class Choice:
    """One value of a setting: its ``name``, a one-line ``description``, and the parameters it takes with
    their defaults (``defaults``; a bool default marks a switch, any other a number).

    Surrogates also say where their formula comes from (``source``: the library whose gradient and
    parameters they match, or "snnlab") and which values a parameter takes when not every one > 0 does
    (``bounds``)."""

    name: str
    description: str
    defaults: Mapping[str, float | bool] = field(default_factory=dict)
    source: str = ""
    bounds: Mapping[str, Bound] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Shared by every caller: read-only, so that nobody changes a default for everyone.
        object.__setattr__(self, "defaults", types.MappingProxyType(dict(self.defaults)))
        object.__setattr__(self, "bounds", types.MappingProxyType(dict(self.bounds)))


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
    Choice(
        "shd",
        "Spiking Heidelberg Digits: 8,156 train / 2,264 test spoken digits (20 classes), spikes on 700 "
        "channels; its HDF5 files from zenkelab.org/datasets, read with h5py",
    ),
    Choice(
        "ssc",
        "Spiking Speech Commands: 75,466 train / 20,382 test spoken words (35 classes), spikes on 700 "
        "channels; its HDF5 files from zenkelab.org/datasets, read with h5py",
    ),
    Choice(
        "nmnist",
        "N-MNIST: 60,000 train / 10,000 test digits seen by an event camera, 2 polarities x 34x34; "
        "its Train/Test folders of .bin files",
    ),
    Choice(
        "dvs_gesture",
        "DVS Gesture: 1,077 train / 264 test recordings of 11 hand gestures, 2 polarities x "
        "128x128; tonic's .npy layout (ibmGestureTrain/ibmGestureTest)",
    ),
)
# The sets of recorded events (spikes over time), binned into data.time_steps frames: snnlab.engine.neuromorphic.
EVENT_DATASETS = ("shd", "ssc", "nmnist", "dvs_gesture")

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
    Choice("batchnorm_tt", "batch normalisation through time: one norm (and scale, no shift) per time step"),
    Choice("delayed_linear", "fully connected layer with a learned delay per synapse (DCLS, Hammouamri et al. 2024)"),
)

NEURONS = _listing(
    Choice("leaky", "leaky integrate-and-fire (LIF): the membrane decays by beta each step"),
    Choice("synaptic", "current-based LIF: a synaptic current decaying by alpha feeds the membrane"),
    Choice("rleaky", "recurrent LIF: a layer's spikes feed back into it at the next step"),
    Choice("lapicque", "Lapicque's RC circuit: a LIF neuron with physical R, C and Euler step"),
    Choice("rsynaptic", "recurrent current-based LIF: a layer's spikes feed its synaptic current at the next step"),
    Choice("leaky_parallel", "snnTorch's LeakyParallel: a ReLU RNN read as LIF, own N x N input weights, no reset"),
    Choice("alpha", "alpha neuron: excitatory (decay alpha) and inhibitory (beta < alpha) currents make the membrane"),
    Choice("slstm", "snnTorch's SLSTM: an LSTM cell (own N -> N weights) whose hidden state spikes; after linear"),
    Choice("sconv2dlstm", "snnTorch's SConv2dLSTM: a conv LSTM cell (C -> C, kernel_size) whose hidden state spikes"),
    Choice("lif", "SpikingJelly's LIFNode: decays towards v_reset with tau, fires at v >= threshold, resets at once"),
    Choice("if", "SpikingJelly's IFNode: integrate-and-fire without leak, fires at v >= threshold, resets at once"),
    Choice("plif", "SpikingJelly's ParametricLIFNode: a lif whose 1/tau = sigmoid(w) is learnt (w per layer)"),
    Choice("brainpy_lif", "BrainPy's LIF behind its Expon synapse: input x (1 - beta), soft reset before the decay"),
    Choice("expon", "BrainPy's Expon readout: never fires; its state decays by beta and sums the input (output only)"),
)

RESETS = _listing(
    Choice("subtract", "after a spike, subtract the threshold from the membrane"),
    Choice("zero", "after a spike, set the membrane to zero"),
    Choice("none", "no reset: the membrane keeps integrating after a spike"),
)

# Where a surrogate's formula comes from; the lab's Surrogates pane groups them in this order.
SURROGATE_SOURCES = ("snnTorch", "SpikingJelly", "BrainPy", "snnlab")
_WHOLE_FROM_2 = Bound(low=2, closed=True, whole=True)

# The first nine keep their places (a surrogate's place picks its colour in the lab); new ones go after them.
SURROGATES = _listing(
    Choice(
        "atan",
        "arctangent, snnTorch's atan = SpikingJelly's ATan; grad (alpha/2)/(1+(pi/2*alpha*x)^2)",
        {"alpha": 2.0},
        "snnTorch",
    ),
    Choice(
        "fast_sigmoid",
        "fast sigmoid (SuperSpike), snnTorch's fast_sigmoid; grad 1/(slope*|x|+1)^2",
        {"slope": 25.0},
        "snnTorch",
    ),
    Choice(
        "sigmoid",
        "snnTorch's sigmoid, finite where its own is NaN (x < -3.4); grad slope*s*(1-s), s = sigmoid(slope*x)",
        {"slope": 25.0},
        "snnTorch",
    ),
    Choice(
        "triangle",
        "triangle (piecewise_quadratic with alpha = 1/width); grad max(0, 1-|x|/width)/width",
        {"width": 1.0},
        "snnlab",
    ),
    Choice(
        "straight_through",
        "straight-through estimator, snnTorch's straight_through_estimator; grad 1",
        source="snnTorch",
    ),
    Choice("gaussian", "Gaussian; grad exp(-x^2/(2 sigma^2))/(sqrt(2 pi) sigma)", {"sigma": 0.5}, "snnlab"),
    Choice(
        "erf",
        "error function, SpikingJelly's Erf; grad alpha/sqrt(pi)*exp(-(alpha*x)^2)",
        {"alpha": 2.0},
        "SpikingJelly",
    ),
    Choice(
        "soft_sign", "soft sign, SpikingJelly's SoftSign; grad alpha/(2(1+|alpha*x|)^2)", {"alpha": 2.0}, "SpikingJelly"
    ),
    Choice(
        "piecewise_quadratic",
        "SpikingJelly's PiecewiseQuadratic; grad alpha - alpha^2*|x| on |x| <= 1/alpha",
        {"alpha": 1.0},
        "SpikingJelly",
    ),
    Choice(
        "triangular",
        "snnTorch's triangular: a step, not a triangle (see triangle); grad threshold below 0, -threshold from 0",
        {"threshold": 1.0},
        "snnTorch",
    ),
    Choice(
        "spike_rate_escape",
        "snnTorch's spike_rate_escape, peak at x = 1 as in its code; grad slope*exp(-beta*|x-1|)",
        {"beta": 1.0, "slope": 25.0},
        "snnTorch",
    ),
    Choice(
        "sparse_fast_sigmoid",
        "snnTorch's SFS: fast sigmoid cut off at B; grad 1/(slope*|x|+1)^2 for x > B, else 0",
        {"slope": 25.0, "B": 1.0},
        "snnTorch",
        {"B": ANY_NUMBER},
    ),
    Choice(
        "leaky_spike_operator",
        "snnTorch's LSO (its LeakySpikeOperator); grad 1 for x > 0, else slope",
        {"slope": 0.1},
        "snnTorch",
        {"slope": NONNEGATIVE},
    ),
    Choice(
        "piecewise_exp", "SpikingJelly's PiecewiseExp; grad alpha/2*exp(-alpha*|x|)", {"alpha": 1.0}, "SpikingJelly"
    ),
    Choice(
        "sj_sigmoid",
        "SpikingJelly's Sigmoid: sigmoid with alpha for slope, default 4; grad alpha*s*(1-s), s = sigmoid(alpha*x)",
        {"alpha": 4.0},
        "SpikingJelly",
    ),
    Choice(
        "super_spike",
        "SpikingJelly's SuperSpike (alpha scales, unlike fast_sigmoid's slope); grad alpha/(1+|x|)^2",
        {"alpha": 1.0},
        "SpikingJelly",
    ),
    Choice(
        "nonzero_sign_log_abs", "SpikingJelly's NonzeroSignLogAbs; grad 1/(1/alpha+|x|)", {"alpha": 1.0}, "SpikingJelly"
    ),
    Choice(
        "piecewise_leaky_relu",
        "SpikingJelly's PiecewiseLeakyReLU; grad 1/(2w) on |x| < w, else c",
        {"w": 1.0, "c": 0.01},
        "SpikingJelly",
        {"c": NONNEGATIVE},
    ),
    Choice(
        "leaky_k_relu",
        "SpikingJelly's LeakyKReLU; grad k for x >= 0, else leak",
        {"leak": 0.0, "k": 1.0},
        "SpikingJelly",
        {"leak": NONNEGATIVE},
    ),
    Choice(
        "log_tailed_relu",
        "SpikingJelly's LogTailedReLU; grad alpha for x <= 0, 1 up to x = 1, 1/x above",
        {"alpha": 0.0},
        "SpikingJelly",
        {"alpha": NONNEGATIVE},
    ),
    Choice(
        "q_pseudo_spike",
        "SpikingJelly's QPseudoSpike (alpha > 1); grad (1+2|x|/(alpha-1))^-alpha",
        {"alpha": 2.0},
        "SpikingJelly",
        {"alpha": Bound(low=1.0)},
    ),
    Choice("rect", "SpikingJelly's Rect; grad alpha on |x| < 1/(2 alpha), else 0", {"alpha": 1.0}, "SpikingJelly"),
    Choice(
        "s2nn",
        "SpikingJelly's S2NN; grad alpha*s*(1-s), s = sigmoid(alpha*x), for x < 0, beta/(x+1) from 0",
        {"alpha": 4.0, "beta": 1.0},
        "SpikingJelly",
    ),
    Choice(
        "squarewave_fourier_series",
        "SpikingJelly's SquarewaveFourierSeries, n-1 terms; grad 4/T_period * sum of cos((2i-1)*2pi*x/T_period), i < n",
        {"n": 2.0, "T_period": 8.0},
        "SpikingJelly",
        {"n": _WHOLE_FROM_2},
    ),
    Choice("relu_grad", "BrainPy's ReluGrad; grad alpha*max(width-|x|, 0)", {"alpha": 0.3, "width": 1.0}, "BrainPy"),
)

LOSSES = _listing(
    Choice("ce_membrane", "cross-entropy on the output membrane at every step, summed over time"),
    Choice("ce_mean_membrane", "cross-entropy on the output membrane averaged over time (BrainPy's tutorial)"),
    Choice("ce_rate", "cross-entropy on the output spike counts"),
    Choice(
        "mse_count",
        "MSE between output firing rates and target rates (correct_rate / incorrect_rate)",
        {"correct_rate": 1.0, "incorrect_rate": 0.0},
    ),
)

# Losses and decoders that read the output spikes: an output that never fires (expon) cannot train or be read
# with them.
SPIKE_LOSSES = ("ce_rate", "mse_count")
SPIKE_DECODERS = ("rate", "rate_first", "latency")
# Neuron types that never fire: their "membrane" is the layer's output, their spikes are all zero.
SILENT_NEURONS = ("expon",)

DECODERS = _listing(
    Choice("rate", "most spikes wins; ties broken by the highest membrane"),
    Choice(
        "rate_first",
        "most spikes wins; ties to the lowest class index (argmax of the counts, as snnTorch's and SpikingJelly's "
        "tutorials count)",
    ),
    Choice("latency", "first spike wins; ties (and silent outputs) broken by the highest membrane"),
    Choice("membrane", "highest membrane potential over time wins"),
)

# Weight initialisers of linear and conv layers, torch.nn.init's by name ("default": the layer's own, torch's
# kaiming_uniform with a = sqrt(5)). Fans are torch's: fan_in = in_features (x kernel area), fan_out likewise.
# A switch parameter (a bool default) is 0 or 1 in a config.
INITS = _listing(
    Choice("default", "the layer's own initialisation (torch's: U(-1/sqrt(fan_in), 1/sqrt(fan_in)))"),
    Choice("zeros", "all zero"),
    Choice("constant", "every weight the same value", {"value": 0.0}),
    Choice("uniform", "uniform on [a, b]", {"a": 0.0, "b": 1.0}),
    Choice("normal", "normal with mean and std", {"mean": 0.0, "std": 1.0}),
    Choice("trunc_normal", "normal(mean, std) redrawn outside [a, b]", {"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0}),
    Choice("xavier_uniform", "Glorot: U(-l, l), l = gain*sqrt(6/(fan_in + fan_out))", {"gain": 1.0}),
    Choice("xavier_normal", "Glorot: N(0, std), std = gain*sqrt(2/(fan_in + fan_out))", {"gain": 1.0}),
    Choice(
        "kaiming_uniform",
        "He: U(-l, l), l = sqrt(3)*gain/sqrt(fan), gain = sqrt(2/(1+a^2)); fan = fan_in unless fan_out",
        {"a": 0.0, "fan_out": False},
    ),
    Choice(
        "kaiming_normal",
        "He: N(0, std), std = gain/sqrt(fan), gain = sqrt(2/(1+a^2)); fan = fan_in unless fan_out",
        {"a": 0.0, "fan_out": False},
    ),
    Choice(
        "brainpy_kaiming_normal",
        "BrainPy's KaimingNormal(scale): N(0, std), std = sqrt(scale/fan), scale a variance multiplier",
        {"scale": 2.0, "fan_out": False},
    ),
    Choice("orthogonal", "a (semi-)orthogonal matrix times gain (the weight flattened to [out, rest])", {"gain": 1.0}),
)
# Bias initialisers: those of INITS that set each value on its own (the others need a weight's fans).
BIAS_INITS = {name: INITS[name] for name in ("default", "zeros", "constant", "uniform", "normal", "trunc_normal")}
# Parameters of an initialiser that take any number (the others must be > 0; a switch is 0 or 1).
INIT_ANY_NUMBER = ("value", "a", "b", "mean")

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

LOGGERS = _listing(
    Choice("tensorboard", 'TensorBoard event files in RUN/tensorboard/ (pip install "snnlab[tensorboard]")'),
)

PRECISIONS = _listing(
    Choice("float32", "everything in float32"),
    Choice("bfloat16", "linear and conv layers in bfloat16 (torch.autocast); neurons stay float32"),
)


_SURROGATE_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def is_surrogate_path(text: str) -> bool:
    """Whether ``text`` is written as a user's surrogate, ``package.module:name`` (a dotted module, a colon,
    a name in it); the engine imports it when it builds the network."""
    return _SURROGATE_PATH.fullmatch(text) is not None


def surrogate_params(
    name: str,
    params: Mapping[str, float],
    defaults: Mapping[str, float] | None = None,
    bounds: Mapping[str, Bound] | None = None,
) -> dict[str, float]:
    """All parameters of surrogate ``name``: its defaults updated by ``params``.

    Raises ValueError, one line, for a parameter the surrogate does not take or a value outside its bounds
    (> 0 unless the surrogate says otherwise). ``defaults`` and ``bounds`` are those listed here unless given
    (a surrogate written outside snnlab brings its own).
    """
    if defaults is None:
        defaults = SURROGATES[name].defaults
    if bounds is None:
        bounds = SURROGATES[name].bounds if name in SURROGATES else {}
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise ValueError(f"surrogate '{name}' has no parameter {unknown[0]!r} (parameters: {allowed})")
    merged = {**defaults, **{key: float(value) for key, value in params.items()}}
    for key, value in merged.items():
        bound = bounds.get(key, POSITIVE)
        if not bound.allows(value):
            raise ValueError(f"surrogate '{name}': {key} must be {bound} (got {value})")
    return merged


def init_params(name: str, params: Mapping[str, float], what: str = "initialiser") -> dict[str, float]:
    """All parameters of initialiser ``name`` (one of :data:`INITS`): its defaults updated by ``params``.

    Raises ValueError, one line, for a parameter it does not take or a value it does not allow: a switch is
    0 or 1, ``value``, ``a``, ``b`` and ``mean`` are any finite number, the others > 0; ``a`` is below ``b``
    where both bound a range (uniform, trunc_normal)."""
    defaults = INITS[name].defaults
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise ValueError(f"{what} '{name}' has no parameter {unknown[0]!r} (parameters: {allowed})")
    merged: dict[str, float] = {}
    for key, default in defaults.items():
        value = params.get(key, default)
        if not isinstance(value, int | float):  # a bool is an int: a switch may be written true / false
            raise ValueError(f"{what} '{name}': {key} must be a number (got {value!r})")
        value = float(value)
        if isinstance(default, bool):
            if value not in (0.0, 1.0):
                raise ValueError(f"{what} '{name}': {key} is a switch, 0 or 1 (got {value:g})")
        elif not math.isfinite(value) or (key not in INIT_ANY_NUMBER and not value > 0):
            wanted = "a finite number" if key in INIT_ANY_NUMBER else "> 0"
            raise ValueError(f"{what} '{name}': {key} must be {wanted} (got {value:g})")
        merged[key] = value
    if name in ("uniform", "trunc_normal") and not merged["a"] < merged["b"]:
        raise ValueError(f"{what} '{name}': a must be below b (got a {merged['a']:g}, b {merged['b']:g})")
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
