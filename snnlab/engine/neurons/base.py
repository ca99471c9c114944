"""What every neuron shares: beta, threshold, reset and surrogate, and how they become parameters."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from snnlab import catalog
from snnlab.engine import surrogates
from snnlab.engine.kernels import reference as ref


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
    ``reset`` ("subtract" | "zero" | "none") and the ``surrogate`` used for the spike's gradient.

    snnTorch's options, with its names (see :class:`~snnlab.engine.kernels.reference.Firing` for the
    equations):

    - ``graded_spikes_factor``: output spikes are this value instead of 1 (``learn_graded_spikes_factor``
      trains it); a recurrent neuron feeds back its graded spikes;
    - ``inhibition``: per sample and step, only the neuron with the largest ``mem - threshold`` may spike
      (features ``[N]`` only); the reset still follows every neuron's own membrane, as in snnTorch;
    - ``reset_delay=False``: a spike resets the membrane in its own step, not the next;
    - ``state_quant``: a function applied to every state after each step (e.g.
      :func:`snnlab.engine.quant.state_quant`), with its own gradient (straight-through for that one);
    - ``surrogate_disable``: spikes carry no gradient at all, whatever ``surrogate`` says.

    ``graded_spikes_factor``, ``surrogate_disable`` and ``inhibition`` (on a neuron without recurrence) keep
    the fused whole-sequence path; ``reset_delay=False``, ``state_quant`` and inhibition of a recurrent
    neuron change the step itself, and ``forward`` then runs the reference step loop.
    """

    beta: Tensor  # a parameter or a buffer, registered by _register
    threshold: Tensor
    # What "zero" means for this neuron, as snnTorch defines it: "zero" zeroes the membrane carried over
    # (Leaky), "zero_step" the whole step, input included (Synaptic, RLeaky, Lapicque).
    zero_reset = "zero_step"
    graded_spikes_factor: Tensor | None
    feeds_back = False  # whether spikes feed back (then the fused path cannot mask them after the scan)

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
        graded_spikes_factor: float | Tensor = 1.0,
        learn_graded_spikes_factor: bool = False,
        inhibition: bool = False,
        reset_delay: bool = True,
        state_quant: surrogates.SpikeFn | None = None,
        surrogate_disable: bool = False,
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
        if surrogate_disable:
            self.spike_fn = surrogates.NoGradient()
        self.fused = fused
        graded = _as_tensor(graded_spikes_factor, "graded_spikes_factor")
        if graded.dim() != 0 or graded.item() == 0:
            raise ValueError(f"graded_spikes_factor must be one number other than 0 (got {graded_spikes_factor})")
        if learn_graded_spikes_factor or graded.item() != 1:  # else none, and state dicts stay as they were
            self._register("graded_spikes_factor", graded, learn_graded_spikes_factor)
        else:
            self.graded_spikes_factor = None
        if state_quant is not None and not callable(state_quant):
            raise TypeError(f"state_quant must be a function of a tensor (got {type(state_quant).__name__})")
        self.inhibition, self.reset_delay, self.state_quant = inhibition, reset_delay, state_quant
        self.surrogate_disable = surrogate_disable

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
        changes_step = not self.reset_delay or self.state_quant is not None or (self.inhibition and self.feeds_back)
        return self.fused and isinstance(self.spike_fn, surrogates.Surrogate) and not changes_step

    @property
    def firing(self) -> surrogates.SpikeFn:
        """What the reference steps fire with: the surrogate's spike, or a Firing when an option is set."""
        if self.graded_spikes_factor is None and not self.inhibition and self.reset_delay and not self.state_quant:
            return self.spike_fn
        return ref.Firing(self.spike_fn, self.graded_spikes_factor, self.inhibition, self.reset_delay,
                          self.state_quant)  # fmt: skip

    def _fired(self, spk: Tensor, mem: Tensor, threshold: Tensor) -> Tensor:
        """The fused path's output spikes from the scan's plain ones ``[T, B, ...]``: graded or inhibited."""
        if self.inhibition:
            return spk * ref.winner(mem - threshold)
        return spk if self.graded_spikes_factor is None else spk * self.graded_spikes_factor.to(spk.dtype)

    def surrogate_input(self, spikes: Tensor, membrane: Tensor) -> tuple[Tensor, Tensor | None] | None:
        """Where the spike function was evaluated, from a forward pass's ``spikes`` and ``membrane`` ``[T, B, ...]``
        (``engine.health`` reads the surrogate's gradient there): ``(x, known)`` with ``x = mem - threshold`` and
        ``known`` the steps whose ``x`` the record tells, None for all of them. None when the spike function is not
        a :class:`~snnlab.engine.surrogates.Surrogate` (its gradient is not known), or with ``reset_delay=False``:
        the membrane recorded then is the one after the step's own reset, and after the previous step's reset
        taken back, so ``x`` cannot be read from it."""
        if not isinstance(self.spike_fn, surrogates.Surrogate) or not self.reset_delay:
            return None
        return membrane.float() - self.threshold.to(membrane.device, torch.float32), None

    def _params(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """beta clamped to [0, 1] and threshold, in the input's dtype."""
        return self.beta.clamp(0, 1).to(like.dtype), self.threshold.to(like.dtype)

    def extra_repr(self) -> str:
        options = (
            [f"graded_spikes_factor={_short(self.graded_spikes_factor)}"]
            if self.graded_spikes_factor is not None
            else []
        )
        options += [name for name in ("inhibition", "surrogate_disable") if getattr(self, name)]
        options += ["reset_delay=False"] * (not self.reset_delay) + ["state_quant"] * (self.state_quant is not None)
        return (
            f"beta={_short(self.beta)}, threshold={_short(self.threshold)}, reset={self.reset}, "
            + (f"surrogate={self.spike_fn!r}")
            + "".join(f", {option}" for option in options)
        )
