import json
import math
import threading
import time

import pytest
import torch

from snnlab.config import ConfigError, config_from_dict
from snnlab.engine import checkpoint
from snnlab.engine.events import EpochMetrics, ProbeRecorded, RunFailed, RunFinished, RunStarted, StepMetrics
from snnlab.engine.trainer import train


class Recorder:
    def __init__(self, stop_at_step=None, stop=None):
        self.events, self.stop_at_step, self.stop = [], stop_at_step, stop

    def __call__(self, event):
        self.events.append(event)
        if self.stop_at_step and isinstance(event, StepMetrics) and event.step == self.stop_at_step:
            self.stop.set()

    def of(self, cls):
        return [e for e in self.events if isinstance(e, cls)]


def test_a_run_emits_the_events_in_order_and_checkpoints(tmp_path, tiny_config_dict):
    rec = Recorder()
    result = train(config_from_dict(tiny_config_dict), [rec], run_dir=tmp_path)
    assert result.status == "completed" and result.epochs_done == 2 and result.steps == 8
    kinds = [type(e).__name__ for e in rec.events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert len(rec.of(StepMetrics)) == 8 and len(rec.of(EpochMetrics)) == 2 and len(rec.of(ProbeRecorded)) == 2
    epoch = rec.of(EpochMetrics)[-1]
    assert 0 <= epoch.test_accuracy <= 1 and set(epoch.spike_rates) == {"fc1", "fc2"}
    probe = rec.of(ProbeRecorded)[0]
    assert probe.layers["fc1"]["membrane"].shape == (4, 2, 4)  # [T, samples, neurons]
    assert probe.layers["fc1"]["raster"].shape == (4, 2, 32)
    assert (tmp_path / "checkpoints" / "last.pt").is_file() and (tmp_path / "checkpoints" / "best.pt").is_file()
    assert rec.of(RunStarted)[0].steps_per_epoch == 4


def test_stop_then_resume_equals_an_uninterrupted_run(tmp_path, tiny_config_dict):
    tiny_config_dict["data"]["encoder"] = "rate"  # exercises the encoder's RNG across the resume
    cfg = config_from_dict(tiny_config_dict)
    straight = Recorder()
    train(cfg, [straight], run_dir=tmp_path / "a")

    stop = threading.Event()
    first = Recorder(stop_at_step=3, stop=stop)  # stop in the middle of epoch 1
    result = train(cfg, [first], stop=stop, run_dir=tmp_path / "b")
    assert result.status == "stopped" and result.steps == 3
    assert first.of(RunFinished)[0].status == "stopped"
    second = Recorder()
    result = train(cfg, [second], run_dir=tmp_path / "b", resume=tmp_path / "b" / "checkpoints" / "last.pt")
    assert result.status == "completed" and result.steps == 8
    assert second.of(RunStarted)[0].start_epoch == 0
    losses_straight = [e.loss for e in straight.of(StepMetrics)]
    losses_resumed = [e.loss for e in first.of(StepMetrics) + second.of(StepMetrics)]
    assert losses_resumed == losses_straight
    a = checkpoint.load(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight.of(EpochMetrics)[-1].test_accuracy == second.of(EpochMetrics)[-1].test_accuracy


def test_nan_loss_fails_cleanly_and_keeps_the_last_good_checkpoint(tmp_path, tiny_config_dict):
    tiny_config_dict["train"].update(optimizer="sgd", lr=1e38)
    tiny_config_dict["train"]["epochs"] = 3
    rec = Recorder()
    result = train(config_from_dict(tiny_config_dict), [rec], run_dir=tmp_path)
    assert result.status == "failed" and result.reason == "nan_loss"
    assert "lower train.lr" in result.error and "\n" not in result.error
    assert rec.of(RunFailed) and not rec.of(RunFinished)


def test_pause_holds_training_until_released(tiny_config_dict):
    pause, stop = threading.Event(), threading.Event()
    pause.set()
    rec = Recorder()
    thread = threading.Thread(target=train, args=(config_from_dict(tiny_config_dict), [rec], stop, pause))
    thread.start()
    thread.join(timeout=1.5)
    assert thread.is_alive() and not rec.of(StepMetrics)  # paused before its first batch
    pause.clear()
    thread.join(timeout=60)
    assert not thread.is_alive() and len(rec.of(StepMetrics)) == 8


def test_max_steps_and_missing_cuda(tiny_config_dict):
    tiny_config_dict["train"]["max_steps"] = 2
    result = train(config_from_dict(tiny_config_dict))
    assert result.steps == 2 and result.epochs_done == 1 and math.isfinite(result.final_test_loss)
    if not torch.cuda.is_available():
        tiny_config_dict["train"]["device"] = "cuda"
        result = train(config_from_dict(tiny_config_dict))
        assert result.status == "failed" and "no CUDA device" in result.error


@pytest.mark.parametrize("loss,decoder,encoder", [("ce_rate", "latency", "latency"), ("mse_count", "membrane", "rate")])
def test_other_losses_decoders_and_encoders_train(loss, decoder, encoder, tiny_config_dict):
    tiny_config_dict["train"].update(loss=loss, decoder=decoder, epochs=1)
    tiny_config_dict["data"]["encoder"] = encoder
    result = train(config_from_dict(tiny_config_dict))
    assert result.status == "completed" and math.isfinite(result.final_test_loss)


def test_bfloat16_runs_the_layers_in_bfloat16_and_the_neurons_in_float32(tiny_config_dict):
    from snnlab.engine.session import Session

    tiny_config_dict["train"]["precision"] = "bfloat16"
    session = Session(config_from_dict(tiny_config_dict))
    seen = {}
    linear = next(m for m in session.model.modules() if isinstance(m, torch.nn.Linear))
    neuron = next(b.neuron for b in session.model.blocks if b.neuron is not None)
    linear.register_forward_hook(lambda m, args, out: seen.update(linear=out.dtype))
    neuron.register_forward_pre_hook(lambda m, args: seen.update(neuron=args[0].dtype))
    x, y = session.train_split.inputs[:8], session.train_split.labels[:8]
    with session.autocast():
        out = session.model(session.encode(x))
        loss = session.loss_fn(out.spikes, out.membrane, y)
    loss.backward()
    assert seen == {"linear": torch.bfloat16, "neuron": torch.float32}
    assert out.membrane.dtype == torch.float32 and linear.weight.grad.dtype == torch.float32

    recorder = Recorder()
    result = train(config_from_dict(tiny_config_dict), [recorder])
    assert result.status == "completed" and math.isfinite(result.final_test_loss)
    assert recorder.of(RunStarted)[0].device.endswith(", bfloat16")  # the start line says so
    tiny_config_dict["train"]["precision"] = "float16"
    with pytest.raises(ConfigError, match="train.precision: must be one of float32, bfloat16"):
        config_from_dict(tiny_config_dict)


def test_under_bfloat16_a_recurrent_neuron_still_integrates_in_float32():
    from snnlab.engine.models import build_model

    layers = [{"type": "linear", "out_features": 16, "neuron": {"type": "rleaky", "all_to_all": True}}]
    model = build_model(layers, (8,))
    x = torch.randn(20, 4, 8)
    plain = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(x)
    # Only the input layer rounds to bfloat16; the recurrence adds no error of its own on top.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        current = model.blocks[0].op(x.flatten(0, 1)).unflatten(0, (20, 4)).float()
    spk, mem = model.blocks[0].neuron(current)
    assert mixed.membrane.dtype == torch.float32
    assert torch.equal(mixed.membrane, mem) and plain.membrane.shape == mem.shape


def test_nan_loss_says_which_checkpoints_are_kept_and_only_those(tmp_path, tiny_config_dict, monkeypatch):
    from snnlab.engine import losses

    tiny_config_dict["train"].update(epochs=1)
    assert train(config_from_dict(tiny_config_dict), [], run_dir=tmp_path / "b").status == "completed"
    monkeypatch.setattr(losses, "loss_fn", lambda *a, **k: lambda spikes, membrane, y: membrane.sum() * float("nan"))
    result = train(config_from_dict(tiny_config_dict), [], run_dir=tmp_path / "a")
    assert result.reason == "nan_loss" and result.epochs_done == 0
    assert result.error.endswith("(no checkpoint was written before it)")

    tiny_config_dict["train"].update(epochs=3)
    resume = tmp_path / "b" / "checkpoints" / "last.pt"
    result = train(config_from_dict(tiny_config_dict), [], run_dir=tmp_path / "b", resume=resume)
    assert result.reason == "nan_loss"
    assert result.error.endswith(f"(last.pt and best.pt in {tmp_path / 'b' / 'checkpoints'} are kept)")


def test_the_wall_time_of_a_resumed_run_counts_every_session(tmp_path, tiny_config_dict):
    from snnlab.runs import RunDir, RunWriter, read_summary

    cfg = config_from_dict(tiny_config_dict)
    run = RunDir(tmp_path, "tiny", tiny_config_dict)
    stop = threading.Event()

    class SlowStart(Recorder):
        def __call__(self, event):
            super().__call__(event)
            if isinstance(event, StepMetrics) and event.step == 1:
                time.sleep(1.5)  # a first session clearly longer than the second

    first = SlowStart(stop_at_step=2, stop=stop)
    with RunWriter(run) as writer:
        assert train(cfg, [first, writer], stop=stop, run_dir=run.path).status == "stopped"
    first_wall = first.of(RunFinished)[0].wall_time
    assert first_wall >= 1.5

    second = Recorder()
    began = time.time()
    with RunWriter(run) as writer:
        result = train(cfg, [second, writer], run_dir=run.path, resume=run.checkpoints_dir / "last.pt")
    own = time.time() - began
    wall = second.of(RunFinished)[0].wall_time
    assert result.wall_time == wall and first_wall + 0.5 * own <= wall <= first_wall + own + 0.1
    assert read_summary(run.path)["wall_time"] == wall


@pytest.mark.parametrize("norm", ["batchnorm", "batchnorm_tt"])
def test_a_batchnorm_net_leaves_out_a_last_batch_of_one_sample(tiny_config_dict, norm):
    # 101 samples in batches of 50: the third batch holds one sample, which batchnorm cannot normalise.
    tiny_config_dict["data"]["train_size"] = 101
    tiny_config_dict["model"]["layers"].insert(1, {"type": norm})
    rec = Recorder()
    result = train(config_from_dict(tiny_config_dict), [rec])
    assert result.status == "completed" and result.steps == 4, result.error
    assert rec.of(RunStarted)[0].steps_per_epoch == 2
    assert {e.batches for e in rec.of(StepMetrics)} == {2}
    tiny_config_dict["model"]["layers"].pop(1)  # without batchnorm the last sample trains as usual
    assert train(config_from_dict(tiny_config_dict)).steps == 6


def test_data_drop_last_leaves_out_a_smaller_last_batch_as_snntorch_does(tiny_config_dict):
    tiny_config_dict["data"]["train_size"] = 130  # batches of 50: 50, 50 and 30
    tiny_config_dict["train"]["epochs"] = 1
    assert train(config_from_dict(tiny_config_dict)).steps == 3
    tiny_config_dict["data"]["drop_last"] = True
    rec = Recorder()
    assert train(config_from_dict(tiny_config_dict), [rec]).steps == 2
    assert rec.of(RunStarted)[0].steps_per_epoch == 2
    tiny_config_dict["data"]["train_size"] = 150  # no smaller batch: nothing to leave out
    assert train(config_from_dict(tiny_config_dict)).steps == 3


def test_drop_last_with_less_data_than_a_batch_fails_in_one_line_instead_of_training_nothing(tiny_config_dict):
    from snnlab.engine.session import TrainingError, prepare

    tiny_config_dict["data"].update(train_size=50, drop_last=True)
    cfg = config_from_dict(tiny_config_dict)
    # The config refuses this where it knows the dataset's size; the pre-flight checks the data it loaded.
    cfg.data.batch_size = 64
    with pytest.raises(TrainingError) as info:
        prepare(cfg)
    assert str(info.value).startswith("data.drop_last: the 50 training samples are fewer than one batch of 64")


def test_any_seed_the_config_allows_trains(tiny_config_dict):
    tiny_config_dict["train"].update(seed=2**63 - 1, max_steps=1)
    result = train(config_from_dict(tiny_config_dict))
    assert result.status == "completed" and result.steps == 1, result.error


def test_the_pre_flight_fails_before_anything_is_written(tmp_path, tiny_config_dict):
    from snnlab.engine.session import TrainingError, prepare

    tiny_config_dict["data"].update(dataset="mnist", data_dir=str(tmp_path / "none"), download=False)
    with pytest.raises(TrainingError) as info:
        prepare(config_from_dict(tiny_config_dict))
    assert info.value.reason == "data" and "'mnist' not found" in str(info.value)
    rec = Recorder()
    result = train(config_from_dict(tiny_config_dict), [rec], run_dir=tmp_path / "run")
    assert (result.status, result.reason) == ("failed", "data") and not (tmp_path / "run").exists()


def test_failure_reasons_say_which_are_the_users_to_fix_and_read_any_written_reason():
    from snnlab.engine.events import FailureReason as R

    assert {r for r in R if r.before_start} == {R.DATA, R.CONFIG, R.DEVICE}  # exit 2; the rest exit 1
    assert R.of("nan_loss") is R.NAN_LOSS and R.of("from a newer snnlab") is R.ERROR and R.of(None) is R.ERROR
    assert '"reason": "write"' in json.dumps(RunFailed(error="e", reason=R.WRITE, time=1.0).to_dict())


def test_every_checkpoint_carries_the_wall_time_so_far_mid_epoch_ones_too(tmp_path, tiny_config_dict, monkeypatch):
    tiny_config_dict["train"]["epochs"] = 1
    tiny_config_dict["run"]["checkpoint_steps"] = 1  # 4 batches: mid-epoch saves after steps 1, 2 and 3
    saved = []
    real_save = checkpoint.save

    def recording_save(path, state):
        saved.append(state["progress"])
        real_save(path, state)

    monkeypatch.setattr(checkpoint, "save", recording_save)
    assert train(config_from_dict(tiny_config_dict), [], run_dir=tmp_path).status == "completed"
    mid_epoch = [p for p in saved if p["batch"] > 0]
    assert len(mid_epoch) == 3 and all(p["elapsed"] > 0 for p in saved)


def test_a_probe_records_no_threshold_for_a_readout_that_never_fires(tmp_path, tiny_config_dict):
    tiny_config_dict["model"]["layers"][-1]["neuron"] = {"type": "expon", "beta": 0.9}
    tiny_config_dict["train"].update(loss="ce_mean_membrane", decoder="membrane")
    rec = Recorder()
    train(config_from_dict(tiny_config_dict), [rec], run_dir=tmp_path)
    probe = rec.of(ProbeRecorded)[0]
    assert probe.layers["fc2"]["threshold"] is None and probe.layers["fc2"]["spikes"].sum() == 0
    assert probe.layers["fc1"]["threshold"] == tiny_config_dict["model"]["neuron"].get("threshold", 1.0)


def test_a_probe_traces_the_neurons_asked_for_and_names_the_rasters_neurons(tmp_path, tiny_config_dict):
    tiny_config_dict["run"]["probes"].update(neurons=2, trace={"fc1": [5, 0]})
    rec = Recorder()
    train(config_from_dict(tiny_config_dict), [rec], run_dir=tmp_path)
    fc1 = rec.of(ProbeRecorded)[0].layers["fc1"]
    hidden = fc1["raster"].shape[2]
    assert fc1["neurons"] == [0, 5, hidden - 1]  # two evenly spaced (0 and the last) and 5, once each, in order
    assert fc1["membrane"].shape[2] == 3 and fc1["raster_neurons"] == list(range(hidden))
    assert torch.equal(fc1["spikes"][:, :, 1], fc1["raster"][:, :, 5])  # the traced neuron is neuron 5
