"""Checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the model, optimizer and scheduler states, the RNG states, the position in training
(completed epochs, batches done in the current epoch, optimizer steps, wall time so far) and the running
metrics of the current epoch: tensors and plain Python values only, so it loads with
``torch.load(weights_only=True)``, which never runs code from the file.

File layout: a first line naming the format, a second line with the SHA-256 of the rest, then the bytes of
``torch.save``. The checksum sits in the same file as what it covers, so the one ``os.replace`` of
:func:`~snnlab.engine.files.atomic_write` puts both in place together (a sidecar file would need a second
rename, and a crash between the two would leave a good checkpoint that looks damaged, or the reverse).
It comes first so that a reader checks it before handing a single byte to the unpickler.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import torch

from snnlab.engine.files import atomic_write

FORMAT = "snnlab-checkpoint-2"
_FORMAT_WITHOUT_CHECKSUM = "snnlab-checkpoint-1"  # written before checkpoints had a checksum
_MAGIC = FORMAT.encode() + b"\n"
_DIGEST = b"sha256:"
_HEADER = len(_MAGIC) + len(_DIGEST) + 64 + 1  # magic line, "sha256:<64 hex digits>\n"


class CheckpointError(Exception):
    """A checkpoint that cannot be read or does not fit the run (one-line message)."""


class _HashingWriter:
    """Passes torch.save's bytes on to the file while hashing them. torch turns an OSError raised by
    ``write`` into a RuntimeError without the errno; keeping it here lets ``save`` raise the real one."""

    def __init__(self, file: Any) -> None:
        self.file, self.sha = file, hashlib.sha256()
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            written = self.file.write(data)
        except OSError as exc:
            self.error = exc
            raise
        self.sha.update(data)
        return written

    def flush(self) -> None:
        self.file.flush()


def save(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically with its checksum.

    Raises:
        WriteError: the file could not be written (full disk, no permission); the old file is untouched.
    """
    with atomic_write(path, fsync=True) as f:
        f.write(_MAGIC + _DIGEST + b"0" * 64 + b"\n")  # the digest is filled in once the payload is written
        digest = save_to(f, {"format": FORMAT, **state})
        f.seek(len(_MAGIC) + len(_DIGEST))
        f.write(digest.encode())


def save_to(file: Any, obj: Any) -> str:
    """``torch.save(obj)`` into an open binary file; returns the SHA-256 (hex) of the bytes written.

    Raises the file's own OSError when a write fails (torch would report it as a bare RuntimeError).
    """
    writer = _HashingWriter(file)
    try:
        torch.save(obj, writer)  # type: ignore[arg-type]  # only write() and flush() are used
    except RuntimeError:
        if writer.error is not None:
            raise writer.error from None
        raise
    return writer.sha.hexdigest()


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The state saved by :func:`save`, after checking its checksum.

    Raises:
        CheckpointError: the file is missing, unreadable, damaged, from an older snnlab, or holds anything
            other than tensors and plain values (nothing in it is run).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there (was the run stopped before its first step?)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if data.startswith(b"PK"):
        # A bare torch.save zip: what snnlab wrote before checkpoints had a checksum. It still loads (safely,
        # below), so a run stopped under an older version can be resumed; only damage goes unnoticed.
        payload, formats = memoryview(data), (_FORMAT_WITHOUT_CHECKSUM,)
    else:
        header = data[:_HEADER]
        if not header.startswith(_MAGIC + _DIGEST) or header[-1:] != b"\n":
            raise CheckpointError(f"{path}: not a snnlab checkpoint")
        payload, formats = memoryview(data)[_HEADER:], (FORMAT,)
        if hashlib.sha256(payload).hexdigest().encode() != header[len(_MAGIC) + len(_DIGEST) : -1]:
            raise CheckpointError(f"{path}: damaged checkpoint (its checksum does not match); {_fallback(path)}")
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refused a global: the file was made to run code or hold objects, not by snnlab.
        raise CheckpointError(
            f"{path}: holds Python objects, not just tensors and plain values; refusing to load it"
        ) from None
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}); {_fallback(path)}") from None
    if not isinstance(state, dict) or state.get("format") not in formats:
        raise CheckpointError(f"{path}: not a snnlab checkpoint")
    return state


def _fallback(path: Path) -> str:
    return "start the run anew" if path.name == "best.pt" else "resume from best.pt or start the run anew"


def latest(folder: str | Path) -> tuple[Path, dict[str, Any], str | None]:
    """The checkpoint a resume continues from: ``last.pt``, or ``best.pt`` when last.pt is missing or damaged.

    ``best.pt`` is written at the end of an epoch like ``last.pt``, with the whole training state, so it
    is a real place to continue from (the epochs after it are trained again). Returns the path, the
    state, and a note saying why best.pt was taken (None when last.pt was used).

    Raises:
        CheckpointError: neither file can be used; the message names both.
    """
    last, best = Path(folder) / "last.pt", Path(folder) / "best.pt"
    try:
        return last, load(last), None
    except CheckpointError as exc:
        if not best.is_file():
            raise
        problem = f"{last}: missing" if not last.is_file() else str(exc).split("; ")[0]
    try:
        state = load(best)
    except CheckpointError as exc:
        raise CheckpointError(f"{problem}, and {str(exc).split('; ')[0]}; start the run anew") from None
    note = f"{problem}; resuming from {best.name} instead (end of epoch {state['progress']['epoch']})"
    return best, state, note


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    # Generator states are CPU byte tensors whatever the device; a checkpoint loaded with
    # map_location="cuda" has moved them to the GPU, where set_rng_state refuses them.
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
