"""What a resumed run may change, and how a change takes effect.

A checkpoint is the state of one training run: its weights fit one network, its optimizer state one
optimizer, its RNG states and position one dataset, seed and batch size. A resume may therefore change
only what the saved state does not depend on. :data:`RESUMABLE` lists those keys (a key also covers the
keys below it); every other difference between the checkpoint's config and the new one is refused,
naming the key, before anything is written.

Optimizer hyper-parameters are restored from the checkpoint together with the optimizer state, so a
changed one is written into every parameter group after loading (:func:`apply`). The rule is that the
resumed run continues with the hyper-parameters the new config would have at this point of training:
with a learning-rate scheduler, ``train.lr`` is the new base rate and the current rate is that base at
the schedule's current epoch; a cosine schedule's length follows ``train.epochs``, so training longer
re-spreads the remaining decay over the new last epoch (the rate jumps once, then decays to zero at the
new end) instead of running past the end of the old cosine and rising again.

Torch-free at import: the CLI checks a resume before it starts the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The one list of what ``snnlab run --resume RUN --set KEY=VALUE`` may change, with how it takes effect.
RESUMABLE: dict[str, str] = {
    "description": "text only",
    "train.epochs": "train longer (or end sooner); a cosine schedule is stretched to the new end",
    "train.max_steps": "read at every step",
    "train.lr": "written into the optimizer; with a scheduler, the new base rate of the schedule",
    "train.betas": "written into the optimizer (adam, adamw)",
    "train.momentum": "written into the optimizer (sgd)",
    "train.weight_decay": "written into the optimizer",
    "train.grad_clip": "read at every step",
    "train.device": "the checkpoint is loaded onto the new device",
    "model.fused": "the same equations through another kernel",
    "train.bptt_segment": "the same gradients, with less memory kept for the backward pass",
    "train.compact_spikes": "the same gradients, the hidden spikes kept for the backward pass in one byte",
    "data.data_dir": "where the same dataset is found",
    "data.download": "whether a missing dataset may be fetched",
    "run.checkpoint_every": "output only",
    "run.checkpoint_steps": "output only",
    "run.eval_every": "output only (evaluation has its own random generator)",
    "run.log_every": "output only",
    "run.probes": "output only (probes have their own random generator)",
    "run.health": "output only (it reads the network, it draws no random numbers)",
    "run.loggers": "output only (a resumed TensorBoard log goes on in the same folder)",
}

# Why the rest cannot change; the longest matching prefix speaks.
_REFUSED_BECAUSE: dict[str, str] = {
    "": "the checkpoint was made under the old value",
    "model": "the checkpoint's weights belong to the old network",
    "train.optimizer": "the optimizer state would not fit",
    "train.scheduler": "the learning-rate schedule's state would not fit",
    "train.step_size": "the learning-rate schedule's state would not fit",
    "train.gamma": "the learning-rate schedule's state would not fit",
    "train.seed": "the shuffles and encoder noise could not continue where they stopped",
    "train.loss": "the run would continue towards another objective",
    "train.loss_params": "the run would continue towards another objective",
    "train.decoder": "the run would continue towards another objective",
    "train.precision": "the arithmetic would change midway through the run",
    "data": "the run would continue on other batches than it was trained on",
    "run.name": "the run directory is already chosen",
    "run.runs_dir": "the run directory is already chosen",
}

# Config key -> the optimizer's parameter-group key it sets.
_OPTIMIZER_KEYS = {
    "train.lr": "lr",
    "train.betas": "betas",
    "train.momentum": "momentum",
    "train.weight_decay": "weight_decay",
}


class ResumeRefused(ValueError):
    """The new config changes something the checkpoint depends on (one-line message)."""


@dataclass(frozen=True)
class Change:
    key: str  # dotted, as in --set: train.lr, model.layers.1.out_features
    old: Any
    new: Any


def _leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value. Mappings and lists of mappings (layers) are walked; any other list (betas) is
    one value, so it is reported and set as a whole."""
    if isinstance(data, dict):
        items = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, list) and any(isinstance(v, dict) for v in data):
        items = [(str(i), v) for i, v in enumerate(data)]
    else:
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(_leaves(value, f"{prefix}.{key}" if prefix else key))
    return out


def _under(key: str, prefix: str) -> bool:
    return prefix == "" or key == prefix or key.startswith(prefix + ".")


def may_change(key: str) -> bool:
    return any(_under(key, allowed) for allowed in RESUMABLE)


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Keys whose value differs. A key the old config lacks (a field added since the checkpoint was made)
    counts as unchanged unless it is new under a list of layers."""
    before, after = _leaves(old), _leaves(new)
    _missing = object()
    changes = []
    for key in list(before) + [k for k in after if k not in before]:
        a, b = before.get(key, _missing), after.get(key, _missing)
        if a is _missing and not key.startswith("model.layers."):
            continue
        if a != b:
            changes.append(Change(key, None if a is _missing else a, None if b is _missing else b))
    return changes


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def check(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Change]:
    """The changes from the checkpoint's config ``old`` to ``new``, all of them resumable.

    Raises:
        ResumeRefused: one line naming the first key that may not change, its two values and why.
    """
    if not old:
        return []  # a checkpoint without its config: nothing to compare against
    changes = diff(old, new)
    refused = [c for c in changes if not may_change(c.key)]
    if not refused:
        return changes
    first = refused[0]
    why = max((p for p in _REFUSED_BECAUSE if _under(first.key, p)), key=len)
    more = f", nor {', '.join(c.key for c in refused[1:])}" if len(refused) > 1 else ""
    raise ResumeRefused(
        f"--resume cannot change {first.key} ({_show(first.old)} -> {_show(first.new)}){more}: "
        f"{_REFUSED_BECAUSE[why]}; start a new run"
    )


def apply(changes: list[Change], optimizer: Any, scheduler: Any = None) -> None:
    """Write changed optimizer hyper-parameters into ``optimizer`` (and ``scheduler``) after their states
    were loaded from a checkpoint, which brought back the old values. See the module docstring for the rule."""
    changed = {c.key: c.new for c in changes}
    for key, group_key in _OPTIMIZER_KEYS.items():
        if key not in changed:
            continue
        value = tuple(changed[key]) if isinstance(changed[key], list) else changed[key]
        for group in optimizer.param_groups:
            if group_key in group:  # momentum means nothing to Adam, betas nothing to SGD
                # A group with an lr_scale (delayed_linear's delays) keeps its rate's ratio to train.lr.
                group[group_key] = value * group.get("lr_scale", 1.0) if group_key == "lr" else value
    if scheduler is None:
        return
    if "train.lr" in changed:
        for group in optimizer.param_groups:
            group["initial_lr"] = changed["train.lr"] * group.get("lr_scale", 1.0)
        scheduler.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    if "train.epochs" in changed and hasattr(scheduler, "T_max"):
        scheduler.T_max = changed["train.epochs"]
    if "train.lr" in changed or ("train.epochs" in changed and hasattr(scheduler, "T_max")):
        # The rate the changed schedule gives at the epoch reached; the scheduler's own update is recursive
        # from the current rate, so it carries on along the changed schedule from here.
        for group, lr in zip(optimizer.param_groups, scheduler._get_closed_form_lr(), strict=True):
            group["lr"] = lr
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
