"""Is training held up by anything but the steps? An epoch's wall time against the sum of its step times.

Runs ``snnlab.engine.trainer.train`` on snnTorch tutorial 5's network over the bundled Fashion-MNIST
sample (5,000 images, 40 batches of 128, T=25), logging every step. A sink stamps each event with
``time.perf_counter()`` as it arrives. For epoch e:

- ``sum of steps``: the ``step_time`` of its StepMetrics (encode + forward + loss + backward + step);
- ``loop wall``: from the start of the epoch's loop (RunStarted for e=1, else the previous epoch's
  EpochMetrics, emitted once its evaluation is done) to the end of this epoch's last step: every batch's
  shuffling/slicing, step, accuracy decode and event emission;
- ``epoch_time``: what the trainer itself reports in EpochMetrics (it also includes the test evaluation).

Target: loop wall within 10% of the sum of steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

TUTORIAL5 = {
    "description": "snnTorch tutorial 5 on the bundled sample (benchmark)",
    "data": {"dataset": "bundled", "batch_size": 128, "time_steps": 25, "encoder": "direct"},
    "model": {
        "neuron": {"type": "leaky", "beta": 0.95},
        "layers": [
            {"type": "flatten"},
            {"type": "linear", "out_features": 1000, "neuron": True},
            {"type": "linear", "out_features": 10, "neuron": True},
        ],
    },
    "train": {"epochs": 2, "optimizer": "adam", "lr": 5e-4, "loss": "ce_membrane", "seed": 0},
    "run": {"name": "bench-epoch", "log_every": 1, "probes": {"enabled": False}},
}


@dataclass
class EpochCheck:
    epoch: int
    steps: int
    step_sum_s: float
    loop_wall_s: float
    epoch_time_s: float | None  # the trainer's EpochMetrics.epoch_time (includes evaluation)

    @property
    def overhead(self) -> float:
        return self.loop_wall_s / self.step_sum_s - 1

    def as_dict(self) -> dict:
        return {**vars(self), "overhead": self.overhead}


def run(device: torch.device, epochs: int = 2) -> list[EpochCheck]:
    from snnlab.config import config_from_dict
    from snnlab.engine.events import EpochMetrics, RunStarted, StepMetrics
    from snnlab.engine.trainer import train

    spec = {**TUTORIAL5, "train": {**TUTORIAL5["train"], "epochs": epochs, "device": device.type}}
    config = config_from_dict(spec)
    stamped: list[tuple[float, object]] = []

    def sink(event) -> None:
        if device.type == "cuda" and isinstance(event, StepMetrics):
            torch.cuda.synchronize(device)
        stamped.append((time.perf_counter(), event))

    result = train(config, [sink])
    if result.status != "completed":
        raise RuntimeError(f"training {result.status}: {result.error}")
    start = next(t for t, e in stamped if isinstance(e, RunStarted))
    checks = []
    for epoch in range(1, epochs + 1):
        steps = [(t, e) for t, e in stamped if isinstance(e, StepMetrics) and e.epoch == epoch]
        metrics = [e for _, e in stamped if isinstance(e, EpochMetrics) and e.epoch == epoch]
        end = steps[-1][0]
        checks.append(
            EpochCheck(
                epoch=epoch,
                steps=len(steps),
                step_sum_s=sum(e.step_time for _, e in steps),
                loop_wall_s=end - start,
                epoch_time_s=metrics[0].epoch_time if metrics else None,
            )
        )
        # The next epoch's loop starts after this epoch's evaluation, which ends with its EpochMetrics.
        start = next((t for t, e in stamped if isinstance(e, EpochMetrics) and e.epoch == epoch), end)
    return checks
