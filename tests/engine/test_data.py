"""Tests of the dataset layer: bundled sample, torchvision sets, synthetic spikes, subsets and batches."""

from __future__ import annotations

import gzip
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from snnlab.catalog import DATASETS
from snnlab.engine import data
from snnlab.engine.data import DataError, Split, batches, load_dataset, read_idx, resolve_data_dir

IDX_NAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@pytest.fixture(scope="module")
def bundled() -> data.Dataset:
    return load_dataset("bundled")


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file (magic 0x0000 08 ndim, big-endian sizes, data)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_fake_raw(raw: Path, train: int = 30, test: int = 20) -> None:
    """A tiny MNIST-like raw folder: ``train``/``test`` images of 28x28 with labels cycling 0..9."""
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        images, labels = IDX_NAMES[split]
        write_idx(raw / images, rng.integers(0, 256, size=(n, 28, 28)))
        write_idx(raw / labels, np.arange(n) % 10)


def assert_one_line(error: DataError) -> str:
    message = str(error)
    assert message and "\n" not in message and "Traceback" not in message
    return message


# --- bundled ---------------------------------------------------------------------------------------


def test_bundled_shapes_dtypes_and_range(bundled: data.Dataset) -> None:
    assert bundled.name == "bundled" and not bundled.temporal
    assert bundled.train.inputs.shape == (5000, 1, 28, 28)
    assert bundled.test.inputs.shape == (1000, 1, 28, 28)
    assert bundled.input_shape == (1, 28, 28)
    for split in (bundled.train, bundled.test):
        assert split.inputs.dtype == torch.float32 and split.labels.dtype == torch.int64
        assert split.inputs.min() >= 0.0 and split.inputs.max() <= 1.0
        assert split.inputs.max() == 1.0  # scaled by 255, not left as raw bytes
        assert len(split) == split.inputs.shape[0]
    assert bundled.num_classes == 10 and len(bundled.classes) == 10
    assert bundled.classes[0] == "T-shirt/top" and bundled.classes[9] == "Ankle boot"


def test_bundled_is_class_balanced(bundled: data.Dataset) -> None:
    assert bundled.train.labels.bincount(minlength=10).tolist() == [500] * 10
    assert bundled.test.labels.bincount(minlength=10).tolist() == [100] * 10


def test_bundled_file_is_small_and_credits_its_source() -> None:
    path = Path(data.__file__).parent.parent / "data" / "fashion_mnist_sample.npz"
    assert path.stat().st_size < 5_000_000
    with np.load(path) as npz:
        source = str(npz["source"])
        assert npz["train_images"].dtype == np.uint8 and npz["train_images"].shape == (5000, 28, 28)
    assert "Fashion-MNIST" in source and "MIT" in source and "Zalando" in source


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(DataError) as info:
        load_dataset("cifar-1000")
    message = assert_one_line(info.value)
    assert all(name in message for name in DATASETS)


# --- subsets ---------------------------------------------------------------------------------------


def test_subsets_are_seeded_stratified_and_deterministic() -> None:
    a = load_dataset("bundled", train_size=200, test_size=50, seed=7)
    b = load_dataset("bundled", train_size=200, test_size=50, seed=7)
    c = load_dataset("bundled", train_size=200, test_size=50, seed=8)
    assert len(a.train) == 200 and len(a.test) == 50
    assert torch.equal(a.train.inputs, b.train.inputs) and torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.train.inputs, c.train.inputs)
    assert a.train.labels.bincount(minlength=10).tolist() == [20] * 10
    assert a.test.labels.bincount(minlength=10).tolist() == [5] * 10


def test_subset_samples_are_distinct_rows_of_the_full_split(bundled: data.Dataset) -> None:
    sub = load_dataset("bundled", train_size=300, seed=1)
    flat_full = bundled.train.inputs.flatten(1)
    rows = [int(torch.nonzero(torch.all(flat_full == x, dim=1))[0]) for x in sub.train.inputs.flatten(1)[:20]]
    assert len(set(rows)) == 20
    assert torch.equal(bundled.train.labels[rows], sub.train.labels[:20])


@pytest.mark.parametrize("size", [0, 5001, -3])
def test_subset_larger_than_split_is_a_data_error(size: int) -> None:
    with pytest.raises(DataError, match="5000"):
        load_dataset("bundled", train_size=size)


# --- batches ---------------------------------------------------------------------------------------


def indexed_split(n: int) -> Split:
    """A split whose inputs record their own index, so batches reveal which samples they hold."""
    return Split(torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3), torch.arange(n))


def test_shuffled_batches_cover_every_sample_once() -> None:
    split = indexed_split(103)
    seen = [labels for _, labels in batches(split, 10, shuffle=True, generator=torch.Generator().manual_seed(0))]
    assert [len(b) for b in seen] == [10] * 10 + [3]
    order = torch.cat(seen)
    assert sorted(order.tolist()) == list(range(103))
    assert not torch.equal(order, torch.arange(103))  # actually shuffled
    for inputs, labels in batches(split, 16, shuffle=True):
        assert torch.equal(inputs[:, 0].long(), labels)  # inputs and labels stay paired


def test_seeded_batches_are_reproducible_and_differ_between_epochs() -> None:
    split = indexed_split(64)

    def epoch(generator: torch.Generator) -> torch.Tensor:
        return torch.cat([labels for _, labels in batches(split, 8, shuffle=True, generator=generator)])

    g1, g2 = torch.Generator().manual_seed(123), torch.Generator().manual_seed(123)
    first, second = epoch(g1), epoch(g1)
    assert torch.equal(first, epoch(g2)) and torch.equal(second, epoch(g2))
    assert not torch.equal(first, second)


def test_drop_last_and_unshuffled_batches() -> None:
    split = indexed_split(25)
    kept = list(batches(split, 10, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0)))
    assert [len(labels) for _, labels in kept] == [10, 10]
    assert len(torch.cat([labels for _, labels in kept]).unique()) == 20
    plain = list(batches(split, 10, shuffle=False))
    assert torch.equal(torch.cat([labels for _, labels in plain]), torch.arange(25))
    assert plain[0][0].data_ptr() == split.inputs.data_ptr()  # a view, not a copy
    assert list(batches(indexed_split(5), 10, shuffle=False, drop_last=True)) == []
    with pytest.raises(ValueError):
        next(batches(split, 0, shuffle=False))


# --- synthetic -------------------------------------------------------------------------------------


def test_synthetic_defaults_match_the_tutorial_task() -> None:
    ds = load_dataset("synthetic", seed=0)
    assert ds.temporal and ds.input_shape == (200, 100)
    assert ds.train.inputs.shape == (256, 200, 100) and ds.train.inputs.dtype == torch.float32
    assert ds.train.labels.dtype == torch.int64 and set(ds.train.labels.tolist()) == {0, 1}
    assert ds.num_classes == 2 and len(ds.classes) == 2
    assert set(ds.train.inputs.unique().tolist()) <= {0.0, 1.0}
    # Memorisation task: the test split is the train split.
    assert torch.equal(ds.test.inputs, ds.train.inputs) and torch.equal(ds.test.labels, ds.train.labels)
    # 5 Hz at 1 ms: p = 0.005 per input and step; 5.12M Bernoulli draws, so 6 standard deviations ~ 2e-4.
    n, p = ds.train.inputs.numel(), 0.005
    assert abs(ds.train.inputs.mean().item() - p) < 6 * (p * (1 - p) / n) ** 0.5


def test_synthetic_parameters_seed_and_subsets() -> None:
    params = {"samples": 64, "inputs": 20, "time_steps": 50, "rate_hz": 100.0, "classes": 3}
    ds = load_dataset("synthetic", seed=5, synthetic=params)
    assert ds.train.inputs.shape == (64, 50, 20) and ds.input_shape == (50, 20) and ds.num_classes == 3
    assert abs(ds.train.inputs.mean().item() - 0.1) < 0.01
    assert torch.equal(ds.train.inputs, load_dataset("synthetic", seed=5, synthetic=params).train.inputs)
    assert not torch.equal(ds.train.inputs, load_dataset("synthetic", seed=6, synthetic=params).train.inputs)
    sub = load_dataset("synthetic", seed=5, synthetic=params, train_size=16)
    assert len(sub.train) == 16 and torch.equal(sub.test.inputs, sub.train.inputs)


@pytest.mark.parametrize(
    "params, fragment",
    [({"neurons": 3}, "neurons"), ({"rate_hz": 5000.0}, "probability"), ({"samples": 0}, "samples")],
)
def test_bad_synthetic_parameters_are_data_errors(params: dict, fragment: str) -> None:
    with pytest.raises(DataError, match=fragment) as info:
        load_dataset("synthetic", synthetic=params)
    assert_one_line(info.value)


# --- MNIST-like sets on disk -------------------------------------------------------------------------


@pytest.mark.skipif(not data.DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's fashion-mnist is not installed")
def test_fashion_mnist_from_the_debian_copy(tmp_path: Path) -> None:
    ds = load_dataset("fashion-mnist", tmp_path, download=False)
    assert ds.train.inputs.shape == (60000, 1, 28, 28) and ds.test.inputs.shape == (10000, 1, 28, 28)
    assert ds.train.labels.bincount().tolist() == [6000] * 10
    assert ds.classes[0] == "T-shirt/top" and ds.train.inputs.max() == 1.0
    assert list(tmp_path.iterdir()) == []  # read in place, nothing copied


def test_fashion_mnist_in_data_dir_wins_over_the_debian_copy(tmp_path: Path) -> None:
    write_fake_raw(tmp_path / "FashionMNIST" / "raw", train=30, test=20)
    ds = load_dataset("fashion-mnist", tmp_path, download=False)
    assert len(ds.train) == 30 and len(ds.test) == 20


def test_mnist_from_gzipped_raw_files(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    write_fake_raw(raw, train=30, test=20)
    ds = load_dataset("mnist", tmp_path, download=False, train_size=10)
    assert ds.train.inputs.shape == (10, 1, 28, 28) and ds.test.inputs.shape == (20, 1, 28, 28)
    assert ds.train.inputs.dtype == torch.float32 and ds.classes == [str(d) for d in range(10)]
    expected = torch.from_numpy(read_idx(raw / IDX_NAMES["test"][0]).astype(np.float32) / 255)
    assert torch.allclose(ds.test.inputs[:, 0], expected)
    assert (raw / "train-images-idx3-ubyte").is_file()  # extracted once for torchvision


def test_corrupt_raw_file_is_a_data_error(tmp_path: Path) -> None:
    raw = tmp_path / "KMNIST" / "raw"
    write_fake_raw(raw)
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="train-labels") as info:
        load_dataset("kmnist", tmp_path, download=False)
    assert_one_line(info.value)


def test_missing_mnist_without_download_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path / "nowhere", download=False)
    message = assert_one_line(info.value)
    assert "'mnist'" in message and str(tmp_path / "nowhere") in message and "MNIST/raw" in message
    assert not (tmp_path / "nowhere").exists()  # nothing created when not downloading


def test_failed_download_is_a_quick_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision import datasets

    # A server that accepts connections and never answers: the worst case, a stalled network.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setattr(datasets.MNIST, "mirrors", [f"http://127.0.0.1:{server.getsockname()[1]}/"])
        monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT_S", 0.5)
        start = time.monotonic()
        with pytest.raises(DataError) as info:
            load_dataset("mnist", tmp_path, download=True)
    assert time.monotonic() - start < 5
    message = assert_one_line(info.value)
    assert "could not be downloaded" in message and str(tmp_path) in message
    assert not any(p.name.endswith(".part") for p in tmp_path.rglob("*"))  # no partial files left


def test_download_without_network_fails_cleanly(tmp_path: Path) -> None:
    try:
        socket.getaddrinfo("ossci-datasets.s3.amazonaws.com", 443)
    except OSError:
        pass
    else:
        pytest.skip("the network is reachable; this test checks the offline failure")
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path, download=True)
    assert time.monotonic() - start < 5
    message = assert_one_line(info.value)
    assert "no network?" in message and "MNIST/raw/*.gz" in message


def test_data_dir_defaults_to_env_then_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SNNLAB_DATA_DIR", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    assert resolve_data_dir("~/elsewhere") == Path.home() / "elsewhere"
    monkeypatch.delenv("SNNLAB_DATA_DIR")
    assert resolve_data_dir() == Path.home() / ".cache" / "snnlab" / "data"


class _MismatchedTorchvision(type(pytest)):  # a module whose import fails as a torchvision built for another torch
    def __getattr__(self, name):
        raise RuntimeError("operator torchvision::nms does not exist")


@pytest.mark.parametrize("broken", [None, _MismatchedTorchvision("torchvision")], ids=["missing", "mismatched"])
def test_a_torchvision_that_does_not_import_is_one_line_naming_torch(broken, monkeypatch, tmp_path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torchvision", broken)
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("torchvision does not import (")
    assert f"built for torch {torch.__version__}" in message
    if broken is not None:
        assert "operator torchvision::nms does not exist" in message
