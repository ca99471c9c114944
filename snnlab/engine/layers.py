"""Layers that act on time itself, beyond torch's: they take the whole ``[T, B, ...]`` sequence at once.

``SpikingNet`` hands every other layer ``[T*B, ...]`` (time folded into the batch); a layer with
``takes_time = True`` receives ``[T, B, ...]`` instead, and a static (direct-encoded) input ``[B, ...]``
is repeated over the T steps before it, since its output differs from step to step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BatchNormTT(nn.ModuleList):
    """Batch normalisation through time (Kim & Panda 2020), as snnTorch's ``BatchNormTT1d`` / ``BatchNormTT2d``:
    one batch norm per time step, each with its own running statistics and scale.

    Step ``t`` of the input is normalised by norm ``t`` alone::

        y[t] = weight[t] * (x[t] - mean[t]) / sqrt(var[t] + eps)

    where ``mean[t]``, ``var[t]`` are the batch's statistics of step ``t`` while training (over the batch, and
    over H and W for ``[C, H, W]`` features) and norm ``t``'s running statistics in eval mode, updated with
    ``momentum`` exactly as ``torch.nn.BatchNorm1d`` / ``BatchNorm2d`` update theirs. Like snnTorch's, the
    norms have no bias (no learned shift): snnTorch removes it after building each norm, so only the scale
    ``weight[t]`` is learned (and nothing when ``affine`` is false).

    The module is a ``ModuleList`` of the T norms, so its state dict has snnTorch's names: ``0.weight``,
    ``0.running_mean``, ``0.running_var``, ``0.num_batches_tracked``, ``1.weight``, ... and one saved from a
    snnTorch BatchNormTT loads as it is.

    Args:
        features: features ``N`` of ``[T, B, N]`` inputs, or channels ``C`` of ``[T, B, C, H, W]`` inputs.
        time_steps: T, the number of norms; an input with another number of steps is refused.
        image: the inputs are ``[T, B, C, H, W]`` (BatchNorm2d per step) rather than ``[T, B, N]``.
        eps, momentum, affine: as torch's BatchNorm (momentum None: a cumulative average).
    """

    takes_time = True

    def __init__(
        self,
        features: int,
        time_steps: int,
        image: bool = False,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
    ) -> None:
        if time_steps < 1:
            raise ValueError(f"BatchNormTT needs time_steps >= 1 (got {time_steps})")
        norm = nn.BatchNorm2d if image else nn.BatchNorm1d
        super().__init__(norm(features, eps=eps, momentum=momentum, affine=affine) for _ in range(time_steps))
        for bn in self:
            bn.register_parameter("bias", None)  # snnTorch's BNTT scales but does not shift
        self.image = image

    def forward(self, x: Tensor, start: int | None = None) -> Tensor:
        """``x``: the whole sequence, or with ``start`` the steps ``start, start + 1, ...`` of it (a segment of a
        segmented backward pass, ``train.bptt_segment``), each normalised by its own step's norm."""
        dims = 5 if self.image else 3
        if x.dim() != dims:
            want = "[T, B, C, H, W]" if self.image else "[T, B, N]"
            raise ValueError(f"BatchNormTT takes {want} inputs, got shape {list(x.shape)}")
        if start is None:
            self.check_steps(x.shape[0])
            start = 0
        elif not 0 <= start <= start + x.shape[0] <= len(self):
            raise ValueError(f"steps {start} to {start + x.shape[0] - 1} are outside the {len(self)} norms")
        return torch.stack([self[start + t](x[t]) for t in range(x.shape[0])])

    def check_steps(self, time_steps: int) -> None:
        """Raises ValueError unless the sequence has one step per norm."""
        if time_steps != len(self):
            raise ValueError(
                f"batchnorm_tt holds one norm per time step and was built for T={len(self)}, but the input has "
                f"{time_steps} steps: build it with time_steps={time_steps} (the run's data.time_steps)"
            )

    def extra_repr(self) -> str:
        return f"time_steps={len(self)}, image={self.image}"
