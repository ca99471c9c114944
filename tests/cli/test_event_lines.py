"""Whatever events.jsonl holds, the readers show what they can and count what they skip.

Generated lines are valid events (with extreme but legal values: NaN losses, 2**63 - 1 steps, markup in
names) and valid events broken on purpose: a field of the wrong type, a number written as a string, a
missing key, an unknown kind, a huge number, a truncated line, JSON that is not an object, random bytes.
Each is fed to every reader: ``runs show`` (its rendering function), the lab's metrics and status line,
the follower behind ``snnlab watch``, and a sweep's trial metrics.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnlab.console import show_run
from snnlab.engine.events import BadLines, Event, parse_event_line
from snnlab.runs import follow_events, metric_history, read_events
from snnlab.sweep import trial_metrics
from snnlab.tui.metrics import RunMetrics
from snnlab.tui.widgets.plotting import render_plot
from snnlab.tui.widgets.status_bar import status_text
from snnlab.tui.widgets.training_pane import accuracy_series, loss_series, progress_line, summary_table

SETTINGS = settings(
    max_examples=300,
    derandomize=True,  # the same examples on every run: a failure here is a bug, not bad luck
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ------------------------------------------------------------------------------------------- valid events

counts = st.one_of(st.integers(0, 100), st.integers(0, 2**63 - 1))
fractions = st.floats(0.0, 1.0)
# NaN and the infinities included (json writes them; a diverged test loss is one), and the largest and
# smallest floats, whose differences and sums overflow in whatever draws them.
reals = st.one_of(st.floats(), st.sampled_from([1.7e308, -1.7e308, 5e-324, -0.0, math.nan, math.inf]))
timestamps = st.one_of(st.floats(1.7e9, 1.8e9), st.floats(allow_nan=False, allow_infinity=False))
texts = st.one_of(st.text(max_size=12), st.sampled_from(["[/]", "[bold]x", "[red", "]", "%s", "{}"]))
configs = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"data": st.one_of(st.none(), texts, st.fixed_dictionaries({"dataset": texts}))}),
    st.dictionaries(texts, st.one_of(st.none(), st.integers(), texts), max_size=3),
)


def event_dict(kind: str, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"event": st.just(kind), "time": timestamps, **fields})


valid_events = st.one_of(
    event_dict(
        "run_started",
        run_name=texts,
        device=texts,
        config=configs,
        num_parameters=counts,
        train_size=counts,
        test_size=counts,
        steps_per_epoch=counts,
        epochs=counts,
        start_epoch=counts,
    ),
    event_dict(
        "step",
        epoch=counts,
        step=counts,
        batch=counts,
        batches=counts,
        loss=reals,
        accuracy=fractions,
        samples_per_s=reals,
        lr=reals,
        step_time=reals,
    ),
    event_dict(
        "epoch",
        epoch=counts,
        step=counts,
        train_loss=reals,
        train_accuracy=fractions,
        test_loss=reals,
        test_accuracy=fractions,
        spike_rates=st.dictionaries(texts, reals, max_size=3),
        epoch_time=reals,
        best_accuracy=fractions,
    ),
    event_dict(
        "probe",
        epoch=counts,
        step=counts,
        samples=st.lists(counts, max_size=3),
        labels=st.lists(counts, max_size=3),
        layer_names=st.lists(texts, max_size=3),
        path=st.one_of(st.none(), texts),
    ),
    event_dict(
        "run_finished",
        status=st.sampled_from(["completed", "stopped"]),
        epochs_done=counts,
        steps=counts,
        best_accuracy=fractions,
        final_test_accuracy=st.one_of(st.none(), fractions),
        final_test_loss=st.one_of(st.none(), reals),
        wall_time=reals,
    ),
    event_dict(
        "run_failed", error=texts, reason=texts, epoch=counts, step=counts, wall_time=st.one_of(st.none(), reals)
    ),
)

# ------------------------------------------------------------------------------------------- broken events

# Per event kind, some fields without a default and the kind of value each holds; for each kind of value,
# values it must refuse: a number written as a string, a container, null, a boolean, out of range.
FIELDS = {
    "run_started": {"run_name": "text", "device": "text", "config": "object", "num_parameters": "count",
                    "epochs": "count"},
    "step": {"epoch": "count", "step": "count", "loss": "real", "accuracy": "fraction", "samples_per_s": "real"},
    "epoch": {"epoch": "count", "test_loss": "real", "test_accuracy": "fraction", "spike_rates": "rates",
              "best_accuracy": "fraction"},
    "probe": {"epoch": "count", "step": "count", "samples": "counts", "labels": "counts"},
    "run_finished": {"status": "status", "epochs_done": "count", "best_accuracy": "fraction", "wall_time": "real"},
    "run_failed": {"error": "text", "reason": "text"},
}  # fmt: skip
WRONG = {
    "count": [-1, 2**63, 10**400, 1.5, 1.0, "3", True, None, [1]],
    "fraction": [1.0000001, -0.5, math.nan, math.inf, "0.5", True, None],
    "real": ["NaN", "nan", "Infinity", "fast", "1.5", "", True, None, [1.0], {"a": 1}],
    "text": [3, 1.5, None, True, ["x"], {"a": "b"}],
    "object": [[], "x", 3, None],
    "rates": [[0.1], {"fc1": "0.1"}, {"fc1": None}, {"fc1": True}, "x"],
    "counts": [[-1], ["1"], [1.5], {"a": 1}, "1", None],
    "status": ["done", "", None, 1],
}


@st.composite
def broken_lines(draw: st.DrawFn) -> bytes:
    """A line that must not come back as an event."""
    data = draw(valid_events)
    key, kind = draw(st.sampled_from(sorted(FIELDS[data["event"]].items())))
    how = draw(st.sampled_from(["wrong value", "missing", "unknown kind", "bad time", "truncated", "not an object",
                                "bytes"]))  # fmt: skip
    if how == "wrong value":
        data[key] = draw(st.sampled_from(WRONG[kind]))
    elif how == "missing":
        del data[key]
    elif how == "unknown kind":
        data["event"] = draw(st.sampled_from(["steps", "", "STEP", "run_resumed", None, 3]))
    elif how == "bad time":
        if draw(st.booleans()):
            del data["time"]
        else:
            data["time"] = draw(st.sampled_from([math.inf, -math.inf, math.nan, "1700000000", None]))
    elif how == "truncated":
        text = json.dumps(data)
        return text[: draw(st.integers(1, len(text) - 1))].encode()
    elif how == "not an object":
        return json.dumps(draw(st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text(),
                                         st.none(), st.just([data])))).encode()  # fmt: skip
    else:
        raw = draw(st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and b.strip()))
        return b"\xff" + raw  # never UTF-8, so never JSON
    return json.dumps(data).encode()


def encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


lines = st.lists(
    st.one_of(valid_events.map(lambda d: (encode(d), True)), broken_lines().map(lambda b: (b, False))),
    max_size=12,
)


def same(event: Event, data: dict[str, Any]) -> bool:
    """The event holds what the line said (NaN equal to NaN); fields the line left out keep their defaults."""
    back = json.loads(json.dumps(event.to_dict()))
    written = json.loads(json.dumps(data))
    shared = back.keys() & written.keys()
    return json.dumps({k: back[k] for k in shared}, sort_keys=True) == json.dumps(
        {k: written[k] for k in shared}, sort_keys=True
    )


# ------------------------------------------------------------------------------------------- the property


@SETTINGS
@given(lines=lines, tail=st.binary(max_size=20).filter(lambda b: b"\n" not in b))
def test_every_reader_survives_any_events_file_and_counts_the_bad_lines(lines: list[tuple[bytes, bool]],
                                                                        tail: bytes) -> None:  # fmt: skip
    good = sum(valid for _, valid in lines)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run-20261130-120000"
        run.mkdir()
        (run / "config.yaml").write_text(yaml.safe_dump({"run": {"name": "run"}}))
        # A trailing partial line is a live run caught mid-write: neither an event nor a bad line.
        (run / "events.jsonl").write_bytes(b"".join(line + b"\n" for line, _ in lines) + tail)

        for line, valid in lines:
            event = parse_event_line(line)
            assert (event is not None) == valid, line
            if valid:
                assert same(event, json.loads(line))

        bad = BadLines()
        events = read_events(run, bad)
        assert len(events) == good and bad.count == len(lines) - good

        followed = BadLines()
        as_json = [json.dumps(e.to_dict()) for e in events]  # compared as text: NaN == NaN there
        assert [json.dumps(e.to_dict()) for e in follow_events(run, poll=0, stop=lambda: True, bad=followed)] == as_json
        assert followed.count == bad.count

        out = io.StringIO()
        assert show_run(run, out) == []
        assert (f"{bad.count} bad line" in out.getvalue()) == (bad.count > 0)
        metric_history(events)

        metrics = RunMetrics.of_run(run)
        assert metrics.bad_lines.count == bad.count
        status_text(metrics)
        progress_line(metrics)
        summary_table(metrics)
        for series in (loss_series(metrics), accuracy_series(metrics)):
            render_plot(series, 60, 12, x_label="step")
        metrics.csv_rows()
        metrics.spike_rates()
        metrics.final_spike_rate()
        trial_metrics(run)


def test_the_cli_shows_a_run_with_every_kind_of_bad_line(tmp_path: Path) -> None:
    started = {"event": "run_started", "time": 1.7e9, "run_name": "[/]x", "device": "[red", "config": {},
               "num_parameters": 10, "train_size": 5, "test_size": 5, "steps_per_epoch": 2, "epochs": 1}  # fmt: skip
    step = {"event": "step", "time": 1.7e9 + 1, "epoch": 1, "step": 1, "batch": 1, "batches": 2, "loss": math.nan,
            "accuracy": 0.5, "samples_per_s": math.inf, "lr": 1e-3, "step_time": 0.0}  # fmt: skip
    bad = [
        {**step, "loss": "NaN"},
        {**step, "samples_per_s": "fast"},
        {k: v for k, v in step.items() if k != "loss"},
        {**step, "event": "run_resumed"},
        {**step, "step": 10**400},
        {**step, "time": math.nan},
        {**step, "accuracy": True},
    ]
    lines = [json.dumps(started), json.dumps(step), *map(json.dumps, bad), json.dumps(step)[:30], "[1, 2]", "null"]
    run = tmp_path / "run-20261130-120000"
    run.mkdir()
    (run / "events.jsonl").write_bytes("\n".join(lines).encode() + b"\n\xff\xfe{\n")
    out = subprocess.run([sys.executable, "-m", "snnlab", "runs", "show", run.name, "--runs-dir", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert "(11 bad lines in events.jsonl skipped" in out.stdout
    assert "[red" in out.stdout  # the device, shown as written
