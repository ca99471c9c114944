"""Each snnlab surrogate gradient against its peer's (snnTorch, SpikingJelly, BrainPy), point by point.

For every surrogate with a peer: the gradient autograd gives through the peer's spike function and
through snnlab's (``grad_output = 1``, so what comes back is the surrogate gradient itself), at the peer's
default parameters and at one other set, on a dense grid of x in [-5, 5] (step 1e-4), at every kink the
parameters make, and at |x| = 10 .. 1e4. The comparison is in float64, so that it shows whether the
formulas are the same, not float32's rounding. A float32 pass on the same points and on |x| up to
float32's largest counts the points where each side's gradient is not finite (snnlab's must never be).

PASS: max relative difference <= 1e-6 where the peer's gradient is above 1e-6 of its peak, max absolute
difference <= 1e-7 of the peak everywhere the peer's is finite, and snnlab's finite everywhere.

Run it in a venv with the peers (see BENCHMARKS.md)::

    python benchmarks/surrogate_equivalence.py            # the table, markdown
    python benchmarks/surrogate_equivalence.py --json out.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from snnlab.engine import surrogates

REL_TOL = 1e-6  # where the peer's gradient is above REL_FLOOR of its peak
REL_FLOOR = 1e-6
ABS_TOL = 1e-7  # of the peak: a peer may round through float32 (snnTorch's LSO multiplies a float32 mask by slope)

SpikeFn = Callable[[Tensor], Tensor]


@dataclass
class Row:
    surrogate: str
    peer: str
    parameters: str
    abs_diff: float
    rel_diff: float
    peer_not_finite: int
    ours_not_finite: int
    points: int
    verdict: str
    note: str = ""


@dataclass
class Case:
    """snnlab's ``surrogate`` against ``peer`` (a label), at each of ``params`` (snnlab's names); ``make``
    builds the peer's spike function from snnlab's parameters."""

    surrogate: str
    peer: str
    params: list[dict[str, float]]
    make: Callable[[dict[str, float]], SpikeFn]
    note: str = ""


def _snntorch_cases() -> list[Case]:
    import snntorch.surrogate as st

    class LeakySpikeOperator(torch.autograd.Function):
        """snnTorch's own forward and backward, with the one-gradient return of its backward completed: in
        snnTorch 1.0 ``LSO()`` hands its slope to the stochastic operator (a TypeError), and
        ``LeakySpikeOperator.apply`` fails in backward (two inputs, one gradient)."""

        @staticmethod
        def forward(ctx: Any, x: Tensor, slope: float) -> Tensor:
            return st.LeakySpikeOperator.forward(ctx, x, slope)

        @staticmethod
        def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
            return st.LeakySpikeOperator.backward(ctx, grad_output), None

    def lso(p: dict[str, float]) -> SpikeFn:
        return lambda x: LeakySpikeOperator.apply(x, p["slope"])

    lso_note = (
        "snnTorch 1.0's LSO() raises a TypeError (it hands its slope to the stochastic operator), and "
        "LeakySpikeOperator.apply fails in backward (one gradient for two inputs): compared through "
        "LeakySpikeOperator's own forward and backward, with its return completed"
    )
    return [
        Case("atan", "snnTorch atan", [{}, {"alpha": 3.0}], lambda p: st.atan(alpha=p["alpha"])),
        Case("fast_sigmoid", "snnTorch fast_sigmoid", [{}, {"slope": 5.0}], lambda p: st.fast_sigmoid(p["slope"])),
        Case("sigmoid", "snnTorch sigmoid", [{}, {"slope": 3.0}], lambda p: st.sigmoid(slope=p["slope"]),
             "snnTorch's slope*exp(-slope*x) / (exp(-slope*x) + 1)^2 is inf/inf = NaN in float32 once "
             "slope*exp(-slope*x) overflows: x < -3.42 at slope 25"),
        Case("straight_through", "snnTorch straight_through_estimator", [{}],
             lambda p: st.straight_through_estimator()),
        Case("triangular", "snnTorch triangular", [{}, {"threshold": 0.5}],
             lambda p: st.triangular(threshold=p["threshold"])),
        Case("spike_rate_escape", "snnTorch spike_rate_escape", [{}, {"beta": 2.0, "slope": 3.0}],
             lambda p: st.spike_rate_escape(beta=p["beta"], slope=p["slope"])),
        Case("sparse_fast_sigmoid", "snnTorch SFS", [{}, {"slope": 4.0, "B": -0.5}],
             lambda p: st.SFS(slope=p["slope"], B=p["B"])),
        Case("leaky_spike_operator", "snnTorch LSO", [{}, {"slope": 0.3}], lso, lso_note),
    ]  # fmt: skip


def _spikingjelly_cases() -> list[Case]:
    from spikingjelly.activation_based import surrogate as sj

    def one(cls: Any) -> Callable[[dict[str, float]], SpikeFn]:
        return lambda p: cls(**p)

    return [
        Case("atan", "SpikingJelly ATan", [{}, {"alpha": 3.0}], one(sj.ATan)),
        Case("erf", "SpikingJelly Erf", [{}, {"alpha": 0.5}], one(sj.Erf)),
        Case("soft_sign", "SpikingJelly SoftSign", [{}, {"alpha": 0.7}], one(sj.SoftSign)),
        Case("piecewise_quadratic", "SpikingJelly PiecewiseQuadratic", [{}, {"alpha": 3.0}],
             one(sj.PiecewiseQuadratic)),
        Case("triangle", "SpikingJelly PiecewiseQuadratic(alpha = 1/width)", [{}, {"width": 0.5}],
             lambda p: sj.PiecewiseQuadratic(alpha=1 / p["width"])),
        Case("piecewise_exp", "SpikingJelly PiecewiseExp", [{}, {"alpha": 2.5}], one(sj.PiecewiseExp)),
        Case("sj_sigmoid", "SpikingJelly Sigmoid", [{}, {"alpha": 1.5}], one(sj.Sigmoid)),
        Case("super_spike", "SpikingJelly SuperSpike", [{}, {"alpha": 0.3}], one(sj.SuperSpike)),
        Case("nonzero_sign_log_abs", "SpikingJelly NonzeroSignLogAbs", [{}, {"alpha": 4.0}],
             one(sj.NonzeroSignLogAbs)),
        Case("piecewise_leaky_relu", "SpikingJelly PiecewiseLeakyReLU", [{}, {"w": 0.3, "c": 0.0}],
             one(sj.PiecewiseLeakyReLU)),
        Case("leaky_k_relu", "SpikingJelly LeakyKReLU", [{}, {"leak": 0.2, "k": 3.0}], one(sj.LeakyKReLU)),
        Case("log_tailed_relu", "SpikingJelly LogTailedReLU", [{}, {"alpha": 0.05}], one(sj.LogTailedReLU)),
        Case("q_pseudo_spike", "SpikingJelly QPseudoSpike", [{}, {"alpha": 1.5}], one(sj.QPseudoSpike)),
        Case("rect", "SpikingJelly Rect", [{}, {"alpha": 3.0}], one(sj.Rect)),
        Case("s2nn", "SpikingJelly S2NN", [{}, {"alpha": 2.0, "beta": 0.5}], one(sj.S2NN)),
        Case("squarewave_fourier_series", "SpikingJelly SquarewaveFourierSeries", [{}, {"n": 4, "T_period": 3.0}],
             lambda p: sj.SquarewaveFourierSeries(n=int(p["n"]), T_period=p["T_period"]),
             "SpikingJelly's cos((2i-1)*w*x) is cos(inf) = NaN where the product overflows; snnlab reduces x to one "
             "period first (exactly, with fmod), which also accounts for the 1e-12 at |x| = 1e4"),
    ]  # fmt: skip


def _points(params: dict[str, float], dtype: torch.dtype, extremes: bool) -> Tensor:
    """The dense grid, every kink a parameter can make (+-v, +-1/v, +-1/(2v), +-v/2), and large |x|."""
    special = [0.0, 1.0, 1e1, 1e2, 1e3, 1e4, *params.values()]
    special += [f(v) for v in params.values() if v != 0 for f in (lambda v: 1 / v, lambda v: 0.5 / v, lambda v: v / 2)]
    if extremes:
        special += [1e30, 3e38, torch.finfo(dtype).max]
    signed = torch.tensor(sorted({s * v for v in special for s in (1, -1)}), dtype=dtype)
    return torch.cat([torch.linspace(-5, 5, 100_001, dtype=dtype), signed])


def _autograd(spike: SpikeFn, x: Tensor) -> Tensor:
    x = x.clone().requires_grad_()
    out = spike(x)
    (g,) = torch.autograd.grad(out, x, torch.ones_like(out))
    return g.detach()


def _compare(case: Case) -> Row:
    abs_diff = rel_diff = 0.0
    peer_bad = ours_bad = points = 0
    for params in case.params:
        ours = surrogates.get(case.surrogate, **params)
        full = dict(ours.params)
        peer = case.make(full)
        x = _points(full, torch.float64, extremes=False)
        g_peer, g_ours = _autograd(peer, x), _autograd(ours.spike, x)
        finite = torch.isfinite(g_peer)
        peak = float(g_peer[finite].abs().max())
        diff = (g_ours - g_peer).abs()[finite]
        abs_diff = max(abs_diff, float(diff.max()) / max(peak, 1e-300))
        above = finite & (g_peer.abs() > REL_FLOOR * peak)
        if above.any():
            rel = ((g_ours - g_peer).abs()[above] / g_peer.abs()[above]).max()
            rel_diff = max(rel_diff, float(rel))
        x32 = _points(full, torch.float32, extremes=True)
        peer_bad += int((~torch.isfinite(_autograd(peer, x32))).sum())
        ours_bad += int((~torch.isfinite(_autograd(ours.spike, x32))).sum())
        points += x32.numel()
    ok = rel_diff <= REL_TOL and abs_diff <= ABS_TOL and ours_bad == 0
    shown = "; ".join(", ".join(f"{k}={v:g}" for k, v in p.items()) or "defaults" for p in case.params)
    return Row(case.surrogate, case.peer, shown, abs_diff, rel_diff, peer_bad, ours_bad, points,
               "PASS" if ok else "FAIL", case.note)  # fmt: skip


def run() -> tuple[list[Row], list[str]]:
    """The rows, and one line per peer that is not installed here."""
    cases: list[Case] = []
    missing = []
    for label, build in (("snnTorch", _snntorch_cases), ("SpikingJelly", _spikingjelly_cases)):
        try:
            cases += build()
        except ImportError as exc:
            missing.append(f"{label} is not installed here ({exc})")
    try:
        import brainpy  # noqa: F401
    except ImportError:
        missing.append(
            "BrainPy is not installed here: relu_grad is checked against ReluGrad's formula from BrainPy's source "
            "(alpha * max(width - |x|, 0)) in tests/engine/test_surrogates.py only"
        )
    else:
        missing.append("BrainPy is installed but not compared here (JAX arrays)")
    return [_compare(case) for case in cases], missing


def table(rows: list[Row]) -> str:
    """The markdown table; a row's note becomes a numbered footnote under it."""
    lines = [
        "| surrogate | peer | parameters | max abs diff / peak | max rel diff | not finite, float32 (peer / snnlab) "
        "| verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for r in rows:
        mark = ""
        if r.note:
            notes.append(r.note)
            mark = f" [{len(notes)}]"
        lines.append(
            f"| {r.surrogate} | {r.peer}{mark} | {r.parameters} | {r.abs_diff:.2e} | {r.rel_diff:.2e} | "
            f"{r.peer_not_finite:,} / {r.ours_not_finite:,} of {r.points:,} | {r.verdict} |"
        )
    for i, note in enumerate(notes, 1):
        lines += ["", f"[{i}] {note}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    rows, missing = run()
    versions = []
    for package in ("snntorch", "spikingjelly"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    print(f"snnlab's surrogates against {', '.join(versions) or 'no peer'}, torch {torch.__version__}\n")
    print(table(rows))
    for line in missing:
        print(f"\n{line}")
    uncovered = sorted({c.name for c in surrogates.names()} - {r.surrogate for r in rows})
    print(f"\nNo peer compared here: {', '.join(uncovered)}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([asdict(r) for r in rows], f, indent=1)
    return 0 if rows and all(r.verdict == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
