"""Weight and bias initialisers of linear and conv layers, by the names :data:`snnlab.catalog.INITS` lists.

Each is torch.nn.init's function of that name, except ``default`` (leave the layer as torch built it) and
``brainpy_kaiming_normal``: BrainPy's ``KaimingNormal(scale)`` (braintools.init, a VarianceScaling with
distribution "normal") draws ``N(0, std)`` with ``std = sqrt(scale/fan)``, its ``scale`` a multiplier of the
variance, where torch's ``kaiming_normal_`` takes a gain of the std (``sqrt(2/(1+a^2))``), which cannot go
above sqrt(2). BrainPy's fans are torch's: a dense weight ``[in, out]`` there is ``[out, in]`` here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from snnlab import catalog


def _fan(weight: Tensor, fan_out: bool) -> int:
    fan_in, fan_out_ = nn.init._calculate_fan_in_and_fan_out(weight)
    return fan_out_ if fan_out else fan_in


def _kaiming_mode(params: Mapping[str, float]) -> Literal["fan_in", "fan_out"]:
    return "fan_out" if params["fan_out"] else "fan_in"


def _brainpy_kaiming_normal(weight: Tensor, scale: float, fan_out: float) -> Tensor:
    std = math.sqrt(scale / max(1, _fan(weight, bool(fan_out))))
    return nn.init.normal_(weight, 0.0, std)


_Init = Callable[[Tensor, Mapping[str, float]], object]
INITS: dict[str, _Init] = {
    "default": lambda w, p: None,
    "zeros": lambda w, p: nn.init.zeros_(w),
    "constant": lambda w, p: nn.init.constant_(w, p["value"]),
    "uniform": lambda w, p: nn.init.uniform_(w, p["a"], p["b"]),
    "normal": lambda w, p: nn.init.normal_(w, p["mean"], p["std"]),
    "trunc_normal": lambda w, p: nn.init.trunc_normal_(w, p["mean"], p["std"], p["a"], p["b"]),
    "xavier_uniform": lambda w, p: nn.init.xavier_uniform_(w, p["gain"]),
    "xavier_normal": lambda w, p: nn.init.xavier_normal_(w, p["gain"]),
    "kaiming_uniform": lambda w, p: nn.init.kaiming_uniform_(w, p["a"], _kaiming_mode(p)),
    "kaiming_normal": lambda w, p: nn.init.kaiming_normal_(w, p["a"], _kaiming_mode(p)),
    "brainpy_kaiming_normal": lambda w, p: _brainpy_kaiming_normal(w, p["scale"], p["fan_out"]),
    "orthogonal": lambda w, p: nn.init.orthogonal_(w, p["gain"]),
}
catalog.check_implemented("initialisers", catalog.INITS, INITS)


def params_of(name: str, params: Mapping[str, float] | None = None) -> dict[str, float]:
    """Initialiser ``name``'s parameters: its catalog defaults updated by ``params``. Raises ValueError (one
    line) for an unknown name or parameter, or a value it does not take."""
    if name not in catalog.INITS:
        raise ValueError(f"unknown initialiser {name!r} (choose from: {', '.join(catalog.INITS)})")
    return catalog.init_params(name, params or {})


@torch.no_grad()
def initialise(weight: Tensor, name: str, params: Mapping[str, float] | None = None) -> None:
    """Fill ``weight`` in place with initialiser ``name`` (``default`` leaves it as it is)."""
    merged = params_of(name, params)  # refuses an unknown name in words before the registry is looked up
    INITS[name](weight, merged)
