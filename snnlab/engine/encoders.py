"""Encoders turn a batch of inputs ``[B, ...]`` into input currents or spikes over time ``[T, B, ...]``.

``direct`` returns a zero-stride view (the same tensor at every step, no copy); the model notices it
and computes the layers before the first neuron once instead of T times.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from snnlab import catalog


def direct(x: Tensor, time_steps: int) -> Tensor:
    """``[B, ...]`` -> ``[T, B, ...]`` zero-stride view: the same current at every step."""
    return x.unsqueeze(0).expand(time_steps, *x.shape)


def rate(x: Tensor, time_steps: int, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """Bernoulli spikes: ``spike[t, i] ~ Bernoulli(clamp(gain * x[i], 0, 1))`` independently per step."""
    p = (x * gain).clamp(0, 1)
    u = torch.rand((time_steps, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
    return (u < p).to(x.dtype)


def latency(
    x: Tensor,
    time_steps: int,
    tau: float = 5.0,
    threshold: float = 0.01,
    linear: bool = False,
) -> Tensor:
    """One spike per input, at a time that falls as the input grows (inputs expected in [0, 1]).

    linear: ``t = round((1 - x) * (T - 1))``
    log:    ``t = round(tau * ln(x / (x - threshold)))`` (an RC circuit charged by x reaching threshold),
    Inputs at or below ``threshold``, and spike times past ``T - 1``, give no spike.
    """
    x = x.clamp(0, 1)
    if linear:
        t = torch.round((1 - x) * (time_steps - 1))
    else:
        safe = torch.where(x > threshold, x, torch.ones_like(x))
        t = torch.round(tau * torch.log(safe / (safe - threshold).clamp_min(1e-12)))
    fires = (x > threshold) & (t <= time_steps - 1)
    steps = torch.arange(time_steps, device=x.device, dtype=x.dtype).view(-1, *([1] * x.dim()))
    return ((steps == t.unsqueeze(0)) & fires.unsqueeze(0)).to(x.dtype)


def delta(x: Tensor, time_steps: int | None = None, threshold: float = 0.1, off_spikes: bool = False) -> Tensor:
    """Spikes on change: ``+1`` where ``x[t] - x[t-1] > threshold`` (``-1`` below ``-threshold`` if off_spikes).

    ``x`` is a sequence ``[T, B, ...]``, or a static ``[B, ...]`` with ``time_steps``: a static input
    changes once, from 0 at t = 0, so it spikes only in the first step.
    """
    if time_steps is not None:
        x = direct(x, time_steps)
    previous = torch.cat([torch.zeros_like(x[:1]), x[:-1]])
    change = x - previous
    out = (change > threshold).to(x.dtype)
    if off_spikes:
        out = out - (change < -threshold).to(x.dtype)
    return out


def encode(
    name: str,
    x: Tensor,
    time_steps: int,
    *,
    temporal: bool = False,
    generator: torch.Generator | None = None,
    **params: Any,
) -> Tensor:
    """Encode a batch. ``x`` is ``[B, ...]``, or ``[B, T, ...]`` when ``temporal`` (then only ``none``
    and ``delta`` apply, ``time_steps`` is the sequence's own length, and integer frames become float32)."""
    if temporal:
        seq = x.transpose(0, 1)  # [B, T, ...] -> [T, B, ...]
        if not seq.is_floating_point():  # the event sets keep their frames as uint8
            seq = seq.to(torch.float32)
        if name == "none":
            return seq
        if name == "delta":
            return delta(seq, None, **params)
        raise ValueError(f"encoder {name!r} needs static inputs; this dataset is already spikes: use 'none'")
    if name == "direct":
        return direct(x, time_steps)
    if name == "rate":
        return rate(x, time_steps, generator=generator, **params)
    if name == "latency":
        return latency(x, time_steps, **params)
    if name == "delta":
        return delta(x, time_steps, **params)
    if name == "none":
        raise ValueError("encoder 'none' needs a temporal dataset (inputs already spikes over time)")
    raise ValueError(f"unknown encoder {name!r} (choose from: {', '.join(catalog.ENCODERS)})")


def is_static(x: Tensor) -> bool:
    """True for a zero-stride view along time (from :func:`direct`)."""
    return x.dim() > 0 and x.shape[0] > 1 and x.stride(0) == 0


__all__ = ["direct", "rate", "latency", "delta", "encode", "is_static"]
