"""Keep freed memory in the process instead of handing it back to the kernel after every step.

A training step allocates and frees the same large ``[T, B, N]`` buffers every time. glibc's malloc
serves blocks above its mmap threshold with fresh ``mmap`` calls and trims freed heap memory, so each
step page-faults those buffers in anew (measured: ~10,000 faults and half the step time of the
tutorial-5 network on a 2-core CPU). Raising both thresholds lets the buffers be reused. glibc caps the
mmap threshold at 32 MiB, so larger buffers (a long sequence's ``[T, B, N]``: 64 MB at T=500, B=32,
N=1000) would still be mapped afresh each step; ``M_MMAP_MAX = 0`` serves them from the heap as well
(measured: 47,000 -> 4,700 faults and 70 -> 30 ms per step for that layer).

It is applied when the CPU scans first load (``kernels/native.py``), so that a user's own training loop
around snnlab's neurons gets it as ``snnlab run`` does, without knowing about it. It is left alone when the
process's malloc was configured on purpose: any ``MALLOC_*_`` variable or a ``glibc.malloc`` tunable in
``GLIBC_TUNABLES`` (those are the user's choice, and the benchmarks' memory measurement relies on one), or
``SNNLAB_MALLOC=0``.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_result: bool | None = None  # once per process


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Tune glibc's malloc for repeated large allocations, once per process; a no-op elsewhere, or when the
    environment configures malloc itself (:func:`configured_elsewhere`). True when applied.

    Both thresholds go together: a high trim threshold alone still mmaps the large blocks. Freed heap
    memory above ``trim_threshold`` at the top of the heap still goes back to the system.
    """
    global _result
    if _result is None:
        _result = _apply(mmap_threshold, trim_threshold)
    return _result


def _apply(mmap_threshold: int, trim_threshold: int) -> bool:
    if not sys.platform.startswith("linux") or configured_elsewhere():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: glibc's, without running ldconfig
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    return (
        bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold))
        and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
        and bool(mallopt(_M_MMAP_MAX, 0))
    )


def configured_elsewhere() -> bool:
    """Whether the environment already says how malloc should behave (then snnlab leaves it as it is)."""
    env = os.environ
    return (
        env.get("SNNLAB_MALLOC") == "0"
        or any(k.startswith("MALLOC_") and k.endswith("_") for k in env)
        or "glibc.malloc." in env.get("GLIBC_TUNABLES", "")
    )
