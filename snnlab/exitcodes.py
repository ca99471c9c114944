"""The exit statuses of every snnlab command, and of the runs a sweep starts.

Kept apart from cli.py so that headless modules (sweep.py reads its runs' statuses) can name them
without importing typer.
"""

from __future__ import annotations

import enum


class Exit(enum.IntEnum):
    OK = 0
    FAILED = 1  # the run failed, or the lab crashed
    USAGE = 2  # usage, config or data error: nothing was trained
    INTERRUPTED = 130  # Ctrl-C: a run stopped at a batch boundary with a checkpoint, resumable
