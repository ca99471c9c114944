"""Peak memory and time of one training step with and without a segmented backward pass (train.bptt_segment).

    python benchmarks/bptt_memory.py                      # T = 100, 400, 1600; off, auto (sqrt T) and 4*sqrt T
    python benchmarks/bptt_memory.py --steps 100,400 --repeats 2
    python benchmarks/bptt_memory.py --steps 5000 --inputs 700 --hidden 256,256 --classes 20   # SHD-like
    python benchmarks/bptt_memory.py --steps 500 --segments off --compact off,on --snntorch   # and snnTorch's loop

The network is 784-256-10 (``--inputs``, ``--hidden``, ``--classes``) with Leaky neurons (``--neuron``: another
type, default settings), B = 32, Poisson
(rate) input spikes ``[T, B, 784]`` at rate 0.1, loss ``ce_membrane``; one step is forward + loss + backward +
an SGD step, on one thread by default (``--threads``): with two threads on a busy 2-core machine every small
op waits for the other thread, which charges the segmented pass (more, smaller ops) for the machine's load
rather than for its work.

Each row runs in two fresh interpreters. Memory: one started with ``MALLOC_MMAP_THRESHOLD_=4096`` (glibc maps
every block over 4 KiB on its own and hands it back when freed, so resident memory follows the live tensors; at
64 KiB the step loop's per-step ``[B, N]`` tensors would reuse heap pages the warm-up step left resident and go
uncounted); after building
the model, the input and one warm-up step it reads the resident set ``VmRSS``, resets the kernel's high-water
mark ``VmHWM`` (``/proc/self/clear_refs``), runs one step and reports ``VmHWM`` minus that baseline: the
memory the step itself needed, with the input, weights and optimizer outside it. Time: the other, with the
default allocator (that setting makes every medium-sized allocation an mmap and would charge the segmented
pass, which allocates per segment, for page faults), the median of ``--repeats`` steps after a warm-up step.
On CUDA (``--device cuda``) the peak is ``torch.cuda.max_memory_allocated`` over one step minus what was
allocated before it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _kib(key: str) -> int:
    match = re.search(rf"{key}:\s+(\d+)", Path("/proc/self/status").read_text())
    assert match is not None
    return int(match.group(1))


def measure(
    T: int, segment: int | str | None, device: str, repeats: int, batch: int, threads: int, neuron: str,
    inputs: int = 784, hidden: tuple[int, ...] = (256,), classes: int = 10, compact: bool = False,
    library: str = "snnlab",
) -> dict:  # fmt: skip
    """Peak memory of one step (``repeats`` 0) or the median time of ``repeats`` steps, in this (fresh)
    interpreter. ``library`` "snntorch": the same network written as snnTorch's tutorials write it."""
    import torch

    from snnlab.engine import losses
    from snnlab.engine.models import build_model, segment_steps

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev = torch.device(device)
    layers = [{"type": "linear", "out_features": n, "neuron": {"type": neuron}} for n in (*hidden, classes)]
    model = build_model(layers, (inputs,)).to(dev) if library == "snnlab" else _SnnTorchNet(inputs, hidden, classes)
    model.bptt_segment = segment
    model.compact_spikes = compact
    x = (torch.rand(T, batch, inputs, device=dev) < 0.1).float()
    y = torch.randint(0, classes, (batch,), device=dev)
    loss_fn = losses.loss_fn("ce_membrane")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        loss_fn(out.spikes, out.membrane, y).backward()
        optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    step()  # warm-up: lazily built buffers, the gradients' first allocation
    optimizer.zero_grad(set_to_none=True)
    row: dict = {"T": T, "segment": segment_steps(segment, T) if segment else None}
    if repeats:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return {**row, "step_s": statistics.median(times)}
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        step()
        peak = torch.cuda.max_memory_allocated(dev) - before
    else:
        baseline = _kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
        step()
        peak = (_kib("VmHWM") - baseline) * 1024
    return {**row, "peak_bytes": peak}


class _SnnTorchNet:
    """Linear + ``snn.Leaky`` layers stepped in a Python loop, as snnTorch's tutorials do; the output layer's
    spikes and membrane stacked over time (the loss reads them as it reads snnlab's)."""

    def __init__(self, inputs: int, hidden: tuple[int, ...], classes: int) -> None:
        import snntorch as snn
        import torch

        sizes = (inputs, *hidden, classes)
        self.fcs = [torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:], strict=False)]
        self.lifs = [snn.Leaky(beta=0.9) for _ in self.fcs]  # snnlab's default, as the other rows use

    def parameters(self):
        return [p for fc in self.fcs for p in fc.parameters()]

    def __call__(self, x):
        import torch

        from snnlab.engine.models import NetOutput

        mems = [lif.reset_mem() for lif in self.lifs]
        spk_rec, mem_rec = [], []
        for x_t in x.unbind(0):
            h = x_t
            for i, (fc, lif) in enumerate(zip(self.fcs, self.lifs, strict=True)):
                h, mems[i] = lif(fc(h), mems[i])
            spk_rec.append(h)
            mem_rec.append(mems[-1])
        return NetOutput(torch.stack(spk_rec), torch.stack(mem_rec))


def _run(T: int, segment: str, compact: str, args: argparse.Namespace, repeats: int, library: str = "snnlab") -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not repeats:
        env["MALLOC_MMAP_THRESHOLD_"] = "4096"
    cmd = [sys.executable, __file__, "--row", f"{T}:{segment}:{compact}:{library}", "--device", args.device,
           "--repeats", str(repeats),
           "--batch", str(args.batch), "--threads", str(args.threads), "--neuron", args.neuron,
           "--inputs", str(args.inputs), "--hidden", args.hidden, "--classes", str(args.classes)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"row T={T} segment={segment} compact={compact} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row(T: int, segment: str, compact: str, args: argparse.Namespace, library: str = "snnlab") -> dict:
    return {**_run(T, segment, compact, args, 0, library), **_run(T, segment, compact, args, args.repeats, library)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="100,400,1600", help="comma-separated T values")
    parser.add_argument("--segments", default="off,auto,4x", help="off, auto (ceil sqrt T), 4x (4*auto), or N")
    parser.add_argument("--compact", default="off", help="train.compact_spikes: off, on, or off,on")
    parser.add_argument("--snntorch", action="store_true", help="also snnTorch's tutorial-style loop, per T")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per row (median)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady timings on a shared CPU)")
    parser.add_argument("--neuron", default="leaky", help="the neuron type of both layers")
    parser.add_argument("--inputs", type=int, default=784, help="input features")
    parser.add_argument("--hidden", default="256", help="comma-separated hidden layer sizes")
    parser.add_argument("--classes", type=int, default=10, help="output neurons")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        T, segment, compact, library = args.row.split(":")
        setting: int | str | None = None if segment == "off" else segment if segment == "auto" else int(segment)
        hidden = tuple(int(n) for n in args.hidden.split(","))
        print(json.dumps(measure(int(T), setting, args.device, args.repeats, args.batch, args.threads, args.neuron,
                                 args.inputs, hidden, args.classes, compact == "on", library)))  # fmt: skip
        return

    import math

    sizes = "-".join(map(str, (args.inputs, *args.hidden.split(","), args.classes)))
    print(f"{sizes}, {args.neuron}, B={args.batch}, {args.threads} thread(s)\n")
    print(f"| T | bptt_segment | compact_spikes | peak MB ({args.device}) | peak / first | step s | time / first |")
    print("|---:|---|---|---:|---:|---:|---:|")
    for T in (int(t) for t in args.steps.split(",")):
        first = None
        for name in args.segments.split(","):
            segment = name
            if name == "4x":
                segment = str(4 * (math.isqrt(T - 1) + 1))
            for compact in args.compact.split(","):
                row = _row(T, segment, compact, args)
                first = first or row
                label = (
                    "off" if name == "off" else f"{name} ({row['segment']} steps)" if name in ("auto", "4x") else name
                )
                print(_line(T, label, compact, row, first), flush=True)
        if args.snntorch:
            print(_line(T, "snnTorch's loop", "-", _row(T, "off", "off", args, "snntorch"), first), flush=True)


def _line(T: int, label: str, compact: str, row: dict, first: dict) -> str:
    """One table row; the ratios are to the first row of the same T."""
    peak, step = row["peak_bytes"], row["step_s"]
    ratios = f"{peak / first['peak_bytes']:.2f} | {step:.3f} | {step / first['step_s']:.2f}"
    return f"| {T} | {label} | {compact} | {peak / 2**20:.1f} | {ratios} |"


if __name__ == "__main__":
    main()
