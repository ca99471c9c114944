"""snnlab's lif, if and plif against SpikingJelly 2.0's LIFNode, IFNode and ParametricLIFNode.

For every combination of decay_input (LIF, PLIF), v_reset in {0, None, -0.3} and detach_reset, and both snnlab
paths (fused scan, reference step loop): one layer ``[T, B, N]`` through SpikingJelly in step mode 's' (a
Python loop over time, its torch backend, ``store_v_seq``) and through snnlab in one call, with the ATan
surrogate, then backpropagate the same weighted sum of spikes and membranes through both. Spikes must be
identical, the membrane ``v_seq`` equal to float rounding, and the gradients (of the input, and of PLIF's ``w``)
within GRAD_TOL of the largest one. snnlab's PLIF starts from SpikingJelly's state dict (its ``w``).

Run it in a venv with SpikingJelly (see BENCHMARKS.md)::

    python benchmarks/spikingjelly_equivalence.py            # the table, markdown
    python benchmarks/spikingjelly_equivalence.py --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

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
    for path in ("fused", "reference"):
        ours.zero_grad()
        ours.fused = path == "fused"
        x_ours = x.clone().requires_grad_()
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
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
