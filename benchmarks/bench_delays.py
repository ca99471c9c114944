"""What learned delays cost: a training step of the shd-delays network against the same network with plain
linear layers, on an SHD-shaped batch ([T, B, 140] event counts).

Both networks come from the shd-delays preset: "delays" as it is, "linear" with every delayed_linear layer
replaced by a linear layer of the same size (so batchnorm, LIF neurons, dropout, loss and optimizer are the
same). A step is forward, loss (ce_mean_membrane), backward and the Adam step (delays in their own
parameter group, then clamped). Prints the median step time of ``--repeats`` steps after ``--warmup`` and the
time of one epoch of SHD's 8,156 training samples at that batch size.

    python benchmarks/bench_delays.py                    # CPU, B=32, T=100
    python benchmarks/bench_delays.py --device cuda --batch 256
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

SHD_TRAIN = 8156


def networks() -> dict[str, list[dict]]:
    from snnlab.config import find_preset, load_config

    delayed = load_config(find_preset("shd-delays")).layer_specs()
    plain = []
    for spec in delayed:
        if spec["type"] == "delayed_linear":
            spec = {"type": "linear", "out_features": spec["out_features"], "bias": spec["bias"],
                    **({"neuron": spec["neuron"]} if "neuron" in spec else {})}  # fmt: skip
        plain.append(spec)
    return {"linear": plain, "delays": delayed}


def time_steps(layers: list[dict], device: torch.device, batch: int, steps: int, warmup: int, repeats: int) -> float:
    """Median seconds of one training step."""
    from types import SimpleNamespace

    from snnlab.engine import losses
    from snnlab.engine.models import build_model
    from snnlab.engine.session import make_optimizer

    torch.manual_seed(0)
    model = build_model(layers, (140,)).to(device)
    optimizer = make_optimizer(model, SimpleNamespace(optimizer="adam", lr=1e-3, betas=(0.9, 0.999),
                                                      weight_decay=0.0), device)  # fmt: skip
    loss_fn = losses.loss_fn("ce_mean_membrane")
    x = torch.poisson(torch.full((steps, batch, 140), 0.2)).to(device)  # sparse counts, as SHD's 10 ms bins
    y = torch.randint(0, 20, (batch,), device=device)
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        out = model(x)
        loss = loss_fn(out.spikes, out.membrane, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.constrain()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--time-steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    batches = math.ceil(SHD_TRAIN / args.batch)
    print(f"device {device}, torch threads {torch.get_num_threads()}, B={args.batch}, T={args.time_steps}")
    print("| network | step ms | SHD epoch s | vs linear |")
    print("|---|---:|---:|---:|")
    base = None
    for name, layers in networks().items():
        step = time_steps(layers, device, args.batch, args.time_steps, args.warmup, args.repeats)
        base = base or step
        print(f"| {name} | {step * 1e3:.1f} | {step * batches:.1f} | {step / base:.1f}x |")


if __name__ == "__main__":
    main()
