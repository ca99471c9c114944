"""The surrogates of snnTorch 1.0, with its names and parameters."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from snnlab.engine.surrogates.base import (
    Steps,
    Surrogate,
    _fast_sigmoid,
    _integral,
    _logistic_,
    _odd_primitive,
)


class ATan(Surrogate):
    """Arctangent (Fang et al. 2021): snnTorch's ``atan`` and SpikingJelly's ``ATan``, the same formula.

    smooth(x) = 1/pi * arctan(pi/2 * alpha * x) + 1/2          (SpikingJelly's primitive)
    grad(x)   = (alpha/2) / (1 + (pi/2 * alpha * x)^2)
    """

    name = "atan"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def steps(self) -> Steps:
        return Steps().mul(math.pi / 2 * self.alpha).square().add(1).rdiv(self.alpha / 2)


class FastSigmoid(Surrogate):
    """Fast sigmoid (Zenke & Ganguli 2018, SuperSpike): snnTorch's ``fast_sigmoid``.

    smooth(x) = x / (1 + slope*|x|) + 1/2      (not bounded to [0, 1]: its range is 1/2 ± 1/slope)
    grad(x)   = 1 / (slope*|x| + 1)^2
    """

    name = "fast_sigmoid"
    slope: float

    def smooth(self, x: Tensor) -> Tensor:
        return x / (1 + self.slope * x.abs()) + 0.5

    def steps(self) -> Steps:
        return _fast_sigmoid(self.slope)


class Sigmoid(Surrogate):
    """Logistic sigmoid: snnTorch's ``sigmoid`` (parameter ``slope``, default 25), computed so that it stays
    finite where snnTorch's own gives NaN (x < -3.4 at slope 25, where ``exp(-slope*x)`` overflows).

    smooth(x) = 1 / (1 + exp(-slope*x))
    grad(x)   = slope * exp(-slope*x) / (1 + exp(-slope*x))^2 = slope * s * (1 - s),  s = smooth(x)
              = slope * sigmoid(slope*x) * sigmoid(-slope*x), as computed
    """

    name = "sigmoid"
    slope: float

    def smooth(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.slope * x)

    def grad_(self, x: Tensor) -> Tensor:
        return _logistic_(x, self.slope)


class StraightThrough(Surrogate):
    """Straight-through estimator (Bengio et al. 2013): snnTorch's ``straight_through_estimator``.

    smooth(x) = x + 1/2
    grad(x)   = 1
    """

    name = "straight_through"

    def smooth(self, x: Tensor) -> Tensor:
        return x + 0.5

    def steps(self) -> Steps:
        return Steps().fill(1)


class Triangular(Surrogate):
    """snnTorch's ``triangular``: the derivative of a tent, so a step of height ``threshold`` that changes
    sign at 0, negative above it, as snnTorch's code and docs have it (not :class:`Triangle`).

    grad(x)   = threshold for x < 0;  -threshold for x >= 0
    smooth(x) = 1/2 - threshold * |x|       (snnTorch has no primitive; this is 1/2 + the integral from 0)
    """

    name = "triangular"
    threshold: float

    def smooth(self, x: Tensor) -> Tensor:
        return 0.5 - self.threshold * x.abs()

    def grad_(self, x: Tensor) -> Tensor:
        at_or_above = x >= 0
        return x.fill_(self.threshold).masked_fill_(at_or_above, -self.threshold)


class SpikeRateEscape(Surrogate):
    """snnTorch's ``spike_rate_escape`` (escape noise, Gerstner & Kistler 2002). Its peak is at ``x = 1``,
    one unit above threshold, as snnTorch's code computes it from ``x = membrane - threshold``.

    grad(x)   = slope * exp(-beta * |x - 1|)
    smooth(x) = 1/2 + F(x) - F(0),  F(x) = slope/beta * (1 + sign(x-1) * (1 - exp(-beta*|x-1|)))
                (snnTorch has no primitive; F is one, continuous at x = 1)
    """

    name = "spike_rate_escape"
    beta: float
    slope: float

    def _primitive(self, x: Tensor) -> Tensor:
        d = x - 1
        return self.slope / self.beta * (1 + torch.sign(d) * -torch.expm1(-self.beta * d.abs()))

    def smooth(self, x: Tensor) -> Tensor:
        return _integral(x, self._primitive)

    def grad_(self, x: Tensor) -> Tensor:
        return x.sub_(1).abs_().mul_(-self.beta).exp_().mul_(self.slope)


class SparseFastSigmoid(Surrogate):
    """snnTorch's ``SFS``, sparse fast sigmoid (Perez-Nieves & Goodman 2021): the fast sigmoid's gradient,
    zero at and below ``B``, so that few neurons carry a gradient.

    grad(x)   = 1 / (slope*|x| + 1)^2  for x > B;  0 otherwise
    smooth(x) = 1/2 + F(max(x, B)) - F(max(0, B)),  F(x) = x / (1 + slope*|x|)
                (1/2 + the integral from 0; snnTorch's stated primitive F(x)*H(x-B) jumps at B)
    """

    name = "sparse_fast_sigmoid"
    slope: float
    B: float

    def smooth(self, x: Tensor) -> Tensor:
        b = torch.full_like(x, self.B)

        def primitive(t: Tensor) -> Tensor:
            return _odd_primitive(self.slope * t) / self.slope

        return 0.5 + primitive(torch.maximum(x, b)) - primitive(b.clamp_min(0))

    def grad_(self, x: Tensor) -> Tensor:
        at_or_below = x <= self.B
        return _fast_sigmoid(self.slope).apply_(x).masked_fill_(at_or_below, 0)


class LeakySpikeOperator(Surrogate):
    """snnTorch's ``LSO``, leaky spike operator, as its ``LeakySpikeOperator`` defines it (snnTorch 1.0's
    ``LSO()`` itself hands its arguments to the stochastic operator and fails with a TypeError).

    grad(x)   = 1 for x > 0 (a spike);  slope otherwise
    smooth(x) = 1/2 + x for x > 0;  1/2 + slope*x otherwise      (1/2 + the integral from 0)
    """

    name = "leaky_spike_operator"
    slope: float

    def smooth(self, x: Tensor) -> Tensor:
        return 0.5 + torch.where(x > 0, x, self.slope * x)

    def grad_(self, x: Tensor) -> Tensor:
        spiked = x > 0
        return x.fill_(self.slope).masked_fill_(spiked, 1)
