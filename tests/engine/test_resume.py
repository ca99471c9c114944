"""What a resume may change (one table), and changed optimizer settings reaching the optimizer."""

import math

import pytest
import torch

from snnlab.config import config_from_dict
from snnlab.engine import resume
from snnlab.engine.session import make_optimizer, make_scheduler


def test_allowed_changes_pass_and_the_rest_are_refused_in_one_line(tiny_config_dict):
    old = config_from_dict(tiny_config_dict).to_dict()
    new = config_from_dict(tiny_config_dict).to_dict()
    new["train"].update(epochs=5, lr=0.5, betas=[0.8, 0.99], weight_decay=0.1, grad_clip=1.0, device="auto")
    new["run"]["probes"]["neurons"] = 2
    keys = {c.key for c in resume.check(old, new)}
    assert keys == {"train.epochs", "train.lr", "train.betas", "train.weight_decay", "train.grad_clip",
                    "train.device", "run.probes.neurons"}  # fmt: skip
    assert resume.check(old, old) == []

    new["train"]["optimizer"] = "sgd"
    with pytest.raises(resume.ResumeRefused, match=r"^--resume cannot change train.optimizer \(adam -> sgd\): "
                       r"the optimizer state would not fit; start a new run$"):  # fmt: skip
        resume.check(old, new)

    shape = config_from_dict(tiny_config_dict).to_dict()
    shape["model"]["layers"][1]["out_features"] = 128
    shape["train"]["seed"] = 7
    with pytest.raises(resume.ResumeRefused) as refused:
        resume.check(old, shape)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("--resume cannot change model.layers.1.out_features (32 -> 128), nor train.seed: ")
    assert "weights" in message


def _trained(cfg, epochs_done: int):
    model = torch.nn.Linear(3, 2)
    optimizer = make_optimizer(model, cfg.train, torch.device("cpu"))
    scheduler = make_scheduler(optimizer, cfg.train)
    for _ in range(epochs_done):
        model(torch.ones(1, 3)).sum().backward()
        optimizer.step()
        scheduler.step()
    return model, optimizer, scheduler


def test_a_changed_lr_and_length_give_the_new_configs_schedule_from_here(tiny_config_dict):
    tiny_config_dict["train"].update(scheduler="cosine", epochs=4, lr=0.1)
    old = config_from_dict(tiny_config_dict)
    model, optimizer, scheduler = _trained(old, 2)

    tiny_config_dict["train"].update(epochs=8, lr=0.4)
    new = config_from_dict(tiny_config_dict)
    optimizer2 = make_optimizer(model, new.train, torch.device("cpu"))
    scheduler2 = make_scheduler(optimizer2, new.train)
    optimizer2.load_state_dict(optimizer.state_dict())
    scheduler2.load_state_dict(scheduler.state_dict())
    assert optimizer2.param_groups[0]["lr"] == pytest.approx(0.05)  # loading brought the old rate back
    resume.apply(resume.check(old.to_dict(), new.to_dict()), optimizer2, scheduler2)

    def cosine(epoch: int) -> float:  # the new config's schedule: base 0.4 over 8 epochs
        return 0.4 * (1 + math.cos(math.pi * epoch / 8)) / 2

    assert optimizer2.param_groups[0]["lr"] == pytest.approx(cosine(2))
    for epoch in range(3, 9):
        scheduler2.step()
        assert optimizer2.param_groups[0]["lr"] == pytest.approx(cosine(epoch)), epoch
    assert optimizer2.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # ends at the new end


def test_changed_sgd_settings_reach_every_parameter_group(tiny_config_dict):
    tiny_config_dict["train"].update(optimizer="sgd", momentum=0.9, weight_decay=0.0)
    old = config_from_dict(tiny_config_dict)
    _, optimizer, _ = _trained(old, 0)
    tiny_config_dict["train"].update(momentum=0.5, weight_decay=0.01, lr=0.3)
    new = config_from_dict(tiny_config_dict)
    resume.apply(resume.check(old.to_dict(), new.to_dict()), optimizer, None)
    group = optimizer.param_groups[0]
    assert (group["momentum"], group["weight_decay"], group["lr"]) == (0.5, 0.01, 0.3)
