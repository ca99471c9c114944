"""Surrogate gradients: one registry that the trainer, the fused kernels and the lab all read.

A spike function takes ``x = membrane - threshold``. Its forward pass is the Heaviside step
``H(x) = 1 if x > 0 else 0`` (exactly at threshold: no spike). Its backward pass replaces the Dirac
delta ``H'(x)`` by the derivative of a smooth function. Each surrogate exposes:

- ``spike(x)``  (or calling the object): Heaviside forward, surrogate backward;
- ``smooth(x)``: the smooth stand-in for ``H`` (plain tensor function, for plots);
- ``grad(x)``:  its derivative, the surrogate gradient (plain tensor function; the fused kernels use it).

Names, descriptions and parameter defaults are listed in :mod:`snnlab.catalog`; the classes here add the
formulas.

``smooth`` is shifted so that ``smooth(0) = 1/2`` wherever that is natural, which lines the curves up
against the step in a plot; only its derivative matters for training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from snnlab import catalog

__all__ = ["Surrogate", "get", "names", "resolve", "spike", "REGISTRY"]


class _SpikeFunction(torch.autograd.Function):
    """Heaviside forward; ``grad_output * surrogate.grad(x)`` backward."""

    @staticmethod
    def forward(ctx, x: Tensor, surrogate: Surrogate) -> Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.grad(x), None


class Surrogate:
    """Base class. Subclasses set ``name`` and define ``smooth``/``grad``. One listed in the catalog takes its
    ``description`` and parameter ``defaults`` from there; any other sets them itself."""

    name: str = ""
    description: str = ""
    defaults: dict[str, float] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        listed = catalog.SURROGATES.get(cls.name)
        if listed is not None:
            cls.description, cls.defaults = listed.description, dict(listed.defaults)

    def __init__(self, **params: float) -> None:
        self.params = catalog.surrogate_params(self.name, params, self.defaults)
        for key, value in self.params.items():
            setattr(self, key, value)

    def smooth(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def grad(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def grad_(self, x: Tensor) -> Tensor:
        """``grad(x)`` written into ``x`` (which it overwrites); the fused kernels' hot path.

        Subclasses override it with in-place arithmetic where that saves allocations."""
        return x.copy_(self.grad(x))

    def spike(self, x: Tensor) -> Tensor:
        """Heaviside step of ``x`` whose backward pass uses :meth:`grad`."""
        return _SpikeFunction.apply(x, self)

    __call__ = spike

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.name}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Surrogate) and (self.name, self.params) == (other.name, other.params)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.params.items()))))


class ATan(Surrogate):
    """Arctangent (Fang et al. 2021; snnTorch's default).

    smooth(x) = 1/pi * arctan(pi/2 * alpha * x) + 1/2
    grad(x)   = (alpha/2) / (1 + (pi/2 * alpha * x)^2)
    """

    name = "atan"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def grad(self, x: Tensor) -> Tensor:
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x) ** 2)

    def grad_(self, x: Tensor) -> Tensor:
        return x.mul_(math.pi / 2 * self.alpha).square_().add_(1).reciprocal_().mul_(self.alpha / 2)


class FastSigmoid(Surrogate):
    """Fast sigmoid (Zenke & Ganguli 2018, SuperSpike).

    smooth(x) = x / (1 + slope*|x|) + 1/2      (not bounded to [0, 1]: its range is 1/2 ± 1/slope)
    grad(x)   = 1 / (slope*|x| + 1)^2
    """

    name = "fast_sigmoid"
    slope: float

    def smooth(self, x: Tensor) -> Tensor:
        return x / (1 + self.slope * x.abs()) + 0.5

    def grad(self, x: Tensor) -> Tensor:
        return 1 / (self.slope * x.abs() + 1) ** 2

    def grad_(self, x: Tensor) -> Tensor:
        return x.abs_().mul_(self.slope).add_(1).square_().reciprocal_()


class Sigmoid(Surrogate):
    """Logistic sigmoid.

    smooth(x) = 1 / (1 + exp(-slope*x))
    grad(x)   = slope * exp(-slope*x) / (1 + exp(-slope*x))^2 = slope * s * (1 - s)
    """

    name = "sigmoid"
    slope: float

    def smooth(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.slope * x)

    def grad(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.slope * x)
        return self.slope * s * (1 - s)

    def grad_(self, x: Tensor) -> Tensor:
        s = x.mul_(self.slope).sigmoid_()
        return s.mul_(1 - s).mul_(self.slope)


class Triangle(Surrogate):
    """Triangle (Esser et al. 2016; Bellec et al. 2018).

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

    def grad(self, x: Tensor) -> Tensor:
        return (1 - x.abs() / self.width).clamp_min(0) / self.width

    def grad_(self, x: Tensor) -> Tensor:
        return x.abs_().div_(-self.width).add_(1).clamp_min_(0).div_(self.width)


class StraightThrough(Surrogate):
    """Straight-through estimator (Bengio et al. 2013).

    smooth(x) = x + 1/2
    grad(x)   = 1
    """

    name = "straight_through"

    def smooth(self, x: Tensor) -> Tensor:
        return x + 0.5

    def grad(self, x: Tensor) -> Tensor:
        return torch.ones_like(x)


class Gaussian(Surrogate):
    """Gaussian (Yin et al. 2021).

    smooth(x) = 1/2 * (1 + erf(x / (sigma*sqrt(2))))
    grad(x)   = exp(-x^2 / (2 sigma^2)) / (sqrt(2 pi) * sigma)
    """

    name = "gaussian"
    sigma: float

    def smooth(self, x: Tensor) -> Tensor:
        return 0.5 * (1 + torch.erf(x / (self.sigma * math.sqrt(2))))

    def grad(self, x: Tensor) -> Tensor:
        return torch.exp(-(x**2) / (2 * self.sigma**2)) / (math.sqrt(2 * math.pi) * self.sigma)


class Erf(Surrogate):
    """Error function (SpikingJelly's ``Erf``).

    smooth(x) = 1/2 * (1 + erf(alpha*x))
    grad(x)   = alpha / sqrt(pi) * exp(-(alpha*x)^2)
    """

    name = "erf"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        return 0.5 * (1 + torch.erf(self.alpha * x))

    def grad(self, x: Tensor) -> Tensor:
        return self.alpha / math.sqrt(math.pi) * torch.exp(-((self.alpha * x) ** 2))


class SoftSign(Surrogate):
    """Soft sign (SpikingJelly's ``SoftSign``).

    smooth(x) = 1/2 * (alpha*x / (1 + |alpha*x|) + 1)
    grad(x)   = alpha / (2 * (1 + |alpha*x|)^2)
    """

    name = "soft_sign"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        ax = self.alpha * x
        return 0.5 * (ax / (1 + ax.abs()) + 1)

    def grad(self, x: Tensor) -> Tensor:
        return self.alpha / (2 * (1 + (self.alpha * x).abs()) ** 2)


class PiecewiseQuadratic(Surrogate):
    """Piecewise quadratic (Esser et al. 2016; SpikingJelly's ``PiecewiseQuadratic``).

    grad(x)   = alpha - alpha^2 * |x|  for |x| <= 1/alpha, else 0
    smooth(x) = 0 for x < -1/alpha;  alpha*x - alpha^2/2 * x*|x| + 1/2 for |x| <= 1/alpha;  1 above
    """

    name = "piecewise_quadratic"
    alpha: float

    def smooth(self, x: Tensor) -> Tensor:
        a = self.alpha
        xc = x.clamp(-1 / a, 1 / a)
        return a * xc - a * a / 2 * xc * xc.abs() + 0.5

    def grad(self, x: Tensor) -> Tensor:
        return (self.alpha - self.alpha**2 * x.abs()).clamp_min(0)


REGISTRY: dict[str, type[Surrogate]] = {
    cls.name: cls
    for cls in (ATan, FastSigmoid, Sigmoid, Triangle, StraightThrough, Gaussian, Erf, SoftSign, PiecewiseQuadratic)
}
catalog.check_implemented("surrogates", catalog.SURROGATES, REGISTRY)
DEFAULT = "atan"


def names() -> list[catalog.Choice]:
    """Every surrogate, as the catalog lists it: name, one-line description and parameter defaults."""
    return list(catalog.SURROGATES.values())


def get(name: str = DEFAULT, **params: float) -> Surrogate:
    """The surrogate called ``name`` with ``params`` overriding its defaults."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown surrogate {name!r} (choose from: {', '.join(REGISTRY)})") from None
    return cls(**params)


SpikeFn = Callable[[Tensor], Tensor]


def resolve(surrogate: str | Surrogate | SpikeFn | None, **params: float) -> Surrogate | SpikeFn:
    """A registry name, a :class:`Surrogate`, or any callable ``spike(x)`` with its own autograd.

    A plain callable works with the reference path only (the fused kernels need ``grad(x)``).
    """
    if surrogate is None:
        return get(DEFAULT, **params)
    if isinstance(surrogate, str):
        return get(surrogate, **params)
    if callable(surrogate):
        return surrogate
    raise TypeError(f"surrogate must be a name, a Surrogate or a callable, not {type(surrogate).__name__}")


def spike(x: Tensor, surrogate: str | Surrogate = DEFAULT) -> Tensor:
    """Heaviside step of ``x = membrane - threshold`` with the named surrogate's gradient."""
    return resolve(surrogate)(x)
