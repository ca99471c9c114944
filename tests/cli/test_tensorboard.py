"""TensorBoard logging (`--tensorboard`, `run.loggers: [tensorboard]`): what a run and a sweep write, read back
with TensorBoard's own reader and checked against the run's events.jsonl; a resume; torchrun; and the one-line
error when the tensorboard package is missing."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from snnlab.history import RunHistory
from snnlab.runs import read_events
from tests.cli.test_cli import only_run, snnlab, write
from tests.test_distributed import launch

INSTALL_HINT = 'snnlab: error: TensorBoard logging needs the tensorboard package: pip install "snnlab[tensorboard]"'


def read_tensorboard(folder: Path) -> EventAccumulator:
    """Every event file in ``folder``, as TensorBoard itself loads them (purges of resumed sessions applied)."""
    board = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    board.Reload()
    return board


def series(board: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in board.Scalars(tag)]


def f32(value: float) -> float:
    """TensorBoard stores a scalar as a 32-bit float."""
    return float(np.float32(value))


def expected_series(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Per tag, what TensorBoard should show: the run's events.jsonl folded the way `snnlab runs show` folds it
    (an epoch redone after a resume counts once, with its new values)."""
    history = RunHistory.of(read_events(run), step_points=None)
    columns = history.columns()
    steps, epochs = columns["steps"], columns["epochs"]
    out = {
        "train/loss": list(zip(steps["step"], steps["loss"], strict=True)),
        "train/accuracy": list(zip(steps["step"], steps["accuracy"], strict=True)),
        "train/lr": list(zip(steps["step"], steps["lr"], strict=True)),
        "test/loss": list(zip(epochs["step"], epochs["test_loss"], strict=True)),
        "test/accuracy": list(zip(epochs["step"], epochs["test_accuracy"], strict=True)),
    }
    for layer, rates in epochs["spike_rates"].items():
        out[f"spikes/{layer}"] = list(zip(epochs["step"], rates, strict=True))
    return {tag: [(int(step), f32(value)) for step, value in points] for tag, points in out.items()}


def config_texts(folder: Path) -> list[tuple[int, dict]]:
    """The config text of each session: (step, the YAML it holds, read back). Read as TensorBoard's server reads
    text (EventAccumulator purges only scalars, histograms, images and audio after a resume; this one all)."""
    board = plugin_event_accumulator.EventAccumulator(str(folder), size_guidance={"tensors": 0})
    board.Reload()
    texts = []
    for event in board.Tensors("config/text_summary"):
        text = event.tensor_proto.string_val[0].decode()
        texts.append((event.step, yaml.safe_load("\n".join(line[4:] for line in text.splitlines()))))
    return texts


@pytest.mark.slow  # trains in a subprocess
def test_a_run_logs_its_metrics_and_a_resume_appends_with_the_redone_epoch_once(tmp_path, tiny_config_dict):
    write(tmp_path, tiny_config_dict, "tiny.yaml")
    out = snnlab("run", "tiny.yaml", "--tensorboard", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = only_run(tmp_path)
    board = read_tensorboard(run / "tensorboard")

    # 2 epochs of 4 batches (200 samples, batch 50), every step logged; two spiking layers.
    want = expected_series(run)
    assert set(board.Tags()["scalars"]) == set(want) == {
        "train/loss", "train/accuracy", "train/lr", "test/loss", "test/accuracy", "spikes/fc1", "spikes/fc2",
    }  # fmt: skip
    assert [step for step, _ in want["train/loss"]] == list(range(1, 9))
    assert [step for step, _ in want["test/accuracy"]] == [4, 8]
    for tag, points in want.items():
        assert series(board, tag) == points, tag
    # Each point carries the time of its event.
    step_times = [
        e["time"] for e in map(json.loads, (run / "events.jsonl").read_text().splitlines()) if e["event"] == "step"
    ]
    assert [e.wall_time for e in board.Scalars("train/loss")] == step_times
    # The config as YAML text, the same as config.yaml, and it says that TensorBoard is on.
    ((step, config),) = config_texts(run / "tensorboard")
    assert step == 0 and config == yaml.safe_load((run / "config.yaml").read_text())
    assert config["run"]["loggers"] == ["tensorboard"]

    # A resume keeps logging (the run's own config asks for it now) into the same folder, in a file of its own.
    kept = tmp_path / "last-after-epoch-2.pt"
    shutil.copy(run / "checkpoints" / "last.pt", kept)
    out = snnlab("run", "--resume", str(run), "--set", "train.epochs=3", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    # Continued once more from the epoch-2 checkpoint with another learning rate: epoch 3 is trained again, and
    # TensorBoard shows its steps once, with the values of this last session (as events.jsonl's fold does).
    shutil.copy(kept, run / "checkpoints" / "last.pt")
    out = snnlab("run", "--resume", str(run), "--set", "train.epochs=3", "--set", "train.lr=0.001", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 3
    board = read_tensorboard(run / "tensorboard")
    want = expected_series(run)
    assert [step for step, _ in want["train/loss"]] == list(range(1, 13))
    assert [value for _, value in want["train/lr"][-4:]] == [f32(0.001)] * 4
    for tag, points in want.items():
        assert series(board, tag) == points, tag
    texts = config_texts(run / "tensorboard")
    assert [step for step, _ in texts] == [0, 9] and texts[-1][1]["train"]["lr"] == 0.001


def test_unknown_logger_names_are_one_line_errors_listing_the_valid_ones(tmp_path, tiny_config_dict):
    write(tmp_path, tiny_config_dict, "tiny.yaml")
    out = snnlab("run", "tiny.yaml", "--set", "run.loggers=[tensorbord]", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "snnlab: error: tiny.yaml: run.loggers.0: must be one of tensorboard; "
        "did you mean 'tensorboard'? (got 'tensorbord')"
    ]
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # trains in a subprocess
def test_a_sweep_logs_each_run_and_writes_an_hparams_table(tmp_path, tiny_config_dict):
    tiny_config_dict["train"]["epochs"] = 1
    write(tmp_path, tiny_config_dict, "tiny.yaml")
    args = ["sweep", "tiny.yaml", "--grid", "model.neuron.surrogate=atan,fast_sigmoid", "--grid", "train.lr=0.002"]
    out = snnlab(*args, "--workers", "2", "--tensorboard", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (sweep,) = (tmp_path / "runs").iterdir()
    run_dirs = sorted(p for p in sweep.iterdir() if (p / "events.jsonl").is_file())
    assert len(run_dirs) == 2
    assert sorted(p.name for p in (sweep / "hparams").iterdir()) == [p.name for p in run_dirs]

    surrogates = []
    for run in run_dirs:
        board = read_tensorboard(run / "tensorboard")
        for tag, points in expected_series(run).items():
            assert series(board, tag) == points, (run.name, tag)

        # The run's row of the table: its grid values, and its final metrics as summary.json has them.
        table = read_tensorboard(sweep / "hparams" / run.name)
        start = HParamsPluginData.FromString(table.SummaryMetadata("_hparams_/session_start_info").plugin_data.content)
        hparams = start.session_start_info.hparams
        assert set(hparams) == {"model.neuron.surrogate", "train.lr"}
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert hparams["model.neuron.surrogate"].string_value == config["model"]["neuron"]["surrogate"]
        assert hparams["train.lr"].number_value == 0.002
        surrogates.append(config["model"]["neuron"]["surrogate"])
        summary = json.loads((run / "summary.json").read_text())
        assert series(table, "final/test_accuracy") == [(0, f32(summary["test_accuracy"]))]
        assert series(table, "final/test_loss") == [(0, f32(summary["test_loss"]))]
        assert series(table, "final/best_test_accuracy") == [(0, f32(summary["best_accuracy"]))]
        # Every row names the whole experiment: both metrics, and the values each key takes.
        experiment = HParamsPluginData.FromString(table.SummaryMetadata("_hparams_/experiment").plugin_data.content)
        domains = {
            info.name: [v.string_value for v in info.domain_discrete.values]
            for info in experiment.experiment.hparam_infos
        }
        assert domains["model.neuron.surrogate"] == ["atan", "fast_sigmoid"]
        assert {m.name.tag for m in experiment.experiment.metric_infos} == {
            "final/test_accuracy", "final/test_loss", "final/best_test_accuracy",
        }  # fmt: skip
    assert sorted(surrogates) == ["atan", "fast_sigmoid"]
    # The table's folder is not taken for a run.
    assert f"{sweep.name}  2 runs" in snnlab("runs", cwd=tmp_path).stdout


@pytest.mark.slow  # torchrun with two processes
def test_under_torchrun_only_rank_0_writes(tmp_path, tiny_config_dict):
    write(tmp_path, tiny_config_dict, "tiny.yaml")
    out = launch(["run", "tiny.yaml", "-q", "--tensorboard"], tmp_path, nproc=2, timeout=240)
    assert out.returncode == 0, out.stderr + out.stdout
    run = only_run(tmp_path)
    assert len(list((run / "tensorboard").iterdir())) == 1  # one writer: rank 0's
    board = read_tensorboard(run / "tensorboard")
    for tag, points in expected_series(run).items():
        assert series(board, tag) == points, tag


# A Python that cannot import tensorboard, as on an install without the extra.
WITHOUT_TENSORBOARD = """
import sys

class NoTensorBoard:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoTensorBoard())
sys.argv = ["snnlab", *sys.argv[1:]]
from snnlab.cli import main
main()
"""


@pytest.mark.slow  # the same command trains once without TensorBoard
@pytest.mark.parametrize(
    "args",
    [
        ["run", "tiny.yaml", "--tensorboard"],
        ["run", "tiny.yaml", "--set", "run.loggers=[tensorboard]"],
        ["sweep", "tiny.yaml", "--grid", "train.lr=0.001,0.002", "--tensorboard"],
    ],
    ids=["run-flag", "run-config", "sweep"],
)
def test_without_the_package_asking_for_tensorboard_is_one_line_saying_what_to_install(
    tmp_path, tiny_config_dict, args
):
    write(tmp_path, tiny_config_dict, "tiny.yaml")
    out = subprocess.run([sys.executable, "-c", WITHOUT_TENSORBOARD, *args], cwd=tmp_path, capture_output=True,
                         text=True, timeout=240)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.splitlines() == [INSTALL_HINT]
    assert not (tmp_path / "runs").exists()  # nothing started
    # The same Python trains fine when TensorBoard is not asked for.
    if args[0] == "run" and args[-1] == "--tensorboard":
        fine = subprocess.run([sys.executable, "-c", WITHOUT_TENSORBOARD, "run", "tiny.yaml", "-q"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=240)  # fmt: skip
        assert fine.returncode == 0, fine.stderr
        assert not (only_run(tmp_path) / "tensorboard").exists()


def test_the_sink_modules_import_without_tensorboard_or_torch():
    # `snnlab run` checks run.loggers before it trains, and the lab's worker imports these: neither may cost more.
    code = (
        "import sys, snnlab.interop.loggers, snnlab.interop.tensorboard\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorboard', 'torch'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_hparams_row_holds_the_grid_values_the_seed_and_the_final_metrics(tmp_path, tiny_config_dict):
    from snnlab.engine.events import EpochMetrics, RunStarted
    from snnlab.runs import RunDir, RunWriter
    from snnlab.sweep import HPARAMS_DIR, Trial, _add_hparams_row

    def epoch(n: int, accuracy: float) -> EpochMetrics:
        return EpochMetrics(epoch=n, step=4 * n, train_loss=1.0, train_accuracy=0.5, test_loss=2.0 / n,
                            test_accuracy=accuracy, spike_rates={"fc1": 0.1}, epoch_time=1.0,
                            best_accuracy=max(accuracy, 0.6))  # fmt: skip

    grid = {"model.neuron.surrogate": ["atan", "sigmoid"], "train.betas": [[0.9, 0.99]]}
    runs = []
    for name, evaluations in (("evaluated", [epoch(1, 0.6), epoch(2, 0.55)]), ("never-evaluated", [])):
        run = RunDir(tmp_path, name, tiny_config_dict)
        with RunWriter(run) as writer:
            writer(RunStarted(run_name=name, device="cpu", config=tiny_config_dict, num_parameters=1, train_size=200,
                              test_size=100, steps_per_epoch=4, epochs=2))  # fmt: skip
            for event in evaluations:
                writer(event)
        trial = Trial(values=("atan", [0.9, 0.99]), seed=8, name=name, overrides=[], run_dir=run.path, returncode=0)
        _add_hparams_row(tmp_path, grid, trial, True, print)
        runs.append(run.path)

    # A run without an evaluation has no final metrics: it gets no row.
    assert [p.name for p in (tmp_path / HPARAMS_DIR).iterdir()] == [runs[0].name]
    table = read_tensorboard(tmp_path / HPARAMS_DIR / runs[0].name)
    start = HParamsPluginData.FromString(table.SummaryMetadata("_hparams_/session_start_info").plugin_data.content)
    hparams = start.session_start_info.hparams
    assert hparams["model.neuron.surrogate"].string_value == "atan"
    assert hparams["train.betas"].string_value == "[0.9, 0.99]"  # as --set writes it
    assert hparams["train.seed"].number_value == 8
    # The last evaluation's test numbers, and the best accuracy the engine counted.
    assert series(table, "final/test_accuracy") == [(0, f32(0.55))]
    assert series(table, "final/test_loss") == [(0, f32(1.0))]
    assert series(table, "final/best_test_accuracy") == [(0, f32(0.6))]


@pytest.mark.slow  # trains (in this process, as the lab's thread mode does)
def test_the_labs_worker_logs_when_the_config_asks(tmp_path, tiny_config_dict):
    import threading

    from snnlab.runs import RunDir
    from snnlab.tui.worker import run_training

    tiny_config_dict["train"]["epochs"] = 1
    tiny_config_dict["run"]["loggers"] = ["tensorboard"]
    run = RunDir(tmp_path, "lab", tiny_config_dict)
    seen = []
    run_training(tiny_config_dict, str(run.path), seen.append, threading.Event(), threading.Event())
    assert seen[-1].kind == "run_finished", seen[-1]
    board = read_tensorboard(run.path / "tensorboard")
    want = expected_series(run.path)
    assert len(want["train/loss"]) == 4 and len(want["test/accuracy"]) == 1
    for tag, points in want.items():
        assert series(board, tag) == points, tag
