"""What every neuron shares: beta, threshold, reset and surrogate, and how they become parameters."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from snnlab import catalog
from snnlab.engine import surrogates


def _as_tensor(value: float | Tensor, name: str) -> Tensor:
    tensor = torch.as_tensor(value, dtype=torch.float32).clone().detach()
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must be finite (got {value})")
    return tensor


def _short(value: Tensor) -> str:
    """A parameter as a module's repr shows it: its value, or ``[n]`` for n of them."""
    return f"{value.item():g}" if value.dim() == 0 else f"[{value.numel()}]"


class SpikingNeuron(nn.Module):
    """Shared parameters: ``beta`` (membrane decay, clamped to [0, 1] in the forward pass), ``threshold``,
    ``reset`` ("subtract" | "zero" | "none") and the ``surrogate`` used for the spike's gradient."""

    beta: Tensor  # a parameter or a buffer, registered by _register
    threshold: Tensor
    # What "zero" means for this neuron, as snnTorch defines it: "zero" zeroes the membrane carried over
    # (Leaky), "zero_step" the whole step, input included (Synaptic, RLeaky, Lapicque).
    zero_reset = "zero_step"

    def __init__(
        self,
        beta: float | Tensor = 0.9,
        threshold: float | Tensor = 1.0,
        reset: str = "subtract",
        surrogate: str | surrogates.Surrogate | surrogates.SpikeFn = surrogates.DEFAULT,
        surrogate_params: dict[str, float] | None = None,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        fused: bool = True,
    ) -> None:
        super().__init__()
        if reset not in catalog.RESETS:
            raise ValueError(f"reset must be one of {', '.join(catalog.RESETS)} (got {reset!r})")
        threshold_t = _as_tensor(threshold, "threshold")
        if not (threshold_t > 0).all():
            raise ValueError(f"threshold must be > 0 (got {threshold})")
        self._register("beta", _as_tensor(beta, "beta"), learn_beta)
        self._register("threshold", threshold_t, learn_threshold)
        self.reset = reset
        self.spike_fn = surrogates.resolve(surrogate, **(surrogate_params or {}))
        self.fused = fused

    def _register(self, name: str, value: Tensor, learn: bool) -> None:
        if learn:
            setattr(self, name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    @property
    def scan_reset(self) -> str:
        """The reset the scans are handed: ``reset``, with "zero" made this neuron's kind of zero."""
        return self.zero_reset if self.reset == "zero" else self.reset

    @property
    def uses_fused(self) -> bool:
        return self.fused and isinstance(self.spike_fn, surrogates.Surrogate)

    def _params(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """beta clamped to [0, 1] and threshold, in the input's dtype."""
        return self.beta.clamp(0, 1).to(like.dtype), self.threshold.to(like.dtype)

    def extra_repr(self) -> str:
        return f"beta={_short(self.beta)}, threshold={_short(self.threshold)}, reset={self.reset}, " + (
            f"surrogate={self.spike_fn!r}"
        )
