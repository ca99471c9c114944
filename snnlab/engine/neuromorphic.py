"""Event datasets: recorded spikes (SHD, SSC) and event-camera recordings (N-MNIST, DVS Gesture) as frames.

A recording is a list of events, each a time and a place: a channel of the artificial cochlea (SHD, SSC), or
a pixel and a polarity (N-MNIST, DVS Gesture). Binning cuts the first ``duration`` of a recording into
``T = data.time_steps`` equal bins and marks each place in each bin:

    an event at time t lands in frame floor(t * T / duration); events at t >= duration are dropped,

and with ``downsample = k`` channel c becomes c // k (SHD, SSC) and pixel (x, y) becomes (x // k, y // k).
A frame holds 0/1 spikes (any event there or not) or, with ``counts``, the number of events (at most 255).
SHD and SSC times are float seconds, binned in float64; the cameras' are whole microseconds, binned in
integers, which is what tonic's ``ToFrame`` does with ``time_window = duration / T`` (when that is a whole
number of microseconds): with tonic installed the camera frames are accumulated by ToFrame, and the tests
hold both ways to the same frames.

Frames are uint8 ``[N, T, ...]`` (the encoder makes each batch float32), so a split takes a quarter of the
memory of float32. After the first load they are saved under the cache folder and later loads map that file
instead of binning again; its name holds a hash of the binning settings and of each source file's path, size
and modification time, so changing either bins afresh.

Files (looked for in ``data_dir``, or in the folder tonic would put them in, ``data_dir/SHD`` and so on):

- SHD: ``shd_train.h5``, ``shd_test.h5``; SSC: ``ssc_train.h5``, ``ssc_test.h5`` (its validation split is not
  used). HDF5 with ``spikes/times`` (float seconds) and ``spikes/units`` (channel 0-699) as one variable-length
  array per sample, ``labels``, and the class names in ``extra/keys``. Read with h5py.
- N-MNIST: ``Train/`` and ``Test/``, each a folder per digit of ``.bin`` files (the dataset's own format,
  read by :func:`read_nmnist_file`, no tonic needed).
- DVS Gesture: ``ibmGestureTrain/`` and ``ibmGestureTest/`` as tonic unpacks them, a folder per user and
  lighting of ``<label>.npy`` files, each ``[events, 4]``: x, y, polarity, time in ms.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnlab.engine import shapes
from snnlab.engine.data import DataError, Dataset, Split

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the frames a loader makes change, so old caches are not read as new ones
SHD_URL = "https://zenkelab.org/datasets/"
NMNIST_URL = "https://data.mendeley.com/datasets/468j46mzdv"
# N-MNIST's .bin format: a y byte of 240 marks a timestamp overflow, not an event; each adds 2**13 us to
# every later timestamp (as the dataset's own MATLAB reader does).
_NMNIST_OVERFLOW_Y = 240
_NMNIST_OVERFLOW_US = 1 << 13
GESTURE_CLASSES = [
    "hand clap", "right hand wave", "left hand wave", "right arm clockwise", "right arm counter-clockwise",
    "left arm clockwise", "left arm counter-clockwise", "arm roll", "air drums", "air guitar", "other",
]  # fmt: skip


@dataclass(frozen=True)
class Binning:
    """How recordings become frames: ``time_steps`` bins over ``duration_ms``, places merged ``downsample``
    to one, frames of counts (up to 255) or of 0/1 spikes."""

    time_steps: int
    duration_ms: float
    downsample: int = 1
    counts: bool = False


# --- binning ---------------------------------------------------------------------------------------------


def accumulate(frame: np.ndarray, place: np.ndarray, time_steps: int, places: int, counts: bool) -> np.ndarray:
    """uint8 ``[time_steps, places]``: events (``frame[i]``, ``place[i]``) counted per cell (clipped to 255),
    or 0/1 without ``counts``. Events outside ``[0, time_steps)`` or ``[0, places)`` are dropped."""
    keep = (frame >= 0) & (frame < time_steps) & (place >= 0) & (place < places)
    cells = np.bincount(frame[keep] * places + place[keep], minlength=time_steps * places)
    out = np.minimum(cells, 255) if counts else cells > 0
    return out.astype(np.uint8).reshape(time_steps, places)


def spike_frames(times_s: np.ndarray, units: np.ndarray, channels: int, binning: Binning) -> np.ndarray:
    """SHD / SSC: spikes at ``times_s`` (seconds) on ``units`` -> uint8 ``[T, ceil(channels / downsample)]``."""
    t = binning.time_steps
    frame = np.floor(np.asarray(times_s, np.float64) * t / (binning.duration_ms / 1000.0)).astype(np.int64)
    place = np.asarray(units, np.int64) // binning.downsample
    return accumulate(frame, place, t, -(-channels // binning.downsample), binning.counts)


def camera_frames(events: dict[str, np.ndarray], sensor: tuple[int, ...], binning: Binning) -> np.ndarray:
    """Events ``x``, ``y``, ``p`` (0/1), ``t`` (whole us) of a ``(P, H, W)`` sensor -> uint8 ``[T, P, H', W']``,
    H' and W' divided by ``downsample`` (rounded up)."""
    p, h, w = sensor[0], *(-(-size // binning.downsample) for size in sensor[1:])
    t = binning.time_steps
    frame = np.asarray(events["t"], np.int64) * t // _duration_us(binning)
    x, y = (np.asarray(events[k], np.int64) // binning.downsample for k in ("x", "y"))
    place = (np.asarray(events["p"], np.int64) * h + y) * w + x
    frame[(x >= w) | (y >= h)] = -1  # off the sensor: dropped rather than counted in the next row
    return accumulate(frame, place, t, p * h * w, binning.counts).reshape(t, p, h, w)


def camera_frames_tonic(events: dict[str, np.ndarray], sensor: tuple[int, ...], binning: Binning) -> np.ndarray:
    """:func:`camera_frames` by tonic's ``ToFrame`` (fixed time windows from 0 to the duration)."""
    from tonic.functional.to_frame import to_frame_numpy  # optional: snnlab[tonic]

    p, h, w = sensor[0], *(-(-size // binning.downsample) for size in sensor[1:])
    order = np.argsort(events["t"], kind="stable")  # ToFrame finds its windows by binary search over t
    structured = np.zeros(len(order), dtype=[("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    for key in ("x", "y"):
        structured[key] = np.asarray(events[key], np.int64)[order] // binning.downsample
    structured["t"], structured["p"] = np.asarray(events["t"], np.int64)[order], np.asarray(events["p"])[order]
    duration = _duration_us(binning)
    window = duration / binning.time_steps
    frames = to_frame_numpy(structured, (w, h, p), time_window=window, start_time=0, end_time=duration)
    out = np.zeros((binning.time_steps, p, h, w), np.int64)
    out[: len(frames)] = frames[: binning.time_steps]
    return (np.minimum(out, 255) if binning.counts else out > 0).astype(np.uint8)


def _duration_us(binning: Binning) -> int:
    return max(1, round(binning.duration_ms * 1000))


def _camera_binner() -> Callable[[dict[str, np.ndarray], tuple[int, ...], Binning], np.ndarray]:
    return camera_frames_tonic if importlib.util.find_spec("tonic") is not None else camera_frames


# --- readers ---------------------------------------------------------------------------------------------


def read_nmnist_file(path: str | Path) -> dict[str, np.ndarray]:
    """Events of one N-MNIST ``.bin`` file: ``x``, ``y``, ``p`` (0/1) and ``t`` (us), as int64 arrays.

    Each event is 5 bytes, 40 bits big-endian: x (8 bits), y (8), polarity (1), timestamp in us (23).
    """
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 5:
        raise ValueError(f"{path} is not an N-MNIST file: {raw.size} bytes is not a whole number of 5-byte events")
    fields = raw.reshape(-1, 5).astype(np.int64)
    x, y, rest = fields[:, 0], fields[:, 1], fields[:, 2]
    t = ((rest & 0x7F) << 16) | (fields[:, 3] << 8) | fields[:, 4]
    overflow = y == _NMNIST_OVERFLOW_Y
    t = t + np.cumsum(overflow) * _NMNIST_OVERFLOW_US
    real = ~overflow
    return {"x": x[real], "y": y[real], "p": rest[real] >> 7, "t": t[real]}


def read_gesture_file(path: str | Path) -> dict[str, np.ndarray]:
    """Events of one DVS Gesture ``.npy`` file as tonic unpacks them: columns x, y, polarity, time (ms)."""
    data = np.load(path)
    if data.ndim != 2 or data.shape[1] != 4:
        raise ValueError(f"{path} is not a DVS Gesture recording: an [events, 4] array was expected, got {data.shape}")
    return {
        "x": data[:, 0].astype(np.int64),
        "y": data[:, 1].astype(np.int64),
        "p": (data[:, 2] > 0).astype(np.int64),
        "t": np.round(data[:, 3].astype(np.float64) * 1000).astype(np.int64),
    }


# --- loading ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """One split on disk: the files it is read from, how many samples it has, and a function that bins
    sample i into a frame and gives its label."""

    files: list[Path]
    samples: int
    sample: Callable[[int], tuple[np.ndarray, int]]


def load_event_dataset(name: str, root: Path, time_steps: int, params: dict[str, Any] | None = None) -> Dataset:
    """Dataset ``name`` (one of :data:`shapes.EVENT_SETS`) from ``root``, binned into ``time_steps`` frames.

    ``params`` are ``data.events``: duration_ms (None: the set's usual), downsample, counts, cache, cache_dir.
    Raises :class:`DataError` (one line) when the files are missing or unreadable.
    """
    p = {"duration_ms": None, "downsample": 1, "counts": False, "cache": True, "cache_dir": None, **(params or {})}
    facts = shapes.EVENT_SETS[name]
    binning = Binning(time_steps, float(p["duration_ms"] or facts.duration_ms), int(p["downsample"]), bool(p["counts"]))
    cache_dir = Path(p["cache_dir"]).expanduser() if p["cache_dir"] else root / "cache"
    opener = {"shd": _h5_split, "ssc": _h5_split, "nmnist": _nmnist_split, "dvs_gesture": _gesture_split}[name]
    splits: dict[str, Split] = {}
    classes: list[str] = []
    for split in ("train", "test"):
        source, classes = opener(name, root, split, binning)
        frames, labels = _cached_frames(name, split, source, binning, cache_dir if p["cache"] else None)
        splits[split] = Split(torch.from_numpy(frames), torch.from_numpy(labels))
    return Dataset(
        name=name,
        train=splits["train"],
        test=splits["test"],
        input_shape=(time_steps, *shapes.event_input_shape(name, binning.downsample)),
        num_classes=facts.classes,
        classes=classes,
        temporal=True,
    )


def _h5_split(name: str, root: Path, split: str, binning: Binning) -> tuple[_Source, list[str]]:
    folder = _find_folder(root, name.upper(), lambda f: all((f / n).is_file() for n in _h5_names(name)))
    if folder is None:
        names = " and ".join(_h5_names(name))
        zipped = [f for f in (root, root / name.upper()) for n in _h5_names(name) if (f / f"{n}.gz").is_file()]
        if zipped:
            raise DataError(f"dataset {name!r}: {zipped[0]} holds {names} still gzipped: gunzip them there")
        raise DataError(
            f"dataset {name!r} not found: {root} (or {root / name.upper()}) holds no {names}; download them "
            f"(.h5.gz) from {SHD_URL}, gunzip them into that folder, or set data.data_dir to theirs"
        )
    try:
        import h5py  # optional: snnlab[events]
    except ImportError:
        raise DataError(f"dataset {name!r} is read with h5py: pip install 'snnlab[events]'") from None
    path = folder / f"{name}_{split}.h5"
    unreadable = f"dataset {name!r}: {path} is not a readable {name.upper()} file"
    try:
        with h5py.File(path, "r") as f:
            lengths = (f["spikes"]["times"].shape[0], f["spikes"]["units"].shape[0])
            labels = np.asarray(f["labels"][:], np.int64)
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in f["extra"]["keys"][:]] if (
                "extra" in f and "keys" in f["extra"]) else []  # fmt: skip
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise DataError(f"{unreadable} ({error})") from None
    facts = shapes.EVENT_SETS[name]
    labels_fit = labels.size == 0 or 0 <= labels.min() <= labels.max() < facts.classes
    if not (lengths == (len(labels), len(labels)) and labels_fit):
        raise DataError(f"dataset {name!r}: {path} is damaged: {lengths[0]} times, {lengths[1]} units and "
                        f"{len(labels)} labels, which must be as many and lie in 0-{facts.classes - 1}")  # fmt: skip
    classes = keys if len(keys) == facts.classes else [f"class {c}" for c in range(facts.classes)]
    spikes: list[np.ndarray] = []  # times and units, read when the first sample is binned (a cached split is not)

    def sample(i: int) -> tuple[np.ndarray, int]:
        if not spikes:
            try:
                with h5py.File(path, "r") as f:
                    spikes.extend((f["spikes"]["times"][:], f["spikes"]["units"][:]))
            except (OSError, KeyError, ValueError, TypeError) as error:
                raise DataError(f"{unreadable} ({error})") from None
        times, units = spikes
        return spike_frames(times[i], units[i], facts.sensor[0], binning), int(labels[i])

    return _Source([path], len(labels), sample), classes


def _h5_names(name: str) -> tuple[str, str]:
    return f"{name}_train.h5", f"{name}_test.h5"


def _nmnist_split(name: str, root: Path, split: str, binning: Binning) -> tuple[_Source, list[str]]:
    folder = _find_folder(root, "NMNIST", lambda f: (f / "Train" / "0").is_dir() and (f / "Test" / "0").is_dir())
    if folder is None:
        raise DataError(
            f"dataset 'nmnist' not found: {root} (or {root / 'NMNIST'}) holds no Train/ and Test/ folders of digit "
            f"folders of .bin files; download Train.zip and Test.zip from {NMNIST_URL}, unzip them there, or set "
            "data.data_dir to their folder"
        )
    files, labels = _labelled_files(folder / split.title(), ".bin", lambda path: int(path.parent.name), 10)
    binner, sensor = _camera_binner(), shapes.EVENT_SETS["nmnist"].sensor

    def sample(i: int) -> tuple[np.ndarray, int]:
        return binner(read_nmnist_file(files[i]), sensor, binning), labels[i]

    return _Source(files, len(files), sample), [str(d) for d in range(10)]


def _gesture_split(name: str, root: Path, split: str, binning: Binning) -> tuple[_Source, list[str]]:
    folder = _find_folder(root, "DVSGesture", lambda f: all((f / n).is_dir() for n in _GESTURE_FOLDERS.values()))
    if folder is None:
        raise DataError(
            f"dataset 'dvs_gesture' not found: {root} (or {root / 'DVSGesture'}) holds no ibmGestureTrain/ and "
            "ibmGestureTest/ folders of .npy files; tonic downloads and unpacks them there (pip install tonic): "
            f"tonic.datasets.DVSGesture('{root}', train=True), and again with train=False"
        )
    where = folder / _GESTURE_FOLDERS[split]
    files, labels = _labelled_files(where, ".npy", lambda path: int(path.stem), len(GESTURE_CLASSES))
    binner, sensor = _camera_binner(), shapes.EVENT_SETS["dvs_gesture"].sensor

    def sample(i: int) -> tuple[np.ndarray, int]:
        return binner(read_gesture_file(files[i]), sensor, binning), labels[i]

    return _Source(files, len(files), sample), list(GESTURE_CLASSES)


_GESTURE_FOLDERS = {"train": "ibmGestureTrain", "test": "ibmGestureTest"}


def _find_folder(root: Path, tonic_name: str, holds: Callable[[Path], bool]) -> Path | None:
    """``root``, or ``root/<tonic_name>`` where tonic keeps the set, whichever ``holds`` the files."""
    return next((f for f in (root, root / tonic_name) if holds(f)), None)


def _labelled_files(
    folder: Path, suffix: str, label_of: Callable[[Path], int], classes: int
) -> tuple[list[Path], list[int]]:
    """Every ``*suffix`` file one folder below ``folder``, sorted, with its label (0 to ``classes`` - 1, told
    by ``label_of`` from the file's path); DataError on a file whose path tells none."""
    files = sorted(folder.glob(f"*/*{suffix}"))
    if not files:
        raise DataError(f"{folder} holds no {suffix} files in its subfolders: is the download complete?")
    labels = []
    for path in files:
        try:
            labels.append(label_of(path))
        except ValueError:
            labels.append(-1)
        if not 0 <= labels[-1] < classes:
            raise DataError(f"{path} has no label 0-{classes - 1} in its name; remove files that are not the dataset's")
    return files, labels


# --- the cache -------------------------------------------------------------------------------------------


def _cached_frames(
    name: str, split: str, source: _Source, binning: Binning, cache_dir: Path | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(frames uint8 [N, T, ...], labels int64 [N])``: mapped from the cache when it holds them, else binned
    (and saved to the cache when ``cache_dir`` is given and writable)."""
    shape = (source.samples, binning.time_steps, *shapes.event_input_shape(name, binning.downsample))
    stem = None
    if cache_dir is not None:
        stem = cache_dir / f"{name}-{split}-{cache_key(name, split, source.files, binning)}"
        frames_path, labels_path = Path(f"{stem}.frames.npy"), Path(f"{stem}.labels.npy")
        if frames_path.is_file() and labels_path.is_file():
            try:
                # Copy-on-write mapping: pages are read as batches touch them, and nothing is written back.
                frames, labels = np.load(frames_path, mmap_mode="c"), np.load(labels_path)
                if frames.shape == shape and frames.dtype == np.uint8 and labels.shape == shape[:1]:
                    log.info("%s %s: binned frames from %s", name, split, frames_path)
                    return frames, labels.astype(np.int64)
            except (OSError, ValueError) as error:
                log.warning("ignoring the damaged cache %s: %s", frames_path, error)
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            log.warning("not caching %s %s: cannot create %s (%s)", name, split, cache_dir, error)
            stem = None
    if stem is None:
        frames = np.zeros(shape, np.uint8)
        labels = _fill(frames, source)
        return frames, labels
    return _bin_into_cache(stem, shape, source)


def _bin_into_cache(stem: Path, shape: tuple[int, ...], source: _Source) -> tuple[np.ndarray, np.ndarray]:
    """Bin straight into a file (a set larger than memory still bins), then rename it into place."""
    frames_path, labels_path = Path(f"{stem}.frames.npy"), Path(f"{stem}.labels.npy")
    fd, tmp = tempfile.mkstemp(dir=stem.parent, prefix=f".{stem.name}.", suffix=".part")
    os.close(fd)
    try:
        frames = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        labels = _fill(frames, source)
        frames.flush()
        del frames
        _save_atomically(labels_path, labels)
        os.replace(tmp, frames_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    log.info("binned frames saved to %s", frames_path)
    return np.load(frames_path, mmap_mode="c"), labels


def _fill(frames: np.ndarray, source: _Source) -> np.ndarray:
    labels = np.zeros(source.samples, np.int64)
    for i in range(source.samples):
        frames[i], labels[i] = source.sample(i)
    return labels


def _save_atomically(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            np.save(out, array)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def cache_key(name: str, split: str, files: list[Path], binning: Binning) -> str:
    """A short hash of what the frames depend on: the binning, and each source file's path, size and mtime."""
    digest = hashlib.sha256(json.dumps([CACHE_FORMAT, name, split, binning.__dict__, _tonic_used(name)]).encode())
    for entry in _stats(files):
        digest.update(entry.encode())
    return digest.hexdigest()[:16]


def _tonic_used(name: str) -> bool:
    # The two binnings agree, but a cache made by one should not pass for the other's if they ever differ.
    return name in ("nmnist", "dvs_gesture") and importlib.util.find_spec("tonic") is not None


def _stats(files: list[Path]) -> Iterator[str]:
    for path in files:
        stat = path.stat()
        yield f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
