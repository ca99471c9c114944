"""`snnlab eval RUN`: a trained run's checkpoint, evaluated again, gives what the run recorded at its epoch."""

import json

import pytest
import yaml

from tests.cli.test_cli import only_run, snnlab, write


def recorded(run):
    """The test loss and accuracy the run recorded, by epoch."""
    rows = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    return {row["epoch"]: (row["test_loss"], row["test_accuracy"]) for row in rows if row["event"] == "epoch"}


@pytest.mark.slow  # trains in a subprocess
def test_eval_gives_the_recorded_metrics_of_the_checkpoints_epoch(tmp_path, tiny_config_dict):
    tiny_config_dict["train"]["epochs"] = 3
    preset = write(tmp_path, tiny_config_dict)
    assert snnlab("run", str(preset), "-q", cwd=tmp_path).returncode == 0
    run = only_run(tmp_path)
    by_epoch = recorded(run)
    assert sorted(by_epoch) == [1, 2, 3]

    last = snnlab("eval", run.name, "--checkpoint", "last", "--json", cwd=tmp_path)
    assert last.returncode == 0, last.stderr
    result = json.loads(last.stdout)  # one JSON object and nothing else on stdout
    assert result["epoch"] == 3 and result["checkpoint"].endswith("last.pt")
    assert (result["loss"], result["accuracy"]) == by_epoch[3]  # the same numbers, not just close ones
    assert result["decoder"] == "rate" and result["dataset"] == "bundled" and result["test_samples"] == 100

    best = snnlab("eval", str(run), "--device", "cpu", cwd=tmp_path)  # by path; best.pt by default
    assert best.returncode == 0, best.stderr
    # best.pt is the first epoch that reached the run's best accuracy.
    best_epoch = max(by_epoch, key=lambda e: (by_epoch[e][1], -e))
    loss, accuracy = by_epoch[best_epoch]
    (line,) = best.stdout.splitlines()
    assert line.startswith(f"{run.name}  best.pt (epoch {best_epoch})")
    assert f"loss {loss:.4f}" in line and f"accuracy {100 * accuracy:.1f}% (rate decoder)" in line

    # Another setting of the config: the decoder changes the accuracy's meaning, and says so.
    other = snnlab("eval", run.name, "--set", "train.decoder=rate_first", "--json", cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout)["decoder"] == "rate_first"

    bad = snnlab("eval", run.name, "--set", "data.datset=mnist", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    message = f"snnlab: error: runs/{run.name}/config.yaml: data.datset: unknown key 'datset'; did you mean 'dataset'?"
    assert bad.stderr.strip() == message

    (run / "checkpoints" / "best.pt").unlink()
    gone = snnlab("eval", run.name, cwd=tmp_path)
    assert gone.returncode == 2 and len(gone.stderr.splitlines()) == 1
    assert "has no best.pt but has last.pt: evaluate it with --checkpoint last" in gone.stderr


def test_eval_of_a_missing_run_or_checkpoint_is_one_line(tmp_path, tiny_config_dict):
    missing = snnlab("eval", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("snnlab: error: no run 'nope'")
    run = tmp_path / "runs" / "tiny-20250101-000000"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(tiny_config_dict))
    (run / "summary.json").write_text(json.dumps({"status": "failed", "name": "tiny"}))
    out = snnlab("eval", "tiny", cwd=tmp_path)
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1, out.stderr
    assert (
        "tiny-20250101-000000 has no checkpoint" in out.stderr
        and "snnlab run runs/tiny-20250101-000000/config.yaml" in out.stderr
    )
    wrong = snnlab("eval", "tiny", "--checkpoint", "first", cwd=tmp_path)
    assert wrong.returncode == 2 and "choose one of best, last" in wrong.stderr
