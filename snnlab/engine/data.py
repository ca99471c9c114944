"""Datasets as whole in-memory tensors, and mini-batches sliced from them.

Every dataset is small enough to hold in memory (the largest, a 28x28 set of 70,000 images, is about
220 MB as float32), so a split is two tensors and a batch is an index into them: no per-sample Python,
no worker processes, and the same code on CPU and GPU.

Datasets (listed in :data:`snnlab.catalog.DATASETS`):

- ``bundled``: a class-balanced Fashion-MNIST sample shipped inside the package (no download).
- ``mnist``, ``fashion-mnist``, ``kmnist``: the full sets, through ``torchvision.datasets``, stored under
  ``data_dir``. ``fashion-mnist`` also uses Debian's copy in ``/usr/share/datasets/fashion-mnist``.
- ``synthetic``: Poisson spike trains with random labels, the task of the BrainPy / SpyTorch surrogate
  gradient tutorial.
- ``shd``, ``ssc``, ``nmnist``, ``dvs_gesture``: recorded events binned into frames, read from ``data_dir``
  (see :mod:`snnlab.engine.neuromorphic`).

Image inputs are ``[N, C, H, W]`` float32 in [0, 1] (an encoder turns them into spikes); temporal inputs
are ``[N, T, F]`` float32 spikes (0 or 1), already sequences, or for the event sets uint8 frames
``[N, T, ...]`` (spikes or event counts; the encoder makes each batch float32). Labels are int64 ``[N]``.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import importlib.resources
import logging
import os
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snnlab import catalog
from snnlab.formatting import first_line

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path("~/.cache/snnlab/data")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# Per connection attempt: a dead network fails at once, a stalled one must not hang a run forever.
DOWNLOAD_TIMEOUT_S = 30.0

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
MNIST_CLASSES = [str(digit) for digit in range(10)]

SYNTHETIC_DEFAULTS: dict[str, Any] = dict(catalog.DATASETS["synthetic"].defaults)
# The sets read through torchvision: its class (an attribute of torchvision.datasets) and the class names.
TORCHVISION_SETS = {
    "mnist": ("MNIST", MNIST_CLASSES),
    "fashion-mnist": ("FashionMNIST", FASHION_MNIST_CLASSES),
    "kmnist": ("KMNIST", KMNIST_CLASSES),
}
catalog.check_implemented(
    "datasets", catalog.DATASETS, ["bundled", "synthetic", *TORCHVISION_SETS, *catalog.EVENT_DATASETS]
)

_IDX_FILES = {  # split -> (images file, labels file), the names every MNIST-like set uses
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class DataError(Exception):
    """A dataset could not be provided. The message is one line for the user: what, where, how to fix."""


@dataclass
class Split:
    """One split held in memory.

    ``inputs``: float32, ``[N, C, H, W]`` in [0, 1] for images or ``[N, T, F]`` spikes for temporal sets;
    uint8 frames ``[N, T, ...]`` for the event sets.
    ``labels``: int64 ``[N]``.
    """

    inputs: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return self.labels.shape[0]

    def to(self, device: torch.device | str) -> Split:
        """The same split on ``device`` (moved once, so that batches are slices on the device)."""
        return Split(self.inputs.to(device), self.labels.to(device))


@dataclass
class Dataset:
    """A named dataset: both splits plus what a model needs to know to fit it.

    ``input_shape`` is per sample: ``(C, H, W)`` for images, ``(T, F)`` for temporal sets.
    ``temporal`` is True when inputs are already spike sequences ``[N, T, F]`` and need no encoder.
    """

    name: str
    train: Split
    test: Split
    input_shape: tuple[int, ...]
    num_classes: int
    classes: list[str]
    temporal: bool


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    download: bool = True,
    synthetic: dict | None = None,
    time_steps: int = 25,
    events: dict | None = None,
) -> Dataset:
    """Load dataset ``name`` (one of :data:`snnlab.catalog.DATASETS`) into memory.

    Args:
        name: which dataset.
        data_dir: where downloadable sets live (``<data_dir>/MNIST/raw/*.gz`` and so on). Defaults to
            ``$SNNLAB_DATA_DIR``, else ``~/.cache/snnlab/data``.
        train_size, test_size: keep a seeded, class-stratified random subset of this many samples.
        seed: seeds the subsets and the synthetic generator.
        download: fetch missing files from the dataset's mirrors.
        synthetic: parameters of the ``synthetic`` set, overriding :data:`SYNTHETIC_DEFAULTS`.
        time_steps: frames per recording of an event set.
        events: how an event set is binned and cached (``data.events``: duration_ms, downsample, counts,
            cache, cache_dir).

    Raises:
        DataError: with a one-line message, for anything the user can fix (unknown name, missing files,
            no network, bad sizes or parameters).
    """
    if name not in catalog.DATASETS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(catalog.DATASETS)}")
    if name == "bundled":
        dataset = _load_bundled()
    elif name == "synthetic":
        dataset = _make_synthetic(seed, synthetic or {})
    elif name in catalog.EVENT_DATASETS:
        from snnlab.engine import neuromorphic  # it imports this module

        dataset = neuromorphic.load_event_dataset(name, resolve_data_dir(data_dir), time_steps, events)
    else:
        dataset = _load_mnist_like(name, resolve_data_dir(data_dir), download)

    train = _subset(dataset.train, train_size, seed, "train", name)
    # The synthetic task is memorisation: its test split is its train split, subset or not.
    test_pool = train if dataset.name == "synthetic" else dataset.test
    test = _subset(test_pool, test_size, seed + 1, "test", name)
    dataset.train, dataset.test = train, test
    return dataset


def batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(inputs [B, ...], labels [B])`` mini-batches covering ``split`` once.

    With ``shuffle`` one permutation is drawn from ``generator`` per call (per epoch), so a seeded
    generator gives a reproducible order; without it, batches are contiguous slices (views, no copy).
    ``drop_last`` skips the final batch when it is smaller than ``batch_size``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(split)
    stop = n - n % batch_size if drop_last else n
    if not shuffle:
        for start in range(0, stop, batch_size):
            yield split.inputs[start : start + batch_size], split.labels[start : start + batch_size]
        return
    device = generator.device if generator is not None else torch.device("cpu")
    order = torch.randperm(n, generator=generator, device=device).to(split.labels.device)
    for start in range(0, stop, batch_size):
        index = order[start : start + batch_size]
        yield split.inputs[index], split.labels[index]


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The folder for downloadable datasets: ``data_dir``, else ``$SNNLAB_DATA_DIR``, else the cache."""
    chosen = data_dir if data_dir is not None else os.environ.get("SNNLAB_DATA_DIR") or DEFAULT_DATA_DIR
    return Path(chosen).expanduser()


def read_idx(path: str | Path) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes, the format of MNIST and its kin.

    The header is big-endian: a magic number ``0x0000 08 D`` (``08`` = uint8, ``D`` = number of dims),
    then ``D`` uint32 sizes, then the data. Returns a uint8 array of those sizes, e.g. ``[N, 28, 28]``.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    if len(raw) < 4 or magic >> 8 != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = magic & 0xFF
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(shape)):
        raise ValueError(f"{path} is damaged: header says {shape}, found {len(raw) - offset} bytes of data")
    # bytearray: a writable buffer, so torch can share it without warning about read-only memory.
    return np.frombuffer(bytearray(raw), dtype=np.uint8, offset=offset).reshape(shape)


# --- image sets ------------------------------------------------------------------------------------


def _image_split(images: np.ndarray | Tensor, labels: np.ndarray | Tensor) -> Split:
    """uint8 images ``[N, H, W]`` and integer labels ``[N]`` -> float ``[N, 1, H, W]`` in [0, 1], int64."""
    images, labels = torch.as_tensor(images), torch.as_tensor(labels)
    return Split(images.unsqueeze(1).to(torch.float32).div_(255.0), labels.to(torch.int64))


def _image_dataset(name: str, train: Split, test: Split, classes: list[str]) -> Dataset:
    return Dataset(
        name=name,
        train=train,
        test=test,
        input_shape=tuple(train.inputs.shape[1:]),
        num_classes=len(classes),
        classes=list(classes),
        temporal=False,
    )


def _load_bundled() -> Dataset:
    resource = importlib.resources.files("snnlab") / "data" / "fashion_mnist_sample.npz"
    try:
        with resource.open("rb") as f, np.load(f) as npz:
            arrays = {key: npz[key] for key in ("train_images", "train_labels", "test_images", "test_labels")}
    except (OSError, KeyError, ValueError) as error:
        raise DataError(
            f"the bundled sample {resource} is missing or unreadable ({error}): reinstall snnlab, "
            "or rebuild it with scripts/build_bundled.py"
        ) from None
    train = _image_split(arrays["train_images"], arrays["train_labels"])
    test = _image_split(arrays["test_images"], arrays["test_labels"])
    return _image_dataset("bundled", train, test, FASHION_MNIST_CLASSES)


def _load_mnist_like(name: str, root: Path, download: bool) -> Dataset:
    """MNIST, Fashion-MNIST or KMNIST as whole-split tensors, read through torchvision."""
    datasets = _torchvision_datasets()

    class_name, classes = TORCHVISION_SETS[name]
    cls = getattr(datasets, class_name)
    raw = root / cls.__name__ / "raw"

    # Debian's copy saves a download; a copy the user put in data_dir wins, being the one they chose.
    debian_copy = _has_idx_files(DEBIAN_FASHION_MNIST) and not _holds_raw_files(raw, cls.resources)
    if name == "fashion-mnist" and debian_copy:
        try:
            return _load_idx_folder(name, DEBIAN_FASHION_MNIST, classes)
        except (OSError, ValueError, EOFError) as error:
            log.warning("ignoring Debian's Fashion-MNIST copy in %s: %s", DEBIAN_FASHION_MNIST, error)

    _fetch_raw_files(name, cls, root, raw, download)
    try:
        splits = {split: cls(str(root), train=split == "train", download=False) for split in ("train", "test")}
    except (RuntimeError, OSError, ValueError, EOFError) as error:
        raise DataError(
            f"dataset {name!r} in {raw} could not be read ({first_line(error)}): delete that folder to download it "
            "again"
        ) from None
    train, test = (_image_split(splits[s].data, splits[s].targets) for s in ("train", "test"))
    return _image_dataset(name, train, test, classes)


def _torchvision_datasets() -> Any:
    """``torchvision.datasets`` (heavy: imported only by the sets that need it), or a DataError saying why not.

    A torchvision built for another torch (a CPU torch with the CUDA torchvision from PyPI, or the other way
    round) fails inside its own import with a RuntimeError about one of its operators."""
    try:
        from torchvision import datasets
    except Exception as error:  # ImportError, or the RuntimeError of a mismatched build
        import torch

        raise DataError(
            f"torchvision does not import ({type(error).__name__}: {first_line(error)}): install the torchvision "
            f"release built for torch {torch.__version__} (for a CPU build: pip install torchvision --index-url "
            "https://download.pytorch.org/whl/cpu)"
        ) from None
    return datasets


def _load_idx_folder(name: str, folder: Path, classes: list[str]) -> Dataset:
    """Parse the four IDX .gz files of ``folder`` directly (no torchvision, nothing copied to disk)."""
    log.info("loading %s from %s", name, folder)
    train, test = (
        _image_split(read_idx(folder / images), read_idx(folder / labels))
        for images, labels in (_IDX_FILES["train"], _IDX_FILES["test"])
    )
    return _image_dataset(name, train, test, classes)


def _has_idx_files(folder: Path) -> bool:
    return all((folder / filename).is_file() for pair in _IDX_FILES.values() for filename in pair)


def _holds_raw_files(raw: Path, resources: list[tuple[str, str]]) -> bool:
    """Whether ``raw`` holds every file, extracted or still gzipped."""
    return all((raw / f).is_file() or (raw / f.removesuffix(".gz")).is_file() for f, _ in resources)


def _fetch_raw_files(name: str, cls: Any, root: Path, raw: Path, download: bool) -> None:
    """Make sure every raw file of ``cls`` is extracted in ``raw``: extract local .gz files, fetch the rest.

    Done here rather than by torchvision's own download so that a dead network fails fast (a timeout per
    attempt), nothing is printed, and a failure ends in a single-line :class:`DataError`.
    """
    how_to_fix = f"set data.data_dir to a folder holding {cls.__name__}/raw/*.gz"
    for filename, md5 in cls.resources:
        gz_path, extracted = raw / filename, raw / filename.removesuffix(".gz")
        if extracted.is_file():
            continue
        if not gz_path.is_file():
            if not download:
                raise DataError(
                    f"dataset {name!r} not found in {root} and downloading is turned off: "
                    f"turn downloading on, or {how_to_fix}"
                )
            try:
                raw.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise DataError(f"cannot create {raw} to download {name!r} into ({error}): {how_to_fix}") from None
            try:
                _download(cls.mirrors, filename, md5, raw)
            except OSError as error:
                raise DataError(
                    f"dataset {name!r} not found in {root} and could not be downloaded from "
                    f"{cls.mirrors[0]} ({error}; no network?): download it on a machine with internet, "
                    f"or {how_to_fix}"
                ) from None
        try:
            with gzip.open(gz_path, "rb") as src:
                _write_atomically(extracted, src.read())
        except (OSError, EOFError) as error:
            raise DataError(f"could not extract {gz_path} ({error}): delete it to download it again") from None


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a temporary file and a rename, so an interrupted write never leaves a truncated file."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)


def _download(mirrors: list[str], filename: str, md5: str, folder: Path) -> None:
    """Fetch ``filename`` from the first mirror that serves it intact, writing ``folder/filename`` atomically.

    Raises OSError (the distinct reasons the mirrors failed, in one line) when no mirror works.
    """
    failures: dict[str, None] = {}  # an ordered set: every mirror usually fails for the same reason
    for mirror in mirrors:
        url = f"{mirror}{filename}"
        log.info("downloading %s", url)
        request = urllib.request.Request(url, headers={"User-Agent": "snnlab"})
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".part")
        try:
            digest = hashlib.md5()
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response,
            ):
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != md5:
                raise OSError(f"checksum mismatch for {url}")
            os.replace(tmp_name, folder / filename)
            return
        except (OSError, http.client.HTTPException, ValueError) as error:
            failures[str(getattr(error, "reason", error))] = None
        finally:
            if os.path.exists(tmp_name):
                os.remove(tmp_name)
    raise OSError("; ".join(failures))


# --- synthetic spikes ----------------------------------------------------------------------------------


def _make_synthetic(seed: int, params: dict) -> Dataset:
    """Poisson input spikes ``[N, T, F]`` with uniformly random labels ``[N]`` (the BrainPy tutorial task).

    Each input spikes independently in each step with probability ``rate_hz * dt_ms / 1000`` (0.005 with
    the defaults: 5 Hz, 1 ms). Labels carry no information about the spikes, so the task is to memorise
    the samples, and the test split is the train split.
    """
    unknown = sorted(set(params) - set(SYNTHETIC_DEFAULTS))
    if unknown:
        valid = ", ".join(SYNTHETIC_DEFAULTS)
        raise DataError(f"unknown synthetic parameter(s) {', '.join(unknown)}: valid ones are {valid}")
    p = {**SYNTHETIC_DEFAULTS, **params}
    for key, least in (("samples", 1), ("inputs", 1), ("time_steps", 1), ("classes", 2)):
        if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] < least:
            raise DataError(f"synthetic.{key} must be an integer of at least {least}, got {p[key]!r}")
    spike_probability = float(p["rate_hz"]) * float(p["dt_ms"]) / 1000.0
    if not (p["dt_ms"] > 0 and 0.0 <= spike_probability <= 1.0):
        raise DataError(
            f"synthetic rate_hz={p['rate_hz']} and dt_ms={p['dt_ms']} give a spike probability of "
            f"{spike_probability:g} per step: it must lie in [0, 1] with dt_ms > 0"
        )
    generator = torch.Generator().manual_seed(seed)
    shape = (p["samples"], p["time_steps"], p["inputs"])
    spikes = (torch.rand(shape, generator=generator) < spike_probability).to(torch.float32)
    labels = torch.randint(p["classes"], (p["samples"],), generator=generator)
    split = Split(spikes, labels)
    return Dataset(
        name="synthetic",
        train=split,
        test=split,
        input_shape=(p["time_steps"], p["inputs"]),
        num_classes=p["classes"],
        classes=[f"class {c}" for c in range(p["classes"])],
        temporal=True,
    )


# --- subsets -------------------------------------------------------------------------------------------


def _subset(split: Split, size: int | None, seed: int, which: str, name: str) -> Split:
    """A seeded random subset of ``size`` samples in which each class keeps its share (to within one)."""
    if size is None:
        return split
    n = len(split)
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= n:
        raise DataError(
            f"{which}_size={size!r} does not fit dataset {name!r}: its {which} split has {n} samples, choose 1 to {n}"
        )
    if size == n:
        return split
    index = _stratified_index(split.labels, size, torch.Generator().manual_seed(seed))
    return Split(split.inputs[index], split.labels[index])


def _stratified_index(labels: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """Indices of ``size`` samples drawn at random, proportionally from each class, in random order."""
    perm = torch.randperm(len(labels), generator=generator)
    shuffled = labels[perm].cpu()
    counts = torch.bincount(shuffled)
    by_class = torch.argsort(shuffled, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(perm)
    rank[by_class] = torch.arange(len(labels)) - starts[shuffled[by_class]]
    # A sample's fractional position within its (shuffled) class: the smallest `size` of these take the
    # same share of every class, while staying a random draw within each class.
    position = (rank.to(torch.float64) + 0.5) / counts[shuffled].to(torch.float64)
    chosen = torch.argsort(position, stable=True)[:size]
    return perm[chosen.sort().values].to(labels.device)
