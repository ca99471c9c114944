"""The shape of Open Neuromorphic's SNN-library benchmark: one ``Linear(n, n)`` and one LIF layer, batch 16,
500 time steps, forward and backward timed apart, for n = 512, 4,096 and 16,384; snnlab, snnTorch,
SpikingJelly and Norse side by side in one run, and the matmul floor (the ``Linear`` alone, forward and
backward, with no neuron) that no library can beat.

    python benchmarks/bench_onm.py                        # n = 512 and 4096 on the CPU (16384 is for a GPU)
    python benchmarks/bench_onm.py --sizes 512 --repeats 20 --json onm.json
    python benchmarks/bench_onm.py --device cuda --sizes 512,4096,16384

Each row (library x n) runs in a fresh interpreter. Input: ``torch.rand(500, 16, n)`` (time first), no
gradient; loss: ``spikes.sum()``; backward fills the Linear's weight and bias gradients. Times are medians
over ``--repeats`` after ``--warmup`` passes (CUDA events on a GPU, ``perf_counter`` on the CPU); peak memory
is the CPU's resident high-water mark over one forward + backward in a second fresh interpreter (glibc told
to map every block of 4 KiB or more on its own and give it back when freed), or ``torch.cuda.max_memory_allocated`` on a
GPU. Each library's neuron, as its users write it:

- ``matmul floor``: ``Linear`` only, ``out.sum().backward()``, with the malloc setting snnlab's scans apply;
- ``snnlab``: ``nn.Linear`` on the whole sequence, then ``snnlab.engine.neurons.Leaky(beta=0.9)``;
- ``snntorch``: ``nn.Linear`` and ``snn.Leaky(beta=0.9)`` stepped in a Python loop, as its tutorials;
- ``spikingjelly``: ``layer.Linear`` and ``neuron.LIFNode(tau=10, decay_input=False)``, multi-step mode;
- ``norse``: ``nn.Linear`` on the whole sequence, then ``norse.torch.LIF()`` (Norse's default neuron, which
  also integrates a synaptic current: one more state than the others).

Peers that do not import are skipped with the reason. Install them as BENCHMARKS.md says.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # measure.py and bench_train.py: the helpers this script shares with them

LIBRARIES = ("matmul floor", "snnlab", "snntorch", "spikingjelly", "norse")
T, B, BETA = 500, 16, 0.9


# ---------------------------------------------------------------------------------------------- one row


def _model(library: str, n: int, device):
    """``forward(x) -> spikes`` for ``x`` of ``[T, B, n]``, and a backend name."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    fc = nn.Linear(n, n).to(device)
    if library == "matmul floor":
        from snnlab.engine.allocator import keep_freed_memory

        keep_freed_memory()  # the malloc setting snnlab's scans apply when they load: the floor of its process
        return fc, "torch.nn.Linear"
    if library == "snnlab":
        from snnlab.engine.kernels import cuda, native
        from snnlab.engine.neurons import Leaky

        lif = Leaky(beta=BETA).to(device)
        backend = native.status() if device.type == "cpu" else cuda.status()
        return (lambda x: lif(fc(x))[0]), backend
    if library == "snntorch":
        import snntorch as snn

        lif = snn.Leaky(beta=BETA).to(device)

        def stepped(x):
            mem, out = lif.reset_mem(), []
            for x_t in x.unbind(0):
                spk, mem = lif(fc(x_t), mem)
                out.append(spk)
            return torch.stack(out)

        return stepped, "python loop"
    if library == "spikingjelly":
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        net = nn.Sequential(
            layer.Linear(n, n, step_mode="m"),
            neuron.LIFNode(tau=1 / (1 - BETA), decay_input=False, v_reset=None, detach_reset=True,
                           surrogate_function=surrogate.ATan(), step_mode="m"),
        ).to(device)  # fmt: skip
        net[0].load_state_dict(fc.state_dict())

        def multistep(x):
            functional.reset_net(net)
            return net(x)

        return multistep, "multi-step LIFNode"
    if library == "norse":
        import norse.torch as norse

        lif = norse.LIF().to(device)
        return (lambda x: lif(fc(x))[0]), "norse.torch.LIF"
    raise ValueError(library)


def worker(spec: dict) -> dict:
    import torch

    device = torch.device(spec["device"])
    forward, backend = _model(spec["library"], spec["n"], device)
    x = torch.rand(T, B, spec["n"], device=device)
    row = {"backend": backend}

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if spec["mode"] == "memory":
        forward(x).sum().backward()  # gradients and lazily built buffers exist from here on
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            forward(x).sum().backward()
            row["peak_mb"] = (torch.cuda.max_memory_allocated(device) - before) / 2**20
        else:
            from measure import _reset_peak_rss, _status_kib  # bench_train's worker reads the peak the same way

            baseline = _status_kib("VmRSS")
            if not _reset_peak_rss():
                return {**row, "peak_mb": None}
            forward(x).sum().backward()
            row["peak_mb"] = (_status_kib("VmHWM") - baseline) / 1024
        return row

    fwd, bwd = [], []
    for i in range(spec["warmup"] + spec["repeats"]):
        if device.type == "cuda":
            e = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
            e[0].record()
            loss = forward(x).sum()
            e[1].record()
            loss.backward()
            e[2].record()
            sync()
            f, b = e[0].elapsed_time(e[1]) / 1e3, e[1].elapsed_time(e[2]) / 1e3
        else:
            t0 = time.perf_counter()
            loss = forward(x).sum()
            t1 = time.perf_counter()
            loss.backward()
            f, b = t1 - t0, time.perf_counter() - t1
        if i >= spec["warmup"]:
            fwd.append(f)
            bwd.append(b)
        del loss
    row.update(forward_s=statistics.median(fwd), backward_s=statistics.median(bwd),
               total_s=statistics.median([a + b for a, b in zip(fwd, bwd, strict=True)]))  # fmt: skip
    return row


# ---------------------------------------------------------------------------------------------- the table


def _run(spec: dict, timeout: float) -> dict:
    env = dict(os.environ)
    if spec["mode"] == "memory":
        # Resident memory follows the live tensors: every block of 4 KiB or more is its own mapping, given back
        # when freed (snnTorch's per-step tensors of 32 KB would otherwise reuse heap that the warm-up freed).
        env.update(MALLOC_MMAP_THRESHOLD_="4096", MALLOC_TRIM_THRESHOLD_="0")
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                          text=True, timeout=timeout, env=env)  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:160]}
    return json.loads(lines[-1])


def _importable(library: str) -> str | None:
    module = {"snntorch": "snntorch", "spikingjelly": "spikingjelly.activation_based.neuron", "norse": "norse.torch"}
    if library not in module:
        return None
    out = subprocess.run([sys.executable, "-c", f"import {module[library]}"], capture_output=True, text=True)
    return None if out.returncode == 0 else (out.stderr.strip().splitlines() or ["import failed"])[-1][:160]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512,4096", help="comma-separated n (default 512,4096)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory interpreters")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    import torch
    from bench_train import cpu_model

    libraries = [lib.strip() for lib in args.libraries.split(",") if lib.strip()]
    unknown = set(libraries) - set(LIBRARIES)
    if unknown:
        parser.error(f"unknown libraries {sorted(unknown)}; choose from {', '.join(LIBRARIES)}")
    sizes = [int(s) for s in args.sizes.split(",")]
    skipped = {lib: why for lib in libraries if (why := _importable(lib))}
    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "load_avg_1m": round(os.getloadavg()[0], 2), "date": time.strftime("%Y-%m-%d %H:%M"),
    }  # fmt: skip
    if args.device == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(0)
    rows = []
    for n in sizes:
        for lib in libraries:
            row = {"n": n, "library": lib}
            if lib in skipped:
                row["skipped"] = skipped[lib]
            else:
                spec = {"library": lib, "n": n, "device": args.device, "repeats": args.repeats,
                        "warmup": args.warmup, "mode": "time"}  # fmt: skip
                print(f"  n={n:<6} {lib:13} ...", file=sys.stderr, flush=True)
                row.update(_run(spec, args.timeout))
                if not args.no_memory and "error" not in row:
                    row.update(_run({**spec, "mode": "memory"}, args.timeout))
            rows.append(row)
    print(f"\nOpen Neuromorphic's shape: Linear(n, n) + LIF, B={B}, T={T}, forward + backward of spikes.sum(); "
          f"{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} ({machine['torch_threads']} "
          f"threads), {args.device}, load {machine['load_avg_1m']}, {machine['date']}; "
          f"median of {args.repeats} after {args.warmup} warm-up\n")  # fmt: skip
    print(
        "| n | library | backend | forward ms | backward ms | total ms | x matmul floor | snnlab faster by | peak MB |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        here = {r["library"]: r for r in rows if r["n"] == n}
        floor = here.get("matmul floor", {}).get("total_s")
        ours = here.get("snnlab", {}).get("total_s")
        for lib in libraries:
            r = here[lib]
            if "skipped" in r or "error" in r:
                print(f"| {n} | {lib} | {r.get('skipped') or r.get('error')} | | | | | | |")
                continue
            vs_floor = f"{r['total_s'] / floor:.2f}" if floor else ""
            faster = f"{r['total_s'] / ours:.2f}x" if ours and lib not in ("snnlab", "matmul floor") else ""
            peak = f"{r['peak_mb']:.0f}" if r.get("peak_mb") is not None else ""
            print(f"| {n} | {lib} | {r['backend']} | {r['forward_s'] * 1e3:.1f} | {r['backward_s'] * 1e3:.1f} | "
                  f"{r['total_s'] * 1e3:.1f} | {vs_floor} | {faster} | {peak} |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
