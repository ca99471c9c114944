"""BrainPy's ReluGrad, snnlab's own surrogates, and the no-gradient spike of ``surrogate_disable``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from snnlab.engine.surrogates.base import (
    Steps,
    Surrogate,
)

# --- BrainPy --------------------------------------------------------------------------------------------------


class ReluGrad(Surrogate):
    """BrainPy's ``ReluGrad`` (``brainpy.math.surrogate``): a triangle of half-width ``width`` and height
    ``alpha * width``.

    grad(x)   = alpha * max(width - |x|, 0)
    smooth(x) = 1/2 + s * alpha * (width*a - a^2/2),  a = min(|x|, width),  s = sign(x)
                (BrainPy has no primitive; 1/2 + the integral from 0)
    """

    name = "relu_grad"
    alpha: float
    width: float

    def smooth(self, x: Tensor) -> Tensor:
        a = x.abs().clamp_max(self.width)
        return 0.5 + torch.sign(x) * self.alpha * (self.width * a - a * a / 2)

    def steps(self) -> Steps:
        return Steps().abs().mul(-self.alpha).add(self.alpha * self.width).clamp_min(0)


# --- snnlab's own -------------------------------------------------------------------------------------------


class Triangle(Surrogate):
    """Triangle (Esser et al. 2016; Bellec et al. 2018) of half-width ``width`` and area 1: SpikingJelly's
    ``PiecewiseQuadratic`` with ``alpha = 1/width``.

    grad(x)   = max(0, 1 - |x|/width) / width
    smooth(x) = 0 for x < -w;  (x+w)^2 / (2w^2) for -w <= x < 0;  1 - (w-x)^2 / (2w^2) for 0 <= x < w;  1 above
    """

    name = "triangle"
    width: float

    def smooth(self, x: Tensor) -> Tensor:
        w = self.width
        xc = x.clamp(-w, w)
        left = (xc + w) ** 2 / (2 * w * w)
        right = 1 - (w - xc) ** 2 / (2 * w * w)
        return torch.where(xc < 0, left, right)

    def steps(self) -> Steps:
        return Steps().abs().div(-self.width).add(1).clamp_min(0).div(self.width)


class Gaussian(Surrogate):
    """Gaussian (Yin et al. 2021) of standard deviation ``sigma`` and area 1.

    smooth(x) = 1/2 * (1 + erf(x / (sigma*sqrt(2))))
    grad(x)   = exp(-x^2 / (2 sigma^2)) / (sqrt(2 pi) * sigma)
    """

    name = "gaussian"
    sigma: float

    def smooth(self, x: Tensor) -> Tensor:
        return 0.5 * (1 + torch.erf(x / (self.sigma * math.sqrt(2))))

    def grad_(self, x: Tensor) -> Tensor:
        return x.square_().div_(-2 * self.sigma**2).exp_().div_(math.sqrt(2 * math.pi) * self.sigma)


class NoGradient(Surrogate):
    """The Heaviside step and no gradient at all: a neuron's ``surrogate_disable=True`` (snnTorch's option of
    that name). Gradients then reach the network only through the membranes a loss reads, never through
    spikes. Not in the registry: it is an option of the neuron, not a choice of surrogate.

    ``grad(x) = 0``
    """

    name = "no_gradient"

    def smooth(self, x: Tensor) -> Tensor:
        return (x > 0).to(x.dtype)

    def grad_(self, x: Tensor) -> Tensor:
        return x.zero_()
