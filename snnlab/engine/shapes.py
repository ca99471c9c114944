"""Shapes and sizes, without torch: what each dataset feeds a network, what each layer makes of its input,
and how many parameters it holds.

The config checks a whole network against its dataset with these rules before anything is loaded or built,
and ``models.build_model`` builds from the same rules, so a shape is worked out in one place. A test holds
``data.load_dataset`` to :data:`IMAGE_SETS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from snnlab import catalog

# Bounds on what a config may ask for. They are far above anything that trains on one accelerator, and low
# enough that a typo (out_features: 100000000) is refused in one line instead of failing in the allocator.
MAX_PARAMETERS = 10**9  # 4 GB of float32 weights, about 16 GB with gradients and Adam's two moments
MAX_BATCH_VALUES = 2**32  # values one batch holds over all time steps and layers (16 GiB per float32 copy)
MAX_DATASET_VALUES = 2**31  # values of a generated (synthetic) dataset held in memory (8 GiB as float32)


@dataclass(frozen=True)
class DataShape:
    """What a dataset gives a network: ``input_shape`` per sample and step ((C, H, W) for images, (F,) for
    spike trains), the number of classes, and the sizes of the train and test splits."""

    input_shape: tuple[int, ...]
    classes: int
    train_samples: int
    test_samples: int
    temporal: bool = False


IMAGE_SETS: dict[str, DataShape] = {
    "bundled": DataShape((1, 28, 28), 10, 5000, 1000),
    "mnist": DataShape((1, 28, 28), 10, 60000, 10000),
    "fashion-mnist": DataShape((1, 28, 28), 10, 60000, 10000),
    "kmnist": DataShape((1, 28, 28), 10, 60000, 10000),
}


@dataclass(frozen=True)
class EventSet:
    """A set of recorded events: its ``sensor`` ((channels,) for audio, (polarities, H, W) for a camera), the
    number of classes, the sizes of its train and test splits, and the span of a recording that is binned
    unless ``data.events.duration_ms`` says otherwise."""

    sensor: tuple[int, ...]
    classes: int
    train_samples: int
    test_samples: int
    duration_ms: float


EVENT_SETS: dict[str, EventSet] = {
    # SHD recordings last up to about 1.4 s, most of the word within the first second.
    "shd": EventSet((700,), 20, 8156, 2264, 1000.0),
    "ssc": EventSet((700,), 35, 75466, 20382, 1000.0),
    # N-MNIST: three saccades of about 100 ms each.
    "nmnist": EventSet((2, 34, 34), 10, 60000, 10000, 300.0),
    "dvs_gesture": EventSet((2, 128, 128), 11, 1077, 264, 6000.0),
}
catalog.check_implemented("dataset shapes", catalog.DATASETS, [*IMAGE_SETS, "synthetic", *EVENT_SETS])


def event_input_shape(dataset: str, downsample: int) -> tuple[int, ...]:
    """Per step input of an event set: its channels, or its H and W, each merged ``downsample`` to one."""
    sensor = EVENT_SETS[dataset].sensor
    if len(sensor) == 1:
        return (-(-sensor[0] // downsample),)
    return (sensor[0], *(-(-size // downsample) for size in sensor[1:]))


def data_shape(dataset: str, synthetic: dict[str, Any], events: dict[str, Any] | None = None) -> DataShape:
    """The :class:`DataShape` of ``dataset``; ``synthetic`` holds the synthetic set's parameters and ``events``
    those of the event sets (only ``downsample`` changes a shape)."""
    if dataset == "synthetic":
        samples = synthetic["samples"]
        # The synthetic task is memorisation: the test split is the train split.
        return DataShape((synthetic["inputs"],), synthetic["classes"], samples, samples, temporal=True)
    if dataset in EVENT_SETS:
        facts, downsample = EVENT_SETS[dataset], (events or {}).get("downsample", 1)
        shape = event_input_shape(dataset, downsample)
        return DataShape(shape, facts.classes, facts.train_samples, facts.test_samples, temporal=True)
    return IMAGE_SETS[dataset]


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def layer_output(kind: str, spec: dict[str, Any], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The per-sample output shape of a layer ``kind`` with settings ``spec`` given inputs of ``shape``.

    Raises ValueError, in words for the user, when the layer does not fit its input.
    """
    if kind in ("linear", "delayed_linear"):
        if len(shape) != 1:
            raise ValueError(f"input has shape {list(shape)}; add a flatten layer before a {kind} layer")
        return (spec["out_features"],)
    if kind in ("conv2d", "maxpool", "avgpool"):
        if len(shape) != 3:
            what = "conv2d" if kind == "conv2d" else "pooling"
            raise ValueError(f"input has shape {list(shape)}; {what} needs [C, H, W]")
        k = spec.get("kernel_size", 2)
        if kind == "conv2d":
            stride, padding, channels = spec.get("stride", 1), spec.get("padding", 0), spec["out_channels"]
        else:
            stride, padding, channels = spec.get("stride") or k, 0, shape[0]
        h, w = (_conv_out(s, k, stride, padding) for s in shape[1:])
        if h < 1 or w < 1:
            raise ValueError(f"kernel {k} does not fit input {list(shape)}")
        widest = max(shape[1:]) + 2 * padding
        if stride > widest:  # one window either way, and torch's pooling cannot take such a stride
            raise ValueError(f"stride {stride} is larger than the input {list(shape)}; use at most {widest}")
        return (channels, h, w)
    if kind == "flatten":
        return (math.prod(shape),)
    if kind == "dropout":
        return shape
    if kind in ("batchnorm", "batchnorm_tt"):
        if len(shape) not in (1, 3):
            raise ValueError(f"{kind} needs [N] or [C, H, W] inputs, got {list(shape)}")
        if kind == "batchnorm_tt" and not (isinstance(spec.get("time_steps"), int) and spec["time_steps"] >= 1):
            raise ValueError("batchnorm_tt needs time_steps, the run's number of steps T (one norm per step)")
        return shape
    raise ValueError(f"unknown layer type {kind!r} (choose from: {', '.join(catalog.LAYERS)})")


def layer_parameters(kind: str, spec: dict[str, Any], shape: tuple[int, ...]) -> int:
    """Trained parameters of a layer given inputs of ``shape`` (which must fit, see :func:`layer_output`)."""
    bias = bool(spec.get("bias", True))
    if kind == "linear":
        return shape[0] * spec["out_features"] + (spec["out_features"] if bias else 0)
    if kind == "delayed_linear":  # a weight and a delay per synapse
        return 2 * shape[0] * spec["out_features"] + (spec["out_features"] if bias else 0)
    if kind == "conv2d":
        out = spec["out_channels"]
        return out * shape[0] * spec["kernel_size"] ** 2 + (out if bias else 0)
    if kind == "batchnorm":
        return 2 * shape[0]
    if kind == "batchnorm_tt":  # a scale per feature and step, no shift (snnTorch's BNTT has no bias)
        return spec["time_steps"] * shape[0] if spec.get("affine", True) else 0
    return 0


# Neuron types whose spikes feed back into their layer through a recurrent map (linear, conv or one-to-one).
RECURRENT = ("rleaky", "rsynaptic")
# snnTorch's spiking LSTMs, each with its own cell: slstm after [N] features, sconv2dlstm after [C, H, W].
LSTM = ("slstm", "sconv2dlstm")


class ShapeError(ValueError):
    """A neuron setting that does not fit its layer: ``key`` names the setting, ``problem`` says what is wrong."""

    def __init__(self, key: str | None, problem: str) -> None:
        super().__init__(f"{key} {problem}" if key else problem)
        self.key = key
        self.problem = problem


def check_neuron(spec: dict[str, Any], shape: tuple[int, ...], layer: str = "the layer") -> None:
    """Raise :class:`ShapeError` when a neuron (as ``NeuronConfig.kwargs()`` gives it) cannot follow ``layer``,
    whose outputs have ``shape``."""
    kind = spec.get("type")
    if kind in RECURRENT and spec.get("all_to_all", True) and len(shape) not in (1, 3):
        raise ShapeError(None, f"an all-to-all {kind} neuron needs [N] (linear) or [C, H, W] (conv) features; "
                         f"{layer} gives {list(shape)}")  # fmt: skip
    if kind == "leaky_parallel" and len(shape) != 1:
        raise ShapeError(None, f"a leaky_parallel neuron needs [N] features (it has its own N x N input weights); "
                         f"{layer} gives {list(shape)}")  # fmt: skip
    if spec.get("inhibition") and len(shape) != 1:
        raise ShapeError("inhibition", f"picks one neuron per sample among [N] features, but {layer} gives "
                         f"{list(shape)}: use it on a neuron after a linear layer")  # fmt: skip
    if kind == "slstm" and len(shape) != 1:
        raise ShapeError(None, f"an slstm neuron needs [N] features (its LSTM cell maps N -> N); {layer} gives "
                         f"{list(shape)}: use sconv2dlstm after a conv layer, or put slstm after a linear "
                         "layer")  # fmt: skip
    if kind == "sconv2dlstm" and len(shape) != 3:
        raise ShapeError(None, f"an sconv2dlstm neuron needs [C, H, W] features (its gates are a convolution); "
                         f"{layer} gives {list(shape)}: use slstm after a linear layer, or put sconv2dlstm after a "
                         "conv layer")  # fmt: skip
    for key in ("beta", "threshold"):
        values = spec.get(key)
        if not isinstance(values, list | tuple):
            continue
        if len(shape) != 1:
            raise ShapeError(key, f"is a list (one value per neuron), which needs a layer of [N] neurons, but "
                             f"{layer} gives {list(shape)}: give {key} as one number")  # fmt: skip
        if len(values) != shape[0]:
            raise ShapeError(key, f"has {len(values):,} values but {layer} has {shape[0]:,} neurons: give one "
                             "value per neuron or a single number")  # fmt: skip


def neuron_parameters(spec: dict[str, Any], shape: tuple[int, ...]) -> int:
    """Trained parameters of a neuron after outputs of ``shape`` (recurrent weights dominate)."""
    count = 0
    if spec.get("type") in RECURRENT and spec.get("learn_recurrent", True):
        if not spec.get("all_to_all", True):
            count += 1  # V
        elif len(shape) == 1:
            count += shape[0] ** 2 + shape[0]  # an N x N linear map and its bias
        else:
            count += shape[0] ** 2 * spec.get("kernel_size", 3) ** 2 + shape[0]  # a C -> C convolution and its bias
    if spec.get("type") == "leaky_parallel":
        # W_ih and the two biases; beta is W_hh, trained whole (its off-diagonal gradient is zeroed)
        count += shape[0] ** 2 + 2 * shape[0] + (shape[0] ** 2 if spec.get("learn_beta") else 0)
    elif spec.get("type") == "slstm":  # torch's LSTMCell(N, N): W_ih, W_hh [4N, N] and b_ih, b_hh [4N]
        count += 8 * shape[0] ** 2 + 8 * shape[0] if spec.get("bias", True) else 8 * shape[0] ** 2
    elif spec.get("type") == "sconv2dlstm":  # Conv2d(2C, 4C, k) over cat(input, membrane), and its bias
        count += 8 * shape[0] ** 2 * spec.get("kernel_size", 3) ** 2 + (4 * shape[0] if spec.get("bias", True) else 0)
    elif spec.get("type") == "plif":  # SpikingJelly's w, one per layer (lif and if learn nothing)
        count += 1
    elif spec.get("learn_beta"):
        beta = spec.get("beta")
        count += len(beta) if isinstance(beta, list | tuple) else 1
    if spec.get("learn_threshold"):
        threshold = spec.get("threshold")
        count += len(threshold) if isinstance(threshold, list | tuple) else 1
    return count + bool(spec.get("learn_alpha"))
