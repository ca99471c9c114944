"""Training-step time and memory of snnlab, snnTorch and SpikingJelly, measured side by side in one run.

    python benchmarks/bench_train.py                 # everything, on the CPU and (if present) CUDA
    python benchmarks/bench_train.py --quick         # smoke test: 3 repeats, no T=1000
    python benchmarks/bench_train.py --only fc-direct,snntorch --repeats 20 --json out.json

Each row (library x network x device) runs in a fresh interpreter (``measure.py``), so no row inherits
another's allocator state or threads; on the CPU a second fresh interpreter measures its peak memory.
Peers that do not import are skipped with the reason. Then, in this process: the equivalence checks
(identical weights and inputs, spikes / membranes / gradients compared) and the epoch-overhead check.
Networks, losses and what each library runs are described in ``nets.py``; see BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import nets  # noqa: E402

SECTIONS = ("speed", "equivalence", "epoch")
TARGET_SPEEDUP = 5.0  # CPU tutorial 5: snnlab step >= 5x faster than each peer
TARGET_MEMORY = 1 / 4  # long-T500: snnlab peak <= 1/4 of snnTorch's
TARGET_OVERHEAD = 0.10  # epoch wall within 10% of the sum of its steps


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(devices: list[str], peers: dict) -> dict:
    import snnlab

    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "snnlab": getattr(snnlab, "__version__", "?"),
        "snntorch": peers.get("snntorch"),
        "spikingjelly": peers.get("spikingjelly"),
        "load_avg_1m": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    if "cuda" in devices:
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# ---------------------------------------------------------------------------------------------- rows


# glibc settings of --tuned-malloc, the ones snnlab's train() applies (engine/allocator.py): every block
# comes from the heap (no mmap) and up to 256 MiB of freed heap is kept, instead of being handed back to the
# kernel and faulted in again (zero-filled) at the next step.
TUNED_MALLOC = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(256 * 2**20),
    "MALLOC_MMAP_MAX_": "0",
}


def run_worker(spec: dict, timeout: float, memory: bool = False, tuned_malloc: bool = False) -> dict:
    env = dict(os.environ)
    if memory:  # see measure.py: freed blocks over 64 KiB go back to the system, so RSS follows live tensors
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    elif tuned_malloc:
        env.update(TUNED_MALLOC)
    cmd = [sys.executable, str(HERE / "measure.py"), json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def skipped(lib: str, case: nets.Case, peers: dict) -> str | None:
    """Why ``lib`` has no row for ``case`` (a peer that does not import, a library the case does not fit)."""
    if lib in peers and not peers[lib]:
        return peers.get(f"{lib}_error", "not installed")
    if lib == "snnlab-bf16" and case.kind == "long":
        return "no layer to run in bfloat16 (one neuron layer on given currents)"
    if lib == "floor" and case.kind == "long":
        return "no layer: the neuron is the whole step"
    if lib == "snnlab-modules" and case.kind != "fc":
        return "written for tutorial 5's network only"
    return None


def measure_rows(devices, cases, libraries, peers, args) -> list[dict]:
    rows = []
    for device in devices:
        for case in cases:
            for lib in libraries:
                row = {"device": device, "case": case.name, "library": lib}
                why = skipped(lib, case, peers)
                if why is not None:
                    rows.append({**row, "skipped": why})
                    continue
                spec = {
                    "library": lib,
                    "case": case.name,
                    "device": device,
                    "repeats": args.repeats,
                    "warmup": args.warmup,
                    "profile": args.profile and lib.startswith("snnlab"),
                }
                log(f"  {device:4} {case.name:12} {lib:13} ...")
                row.update(run_worker(spec, args.timeout, tuned_malloc=args.tuned_malloc))
                if device == "cpu" and "error" not in row:
                    mem = run_worker({**spec, "mode": "memory"}, args.timeout, memory=True)
                    row["peak_bytes"] = mem.get("peak_rss_bytes")
                rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------- tables


def _mb(n) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}"


def speed_table(rows: list[dict]) -> str:
    out = [
        "| device | network | B | T | library | backend | step ms (median) | IQR ms | samples/s "
        "| page faults/step | peak MB | saved MB | x floor | snnlab faster by | snnlab memory ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = {(r["device"], r["case"]): r for r in rows if r["library"] == "snnlab" and "median_s" in r}
    floors = {(r["device"], r["case"]): r for r in rows if r["library"] == "floor" and "median_s" in r}
    for r in rows:
        case = nets.CASE_BY_NAME[r["case"]]
        head = f"| {r['device']} | {r['case']} | {case.batch} | {case.time_steps} | {r['library']} "
        if "median_s" not in r:
            reason = r.get("skipped") or r.get("error", "?")
            out.append(head + f"| skipped: {reason} |" + " |" * 9)
            continue
        b = base.get((r["device"], r["case"]))
        iqr = f"{(r['q3_s'] - r['q1_s']) * 1e3:.1f}" if "q3_s" in r else "-"
        speed = mem_ratio = "-"
        floor = floors.get((r["device"], r["case"]))
        vs_floor = f"{r['median_s'] / floor['median_s']:.2f}" if floor is not None else "-"
        if b is not None and r["library"] not in ("snnlab", "floor"):
            speed = f"{r['median_s'] / b['median_s']:.2f}x"
            if r.get("peak_bytes") and b.get("peak_bytes"):
                mem_ratio = f"{b['peak_bytes'] / r['peak_bytes']:.2f}"
        out.append(
            head + f"| {r['backend']} | {r['median_s'] * 1e3:.1f} | {iqr} | {case.batch / r['median_s']:,.0f} "
            f"| {r.get('page_faults_per_step', 0):,.0f} | {_mb(r.get('peak_bytes'))} | {_mb(r.get('saved_bytes'))} "
            f"| {vs_floor} | {speed} | {mem_ratio} |"
        )
    return "\n".join(out)


def equivalence_table(checks: list[dict]) -> str:
    out = [
        "| device | peer | network | snnlab path | configuration | spikes differing | max abs diff membrane "
        "| max rel diff gradients (worst) | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        out.append(
            f"| {c['device']} | {c['peer']} | {c['case']} | {c['path']} | {c['config']} "
            f"| {c['spike_mismatch']:,} / {c['spikes_total']:,} | {c['mem_diff']:.2e} (of {c['mem_scale']:.3g}) "
            f"| {c['grad_diff']:.2e} ({c['grad_worst']}) | {c['verdict']} |"
        )
    return "\n".join(out)


def epoch_table(checks: list[dict]) -> str:
    out = [
        "| device | epoch | steps | sum of step times s | loop wall s | overhead | trainer epoch_time s (incl. eval) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        et = "-" if c["epoch_time_s"] is None else f"{c['epoch_time_s']:.2f}"
        out.append(
            f"| {c['device']} | {c['epoch']} | {c['steps']} | {c['step_sum_s']:.2f} | {c['loop_wall_s']:.2f} "
            f"| {c['overhead'] * 100:+.1f}% | {et} |"
        )
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- targets


def targets(rows: list[dict], epochs: list[dict], devices: list[str]) -> list[str]:
    def row(device, case, lib):
        return next((r for r in rows if (r["device"], r["case"], r["library"]) == (device, case, lib)), None)

    lines = []
    ours = row("cpu", "fc-direct", "snnlab")
    for peer in ("snntorch", "spikingjelly"):
        theirs = row("cpu", "fc-direct", peer)
        if ours and theirs and "median_s" in ours and "median_s" in theirs:
            ratio = theirs["median_s"] / ours["median_s"]
            met = "MET" if ratio >= TARGET_SPEEDUP else "NOT MET"
            lines.append(
                f"CPU tutorial 5 step, snnlab >= {TARGET_SPEEDUP:g}x faster than {peer}: {met} "
                f"({ours['median_s'] * 1e3:.1f} ms vs {theirs['median_s'] * 1e3:.1f} ms = {ratio:.2f}x)"
            )
        else:
            lines.append(f"CPU tutorial 5 step vs {peer}: not measured")
    ours, theirs = row("cpu", "long-T500", "snnlab"), row("cpu", "long-T500", "snntorch")
    if ours and theirs and ours.get("peak_bytes") and theirs.get("peak_bytes"):
        ratio = ours["peak_bytes"] / theirs["peak_bytes"]
        met = "MET" if ratio <= TARGET_MEMORY else "NOT MET"
        lines.append(
            f"Peak training memory at T=500 (one neuron layer, no weights), snnlab <= 1/4 of snnTorch: {met} "
            f"({_mb(ours['peak_bytes'])} MB vs {_mb(theirs['peak_bytes'])} MB = {ratio:.2f}; saved for backward "
            f"{_mb(ours.get('saved_bytes'))} vs {_mb(theirs.get('saved_bytes'))} MB; networks with "
            "train.bptt_segment: auto in bptt_memory.py)"
        )
    else:
        lines.append("Peak training memory at T=500 vs snnTorch: not measured")
    if "cuda" not in devices:
        lines.append("CUDA targets: not measured (no CUDA device in this run)")
    for e in epochs:
        met = "MET" if abs(e["overhead"]) <= TARGET_OVERHEAD else "NOT MET"
        lines.append(
            f"Epoch {e['epoch']} ({e['device']}) loop wall within 10% of the sum of step times: {met} "
            f"({e['loop_wall_s']:.2f} s vs {e['step_sum_s']:.2f} s, {e['overhead'] * 100:+.1f}%)"
        )
    return lines


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: 3 repeats, 1 warm-up, no T=1000")
    p.add_argument("--device", choices=("cpu", "cuda", "all"), default="all", help="all: CPU, and CUDA if present")
    p.add_argument(
        "--only",
        default="",
        help="comma-separated names to keep: networks (fc-direct, long-T500, ...), libraries (floor, snnlab, "
        "snnlab-modules, snnlab-bf16, snnlab-ref, snntorch, spikingjelly) or sections (speed, equivalence, epoch)",
    )
    p.add_argument("--repeats", type=int, default=None, help="timed steps per row (default 10; --quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3; --quick 1)")
    p.add_argument("--json", type=Path, help="also write every result here")
    p.add_argument("--profile", action="store_true", help="print torch.profiler's top ops for snnlab rows")
    p.add_argument(
        "--tuned-malloc",
        action="store_true",
        help="time every library with glibc told to keep freed memory (MALLOC_MMAP_THRESHOLD_=32 MiB, "
        "MALLOC_TRIM_THRESHOLD_=256 MiB, MALLOC_MMAP_MAX_=0) instead of faulting it in again each step",
    )
    p.add_argument("--timeout", type=float, default=1800, help="seconds per row before it is abandoned")
    args = p.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    return args


def select(names: str):
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {c.name for c in nets.CASES} | set(nets.LIBRARIES) | set(SECTIONS)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SystemExit(f"--only: unknown name {unknown[0]!r} (choose from: {', '.join(sorted(known))})")

    def keep(group: set[str], name: str) -> bool:
        chosen = [n for n in wanted if n in group]
        return not chosen or name in chosen

    return keep


def main(argv=None) -> int:
    args = parse_args(argv)
    keep = select(args.only)
    devices = ["cpu"] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append("cuda")
    elif args.device == "cuda":
        raise SystemExit("--device cuda: no CUDA device is available")
    peers = nets.peer_versions()
    case_names = {c.name for c in nets.CASES}
    cases = [c for c in nets.CASES if keep(case_names, c.name) and not (args.quick and c.time_steps >= 1000)]
    libraries = [lib for lib in nets.LIBRARIES if keep(set(nets.LIBRARIES), lib)]
    sections = [s for s in SECTIONS if keep(set(SECTIONS), s)]

    info = machine(devices, peers)
    print("# snnlab training benchmark")
    print(
        f"CPU: {info['cpu']} ({info['cores']} cores, torch threads {info['torch_threads']}); "
        + (f"GPU: {info['gpu']}; " if "gpu" in info else "GPU: none; ")
        + f"python {info['python']}, torch {info['torch']}, snnlab {info['snnlab']}, "
        f"snntorch {info['snntorch'] or 'not installed'}, spikingjelly {info['spikingjelly'] or 'not installed'}"
    )
    print(
        f"{info['date']}, load average (1 min) {info['load_avg_1m']:.2f}; {args.repeats} timed steps after "
        f"{args.warmup} warm-up per row"
        + (" (--quick)" if args.quick else "")
        + (
            "; timed with --tuned-malloc (" + ", ".join(f"{k}={v}" for k, v in TUNED_MALLOC.items()) + ")"
            if args.tuned_malloc
            else "; default glibc malloc"
        )
    )
    for lib in ("snntorch", "spikingjelly"):
        if not peers.get(lib):
            print(f"note: {lib} rows skipped: {peers.get(f'{lib}_error', 'not installed')}")
    results: dict = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}}

    if "speed" in sections:
        log("speed and memory:")
        rows = measure_rows(devices, cases, libraries, peers, args)
        results["rows"] = rows
        print("\n## Training step: time and memory\n")
        print(speed_table(rows))
        print(
            "\nstep = encode + forward + loss + backward + Adam step (long-T*: no weights, so no optimizer step). "
            "peak MB: CPU, the resident-memory high-water mark of one step over the memory just before it (fresh "
            "process, glibc told to return freed blocks); CUDA, max_memory_allocated over the timed steps. "
            "saved MB: distinct storages autograd holds for backward when the forward ends. "
            "page faults/step: minor faults during the timed steps (memory the kernel maps and zeroes anew). "
            "'x floor' = row time / the floor row's time (snnlab's layers with no neuron); "
            "'snnlab faster by' = row time / snnlab time; 'snnlab memory ratio' = snnlab peak / row peak."
        )
        for r in rows:
            if r.get("profile"):
                print(f"\n### profile: {r['device']} {r['case']} {r['library']}\n\n```\n{r['profile']}```")
    else:
        rows = []

    if "equivalence" in sections and (peers.get("snntorch") or peers.get("spikingjelly")):
        import equivalence

        log("equivalence:")
        checks = []
        for device in devices:
            for c in equivalence.run(torch.device(device), peers, only=lambda name: keep(case_names, name)):
                checks.append({"device": device, **c.as_dict()})
        results["equivalence"] = checks
        print("\n## Equivalence (identical weights and inputs)\n")
        print(equivalence_table(checks))
        print("\nconfigurations: " + "; ".join(f"{k}: {v}" for k, v in equivalence.SJ_CONFIG_NOTES.items()))
        print("snnTorch 'defaults': snn.Leaky(beta=0.95) as is, against snnlab's defaults (subtract, thr 1, atan 2).")

    epochs = []
    if "epoch" in sections:
        import epoch

        log("epoch overhead:")
        for device in devices:
            try:
                epochs += [{"device": device, **c.as_dict()} for c in epoch.run(torch.device(device))]
            except Exception as exc:  # a config module still in the works must not sink the whole table
                print(f"\nepoch check on {device} skipped: {type(exc).__name__}: {exc}")
        results["epoch"] = epochs
        if epochs:
            print("\n## Epoch wall time vs the sum of its step times (trainer, tutorial 5 on the bundled sample)\n")
            print(epoch_table(epochs))

    lines = targets(rows, epochs, devices)
    results["targets"] = lines
    print("\n## Targets\n")
    print("\n".join(f"- {line}" for line in lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
