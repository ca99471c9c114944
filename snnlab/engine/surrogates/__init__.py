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

Modules: ``base`` (Surrogate, Steps), ``snntorch``, ``spikingjelly``, ``own`` (BrainPy's and snnlab's),
``user`` (loading ``package.module:name``).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from snnlab import catalog
from snnlab.engine.surrogates.base import Steps, Surrogate
from snnlab.engine.surrogates.own import Gaussian, NoGradient, ReluGrad, Triangle
from snnlab.engine.surrogates.snntorch import (
    ATan,
    FastSigmoid,
    LeakySpikeOperator,
    Sigmoid,
    SparseFastSigmoid,
    SpikeRateEscape,
    StraightThrough,
    Triangular,
)
from snnlab.engine.surrogates.spikingjelly import (
    S2NN,
    Erf,
    LeakyKReLU,
    LogTailedReLU,
    NonzeroSignLogAbs,
    PiecewiseExp,
    PiecewiseLeakyReLU,
    PiecewiseQuadratic,
    QPseudoSpike,
    Rect,
    SJSigmoid,
    SoftSign,
    SquarewaveFourierSeries,
    SuperSpike,
)
from snnlab.engine.surrogates.user import FunctionSurrogate, load

__all__ = ["Steps", "Surrogate", "NoGradient", "FunctionSurrogate", "get", "load", "names", "resolve", "spike",
           "REGISTRY", "DEFAULT", "SpikeFn"]  # fmt: skip

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
