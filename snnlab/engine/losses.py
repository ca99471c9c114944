"""Losses on the output layer's spikes and membrane ``[T, B, C]``, decoders to class predictions, accuracy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from snnlab import catalog


def ce_membrane(spikes: Tensor, membrane: Tensor, targets: Tensor) -> Tensor:
    """``sum_t CE(membrane[t], targets)``, each term averaged over the batch."""
    T, B = membrane.shape[:2]
    return F.cross_entropy(membrane.flatten(0, 1), targets.repeat(T), reduction="sum") / B


def ce_mean_membrane(spikes: Tensor, membrane: Tensor, targets: Tensor) -> Tensor:
    """``CE(mean_t membrane[t], targets)``: the output averaged over the steps is the logits, as BrainPy's
    surrogate-gradient tutorial trains its non-spiking readout (``softmax_cross_entropy_with_integer_labels``
    of the time mean, averaged over the batch). An output that stays at zero gives ``ln(classes)``."""
    return F.cross_entropy(membrane.mean(0), targets)


def ce_rate(spikes: Tensor, membrane: Tensor, targets: Tensor) -> Tensor:
    """``CE(sum_t spikes[t], targets)``: spike counts used as logits."""
    return F.cross_entropy(spikes.sum(0), targets)


def mse_count(
    spikes: Tensor,
    membrane: Tensor,
    targets: Tensor,
    correct_rate: float = 1.0,
    incorrect_rate: float = 0.0,
) -> Tensor:
    """``MSE(mean_t spikes[t], target_rates)`` where the target rate is ``correct_rate`` for the true class
    and ``incorrect_rate`` for the others."""
    rates = spikes.mean(0)
    target = torch.full_like(rates, incorrect_rate)
    target.scatter_(1, targets.unsqueeze(1), correct_rate)
    return F.mse_loss(rates, target)


LOSS_FUNCTIONS = {
    "ce_membrane": ce_membrane,
    "ce_mean_membrane": ce_mean_membrane,
    "ce_rate": ce_rate,
    "mse_count": mse_count,
}
catalog.check_implemented("losses", catalog.LOSSES, LOSS_FUNCTIONS)


def loss_fn(name: str, **params: float):
    """The loss called ``name`` as ``f(spikes, membrane, targets) -> scalar``."""
    if name not in LOSS_FUNCTIONS:
        raise ValueError(f"unknown loss {name!r} (choose from: {', '.join(LOSS_FUNCTIONS)})")
    fn = LOSS_FUNCTIONS[name]
    return (lambda s, m, y: fn(s, m, y, **params)) if params else fn


def _break_ties(primary: Tensor, membrane: Tensor) -> Tensor:
    """Among classes where ``primary`` is maximal, the one with the highest membrane."""
    best = primary == primary.max(dim=1, keepdim=True).values
    return membrane.max(0).values.masked_fill(~best, float("-inf")).argmax(1)


def decode(name: str, spikes: Tensor, membrane: Tensor) -> Tensor:
    """Class predictions ``[B]`` from output ``spikes`` and ``membrane`` ``[T, B, C]``."""
    if name == "rate":
        return _break_ties(spikes.sum(0), membrane)
    if name == "rate_first":
        # torch.argmax returns the first maximal index: snnTorch's `spk_rec.sum(0).max(1)` and SpikingJelly's
        # `out_fr.argmax(1)` (mean rates, the same order as counts) decide ties the same way.
        return spikes.sum(0).argmax(1)
    if name == "latency":
        T = spikes.shape[0]
        steps = torch.arange(T, device=spikes.device, dtype=spikes.dtype).view(-1, 1, 1)
        first = torch.where(spikes > 0, steps, torch.full_like(spikes, T)).min(0).values
        return _break_ties(-first, membrane)
    if name == "membrane":
        return membrane.max(0).values.argmax(1)
    raise ValueError(f"unknown decoder {name!r} (choose from: {', '.join(catalog.DECODERS)})")


def accuracy(predictions: Tensor, targets: Tensor) -> float:
    """Fraction of correct predictions."""
    return (predictions == targets).float().mean().item()
