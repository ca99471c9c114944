"""Do snnlab and the peers compute the same thing? Identical weights, identical inputs, one backward each.

snnTorch: snnlab's Leaky (subtract reset, threshold 1, delayed detached reset, ATan alpha 2) is
snnTorch's ``snn.Leaky`` defaults equation for equation, so spikes must be equal, membranes equal to
float rounding and every weight gradient close.

SpikingJelly: its ``LIFNode`` resets immediately (``V[t] = H[t] - thr*S[t]``, then V decays), so with
a soft reset the next step loses ``beta*thr`` where snnTorch/snnlab lose ``thr``: those dynamics differ
by design (reported as DIFFERS with the share of spikes that differ). A hard reset to 0 is the same
equation in both (``mem[t] = beta*(1 - S[t-1])*mem[t-1] + I[t]``), so that configuration is compared
for a PASS: snnlab ``reset='zero'`` against ``LIFNode(tau=1/(1-beta), decay_input=False, v_reset=0,
detach_reset=True, ATan(2))``, with beta = 0.75 so that ``v - v/tau`` and ``beta*v`` round alike, on the
post-reset membrane ``mem*(1 - S)`` that SpikingJelly records. It fires on ``H >= thr`` where snnlab fires
on ``H > thr``; ties have probability ~0 with real-valued inputs, and a tie would show as a spike mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass

import nets
import torch
from torch import Tensor, nn

from snnlab.engine import encoders, losses
from snnlab.engine.models import build_model
from snnlab.engine.neurons import Leaky

CASES = ("fc-direct", "fc-rate", "conv-direct", "long-T100")
MEM_RTOL = 1e-5  # of the largest |membrane|, at least 1
GRAD_RTOL = 1e-4  # of the largest |gradient| of that tensor


@dataclass
class Check:
    peer: str
    case: str
    path: str  # snnlab path compared: fused | reference
    config: str
    spike_mismatch: int
    spikes_total: int
    mem_diff: float
    mem_scale: float
    grad_diff: float  # largest relative difference over all weight gradients
    grad_worst: str
    verdict: str  # PASS | FAIL | DIFFERS

    def as_dict(self) -> dict:
        return dict(vars(self))


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy every Linear/Conv2d of ``src`` into the one at the same position in ``dst``."""
    kinds = (nn.Linear, nn.Conv2d)
    a = [m for m in src.modules() if isinstance(m, kinds)]
    b = [m for m in dst.modules() if isinstance(m, kinds)]
    assert len(a) == len(b), (len(a), len(b))
    with torch.no_grad():
        for m, n in zip(a, b, strict=True):
            n.weight.copy_(m.weight)
            if m.bias is not None:
                n.bias.copy_(m.bias)


def _weights(module: nn.Module) -> list[tuple[str, Tensor]]:
    kinds = (nn.Linear, nn.Conv2d)
    out = []
    for i, m in enumerate(x for x in module.modules() if isinstance(x, kinds)):
        out.append((f"layer{i}.weight", m.weight))
        if m.bias is not None:
            out.append((f"layer{i}.bias", m.bias))
    return out


def _inputs(case: nets.Case, device: torch.device) -> tuple[Tensor, Tensor | None]:
    if case.kind == "long":
        return nets.currents(case, device), None
    x, y = nets.images(case.batch, device)
    if case.encoding == "rate":
        return encoders.rate(x, case.time_steps, generator=torch.Generator(device=device).manual_seed(3)), y
    return encoders.direct(x, case.time_steps), y


def _compare(
    peer: str,
    case: nets.Case,
    path: str,
    config: str,
    pairs: list[tuple[Tensor, Tensor, Tensor, Tensor]],
    grads: list[tuple[str, Tensor, Tensor]],
    by_design: bool = False,
) -> Check:
    """``pairs``: per spiking layer (snnlab spikes, peer spikes, snnlab membrane, peer membrane)."""
    mismatch = sum(int((a != b).sum()) for a, b, _, _ in pairs)
    total = sum(a.numel() for a, _, _, _ in pairs)
    mem_diff = max(float((m - n).abs().max()) for _, _, m, n in pairs)
    mem_scale = max(1.0, max(float(m.abs().max()) for _, _, m, _ in pairs))
    worst, grad_diff = "", 0.0
    for name, g, h in grads:
        rel = float((g - h).abs().max()) / max(float(g.abs().max()), 1e-12)
        if rel >= grad_diff:
            worst, grad_diff = name, rel
    ok = mismatch == 0 and mem_diff <= MEM_RTOL * mem_scale and grad_diff <= GRAD_RTOL
    verdict = "PASS" if ok else ("DIFFERS" if by_design else "FAIL")
    return Check(peer, case.name, path, config, mismatch, total, mem_diff, mem_scale, grad_diff, worst, verdict)


def _snnlab_run(case, device, path, x_seq, y, beta, reset, post_reset: bool):
    """snnlab forward + loss + backward. Returns (layers: [(spikes, membrane)], grads by name)."""
    torch.manual_seed(0)
    if case.kind == "long":
        lif = Leaky(beta=beta, reset=reset, fused=path == "fused").to(device)
        x = x_seq.clone().requires_grad_(True)
        spk, mem = lif(x)
        if post_reset:
            mem = mem * (1 - spk.detach())
        (spk.sum() + mem.sum()).backward()
        return None, [(spk.detach(), mem.detach())], [("input", x.grad)]
    model = build_model(nets.snnlab_layers(case.kind, beta, reset), (1, 28, 28)).to(device)
    model.set_fused(path == "fused")
    out = model(x_seq, record=True)
    layers = list(out.layers.values())
    if post_reset:
        layers = [(s, m * (1 - s.detach())) for s, m in layers]
        spikes, membrane = layers[-1]
        loss = losses.ce_membrane(spikes, membrane, y) + spikes.sum() / len(y)
    else:
        loss = losses.ce_membrane(out.spikes, out.membrane, y)
    loss.backward()
    return model, [(s.detach(), m.detach()) for s, m in layers], [(n, w.grad) for n, w in _weights(model)]


def check_snntorch(case: nets.Case, device: torch.device, path: str) -> Check:
    x_seq, y = _inputs(case, device)
    model, ours, our_grads = _snnlab_run(case, device, path, x_seq, y, nets.BETA, "subtract", False)
    peer = nets.SNNTORCH_NETS[case.kind](record=True).to(device)
    if case.kind == "long":
        x = x_seq.clone().requires_grad_(True)
        spk, mem, layers = peer(x)
        (spk.sum() + mem.sum()).backward()
        peer_grads = [x.grad]
    else:
        copy_weights(model, peer)
        _, mem_rec, layers = peer(x_seq)
        nets.tutorial_loss(mem_rec, y).backward()
        peer_grads = [w.grad for _, w in _weights(peer)]
    theirs = list(layers.values())
    pairs = [(a, b.detach(), m, n.detach()) for (a, m), (b, n) in zip(ours, theirs, strict=True)]
    grads = [(name, g, h) for (name, g), h in zip(our_grads, peer_grads, strict=True)]
    return _compare("snntorch", case, path, "defaults", pairs, grads)


# Float32 just above 1: SpikingJelly fires on H >= thr, so H >= 1 + 1 ulp is snnlab's H > 1 exactly.
THR_ABOVE_ONE = 1.0 + 2.0**-23
SJ_CONFIGS = {
    # name: (beta, snnlab reset, SpikingJelly threshold, must match)
    "matched": (0.75, "zero", THR_ABOVE_ONE, True),
    "matched, thr 1.0": (0.75, "zero", 1.0, False),
    "soft reset": (nets.BETA, "subtract", 1.0, False),
}
SJ_CONFIG_NOTES = {
    "matched": "hard reset to 0, tau 4 = beta 0.75, decay_input=False, detach_reset, atan(2), thr 1+1ulp",
    "matched, thr 1.0": "as matched but thr 1.0: SJ fires on H >= 1, snnlab on H > 1 (exact ties differ)",
    "soft reset": "soft reset, beta 0.95: SJ subtracts beta*thr at the next step, snnlab thr",
}


def check_spikingjelly(case: nets.Case, device: torch.device, path: str, config: str = "matched") -> Check:
    """Compare on the post-reset membrane ``mem*(1 - S)``, the V that SpikingJelly records."""
    from spikingjelly.activation_based import functional

    beta, reset, threshold, must_match = SJ_CONFIGS[config]
    x_seq, y = _inputs(case, device)
    model, ours, our_grads = _snnlab_run(case, device, path, x_seq, y, beta, reset, post_reset=True)
    peer = nets.sj_net(case.kind, beta, reset, record=True, threshold=threshold).to(device)
    functional.reset_net(peer)
    lifs = [m for m in peer.modules() if type(m).__name__ == "LIFNode"]
    spikes_out: list[Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: spikes_out.append(out)) for m in lifs]
    if case.kind == "long":
        x = x_seq.clone().requires_grad_(True)
        spk = peer(x)
        (spk.sum() + lifs[-1].v_seq.sum()).backward()
        peer_grads = [x.grad]
    else:
        copy_weights(model, peer)
        spk = peer(x_seq.contiguous())
        loss = losses.ce_membrane(spk, lifs[-1].v_seq, y) + spk.sum() / len(y)
        loss.backward()
        peer_grads = [w.grad for _, w in _weights(peer)]
    for h in hooks:
        h.remove()
    theirs = [(s.detach(), m.v_seq.detach()) for s, m in zip(spikes_out, lifs, strict=True)]
    pairs = [(a, b, m, n) for (a, m), (b, n) in zip(ours, theirs, strict=True)]
    grads = [(name, g, h) for (name, g), h in zip(our_grads, peer_grads, strict=True)]
    return _compare("spikingjelly", case, path, config, pairs, grads, by_design=not must_match)


def run(device: torch.device, peers: dict[str, str | None], only=None) -> list[Check]:
    checks: list[Check] = []
    for name in CASES:
        case = nets.CASE_BY_NAME[name]
        if only and not only(case.name):
            continue
        for path in ("fused", "reference"):
            if peers.get("snntorch"):
                checks.append(check_snntorch(case, device, path))
            if peers.get("spikingjelly"):
                checks.append(check_spikingjelly(case, device, path))
        if peers.get("spikingjelly"):
            checks.extend(check_spikingjelly(case, device, "fused", c) for c in ("matched, thr 1.0", "soft reset"))
    return checks
