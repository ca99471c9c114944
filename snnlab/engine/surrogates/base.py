"""What every surrogate is: the spike functions, :class:`Surrogate`, :class:`Steps`, and the pieces
of formulas several share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from snnlab import catalog


class _SpikeFunction(torch.autograd.Function):
    """Heaviside forward, ``H(0) = 0``, or ``H(0) = 1`` with ``fires_at_zero`` (SpikingJelly's convention);
    ``grad_output * surrogate.grad(x)`` backward either way."""

    @staticmethod
    def forward(ctx, x: Tensor, surrogate: Surrogate, fires_at_zero: bool) -> Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0 if fires_at_zero else x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.grad(x), None, None


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
        return _SpikeFunction.apply(x, self, False)

    __call__ = spike

    def spike_at_threshold(self, x: Tensor) -> Tensor:
        """Like :meth:`spike`, but a membrane exactly at threshold fires: ``H(x) = 1 if x >= 0 else 0``.
        SpikingJelly's neurons fire this way (``snnlab.engine.neurons.spikingjelly``); the gradient is the same
        :meth:`grad`."""
        return _SpikeFunction.apply(x, self, True)

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
