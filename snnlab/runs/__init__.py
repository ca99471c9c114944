"""The run directory: the durable form of a run's events, readable by every face.

Layout (see ARCHITECTURE.md)::

    runs/<name>-<YYYYmmdd-HHMMSS>/
      config.yaml     the fully resolved config
      events.jsonl    one event per line, append-only, flushed per event
      probes/         membrane/spike recordings, bounded in number
      checkpoints/    written by the engine's checkpoint module
      summary.json    status, best/last metrics, timings, device (replaced atomically)
      .lock           held (flock) by the one process training in the folder; holds its pid

Writing: :class:`RunDir` creates or reopens the folder; :class:`RunWriter` is the sink that fills it.
:func:`lock_run` keeps a second process (a resume, the lab) from training in a folder already in use.
Reading: :func:`read_events`, :func:`read_history` (the events folded into the numbers of the run, see
``history.py``), :func:`follow_events` and :class:`EventTail` (live runs), :func:`list_runs`, :func:`find_run`,
:func:`load_probe` and :func:`metric_history`. The package stays free of textual/rich so the engine side,
the CLI and the TUI can all use it; torch is imported only where probes are saved or loaded.
"""

from snnlab.runs.layout import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    EVENTS_FILE,
    LOCK_FILE,
    MAX_PROBES,
    PROBES_DIR,
    SUMMARY_FILE,
    SWEEP_FILE,
    RunDir,
    RunDirError,
    RunInUseError,
    RunLock,
    RunNotFoundError,
    folder_name,
    lock_run,
    read_config,
    write_config,
)
from snnlab.runs.reading import (
    EventTail,
    RunInfo,
    find_run,
    follow_events,
    iter_events,
    list_runs,
    load_probe,
    metric_history,
    probe_files,
    read_events,
    read_history,
    read_summary,
)
from snnlab.runs.writer import (
    RunWriter,
    summary_of,
)

__all__ = [
    "CHECKPOINTS_DIR",
    "CONFIG_FILE",
    "EVENTS_FILE",
    "EventTail",
    "LOCK_FILE",
    "MAX_PROBES",
    "PROBES_DIR",
    "RunDir",
    "RunDirError",
    "RunInUseError",
    "RunInfo",
    "RunLock",
    "RunNotFoundError",
    "RunWriter",
    "SUMMARY_FILE",
    "SWEEP_FILE",
    "find_run",
    "folder_name",
    "follow_events",
    "iter_events",
    "list_runs",
    "load_probe",
    "lock_run",
    "metric_history",
    "probe_files",
    "read_config",
    "read_events",
    "read_history",
    "read_summary",
    "summary_of",
    "write_config",
]
