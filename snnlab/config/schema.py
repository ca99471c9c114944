"""The config's schema: typed sections with defaults and one-line descriptions, and their checks.

A config is four sections (``data``, ``model``, ``train``, ``run``) plus a one-line ``description``. Every
field has a type, a default and a one-line description; :func:`schema_rows` lists them for docs and the TUI.

The choices a setting allows (datasets, encoders, neuron types, surrogates, ...) and the parameters they
take come from :mod:`snnlab.catalog`; neither importing this module nor validating a config imports torch.
"""

from __future__ import annotations

import copy
import math
import re
import types
import typing
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

import annotated_types
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from snnlab import catalog
from snnlab.config.messages import _fail, _number, _plain, _show, did_you_mean
from snnlab.engine import shapes

# The settings that pick one of a catalog's choices. Pydantic checks a value against the Literal (and
# lists it as an enum in the JSON schema; the lab's form makes it a Select); a Literal built at run time
# is no type to mypy, so to mypy these are plain strings.
if TYPE_CHECKING:
    DatasetName: TypeAlias = str
    EncoderName: TypeAlias = str
    NeuronName: TypeAlias = str
    ResetName: TypeAlias = str
    OptimizerName: TypeAlias = str
    SchedulerName: TypeAlias = str
    LossName: TypeAlias = str
    DecoderName: TypeAlias = str
    DeviceName: TypeAlias = str
    PrecisionName: TypeAlias = str
    LoggerName: TypeAlias = str
    InitName: TypeAlias = str
    BiasInitName: TypeAlias = str
else:
    DatasetName = Literal[tuple(catalog.DATASETS)]
    EncoderName = Literal[tuple(catalog.ENCODERS)]
    NeuronName = Literal[tuple(catalog.NEURONS)]
    ResetName = Literal[tuple(catalog.RESETS)]
    OptimizerName = Literal[tuple(catalog.OPTIMIZERS)]
    SchedulerName = Literal[tuple(catalog.SCHEDULERS)]
    LossName = Literal[tuple(catalog.LOSSES)]
    DecoderName = Literal[tuple(catalog.DECODERS)]
    DeviceName = Literal[tuple(catalog.DEVICES)]
    PrecisionName = Literal[tuple(catalog.PRECISIONS)]
    LoggerName = Literal[tuple(catalog.LOGGERS)]
    InitName = Literal[tuple(catalog.INITS)]
    BiasInitName = Literal[tuple(catalog.BIAS_INITS)]
_SYNTHETIC: dict[str, Any] = dict(catalog.DATASETS["synthetic"].defaults)
_IMAGE_DATASETS = [name for name in catalog.DATASETS if name not in ("synthetic", *catalog.EVENT_DATASETS)]
# Layer names as snnlab.engine.models.build_model gives them: fc1, conv2, maxpool1, ...
_LAYER_PREFIX = {"linear": "fc", "conv2d": "conv"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --- data ----------------------------------------------------------------------------------------------


class SyntheticConfig(_Section):
    """Parameters of the ``synthetic`` dataset (Poisson spike trains with random labels to memorise)."""

    samples: PositiveInt = Field(
        _SYNTHETIC["samples"], description="number of samples (the test split is the train split)"
    )
    inputs: PositiveInt = Field(
        _SYNTHETIC["inputs"], description="input channels, each an independent Poisson spike train"
    )
    time_steps: PositiveInt = Field(
        _SYNTHETIC["time_steps"], description="steps per sample (used instead of data.time_steps)"
    )
    rate_hz: PositiveFloat = Field(_SYNTHETIC["rate_hz"], description="firing rate of every input, in Hz")
    dt_ms: PositiveFloat = Field(_SYNTHETIC["dt_ms"], description="length of one time step, in ms")
    classes: int = Field(
        _SYNTHETIC["classes"], ge=2, description="number of classes (labels are drawn uniformly at random)"
    )

    @model_validator(mode="after")
    def _probability_per_step(self) -> SyntheticConfig:
        p = self.rate_hz * self.dt_ms / 1000
        if p > 1:
            raise _fail(f"rate_hz * dt_ms / 1000 is the spike probability per step and must be <= 1 (got {p:g})",
                        "rate_hz")  # fmt: skip
        return self


class EventsConfig(_Section):
    """How the recordings of an event dataset (shd, ssc, nmnist, dvs_gesture) become spike frames [T, ...]."""

    duration_ms: PositiveFloat | None = Field(
        None,
        description="span of each recording cut into data.time_steps equal bins from 0, later events dropped "
        "(null: the set's usual span: shd, ssc 1000; nmnist 300; dvs_gesture 6000)",
    )
    downsample: PositiveInt = Field(
        1, description="merge this many neighbouring channels (shd, ssc), or pixels per side (nmnist, dvs_gesture)"
    )
    counts: bool = Field(False, description="frames hold event counts per bin (up to 255), else 0/1 spikes")
    cache: bool = Field(True, description="save the binned frames to disk after the first load and reuse them")
    cache_dir: str | None = Field(None, description="where the binned frames are saved (null: <data_dir>/cache)")


class DataConfig(_Section):
    """Which dataset, how it is batched, and how inputs become spikes."""

    dataset: DatasetName = Field(
        "bundled",
        description="bundled (Fashion-MNIST sample, no download), mnist, fashion-mnist, kmnist, synthetic; event "
        "recordings read from data_dir: shd, ssc, nmnist, dvs_gesture",
    )
    data_dir: str | None = Field(None, description="where downloaded datasets live (default: $SNNLAB_DATA_DIR)")
    download: bool = Field(True, description="download a missing dataset")
    batch_size: PositiveInt = Field(128, description="samples per mini-batch")
    drop_last: bool = Field(False, description="leave out each epoch's last training batch when it is smaller")
    train_size: PositiveInt | None = Field(None, description="use a class-balanced subset of this many train samples")
    test_size: PositiveInt | None = Field(None, description="use a class-balanced subset of this many test samples")
    time_steps: PositiveInt = Field(
        25, description="simulation steps T per sample (synthetic uses its own; event sets: frames per recording)"
    )
    encoder: EncoderName = Field(
        "direct",
        validate_default=True,
        description="direct (constant current), rate (Poisson), latency, delta; none for spike data (synthetic "
        "and the event sets, where it is the default)",
    )
    encoder_params: dict[str, float | bool] = Field(
        default_factory=dict,
        description="encoder options: rate: gain; latency: tau, threshold, linear; delta: threshold, off_spikes",
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig, description="synthetic dataset parameters")
    events: EventsConfig = Field(
        default_factory=EventsConfig, description="how event recordings (shd, ssc, nmnist, dvs_gesture) are binned"
    )

    @model_validator(mode="before")
    @classmethod
    def _event_sets_take_no_encoder(cls, data: Any) -> Any:
        """An event set is spike frames already: unless an encoder is named, it gets none rather than direct."""
        if isinstance(data, dict) and data.get("dataset") in catalog.EVENT_DATASETS and "encoder" not in data:
            return {**data, "encoder": "none"}
        return data

    @field_validator("encoder")
    @classmethod
    def _encoder_fits_dataset(cls, encoder: str, info: ValidationInfo) -> str:
        dataset = info.data.get("dataset")
        if dataset == "synthetic" and encoder not in ("none", "delta"):
            raise _fail(f"the synthetic dataset is already spike trains: use encoder none or delta (got '{encoder}')")
        if dataset in catalog.EVENT_DATASETS and encoder not in ("none", "delta"):
            raise _fail(f"{dataset} is already spike frames (data.time_steps bins of its recordings), which no "
                        f"encoder turns into spikes: use encoder none, or delta (got '{encoder}')")  # fmt: skip
        if dataset in _IMAGE_DATASETS and encoder == "none":
            raise _fail(f"encoder none is only for spike datasets (synthetic, {', '.join(catalog.EVENT_DATASETS)}); "
                        f"{dataset} images need direct, rate, latency or delta")  # fmt: skip
        return encoder

    @field_validator("encoder_params", mode="before")
    @classmethod
    def _params_fit_encoder(cls, params: Any, info: ValidationInfo) -> Any:
        encoder = info.data.get("encoder")
        if encoder is None or not isinstance(params, dict):
            return params
        allowed = catalog.ENCODERS[encoder].defaults
        checked: dict[str, float | bool] = {}
        for key, value in params.items():
            key = str(key)
            if key not in allowed:
                if not allowed:
                    raise _fail(f"encoder '{encoder}' takes no parameters", key)
                names = ", ".join(allowed)
                hint = did_you_mean(key, allowed) or f" (parameters: {names})"
                raise _fail(f"unknown parameter {_show(key)} for encoder '{encoder}'{hint}", key)
            switch = isinstance(allowed[key], bool)
            if switch:
                if not isinstance(value, bool):
                    raise _fail(f"must be true or false (got {_show(value)})", key)
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise _fail(f"must be a number (got {_show(value)})", key)
            elif key in ("gain", "tau") and not value > 0:
                raise _fail(f"must be > 0 (got {_show(value)})", key)
            elif not value >= 0:
                raise _fail(f"must be >= 0 (got {_show(value)})", key)
            checked[key] = value if switch else float(value)
        return checked


# --- model ---------------------------------------------------------------------------------------------


def _number_or_list(value: Any, wanted: str, fits: Callable[[float], bool], per_neuron: bool) -> Any:
    """A neuron parameter given as one number, or with ``per_neuron`` as a list of one per neuron; each must
    be a number that ``fits``. Raises the field's one-line error naming the bad item."""
    wanted += " or a list of them" if per_neuron else ""

    def check(v: Any, key: str | None = None) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not fits(v):
            raise _fail(f"must be {wanted} (got {_show(v)})", key)
        return float(v)

    if per_neuron and isinstance(value, list):
        if not value:
            raise _fail(f"must be {wanted} (got [])")
        return [check(v, str(i)) for i, v in enumerate(value)]
    return check(value)


class StateQuantConfig(_Section):
    """Quantized neuron states (snnTorch's state_quant): every state moves to the nearest of 2**num_bits levels
    after each step, the gradient passing straight through."""

    num_bits: int = Field(0, ge=0, le=16, description="bits per state; 0: no quantization")
    uniform: bool = Field(True, description="evenly spaced levels, else dense near the centre (geometric gaps)")
    thr_centered: bool = Field(True, description="geometric levels: dense near the threshold, else near 0")
    threshold: PositiveFloat | None = Field(
        None, description="the levels span about [-threshold, threshold] (null: the neuron's threshold)"
    )
    lower_limit: float = Field(0.0, ge=0, description="extend the levels below -threshold by this share of it")
    upper_limit: float = Field(0.2, ge=0, description="extend the levels above threshold by this share of it")
    multiplier: PositiveFloat | None = Field(
        None, description="geometric levels: the ratio of neighbouring gaps (null: a default by num_bits)"
    )


SPIKINGJELLY = ("lif", "if", "plif")  # SpikingJelly's neurons (snnlab.engine.neurons.spikingjelly)
BRAINPY = ("brainpy_lif", "expon")  # BrainPy's (snnlab.engine.neurons.brainpy)

# Which neuron types take which of snnTorch's options (leaky_parallel is a ReLU RNN with no reset; an alpha
# neuron rebuilds its membrane from its currents every step, so an immediate reset would not hold).
_OPTIONS_REFUSED = {
    "leaky_parallel": ("inhibition", "reset_delay", "state_quant"),
    "alpha": ("reset_delay",),
    **dict.fromkeys(("slstm", "sconv2dlstm"), ("inhibition", "reset_delay")),  # snnTorch: none, or ignored
    # SpikingJelly's neurons take none of snnTorch's options (beta, reset, learn_beta and learn_threshold do not
    # apply to them either, and are ignored, as lapicque ignores learn_beta)
    # BrainPy's: expon never fires, and brainpy_lif is BrainPy's step, which has none of them either
    **dict.fromkeys((*SPIKINGJELLY, *BRAINPY), (
        "graded_spikes_factor", "learn_graded_spikes_factor", "inhibition", "reset_delay", "state_quant",
        "surrogate_disable")),
}  # fmt: skip


class NeuronConfig(_Section):
    """A spiking neuron: its model, its parameters and the surrogate gradient of its spike."""

    type: NeuronName = Field(
        "leaky",
        description="leaky (LIF), synaptic (current-based), rleaky and rsynaptic (recurrent), lapicque (RC), alpha, "
        "leaky_parallel (snnTorch's ReLU-RNN LIF), slstm and sconv2dlstm (snnTorch's spiking LSTMs); lif, if and "
        "plif (SpikingJelly's: threshold is their v_threshold, v_reset replaces reset, beta does not apply); expon "
        "(BrainPy's non-spiking readout: decays by beta and sums its input, never fires; output layer only), "
        "brainpy_lif (BrainPy's LIF behind its Expon synapse: input scaled by 1 - beta, soft reset before the decay)",
    )
    beta: float | list[float] = Field(
        0.9,
        description="membrane decay per step in [0, 1], or one per neuron (alpha: 0.8; lapicque: exp(-dt/(R*C)), "
        "used unless R and C are both given)",
    )
    threshold: float | list[float] = Field(
        1.0,
        description="firing threshold of the membrane (> 0), or one per neuron (slstm, sconv2dlstm: their "
        "membrane o*tanh(syn) stays inside (-1, 1), so set it below 1)",
    )
    reset: ResetName = Field(
        "subtract",
        description="after a spike: subtract the threshold, set to zero, or no reset (alpha: zero; leaky_parallel, "
        "slstm, sconv2dlstm: none)",
    )
    surrogate: str = Field(
        "atan", description="surrogate gradient of the spike: a name (see the Surrogates pane) or package.module:name"
    )
    surrogate_params: dict[str, float] = Field(
        default_factory=dict, description="surrogate parameters, e.g. {alpha: 2.0} for atan"
    )
    learn_beta: bool = Field(False, description="make beta a trained parameter")
    learn_threshold: bool = Field(False, description="make the threshold a trained parameter")
    alpha: float = Field(
        0.9,
        description="synaptic current decay per step in [0, 1] (synaptic, rsynaptic, brainpy_lif; alpha: above beta)",
    )
    learn_alpha: bool = Field(
        False, description="make alpha a trained parameter (synaptic, rsynaptic, alpha, brainpy_lif)"
    )
    all_to_all: bool = Field(
        True, description="recurrent weights between all neurons, else one gain V per layer (rleaky, rsynaptic)"
    )
    V: float = Field(1.0, description="recurrent gain of each neuron's own spike when all_to_all is false")
    learn_recurrent: bool = Field(True, description="make the recurrent weights (or V) trained parameters")
    kernel_size: PositiveInt = Field(
        3,
        description="odd kernel of the recurrent convolution when all-to-all follows a conv layer, and of "
        "sconv2dlstm's gate convolution",
    )
    R: PositiveFloat = Field(5.0, description="membrane resistance (lapicque only; with beta: 1 unless given)")
    C: PositiveFloat = Field(5e-3, description="membrane capacitance (lapicque only; with beta: derived unless given)")
    time_step: PositiveFloat = Field(1e-3, description="Euler step dt, at most R*C (lapicque only)")
    graded_spikes_factor: float = Field(1.0, description="output spikes are this value instead of 1 (not 0)")
    learn_graded_spikes_factor: bool = Field(False, description="make graded_spikes_factor a trained parameter")
    inhibition: bool = Field(
        False, description="only each sample's neuron with the largest membrane may spike ([N] features)"
    )
    reset_delay: bool = Field(True, description="reset at the step after a spike (snnTorch's default), else at once")
    surrogate_disable: bool = Field(False, description="spikes carry no gradient (only membranes a loss reads do)")
    tau: float = Field(
        2.0, gt=1, description="membrane time constant in steps, > 1 (lif; plif: its initial value, init_tau)"
    )
    decay_input: bool = Field(True, description="the input is divided by tau too, as the leak (lif, plif)")
    v_reset: float | None = Field(
        0.0, description="membrane after a spike (hard reset), or null to subtract the threshold (lif, if, plif)"
    )
    detach_reset: bool = Field(False, description="no gradient through the reset of a spike (lif, if, plif)")
    state_quant: StateQuantConfig = Field(
        default_factory=StateQuantConfig, description="quantize the states to num_bits after every step"
    )

    @model_validator(mode="after")
    def _defaults_of_the_type(self) -> NeuronConfig:
        """Settings left out take the neuron type's own defaults where they differ from the config's (the Alpha
        module's reset, beta and alpha). They stay unset: a config that names the type alone keeps following it."""
        for name, value in TYPE_DEFAULTS.get(self.type, {}).items():
            if name not in self.model_fields_set:
                self.__dict__[name] = copy.copy(value)
        return self

    @field_validator("beta", "alpha", mode="before")
    @classmethod
    def _decay_in_unit_interval(cls, value: Any, info: ValidationInfo) -> Any:
        return _number_or_list(value, "a number in [0, 1]", lambda v: 0 <= v <= 1, per_neuron=info.field_name == "beta")

    @field_validator("graded_spikes_factor")
    @classmethod
    def _graded_not_zero(cls, value: float) -> float:
        if value == 0:
            raise _fail("must not be 0: every spike would vanish (1 gives plain spikes)")
        return value

    @model_validator(mode="after")
    def _options_fit_type(self) -> NeuronConfig:
        if self.type in SPIKINGJELLY and isinstance(self.threshold, list):
            raise _fail(f"must be one number for neuron type {self.type} (its v_threshold is one value per layer)",
                        "threshold")  # fmt: skip
        for option in _OPTIONS_REFUSED.get(self.type, ()):
            if self._option_set(option):
                raise _fail(f"neuron type {self.type} has no {option} option: remove it", option)
        return self

    def _option_set(self, option: str) -> bool:
        """Whether one of snnTorch's options is on (differs from its default)."""
        if option == "state_quant":
            return self.state_quant.num_bits > 0
        return getattr(self, option) != NeuronConfig.model_fields[option].default

    @field_validator("threshold", mode="before")
    @classmethod
    def _positive_threshold(cls, value: Any) -> Any:
        return _number_or_list(value, "a number > 0", lambda v: v > 0 and math.isfinite(v), per_neuron=True)

    @field_validator("kernel_size")
    @classmethod
    def _odd_kernel(cls, k: int) -> int:
        if k % 2 == 0:
            raise _fail(f"must be odd, so that the recurrent convolution keeps the feature map's size (got {k})")
        return k

    @field_validator("surrogate")
    @classmethod
    def _known_surrogate(cls, name: str) -> str:
        if ":" in name:  # a user's own, imported when the run starts
            if not catalog.is_surrogate_path(name):
                raise _fail(f"{_show(name)} is not a path to a surrogate: write package.module:name")
            return name
        known = list(catalog.SURROGATES)
        if name not in known:
            hint = did_you_mean(name, known) or (
                f" (one of {len(known)}, e.g. {', '.join(known[:5])}, all in the lab's Surrogates pane; "
                "or your own as package.module:name)"
            )
            raise _fail(f"unknown surrogate {_show(name)}{hint}")
        return name

    @field_validator("surrogate_params")
    @classmethod
    def _params_fit_surrogate(cls, params: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        name = info.data.get("surrogate")
        if name in catalog.SURROGATES:  # a user's surrogate checks its parameters when it is loaded
            try:
                catalog.surrogate_params(name, params)
            except ValueError as exc:
                raise _fail(str(exc)) from None
        return params

    @property
    def lapicque_beta(self) -> bool:
        """A lapicque neuron given by beta (with at most one of R and C), as snnTorch allows, rather than R and C."""
        return self.type == "lapicque" and "beta" in self.model_fields_set and not {"R", "C"} <= self.model_fields_set

    @model_validator(mode="after")
    def _lapicque_is_stable(self) -> NeuronConfig:
        """Forward Euler with a decay 1 - dt/(R*C) in [0, 1): dt <= R*C, or with beta, 1/e <= beta < 1."""
        if self.type != "lapicque":
            return self
        if self.lapicque_beta:
            betas = self.beta if isinstance(self.beta, list) else [self.beta]
            bad = next((b for b in betas if not math.exp(-1) <= b < 1), None)
            if bad is not None:
                raise _fail(f"must be in [1/e, 1) for a lapicque neuron (got {bad:g}): as in snnTorch it decays by "
                            "1 - ln(1/beta), which is negative below 1/e, and beta 1 gives it no input",
                            "beta")  # fmt: skip
        elif self.time_step > self.R * self.C:
            raise _fail(f"must be <= R*C = {self.R * self.C:g} (got {self.time_step:g})", "time_step")
        return self

    @model_validator(mode="after")
    def _alpha_above_beta(self) -> NeuronConfig:
        """The alpha neuron's tau = log(alpha)/(log(beta) - log(alpha)) + 1 needs beta < alpha (defaults too)."""
        if self.type == "alpha":
            betas = self.beta if isinstance(self.beta, list) else [self.beta]
            if not self.alpha > max(betas):
                which = "largest beta" if isinstance(self.beta, list) else "beta"
                raise _fail(f"must be greater than beta for an alpha neuron (got alpha {self.alpha:g}, {which} "
                            f"{max(betas):g})", "alpha")  # fmt: skip
            # alpha <= 1 and beta < alpha, so beta < 1 and tau is finite.
        return self

    def kwargs(self) -> dict[str, Any]:
        """``{"type": ..., **constructor kwargs}`` for this neuron type, as ``build_model`` takes them."""
        spec: dict[str, Any] = {"type": self.type}
        if self.type in catalog.SILENT_NEURONS:  # a decay and nothing about firing
            spec.update(beta=copy.copy(self.beta), learn_beta=self.learn_beta)
            return spec
        if self.type in SPIKINGJELLY:
            if self.type != "if":
                spec.update({"init_tau" if self.type == "plif" else "tau": self.tau, "decay_input": self.decay_input})
            spec.update(v_threshold=self.threshold, v_reset=self.v_reset, detach_reset=self.detach_reset,
                        surrogate=self.surrogate, surrogate_params=dict(self.surrogate_params))  # fmt: skip
            return spec
        if self.lapicque_beta:  # snnTorch's derivation of the constant not given (R = 1 when neither is)
            spec.update(beta=copy.copy(self.beta), time_step=self.time_step)
            spec.update({k: getattr(self, k) for k in ("R", "C") if k in self.model_fields_set})
        elif self.type == "lapicque":
            spec.update(R=self.R, C=self.C, time_step=self.time_step)
        elif self.type not in shapes.LSTM:  # the LSTM's gates decide what decays
            spec.update(beta=copy.copy(self.beta))
        spec.update(
            threshold=copy.copy(self.threshold),
            surrogate=self.surrogate,
            surrogate_params=dict(self.surrogate_params),
            learn_threshold=self.learn_threshold,
        )
        if self.type != "leaky_parallel":  # it has no reset
            spec["reset"] = self.reset
        if self.type != "lapicque" and self.type not in shapes.LSTM:
            spec["learn_beta"] = self.learn_beta
        if self.type in ("synaptic", "rsynaptic", "alpha", "brainpy_lif"):
            spec.update(alpha=self.alpha, learn_alpha=self.learn_alpha)
        if self.type in shapes.RECURRENT:
            spec.update(all_to_all=self.all_to_all, learn_recurrent=self.learn_recurrent)
            if self.all_to_all:  # a linear map, or after a conv layer a convolution of kernel_size
                spec["kernel_size"] = self.kernel_size
            else:
                spec["V"] = self.V
        if self.type == "sconv2dlstm":  # its gates' convolution, C -> C, which keeps H and W
            spec["kernel_size"] = self.kernel_size
        # snnTorch's options, only when set, so that a spec without them reads as it always has
        if self.graded_spikes_factor != 1 or self.learn_graded_spikes_factor:
            spec.update(graded_spikes_factor=self.graded_spikes_factor,
                        learn_graded_spikes_factor=self.learn_graded_spikes_factor)  # fmt: skip
        spec.update({option: getattr(self, option) for option in ("inhibition", "reset_delay", "surrogate_disable")
                     if self._option_set(option)})  # fmt: skip
        if self._option_set("state_quant"):
            quant = self.state_quant.model_dump()
            if quant["threshold"] is None:
                quant["threshold"] = max(self.threshold) if isinstance(self.threshold, list) else self.threshold
            spec["state_quant"] = quant
        return spec


# The settings each neuron type reads, besides type, threshold, surrogate and surrogate_params (which all
# read) and snnTorch's options (which every type reads that _OPTIONS_REFUSED does not refuse them). The lab's
# form shows these and hides the rest; tests/test_config.py holds this table to NeuronConfig.kwargs().
_DECAY = ("beta", "learn_beta", "reset", "learn_threshold")
_RECURRENCE = ("all_to_all", "V", "learn_recurrent", "kernel_size")
_SPIKINGJELLY = ("v_reset", "detach_reset")
TYPE_SETTINGS: dict[str, tuple[str, ...]] = {
    "leaky": _DECAY,
    "synaptic": (*_DECAY, "alpha", "learn_alpha"),
    "rleaky": (*_DECAY, *_RECURRENCE),
    "rsynaptic": (*_DECAY, *_RECURRENCE, "alpha", "learn_alpha"),
    "lapicque": ("beta", "R", "C", "time_step", "reset", "learn_threshold"),
    "alpha": (*_DECAY, "alpha", "learn_alpha"),
    "leaky_parallel": ("beta", "learn_beta", "learn_threshold"),
    "slstm": ("reset", "learn_threshold"),
    "sconv2dlstm": ("reset", "learn_threshold", "kernel_size"),
    "lif": ("tau", "decay_input", *_SPIKINGJELLY),
    "if": _SPIKINGJELLY,
    "plif": ("tau", "decay_input", *_SPIKINGJELLY),
    "brainpy_lif": (*_DECAY, "alpha", "learn_alpha"),
    "expon": ("beta", "learn_beta"),
}
_OPTIONS = ("graded_spikes_factor", "learn_graded_spikes_factor", "inhibition", "reset_delay", "surrogate_disable",
            "state_quant")  # fmt: skip


def setting_applies(kind: str, name: str) -> bool:
    """Whether neuron type ``kind`` reads setting ``name`` (a NeuronConfig field)."""
    if name == "type":
        return True
    if name in ("threshold", "surrogate", "surrogate_params"):
        return kind not in catalog.SILENT_NEURONS  # a neuron that never fires has no threshold nor spike
    if name in _OPTIONS:
        refused = _OPTIONS_REFUSED.get(kind, ())
        return name not in refused and not (name == "learn_graded_spikes_factor" and "graded_spikes_factor" in refused)
    return name in TYPE_SETTINGS.get(kind, ())


# Defaults of a neuron type that differ from NeuronConfig's: the Alpha module's (snnTorch's). A config that
# names the type without these settings gets these; tests/test_config.py holds them to the module's signature.
TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "alpha": {"reset": "zero", "beta": 0.8, "alpha": 0.9},
    "slstm": {"reset": "none"},  # snnTorch's default for its LSTM neurons
    "sconv2dlstm": {"reset": "none"},
}
# What a lapicque neuron reads from beta, R and C depends on which of them are set: a layer that switches to
# lapicque from another type inherits none of them from model.neuron (there they meant something else).
_LAPICQUE_CONSTANTS = ("beta", "R", "C")


def type_default(kind: str, key: str) -> Any:
    """The default of neuron setting ``key`` for neuron type ``kind``."""
    return TYPE_DEFAULTS.get(kind, {}).get(key, NeuronConfig.model_fields[key].default)


def retyped(values: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """What to change in a neuron's explicit settings (the lab's form holds them all) when its type goes from
    ``old`` to ``new``: each setting whose default differs by type and that still holds ``old``'s default
    takes ``new``'s; one the user changed stays."""
    changes = {}
    for key in sorted({k for d in TYPE_DEFAULTS.values() for k in d}):
        was, now = type_default(old, key), type_default(new, key)
        if now != was and values.get(key, was) == was:
            changes[key] = now
    return changes


def neuron_dump(neuron: NeuronConfig) -> dict[str, Any]:
    """A neuron as plain data that validates back to the same neuron: every setting, except that a lapicque
    neuron given by beta leaves out the R or C it was not given (their defaults would make it an R, C one)."""
    data = neuron.model_dump(mode="json")
    if neuron.lapicque_beta:
        for key in ("R", "C"):
            if key not in neuron.model_fields_set:
                del data[key]
    return data


def _neuron_tag(value: Any) -> str:
    return "overrides" if isinstance(value, dict | NeuronConfig) else "switch"


# true: the model's neuron; a mapping: settings merged over the model's neuron; false: no neuron.
LayerNeuron = Annotated[
    Annotated[bool, Tag("switch")] | Annotated[NeuronConfig, Tag("overrides")], Discriminator(_neuron_tag)
]


def _layer_type(kind: str) -> Any:
    return Field(kind, description=catalog.LAYERS[kind].description)


def _neuron_field() -> Any:
    return Field(False, description="neuron after the layer: true (model.neuron), overrides of model.neuron, or false")


class _Initialised(_Section):
    """A layer with weights (and a bias): how they are initialised, by torch.nn.init's names."""

    init: InitName = Field(
        "default",
        description="weight initialiser: default (torch's), zeros, constant, uniform, normal, trunc_normal, "
        "xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal, brainpy_kaiming_normal, orthogonal",
    )
    # Plain {} defaults (pydantic copies them per layer): the lab's layer editor shows a field's default.
    init_params: dict[str, float] = Field(
        {},
        description="the weight initialiser's parameters, e.g. {std: 0.1} for normal, {scale: 2} for "
        "brainpy_kaiming_normal (variance scale/fan_in)",
    )
    bias_init: BiasInitName = Field(
        "default", description="bias initialiser: default (torch's), zeros, constant, uniform, normal, trunc_normal"
    )
    bias_init_params: dict[str, float] = Field(
        {}, description="the bias initialiser's parameters, e.g. {value: 0.1} for constant"
    )

    @field_validator("init_params", "bias_init_params", mode="before")
    @classmethod
    def _params_are_a_mapping(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _fail(f"must be a mapping of parameter names to numbers, e.g. {{std: 0.1}} (got {_show(value)})")
        return value

    @model_validator(mode="after")
    def _params_fit_initialisers(self) -> _Initialised:
        for field, params_field, what in (("init", "init_params", "initialiser"),
                                          ("bias_init", "bias_init_params", "bias initialiser")):  # fmt: skip
            try:
                catalog.init_params(getattr(self, field), getattr(self, params_field), what)
            except ValueError as exc:
                raise _fail(str(exc), params_field) from None
        if not getattr(self, "bias", True) and (self.bias_init != "default" or self.bias_init_params):
            raise _fail("the layer has no bias to initialise (bias: false): remove bias_init or set bias: true",
                        "bias_init")  # fmt: skip
        return self

    def untouched_inits(self) -> set[str]:
        """The initialisation settings left at their defaults. Layer specs and saved configs leave them out, so
        that they read as they did before these settings existed (and a checkpoint made then resumes)."""
        return {name for name in _INIT_FIELDS if getattr(self, name) == type(self).model_fields[name].default}


_INIT_FIELDS = ("init", "init_params", "bias_init", "bias_init_params")


def _untouched_inits(layer: _Section) -> set[str]:
    return layer.untouched_inits() if isinstance(layer, _Initialised) else set()


class LinearLayer(_Initialised):
    type: Literal["linear"] = _layer_type("linear")
    out_features: PositiveInt = Field(10, description="output features (neurons)")
    bias: bool = Field(True, description="add a learned bias")
    neuron: LayerNeuron = _neuron_field()


class Conv2dLayer(_Initialised):
    type: Literal["conv2d"] = _layer_type("conv2d")
    out_channels: PositiveInt = Field(16, description="output channels")
    kernel_size: PositiveInt = Field(3, description="square kernel size")
    stride: PositiveInt = Field(1, description="stride")
    padding: int = Field(0, ge=0, description="zero padding on each side")
    bias: bool = Field(True, description="add a learned bias")
    neuron: LayerNeuron = _neuron_field()


class MaxPoolLayer(_Section):
    type: Literal["maxpool"] = _layer_type("maxpool")
    kernel_size: PositiveInt = Field(2, description="square window size")
    stride: PositiveInt | None = Field(None, description="stride (default: the window size)")


class AvgPoolLayer(_Section):
    type: Literal["avgpool"] = _layer_type("avgpool")
    kernel_size: PositiveInt = Field(2, description="square window size")
    stride: PositiveInt | None = Field(None, description="stride (default: the window size)")


class FlattenLayer(_Section):
    type: Literal["flatten"] = _layer_type("flatten")


class DropoutLayer(_Section):
    type: Literal["dropout"] = _layer_type("dropout")
    p: float = Field(0.5, ge=0, lt=1, description="probability of zeroing an activation")


class BatchNormLayer(_Section):
    type: Literal["batchnorm"] = _layer_type("batchnorm")
    neuron: LayerNeuron = _neuron_field()


class BatchNormTTLayer(_Section):
    """snnTorch's BatchNormTT1d / BatchNormTT2d; its number of norms is the run's time steps."""

    type: Literal["batchnorm_tt"] = _layer_type("batchnorm_tt")
    eps: PositiveFloat = Field(1e-5, description="added to the variance for numerical stability")
    momentum: Annotated[float, Field(ge=0, le=1)] | None = Field(
        0.1, description="weight of each batch in the running statistics (null: a cumulative average)"
    )
    affine: bool = Field(True, description="learn a scale per feature and step (no shift, as snnTorch)")
    neuron: LayerNeuron = _neuron_field()


class DelayedLinearLayer(_Initialised):
    """A linear layer with a learned delay per synapse (DCLS): a causal convolution over time whose kernel holds
    each synapse's weight at its delay, spread by a Gaussian whose sigma falls over the run."""

    type: Literal["delayed_linear"] = _layer_type("delayed_linear")
    out_features: PositiveInt = Field(10, description="output features (neurons)")
    bias: bool = Field(True, description="add a learned bias")
    max_delay: PositiveInt = Field(25, description="longest delay in time steps; delays start uniform in [0, max]")
    sigma_start: PositiveFloat | None = Field(
        None, description="width (steps) of each synapse's Gaussian over the delays at the first epoch (null: max/2)"
    )
    sigma_end: PositiveFloat = Field(0.23, description="width (steps) it falls to, near a single tap")
    sigma_anneal: float = Field(
        0.25, ge=0, le=1, description="fraction of train.epochs over which sigma falls exponentially to sigma_end"
    )
    delay_lr_scale: PositiveFloat = Field(100.0, description="learning rate of the delays over train.lr")
    round_in_eval: bool = Field(True, description="evaluate with delays rounded to whole steps, one tap each")
    neuron: LayerNeuron = _neuron_field()


LAYERS: dict[str, type[_Section]] = {
    "linear": LinearLayer,
    "conv2d": Conv2dLayer,
    "maxpool": MaxPoolLayer,
    "avgpool": AvgPoolLayer,
    "flatten": FlattenLayer,
    "dropout": DropoutLayer,
    "batchnorm": BatchNormLayer,
    "batchnorm_tt": BatchNormTTLayer,
    "delayed_linear": DelayedLinearLayer,
}
catalog.check_implemented("layer types in the config", catalog.LAYERS, LAYERS)
Layer = Annotated[
    LinearLayer
    | Conv2dLayer
    | MaxPoolLayer
    | AvgPoolLayer
    | FlattenLayer
    | DropoutLayer
    | BatchNormLayer
    | BatchNormTTLayer
    | DelayedLinearLayer,
    Field(discriminator="type"),
]


def _quickstart_layers() -> list[Layer]:
    return [FlattenLayer(), LinearLayer(out_features=256, neuron=True), LinearLayer(out_features=10, neuron=True)]


class ModelConfig(_Section):
    """The network: a default neuron and a stack of layers, each optionally followed by a neuron."""

    neuron: NeuronConfig = Field(default_factory=NeuronConfig, description="the neuron of layers with neuron: true")
    layers: list[Layer] = Field(
        default_factory=_quickstart_layers, min_length=1, description="layers in order; the last must spike"
    )
    fused: bool = Field(True, description="use the fused whole-sequence kernels (false: the reference loops)")

    @model_validator(mode="before")
    @classmethod
    def _merge_neuron_overrides(cls, data: Any) -> Any:
        """Turn each layer's neuron mapping into model.neuron updated by it, so that errors name the layer."""
        if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
            return data
        base = data.get("neuron") or {}
        base = base.model_dump(exclude_unset=True) if isinstance(base, NeuronConfig) else base
        try:
            NeuronConfig.model_validate(base)
        except ValidationError:
            base = {}  # model.neuron reports its own error; do not repeat it for every layer
        layers = []
        for layer in data["layers"]:
            if isinstance(layer, dict) and isinstance(layer.get("neuron"), dict):
                own = layer["neuron"]
                inherited = base
                if own.get("type", base.get("type")) == "lapicque" and base.get("type") != "lapicque":
                    inherited = {k: v for k, v in base.items() if k not in _LAPICQUE_CONSTANTS}
                layer = {**layer, "neuron": {**inherited, **own}}
            layers.append(layer)
        return {**data, "layers": layers}

    @model_validator(mode="after")
    def _output_layer_spikes(self) -> ModelConfig:
        last = len(self.layers) - 1
        if getattr(self.layers[last], "neuron", False) is False:
            raise _fail("the output layer must spike: set neuron: true (or a mapping of neuron settings)",
                        f"layers.{last}.neuron")  # fmt: skip
        return self

    def _neuron_of(self, layer: _Section) -> NeuronConfig | None:
        neuron = getattr(layer, "neuron", False)
        if neuron is False:
            return None
        return self.neuron if neuron is True else neuron

    def layer_specs(self, time_steps: int | None = None) -> list[dict[str, Any]]:
        """The layer dicts ``snnlab.engine.models.build_model`` takes (no "neuron" key when there is none).

        A batchnorm_tt layer needs the run's number of steps: ``time_steps``, which the model section does
        not know (``Config.layer_specs()`` passes data.time_steps)."""
        specs = []
        for layer in self.layers:
            spec = layer.model_dump(exclude={"neuron", *_untouched_inits(layer)})
            if layer.type == "batchnorm_tt" and time_steps is not None:
                spec["time_steps"] = time_steps
            neuron = self._neuron_of(layer)
            if neuron is not None:
                spec["neuron"] = neuron.kwargs()
            specs.append(spec)
        return specs

    def spiking_layer_names(self) -> list[str]:
        """Names of the layers followed by a neuron, as the built model calls them (fc1, conv2, ...)."""
        counts: dict[str, int] = {}
        names = []
        for layer in self.layers:
            counts[layer.type] = counts.get(layer.type, 0) + 1
            if self._neuron_of(layer) is not None:
                names.append(f"{_LAYER_PREFIX.get(layer.type, layer.type)}{counts[layer.type]}")
        return names


# --- train and run -------------------------------------------------------------------------------------


class TrainConfig(_Section):
    """Optimisation: epochs, optimizer, schedule, loss and decoding."""

    epochs: PositiveInt = Field(1, description="passes over the train split")
    optimizer: OptimizerName = Field("adam", description="adam, adamw or sgd")
    lr: PositiveFloat = Field(5e-4, description="learning rate")
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = Field(
        (0.9, 0.999), description="Adam's moment decay rates (adam, adamw)"
    )
    momentum: float = Field(0.9, ge=0, description="SGD momentum (sgd)")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty (decoupled for adamw)")
    scheduler: SchedulerName = Field(
        "none", description="learning-rate schedule, stepped per epoch: none, cosine or step"
    )
    step_size: PositiveInt = Field(1, description="epochs between learning-rate drops (step)")
    gamma: float = Field(0.5, gt=0, le=1, description="factor of each learning-rate drop (step)")
    grad_clip: PositiveFloat | None = Field(None, description="clip the gradient norm to this (null: no clipping)")
    loss: LossName = Field(
        "ce_membrane", description="ce_membrane (CE on membrane, summed over steps), ce_rate, mse_count"
    )
    loss_params: dict[str, float] = Field(
        default_factory=dict, description="loss options: mse_count takes correct_rate and incorrect_rate"
    )
    decoder: DecoderName = Field(
        "rate",
        description="how outputs become a class: rate (most spikes, ties by membrane), rate_first (most spikes, "
        "ties to the lowest class, as the snnTorch and SpikingJelly tutorials), latency (first spike), membrane",
    )
    seed: int = Field(0, ge=0, lt=2**63, description="seed for weights, shuffling, encoders and subsets")
    device: DeviceName = Field("auto", description="auto picks cuda, then mps, then cpu")
    precision: PrecisionName = Field(
        "float32",
        description="bfloat16: linear and conv layers in bfloat16 (torch.autocast), neurons stay float32",
    )
    max_steps: PositiveInt | None = Field(None, description="stop after this many optimizer steps (smoke tests)")
    bptt_segment: int | Literal["auto"] | None = Field(
        None,
        description="bounded memory for long sequences: keep the neuron states only every this many steps and "
        "recompute the steps between in the backward pass (auto: ceil(sqrt(T)); null: keep all). Same "
        "gradients, 1.3-3x the time",
    )
    compact_spikes: bool = Field(
        False,
        description="keep hidden layers' spikes for the backward pass in one byte each, not four: same "
        "gradients, 10-20% more time; a lower peak with two or more hidden layers, a higher one with one",
    )

    @field_validator("bptt_segment", mode="before")
    @classmethod
    def _segment_length(cls, value: Any) -> Any:
        if value is None or value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(f"must be a number of time steps >= 1, auto or null (got {_show(value)})")
        return value

    @field_validator("loss_params")
    @classmethod
    def _params_fit_loss(cls, params: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        loss = info.data.get("loss")
        if loss is None:
            return params
        allowed = list(catalog.LOSSES[loss].defaults)
        for key, value in params.items():
            if key not in allowed:
                if not allowed:
                    raise _fail(f"loss '{loss}' takes no parameters", key)
                hint = did_you_mean(key, allowed) or f" (parameters: {', '.join(allowed)})"
                raise _fail(f"unknown parameter {_show(key)} for loss '{loss}'{hint}", key)
            if not 0 <= value <= 1:
                raise _fail(f"must be a firing rate in [0, 1] (got {_show(value)})", key)
        return params


class ProbeConfig(_Section):
    """Which neurons' membrane traces and spikes are recorded at each evaluation, for the viewer."""

    layers: list[str] = Field(default_factory=list, description="spiking layers to record, e.g. [fc1] (empty: all)")
    neurons: PositiveInt = Field(16, description="neurons recorded per layer")
    samples: PositiveInt = Field(4, description="test samples recorded")
    trace: dict[str, list[NonNegativeInt]] = Field(
        default_factory=dict,
        description="more neurons whose membrane is recorded, by index per layer, e.g. {fc1: [3, 17]} "
        "(the lab's raster adds them with t)",
    )
    enabled: bool = Field(True, description="record probes at all")


class HealthConfig(_Section):
    """Per-layer health at each evaluation (``snnlab.engine.health``): silent and saturated neurons, spike rate,
    surrogate and weight gradients, SynOps, and a warning with a hint when a layer goes past a threshold."""

    enabled: bool = Field(True, description="measure and report network health at each evaluation")
    sample_every: PositiveInt = Field(
        10, description="optimizer steps between the steps whose gradients are sampled (plus each epoch's last)"
    )
    silent: Annotated[float, Field(gt=0, le=1)] = Field(
        0.9, description="warn when at least this share of a layer's neurons never fired in an evaluation"
    )
    saturated: Annotated[float, Field(gt=0, le=1)] = Field(
        0.5, description="warn when at least this share of a layer's neurons fired at every step"
    )
    vanishing_grad: Annotated[float, Field(ge=0)] = Field(
        1e-7, description="warn when a layer's weight-gradient norm is below this"
    )
    vanishing_ratio: Annotated[float, Field(ge=0, lt=1)] = Field(
        1e-3, description="... or below this fraction of the largest weight-gradient norm of the network"
    )


MAX_RUN_NAME = 200  # <name>-<YYYYmmdd-HHMMSS>-<n> and sweep-<name>-<YYYYmmdd-HHMMSS> stay under 255 bytes


class RunConfig(_Section):
    """Where the run is written and how often it checkpoints, evaluates and logs."""

    name: str = Field("run", description="run name; the directory is <runs_dir>/<name>-<timestamp>")
    runs_dir: str = Field("runs", description="folder holding run directories")
    checkpoint_every: PositiveInt = Field(1, description="epochs between checkpoints")
    checkpoint_steps: PositiveInt | None = Field(
        None, description="also checkpoint every this many optimizer steps within an epoch (null: only at epoch ends)"
    )
    eval_every: PositiveInt = Field(1, description="epochs between evaluations on the test split")
    log_every: PositiveInt = Field(1, description="optimizer steps between logged training metrics")
    probes: ProbeConfig = Field(default_factory=ProbeConfig, description="membrane / spike recording")
    health: HealthConfig = Field(default_factory=HealthConfig, description="per-layer health and its warnings")
    loggers: list[LoggerName] = Field(
        default_factory=list, description="more places the run's events go: tensorboard (RUN/tensorboard/)"
    )

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise _fail(f"may contain only letters, digits, '-', '_' and '.' (got {_show(name)})")
        if len(name) > MAX_RUN_NAME:
            # Caught here, the message can name this setting; the file system would only say "File name too
            # long" about a folder, long after the config was read.
            raise _fail(
                f"is {len(name)} characters long; at most {MAX_RUN_NAME} fit, since the run's folder name adds "
                "a timestamp and file systems allow 255"
            )
        return name


# --- the whole config ----------------------------------------------------------------------------------

_SECTIONS = ("data", "model", "train", "run")


class Config(_Section):
    """A complete, validated run configuration."""

    description: str = Field("", description="one line shown by `snnlab presets`")
    data: DataConfig = Field(default_factory=DataConfig, description="dataset, batching and encoding")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the network")
    train: TrainConfig = Field(default_factory=TrainConfig, description="optimisation")
    run: RunConfig = Field(default_factory=RunConfig, description="run directory, checkpoints, logging, probes")

    @model_validator(mode="before")
    @classmethod
    def _empty_sections_are_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if not (k in _SECTIONS and v is None)}
        return data

    @field_validator("description", mode="before")
    @classmethod
    def _one_line(cls, text: Any) -> Any:
        if isinstance(text, str):
            text = text.strip()
            if "\n" in text:
                raise _fail("must be one line")
        return text

    @model_validator(mode="after")
    def _probed_layers_exist(self) -> Config:
        known = self.model.spiking_layer_names()
        for i, name in enumerate(self.run.probes.layers):
            if name not in known:
                hint = did_you_mean(name, known)
                raise _fail(f"no spiking layer {_show(name)}{hint} (spiking layers: {', '.join(known)})",
                            f"run.probes.layers.{i}")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _network_fits_data(self) -> Config:
        _check_network(self)
        return self

    @model_validator(mode="after")
    def _traced_neurons_exist(self) -> Config:
        if not self.run.probes.trace:
            return self
        sizes = self.spiking_layer_sizes()
        for name, indices in self.run.probes.trace.items():
            key = f"run.probes.trace.{name}"
            if name not in sizes:
                hint = did_you_mean(name, list(sizes))
                raise _fail(f"no spiking layer {_show(name)}{hint} (spiking layers: {', '.join(sizes)})", key)
            outside = [i for i in indices if i >= sizes[name]]
            if outside:
                raise _fail(f"{name} has {sizes[name]} neurons (0 to {sizes[name] - 1}), so {outside[0]} is none of "
                            f"them", key)  # fmt: skip
        return self

    def spiking_layer_sizes(self) -> dict[str, int]:
        """Neurons in each spiking layer (its flattened output per sample and step), by the model's names."""
        counts = [math.prod(shape) for shape, i in _walk(self)[1:]
                  if i is not None and self.model._neuron_of(self.model.layers[i]) is not None]  # fmt: skip
        return dict(zip(self.model.spiking_layer_names(), counts, strict=True))

    @model_validator(mode="after")
    def _silent_output_is_read_by_its_membrane(self) -> Config:
        """A neuron that never fires (expon) ends the network, and its output is read by its membrane only."""
        layers, last = self.model.layers, len(self.model.layers) - 1
        for i, layer in enumerate(layers[:last]):
            neuron = self.model._neuron_of(layer)
            if neuron is not None and neuron.type in catalog.SILENT_NEURONS:
                raise _fail(f"{neuron.type} never fires, so the layers after model.layers.{i} would see no "
                            "spikes: use it on the output layer only", _neuron_key(self, i, "type"))  # fmt: skip
        out = self.model._neuron_of(layers[last])
        if out is None or out.type not in catalog.SILENT_NEURONS:
            return self
        if self.train.loss in catalog.SPIKE_LOSSES:
            raise _fail(f"loss {self.train.loss} reads the output spikes, but the output neuron ({out.type}) never "
                        "fires: use ce_mean_membrane or ce_membrane", "train.loss")  # fmt: skip
        if self.train.decoder in catalog.SPIKE_DECODERS:
            raise _fail(f"decoder {self.train.decoder} reads the output spikes, but the output neuron ({out.type}) "
                        "never fires: use decoder: membrane", "train.decoder")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _segments_split_the_network(self) -> Config:
        """A batchnorm over the whole sequence's steps at once cannot run a segment at a time."""
        if self.train.bptt_segment is None:
            return self
        static = self.data.encoder == "direct" and not _data_shape(self).temporal
        for i, layer in enumerate(self.model.layers):
            if layer.type == "delayed_linear":
                raise _fail("a delayed_linear layer reads inputs up to max_delay steps back, across the segments of "
                            "train.bptt_segment; set train.bptt_segment: null", f"model.layers.{i}")  # fmt: skip
            if layer.type == "batchnorm" and not static:
                raise _fail("a batchnorm that sees the time steps normalises over all of them at once, which "
                            "train.bptt_segment cannot split; use batchnorm_tt or set train.bptt_segment: null",
                            f"model.layers.{i}")  # fmt: skip
            static = static and getattr(layer, "neuron", False) is False and layer.type != "batchnorm_tt"
        return self

    def layer_specs(self) -> list[dict[str, Any]]:
        """The layer dicts ``build_model`` takes, with the run's number of steps where a layer needs it."""
        return self.model.layer_specs(_time_steps(self))

    def smallest_batch(self) -> int:
        """2 when a batchnorm layer would see one value per feature in a batch of one sample (which training
        cannot normalise), else 1. The trainer leaves out a last batch smaller than this."""
        return 2 if _batchnorm_of_one(self) is not None else 1

    def parameter_count(self) -> int:
        """Trained parameters of the network this config builds: the count that
        :data:`snnlab.engine.shapes.MAX_PARAMETERS` bounds."""
        return sum(_layer_parameters(self, _walk(self)))

    def batch_values(self) -> int:
        """Values one training batch holds over all time steps, from the input through every layer: the
        estimate that :data:`snnlab.engine.shapes.MAX_BATCH_VALUES` bounds."""
        facts = _data_shape(self)
        size = self.data.train_size or facts.train_samples
        return min(self.data.batch_size, size) * _time_steps(self) * sum(math.prod(s) for s, _ in _walk(self))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON / YAML safe) that :func:`config_from_dict` turns back into this config.

        A layer's neuron mapping keeps only what differs from model.neuron (true when nothing does)."""
        data = self.model_dump(mode="json")
        base = data["model"]["neuron"] = neuron_dump(self.model.neuron)
        for spec, layer in zip(data["model"]["layers"], self.model.layers, strict=True):
            for name in _untouched_inits(layer):
                del spec[name]
            neuron = getattr(layer, "neuron", None)
            if isinstance(neuron, NeuronConfig):
                own = neuron_dump(neuron)
                # A lapicque layer under another type inherits no beta, R or C: it keeps its own.
                keep = _LAPICQUE_CONSTANTS if neuron.type == "lapicque" != self.model.neuron.type else ()
                overrides = {k: v for k, v in own.items() if v != base.get(k) or k in keep}
                spec["neuron"] = overrides or True
        return data


# --- checks across sections: the network against its data -------------------------------------------


def _data_shape(cfg: Config) -> shapes.DataShape:
    return shapes.data_shape(cfg.data.dataset, cfg.data.synthetic.model_dump(), cfg.data.events.model_dump())


def _time_steps(cfg: Config) -> int:
    return cfg.data.synthetic.time_steps if cfg.data.dataset == "synthetic" else cfg.data.time_steps


def _walk(cfg: Config) -> list[tuple[tuple[int, ...], int | None]]:
    """``(shape, layer index)`` of the input (index None) and of each layer's output, per sample and step.

    Raises the validation error of the first layer that does not fit its input."""
    shape = _data_shape(cfg).input_shape
    walked: list[tuple[tuple[int, ...], int | None]] = [(shape, None)]
    for i, (layer, spec) in enumerate(zip(cfg.model.layers, cfg.layer_specs(), strict=True)):
        try:
            shape = shapes.layer_output(layer.type, spec, shape)
            if "neuron" in spec:
                shapes.check_neuron(spec["neuron"], shape, f"model.layers.{i} ({layer.type})")
        except shapes.ShapeError as exc:
            raise _fail(exc.problem, _neuron_key(cfg, i, exc.key)) from None
        except ValueError as exc:
            raise _fail(str(exc), f"model.layers.{i}") from None
        walked.append((shape, i))
    return walked


def _neuron_key(cfg: Config, i: int, name: str | None) -> str:
    """Where a layer's neuron setting ``name`` was written: on the layer, or on model.neuron when inherited."""
    own = getattr(cfg.model.layers[i], "neuron", True)
    inherited = own is True or (name is not None and getattr(own, name) == getattr(cfg.model.neuron, name))
    where = "model.neuron" if inherited else f"model.layers.{i}.neuron"
    return f"{where}.{name}" if name else f"model.layers.{i}.neuron"


def _batchnorm_of_one(cfg: Config) -> int | None:
    """The index of a batchnorm layer that sees a single value per feature when a batch holds one sample."""
    static = cfg.data.encoder == "direct" and not _data_shape(cfg).temporal
    for i, ((shape, _), layer) in enumerate(zip(_walk(cfg), cfg.model.layers, strict=False)):
        # Before the first neuron a direct-encoded image passes each layer once per sample, not once per step;
        # batchnorm_tt normalises each step on its own, over the batch (and H, W) only.
        per_step = layer.type == "batchnorm_tt" or static
        if layer.type.startswith("batchnorm") and math.prod(shape[1:]) * (1 if per_step else _time_steps(cfg)) == 1:
            return i
        # After a per-step layer (batchnorm_tt, delayed_linear) the activity differs from step to step.
        per_step_layer = layer.type in ("batchnorm_tt", "delayed_linear")
        static = static and getattr(layer, "neuron", False) is False and not per_step_layer
    return None


def _size_key(cfg: Config, i: int) -> str:
    """The key that sets the size of layer ``i`` (its out_features or out_channels), else the layer."""
    layer = cfg.model.layers[i]
    size = next((k for k in ("out_features", "out_channels") if hasattr(layer, k)), None)
    return f"model.layers.{i}.{size}" if size else f"model.layers.{i}"


def _check_network(cfg: Config) -> None:
    """Shapes and sizes that depend on more than one section, checked before any data loads: each layer fits
    its input, the output fits the classes, the splits and batches exist, and nothing is absurdly large."""
    d, facts = cfg.data, _data_shape(cfg)
    if d.dataset == "synthetic":
        s = d.synthetic
        values = s.samples * s.time_steps * s.inputs
        if values > shapes.MAX_DATASET_VALUES:
            key = max(("samples", "time_steps", "inputs"), key=lambda k: getattr(s, k))
            raise _fail(f"the synthetic set would hold {s.samples:,} samples x {s.time_steps:,} steps x "
                        f"{s.inputs:,} inputs = {values:,} values ({_memory(values)}), more than the limit of "
                        f"{shapes.MAX_DATASET_VALUES:,}", f"data.synthetic.{key}")  # fmt: skip
    train = d.train_size or facts.train_samples
    test_pool = train if d.dataset == "synthetic" else facts.test_samples  # synthetic tests on its train split
    for name, available in (("train_size", facts.train_samples), ("test_size", test_pool)):
        size = getattr(d, name)
        if size is not None and size > available:
            split = name.removesuffix("_size")
            raise _fail(f"must be <= {available:,}, the size of the {d.dataset} {split} split (got {_show(size)})",
                        f"data.{name}")  # fmt: skip

    walked = _walk(cfg)
    layers, last, shape = cfg.model.layers, len(cfg.model.layers) - 1, walked[-1][0]
    if shape != (facts.classes,):
        if layers[last].type in ("linear", "delayed_linear"):
            raise _fail(f"the output layer has {shape[0]:,} outputs but {d.dataset} has {facts.classes} classes: "
                        f"set it to {facts.classes}", f"model.layers.{last}.out_features")  # fmt: skip
        raise _fail(f"the output layer gives {list(shape)} but {d.dataset} needs [{facts.classes}], one per class: "
                    f"end with a linear layer of {facts.classes} out_features", f"model.layers.{last}")  # fmt: skip

    params = _layer_parameters(cfg, walked)
    total = sum(params)
    if total > shapes.MAX_PARAMETERS:
        i = max(range(len(params)), key=params.__getitem__)
        raise _fail(f"the network would have {total:,} parameters ({_memory(total)} as float32), more than the "
                    f"limit of {shapes.MAX_PARAMETERS:,}; model.layers.{i} holds {params[i]:,} of them",
                    _size_key(cfg, i))  # fmt: skip

    batch, steps = min(d.batch_size, train), _time_steps(cfg)
    per_step = sum(math.prod(s) for s, _ in walked)
    values = batch * steps * per_step
    if values > shapes.MAX_BATCH_VALUES:
        widest = max(range(1, len(walked)), key=lambda k: math.prod(walked[k][0]))
        factors = {"data.batch_size": batch, _time_key(cfg): steps, _size_key(cfg, widest - 1): per_step}
        raise _fail(f"one batch would hold {batch:,} samples x {steps:,} steps x {per_step:,} values per step = "
                    f"{values:,} values ({_memory(values)} as float32), more than the limit of "
                    f"{shapes.MAX_BATCH_VALUES:,}; lower the batch size, the time steps or the layer sizes",
                    max(factors, key=factors.__getitem__))  # fmt: skip

    norm = _batchnorm_of_one(cfg)
    if norm is not None:
        kind = cfg.model.layers[norm].type
        step = " at each step" if kind == "batchnorm_tt" else ""
        why = (f"model.layers.{norm} ({kind}) normalises each feature{step} over the samples of a batch, and one "
               "sample has no batch statistics")  # fmt: skip
        if d.batch_size < 2:
            raise _fail(f"must be at least 2: {why} (got {d.batch_size})", "data.batch_size")
        if train < 2:
            key = "data.train_size" if d.train_size else "data.synthetic.samples"
            raise _fail(f"must be at least 2: {why} (got {train})", key)

    if d.drop_last and train < d.batch_size:
        raise _fail(f"would leave out every batch: the {train:,} training samples are fewer than one batch of "
                    f"{d.batch_size:,}; lower data.batch_size to at most {train:,} or set drop_last: false",
                    "data.drop_last")  # fmt: skip


def _layer_parameters(cfg: Config, walked: list[tuple[tuple[int, ...], int | None]]) -> list[int]:
    """Trained parameters of each layer and the neuron after it, given the shapes :func:`_walk` found."""
    params = []
    for i, (layer, spec) in enumerate(zip(cfg.model.layers, cfg.layer_specs(), strict=True)):
        count = shapes.layer_parameters(layer.type, spec, walked[i][0])
        params.append(count + (shapes.neuron_parameters(spec["neuron"], walked[i + 1][0]) if "neuron" in spec else 0))
    return params


def _time_key(cfg: Config) -> str:
    return "data.synthetic.time_steps" if cfg.data.dataset == "synthetic" else "data.time_steps"


def _memory(values: int) -> str:
    """The memory ``values`` float32 numbers take: '292 GiB'."""
    size = values * 4.0
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024:
            return f"{size:.3g} {unit}"
        size /= 1024
    return f"{size:.3g} EiB"


# --- schema --------------------------------------------------------------------------------------------


def schema_rows() -> list[tuple[str, str, str, str]]:
    """``(dotted key, type, default, description)`` for every field; layer fields as ``model.layers[linear].bias``."""
    rows: list[tuple[str, str, str, str]] = []
    _schema(Config, "", rows)
    for kind, layer in LAYERS.items():
        _schema(layer, f"model.layers[{kind}].", rows)
    return rows


def _schema(model: type[BaseModel], prefix: str, rows: list) -> None:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _schema(annotation, f"{prefix}{name}.", rows)
            continue
        default = field.get_default(call_default_factory=True)
        if name == "layers" and model is ModelConfig:
            type_name, shown = "list of layers", ", ".join(_layer_summary(layer) for layer in default)
        elif name == "neuron":
            type_name, shown = "bool | neuron overrides", _show(default)
        else:
            type_name = _type_name(annotation) + _bounds(field.metadata)
            shown = default if isinstance(default, str) and default else _show(_plain(default))
        rows.append((prefix + name, type_name, shown, field.description or ""))


def _layer_summary(layer: Layer) -> str:
    size = getattr(layer, "out_features", None) or getattr(layer, "out_channels", None)
    return layer.type + (f" {size}" if size else "")


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " | ".join(map(str, args))
    if origin is Annotated:
        return _type_name(args[0]) + _bounds(args[1:])
    if origin in (typing.Union, types.UnionType):
        return " | ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin is list:
        return f"list[{_type_name(args[0])}]"
    if origin is dict:
        return f"mapping of {_type_name(args[1])}"
    if origin is tuple:
        return "[" + ", ".join(_type_name(a) for a in args) + "]"
    return getattr(annotation, "__name__", str(annotation))


_SIGNS = {annotated_types.Gt: ("gt", ">"), annotated_types.Ge: ("ge", ">="),
          annotated_types.Lt: ("lt", "<"), annotated_types.Le: ("le", "<=")}  # fmt: skip


def _bounds(metadata: Iterable[Any]) -> str:
    parts = list(_bound_parts(metadata))
    return f" ({', '.join(parts)})" if parts else ""


def _bound_parts(metadata: Iterable[Any]) -> Iterable[str]:
    for item in metadata:
        if isinstance(item, FieldInfo):
            yield from _bound_parts(item.metadata)
        for cls, (attr, sign) in _SIGNS.items():
            if isinstance(item, cls):
                yield f"{sign} {_number(getattr(item, attr))}"
