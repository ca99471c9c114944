"""snnlab's lif, if and plif against SpikingJelly 2.0's LIFNode, IFNode and ParametricLIFNode.

For every combination of decay_input (LIF, PLIF), v_reset in {0, None, -0.3} and detach_reset, and both snnlab
paths (fused scan, reference step loop): one layer ``[T, B, N]`` through SpikingJelly in step mode 's' (a
Python loop over time, its torch backend, ``store_v_seq``) and through snnlab in one call, with the ATan
surrogate, then backpropagate the same weighted sum of spikes and membranes through both. Spikes must be
identical, the membrane ``v_seq`` equal to float rounding, and the gradients (of the input, and of PLIF's ``w``)
within GRAD_TOL of the largest one. snnlab's PLIF starts from SpikingJelly's state dict (its ``w``).

The path column says which scan ran: ``fused (C)`` is the C scan of ``kernels/leaky.c`` (CPU float32),
``fused (torch)`` the torch scan it replaces elsewhere, ``reference`` the step loop with autograd.

``--speed`` (no SpikingJelly needed) times snnlab's own scans instead: forward and backward of one layer,
the C scan against the torch scan, median of ``--repeats`` after ``--warmup``, on one thread.

Run it in a venv with SpikingJelly (see BENCHMARKS.md)::

    python benchmarks/spikingjelly_equivalence.py            # the table, markdown
    python benchmarks/spikingjelly_equivalence.py --json out.json
    python benchmarks/spikingjelly_equivalence.py --speed    # C scan vs torch scan
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from snnlab.engine.kernels import native
from snnlab.engine.kernels import spikingjelly as sj
from snnlab.engine.neurons import IF, LIF, PLIF

T, B, N = 50, 16, 64
TAU = 1.7
MEM_TOL = 1e-5  # of the largest |membrane|, at least 1
GRAD_TOL = 1e-4  # of the largest |gradient| of that tensor


@dataclass
class Row:
    neuron: str
    decay_input: bool | None
    v_reset: float | None
    detach_reset: bool
    path: str
    spike_rate: float
    spikes_equal: bool
    mem_err: float
    grad_err: float
    ok: bool


def _relative(a: Tensor, b: Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def compare(kind: str, decay_input: bool, v_reset: float | None, detach: bool, seed: int = 0) -> list[Row]:
    from spikingjelly.activation_based import neuron as sjn
    from spikingjelly.activation_based import surrogate as sjs

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, N, generator=g) * 1.5 + 0.6
    w_spk, w_mem = torch.randn(2, T, B, N, generator=g)
    common = dict(v_reset=v_reset, detach_reset=detach, store_v_seq=True, surrogate_function=sjs.ATan())
    ours_common = dict(v_reset=v_reset, detach_reset=detach, surrogate="atan")
    if kind == "if":
        theirs, ours = sjn.IFNode(**common), IF(**ours_common)
    elif kind == "lif":
        theirs, ours = sjn.LIFNode(TAU, decay_input, **common), LIF(TAU, decay_input, **ours_common)
    else:
        theirs, ours = sjn.ParametricLIFNode(TAU, decay_input, **common), PLIF(TAU, decay_input, **ours_common)
        ours.load_state_dict(theirs.state_dict())
    x_theirs = x.clone().requires_grad_()
    spk_theirs = torch.stack([theirs(x_theirs[t]) for t in range(T)])
    mem_theirs = theirs.v_seq
    ((spk_theirs * w_spk).sum() + (mem_theirs * w_mem).sum()).backward()
    grads_theirs = [x_theirs.grad] + ([theirs.w.grad] if kind == "plif" else [])
    rows = []
    for fused in (True, False):
        ours.zero_grad()
        ours.fused = fused
        x_ours = x.clone().requires_grad_()
        path = f"fused ({sj.path(x_ours, ours.leak(x_ours), ours.spike_fn)})" if fused else "reference"
        spk, mem = ours(x_ours)
        ((spk * w_spk).sum() + (mem * w_mem).sum()).backward()
        grads = [x_ours.grad] + ([ours.w.grad] if kind == "plif" else [])
        mem_err = ((mem - mem_theirs).abs().max() / mem_theirs.abs().max().clamp_min(1)).item()
        grad_err = max(_relative(a, b) for a, b in zip(grads, grads_theirs, strict=True))
        equal = torch.equal(spk, spk_theirs)
        rows.append(Row(kind, decay_input if kind != "if" else None, v_reset, detach, path,
                        round(spk_theirs.mean().item(), 3), equal, mem_err, grad_err,
                        equal and mem_err <= MEM_TOL and grad_err <= GRAD_TOL))  # fmt: skip
    return rows


def all_rows() -> list[Row]:
    rows = []
    for kind, decay_input, v_reset, detach in itertools.product(
        ("lif", "if", "plif"), (True, False), (0.0, None, -0.3), (False, True)
    ):
        if kind == "if" and not decay_input:
            continue
        rows += compare(kind, decay_input, v_reset, detach)
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| neuron | decay_input | v_reset | detach_reset | path | spike rate | spikes equal | membrane err | "
        "grad err | ok |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.neuron} | {'-' if r.decay_input is None else r.decay_input} | {r.v_reset} | {r.detach_reset} | "
            f"{r.path} | {r.spike_rate:.3f} | {r.spikes_equal} | {r.mem_err:.1e} | {r.grad_err:.1e} | "
            f"{'yes' if r.ok else 'NO'} |"
        )
    return "\n".join(lines)


# (name, T, B, N): SpikingJelly's lif_fc_mnist example (784-10, T=100, batch 64), and a wider hidden layer.
SPEED_CASES = [("lif_fc_mnist", 100, 64, 10), ("hidden-1000", 25, 128, 1000)]
SPEED_SURROGATES = ["sj_sigmoid", "atan"]  # SpikingJelly's default (a grad_ of its own), and a Steps one


@contextlib.contextmanager
def scan(which: str) -> Iterator[None]:
    """Run the C scan (``"C"``) or the torch scan (``"torch"``) inside the block."""
    usable = native.sj_usable
    if which == "torch":
        native.sj_usable = lambda *args: False  # type: ignore[assignment]
    try:
        yield
    finally:
        native.sj_usable = usable  # type: ignore[assignment]


def time_layer(kind: str, surrogate: str, T: int, B: int, N: int, which: str, warmup: int, repeats: int) -> float:
    """Median seconds of forward + backward of one layer (the neuron alone: its spikes get a dense gradient)."""
    neuron = {"if": IF, "lif": LIF, "plif": PLIF}[kind](surrogate=surrogate)
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(T, B, N, generator=g) * 1.5 + 0.6).requires_grad_()
    w = torch.randn(T, B, N, generator=g)
    times = []
    with scan(which):
        assert sj.path(x, neuron.leak(x), neuron.spike_fn) == which
        for i in range(warmup + repeats):
            start = time.perf_counter()
            x.grad = None
            neuron.zero_grad()
            spk, _ = neuron(x)
            spk.backward(w)  # dL/dspike = w, as a next layer would send back
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed(warmup: int, repeats: int) -> str:
    lines = [
        "| layer | T | B | N | neuron | surrogate | torch scan ms | C scan ms | speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, T, B, N), kind, surrogate in itertools.product(SPEED_CASES, ("lif", "plif", "if"), SPEED_SURROGATES):
        t_torch = time_layer(kind, surrogate, T, B, N, "torch", warmup, repeats)
        t_c = time_layer(kind, surrogate, T, B, N, "C", warmup, repeats)
        lines.append(f"| {name} | {T} | {B} | {N} | {kind} | {surrogate} | {t_torch * 1e3:.2f} | {t_c * 1e3:.2f} | "
                     f"{t_torch / t_c:.1f}x |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--speed", action="store_true", help="time the C scan against the torch scan instead")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per row (--speed)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (--speed)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.speed:
        if native.status() != "native":
            print(f"the C scan is not available: {native.status()}", file=sys.stderr)
            return 1
        print(speed(args.warmup, args.repeats))
        print(f"\nforward + backward of one layer, median of {args.repeats} after {args.warmup} warm-up runs, "
              f"1 thread, torch {torch.__version__}")  # fmt: skip
        return 0
    rows = all_rows()
    print(markdown(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in rows], f, indent=1)
    bad = [r for r in rows if not r.ok]
    print(f"\n{len(rows) - len(bad)}/{len(rows)} rows agree (T={T}, B={B}, N={N}, tau={TAU}, ATan surrogate)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
