"""snnlab's batchnorm_tt against snnTorch's BatchNormTT1d / BatchNormTT2d on identical inputs.

snnTorch's layer is an ``nn.ModuleList`` of T BatchNorms which the user steps through, ``bntt[t](x[t])``;
snnlab's ``BatchNormTT`` takes the whole ``[T, B, ...]`` sequence. snnlab's module first loads snnTorch's
state dict (strictly: every name must match), then both train on the same three batches (forward, a
weighted sum backpropagated, one SGD step on the scales) and are compared: outputs, input gradients, the
scales' gradients and every running statistic after each batch, then the outputs in eval mode.

Run it in a venv with snnTorch (see BENCHMARKS.md)::

    python benchmarks/bntt_equivalence.py
"""

from __future__ import annotations

import sys

import torch
from torch import Tensor

from snnlab.engine.layers import BatchNormTT

T, B = 25, 32
TOL = 1e-5  # of the largest |value| of the compared tensor, at least 1
CASES = {  # name: (features, per-sample shape, snnTorch factory name)
    "1d [T, B, 64]": (64, (64,), "BatchNormTT1d"),
    "2d [T, B, 8, 12, 12]": (8, (8, 12, 12), "BatchNormTT2d"),
}


def _diff(a: Tensor | None, b: Tensor | None) -> float:
    if a is None or b is None:
        return 0.0 if a is None and b is None else float("inf")
    return float((a - b).detach().abs().max()) / max(1.0, float(b.detach().abs().max()))


def compare(name: str, affine: bool, momentum: float | None) -> tuple[str, float, float, float, float, str]:
    import snntorch as snn

    features, shape, factory = CASES[name]
    torch.manual_seed(0)
    peer = getattr(snn, factory)(features, T, momentum=momentum, affine=affine)
    if affine:
        with torch.no_grad():
            for bn in peer:
                bn.weight.uniform_(0.5, 2.0)
    ours = BatchNormTT(features, T, image=len(shape) == 3, momentum=momentum, affine=affine)
    ours.load_state_dict(peer.state_dict())  # strict
    opt_p = torch.optim.SGD(peer.parameters(), lr=0.1) if affine else None
    opt_o = torch.optim.SGD(ours.parameters(), lr=0.1) if affine else None
    out = grad = stats = weight = 0.0
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        scale = torch.linspace(0.5, 3, T).view(T, *[1] * (len(shape) + 1))
        x = torch.randn(T, B, *shape, generator=g) * scale + 1
        w = torch.randn(T, B, *shape, generator=g)
        x_p, x_o = x.clone().requires_grad_(), x.clone().requires_grad_()
        y_p = torch.stack([peer[t](x_p[t]) for t in range(T)])
        y_o = ours(x_o)
        (y_p * w).sum().backward()
        (y_o * w).sum().backward()
        out = max(out, _diff(y_o, y_p))
        grad = max(grad, _diff(x_o.grad, x_p.grad))
        for bp, bo in zip(peer, ours, strict=True):
            stats = max(stats, _diff(bo.running_mean, bp.running_mean), _diff(bo.running_var, bp.running_var))
            stats = max(stats, float(bo.num_batches_tracked != bp.num_batches_tracked))
            if affine:
                weight = max(weight, _diff(bo.weight.grad, bp.weight.grad))
        if opt_p is not None and opt_o is not None:
            opt_p.step(), opt_o.step()
            opt_p.zero_grad(), opt_o.zero_grad()
    peer.eval(), ours.eval()
    x = torch.randn(T, B, *shape, generator=g)
    with torch.no_grad():
        out = max(out, _diff(ours(x), torch.stack([peer[t](x[t]) for t in range(T)])))
    ok = max(out, grad, stats, weight) <= TOL
    return f"{name}, affine={affine}, momentum={momentum}", out, grad, weight, stats, "PASS" if ok else "FAIL"


def main() -> int:
    try:
        import snntorch
    except ImportError as exc:
        print(f"snnTorch is not installed here ({exc}); see BENCHMARKS.md for the peers' venv", file=sys.stderr)
        return 2
    print(f"snnlab batchnorm_tt against snnTorch {snntorch.__version__}, torch {torch.__version__}, T={T} B={B}\n")
    print("| case | output | input gradient | scale gradient | running stats | verdict |")
    print("|---|---|---|---|---|---|")
    rows = [compare(name, affine, momentum) for name in CASES for affine in (True, False) for momentum in (0.1, None)]
    for case, out, grad, weight, stats, verdict in rows:
        print(f"| {case} | {out:.2e} | {grad:.2e} | {weight:.2e} | {stats:.2e} | {verdict} |")
    print("\nmax abs difference, relative to the largest |value| of snnTorch's tensor when that is above 1")
    return 0 if all(r[-1] == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
