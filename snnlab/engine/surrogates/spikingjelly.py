"""The surrogates of SpikingJelly 2.0, with its names (in snake_case) and parameters."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from snnlab.engine.surrogates.base import (
    Steps,
    Surrogate,
    _divide_,
    _logistic_,
    _odd_primitive,
)


class Erf(Surrogate):
    """Error function: SpikingJelly's ``Erf``.

    smooth(x) = 1/2 * (1 + erf(alpha*x)) = erfc(-alpha*x) / 2      (SpikingJelly's primitive)
    grad(x)   = alpha / sqrt(pi) * exp(-(alpha*x)^2)
    """

    name = "erf"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        return torch.erfc(-self.alpha * x) / 2

    def grad_(self, x: Tensor) -> Tensor:
        return x.mul_(self.alpha).square_().neg_().exp_().mul_(self.alpha / math.sqrt(math.pi))


class SoftSign(Surrogate):
    """Soft sign: SpikingJelly's ``SoftSign``.

    smooth(x) = 1/2 * (alpha*x / (1 + |alpha*x|) + 1)      (SpikingJelly's primitive)
    grad(x)   = alpha / (2 * (1 + |alpha*x|)^2) = 1 / (2*alpha * (1/alpha + |x|)^2)
    """

    name = "soft_sign"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        return 0.5 * (_odd_primitive(self.alpha * x) + 1)

    def steps(self) -> Steps:
        return Steps().abs().add(1 / self.alpha).square().mul(2 * self.alpha).rdiv(1.0)


class PiecewiseQuadratic(Surrogate):
    """Piecewise quadratic (Esser et al. 2016): SpikingJelly's ``PiecewiseQuadratic``.

    grad(x)   = alpha - alpha^2 * |x|  for |x| <= 1/alpha, else 0
    smooth(x) = 0 for x < -1/alpha;  alpha*x - alpha^2/2 * x*|x| + 1/2 for |x| <= 1/alpha;  1 above
                (SpikingJelly's primitive)
    """

    name = "piecewise_quadratic"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        a = self.alpha
        xc = x.clamp(-1 / a, 1 / a)
        return a * xc - a * a / 2 * xc * xc.abs() + 0.5

    def steps(self) -> Steps:
        return Steps().abs().mul(-(self.alpha**2)).add(self.alpha).clamp_min(0)


class PiecewiseExp(Surrogate):
    """Piecewise exponential (SLAYER, Shrestha & Orchard 2018): SpikingJelly's ``PiecewiseExp``.

    grad(x)   = alpha/2 * exp(-alpha * |x|)
    smooth(x) = exp(alpha*x) / 2 for x < 0;  1 - exp(-alpha*x) / 2 for x >= 0      (SpikingJelly's primitive)
    """

    name = "piecewise_exp"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        half = torch.exp(-self.alpha * x.abs()) / 2
        return torch.where(x < 0, half, 1 - half)

    def grad_(self, x: Tensor) -> Tensor:
        return x.abs_().mul_(-self.alpha).exp_().mul_(self.alpha / 2)


class SJSigmoid(Surrogate):
    """SpikingJelly's ``Sigmoid``: the formula of :class:`Sigmoid` with its steepness called ``alpha``,
    default 4 (snnTorch's ``slope`` defaults to 25), hence an entry of its own.

    smooth(x) = sigmoid(alpha*x)      (SpikingJelly's primitive)
    grad(x)   = alpha * s * (1 - s),  s = sigmoid(alpha*x)
    """

    name = "sj_sigmoid"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.alpha * x)

    def grad_(self, x: Tensor) -> Tensor:
        return _logistic_(x, self.alpha)


class SuperSpike(Surrogate):
    """SuperSpike (Zenke & Ganguli 2018) as SpikingJelly's ``SuperSpike`` has it: ``alpha`` scales the
    gradient, and its width is fixed (snnTorch's ``fast_sigmoid`` scales the width with ``slope``).

    grad(x)   = alpha / (1 + |x|)^2
    smooth(x) = 1/2 + alpha * x / (1 + |x|)      (SpikingJelly has no primitive; 1/2 + the integral from 0)
    """

    name = "super_spike"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        return 0.5 + self.alpha * _odd_primitive(x)

    def steps(self) -> Steps:
        return Steps().abs().add(1).square().rdiv(self.alpha)


class NonzeroSignLogAbs(Surrogate):
    """SpikingJelly's ``NonzeroSignLogAbs``.

    grad(x)   = 1 / (1/alpha + |x|)
    smooth(x) = 1/2 + s * log(alpha * |x| + 1),  s = 1 for x >= 0 else -1
                (SpikingJelly's primitive, 0 at x = 0, shifted up by 1/2)
    """

    name = "nonzero_sign_log_abs"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        sign = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
        return 0.5 + sign * torch.log1p(self.alpha * x.abs())

    def steps(self) -> Steps:
        return Steps().abs().add(1 / self.alpha).rdiv(1.0)


class PiecewiseLeakyReLU(Surrogate):
    """SpikingJelly's ``PiecewiseLeakyReLU``: a window of half-width ``w`` and a leak ``c`` outside it.

    grad(x)   = 1/(2w) for |x| < w;  c otherwise
    smooth(x) = c*x + c*w for x < -w;  x/(2w) + 1/2 for |x| <= w;  c*x - c*w + 1 for x > w
                (SpikingJelly's primitive)
    """

    name = "piecewise_leaky_relu"
    w: float
    c: float

    def smooth(self, x: Tensor) -> Tensor:
        w, c = self.w, self.c
        inside = x.clamp(-w, w) / (2 * w) + 0.5
        return inside + c * (x - x.clamp(-w, w))

    def grad_(self, x: Tensor) -> Tensor:
        inside = x.abs_() < self.w
        return x.fill_(self.c).masked_fill_(inside, 1 / (2 * self.w))


class LeakyKReLU(Surrogate):
    """SpikingJelly's ``LeakyKReLU``.

    grad(x)   = k for x >= 0;  leak for x < 0
    smooth(x) = 1/2 + k*x for x >= 0;  1/2 + leak*x for x < 0
                (SpikingJelly's primitive, 0 at x = 0, shifted up by 1/2)
    """

    name = "leaky_k_relu"
    leak: float
    k: float

    def smooth(self, x: Tensor) -> Tensor:
        return 0.5 + torch.where(x >= 0, self.k * x, self.leak * x)

    def grad_(self, x: Tensor) -> Tensor:
        at_or_above = x >= 0
        return x.fill_(self.leak).masked_fill_(at_or_above, self.k)


class LogTailedReLU(Surrogate):
    """Log-tailed ReLU (Cai et al. 2017): SpikingJelly's ``LogTailedReLU``.

    grad(x)   = alpha for x <= 0;  1 for 0 < x <= 1;  1/x for x > 1
    smooth(x) = 1/2 + alpha*x for x <= 0;  1/2 + x for 0 < x <= 1;  1/2 + 1 + log(x) for x > 1
                (SpikingJelly's primitive, 0 at x = 0, shifted up by 1/2)
    """

    name = "log_tailed_relu"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        tail = torch.log(x.clamp_min(1)) + 1
        return 0.5 + torch.where(x > 1, tail, torch.where(x > 0, x, self.alpha * x))

    def grad_(self, x: Tensor) -> Tensor:
        at_most_one, at_most_zero = x <= 1, x <= 0
        return _divide_(1.0, x).masked_fill_(at_most_one, 1).masked_fill_(at_most_zero, self.alpha)


class QPseudoSpike(Surrogate):
    """q-PseudoSpike (Herranz-Celotti & Rouat 2022): SpikingJelly's ``QPseudoSpike``; ``alpha > 1`` sets how
    heavy its tails are.

    grad(x)   = (1 + 2/(alpha-1) * |x|)^(-alpha)
    smooth(x) = H(x) - s/2 * (1 + 2/(alpha-1) * |x|)^(1-alpha),  s = 1 for x >= 0 else -1,  H(0) = 1
                (SpikingJelly's primitive)
    """

    name = "q_pseudo_spike"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        tail = 0.5 * (1 + 2 / (self.alpha - 1) * x.abs()) ** (1 - self.alpha)
        return torch.where(x >= 0, 1 - tail, tail)

    def grad_(self, x: Tensor) -> Tensor:
        return x.abs_().mul_(2 / (self.alpha - 1)).add_(1).pow_(-self.alpha)


class Rect(Surrogate):
    """Rectangle (Wu et al. 2018's STBP rectangle): SpikingJelly's ``Rect``.

    grad(x)   = alpha for |x| < 1/(2 alpha);  0 otherwise
    smooth(x) = clamp(alpha*x + 1/2, 0, 1)      (SpikingJelly's primitive)
    """

    name = "rect"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        return (self.alpha * x + 0.5).clamp(0, 1)

    def grad_(self, x: Tensor) -> Tensor:
        inside = x.abs_() < 0.5 / self.alpha
        return x.zero_().masked_fill_(inside, self.alpha)


class S2NN(Surrogate):
    """S2NN (Suetake et al. 2023): SpikingJelly's ``S2NN``, a sigmoid below threshold and a log above.

    grad(x)   = alpha * s * (1 - s), s = sigmoid(alpha*x), for x < 0;  beta / (x + 1) for x >= 0
    smooth(x) = sigmoid(alpha*x) for x < 0;  beta * log(x + 1) + 1/2 for x >= 0
                (SpikingJelly's primitive without the 1e-5 it adds inside the log, so that this is
                exactly the integral of grad)
    """

    name = "s2nn"
    alpha: float
    beta: float

    def smooth(self, x: Tensor) -> Tensor:
        return torch.where(
            x < 0, torch.sigmoid(self.alpha * x.clamp_max(0)), self.beta * torch.log1p(x.clamp_min(0)) + 0.5
        )

    def grad(self, x: Tensor) -> Tensor:
        x = x.detach()  # outside the graph, as every surrogate's grad
        below = _logistic_(x.clamp_max(0), self.alpha)
        above = _divide_(self.beta, x.clamp_min(0).add_(1))
        return torch.where(x < 0, below, above)


class SquarewaveFourierSeries(Surrogate):
    """SpikingJelly's ``SquarewaveFourierSeries``: the first ``n - 1`` terms of the Fourier series of a
    square wave of period ``T_period`` (``n`` a whole number >= 2).

    grad(x)   = 4/T_period * sum over i = 1 .. n-1 of cos((2i - 1) * w * x),  w = 2 pi / T_period
    smooth(x) = 1/2 + 2/pi * sum over i = 1 .. n-1 of sin((2i - 1) * w * x) / (2i - 1)
                (SpikingJelly's primitive)

    Both are periodic, so ``x`` is first reduced to one period (``fmod``, exact): the same values for
    |x| < T_period, and finite ones where ``(2i-1) * w * x`` would overflow to inf (cos(inf) is NaN).
    """

    name = "squarewave_fourier_series"
    n: float
    T_period: float

    def _terms(self, x: Tensor, wave: Callable[[Tensor], Tensor], power: int) -> Tensor:
        """The sum over i = 1 .. n-1 of ``wave((2i - 1) * w * x) / (2i - 1)^power``."""
        x = torch.fmod(x, self.T_period)
        w = 2 * math.pi / self.T_period
        total = torch.zeros_like(x)
        for i in range(1, int(self.n)):
            c = 2 * i - 1.0
            total += wave(c * w * x) / c**power
        return total

    def smooth(self, x: Tensor) -> Tensor:
        return 0.5 + 2 / math.pi * self._terms(x, torch.sin, 1)

    def grad(self, x: Tensor) -> Tensor:
        return self._terms(x.detach(), torch.cos, 0) * (4 / self.T_period)
