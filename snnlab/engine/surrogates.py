"""Surrogate gradients: one registry that the trainer, the fused kernels and the lab all read.

A spike function takes ``x = membrane - threshold``. Its forward pass is the Heaviside step
``H(x) = 1 if x > 0 else 0`` (exactly at threshold: no spike). Its backward pass replaces the Dirac
delta ``H'(x)`` by the derivative of a smooth function. Each surrogate exposes:

- ``spike(x)``  (or calling the object): Heaviside forward, surrogate backward;
- ``smooth(x)``: the smooth stand-in for ``H`` (plain tensor function, for plots);
- ``grad(x)``:  its derivative, the surrogate gradient (plain tensor function);
- ``grad_(x)``: the same, written into ``x``: what the fused kernels call;
- ``steps()``: the same gradient as a chain of elementwise :class:`Steps`, where it is one (else None).

A surrogate states its gradient once: as ``steps`` (a chain of in-place primitives, which torch runs for
``grad_`` and the C scan runs inside its backward loop, see :class:`Steps`), in ``grad_`` (in place, no
allocations in the kernels' hot path) or in ``grad``; the others are derived from it, so they are equal bit
for bit. Each gradient equals its
peer's (snnTorch, SpikingJelly, BrainPy: ``benchmarks/surrogate_equivalence.py``) and is finite for every
finite ``x``, float32's extremes included.

Names, descriptions, parameter defaults and where each formula comes from are listed in
:mod:`snnlab.catalog`; the classes here add the formulas. A config may also name a user's own surrogate as
``package.module:name`` (see :func:`load`).

``smooth`` is the peer's primitive where it defines one. Where it does not, or where its primitive is not
``1/2`` at ``x = 0``, it is ``1/2 + integral of grad from 0 to x``, which lines the curves up against the
step in a plot; only the derivative matters for training.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from snnlab import catalog

__all__ = ["Steps", "Surrogate", "get", "load", "names", "resolve", "spike", "REGISTRY"]


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


class _SpikeAtThresholdFunction(torch.autograd.Function):
    """Heaviside forward with ``H(0) = 1`` (SpikingJelly's convention); the same surrogate backward."""

    @staticmethod
    def forward(ctx, x: Tensor, surrogate: Surrogate) -> Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.grad(x), None


class Steps:
    """A gradient as a chain of in-place elementwise steps on ``x``: ``Steps().abs().add(1).square()...``.

    Each step is one float operation with one constant, the same in both places that run a chain: torch
    (:meth:`apply_`, which is the ``grad_`` of a surrogate that states ``steps``) and the C scan
    (``kernels/leaky.c``), which runs the steps on each block of 512 elements while it walks back through
    time, instead of torch passing over the whole ``[T, B, N]`` sequence once per step before the scan. The
    primitives below are the whole language; a formula that needs anything else (``exp``, a mask) is written
    in ``grad_`` and the C scan takes its values from torch.
    """

    __slots__ = ("ops",)

    def __init__(self, ops: tuple[tuple[str, float], ...] = ()) -> None:
        self.ops = ops

    def _then(self, op: str, c: float = 0.0) -> Steps:
        return Steps((*self.ops, (op, float(c))))

    def add(self, c: float) -> Steps:
        return self._then("add", c)

    def sub(self, c: float) -> Steps:
        return self._then("sub", c)

    def mul(self, c: float) -> Steps:
        return self._then("mul", c)

    def div(self, c: float) -> Steps:
        """``x / c``."""
        return self._then("div", c)

    def rdiv(self, c: float) -> Steps:
        """``c / x``: one rounding, as the peers' ``a / t`` (``a * (1/t)`` rounds twice)."""
        return self._then("rdiv", c)

    def square(self) -> Steps:
        return self._then("square")

    def abs(self) -> Steps:
        return self._then("abs")

    def clamp_min(self, c: float) -> Steps:
        return self._then("clamp_min", c)

    def fill(self, c: float) -> Steps:
        return self._then("fill", c)

    def apply_(self, x: Tensor) -> Tensor:
        """The steps run by torch on ``x``, in place."""
        for op, c in self.ops:
            x = _TORCH_STEPS[op](x, c)
        return x

    def __repr__(self) -> str:
        return "Steps(" + ", ".join(f"{op} {c:g}" for op, c in self.ops) + ")"


class Surrogate:
    """Base class. Subclasses set ``name``, define ``smooth`` and one of ``steps``/``grad_``/``grad``. One listed in the
    catalog takes its ``description``, parameter ``defaults`` and ``bounds`` from there; any other sets them
    itself (``bounds`` only for a parameter that is not "> 0")."""

    name: str = ""
    description: str = ""
    defaults: dict[str, float] = {}
    bounds: dict[str, catalog.Bound] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        listed = catalog.SURROGATES.get(cls.name)
        if listed is not None:
            cls.description, cls.defaults, cls.bounds = listed.description, dict(listed.defaults), dict(listed.bounds)

    def __init__(self, **params: float) -> None:
        cls = type(self)
        if cls.grad is Surrogate.grad and cls.grad_ is Surrogate.grad_ and cls.steps is Surrogate.steps:
            raise TypeError(f"{cls.__name__} defines none of steps(), grad(x) and grad_(x)")
        self.params = catalog.surrogate_params(self.name or cls.__name__, params, self.defaults, self.bounds)
        for key, value in self.params.items():
            setattr(self, key, value)

    def smooth(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def grad(self, x: Tensor) -> Tensor:
        """The surrogate gradient at ``x``, a new tensor outside autograd's graph (nothing differentiates a
        surrogate gradient again, and the in-place formulas could not be)."""
        return self.grad_(x.detach().clone())

    def grad_(self, x: Tensor) -> Tensor:
        """``grad(x)`` written into ``x`` (which it overwrites); the fused kernels' hot path."""
        steps = self.steps()
        return steps.apply_(x) if steps is not None else x.copy_(self.grad(x))

    def steps(self) -> Steps | None:
        """The gradient as a chain of :class:`Steps`, or None where it is written in ``grad_``/``grad``."""
        return None

    def spike(self, x: Tensor) -> Tensor:
        """Heaviside step of ``x`` whose backward pass uses :meth:`grad`."""
        return _SpikeFunction.apply(x, self)

    __call__ = spike

    def spike_at_threshold(self, x: Tensor) -> Tensor:
        """Like :meth:`spike`, but a membrane exactly at threshold fires: ``H(x) = 1 if x >= 0 else 0``.
        SpikingJelly's neurons fire this way (``snnlab.engine.neurons.spikingjelly``); the gradient is the same
        :meth:`grad`."""
        return _SpikeAtThresholdFunction.apply(x, self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.name}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Surrogate) and (self.name, self.params) == (other.name, other.params)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.params.items()))))


# --- shared pieces of formulas ------------------------------------------------------------------------------


def _divide_(numerator: float, x: Tensor) -> Tensor:
    """``numerator / x`` written into ``x``: one rounding, as the peers' ``a / t`` (``a * (1/t)`` rounds twice)."""
    return torch.div(x.new_full((), numerator), x, out=x)


_TORCH_STEPS: dict[str, Callable[[Tensor, float], Tensor]] = {
    "add": lambda x, c: x.add_(c),
    "sub": lambda x, c: x.sub_(c),
    "mul": lambda x, c: x.mul_(c),
    "div": lambda x, c: x.div_(c),
    "rdiv": lambda x, c: _divide_(c, x),
    "square": lambda x, c: x.square_(),
    "abs": lambda x, c: x.abs_(),
    "clamp_min": lambda x, c: x.clamp_min_(c),
    "fill": lambda x, c: x.fill_(c),
}


def _logistic_(x: Tensor, k: float) -> Tensor:
    """``k * sigmoid(k*x) * sigmoid(-k*x)`` (= ``k * s * (1 - s)``, ``s = sigmoid(k*x)``), written into ``x``.

    Accurate and finite everywhere: ``1 - s`` loses every digit once ``s`` rounds to 1 (float32 at
    ``k*x > 17``), and ``exp(-k*x) / (1 + exp(-k*x))^2`` is inf/inf = NaN once ``exp`` overflows.
    """
    kx = x.mul_(k)
    other_side = torch.sigmoid(-kx)
    return kx.sigmoid_().mul_(other_side).mul_(k)


def _fast_sigmoid(slope: float) -> Steps:
    """``1 / (slope*|x| + 1)^2``."""
    return Steps().abs().mul(slope).add(1).square().rdiv(1.0)


def _odd_primitive(x: Tensor) -> Tensor:
    """``x / (1 + |x|)``: the primitive of ``1 / (1 + |x|)^2``."""
    return x / (1 + x.abs())


def _integral(x: Tensor, primitive: Callable[[Tensor], Tensor]) -> Tensor:
    """``1/2 + F(x) - F(0)``: the smooth stand-in built from a primitive ``F`` of the gradient."""
    return 0.5 + primitive(x) - primitive(torch.zeros_like(x))


# --- snnTorch -------------------------------------------------------------------------------------------------


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


# --- SpikingJelly ---------------------------------------------------------------------------------------------


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


REGISTRY: dict[str, type[Surrogate]] = {
    cls.name: cls
    for cls in (
        ATan, FastSigmoid, Sigmoid, StraightThrough, Triangular, SpikeRateEscape, SparseFastSigmoid,
        LeakySpikeOperator, Erf, SoftSign, PiecewiseQuadratic, PiecewiseExp, SJSigmoid, SuperSpike,
        NonzeroSignLogAbs, PiecewiseLeakyReLU, LeakyKReLU, LogTailedReLU, QPseudoSpike, Rect, S2NN,
        SquarewaveFourierSeries, ReluGrad, Triangle, Gaussian,
    )
}  # fmt: skip
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


# --- a user's own surrogate -------------------------------------------------------------------------------------


class FunctionSurrogate(Surrogate):
    """A user's function ``grad(x, **params) -> Tensor`` (shaped like ``x``) as a surrogate: its parameters
    are whatever the config gives (any numbers), and it has no ``smooth``."""

    def __init__(self, name: str, function: Callable[..., Tensor], params: dict[str, float]) -> None:
        self.name, self.function = name, function
        self.params = {key: float(value) for key, value in params.items()}

    def smooth(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"surrogate {self.name!r} is a function grad(x): it has no smooth(x)")

    def grad(self, x: Tensor) -> Tensor:
        return self.function(x, **self.params)


def load(path: str, **params: float) -> Surrogate:
    """The user's surrogate at ``path``, ``package.module:name``, with ``params``.

    ``name`` is either a :class:`Surrogate` subclass (its ``defaults`` list the parameters it takes; it runs
    in the fused kernels like any registry surrogate) or a function ``grad(x, **params) -> Tensor`` giving
    the surrogate gradient at ``x = membrane - threshold``, shaped like ``x``. The module is imported from
    the installed packages or, after them, from the current directory. The surrogate is tried once on a few
    points, so that a broken one fails here, before training.

    Raises ValueError, one line, naming the path and what went wrong.
    """
    module_name, _, attribute = path.partition(":")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)  # after the installed packages, so that a local file never shadows one
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as exc:  # importing runs the user's module, which may raise anything
        raise ValueError(f"surrogate {path!r}: cannot import {module_name!r}: {_one_line(exc)}") from None
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ValueError(f"surrogate {path!r}: {module_name!r} has no {attribute!r}")
        found = getattr(found, part)
    surrogate: Surrogate
    if isinstance(found, type) and issubclass(found, Surrogate):
        try:
            surrogate = found(**params)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"surrogate {path!r}: {_one_line(exc, named=isinstance(exc, TypeError))}") from None
    elif callable(found) and not isinstance(found, type):
        surrogate = FunctionSurrogate(path, found, params)
    else:
        raise ValueError(f"surrogate {path!r}: not a Surrogate subclass nor a function grad(x) -> Tensor")
    x = torch.linspace(-2, 2, 9)
    try:
        g = surrogate.grad(x.clone())
    except Exception as exc:  # the user's code
        raise ValueError(f"surrogate {path!r}: grad(x) failed on a test tensor: {_one_line(exc)}") from None
    if not isinstance(g, Tensor) or g.shape != x.shape or not g.is_floating_point():
        got = f"a {g.dtype} tensor of shape {list(g.shape)}" if isinstance(g, Tensor) else type(g).__name__
        raise ValueError(f"surrogate {path!r}: grad(x) must return a float tensor shaped like x (got {got})")
    return surrogate


def _one_line(exc: BaseException, named: bool = True) -> str:
    """The first line of ``exc``'s message, after its type's name when ``named`` (as Python would show it)."""
    lines = str(exc).strip().splitlines()
    if not named and lines:
        return lines[0]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


SpikeFn = Callable[[Tensor], Tensor]


def resolve(surrogate: str | Surrogate | SpikeFn | None, **params: float) -> Surrogate | SpikeFn:
    """A registry name, a user's ``package.module:name`` (see :func:`load`), a :class:`Surrogate`, or any
    callable ``spike(x)`` with its own autograd.

    A plain callable works with the reference path only (the fused kernels need ``grad(x)``).
    """
    if surrogate is None:
        return get(DEFAULT, **params)
    if isinstance(surrogate, str):
        return load(surrogate, **params) if catalog.is_surrogate_path(surrogate) else get(surrogate, **params)
    if callable(surrogate):
        return surrogate
    raise TypeError(f"surrogate must be a name, a Surrogate or a callable, not {type(surrogate).__name__}")


def spike(x: Tensor, surrogate: str | Surrogate = DEFAULT) -> Tensor:
    """Heaviside step of ``x = membrane - threshold`` with the named surrogate's gradient."""
    return resolve(surrogate)(x)
