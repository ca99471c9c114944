"""Layers beyond torch's: those that act on time itself, which take the whole ``[T, B, ...]`` sequence at once,
and a max pool with a faster CPU path.

``SpikingNet`` hands every other layer ``[T*B, ...]`` (time folded into the batch); a layer with
``takes_time = True`` receives ``[T, B, ...]`` instead, and a static (direct-encoded) input ``[B, ...]``
is repeated over the T steps before it, since its output differs from step to step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from snnlab.engine.kernels import native


class MaxPool2d(nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` whose common case runs in C on the CPU: float32 ``[B, C, H, W]`` input, windows that
    tile the image (stride = kernel size, no padding, no dilation, floor mode). The values and the gradients are
    torch's bit for bit (the same element is chosen in every window, ties and NaN included); on spike maps the
    forward pass takes about a third of torch's time, and the backward pass keeps one byte per output instead of
    the input and an int64 index (``kernels/pool.c``). Everything else (CUDA, other dtypes, overlapping windows,
    ``return_indices``) is torch's own."""

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002 - torch's name
        kernel = self._tiling_kernel()
        if kernel is not None and native.maxpool_usable(input, kernel):
            return _TiledMaxPool.apply(input, kernel)
        return super().forward(input)

    def _tiling_kernel(self) -> int | None:
        """The window size when the windows tile the image, else None."""
        k, stride = _pair(self.kernel_size), _pair(self.stride if self.stride is not None else self.kernel_size)
        tiles = k[0] == k[1] == stride[0] == stride[1] and _pair(self.padding) == (0, 0)
        plain = _pair(self.dilation) == (1, 1) and not self.ceil_mode and not self.return_indices
        return k[0] if tiles and plain else None


def _pair(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return (value, value) if isinstance(value, int) else tuple(value)


class _TiledMaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, kernel: int) -> Tensor:
        out, where = native.maxpool_forward(x, kernel)
        ctx.save_for_backward(where)
        ctx.shape, ctx.kernel = x.shape, kernel
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, None]:
        (where,) = ctx.saved_tensors
        return native.maxpool_backward(grad_out, where, ctx.shape, ctx.kernel), None


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


class DelayedLinear(nn.Module):
    """A fully connected layer whose every synapse ``i -> j`` has a weight ``w[j, i]`` and a learned delay
    ``d[j, i]`` in steps, learned as in Hammouamri, Khalfaoui-Hassani & Masquelier (ICLR 2024), "Learning delays
    in SNNs using dilated convolutions with learnable spacings" (DCLS).

    The layer is a causal 1-D convolution over time with a kernel of ``K = max_delay + 1`` taps per synapse,
    tap ``k`` standing for a delay of ``k`` steps. While training, synapse ``(j, i)`` spreads its weight over
    the taps with a Gaussian centred on its delay, which is what gives the delay a gradient::

        g[j, i, k] = exp(-(k - d[j, i])^2 / (2 sigma^2)),   kernel[j, i, k] = w[j, i] g[j, i, k] / sum_k g[j, i, k]
        y[t, b, j] = bias[j] + sum_i sum_k kernel[j, i, k] x[t - k, b, i]        (x before step 0 is 0)

    ``sigma`` starts wide (``sigma_start``, default ``max_delay / 2``) and falls over training to ``sigma_end``
    (:meth:`set_epoch`), so each synapse ends near a single tap. In eval mode, with ``round_in_eval``, every delay
    is rounded to a whole step and the kernel has one hard tap per synapse: ``y[t, j] = bias[j] + sum_i w[j, i]
    x[t - round(d[j, i]), i]``, the network the paper keeps at the end of training. The delays stay in
    ``[0, max_delay]``: :meth:`constrain` clamps them after each optimizer step.

    Inputs and outputs are whole sequences, ``[T, B, in_features] -> [T, B, out_features]``.

    Args:
        in_features, out_features, bias: as ``nn.Linear`` (and its initialisation of weight and bias).
        max_delay: the longest delay, in steps.
        sigma_start, sigma_end, sigma_anneal: the Gaussian's width at the first epoch, at the end of the anneal,
            and the fraction of the run's epochs over which it falls (exponentially) from one to the other.
        delay_lr_scale: the delays' learning rate over the weights' (the paper trains them 100 times faster).
        round_in_eval: evaluate with rounded delays and hard taps (else with the training kernel).
    """

    takes_time = True
    sigma: Tensor  # a buffer: the Gaussian's width now, in steps

    def __init__(
        self,
        in_features: int,
        out_features: int,
        max_delay: int,
        bias: bool = True,
        sigma_start: float | None = None,
        sigma_end: float = 0.23,
        sigma_anneal: float = 0.25,
        delay_lr_scale: float = 100.0,
        round_in_eval: bool = True,
    ) -> None:
        super().__init__()
        if max_delay < 1:
            raise ValueError(f"max_delay must be at least 1 step (got {max_delay})")
        start = max_delay / 2 if sigma_start is None else sigma_start
        if not (start > 0 and sigma_end > 0):
            raise ValueError(f"sigma_start and sigma_end must be > 0 (got {start} and {sigma_end})")
        linear = nn.Linear(in_features, out_features, bias=bias)  # torch's own initialisation of both
        self.weight = linear.weight
        self.bias = linear.bias
        self.delay = nn.Parameter(torch.empty(out_features, in_features).uniform_(0, max_delay))
        # Saved with the model, so that a checkpoint evaluates with the width it was trained at.
        self.register_buffer("sigma", torch.tensor(float(start)))
        self.in_features, self.out_features, self.max_delay = in_features, out_features, max_delay
        self.sigma_start, self.sigma_end, self.sigma_anneal = float(start), float(sigma_end), float(sigma_anneal)
        self.round_in_eval = round_in_eval
        self.lr_scales = {"delay": float(delay_lr_scale)}  # read by the optimizer's parameter groups

    def kernel(self) -> Tensor:
        """The ``[out, in, K]`` kernel, tap ``k`` holding the weight given to the input ``k`` steps back."""
        taps = torch.arange(self.max_delay + 1, device=self.weight.device, dtype=self.weight.dtype)
        delay = self.delay.clamp(0, self.max_delay).unsqueeze(-1)
        if self.round_in_eval and not self.training:
            return self.weight.unsqueeze(-1) * (taps == delay.round()).to(self.weight.dtype)
        # The normalised Gaussian as a softmax of its exponents: exact, and never 0 / 0 when sigma is so narrow
        # that exp underflows at every tap (a delay halfway between two steps).
        return self.weight.unsqueeze(-1) * torch.softmax(-0.5 * ((taps - delay) / self.sigma) ** 2, dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(f"delayed_linear takes [T, B, {self.in_features}] inputs, got shape {list(x.shape)}")
        T, B = x.shape[:2]
        # conv1d correlates: the tap that multiplies x[t - k] sits k places from the end, so the kernel is
        # flipped; padding max_delay zeros on the left keeps the output causal and T steps long.
        seq = nn.functional.pad(x.permute(1, 2, 0), (self.max_delay, 0))
        out = nn.functional.conv1d(seq, self.kernel().flip(-1), self.bias)
        return out.permute(2, 0, 1).contiguous()

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """The Gaussian's width for epoch ``epoch`` (from 1) of ``epochs``: ``sigma_start`` at the first, falling
        exponentially to ``sigma_end`` over ``round(sigma_anneal * epochs)`` epochs, then staying there."""
        self.sigma.fill_(sigma_at(epoch, epochs, self.sigma_start, self.sigma_end, self.sigma_anneal))

    @torch.no_grad()
    def constrain(self) -> None:
        """Keep every delay within ``[0, max_delay]`` (after an optimizer step)."""
        self.delay.clamp_(0, self.max_delay)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, max_delay={self.max_delay}, "
            f"bias={self.bias is not None}, sigma={self.sigma.item():.3g}"
        )


def sigma_at(epoch: int, epochs: int, start: float, end: float, anneal: float) -> float:
    """The width of :class:`DelayedLinear`'s Gaussian at epoch ``epoch`` (from 1) of ``epochs``: ``start *
    (end / start) ** (e / span)`` with ``e = min(epoch - 1, span)`` and ``span = round(anneal * epochs)``
    (the paper's per-epoch factor, reaching ``end`` at epoch ``span + 1``); ``end`` throughout when span is 0."""
    span = round(anneal * epochs)
    if span <= 0:
        return end
    return start * (end / start) ** (min(max(epoch - 1, 0), span) / span)
