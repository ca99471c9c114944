"""Quantized neuron states for quantization-aware training, as snnTorch's ``functional.quant.state_quant``.

``state_quant(...)`` returns a function that moves every value of a state tensor to the nearest of a fixed
set of levels (the lower level on a tie) and passes the gradient through unchanged (straight-through). A
neuron applies it to each of its states after every step (``state_quant=`` of any snnlab neuron, or
``neuron.state_quant`` in a config).

The levels span ``[-threshold*(1 + lower_limit), threshold*(1 + upper_limit)]``, ``2**num_bits`` of them:

- ``uniform``: evenly spaced;
- otherwise dense near a centre (the threshold with ``thr_centered``, else 0) and sparser away from it. Below
  the centre, the gaps from the lowest level up are ``multiplier**0, multiplier**1, ...`` scaled to fill the
  range up to the centre (the last gap ends at the centre, which is not itself a level); above it, from the
  centre up, the gaps are the same powers in reverse order, ending at the top of the range. The levels below
  the centre are ``floor(2**num_bits * share)`` of all, ``share`` being the part of the range below it.
  ``multiplier`` defaults by ``num_bits``: 1: 0.05, 2: 0.1, 3: 0.3, 4: 0.5, 5: 0.7, 6: 0.9, 7: 0.925, 8 or
  more: 0.95.

The hardware this models keeps a state in ``num_bits``; the tensors here stay float32.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_MULTIPLIERS = {1: 0.05, 2: 0.1, 3: 0.3, 4: 0.5, 5: 0.7, 6: 0.9, 7: 0.925}


class _Nearest(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, levels: Tensor) -> Tensor:
        levels = levels.to(device=x.device, dtype=x.dtype)
        # The nearest level is one of the two around x; the lower one wins a tie, as an argmin would.
        above = torch.searchsorted(levels, x.contiguous()).clamp_(1, levels.numel() - 1)
        low, high = levels[above - 1], levels[above]
        return torch.where((high - x).abs() < (x - low).abs(), high, low)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


class StateQuant:
    """A state quantizer: ``quant(x)`` is ``x`` moved to the nearest of ``levels`` (ascending, float32)."""

    def __init__(self, levels: Tensor, description: str) -> None:
        self.levels = levels
        self.description = description

    def __call__(self, x: Tensor) -> Tensor:
        return _Nearest.apply(x, self.levels)

    def __repr__(self) -> str:
        return f"state_quant({self.description})"


def _geometric(start: float, span: float, count: int, multiplier: float, upward_from_start: bool) -> list[float]:
    """``count`` levels over ``span`` from ``start``: see the module's docstring. Below the centre
    (``upward_from_start=False``) the first level is ``start`` and the gaps shrink; above it the first level is
    one gap above ``start`` and the gaps grow."""
    if count == 0:
        return []
    powers = [multiplier**j for j in range(count)]
    room = sum(reversed(powers)) / span
    levels, value = [], start
    if upward_from_start:
        for power in reversed(powers):
            value += power / room
            levels.append(value)
    else:
        for power in powers:
            levels.append(value)
            value += power / room
    return levels


def state_quant(
    num_bits: int = 8,
    uniform: bool = True,
    thr_centered: bool = True,
    threshold: float = 1.0,
    lower_limit: float = 0.0,
    upper_limit: float = 0.2,
    multiplier: float | None = None,
) -> StateQuant:
    """A quantizer of neuron states to ``2**num_bits`` levels (see the module's docstring)."""
    if isinstance(num_bits, bool) or not isinstance(num_bits, int) or num_bits < 1:
        raise ValueError(f"state_quant's num_bits must be a whole number >= 1 (got {num_bits})")
    if not threshold > 0 or lower_limit < 0 or upper_limit < 0:
        raise ValueError("state_quant needs threshold > 0 and lower_limit, upper_limit >= 0 "
                         f"(got {threshold}, {lower_limit}, {upper_limit})")  # fmt: skip
    count = 2**num_bits
    low, high = -(threshold + threshold * lower_limit), threshold + threshold * upper_limit
    if uniform:
        levels = torch.linspace(low, high, count)
        return StateQuant(levels, f"num_bits={num_bits}, uniform")
    if multiplier is None:
        multiplier = _MULTIPLIERS.get(num_bits, 0.95)
    if not 0 < multiplier:
        raise ValueError(f"state_quant's multiplier must be > 0 (got {multiplier})")
    centre = threshold if thr_centered else 0.0
    below = math.floor(count * (centre - low) / (high - low))
    values = _geometric(low, centre - low, below, multiplier, upward_from_start=False)
    values += _geometric(centre, high - centre, count - below, multiplier, upward_from_start=True)
    levels = torch.tensor(values, dtype=torch.float32).sort().values
    return StateQuant(levels, f"num_bits={num_bits}, multiplier={multiplier:g}, centre={centre:g}")
