"""Event datasets: files written here in each set's real format (HDF5 with variable-length datasets for SHD and
SSC, N-MNIST's 5-byte .bin events, tonic's DVS Gesture .npy layout), read through the real loaders, and binned
frames checked against frames worked out by hand."""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from snnlab.config import ConfigError, config_from_dict
from snnlab.engine import neuromorphic as nm
from snnlab.engine.data import DataError, load_dataset
from snnlab.engine.encoders import encode

h5py = pytest.importorskip("h5py")

SHD_WORDS = [f"english-{d}" for d in range(10)] + [f"german-{d}" for d in range(10)]


def write_h5(path: Path, samples: list[tuple[list[float], list[int], int]], keys: list[str] | None = None) -> Path:
    """An SHD/SSC-format file: spikes/times (vlen float, s), spikes/units (vlen uint16), labels, extra/keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u, _) in enumerate(samples):
            times[i], units[i] = np.asarray(t, np.float32), np.asarray(u, np.uint16)
        f.create_dataset("labels", data=np.asarray([s[2] for s in samples], np.uint8))
        if keys is not None:
            f.create_dataset("extra/keys", data=np.asarray([k.encode() for k in keys]))
    return path


def random_spikes(rng: np.random.Generator, n: int, classes: int) -> list[tuple[list[float], list[int], int]]:
    out = []
    for i in range(n):
        count = int(rng.integers(0, 60))
        out.append((sorted(rng.uniform(0, 1.3, count).tolist()), rng.integers(0, 700, count).tolist(), i % classes))
    return out


def write_nmnist_bin(path: Path, events: list[tuple[int, int, int, int]], overflow_after: int | None = None) -> Path:
    """N-MNIST's format: 5 bytes per event, x, y, then polarity (1 bit) and a 23-bit time in us. With
    ``overflow_after``, a timestamp-overflow marker (y = 240) follows that many events."""
    raw = bytearray()
    for i, (x, y, p, t) in enumerate(events):
        if i == overflow_after:
            raw += bytes([0, 240, 0, 0, 0])
        raw += bytes([x, y, (p << 7) | (t >> 16) & 0x7F, (t >> 8) & 0xFF, t & 0xFF])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(raw))
    return path


def hand_frames(events, time_steps, duration, places_of, shape, counts=False):
    """The closed form, event by event: frame floor(t * T / duration), dropped at t >= duration."""
    out = np.zeros((time_steps, *shape), np.int64)
    for event in events:
        frame = int(np.floor(event[-1] * time_steps / duration))
        if frame < time_steps:
            out[(frame, *places_of(event))] += 1
    return np.minimum(out, 255) if counts else (out > 0).astype(np.int64)


# --- binning, by hand ------------------------------------------------------------------------------------


def test_spike_frames_match_the_closed_form_on_a_few_events():
    # T = 4 bins of 250 ms over 1 s: t = 0.25 is the first instant of bin 1; t = 1.0 and later are dropped.
    times = [0.0, 0.1, 0.249, 0.25, 0.6, 0.6, 0.999, 1.0, 1.3]
    units = [0, 0, 5, 5, 699, 699, 3, 4, 0]
    got = nm.spike_frames(np.array(times), np.array(units), 700, nm.Binning(4, 1000.0))
    expected = np.zeros((4, 700), np.uint8)
    expected[0, 0] = expected[0, 5] = expected[1, 5] = expected[2, 699] = expected[3, 3] = 1
    assert got.dtype == np.uint8 and np.array_equal(got, expected)

    counted = nm.spike_frames(np.array(times), np.array(units), 700, nm.Binning(4, 1000.0, downsample=3, counts=True))
    assert counted.shape == (4, 234)  # ceil(700 / 3): the last input merges channels 699 alone
    expected = np.zeros((4, 234), np.uint8)
    expected[0, 0], expected[0, 1], expected[1, 1], expected[2, 233], expected[3, 1] = 2, 1, 1, 2, 1
    assert np.array_equal(counted, expected)


def test_counts_saturate_at_255():
    got = nm.spike_frames(np.zeros(300), np.zeros(300, np.int64), 700, nm.Binning(2, 100.0, counts=True))
    assert got[0, 0] == 255 and got.sum() == 255


def test_camera_frames_match_the_closed_form():
    events = [(0, 0, 0, 0), (33, 33, 1, 29_999), (33, 33, 1, 30_000), (10, 20, 1, 150_000), (1, 2, 0, 299_999),
              (5, 5, 0, 300_000)]  # fmt: skip
    as_dict = {k: np.array([e[i] for e in events]) for i, k in enumerate("xypt")}
    got = nm.camera_frames(as_dict, (2, 34, 34), nm.Binning(10, 300.0))
    expected = np.zeros((10, 2, 34, 34), np.uint8)
    expected[0, 0, 0, 0] = expected[0, 1, 33, 33] = expected[1, 1, 33, 33] = expected[5, 1, 20, 10] = 1
    expected[9, 0, 2, 1] = 1
    assert np.array_equal(got, expected)
    halved = nm.camera_frames(as_dict, (2, 34, 34), nm.Binning(10, 300.0, downsample=4, counts=True))
    assert halved.shape == (10, 2, 9, 9)  # ceil(34 / 4)
    assert halved[0, 1, 8, 8] == 1 and halved[5, 1, 5, 2] == 1 and halved.sum() == 5


@pytest.mark.skipif(importlib.util.find_spec("tonic") is None, reason="tonic is not installed (snnlab[tonic])")
@pytest.mark.parametrize(
    ("time_steps", "duration_ms", "downsample", "counts"),
    [(10, 300.0, 1, True), (15, 300.0, 2, False), (7, 70.0, 3, True), (4, 1.0, 1, True)],
)
def test_own_binning_matches_tonics_to_frame(time_steps, duration_ms, downsample, counts):
    rng = np.random.default_rng(time_steps)
    n = 5000
    events = {"x": rng.integers(0, 34, n), "y": rng.integers(0, 34, n), "p": rng.integers(0, 2, n),
              "t": np.sort(rng.integers(0, int(duration_ms * 1300), n))}  # fmt: skip
    events["t"][:50] = np.arange(50) * int(duration_ms * 1000) // time_steps  # events right on bin edges
    binning = nm.Binning(time_steps, duration_ms, downsample, counts)
    ours = nm.camera_frames(events, (2, 34, 34), binning)
    tonics = nm.camera_frames_tonic(events, (2, 34, 34), binning)
    assert ours.sum() > 0 and np.array_equal(ours, tonics)


# --- SHD / SSC -------------------------------------------------------------------------------------------


def write_shd(root: Path, train, test, name="shd", keys=SHD_WORDS) -> None:
    write_h5(root / f"{name}_train.h5", train, keys)
    write_h5(root / f"{name}_test.h5", test, keys)


def test_shd_files_load_binned_with_their_labels_and_class_names(tmp_path):
    rng = np.random.default_rng(0)
    train, test = random_spikes(rng, 30, 20), random_spikes(rng, 12, 20)
    train[0] = ([0.0, 0.004, 0.5, 0.9999, 1.2], [1, 1, 700 - 1, 2, 3], 7)
    write_shd(tmp_path, train, test)
    events = {"duration_ms": 1000.0, "cache": False}
    ds = load_dataset("shd", tmp_path, time_steps=8, events=events)
    assert (len(ds.train), len(ds.test), ds.num_classes, ds.temporal) == (30, 12, 20, True)
    assert ds.input_shape == (8, 700) and ds.classes == SHD_WORDS
    assert ds.train.inputs.dtype == torch.uint8 and ds.train.labels.dtype == torch.int64
    assert ds.train.labels.tolist() == [s[2] for s in train] and ds.test.labels.tolist() == [s[2] for s in test]
    first = np.zeros((8, 700), np.int64)
    first[0, 1] = first[4, 699] = first[7, 2] = 1  # 1.2 s is past the 1 s binned
    assert np.array_equal(ds.train.inputs[0].numpy(), first)
    for i, (times, units, _) in enumerate(test):
        float32_times = np.asarray(times, np.float32).astype(np.float64)  # the file holds float32
        want = hand_frames(list(zip(units, float32_times, strict=True)), 8, 1.0, lambda e: (e[0],), (700,))
        assert np.array_equal(ds.test.inputs[i].numpy(), want), i
    # The encoder passes the frames through as float32 [T, B, F].
    batch = encode("none", ds.train.inputs[:3], 8, temporal=True)
    assert batch.dtype == torch.float32 and batch.shape == (8, 3, 700) and torch.equal(batch[:, 0], ds.train.inputs[0])


def test_ssc_reads_its_own_files_in_tonics_folder_and_downsamples(tmp_path):
    rng = np.random.default_rng(1)
    write_shd(tmp_path / "SSC", random_spikes(rng, 40, 35), random_spikes(rng, 10, 35), name="ssc", keys=None)
    ds = load_dataset("ssc", tmp_path, time_steps=5, events={"downsample": 7, "counts": True, "cache": False})
    assert ds.input_shape == (5, 100) and ds.num_classes == 35 and ds.classes[-1] == "class 34"
    assert ds.train.labels.tolist() == [i % 35 for i in range(40)]
    assert int(ds.train.inputs.sum()) > 0


def test_binned_frames_are_cached_and_a_changed_file_or_binning_bins_again(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    write_shd(tmp_path, random_spikes(rng, 20, 20), random_spikes(rng, 6, 20))
    first = load_dataset("shd", tmp_path, time_steps=10)
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(cached) == 4 and all(p.startswith("shd-") and p.endswith(".npy") for p in cached)

    calls = []
    real = nm.spike_frames
    monkeypatch.setattr(nm, "spike_frames", lambda *a: calls.append(1) or real(*a))
    again = load_dataset("shd", tmp_path, time_steps=10)
    assert calls == [] and torch.equal(again.train.inputs, first.train.inputs)
    assert torch.equal(again.test.labels, first.test.labels)

    load_dataset("shd", tmp_path, time_steps=12)  # another binning: binned again, cached beside
    assert len(calls) == 26 and len(list((tmp_path / "cache").iterdir())) == 8

    calls.clear()
    changed = random_spikes(np.random.default_rng(3), 20, 20)
    write_h5(tmp_path / "shd_train.h5", changed, SHD_WORDS)
    os.utime(tmp_path / "shd_train.h5", ns=(1, 1))  # even a same-size rewrite changes the modification time
    fresh = load_dataset("shd", tmp_path, time_steps=10)
    assert len(calls) == 20  # the train file changed; the test split still comes from the cache
    assert fresh.train.labels.tolist() == [s[2] for s in changed]


def test_cache_dir_is_a_setting_and_an_unwritable_one_only_skips_caching(tmp_path):
    rng = np.random.default_rng(4)
    write_shd(tmp_path / "data", random_spikes(rng, 10, 20), random_spikes(rng, 4, 20))
    load_dataset("shd", tmp_path / "data", time_steps=4, events={"cache_dir": str(tmp_path / "elsewhere")})
    assert len(list((tmp_path / "elsewhere").glob("*.npy"))) == 4
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    ds = load_dataset("shd", tmp_path / "data", time_steps=4, events={"cache_dir": str(blocker / "sub")})
    assert len(ds.train) == 10


def test_missing_or_gzipped_shd_files_say_where_to_get_them(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("shd", tmp_path)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path) in message
    assert "shd_train.h5 and shd_test.h5" in message and "https://zenkelab.org/datasets/" in message
    for name in ("shd_train.h5.gz", "shd_test.h5.gz"):
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(b"x")
    with pytest.raises(DataError, match=r"still gzipped: gunzip them there$"):
        load_dataset("shd", tmp_path)


def test_a_damaged_shd_file_is_one_line(tmp_path):
    (tmp_path / "shd_train.h5").write_bytes(b"not hdf5")
    (tmp_path / "shd_test.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match=r"shd_train.h5 is not a readable SHD file") as info:
        load_dataset("shd", tmp_path)
    assert "\n" not in str(info.value)


# --- N-MNIST ---------------------------------------------------------------------------------------------


def test_nmnist_bin_format_is_decoded_event_by_event(tmp_path):
    events = [(0, 0, 0, 0), (33, 17, 1, 1), (5, 6, 1, (1 << 23) - 1), (12, 3, 0, 70_000)]
    path = write_nmnist_bin(tmp_path / "a.bin", events, overflow_after=3)
    got = nm.read_nmnist_file(path)
    assert got["x"].tolist() == [0, 33, 5, 12] and got["y"].tolist() == [0, 17, 6, 3]
    assert got["p"].tolist() == [0, 1, 1, 0]
    assert got["t"].tolist() == [0, 1, (1 << 23) - 1, 70_000 + 8192]  # after the marker: 2**13 us later
    (tmp_path / "b.bin").write_bytes(b"\x00" * 7)
    with pytest.raises(ValueError, match="not a whole number of 5-byte events"):
        nm.read_nmnist_file(tmp_path / "b.bin")


def write_nmnist(root: Path, per_digit: dict[str, int], rng: np.random.Generator) -> dict[str, list]:
    written: dict[str, list] = {"Train": [], "Test": []}
    for split, count in per_digit.items():
        for digit in range(10):
            for k in range(count):
                n = int(rng.integers(1, 40))
                t = np.sort(rng.integers(0, 330_000, n))
                events = [(int(rng.integers(0, 34)), int(rng.integers(0, 34)), int(rng.integers(0, 2)), int(v))
                          for v in t]  # fmt: skip
                write_nmnist_bin(root / split / str(digit) / f"{k:05d}.bin", events)
                written[split].append((digit, events))
    return written


@pytest.mark.parametrize("folder", ["", "NMNIST"])
def test_nmnist_folders_load_binned(tmp_path, folder):
    written = write_nmnist(tmp_path / folder, {"Train": 3, "Test": 1}, np.random.default_rng(5))
    ds = load_dataset("nmnist", tmp_path, time_steps=6, events={"counts": True})
    assert ds.input_shape == (6, 2, 34, 34) and ds.num_classes == 10 and ds.classes[3] == "3"
    assert (len(ds.train), len(ds.test)) == (30, 10)
    # Files in order: digit folders, then file names.
    assert ds.train.labels.tolist() == [d for d, _ in written["Train"]]
    for i, (_, events) in enumerate(written["Test"]):
        want = hand_frames(events, 6, 300_000, lambda e: (e[2], e[1], e[0]), (2, 34, 34), counts=True)
        assert np.array_equal(ds.test.inputs[i].numpy(), want), i


def test_missing_nmnist_folders_say_where_to_get_them(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("nmnist", tmp_path)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path) in message and "Train/ and Test/" in message
    assert nm.NMNIST_URL in message


# --- DVS Gesture -----------------------------------------------------------------------------------------


def test_dvs_gesture_in_tonics_layout_loads_binned(tmp_path):
    rng = np.random.default_rng(6)
    root = tmp_path / "DVSGesture"
    expected = {}
    for split, users in (("ibmGestureTrain", ["user01_fluorescent", "user02_led"]), ("ibmGestureTest", ["user24_lab"])):
        for user in users:
            for label in (0, 4, 10):
                n = 50
                data = np.stack([rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
                                 np.sort(rng.uniform(0, 7000, n))], axis=1)  # fmt: skip
                (root / split / user).mkdir(parents=True, exist_ok=True)
                np.save(root / split / user / f"{label}.npy", data)
                expected.setdefault(split, []).append((label, data))
    ds = load_dataset("dvs_gesture", tmp_path, time_steps=5, events={"downsample": 4, "cache": False})
    assert ds.input_shape == (5, 2, 32, 32) and ds.num_classes == 11 and len(ds.classes) == 11
    assert ds.train.labels.tolist() == [0, 10, 4, 0, 10, 4]  # sorted by path: "10.npy" before "4.npy"
    label, data = expected["ibmGestureTest"][1]
    events = [(int(x) // 4, int(y) // 4, int(p), round(t * 1000)) for x, y, p, t in data]
    want = hand_frames(events, 5, 6_000_000, lambda e: (e[2], e[1], e[0]), (2, 32, 32))
    assert ds.test.labels[2] == label and np.array_equal(ds.test.inputs[2].numpy(), want)


def test_missing_dvs_gesture_is_one_line(tmp_path):
    with pytest.raises(DataError, match=r"ibmGestureTrain/ and ibmGestureTest/") as info:
        load_dataset("dvs_gesture", tmp_path)
    assert "\n" not in str(info.value)


# --- the config ------------------------------------------------------------------------------------------


def event_config(dataset, **data):
    layers = [{"type": "flatten"}, {"type": "linear", "out_features": 20 if dataset == "shd" else 10, "neuron": True}]
    return {"data": {"dataset": dataset, **data}, "model": {"layers": layers}}


def test_an_event_set_takes_encoder_none_by_default_and_refuses_the_image_encoders():
    cfg = config_from_dict(event_config("shd", time_steps=50, events={"downsample": 7}))
    assert cfg.data.encoder == "none" and cfg.data.events.downsample == 7
    assert cfg.parameter_count() == 100 * 20 + 20  # 700 channels merged 7 to one
    for encoder in ("rate", "direct", "latency"):
        with pytest.raises(ConfigError) as info:
            config_from_dict(event_config("nmnist", encoder=encoder))
        message = str(info.value)
        assert "\n" not in message and "nmnist is already spike frames" in message and "use encoder none" in message
    assert config_from_dict(event_config("nmnist", encoder="delta")).data.encoder == "delta"
    with pytest.raises(ConfigError, match="data.events.downsample"):
        config_from_dict(event_config("shd", events={"downsample": 0}))


def test_a_file_whose_path_gives_no_label_is_one_line(tmp_path):
    write_nmnist(tmp_path, {"Train": 1, "Test": 1}, np.random.default_rng(7))
    write_nmnist_bin(tmp_path / "Train" / "extra" / "x.bin", [(1, 1, 0, 5)])
    with pytest.raises(DataError, match=r"x.bin has no label 0-9 in its name") as info:
        load_dataset("nmnist", tmp_path, events={"cache": False})
    assert "\n" not in str(info.value)


def test_events_off_the_sensor_are_dropped_not_wrapped():
    shd = nm.spike_frames(np.array([0.1, 0.1]), np.array([700, 3]), 700, nm.Binning(2, 1000.0))
    assert shd.sum() == 1 and shd[0, 3] == 1
    events = {"x": np.array([34, 0, 5]), "y": np.array([0, 34, 5]), "p": np.array([0, 0, 1]), "t": np.array([5, 5, 5])}
    frames = nm.camera_frames(events, (2, 34, 34), nm.Binning(2, 1.0))
    assert frames.sum() == 1 and frames[0, 1, 5, 5] == 1
