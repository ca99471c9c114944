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
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from snnlab.engine import neurons
from snnlab.engine.quant import state_quant

T, B, N = 50, 16, 64
MEM_TOL = 1e-5  # of the largest |membrane|, at least 1
GRAD_TOL = 1e-4  # of the largest |gradient| of that tensor
RESETS = ("subtract", "zero", "none")
CONV = (4, 4, 4)  # the N features as [C, H, W] for the neurons with a recurrent convolution
LSTM_THRESHOLD = 0.1


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
    lstm = dict(threshold=LSTM_THRESHOLD, learn_threshold=True)
    return {
        "Leaky": (
            lambda r, **o: snn.Leaky(**o, reset_mechanism=r, **beta),
            lambda r, fused, **o: neurons.Leaky(**o, reset=r, fused=fused, **beta),
            1.0,
            "state",
        ),
        "Synaptic": (
            lambda r, **o: snn.Synaptic(**o, alpha=0.6, learn_alpha=True, reset_mechanism=r, **beta),
            lambda r, fused, **o: neurons.Synaptic(**o, alpha=0.6, learn_alpha=True, reset=r, fused=fused, **beta),
            0.5,
            "state",
        ),
        "RLeaky (one-to-one V)": (
            lambda r, **o: snn.RLeaky(**o, V=0.3, all_to_all=False, reset_mechanism=r, **beta),
            lambda r, fused, **o: neurons.RLeaky(**o, V=0.3, all_to_all=False, reset=r, fused=fused, **beta),
            1.0,
            "spike",
        ),
        "RLeaky (all-to-all)": (
            lambda r, **o: snn.RLeaky(**o, linear_features=N, reset_mechanism=r, **beta),
            lambda r, fused, **o: neurons.RLeaky(**o, features=N, reset=r, fused=fused, **beta),
            1.0,
            "spike",
        ),
        "Lapicque": (
            lambda r, **o: snn.Lapicque(**o, R=5.0, C=5e-3, time_step=1e-3, reset_mechanism=r, learn_threshold=True),
            lambda r, fused, **o: neurons.Lapicque(
                **o, R=5.0, C=5e-3, time_step=1e-3, reset=r, fused=fused, learn_threshold=True
            ),  # fmt: skip
            1.0,
            "state",
        ),
        # snnTorch derives the missing constants from beta (R = 1, or C, or R) and then updates with
        # 1 - dt/(R*C) = 1 - ln(1/beta) as the decay and dt/C as the input scale; inputs are scaled so that the
        # steady membrane (R times the input) crosses the threshold.
        "Lapicque (beta)": (
            lambda r, **o: snn.Lapicque(**o, beta=0.9, time_step=1e-3, reset_mechanism=r, learn_threshold=True),
            lambda r, fused, **o: neurons.Lapicque(
                **o, beta=0.9, time_step=1e-3, reset=r, fused=fused, learn_threshold=True
            ),
            5.0,
            "state",
        ),
        "Lapicque (beta, R)": (
            lambda r, **o: snn.Lapicque(**o, beta=0.9, R=2.0, time_step=1e-3, reset_mechanism=r, learn_threshold=True),
            lambda r, fused, **o: neurons.Lapicque(
                **o, beta=0.9, R=2.0, time_step=1e-3, reset=r, fused=fused, learn_threshold=True
            ),  # fmt: skip
            2.5,
            "state",
        ),
        "Lapicque (beta, C)": (
            lambda r, **o: snn.Lapicque(**o, beta=0.9, C=5e-3, time_step=1e-3, reset_mechanism=r, learn_threshold=True),
            lambda r, fused, **o: neurons.Lapicque(
                **o, beta=0.9, C=5e-3, time_step=1e-3, reset=r, fused=fused, learn_threshold=True
            ),  # fmt: skip
            2.5,
            "state",
        ),
        "Alpha": (
            lambda r, **o: _learnable_alpha(snn.Alpha(**o, alpha=0.9, reset_mechanism=r, **beta)),
            lambda r, fused, **o: neurons.Alpha(**o, alpha=0.9, learn_alpha=True, reset=r, fused=fused, **beta),
            1.0,
            "state",
        ),
        "RSynaptic (one-to-one V)": (
            lambda r, **o: snn.RSynaptic(**o, V=0.3, all_to_all=False, reset_mechanism=r, **synaptic),
            lambda r, fused, **o: neurons.RSynaptic(**o, V=0.3, all_to_all=False, reset=r, fused=fused, **synaptic),
            0.5,
            "spike",
        ),
        "RSynaptic (all-to-all)": (
            lambda r, **o: snn.RSynaptic(**o, linear_features=N, reset_mechanism=r, **synaptic),
            lambda r, fused, **o: neurons.RSynaptic(**o, features=N, reset=r, fused=fused, **synaptic),
            0.5,
            "spike",
        ),
        "RLeaky (conv 3x3)": (
            lambda r, **o: snn.RLeaky(**o, conv2d_channels=CONV[0], kernel_size=3, reset_mechanism=r, **beta),
            lambda r, fused, **o: neurons.RLeaky(
                **o, conv2d_channels=CONV[0], kernel_size=3, reset=r, fused=fused, **beta
            ),
            1.0,
            "spike",
        ),
        "RSynaptic (conv 3x3)": (
            lambda r, **o: snn.RSynaptic(**o, conv2d_channels=CONV[0], kernel_size=3, reset_mechanism=r, **synaptic),
            lambda r, fused, **o: neurons.RSynaptic(
                **o, conv2d_channels=CONV[0], kernel_size=3, reset=r, fused=fused, **synaptic
            ),  # fmt: skip
            0.5,
            "spike",
        ),
        "LeakyParallel": (
            lambda r, **o: snn.LeakyParallel(**o, input_size=N, hidden_size=N, **beta),
            lambda r, fused, **o: neurons.LeakyParallel(N, N, fused=fused, **beta, **o),
            8.0,
            "sequence",
        ),
        # The LSTM neurons' membrane o*tanh(syn) stays inside (-1, 1): a low threshold makes them fire.
        "SLSTM": (
            lambda r, **o: snn.SLSTM(N, N, reset_mechanism=r, **lstm, **o),
            lambda r, fused, **o: neurons.SLSTM(N, N, reset=r, fused=fused, **lstm, **o),
            4.0,
            "state",
        ),
        "SConv2dLSTM (conv 3x3)": (
            lambda r, **o: snn.SConv2dLSTM(CONV[0], CONV[0], 3, reset_mechanism=r, **lstm, **o),
            lambda r, fused, **o: neurons.SConv2dLSTM(CONV[0], CONV[0], 3, reset=r, fused=fused, **lstm, **o),
            4.0,
            "state",
        ),
        "SConv2dLSTM (conv 3x3, max_pool 2)": (
            lambda r, **o: snn.SConv2dLSTM(CONV[0], CONV[0], 3, max_pool=2, reset_mechanism=r, **lstm, **o),
            lambda r, fused, **o: neurons.SConv2dLSTM(
                CONV[0], CONV[0], 3, max_pool=2, reset=r, fused=fused, **lstm, **o
            ),
            4.0,
            "state",
        ),
        "SConv2dLSTM (conv 3x3, avg_pool 2)": (
            lambda r, **o: snn.SConv2dLSTM(CONV[0], CONV[0], 3, avg_pool=2, reset_mechanism=r, **lstm, **o),
            lambda r, fused, **o: neurons.SConv2dLSTM(
                CONV[0], CONV[0], 3, avg_pool=2, reset=r, fused=fused, **lstm, **o
            ),
            4.0,
            "state",
        ),
    }


# snnTorch's neuron options: (snnTorch's arguments, snnlab's), each tried on every neuron whose snnTorch class
# takes it (graded_spikes_factor: every neuron has the buffer; where the constructor does not take it, the
# script sets it on the module, and snnTorch's forward reads it).
def _options():
    from snntorch.functional import quant

    graded = dict(graded_spikes_factor=2.0, learn_graded_spikes_factor=True)
    return {
        "graded_spikes_factor=2, learned": (lambda: graded, lambda: graded),
        "inhibition": (lambda: dict(inhibition=True), lambda: dict(inhibition=True)),
        "reset_delay=False": (lambda: dict(reset_delay=False), lambda: dict(reset_delay=False)),
        "state_quant, 4 bits uniform": (
            lambda: dict(state_quant=quant.state_quant(num_bits=4, threshold=1.0)),
            lambda: dict(state_quant=state_quant(num_bits=4, threshold=1.0)),
        ),
        "state_quant, 5 bits geometric": (
            lambda: dict(state_quant=quant.state_quant(num_bits=5, uniform=False, threshold=1.0)),
            lambda: dict(state_quant=state_quant(num_bits=5, uniform=False, threshold=1.0)),
        ),
        "surrogate_disable": (lambda: dict(surrogate_disable=True), lambda: dict(surrogate_disable=True)),
    }


def _peer_with(make_peer: Callable, reset: str, options: dict) -> nn.Module | None:
    """snnTorch's module with ``options``; None when its class does not have one of them."""
    options = dict(options)
    graded = {k: options.pop(k) for k in ("graded_spikes_factor", "learn_graded_spikes_factor") if k in options}
    takes = inspect.signature(type(make_peer(reset)).__init__).parameters
    if any(k not in takes for k in options):
        return None
    if graded and "graded_spikes_factor" in takes:
        return make_peer(reset, **options, **graded)
    peer = make_peer(reset, **options)
    if graded:  # the constructor does not take it; the buffer is there, and forward reads it
        del peer._buffers["graded_spikes_factor"]
        peer.graded_spikes_factor = nn.Parameter(torch.tensor(graded["graded_spikes_factor"]))
    return peer


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


def _version() -> str:
    import snntorch

    return snntorch.__version__


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


def compare(name: str, reset: str, path: str, option: str | None = None) -> Row | None:
    """One case; None when snnTorch's class does not have ``option``."""
    import snntorch as snn

    make_peer, make_ours, scale, how = _cases(snn)[name]
    peer_options, our_options = _options()[option] if option else (dict, dict)
    peer = _peer_with(make_peer, reset, peer_options())
    if peer is None:
        return None
    ours = make_ours(reset, path == "fused", **our_options())
    load_peer_state(ours, peer)  # the recurrent weights; every other entry holds the same value already
    shape = (T, B, *CONV) if "conv" in name else (T, B, N)  # "conv": a recurrent or LSTM convolution
    x_peer = (_inputs(len(name)) * scale).reshape(shape).requires_grad_()
    x_ours = x_peer.detach().clone().requires_grad_()
    label = name if option is None else f"{name}, {option}"
    try:
        spk_p, mem_p = _run_snntorch(peer, x_peer, how)
    except RuntimeError as exc:  # snnTorch's own bug: nothing to compare against
        return Row(label, reset, path, 0, 0, 0.0, 0.0, "", f"snnTorch {_version()} raises: {str(exc)[:60]}")
    out = ours(x_ours)
    spk_o, mem_o = out[0], out[-1]
    # The weights in the shape of each output (a pooled SConv2dLSTM's spikes are smaller than its membrane).
    w_spk, w_mem = (
        w.flatten()[: o.numel()].reshape(o.shape) for w, o in zip(_loss_weights(), (spk_p, mem_p), strict=True)
    )
    ((spk_p * w_spk).sum() + (mem_p * w_mem).sum()).backward()
    ((spk_o * w_spk).sum() + (mem_o * w_mem).sum()).backward()
    grads = [("input", x_ours.grad, x_peer.grad)]
    theirs = _learnable(peer)
    for pname, p in _learnable(ours).items():
        if pname in theirs:
            grads.append((pname, p.grad, theirs[pname].grad))
    worst, grad_diff = "", 0.0
    for gname, g, h in grads:
        if g is None and h is None:
            continue
        # A parameter no output depends on gets no gradient on one side and zeros on the other.
        g, h = (v if v is not None else torch.zeros_like(g if h is None else h) for v in (g, h))
        rel = float((g - h).abs().max()) / max(float(h.abs().max()), 1e-12)
        if rel >= grad_diff:
            worst, grad_diff = gname, rel
    differ = int((spk_o != spk_p).sum())
    mem_diff = float((mem_o - mem_p).detach().abs().max())
    largest = float(mem_p.detach().abs().max())
    ok = differ == 0 and mem_diff <= MEM_TOL * max(1.0, largest) and grad_diff <= GRAD_TOL
    return Row(label, reset, path, differ, spk_p.numel(), mem_diff, grad_diff, worst, "PASS" if ok else "FAIL")


def run(options: bool = False) -> list[Row]:
    """Every neuron x reset x path; with ``options``, each of snnTorch's options on every neuron that has it."""
    import snntorch as snn

    rows = []
    for option in _options() if options else (None,):
        for name, case in _cases(snn).items():
            if option == "inhibition" and "conv" in name:
                continue  # snnTorch picks a winner among [N] features only
            if option in ("inhibition", "reset_delay=False") and "LSTM" in name:
                continue  # snnTorch's LSTM neurons ignore inhibition and have no reset_delay
            # SLSTM and SConv2dLSTM have one path (no fused kernel): their rows are the reference loop's.
            paths = ("fused", "reference") if case[1]("none", True).uses_fused else ("reference",)
            for reset in RESETS if case[3] != "sequence" else ("none",):  # LeakyParallel has no reset
                for path in paths:
                    torch.manual_seed(0)
                    row = compare(name, reset, path, option)
                    if row is not None:
                        rows.append(row)
    return rows


def option_table(rows: list[Row]) -> str:
    """The option rows folded per option and neuron: the worst over resets and paths."""
    lines = ["| neuron, option | cases | spikes that differ | max abs membrane diff | max rel gradient diff | "
             "verdict |", "|---|---|---|---|---|---|"]  # fmt: skip
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.neuron, []).append(r)
    for label, group in groups.items():
        differ = sum(r.spikes_differ for r in group)
        spikes = sum(r.spikes for r in group)
        worst = max(group, key=lambda r: r.grad_diff)
        verdicts = {r.verdict for r in group}
        verdict = "FAIL" if "FAIL" in verdicts else ", ".join(sorted(verdicts))
        lines.append(f"| {label} | {len(group)} | {differ:,} / {spikes:,} | {max(r.mem_diff for r in group):.2e} | "
                     f"{worst.grad_diff:.2e} ({worst.grad_worst}) | {verdict} |")  # fmt: skip
    return "\n".join(lines)


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
    option_rows = run(options=True)
    states = state_rows()
    print(f"snnlab against snnTorch {version}, torch {torch.__version__}, T={T} B={B} N={N}, ATan(alpha=2)\n")
    print(table(rows))
    print("\nsnnTorch's neuron options (each row: every reset, and every path the neuron has):\n")
    print(option_table(option_rows))
    print(f"\nState dicts (besides {', '.join(sorted(SNNTORCH_ONLY))}, which snnlab has no use for):\n")
    print(state_table(states))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rows": [asdict(r) for r in rows + option_rows], "state_dicts": states}, f, indent=1)
    return 1 if any(r.verdict == "FAIL" for r in rows + option_rows) else 0


if __name__ == "__main__":
    sys.exit(main())
