"""Writing the files of a run: atomically, with ordinary permissions, and with failures in one line.

Every file a run writes whole (checkpoints, summary.json, probes) goes through :func:`atomic_write`: the
bytes go to a temporary file beside the target, then ``os.replace`` puts it in place, so a reader or a
crash never sees half a file and a failed write leaves the old file as it was. The temporary file is
created with a plain ``open`` (mode 0666 less the umask), not ``tempfile.mkstemp`` (0600), so a run
directory on a shared server stays readable like any other file its owner writes.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


class WriteError(Exception):
    """A file of a run could not be written. The message is one line: the file, the reason, what to do."""

    def __init__(self, path: str | os.PathLike[str], error: OSError) -> None:
        self.path = Path(path)
        self.errno = error.errno
        reason = error.strerror or str(error) or type(error).__name__
        if error.errno in _FULL:
            hint = "free some space, then resume the run"
        elif error.errno in _DENIED:
            hint = "make it writable, then resume the run"
        else:
            hint = "fix that, then resume the run"
        super().__init__(f"cannot write {self.path}: {reason} ({hint})")


@contextmanager
def atomic_write(path: str | os.PathLike[str], *, fsync: bool = False) -> Iterator[BinaryIO]:
    """Open a temporary file for ``path``; when the block ends without error it replaces ``path``.

    ``fsync`` makes the bytes durable before the rename (checkpoints: a power cut must not leave an empty
    ``last.pt`` in place of a good one). Any OSError, from the block or the rename, removes the temporary
    file and is raised as :class:`WriteError` naming ``path``.
    """
    path = Path(path)
    # A random part, and "x" below: two writers of the same file (torchrun ranks, a retry) never share one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise WriteError(path, exc) from None
    except BaseException:
        _remove(tmp)
        raise


def cache_dir() -> Path:
    """snnlab's folder in the user's cache: ``$XDG_CACHE_HOME/snnlab``, else ``~/.cache/snnlab`` (not created)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "snnlab"


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # the folder itself went read-only or away: nothing more can be done about the leftover
