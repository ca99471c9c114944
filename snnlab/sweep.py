"""Sweeps: every combination of a grid of config values, times a number of seeds, each run its own way.

Each run is a plain ``python -m snnlab run PRESET --set ...`` subprocess writing a normal run directory
under ``runs/sweep-<name>-<timestamp>/``; a crashed run therefore cannot take the sweep down, and up to
``workers`` of them run at once (with several GPUs, each worker gets its own through
``CUDA_VISIBLE_DEVICES``). At the end ``summary.csv`` holds one row per combination. ``sweep.yaml``
marks the folder as a sweep: :func:`read_sweep` finds its runs again for the lab's Surrogates pane.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from snnlab import runs
from snnlab.config import MAX_RUN_NAME, Config, ConfigError, load_config
from snnlab.exitcodes import Exit
from snnlab.formatting import format_percent

SWEEP_FILE = runs.SWEEP_FILE
SUMMARY_CSV = "summary.csv"  # written when the sweep ends
HPARAMS_DIR = "hparams"  # TensorBoard's hparams table of a sweep with TensorBoard logging: a folder per run


@dataclass
class Trial:
    """One run of the sweep: a combination of grid values and a seed."""

    values: tuple[Any, ...]
    seed: int
    name: str
    overrides: list[str]
    run_dir: Path | None = None
    returncode: int | None = None
    error: str = ""


@dataclass
class Row:
    """One line of ``summary.csv``: a combination over its seeds."""

    values: tuple[Any, ...]
    n: int
    best_accuracy_mean: float | None
    best_accuracy_std: float | None
    time_to_best_mean: float | None
    spike_rate_mean: float | None
    failed_seeds: list[int] = field(default_factory=list)
    decoder: str = ""  # of the accuracies (the runs' train.decoder; several joined by "/")


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["train.lr=1e-3,2e-3", ...]`` -> ``{"train.lr": [0.001, 0.002]}``; each value read as YAML.

    Values that hold commas themselves go as one YAML list: ``train.betas=[[0.9, 0.999], [0.8, 0.99]]``.
    """
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError(f"--grid {item!r}: write KEY=V1,V2,... e.g. train.lr=1e-3,2e-3")
        if key in grid:
            raise ConfigError(f"--grid {key} is given twice; list all its values in one --grid")
        grid[key] = _values(values.strip(), item)
    return grid


def _values(text: str, item: str) -> list[Any]:
    if text.startswith("["):
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError:
            values = None
        if not isinstance(values, list) or not values:
            example = "[[0.9, 0.999], [0.8, 0.99]]"
            raise ConfigError(f"--grid {item!r}: a value list in brackets must be YAML, e.g. {example}")
        return [_value(v) if isinstance(v, str) else v for v in values]
    return [_value(v.strip()) for v in text.split(",")]


def _value(text: str) -> Any:
    value = yaml.safe_load(text) if isinstance(text, str) else text
    if isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        except ValueError:
            pass
    return value


def format_value(value: Any) -> str:
    """A value as ``--set`` reads it back (YAML, one line)."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def plan(preset: Path, grid: dict[str, list[Any]], seeds: int, overrides: list[str]) -> tuple[Config, list[Trial]]:
    """The base config and the trials of a sweep; every combination's config is checked here, before any
    run starts."""
    base = load_config(preset, overrides)
    keys = list(grid)
    trials: list[Trial] = []
    for values in itertools.product(*(grid[k] for k in keys)):
        sets = [f"{k}={format_value(v)}" for k, v in zip(keys, values, strict=True)]
        load_config(preset, [*overrides, *sets])  # a bad key or value is a usage error, now
        label = "-".join(f"{k.rsplit('.', 1)[-1]}_{format_value(v)}" for k, v in zip(keys, values, strict=True))
        label = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)  # run.name's alphabet
        for i in range(seeds):
            seed = base.train.seed + i
            # Long grid values make long names: cut the middle part, so that each run's name stays a valid
            # run.name and still ends with its seed. Runs are told apart by their configs, not their names.
            stem, suffix = f"{base.run.name}-{label}" if label else base.run.name, f"-seed{seed}"
            name = stem[: MAX_RUN_NAME - len(suffix)] + suffix
            trials.append(Trial(values, seed, name, [*overrides, *sets, f"train.seed={seed}"]))
    return base, trials


class SweepResult(NamedTuple):
    sweep_dir: Path
    rows: list[Row]
    trials: list[Trial]
    interrupted: bool  # Ctrl-C: the runs under way were stopped (checkpointed), the rest never started


def run_sweep(
    preset: Path,
    grid: dict[str, list[Any]],
    seeds: int,
    overrides: list[str],
    workers: int,
    log=print,
    tensorboard: bool = False,
) -> SweepResult:
    """Run every trial (``workers`` at a time) and write ``summary.csv`` for those that finished.

    Ctrl-C stops the sweep: the runs under way get it too and stop at their next batch with a checkpoint,
    the others are not started, and the summary covers what finished.

    ``tensorboard`` (or ``run.loggers: [tensorboard]`` in the config) gives each run its TensorBoard log and
    the sweep an hparams table in ``hparams/``, one row added as each run finishes.
    """
    base, trials = plan(preset, grid, seeds, overrides)
    hparams = tensorboard or "tensorboard" in base.run.loggers
    if hparams:
        from snnlab.interop import loggers

        try:
            loggers.check(["tensorboard"])
        except loggers.LoggerUnavailable as exc:
            raise ConfigError(str(exc)) from None
    sweep_dir = Path(base.run.runs_dir) / f"sweep-{base.run.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    sweep_dir.mkdir(parents=True, exist_ok=False)
    (sweep_dir / SWEEP_FILE).write_text(
        yaml.safe_dump({"preset": str(preset), "grid": grid, "seeds": seeds, "overrides": overrides}, sort_keys=False)
    )
    gpus = _gpu_count()
    # Runs sharing the CPU split its cores rather than each starting one thread per core.
    threads = None if gpus or "OMP_NUM_THREADS" in os.environ else max(1, (os.cpu_count() or 1) // max(1, workers))
    free_slots = list(range(max(1, workers)))
    running: set[subprocess.Popen] = set()
    claimed: set[Path] = set()
    lock = threading.Lock()
    stopping = threading.Event()

    def one(trial: Trial) -> Trial:
        if stopping.is_set():
            return trial
        with lock:
            slot = free_slots.pop()
            folder = _claim_folder(sweep_dir, trial.name, claimed)
        try:
            flags = ["--tensorboard"] if tensorboard else []
            _launch(trial, preset, sweep_dir, folder, slot % gpus if gpus > 1 else None, threads, running, lock, flags)
        finally:
            with lock:
                free_slots.append(slot)
        if hparams and trial.returncode == Exit.OK and trial.run_dir is not None:
            _add_hparams_row(sweep_dir, grid, trial, seeds > 1, log)
        if trial.returncode == Exit.INTERRUPTED:
            state = f"stopped; continue it with snnlab run --resume {trial.run_dir or trial.name}"
        else:
            state = "ok" if trial.returncode == Exit.OK else f"FAILED (exit {trial.returncode})"
        log(f"[{trial.name}] {state}")
        return trial

    log(f"sweep: {len(trials)} runs, {max(1, workers)} at a time, in {sweep_dir}")
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    futures = [pool.submit(one, trial) for trial in trials]
    interrupted = False
    # Ctrl-C means "stop the sweep" even where the shell started it with SIGINT ignored (a background job of
    # a script), as `snnlab run` handles it itself: otherwise only the runs would stop and the sweep go on.
    previous = _catch_ctrl_c()
    try:
        for future in futures:
            future.result()
    except KeyboardInterrupt:
        interrupted = True
        stopping.set()
        for future in futures:
            future.cancel()
        with lock:
            for proc in running:  # a terminal's Ctrl-C reached them already; `kill -INT` did not
                proc.send_signal(signal.SIGINT)
        log("sweep: stopping the runs under way at their next batch")
    finally:
        pool.shutdown(wait=True)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    rows = summarize(list(grid), trials)
    write_csv(sweep_dir / SUMMARY_CSV, list(grid), rows)
    return SweepResult(sweep_dir, rows, trials, interrupted)


def _catch_ctrl_c() -> Any:
    """Make SIGINT raise KeyboardInterrupt in this (main) thread; the handler it replaced, or None when this
    is not the main thread (only that one may set handlers, and it then keeps what it has)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, signal.default_int_handler)


def _gpu_count() -> int:
    if "CUDA_VISIBLE_DEVICES" in os.environ and not os.environ["CUDA_VISIBLE_DEVICES"].strip():
        return 0
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # no usable CUDA: every worker shares the CPU
        return 0


def _claim_folder(sweep_dir: Path, name: str, claimed: set[Path]) -> Path:
    """The folder the run ``name`` will create, named as any run's (``<name>-<YYYYmmdd-HHMMSS>``).

    The sweep names it rather than reading it from the run's output afterwards: then it knows the folder
    even when the run dies without a word, and runs that share a name (long grid values are cut down to
    the same name) cannot be mistaken for one another. ``claimed`` holds the folders given out so far,
    since a run creates its folder only once it is ready to train."""
    base = runs.folder_name(name)
    path, suffix = sweep_dir / base, 1
    while path in claimed or path.exists():
        suffix += 1
        path = sweep_dir / f"{base}-{suffix}"
    claimed.add(path)
    return path


def _add_hparams_row(sweep_dir: Path, grid: dict[str, list[Any]], trial: Trial, seeded: bool, log) -> None:
    """The run's grid values (and its seed, when the sweep tries several) and final test metrics, as one row of
    the sweep's TensorBoard hparams table."""
    from snnlab.engine.files import WriteError
    from snnlab.interop import tensorboard

    assert trial.run_dir is not None
    try:
        history = runs.read_history(trial.run_dir, step_points=0)
    except runs.RunDirError:
        return  # counted as a failed seed by the summary
    if history.final_test_accuracy is None:
        return
    values = dict(zip(grid, trial.values, strict=True))
    if seeded:
        values["train.seed"] = trial.seed
    try:
        tensorboard.write_hparams(sweep_dir / HPARAMS_DIR / trial.run_dir.name, values, history, grid)
    except WriteError as exc:
        log(f"[{trial.name}] not added to the hparams table: {exc}")


def _launch(trial: Trial, preset: Path, sweep_dir: Path, folder: Path, gpu: int | None, threads: int | None,
            running: set[subprocess.Popen], lock: threading.Lock, flags: list[str]) -> None:  # fmt: skip
    command = [sys.executable, "-m", "snnlab", "run", str(preset), "--quiet", "--into", str(folder), *flags]
    for item in [*trial.overrides, f"run.runs_dir={sweep_dir}", f"run.name={trial.name}"]:
        command += ["--set", item]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        env.pop(key, None)  # a sweep started under torchrun still runs plain single-process runs
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        with lock:
            running.add(proc)
        try:
            stdout, stderr = proc.communicate()
        finally:
            with lock:
                running.discard(proc)
    # A Ctrl-C that reaches a run while Python is still starting (before snnlab handles it) kills it by the
    # signal itself: that run was interrupted like the others, not failed.
    trial.returncode = Exit.INTERRUPTED if proc.returncode == -signal.SIGINT else proc.returncode
    # No folder: the run stopped in its pre-flight (bad data, no device), which leaves none behind.
    trial.run_dir = folder if folder.is_dir() else None
    if proc.returncode != 0:
        trial.error = _error_line(stderr)
        (sweep_dir / f"{trial.name}.stderr.txt").write_text(stderr)


_ERROR_PREFIX = re.compile(r"^snnlab: error(?: \(rank \d+\))?: ")


def _error_line(stderr: str) -> str:
    """The line of a failed run's stderr that says what went wrong, without the run's own "snnlab: error:"
    in front: the sweep reports it under its own prefix, with the run's name."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    error = next((line for line in lines if "error" in line.lower()), lines[-1] if lines else "")
    return _ERROR_PREFIX.sub("", error, count=1)


def trial_metrics(run_dir: Path) -> tuple[float, float, float, str] | None:
    """(best test accuracy, seconds of training until the epoch that first reached it, mean spike rate
    over the spiking layers at that epoch, the decoder of the accuracy) of a run directory, or None without
    any evaluation."""
    try:
        history = runs.read_history(run_dir, step_points=0)
    except runs.RunDirError:
        return None  # its events are gone or unreadable: it counts as a failed seed, not a broken sweep
    best = history.best_epoch
    if best is None:
        return None
    elapsed = sum(e.epoch_time for e in history.epoch_rows if e.epoch <= best.epoch)
    rates = list(best.spike_rates.values())
    return best.test_accuracy, elapsed, (sum(rates) / len(rates) if rates else 0.0), history.decoder


def summarize(keys: list[str], trials: list[Trial]) -> list[Row]:
    rows: list[Row] = []
    for values, group in itertools.groupby(trials, key=lambda t: t.values):
        results, failed = [], []
        for trial in group:
            if trial.returncode in (None, Exit.INTERRUPTED):
                continue  # never started, or stopped by Ctrl-C: neither a result nor a failure
            metrics = trial_metrics(trial.run_dir) if trial.returncode == Exit.OK and trial.run_dir else None
            if metrics is None:
                failed.append(trial.seed)
            else:
                results.append(metrics)
        acc = [m[0] for m in results]
        rows.append(
            Row(
                values=values,
                n=len(results),
                best_accuracy_mean=statistics.fmean(acc) if acc else None,
                best_accuracy_std=statistics.stdev(acc) if len(acc) > 1 else (0.0 if acc else None),
                time_to_best_mean=statistics.fmean(m[1] for m in results) if results else None,
                spike_rate_mean=statistics.fmean(m[2] for m in results) if results else None,
                failed_seeds=failed,
                decoder="/".join(dict.fromkeys(m[3] for m in results)),
            )
        )
    return rows


COLUMNS = ["n", "decoder", "best_acc_mean", "best_acc_std", "time_to_best_s", "spike_rate", "failed_seeds"]


def _cells(row: Row, percent: bool = False) -> list[str]:
    """A row's cells: accuracies as fractions for summary.csv (as events and summary.json hold them), or
    as percentages for people, as every other table of snnlab shows them."""

    def num(value: float | None, digits: int) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    def acc(value: float | None) -> str:
        return num(value, 4) if not percent or value is None else format_percent(value)

    return [
        str(row.n),
        row.decoder,
        acc(row.best_accuracy_mean),
        acc(row.best_accuracy_std),
        num(row.time_to_best_mean, 2),
        num(row.spike_rate_mean, 4),
        " ".join(str(s) for s in row.failed_seeds),
    ]


def write_csv(path: Path, keys: list[str], rows: list[Row]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*keys, *COLUMNS])
        for row in rows:
            writer.writerow([*(format_value(v) for v in row.values), *_cells(row)])


def table(keys: list[str], rows: list[Row]) -> str:
    """The summary as an aligned plain-text table, accuracies in percent."""
    lines = [[*keys, *COLUMNS]] + [[*(format_value(v) for v in row.values), *_cells(row, percent=True)] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


@dataclass
class SweepRun:
    """A run directory of a sweep, with the grid values its config holds."""

    path: Path
    values: tuple[Any, ...]
    seed: int | None
    combination: int  # index of ``values`` in the grid's order (runs of one combination share it)
    config: dict[str, Any] = field(default_factory=dict)  # the run's config.yaml

    def label(self, keys: list[str]) -> str:
        """``atan`` for a one-key grid, ``surrogate=atan lr=0.001`` for several."""
        if len(keys) == 1:
            return format_value(self.values[0])
        return " ".join(f"{k.rsplit('.', 1)[-1]}={format_value(v)}" for k, v in zip(keys, self.values, strict=True))

    @property
    def short_label(self) -> str:
        """The values alone, ``atan/0.001``: short enough for a plot's legend."""
        return "/".join(format_value(v) for v in self.values)


def run_count(sweep_dir: Path) -> int:
    """How many run directories a sweep folder holds (its TensorBoard ``hparams/`` is none)."""
    return sum(1 for p in sweep_dir.iterdir() if p.is_dir() and p.name != HPARAMS_DIR)


def is_sweep_dir(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def list_sweeps(runs_dir: str | os.PathLike[str]) -> list[Path]:
    """Sweep folders directly under ``runs_dir``, newest first (their names end in a timestamp)."""
    root = Path(runs_dir).expanduser()
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and is_sweep_dir(p)]
    return sorted(found, key=lambda p: p.name[-15:], reverse=True)


def read_spec(sweep_dir: str | os.PathLike[str]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The grid keys of a sweep folder and its combinations in grid order, from its ``sweep.yaml``.
    Raises ConfigError when the folder is not a sweep."""
    root = Path(sweep_dir)
    try:
        spec = yaml.safe_load((root / SWEEP_FILE).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{root} is not a sweep folder (cannot read {SWEEP_FILE}: {exc})") from None
    grid = spec.get("grid") or {}
    keys = list(grid)
    return keys, [tuple(v) for v in itertools.product(*(grid[k] for k in keys))]


def sweep_run(path: Path, keys: list[str], order: list[tuple[Any, ...]]) -> SweepRun:
    """One run directory of a sweep, matched to its combination by the values in its own ``config.yaml``
    (raises RunDirError when that cannot be read)."""
    config = runs.read_config(path)
    values = tuple(_lookup(config, key) for key in keys)
    seed = (config.get("train") or {}).get("seed")
    combination = order.index(values) if values in order else len(order)
    return SweepRun(path, values, seed, combination, config)


def sweep_order(run: SweepRun) -> tuple[int, int, str]:
    """Where a run goes in a sweep's listing: grid order, then seed order."""
    return run.combination, run.seed if isinstance(run.seed, int) else 0, run.path.name


def read_sweep(sweep_dir: str | os.PathLike[str]) -> tuple[list[str], list[SweepRun]]:
    """The grid keys of a sweep folder and its run directories, in grid order then seed order.

    Runs are matched to combinations by the values in their own ``config.yaml``, so a sweep that is
    still running (or was cut short) reads fine. Raises ConfigError when the folder is not a sweep.
    """
    root = Path(sweep_dir)
    keys, order = read_spec(root)
    found = [sweep_run(child, keys, order) for child in sorted(root.iterdir()) if (child / runs.EVENTS_FILE).is_file()]
    return keys, sorted(found, key=sweep_order)


def current_summary(sweep_dir: str | os.PathLike[str]) -> tuple[list[str], list[Row]]:
    """The summary of a sweep as its run directories stand now (a sweep still running, or stopped, too)."""
    keys, found = read_sweep(sweep_dir)
    trials = []
    for run in found:
        info = runs.RunInfo.from_dir(run.path)
        status = info.status if info else "unknown"
        code = {"completed": Exit.OK, "stopped": Exit.INTERRUPTED, "running": None}.get(status, Exit.FAILED)
        trials.append(Trial(run.values, run.seed or 0, run.path.name, [], run.path, code))
    return keys, summarize(keys, trials)


def _lookup(data: Any, key: str) -> Any:
    """The value at a dotted key (list items by index, as ``--set`` writes them); None when absent."""
    for part in key.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data
