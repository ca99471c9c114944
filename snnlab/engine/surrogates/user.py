"""A user's own surrogate, named in a config as ``package.module:name``."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from snnlab.engine.surrogates.base import (
    Surrogate,
)


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
