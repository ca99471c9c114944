"""delayed_linear: a learned delay per synapse (DCLS), checked against a delay line written out by hand."""

import math
import threading

import pytest
import torch

from snnlab.config import ConfigError, config_from_dict
from snnlab.engine import checkpoint, resume
from snnlab.engine.events import StepMetrics
from snnlab.engine.layers import DelayedLinear, sigma_at
from snnlab.engine.models import build_model, count_parameters
from snnlab.engine.session import Session
from snnlab.engine.trainer import train

T, B, N_IN, N_OUT, MAX = 12, 3, 4, 5, 6


def _delay_line(x: torch.Tensor, w: torch.Tensor, d: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """y[t, b, j] = bias[j] + sum_i w[j, i] x[t - d[j, i], b, i], by explicit loops (x before step 0 is 0)."""
    steps, batch, n_in = x.shape
    y = torch.zeros(steps, batch, w.shape[0], dtype=x.dtype)
    for t in range(steps):
        for b in range(batch):
            for j in range(w.shape[0]):
                total = bias[j].item()
                for i in range(n_in):
                    s = t - int(d[j, i])
                    if s >= 0:
                        total += w[j, i].item() * x[s, b, i].item()
                y[t, b, j] = total
    return y


def _layer_with_whole_delays(**kwargs) -> DelayedLinear:
    torch.manual_seed(0)
    layer = DelayedLinear(N_IN, N_OUT, MAX, **kwargs).double()
    with torch.no_grad():
        layer.delay.copy_(torch.randint(0, MAX + 1, (N_OUT, N_IN)).double())
        layer.delay[0, 0], layer.delay[1, 1] = 0, MAX  # both ends of the range
    return layer


@pytest.mark.parametrize("mode", ["rounded eval", "narrow gaussian"])
def test_whole_delays_with_hard_taps_are_the_hand_built_delay_line(mode):
    layer = _layer_with_whole_delays()
    if mode == "rounded eval":
        layer.eval()  # round_in_eval: one hard tap per synapse
    else:
        layer.sigma.fill_(1e-3)  # training kernel: exp(-1/(2 sigma^2)) underflows to 0 next to the tap
    x = torch.randn(T, B, N_IN, dtype=torch.float64)
    expected = _delay_line(x, layer.weight.detach(), layer.delay.detach(), layer.bias.detach())
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-12)


def test_eval_rounds_each_delay_to_the_nearest_step():
    layer = _layer_with_whole_delays().eval()
    whole = layer.delay.detach().clone()
    with torch.no_grad():
        layer.delay.add_(torch.empty_like(whole).uniform_(-0.45, 0.45)).clamp_(0, MAX)
    x = torch.randn(T, B, N_IN, dtype=torch.float64)
    expected = _delay_line(x, layer.weight.detach(), whole, layer.bias.detach())
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-12)


def test_the_training_kernel_is_the_normalised_gaussian_around_the_delay():
    layer = DelayedLinear(1, 1, MAX, bias=False).double()
    with torch.no_grad():
        layer.weight.fill_(2.0)
        layer.delay.fill_(2.5)
        layer.sigma.fill_(0.5)
    taps = torch.arange(MAX + 1, dtype=torch.float64)
    gauss = torch.exp(-0.5 * ((taps - 2.5) / 0.5) ** 2)
    torch.testing.assert_close(layer.kernel()[0, 0], 2.0 * gauss / gauss.sum(), rtol=1e-6, atol=1e-12)
    # Halfway between two steps the weight is shared equally by them.
    torch.testing.assert_close(layer.kernel()[0, 0, 2], layer.kernel()[0, 0, 3], rtol=0, atol=0)


def test_the_output_at_a_step_depends_on_no_later_input():
    layer = DelayedLinear(N_IN, N_OUT, MAX).double()
    layer.sigma.fill_(3.0)  # a wide kernel: every tap carries weight
    x = torch.randn(T, B, N_IN, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    t0 = 5
    (grad,) = torch.autograd.grad(y[t0].sum(), x)
    assert grad[t0 + 1 :].abs().max() == 0 and grad[: t0 + 1].abs().max() > 0
    changed = x.detach().clone()
    changed[t0 + 1 :] = torch.randn(T - t0 - 1, B, N_IN, dtype=torch.float64)
    torch.testing.assert_close(layer(changed)[: t0 + 1], y[: t0 + 1].detach(), rtol=0, atol=0)


def test_gradient_descent_moves_a_delay_to_the_one_the_target_needs():
    # One synapse; the target is the input 5 steps later. Starting from a delay of 2, training on the
    # delay alone must move it to 5 (the Gaussian starts wide enough to see the target: at sigma 2 the delay
    # stalls halfway, at 2.5, where the spread kernel fits best).
    torch.manual_seed(0)
    steps, epochs = 40, 60
    layer = DelayedLinear(1, 1, 8, bias=False, sigma_start=3.0, sigma_anneal=0.5)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.delay.fill_(2.0)
    layer.weight.requires_grad_(False)
    x = (torch.rand(steps, 8, 1) < 0.3).float()
    target = torch.zeros_like(x)
    target[5:] = x[:-5]
    optimizer = torch.optim.Adam([layer.delay], lr=0.2)
    trail = []
    for epoch in range(1, epochs + 1):
        layer.set_epoch(epoch, epochs)  # sigma 3 -> 0.23 over the first 30 epochs
        loss = ((layer(x) - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        assert torch.isfinite(layer.delay.grad).all()
        optimizer.step()
        layer.constrain()
        trail.append(layer.delay.item())
    assert trail[0] > 2.0  # the first step already goes the right way
    assert abs(trail[-1] - 5.0) < 0.25
    layer.eval()
    torch.testing.assert_close(layer(x), target, rtol=0, atol=0)  # rounded: exactly the 5-step line


def test_sigma_falls_exponentially_over_the_anneal_then_stays():
    values = [sigma_at(e, 20, 12.0, 0.25, 0.25) for e in range(1, 21)]  # span: 5 epochs
    assert values[0] == 12.0 and math.isclose(values[5], 0.25) and values[5:] == [values[5]] * 15
    ratios = [b / a for a, b in zip(values[:5], values[1:6], strict=True)]
    assert all(math.isclose(r, (0.25 / 12.0) ** (1 / 5)) for r in ratios)  # the same factor every epoch
    assert sigma_at(1, 20, 12.0, 0.25, 0.0) == 0.25  # no anneal: the end width from the start


def test_constrain_keeps_delays_in_range():
    layer = DelayedLinear(2, 2, MAX)
    with torch.no_grad():
        layer.delay.copy_(torch.tensor([[-3.0, 2.0], [MAX + 4.0, 1.5]]))
    layer.constrain()
    assert layer.delay.tolist() == [[0.0, 2.0], [float(MAX), 1.5]]


# --- in a config, the model and the trainer ---------------------------------------------------------------

SPIKES = {"dataset": "synthetic", "encoder": "none", "batch_size": 8,
          "synthetic": {"samples": 16, "inputs": 6, "time_steps": 10, "classes": 3}}  # fmt: skip


def _config(layer: dict | None = None, **train) -> dict:
    first = {"type": "delayed_linear", "out_features": 8, "max_delay": 4, "neuron": True, **(layer or {})}
    return {
        "data": SPIKES,
        "model": {"layers": [first, {"type": "delayed_linear", "out_features": 3, "max_delay": 4, "neuron": True}]},
        "train": {"epochs": 4, "lr": 0.01, "device": "cpu", **train},
    }


def test_the_config_builds_it_and_counts_a_weight_and_a_delay_per_synapse():
    cfg = config_from_dict(_config({"bias": False, "sigma_start": 1.5}))
    model = build_model(cfg.layer_specs(), (6,))
    first = model.blocks[0].op
    assert isinstance(first, DelayedLinear) and first.sigma.item() == 1.5 and first.bias is None
    assert model.spiking_layers() == cfg.model.spiking_layer_names() == ["delayed_linear1", "delayed_linear2"]
    assert count_parameters(model) == cfg.parameter_count() == 2 * 6 * 8 + 2 * 8 * 3 + 3


def test_training_anneals_sigma_by_epoch_and_trains_delays_at_their_own_rate():
    cfg = config_from_dict(_config())
    session = Session(cfg)
    groups = session.optimizer.param_groups
    assert [g["lr"] for g in groups] == [0.01, pytest.approx(1.0)]  # delay_lr_scale 100
    assert {id(p) for p in groups[1]["params"]} == {id(b.op.delay) for b in session.model.blocks}
    before = [b.op.delay.detach().clone() for b in session.model.blocks]
    result = train(cfg, session=session)
    assert result.status == "completed"
    for block, old in zip(session.model.blocks, before, strict=True):
        layer = block.op
        # set at the start of epoch 4 of 4: sigma_anneal 0.25 -> a span of one epoch, ended by then
        assert layer.sigma.item() == pytest.approx(0.23)
        assert not torch.equal(layer.delay, old)
        assert 0 <= layer.delay.min() and layer.delay.max() <= 4
    # A resume with another train.lr keeps the delays' ratio to it.
    resume.apply([resume.Change("train.lr", 0.01, 0.002)], session.optimizer, session.scheduler)
    assert [g["lr"] for g in session.optimizer.param_groups] == [0.002, pytest.approx(0.2)]


def test_a_run_stopped_mid_epoch_resumes_with_the_same_sigma_delays_and_losses(tmp_path):
    cfg = config_from_dict(_config({"sigma_anneal": 1.0}, epochs=3))  # a new sigma every epoch
    straight: list = []
    train(cfg, [straight.append], run_dir=tmp_path / "a")
    stop, first = threading.Event(), []

    def stop_at_step_3(event):  # two batches per epoch: in the middle of epoch 2
        first.append(event)
        if isinstance(event, StepMetrics) and event.step == 3:
            stop.set()

    assert train(cfg, [stop_at_step_3], stop=stop, run_dir=tmp_path / "b").status == "stopped"
    second: list = []
    result = train(cfg, [second.append], run_dir=tmp_path / "b", resume=tmp_path / "b" / "checkpoints" / "last.pt")
    assert result.status == "completed"
    losses = [e.loss for e in straight if isinstance(e, StepMetrics)]
    assert [e.loss for e in first + second if isinstance(e, StepMetrics)] == losses and len(losses) == 6
    a = checkpoint.load(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["blocks.0.op.sigma"].item() == pytest.approx(sigma_at(3, 3, 2.0, 0.23, 1.0))


def test_a_segmented_backward_pass_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"model.layers.0: .*set train.bptt_segment: null"):
        config_from_dict(_config(bptt_segment=2))


def test_it_needs_features_not_images():
    bad = {"data": {"dataset": "bundled"}, "model": {"layers": [{"type": "delayed_linear", "neuron": True}]}}
    with pytest.raises(ConfigError, match="add a flatten layer before a delayed_linear layer"):
        config_from_dict(bad)
