"""Measure one (library, case, device) row in this process; ``bench_train.py`` runs it in a fresh one.

``python benchmarks/measure.py '{"library": "snnlab", "case": "fc-direct", "device": "cpu", "mode": "time"}'``
prints one JSON line.

- ``mode=time``: warm-up steps, then the median (and quartiles) of ``repeats`` timed training steps;
  then one more step under ``torch.autograd.graph.saved_tensors_hooks`` that adds up the bytes of every
  storage saved for backward (each storage once); on CUDA also ``torch.cuda.max_memory_allocated`` over
  the timed steps, less what was allocated before them.
- ``mode=memory`` (CPU): the peak resident memory of one training step over the resident memory just
  before it. The parent starts this process with ``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc gives
  every freed block over 64 KiB back to the system at once: resident memory then follows the live
  tensors, and the kernel's high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs``) is
  the step's peak. Timing is never taken in this mode, because mmap-per-allocation slows small steps.
"""

from __future__ import annotations

import gc
import json
import re
import resource
import statistics
import sys
import time
import weakref
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nets  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_kib(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{key}:\s+(\d+)", text).group(1))


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def saved_for_backward_bytes(bench: nets.Bench) -> int:
    """Bytes of the distinct storages that autograd still holds for backward when the forward ends.

    Tensors saved by a graph that was dropped at once (snnTorch's detached reset saves one per step)
    are not counted: only those still alive when ``loss`` is ready.
    """
    packed: list[tuple[weakref.ref, int, int]] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        packed.append((weakref.ref(t), s.data_ptr(), s.nbytes()))
        return t

    bench.clear_grads()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = bench.loss()
    gc.collect()
    alive = {ptr: nbytes for ref, ptr, nbytes in packed if ref() is not None}
    loss.backward()
    return sum(alive.values())


def time_row(bench: nets.Bench, device: torch.device, warmup: int, repeats: int) -> dict:
    for _ in range(warmup):
        bench.step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    times = []
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        t0 = time.perf_counter()
        bench.step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    # Minor page faults: memory the kernel had to map and zero for this process during the step.
    out = {"times": times, "median_s": statistics.median(times), "page_faults_per_step": faults / repeats}
    if len(times) >= 4:
        q = statistics.quantiles(times, n=4)
        out["q1_s"], out["q3_s"] = q[0], q[2]
    if device.type == "cuda":
        out["peak_bytes"] = torch.cuda.max_memory_allocated(device) - before
    out["saved_bytes"] = saved_for_backward_bytes(bench)
    return out


def memory_row(bench: nets.Bench, steps: int = 2) -> dict:
    bench.step()  # allocates the optimizer state and every lazily built buffer
    peaks = []
    for _ in range(steps):
        bench.clear_grads()  # the step frees last step's gradients first: keep them out of the baseline
        baseline = _status_kib("VmRSS")
        if not _reset_peak_rss():
            return {"peak_rss_bytes": None, "note": "cannot reset VmHWM"}
        bench.step()
        peaks.append((_status_kib("VmHWM") - baseline) * 1024)
    return {"peak_rss_bytes": max(peaks)}


def profile_row(bench: nets.Bench, steps: int = 3, rows: int = 15) -> str:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(steps):
            bench.step()
    sort = "self_cuda_time_total" if len(activities) > 1 else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=sort, row_limit=rows)


def main(spec: dict) -> dict:
    device = torch.device(spec["device"])
    case = nets.CASE_BY_NAME[spec["case"]]
    bench = nets.build(spec["library"], case, device)
    result = {"library": spec["library"], "case": case.name, "device": device.type, "backend": bench.backend}
    if spec.get("mode", "time") == "memory":
        result.update(memory_row(bench))
    else:
        result.update(time_row(bench, device, spec.get("warmup", 3), spec.get("repeats", 10)))
        if spec.get("profile"):
            result["profile"] = profile_row(bench)
    return result


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
