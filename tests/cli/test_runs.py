"""The run directory (writer and reader) and the console sink, driven by synthetic events."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from snnlab.console import ConsoleSink, ascii_curves, print_summary, runs_table, show_run
from snnlab.engine.events import (
    BadLines,
    EpochMetrics,
    Event,
    ProbeRecorded,
    RunFailed,
    RunFinished,
    RunStarted,
    StepMetrics,
)
from snnlab.runs import (
    RunDir,
    RunDirError,
    RunInfo,
    RunNotFoundError,
    RunWriter,
    find_run,
    follow_events,
    list_runs,
    load_probe,
    metric_history,
    probe_files,
    read_events,
    read_summary,
)

CONFIG = {"run": {"name": "demo"}, "data": {"dataset": "synthetic", "batch_size": 8}, "model": {"hidden": 16}}
EPOCHS = 2
BATCHES = 20


def started(start_epoch: int = 0, t: float = 1000.0) -> RunStarted:
    return RunStarted(
        run_name="demo",
        device="cpu",
        config=CONFIG,
        num_parameters=1234,
        train_size=160,
        test_size=40,
        steps_per_epoch=BATCHES,
        epochs=EPOCHS,
        start_epoch=start_epoch,
        time=t,
    )


def probe(epoch: int, step: int) -> ProbeRecorded:
    g = torch.Generator().manual_seed(step)
    layer = {
        "membrane": torch.randn(5, 2, 3, generator=g),
        "spikes": (torch.rand(5, 2, 3, generator=g) > 0.7).float(),
        "threshold": 1.0,
        "neurons": [0, 1, 2],
    }
    return ProbeRecorded(epoch=epoch, step=step, samples=[3, 7], labels=[1, 0], layers={"fc1": layer}, time=1.0)


def training_events(epochs: int = EPOCHS, t0: float = 1000.0) -> list[Event]:
    """A plausible short run: steps, an epoch summary and a probe per epoch, then RunFinished."""
    events: list[Event] = [started(t=t0)]
    step, best = 0, 0.0
    for epoch in range(1, epochs + 1):
        for batch in range(1, BATCHES + 1):
            step += 1
            events.append(
                StepMetrics(
                    epoch=epoch,
                    step=step,
                    batch=batch,
                    batches=BATCHES,
                    loss=2.0 / step,
                    accuracy=min(1.0, 0.1 + 0.02 * step),
                    samples_per_s=500.0,
                    lr=1e-3,
                    step_time=0.01,
                    time=t0 + step,
                )
            )
        acc = 0.5 + 0.2 * epoch
        best = max(best, acc)
        events.append(
            EpochMetrics(
                epoch=epoch,
                step=step,
                train_loss=0.5 / epoch,
                train_accuracy=acc - 0.01,
                test_loss=0.6 / epoch,
                test_accuracy=acc,
                spike_rates={"fc1": 0.12, "fc2": 0.05},
                epoch_time=12.3,
                best_accuracy=best,
                time=t0 + step + 0.5,
            )
        )
        events.append(probe(epoch, step))
    events.append(
        RunFinished(
            status="completed",
            epochs_done=epochs,
            steps=step,
            best_accuracy=best,
            final_test_accuracy=acc,
            final_test_loss=0.6 / epochs,
            wall_time=42.0,
            time=t0 + step + 1,
        )
    )
    return events


def write_run(runs_dir: Path, events: list[Event], name: str = "demo") -> RunDir:
    run = RunDir(runs_dir, name, CONFIG)
    writer = RunWriter(run)
    for event in events:
        writer(event)
    writer.close()
    return run


def without_tensors(event: Event) -> dict:
    # The JSON line holds no tensors, so layers (and layer_names, derived from them) do not come back;
    # everything else, path included, must.
    data = event.to_dict()
    data.pop("layer_names")
    return data


# --------------------------------------------------------------------------------------------- writer


def test_writer_produces_complete_directory(tmp_path: Path) -> None:
    events = training_events()
    run = write_run(tmp_path / "runs", events)

    assert run.path.parent == tmp_path / "runs"
    assert run.path.name.startswith("demo-")
    for name in ("config.yaml", "events.jsonl", "summary.json", "probes", "checkpoints"):
        assert (run.path / name).exists(), name
    assert yaml.safe_load((run.path / "config.yaml").read_text()) == CONFIG
    # sort_keys=False: the config keeps its section order
    assert list(yaml.safe_load((run.path / "config.yaml").read_text())) == ["run", "data", "model"]

    back = read_events(run.path)
    assert len(back) == len(events)
    for original, restored in zip(events, back, strict=True):
        assert type(restored) is type(original)
        if isinstance(original, ProbeRecorded):
            assert without_tensors(restored) == without_tensors(original)
        else:
            assert restored == original


def test_summary_status_transitions(tmp_path: Path) -> None:
    events = training_events()
    run = RunDir(tmp_path, "demo", CONFIG)
    writer = RunWriter(run)

    writer(events[0])
    summary = read_summary(run.path)
    assert summary["status"] == "running"
    assert summary["name"] == "demo"
    assert summary["dataset"] == "synthetic"
    assert summary["device"] == "cpu"
    assert summary["epochs"] == EPOCHS
    assert summary["started"] == 1000.0

    for event in events[1:-1]:
        writer(event)
    summary = read_summary(run.path)
    assert summary["status"] == "running"
    assert summary["epochs_done"] == EPOCHS
    assert summary["best_accuracy"] == pytest.approx(0.9)
    assert summary["test_accuracy"] == pytest.approx(0.9)
    assert summary["train_loss"] == pytest.approx(0.25)

    writer(events[-1])
    summary = read_summary(run.path)
    assert summary["status"] == "completed"
    assert summary["wall_time"] == 42.0
    assert not list(run.path.glob(".summary.json.*"))  # atomic writes leave no temp files


def test_summary_failed_then_resumed(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "demo", CONFIG)
    writer = RunWriter(run)
    events = training_events(epochs=1)
    for event in events[:-1]:
        writer(event)
    writer(RunFailed(error="loss became NaN at step 21", reason="nan_loss", epoch=2, step=21, time=2000.0))
    summary = read_summary(run.path)
    assert summary["status"] == "failed"
    assert summary["error"] == "loss became NaN at step 21"

    # Resume in a new process: reopen the folder, keep what the summary knew, status back to running.
    resumed = RunWriter(RunDir.open(run.path))
    resumed(started(start_epoch=1, t=3000.0))
    summary = read_summary(run.path)
    assert summary["status"] == "running"
    assert "error" not in summary
    assert summary["started"] == 1000.0
    assert summary["epochs_done"] == 1
    assert summary["best_accuracy"] == pytest.approx(0.7)


def test_probe_saved_and_loadable(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "demo", CONFIG)
    writer = RunWriter(run)
    event = probe(epoch=1, step=20)
    writer(event)

    assert event.path == "probes/probe-e001-s0000020.npz"
    line = json.loads((run.path / "events.jsonl").read_text().splitlines()[-1])
    assert line["path"] == event.path
    assert line["layer_names"] == ["fc1"]

    data = load_probe(run.path, event.path)
    assert data["samples"] == [3, 7] and data["labels"] == [1, 0] and (data["epoch"], data["step"]) == (1, 20)
    layer = data["layers"]["fc1"]
    assert isinstance(layer["membrane"], np.ndarray)  # numpy arrays: a reader needs no torch
    assert np.array_equal(layer["membrane"], event.layers["fc1"]["membrane"].numpy())
    assert np.array_equal(layer["spikes"], event.layers["fc1"]["spikes"].numpy()) and layer["spikes"].shape == (5, 2, 3)
    assert layer["threshold"] == 1.0 and layer["neurons"] == [0, 1, 2]

    with pytest.raises(RunDirError, match="missing"):
        load_probe(run.path, "probes/probe-e999-s0000000.npz")


def test_probe_files_keep_any_layer_name_bfloat16_and_none(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "demo", CONFIG)
    values = torch.tensor([[[0.5, -1.25]]], dtype=torch.bfloat16)
    layers = {
        "blocks.0/conv": {"membrane": values, "spikes": torch.ones(1, 1, 2, dtype=torch.bool), "threshold": None},
        "meta": {"membrane": torch.zeros(1, 1, 1), "spikes": torch.zeros(1, 1, 1), "threshold": [0.5, 2.0]},
    }
    event = ProbeRecorded(epoch=0, step=0, samples=[1], labels=[2], layers=layers, time=1.0)
    RunWriter(run)(event)
    got = load_probe(run.path, event.path)["layers"]
    assert list(got) == ["blocks.0/conv", "meta"]  # order and names as recorded
    assert got["blocks.0/conv"]["membrane"].dtype == np.float32  # bfloat16 widened exactly
    assert got["blocks.0/conv"]["membrane"].tolist() == [[[0.5, -1.25]]]
    assert got["blocks.0/conv"]["spikes"].dtype == np.bool_ and got["blocks.0/conv"]["threshold"] is None
    assert got["meta"]["threshold"] == [0.5, 2.0]


def test_probes_of_older_runs_in_torch_format_still_load(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "demo", CONFIG)
    event = probe(epoch=2, step=8)
    payload = {"epoch": 2, "step": 8, "samples": [3, 7], "labels": [1, 0], "layers": event.layers}
    torch.save(payload, run.probes_dir / "probe-e002-s0000008.pt")
    assert [p.name for p in probe_files(run.path)] == ["probe-e002-s0000008.pt"]
    data = load_probe(run.path, "probes/probe-e002-s0000008.pt")
    assert torch.equal(data["layers"]["fc1"]["membrane"], event.layers["fc1"]["membrane"])


def test_a_damaged_probe_file_is_one_line(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "demo", CONFIG)
    (run.probes_dir / "probe-e001-s0000001.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(RunDirError, match=r"cannot read probe .*probe-e001-s0000001\.npz") as info:
        load_probe(run.path, "probes/probe-e001-s0000001.npz")
    assert "\n" not in str(info.value)


def test_probes_read_without_torch(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "demo", CONFIG)
    event = probe(epoch=1, step=3)
    RunWriter(run)(event)
    code = (
        "import sys; from snnlab.runs import load_probe; "
        f"d = load_probe({str(run.path)!r}, {event.path!r}); "
        "print(d['layers']['fc1']['membrane'].shape, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["(5,", "2,", "3)", "False"]


def test_probes_are_bounded(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "demo", CONFIG)
    writer = RunWriter(run, max_probes=5)
    for step in range(1, 13):
        writer(probe(epoch=step // 4, step=step))
    kept = sorted(p.name for p in run.probes_dir.glob("*.npz"))
    assert len(kept) == 5
    # The first probe (the untrained reference) survives; the rest are the newest.
    assert "probe-e000-s0000001.npz" in kept
    assert "probe-e003-s0000012.npz" in kept
    assert "probe-e000-s0000002.npz" not in kept


def test_truncated_last_line_tolerated(tmp_path: Path) -> None:
    run = write_run(tmp_path, training_events())
    path = run.path / "events.jsonl"
    complete = len(read_events(path))
    with open(path, "a") as f:
        f.write('{"event": "step", "epoch": 3, "st')  # a writer caught mid-line
    assert len(read_events(path)) == complete

    # Reopening for resume cuts the partial line, so the next event starts on its own line.
    writer = RunWriter(RunDir.open(run.path))
    writer(started(start_epoch=2, t=5000.0))
    back = read_events(path)
    assert len(back) == complete + 1
    assert isinstance(back[-1], RunStarted) and back[-1].start_epoch == 2


def test_follow_events_sees_appended_events(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "demo", CONFIG)
    events = training_events(epochs=1)
    writer = RunWriter(run)
    writer(events[0])
    done = threading.Event()
    seen: list[Event] = []

    def follow() -> None:
        for event in follow_events(run.path, poll=0.01, stop=done.is_set):
            seen.append(event)
            if isinstance(event, RunFinished):
                done.set()

    thread = threading.Thread(target=follow)
    thread.start()
    for event in events[1:]:
        writer(event)
    thread.join(timeout=30)  # returns at the RunFinished it reads
    done.set()
    assert not thread.is_alive()
    assert [type(e) for e in seen] == [type(e) for e in events]


# --------------------------------------------------------------------------------------------- listing


def test_list_runs_newest_first_and_corrupt_summary(tmp_path: Path) -> None:
    old = write_run(tmp_path, training_events(t0=1000.0), name="old")
    new = write_run(tmp_path, training_events(t0=9000.0), name="new")
    broken = write_run(tmp_path, training_events(t0=5000.0), name="broken")
    (broken.path / "summary.json").write_text("{not json")
    (tmp_path / "not-a-run").mkdir()

    infos = list_runs(tmp_path)
    by_path = {info.path: info for info in infos}
    assert set(by_path) == {old.path, new.path, broken.path}
    assert by_path[broken.path].status == "unreadable"
    completed = [info for info in infos if info.status == "completed"]
    assert [info.path for info in completed] == [new.path, old.path]
    info = by_path[new.path]
    assert isinstance(info, RunInfo)
    assert info.dataset == "synthetic" and info.epochs_done == EPOCHS and info.epochs == EPOCHS
    assert info.best_accuracy == pytest.approx(0.9) and info.wall_time == 42.0

    table = runs_table(infos)
    out = io.StringIO()
    from rich.console import Console

    Console(file=out, width=120).print(table)
    assert new.path.name in out.getvalue() and "unreadable" in out.getvalue()
    assert list_runs(tmp_path / "missing") == []


def test_find_run_resolution_and_errors(tmp_path: Path) -> None:
    a = RunDir(tmp_path, "alpha", CONFIG, now=0)
    b = RunDir(tmp_path, "alps", CONFIG, now=0)

    assert find_run(tmp_path, str(a.path)) == a.path  # a path
    assert find_run(tmp_path, a.path.name) == a.path  # an exact folder name
    assert find_run(tmp_path, "alph") == a.path  # a unique prefix
    with pytest.raises(RunNotFoundError, match="matches 2 runs") as error:
        find_run(tmp_path, "al")
    assert a.path.name in str(error.value) and b.path.name in str(error.value)
    with pytest.raises(RunNotFoundError, match="no run 'zeta'"):
        find_run(tmp_path, "zeta")


def test_same_second_runs_get_unique_folders(tmp_path: Path) -> None:
    first = RunDir(tmp_path, "demo", CONFIG, now=0)
    second = RunDir(tmp_path, "demo", CONFIG, now=0)
    assert second.path.name == first.path.name + "-2"


def test_unwritable_runs_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(RunDirError, match="cannot create run directory .*set run.runs_dir") as error:
        RunDir(blocker / "runs", "demo", CONFIG)
    assert "\n" not in str(error.value)
    with pytest.raises(RunDirError):
        RunDir.open(tmp_path / "nowhere")


def test_metric_history_and_resume(tmp_path: Path) -> None:
    events = training_events()
    history = metric_history(events)
    assert history["steps"]["step"] == list(range(1, 2 * BATCHES + 1))
    assert history["epochs"]["epoch"] == [1, 2]
    assert history["epochs"]["test_accuracy"] == pytest.approx([0.7, 0.9])
    assert history["epochs"]["spike_rates"] == {"fc1": [0.12, 0.12], "fc2": [0.05, 0.05]}

    # Resuming after epoch 1 redoes epoch 2: its old entries must not be plotted twice.
    resumed = events[:-1] + [started(start_epoch=1, t=9000.0)]
    history = metric_history(resumed)
    assert history["epochs"]["epoch"] == [1]
    assert max(history["steps"]["epoch"]) == 1
    assert history["epochs"]["spike_rates"] == {"fc1": [0.12], "fc2": [0.05]}


# --------------------------------------------------------------------------------------------- console


def test_console_sink_plain_lines() -> None:
    out = io.StringIO()
    sink = ConsoleSink(stream=out)
    for event in training_events():
        sink(event)
    text = out.getvalue()
    assert "run demo on cpu" in text
    assert (
        "epoch 1/2  train loss 0.500 acc 69.0%  test loss 0.600 acc 70.0%  spikes [fc1 0.12, fc2 0.05]  12.3s" in text
    )
    assert "epoch 1/2  batch 2/20" in text
    # ~10% of an epoch per progress line: 9 per epoch, plus the start line and two epoch lines
    assert len(text.splitlines()) == 1 + 2 * 9 + 2
    assert "\x1b" not in text


def test_console_sink_quiet_and_rank() -> None:
    quiet, other_rank = io.StringIO(), io.StringIO()
    sinks = [ConsoleSink(stream=quiet, quiet=True), ConsoleSink(stream=other_rank, rank=1)]
    for event in training_events():
        for sink in sinks:
            sink(event)
    assert "batch 2/20" not in quiet.getvalue() and "epoch 2/2" in quiet.getvalue()
    assert other_rank.getvalue() == ""


def test_console_sink_progress_bar_on_tty() -> None:
    out = io.StringIO()
    sink = ConsoleSink(stream=out, tty=True)
    for event in training_events():
        sink(event)
    assert sink._progress is None  # stopped by RunFinished
    assert "epoch 2/2  train loss" in out.getvalue()
    assert "samples/s" in out.getvalue()


def test_print_summary_has_accuracy_and_plots() -> None:
    out = io.StringIO()
    print_summary(training_events(), stream=out)
    text = out.getvalue()
    assert "best test accuracy" in text and "90.0%" in text
    assert "completed" in text and "cpu" in text
    assert "train loss per step" in text and "test accuracy (%)" in text
    assert "└" in text and re.search("[\u2801-\u28ff]", text)  # an axis and braille dots: a plot was drawn
    assert "\x1b" not in text  # not a terminal: no colors


def test_ascii_curves_without_data() -> None:
    text = ascii_curves({"steps": {"step": [], "loss": []}, "epochs": {"epoch": [], "test_accuracy": []}})
    assert "no steps recorded yet" in text and "no epoch finished yet" in text


def test_show_run(tmp_path: Path) -> None:
    run = write_run(tmp_path, training_events())
    out = io.StringIO()
    show_run(run.path, out)
    text = out.getvalue()
    assert run.path.name in text
    assert "dataset: synthetic" in text
    assert "90.0%" in text and "test accuracy (%)" in text


# --------------------------------------------------------------------------------------------- damaged runs


def snnlab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snnlab", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def with_lines(run: RunDir, edit: dict[int, dict]) -> None:
    """Rewrite some lines of a run's events.jsonl: ``{line index: {field: new value}}``."""
    lines = (run.path / "events.jsonl").read_text().splitlines()
    for i, changes in edit.items():
        lines[i] = json.dumps({**json.loads(lines[i]), **changes})
    (run.path / "events.jsonl").write_text("\n".join(lines) + "\n")


def test_wrong_typed_values_are_skipped_and_counted(tmp_path: Path) -> None:
    events = training_events()
    run = write_run(tmp_path, events)
    # A loss of "NaN" and a speed of "fast" are strings, not numbers; "high" is no accuracy.
    with_lines(run, {1: {"loss": "NaN"}, 2: {"samples_per_s": "fast"}, len(events) - 1: {"best_accuracy": "high"}})
    bad = BadLines()
    back = read_events(run.path, bad)
    assert len(back) == len(events) - 3 and bad.count == 3 and "loss" in (bad.first_error or "")
    assert not any(isinstance(e, RunFinished) for e in back)

    out = io.StringIO()
    assert show_run(run.path, out) == []
    assert "(3 bad lines in events.jsonl skipped" in out.getvalue() and "90.0%" in out.getvalue()
    cli = snnlab("runs", "show", run.path.name, "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert cli.returncode == 0 and cli.stderr == "" and "3 bad lines in events.jsonl skipped" in cli.stdout


def test_a_real_nan_loss_is_an_event_not_a_bad_line(tmp_path: Path) -> None:
    # json writes float NaN and infinity as bare NaN / Infinity; a diverged test loss is a fact to show.
    events = training_events()
    events[-3].test_loss = float("nan")  # the last EpochMetrics
    events[1].samples_per_s = float("inf")
    run = write_run(tmp_path, events)
    assert "NaN" in (run.path / "events.jsonl").read_text()
    bad = BadLines()
    back = read_events(run.path, bad)
    assert bad.count == 0 and len(back) == len(events)
    assert math.isnan(back[-3].test_loss) and math.isinf(back[1].samples_per_s)
    out = io.StringIO()
    show_run(run.path, out)
    assert "final test loss" in out.getvalue() and "bad line" not in out.getvalue()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda run: (run / "events.jsonl").unlink(), "no events file"),
        (lambda run: ((run / "events.jsonl").unlink(), (run / "events.jsonl").mkdir()), "events.jsonl: Is a directory"),
        (lambda run: (run / "config.yaml").write_text("run: [\n"), "config.yaml"),
        (lambda run: ((run / "config.yaml").unlink(), (run / "config.yaml").mkdir()), "config.yaml: Is a directory"),
    ],
    ids=["no events.jsonl", "events.jsonl is a folder", "bad config.yaml", "config.yaml is a folder"],
)
def test_runs_show_on_a_damaged_run_shows_what_it_can_and_ends_in_one_line(tmp_path: Path, damage, message) -> None:
    run = write_run(tmp_path, training_events())
    damage(run.path)
    out = snnlab("runs", "show", run.path.name, "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.splitlines()
    assert line.startswith("snnlab: error: ") and message in line
    assert run.path.name in out.stdout  # the header, and whatever else could be read, still shows
    if "config.yaml" in message:
        assert "90.0%" in out.stdout  # the metrics do not depend on the config


def test_runs_show_into_a_reader_that_stops_early_exits_quietly(tmp_path: Path) -> None:
    # A config longer than a pipe's buffer: `runs show` is still writing when `head` has gone.
    run = RunDir(tmp_path, "long", {f"key{i}": i for i in range(20_000)})
    with RunWriter(run) as writer:
        for event in training_events():
            writer(event)
    command = f"{shlex.quote(sys.executable)} -m snnlab runs show {run.path.name} --runs-dir ."
    out = subprocess.run(["bash", "-c", f"{command} | head -1; exit ${{PIPESTATUS[0]}}"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.stdout.startswith(run.path.name)
    assert out.stderr == ""  # no traceback, no "Exception ignored" at exit
    assert out.returncode == 1  # as click and Python's docs end on a closed pipe


def test_runs_inside_a_sweep_are_found_by_name(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep-demo-20261130-120000"
    sweep.mkdir()
    (sweep / "sweep.yaml").write_text("grid: {}\n")
    inner = RunDir(sweep, "demo-lr_0.001-seed1", CONFIG, now=0)
    other = RunDir(sweep, "demo-lr_0.002-seed1", CONFIG, now=0)
    top = RunDir(tmp_path, "demo", CONFIG, now=0)

    assert find_run(tmp_path, inner.path.name) == inner.path  # its exact name
    assert find_run(tmp_path, "demo-lr_0.001") == inner.path  # a unique prefix
    assert find_run(tmp_path, f"{sweep.name}/{other.path.name}") == other.path  # its path under runs_dir
    assert find_run(tmp_path, top.path.name) == top.path
    with pytest.raises(RunNotFoundError, match="matches 2 runs") as error:
        find_run(tmp_path, "demo-lr")
    assert f"{sweep.name}/{inner.path.name}" in str(error.value)
    cli = snnlab("runs", "show", inner.path.name, "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert cli.returncode == 0 and str(inner.path) in cli.stdout


def test_events_file_that_is_a_folder_stops_the_follower_with_one_line(tmp_path: Path) -> None:
    run = write_run(tmp_path, training_events())
    (run.path / "events.jsonl").unlink()
    (run.path / "events.jsonl").mkdir()
    with pytest.raises(RunDirError, match="Is a directory"):
        next(follow_events(run.path, poll=0, stop=lambda: True))


# --------------------------------------------------------------------------------------------- decoders


def with_decoder(events: list[Event], decoder: str) -> list[Event]:
    """The run of ``events`` as if its config had named ``decoder``."""
    first = events[0]
    assert isinstance(first, RunStarted)
    config = {**CONFIG, "train": {"decoder": decoder}}
    return [dataclasses.replace(first, config=config), *events[1:]]


def test_every_listing_says_which_decoder_made_the_accuracy(tmp_path: Path) -> None:
    run = write_run(tmp_path, with_decoder(training_events(), "rate_first"))
    assert json.loads((run.path / "summary.json").read_text())["decoder"] == "rate_first"
    (info,) = list_runs(tmp_path)
    assert info.decoder == "rate_first"
    listing = snnlab("runs", "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    row = listing.stdout.split(run.path.name)[1]  # on 80 columns the decoder may go under the number
    assert "90.0%" in row and "rate_first" in row
    shown = snnlab("runs", "show", str(run.path), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = {" ".join(line.split()[:3]): line.split()[3:] for line in shown.stdout.splitlines() if line.strip()}
    assert rows["best test accuracy"] == rows["final test accuracy"] == ["90.0%", "(rate_first)"]


def test_a_long_run_name_at_80_columns_keeps_its_name_accuracy_decoder_and_time_whole(tmp_path: Path) -> None:
    from rich.console import Console

    run = write_run(tmp_path, with_decoder(training_events(), "rate_first"), name="spikingjelly-lif-fc-long")
    for width, dataset_shown in ((80, False), (120, True)):
        out = io.StringIO()
        Console(file=out, width=width).print(runs_table(list_runs(tmp_path), width))
        text = out.getvalue()
        assert run.path.name in text and "90.0%" in text and "rate_first" in text and "…" not in text
        assert ("dataset" in text) == dataset_shown
        assert max(len(line.rstrip()) for line in text.splitlines()) <= width


def test_an_old_run_without_a_decoder_reads_as_the_old_default_rate(tmp_path: Path) -> None:
    run = write_run(tmp_path, training_events())  # CONFIG names no decoder, as before train.decoder
    summary = json.loads((run.path / "summary.json").read_text())
    summary.pop("decoder")  # written before summary.json named it
    (run.path / "summary.json").write_text(json.dumps(summary))
    (info,) = list_runs(tmp_path)
    assert info.decoder == "rate"
    out = io.StringIO()
    assert show_run(run.path, out) == []
    assert "90.0% (rate)" in out.getvalue()
    # An old summary with a config that names another decoder: the config says what measured it.
    (run.path / "config.yaml").write_text(yaml.safe_dump({**CONFIG, "train": {"decoder": "latency"}}))
    (info,) = list_runs(tmp_path)
    assert info.decoder == "latency"
