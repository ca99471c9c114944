"""Each snnlab neuron against the snnTorch neuron of the same name, one layer on identical inputs.

For every neuron both libraries have, every reset, and both snnlab paths (fused, reference): run a
``[T, B, N]`` input current through snnTorch's module in a Python loop over time and through snnlab's
module in one call, then backpropagate the same weighted sum of spikes and membranes through both.
Spikes must be identical; membranes and gradients (of the input and of every learnable parameter) equal
to float rounding. Parameters are learnable on both sides so that their gradients are compared too.
snnlab's module starts from snnTorch's state dict; a second table says, per neuron, what of it loads.

Run it in a venv with snnTorch (see BENCHMARKS.md)::

    python benchmarks/neuron_equivalence.py            # the table, markdown
    python benchmarks/neuron_equivalence.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from snnlab.engine import neurons

T, B, N = 50, 16, 64
MEM_TOL = 1e-5  # of the largest |membrane|, at least 1
GRAD_TOL = 1e-4  # of the largest |gradient| of that tensor
RESETS = ("subtract", "zero", "none")
CONV = (4, 4, 4)  # the N features as [C, H, W] for the neurons with a recurrent convolution


@dataclass
class Row:
    neuron: str
    reset: str
    path: str
    spikes_differ: int
    spikes: int
    mem_diff: float
    grad_diff: float
    grad_worst: str
    verdict: str


def _inputs(seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, B, N, generator=g) * 0.8


def _loss_weights() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(7)
    return torch.randn(T, B, N, generator=g), torch.randn(T, B, N, generator=g)


# name: (snnTorch factory, snnlab factory, input scale, how snnTorch runs it: "state" (spk, *state = f(x[t],
# *state)), "spike" (the same, its spike part of the state) or "sequence" (spk = f(x), one call))
def _cases(snn) -> dict[str, tuple[Callable, Callable, float, str]]:
    beta = dict(beta=0.8, learn_beta=True, learn_threshold=True)
    synaptic = dict(alpha=0.6, learn_alpha=True, **beta)
    return {
        "Leaky": (
            lambda r: snn.Leaky(reset_mechanism=r, **beta),
            lambda r, fused: neurons.Leaky(reset=r, fused=fused, **beta),
            1.0,
            "state",
        ),
        "Synaptic": (
            lambda r: snn.Synaptic(alpha=0.6, learn_alpha=True, reset_mechanism=r, **beta),
            lambda r, fused: neurons.Synaptic(alpha=0.6, learn_alpha=True, reset=r, fused=fused, **beta),
            0.5,
            "state",
        ),
        "RLeaky (one-to-one V)": (
            lambda r: snn.RLeaky(V=0.3, all_to_all=False, reset_mechanism=r, **beta),
            lambda r, fused: neurons.RLeaky(V=0.3, all_to_all=False, reset=r, fused=fused, **beta),
            1.0,
            "spike",
        ),
        "RLeaky (all-to-all)": (
            lambda r: snn.RLeaky(linear_features=N, reset_mechanism=r, **beta),
            lambda r, fused: neurons.RLeaky(features=N, reset=r, fused=fused, **beta),
            1.0,
            "spike",
        ),
        "Lapicque": (
            lambda r: snn.Lapicque(R=5.0, C=5e-3, time_step=1e-3, reset_mechanism=r, learn_threshold=True),
            lambda r, fused: neurons.Lapicque(
                R=5.0, C=5e-3, time_step=1e-3, reset=r, fused=fused, learn_threshold=True
            ),  # fmt: skip
            1.0,
            "state",
        ),
        # snnTorch derives the missing constants from beta (R = 1, or C, or R) and then updates with
        # 1 - dt/(R*C) = 1 - ln(1/beta) as the decay and dt/C as the input scale; inputs are scaled so that the
        # steady membrane (R times the input) crosses the threshold.
        "Lapicque (beta)": (
            lambda r: snn.Lapicque(beta=0.9, time_step=1e-3, reset_mechanism=r, learn_threshold=True),
            lambda r, fused: neurons.Lapicque(beta=0.9, time_step=1e-3, reset=r, fused=fused, learn_threshold=True),
            5.0,
            "state",
        ),
        "Lapicque (beta, R)": (
            lambda r: snn.Lapicque(beta=0.9, R=2.0, time_step=1e-3, reset_mechanism=r, learn_threshold=True),
            lambda r, fused: neurons.Lapicque(
                beta=0.9, R=2.0, time_step=1e-3, reset=r, fused=fused, learn_threshold=True
            ),  # fmt: skip
            2.5,
            "state",
        ),
        "Lapicque (beta, C)": (
            lambda r: snn.Lapicque(beta=0.9, C=5e-3, time_step=1e-3, reset_mechanism=r, learn_threshold=True),
            lambda r, fused: neurons.Lapicque(
                beta=0.9, C=5e-3, time_step=1e-3, reset=r, fused=fused, learn_threshold=True
            ),  # fmt: skip
            2.5,
            "state",
        ),
        "Alpha": (
            lambda r: _learnable_alpha(snn.Alpha(alpha=0.9, reset_mechanism=r, **beta)),
            lambda r, fused: neurons.Alpha(alpha=0.9, learn_alpha=True, reset=r, fused=fused, **beta),
            1.0,
            "state",
        ),
        "RSynaptic (one-to-one V)": (
            lambda r: snn.RSynaptic(V=0.3, all_to_all=False, reset_mechanism=r, **synaptic),
            lambda r, fused: neurons.RSynaptic(V=0.3, all_to_all=False, reset=r, fused=fused, **synaptic),
            0.5,
            "spike",
        ),
        "RSynaptic (all-to-all)": (
            lambda r: snn.RSynaptic(linear_features=N, reset_mechanism=r, **synaptic),
            lambda r, fused: neurons.RSynaptic(features=N, reset=r, fused=fused, **synaptic),
            0.5,
            "spike",
        ),
        "RLeaky (conv 3x3)": (
            lambda r: snn.RLeaky(conv2d_channels=CONV[0], kernel_size=3, reset_mechanism=r, **beta),
            lambda r, fused: neurons.RLeaky(conv2d_channels=CONV[0], kernel_size=3, reset=r, fused=fused, **beta),
            1.0,
            "spike",
        ),
        "RSynaptic (conv 3x3)": (
            lambda r: snn.RSynaptic(conv2d_channels=CONV[0], kernel_size=3, reset_mechanism=r, **synaptic),
            lambda r, fused: neurons.RSynaptic(
                conv2d_channels=CONV[0], kernel_size=3, reset=r, fused=fused, **synaptic
            ),  # fmt: skip
            0.5,
            "spike",
        ),
        "LeakyParallel": (
            lambda r: snn.LeakyParallel(input_size=N, hidden_size=N, **beta),
            lambda r, fused: neurons.LeakyParallel(N, N, fused=fused, **beta),
            8.0,
            "sequence",
        ),
    }


def _learnable_alpha(module: nn.Module) -> nn.Module:
    """snnTorch 1.0's Alpha(learn_alpha=True) raises in its constructor (it assigns a clamped tensor to the
    parameter); make its alpha buffer a parameter afterwards, which its forward pass reads as it is."""
    alpha = module.alpha
    del module._buffers["alpha"]
    module.alpha = nn.Parameter(alpha.clone())
    return module


def _run_snntorch(module: nn.Module, x: Tensor, how: str) -> tuple[Tensor, Tensor]:
    """Step ``module`` through ``x`` as snnTorch's tutorials do: ``spk, *state = module(x[t], *state)``, or
    call it on the whole sequence (LeakyParallel, which returns spikes only: its membrane is its RNN's output)."""
    if how == "sequence":
        return module(x), module.rnn(x)[0]
    state = module.reset_mem()
    state = state if isinstance(state, tuple) else (state,)
    spikes, mems = [], []
    for t in range(x.shape[0]):
        out = module(x[t], *state)
        state = out if how == "spike" else out[1:]
        spikes.append(out[0])
        mems.append(out[-1])
    return torch.stack(spikes), torch.stack(mems)


# Entries of snnTorch's state dicts that snnlab has no use for: the spike scale (graded spikes, 1 unless set),
# the reset as a number (snnlab's reset argument) and a second name under which snnTorch stores V.
SNNTORCH_ONLY = {"graded_spikes_factor", "reset_mechanism_val", "recurrent.V"}


def load_peer_state(ours: nn.Module, peer: nn.Module) -> tuple[list[str], str]:
    """Load snnTorch's state dict into snnlab's module: ``(the names loaded, what did not load)``, the second
    "" when every entry loads or is one of SNNTORCH_ONLY and nothing of ours is left out."""
    state = peer.state_dict()
    mine = ours.state_dict()
    problems = []
    if isinstance(ours, neurons.Lapicque) and "beta" in state:
        # Same name, another quantity: snnTorch's is exp(-dt/(R*C)), which its update never reads; snnlab's
        # is the decay the update uses, 1 - dt/(R*C). Loading one into the other would change the neuron.
        state = {k: v for k, v in state.items() if k != "beta"}
        problems.append("beta (snnTorch's is exp(-dt/(R*C)), unused by its update; snnlab's the decay 1 - dt/(R*C))")
    problems += [f"{k} {list(v.shape)} vs {list(mine[k].shape)}" for k, v in state.items()
                if k in mine and v.shape != mine[k].shape]  # fmt: skip
    loadable = {k: v for k, v in state.items() if k in mine and v.shape == mine[k].shape}
    ours.load_state_dict(loadable, strict=False)
    problems += [f"{k} not in snnlab's" for k in state if k not in mine and k not in SNNTORCH_ONLY]
    problems += [f"{k} missing" for k in mine if k not in state and k not in peer.state_dict()]
    return sorted(loadable), "; ".join(problems)


def _learnable(module: nn.Module) -> dict[str, Tensor]:
    """Learnable tensors by the name both libraries give them (snnlab's ``V`` and ``recurrent`` match)."""
    return {name: p for name, p in module.named_parameters() if p.requires_grad}


def compare(name: str, reset: str, path: str) -> Row:
    import snntorch as snn

    make_peer, make_ours, scale, how = _cases(snn)[name]
    peer, ours = make_peer(reset), make_ours(reset, path == "fused")
    load_peer_state(ours, peer)  # the recurrent weights; every other entry holds the same value already
    shape = (T, B, *CONV) if "conv" in name else (T, B, N)
    x_peer = (_inputs(len(name)) * scale).reshape(shape).requires_grad_()
    x_ours = x_peer.detach().clone().requires_grad_()
    w_spk, w_mem = (w.reshape(shape) for w in _loss_weights())
    spk_p, mem_p = _run_snntorch(peer, x_peer, how)
    out = ours(x_ours)
    spk_o, mem_o = out[0], out[-1]
    ((spk_p * w_spk).sum() + (mem_p * w_mem).sum()).backward()
    ((spk_o * w_spk).sum() + (mem_o * w_mem).sum()).backward()
    grads = [("input", x_ours.grad, x_peer.grad)]
    theirs = _learnable(peer)
    for pname, p in _learnable(ours).items():
        if pname in theirs:
            grads.append((pname, p.grad, theirs[pname].grad))
    worst, grad_diff = "", 0.0
    for gname, g, h in grads:
        if g is None or h is None:
            worst, grad_diff = f"{gname} (missing)", float("inf")
            continue
        rel = float((g - h).abs().max()) / max(float(h.abs().max()), 1e-12)
        if rel >= grad_diff:
            worst, grad_diff = gname, rel
    differ = int((spk_o != spk_p).sum())
    mem_diff = float((mem_o - mem_p).detach().abs().max())
    largest = float(mem_p.detach().abs().max())
    ok = differ == 0 and mem_diff <= MEM_TOL * max(1.0, largest) and grad_diff <= GRAD_TOL
    return Row(name, reset, path, differ, spk_p.numel(), mem_diff, grad_diff, worst, "PASS" if ok else "FAIL")


def run() -> list[Row]:
    import snntorch as snn

    rows = []
    for name, case in _cases(snn).items():
        for reset in RESETS if case[3] != "sequence" else ("none",):  # LeakyParallel has no reset
            for path in ("fused", "reference"):
                torch.manual_seed(0)
                rows.append(compare(name, reset, path))
    return rows


def state_rows() -> list[tuple[str, str, str]]:
    """``(neuron, the entries of snnTorch's state dict that snnlab loads, problems)`` for each neuron."""
    import snntorch as snn

    rows = []
    for name, (make_peer, make_ours, _, _) in _cases(snn).items():
        peer, ours = make_peer("subtract"), make_ours("subtract", True)
        loaded, problems = load_peer_state(ours, peer)
        rows.append((name, ", ".join(loaded), problems))
    return rows


def state_table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| neuron | entries loaded from snnTorch's state dict | does not load |", "|---|---|---|"]
    lines += [f"| {name} | {shared} | {problems or '-'} |" for name, shared, problems in rows]
    return "\n".join(lines)


def table(rows: list[Row]) -> str:
    lines = [
        "| neuron | reset | snnlab path | spikes that differ | max abs membrane diff | max rel gradient diff "
        "| verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.neuron} | {r.reset} | {r.path} | {r.spikes_differ:,} / {r.spikes:,} | {r.mem_diff:.2e} | "
            f"{r.grad_diff:.2e} ({r.grad_worst}) | {r.verdict} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    try:
        import snntorch

        version = snntorch.__version__
    except ImportError as exc:
        print(f"snnTorch is not installed here ({exc}); see BENCHMARKS.md for the peers' venv", file=sys.stderr)
        return 2
    rows = run()
    states = state_rows()
    print(f"snnlab against snnTorch {version}, torch {torch.__version__}, T={T} B={B} N={N}, ATan(alpha=2)\n")
    print(table(rows))
    print(f"\nState dicts (besides {', '.join(sorted(SNNTORCH_ONLY))}, which snnlab has no use for):\n")
    print(state_table(states))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rows": [asdict(r) for r in rows], "state_dicts": states}, f, indent=1)
    return 0 if all(r.verdict == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
