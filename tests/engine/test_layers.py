"""BatchNormTT: one batch norm per time step, as snnTorch's BatchNormTT1d / BatchNormTT2d."""

import pytest
import torch
from torch import nn

from snnlab.config import config_from_dict
from snnlab.engine import encoders
from snnlab.engine.layers import BatchNormTT
from snnlab.engine.models import build_model

T, B = 4, 6


def _reference(norm: BatchNormTT) -> list[nn.Module]:
    """Plain torch BatchNorms holding the same weights and statistics, each with a zero shift."""
    refs = []
    for bn in norm:
        ref = type(bn)(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine)
        ref.load_state_dict({**bn.state_dict(), **({"bias": torch.zeros(bn.num_features)} if bn.affine else {})})
        refs.append(ref)
    return refs


@pytest.mark.parametrize("shape,image", [((5,), False), ((3, 4, 4), True)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_each_step_is_torchs_batchnorm_of_that_slice_in_train_and_eval(shape, image, affine, momentum):
    torch.manual_seed(0)
    norm = BatchNormTT(shape[0], T, image=image, momentum=momentum, affine=affine)
    if affine:
        with torch.no_grad():
            for bn in norm:
                bn.weight.uniform_(0.5, 2)  # a different scale per step
    refs = _reference(norm)
    for _ in range(3):  # three training batches: the running statistics of each step follow its own slices
        x = torch.randn(T, B, *shape) * torch.arange(1, T + 1).view(T, *[1] * (len(shape) + 1)) + 3
        y = norm(x)
        for t in range(T):
            torch.testing.assert_close(y[t], refs[t](x[t]), rtol=0, atol=1e-6)
            torch.testing.assert_close(norm[t].running_mean, refs[t].running_mean, rtol=0, atol=0)
            torch.testing.assert_close(norm[t].running_var, refs[t].running_var, rtol=0, atol=0)
    assert not torch.allclose(norm[0].running_var, norm[T - 1].running_var)  # per step, not shared
    norm.eval()
    x = torch.randn(T, B, *shape)
    y = norm(x)
    for t, ref in enumerate(refs):
        torch.testing.assert_close(y[t], ref.eval()(x[t]), rtol=0, atol=1e-6)


def test_it_scales_but_does_not_shift_as_snntorch_removes_the_bias():
    norm = BatchNormTT(3, T)
    assert all(bn.bias is None for bn in norm)
    y = norm(torch.randn(T, B, 3) * 5 + 7)
    torch.testing.assert_close(y.mean(dim=1), torch.zeros(T, 3), rtol=0, atol=1e-5)  # no shift to undo
    y.sum().backward()
    assert all(bn.weight.grad is not None for bn in norm)
    assert [n for n, _ in norm.named_parameters()] == [f"{t}.weight" for t in range(T)]


def test_a_snntorch_state_dict_loads_under_its_own_names():
    # What snnTorch's BatchNormTT1d(5, time_steps=3) (an nn.ModuleList) saves, written out by hand.
    saved = {}
    for t in range(3):
        saved[f"{t}.weight"] = torch.full((5,), 1.0 + t)
        saved[f"{t}.running_mean"] = torch.full((5,), 0.5 * t)
        saved[f"{t}.running_var"] = torch.full((5,), 2.0 + t)
        saved[f"{t}.num_batches_tracked"] = torch.tensor(10 + t)
    norm = BatchNormTT(5, 3)
    norm.load_state_dict(saved)  # strict: nothing missing, nothing left over
    assert set(norm.state_dict()) == set(saved)
    norm.eval()
    y = norm(torch.ones(3, 2, 5))
    for t in range(3):
        want = (1 - 0.5 * t) / (2.0 + t + 1e-5) ** 0.5 * (1.0 + t)
        torch.testing.assert_close(y[t], torch.full((2, 5), want))
    # Inside a network the same names sit under the layer's prefix.
    model = build_model([{"type": "flatten"}, {"type": "batchnorm_tt", "time_steps": 3},
                         {"type": "linear", "out_features": 2, "neuron": {"type": "leaky"}}], (5,))  # fmt: skip
    keys = [k for k in model.state_dict() if k.startswith("blocks.1.op.")]
    assert keys == [f"blocks.1.op.{k}" for k in saved]


def test_another_number_of_steps_is_refused_in_one_line():
    norm = BatchNormTT(3, T)
    for steps in (T - 1, T + 1):
        with pytest.raises(ValueError, match=rf"built for T={T}, but the input has {steps} steps") as exc:
            norm(torch.randn(steps, B, 3))
        assert "\n" not in str(exc.value)
    with pytest.raises(ValueError, match=r"takes \[T, B, N\] inputs"):
        norm(torch.randn(B, 3))


def test_a_static_input_is_repeated_over_the_steps_before_the_norm():
    torch.manual_seed(0)
    layers = [{"type": "flatten"}, {"type": "linear", "out_features": 8}, {"type": "batchnorm_tt", "time_steps": T},
              {"type": "linear", "out_features": 3, "neuron": {"type": "leaky"}}]  # fmt: skip
    model = build_model(layers, (1, 4, 4))
    with torch.no_grad():
        for t, bn in enumerate(model.blocks[2].op):
            bn.weight.fill_(0.5 + t)  # each step scales differently: the output is no longer static
    seen = []
    model.blocks[2].op.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape)))
    x = torch.rand(B, 1, 4, 4)
    static = model(encoders.direct(x, T))
    stats = [bn.running_mean.clone() for bn in model.blocks[2].op]
    for bn in model.blocks[2].op:
        bn.reset_running_stats()
    repeated = model(x.unsqueeze(0).repeat(T, 1, 1, 1, 1))
    assert seen == [(T, B, 8), (T, B, 8)]
    torch.testing.assert_close(static.membrane, repeated.membrane)
    assert torch.equal(static.spikes, repeated.spikes)
    for t, bn in enumerate(model.blocks[2].op):
        torch.testing.assert_close(bn.running_mean, stats[t])
    assert not torch.equal(static.membrane[0], static.membrane[-1] - static.membrane[-2])


def test_a_config_builds_it_with_the_runs_time_steps():
    cfg = config_from_dict({
        "data": {"time_steps": 7},
        "model": {"layers": [{"type": "conv2d", "out_channels": 2, "kernel_size": 4, "stride": 4},
                             {"type": "batchnorm_tt", "eps": 1e-3, "momentum": 0.3, "neuron": True},
                             {"type": "flatten"}, {"type": "linear", "out_features": 10, "neuron": True}]},
    })  # fmt: skip
    spec = {k: v for k, v in cfg.layer_specs()[1].items() if k != "neuron"}
    assert spec == {"type": "batchnorm_tt", "eps": 1e-3, "momentum": 0.3, "affine": True, "time_steps": 7}
    model = build_model(cfg.layer_specs(), (1, 28, 28))
    norm = model.blocks[1].op
    assert isinstance(norm, BatchNormTT) and len(norm) == 7 and norm.image
    assert (norm[3].eps, norm[3].momentum) == (1e-3, 0.3) and isinstance(norm[3], nn.BatchNorm2d)
    assert model(torch.rand(7, 2, 1, 28, 28)).spikes.shape == (7, 2, 10)
    assert cfg.parameter_count() == sum(p.numel() for p in model.parameters())  # conv, 7 x 2 scales, linear
    with pytest.raises(ValueError, match="batchnorm_tt needs time_steps"):
        build_model(cfg.model.layer_specs(), (1, 28, 28))  # the model section alone does not know T
