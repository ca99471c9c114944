"""The sink that fills a run directory: events.jsonl, probes, and summary.json folded from the events."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from snnlab.engine.events import Event, ProbeRecorded, RunFailed, RunFinished, StepMetrics
from snnlab.engine.files import WriteError, atomic_write
from snnlab.history import RunHistory
from snnlab.runs.layout import MAX_PROBES, PROBES_DIR, RunDir, RunDirError
from snnlab.runs.reading import iter_events, probe_files


class RunWriter:
    """Sink that records every event into a :class:`RunDir`.

    - Each event becomes one JSON line in ``events.jsonl``, flushed at once so ``snnlab watch`` and the
      TUI see it live (no fsync: losing the last lines on a power cut is acceptable, a slow loop is not).
    - :class:`ProbeRecorded` tensors are saved first to ``probes/probe-e{epoch:03d}-s{step:07d}.npz``
      (``{"epoch", "step", "samples", "labels", "layers"}``) and ``event.path`` is set to that path
      relative to the run folder, so the JSON line points at it.
    - Probes are bounded: at most ``max_probes`` files are kept. When there are more, the oldest are
      deleted, except the very first probe, which is kept as the "before training" reference. The
      events of deleted probes stay in ``events.jsonl`` with a ``path`` that no longer exists;
      :func:`load_probe` reports that clearly.
    - ``summary.json`` is rewritten atomically on run start, each epoch, and at the end.
    - A file that cannot be written raises :class:`~snnlab.engine.files.WriteError` (one line naming it),
      which ends the run as failed; the :class:`RunFailed` that follows is recorded wherever it still can be.
    """

    def __init__(self, run_dir: RunDir | str | os.PathLike[str], max_probes: int = MAX_PROBES) -> None:
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir)
        self.max_probes = max(1, max_probes)
        self._file: Any = None
        # summary.json is the fold of the events, so a resumed run's writer starts from those written before.
        self._history = RunHistory(step_points=0)
        try:
            for event in iter_events(self.run_dir.events_path):
                self._history.apply(event)
        except RunDirError:
            pass  # none yet, or unreadable: then the first append says what is wrong

    # -- sink

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunFailed):
            self._record_failure(event)
            return
        if isinstance(event, ProbeRecorded) and event.layers:
            event.path = self._save_probe(event)
        self._append(event)
        self._update_summary(event)
        if isinstance(event, RunFinished):
            # The run is over; release the handle (a resumed run reopens it lazily).
            self.close()

    def _record_failure(self, event: RunFailed) -> None:
        # The failure may be this very folder refusing writes. Record it in each file that still takes it
        # (a read-only events.jsonl must not keep summary.json at "running"), and never raise over the
        # error being reported.
        for record in (self._append, self._update_summary):
            try:
                record(event)
            except WriteError:
                pass
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- events.jsonl

    def _repair_tail(self) -> None:
        # A run killed mid-write leaves a partial last line; appending after it would glue two events
        # together on resume. Cut the file back to its last complete line.
        # Only its last byte is read, and the file is opened for writing only when it needs the cut: a long
        # run's events.jsonl is not read whole, and a read-only one that is intact fails at the append.
        path = self.run_dir.events_path
        try:
            with open(path, "rb") as f:
                if f.seek(0, os.SEEK_END) == 0:
                    return
                f.seek(-1, os.SEEK_END)
                if f.read(1) == b"\n":
                    return
                f.seek(0)
                data = f.read()
        except FileNotFoundError:
            return
        with open(path, "rb+") as f:
            f.truncate(data.rfind(b"\n") + 1)

    def _append(self, event: Event) -> None:
        # default=str keeps an odd config value (a Path, an enum) from killing the run.
        line = memoryview((json.dumps(event.to_dict(), default=str) + "\n").encode("utf-8"))
        start = None
        try:
            if self._file is None:
                self._repair_tail()  # here, not on opening: its failure is a write failure of the run
                self._file = open(self.run_dir.events_path, "ab", buffering=0)  # unbuffered: each line is seen live
            start = self._file.seek(0, os.SEEK_END)
            while line:
                line = line[self._file.write(line) :]
        except OSError as exc:
            if start is not None:
                self._cut_back(start)
            raise WriteError(self.run_dir.events_path, exc) from None

    def _cut_back(self, size: int) -> None:
        # Part of a line may have reached the disk before the write failed; the next event (the failure
        # itself) must start on a line of its own.
        try:
            os.ftruncate(self._file.fileno(), size)
        except OSError:
            pass

    # -- probes

    def _save_probe(self, event: ProbeRecorded) -> str:
        from snnlab.runs import probefile  # numpy: a writer that records no probe does not need it

        probes = self.run_dir.probes_dir
        name = f"probe-e{event.epoch:03d}-s{event.step:07d}{probefile.SUFFIX}"
        # Written atomically: the TUI may load the newest probe while it is being written.
        with atomic_write(probes / name) as f:
            probefile.write_probe(f, event.epoch, event.step, event.samples, event.labels, event.layers)
        self._prune_probes()
        return f"{PROBES_DIR}/{name}"

    def _prune_probes(self) -> None:
        files = probe_files(self.run_dir.path)
        excess = len(files) - self.max_probes
        if excess <= 0:
            return
        # Keep files[0] (the earliest probe, the reference), drop the next-oldest ones.
        for path in files[1 : 1 + excess]:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                break  # pruning only saves space; a folder that refuses it fails the next probe's write

    # -- summary.json

    def _update_summary(self, event: Event) -> None:
        self._history.apply(event)
        if isinstance(event, (StepMetrics, ProbeRecorded)):
            return  # too frequent to rewrite the summary for
        _write_json_atomic(self.run_dir.summary_path, summary_of(self._history))


def summary_of(history: RunHistory) -> dict[str, Any]:
    """What summary.json holds for a run with this history (``snnlab runs`` lists runs by it)."""
    s: dict[str, Any] = {}
    if history.started is not None:
        s.update(
            name=history.name,
            started=history.started,
            epochs_done=history.epochs_done,
            steps=history.steps_done,
            best_accuracy=history.best_accuracy,
            status=history.status,
            pid=os.getpid(),  # with host: lets a listing tell a run whose process was killed
            host=socket.gethostname(),
            dataset=history.dataset,
            decoder=history.decoder,
            device=history.device,
            epochs=history.epochs,
            num_parameters=history.num_parameters,
            steps_per_epoch=history.steps_per_epoch,
        )
        if history.resumed is not None:
            s.update(resumed=history.resumed, resumed_from_epoch=history.resumed_from_epoch)
    s["status"] = history.status
    last = history.last_epoch
    if last is not None:
        s.update(
            train_loss=last.train_loss,
            train_accuracy=last.train_accuracy,
            spike_rates=dict(last.spike_rates),
            updated=last.time,
        )
    for key, value in (("test_loss", history.final_test_loss), ("test_accuracy", history.final_test_accuracy)):
        if value is not None:
            s[key] = value
    end = history.end
    if end is not None:
        if history.wall_time is not None:
            s["wall_time"] = history.wall_time
        s["finished"] = end.time
    if isinstance(end, RunFailed):
        s.update(error=end.error, reason=end.reason)
    return s


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    # Readers (`snnlab runs`, the TUI) may open summary.json at any moment: never let them see half a file.
    with atomic_write(path) as f:
        f.write((json.dumps(data, indent=2) + "\n").encode("utf-8"))
