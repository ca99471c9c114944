"""Segmented backward pass (``train.bptt_segment``): the network runs S steps at a time under
``torch.utils.checkpoint`` and must give the unsegmented pass's loss and gradients, to float rounding."""

import pytest
import torch
import torch.utils.checkpoint

from snnlab.config import ConfigError, config_from_dict
from snnlab.engine import checkpoint, models, resume
from snnlab.engine.models import build_model, segment_steps
from snnlab.engine.neurons import NEURONS as NEURONS_BY_NAME
from snnlab.engine.trainer import train

NEURONS = ["leaky", "synaptic", "rleaky", "rsynaptic", "lapicque", "alpha", "leaky_parallel", "slstm", "lif", "if",
           "plif", "brainpy_lif"]  # fmt: skip
T, B = 23, 4  # 23 steps in segments of 5: four of 5 and a last one of 3


def _dyadic(model: torch.nn.Module) -> None:
    """Weights on a 2^-8 grid: with inputs on a 2^-2 grid the first layer's products and sums are exact, so
    its [5*B, ...] and [T*B, ...] matmuls agree whatever blocking the CPU's BLAS picks for each shape."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.round(p * 256) / 256)


def _loss_and_grads(model, x, segment, seed=0):
    model.bptt_segment = segment
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # dropout draws from the global generator
    out = model(x)
    loss = (out.membrane**2).mean() + out.spikes.mean()  # both outputs carry gradient
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, loss.detach(), grads


def _assert_same(plain, segmented, rtol=1e-5):
    (out_a, loss_a, grads_a), (out_b, loss_b, grads_b) = plain, segmented
    assert out_a.spikes.sum() > 0, "the test needs spikes to mean anything"
    torch.testing.assert_close(out_b.spikes, out_a.spikes)
    torch.testing.assert_close(out_b.membrane, out_a.membrane, rtol=rtol, atol=1e-6)
    torch.testing.assert_close(loss_b, loss_a, rtol=rtol, atol=0)
    assert grads_b.keys() == grads_a.keys() and grads_a
    for name, grad in grads_a.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(grads_b[name], grad, rtol=rtol, atol=rtol * grad.abs().max().item(), msg=name)


SPECS = [{"type": n, "threshold": 0.05} if n == "slstm" else {"type": n} for n in NEURONS]  # an LSTM's mem < 1
SPECS += [{"type": "leaky", "graded_spikes_factor": 0.5, "inhibition": True}, {"type": "leaky", "reset": "zero",
          "learn_beta": True, "learn_threshold": True}, {"type": "leaky", "state_quant": {"num_bits": 4}}]  # fmt: skip


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: "-".join(map(str, spec.values())))
def test_segments_give_the_loss_and_gradients_of_the_whole_sequence(spec):
    torch.manual_seed(3)
    model = build_model(
        [{"type": "linear", "out_features": 12, "neuron": spec}, {"type": "linear", "out_features": 5,
                                                                  "neuron": {"type": "leaky", "threshold": 0.25}}],
        (7,))  # fmt: skip
    _dyadic(model)
    x = torch.randint(0, 9, (T, B, 7)) / 4
    plain = _loss_and_grads(model, x, None)
    segmented = _loss_and_grads(model, x, 5)
    _assert_same(plain, segmented)


@pytest.mark.parametrize("output", [{"type": "expon", "beta": 0.75}, {"type": "brainpy_lif", "threshold": 0.2}])
def test_brainpys_neurons_segment_as_outputs_too(output):
    """brainpy-synthetic's shape: brainpy_lif, then an expon readout whose membrane alone carries the loss
    (or brainpy_lif again: the output's membrane comes from each step's state)."""
    torch.manual_seed(5)
    model = build_model([{"type": "linear", "out_features": 12, "neuron": {"type": "brainpy_lif", "threshold": 0.2}},
                         {"type": "linear", "out_features": 3, "neuron": output}], (7,))  # fmt: skip
    _dyadic(model)
    x = torch.randint(0, 9, (T, B, 7)) / 4
    plain, segmented = _loss_and_grads(model, x, None), _loss_and_grads(model, x, 5)
    torch.testing.assert_close(segmented[0].spikes, plain[0].spikes)
    assert (plain[0].spikes.sum() == 0) == (output["type"] == "expon")
    torch.testing.assert_close(segmented[0].membrane, plain[0].membrane, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(segmented[1], plain[1], rtol=1e-5, atol=0)
    assert segmented[2].keys() == plain[2].keys() and "blocks.0.op.weight" in plain[2]
    for name, grad in plain[2].items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(segmented[2][name], grad, rtol=1e-5, atol=1e-5 * grad.abs().max().item())


def test_a_convolutional_lstm_and_a_recurrent_conv_map_segment_too():
    torch.manual_seed(4)
    layers = [
        {"type": "conv2d", "out_channels": 3, "kernel_size": 3, "padding": 1, "neuron": {"type": "sconv2dlstm",
                                                                                       "threshold": 0.05}},
        {"type": "conv2d", "out_channels": 2, "kernel_size": 3, "neuron": {"type": "rleaky"}},
        {"type": "flatten"},
        {"type": "linear", "out_features": 3, "neuron": {"type": "synaptic"}},
    ]  # fmt: skip
    model = build_model(layers, (1, 6, 6))
    _dyadic(model)
    x = torch.randint(0, 9, (11, B, 1, 6, 6)) / 4
    _assert_same(_loss_and_grads(model, x, None), _loss_and_grads(model, x, 4))


def test_a_static_input_runs_its_first_layer_once_and_matches():
    torch.manual_seed(5)
    layers = [{"type": "flatten"}, {"type": "linear", "out_features": 16, "neuron": {"type": "leaky"}},
              {"type": "linear", "out_features": 4, "neuron": {"type": "rsynaptic"}}]  # fmt: skip
    model = build_model(layers, (1, 3, 3))
    _dyadic(model)
    x = (torch.randint(0, 9, (B, 1, 3, 3)) / 4).expand(T, B, 1, 3, 3)  # direct encoding: one image, T views
    calls = []
    model.blocks[1].op.register_forward_hook(lambda m, inp, out: calls.append(tuple(inp[0].shape)))
    plain = _loss_and_grads(model, x, None)
    calls.clear()
    segmented = _loss_and_grads(model, x, "auto")
    assert calls == [(B, 9)]  # once, in the forward pass: not per segment, not again in the backward pass
    _assert_same(plain, segmented)


def test_batchnorm_tt_uses_each_steps_norm_and_updates_its_statistics_once():
    torch.manual_seed(6)
    layers = [{"type": "linear", "out_features": 8, "neuron": {"type": "leaky"}},
              {"type": "batchnorm_tt", "time_steps": T},
              {"type": "linear", "out_features": 3, "neuron": {"type": "leaky"}}]  # fmt: skip
    model = build_model(layers, (5,))
    norms = model.blocks[1].op
    with torch.no_grad():  # a different scale per step, so that a wrong step offset shows
        for t, bn in enumerate(norms):
            bn.weight.fill_(1 + t / 8)
    x = torch.randint(0, 9, (T, 6, 5)) / 4
    start = {k: v.clone() for k, v in norms.state_dict().items()}
    plain = _loss_and_grads(model, x, None)
    after_plain = {k: v.clone() for k, v in norms.state_dict().items()}
    norms.load_state_dict(start)
    segmented = _loss_and_grads(model, x, 5)
    _assert_same(plain, segmented, rtol=1e-4)  # batch statistics: reductions, rounded in another order
    for key, value in norms.state_dict().items():  # the recomputation left the running statistics alone
        torch.testing.assert_close(value, after_plain[key], msg=key)
    assert norms[0].num_batches_tracked.item() == 1


def test_dropout_between_segments_keeps_its_mask_when_a_segment_is_recomputed(monkeypatch):
    torch.manual_seed(7)
    layers = [{"type": "linear", "out_features": 16, "neuron": {"type": "leaky"}}, {"type": "dropout", "p": 0.5},
              {"type": "linear", "out_features": 3, "neuron": {"type": "leaky"}}]  # fmt: skip
    model = build_model(layers, (5,))
    x = torch.randint(0, 9, (T, B, 5)) / 4
    recomputed = _loss_and_grads(model, x, 5, seed=11)
    # The same segments without checkpointing: each segment's graph is kept, nothing is recomputed.
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", lambda fn, *args, **kw: fn(*args))
    kept = _loss_and_grads(model, x, 5, seed=11)
    _assert_same(kept, recomputed, rtol=1e-6)


def test_only_the_output_layer_is_recorded_while_segmented_and_every_layer_without_gradients():
    model = build_model([{"type": "linear", "out_features": 6, "neuron": {"type": "leaky"}},
                         {"type": "linear", "out_features": 2, "neuron": {"type": "leaky"}}], (3,))  # fmt: skip
    model.bptt_segment = 4
    x = torch.rand(10, 2, 3)
    assert list(model(x, record=True).layers) == ["fc2"]
    with torch.no_grad():  # evaluation and probes: unsegmented, all layers
        assert list(model(x, record=True).layers) == ["fc1", "fc2"]
    model.bptt_segment = 10  # a segment as long as the sequence: the plain pass
    assert list(model(x, record=True).layers) == ["fc1", "fc2"]


def test_segment_lengths():
    assert [segment_steps("auto", t) for t in (1, 2, 4, 5, 100, 101, 1600)] == [1, 2, 2, 3, 10, 11, 40]
    assert segment_steps(None, 50) == 50 and segment_steps(7, 50) == 7 and segment_steps(80, 50) == 80
    for bad in (0, -1, 2.5, True, "sqrt"):
        with pytest.raises(ValueError, match="bptt_segment"):
            segment_steps(bad, 10)


def test_a_batchnorm_over_all_steps_is_refused_by_the_engine():
    model = build_model([{"type": "linear", "out_features": 6, "neuron": {"type": "leaky"}}, {"type": "batchnorm"},
                         {"type": "linear", "out_features": 2, "neuron": {"type": "leaky"}}], (3,))  # fmt: skip
    model.bptt_segment = 2
    with pytest.raises(ValueError, match="batchnorm_tt or turn bptt_segment off"):
        model(torch.rand(5, 2, 3))
    assert models.segment_steps(model.bptt_segment, 5) == 2


@pytest.mark.parametrize("value", [0, -2, 1.5, True, "half"])
def test_bad_settings_are_one_line_config_errors(tiny_config_dict, value):
    tiny_config_dict["train"]["bptt_segment"] = value
    with pytest.raises(ConfigError) as info:
        config_from_dict(tiny_config_dict)
    assert "train.bptt_segment: must be a number of time steps >= 1, auto or null" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_batchnorm_that_sees_the_steps_is_refused_but_one_on_a_static_image_is_not(tiny_config_dict):
    tiny_config_dict["train"]["bptt_segment"] = 2
    tiny_config_dict["model"]["layers"].insert(2, {"type": "batchnorm"})  # after fc1's neuron
    with pytest.raises(ConfigError, match=r"model\.layers\.2: a batchnorm that sees the time steps"):
        config_from_dict(tiny_config_dict)
    tiny_config_dict["model"]["layers"].pop(2)
    tiny_config_dict["model"]["layers"].insert(1, {"type": "batchnorm"})  # on the direct-encoded image: once
    assert config_from_dict(tiny_config_dict).train.bptt_segment == 2
    tiny_config_dict["data"]["encoder"] = "rate"  # now it sees every step
    with pytest.raises(ConfigError, match=r"model\.layers\.1: a batchnorm"):
        config_from_dict(tiny_config_dict)


def test_a_segmented_run_trains_like_an_unsegmented_one(tmp_path, tiny_config_dict):
    tiny_config_dict["data"]["time_steps"] = 7
    tiny_config_dict["train"]["max_steps"] = 3
    plain = train(config_from_dict(tiny_config_dict), [], run_dir=tmp_path / "a")
    tiny_config_dict["train"]["bptt_segment"] = 3
    segmented = train(config_from_dict(tiny_config_dict), [], run_dir=tmp_path / "b")
    assert plain.status == segmented.status == "completed"
    weights = [checkpoint.load(tmp_path / d / "checkpoints" / "last.pt")["model"] for d in "ab"]
    for key, value in weights[0].items():
        torch.testing.assert_close(weights[1][key], value, rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.parametrize("kind", ["leaky", "lapicque"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("static", [False, True])
def test_leaky_continues_its_fused_scan_from_a_state_bit_for_bit(kind, reset, static):
    torch.manual_seed(8)
    neuron = NEURONS_BY_NAME[kind](beta=torch.rand(5) * 0.5 + 0.5, reset=reset, learn_beta=True)
    scale = 1.0 if kind == "leaky" else 20.0  # Lapicque scales its input by ln(1/beta)
    current = (torch.randn(B, 5) if static else torch.randn(12, B, 5)) * 1.5 * scale
    current.requires_grad_(True)
    spk, mem = neuron(current, 12) if static else neuron(current)
    assert 0 < spk.mean() < 1
    parts, state = [], neuron.init_state(current if static else current[0])
    for start, stop in ((0, 5), (5, 11), (11, 12)):
        piece = current if static else current[start:stop]
        part = neuron.forward_from(piece, state, stop - start if static else None)
        parts.append(part)
        state = part[2]
    assert torch.equal(torch.cat([p[0] for p in parts]), spk)  # elementwise arithmetic: bitwise
    assert torch.equal(torch.cat([p[1] for p in parts]), mem)
    assert torch.equal(state.mem, mem[-1])
    weights = torch.randn_like(mem)  # a loss through both spikes and membrane
    whole = torch.autograd.grad((spk * weights).sum() + (mem * weights).sum(), (current, neuron.beta))
    split = torch.autograd.grad(sum((p[0] * w).sum() + (p[1] * w).sum()
                                    for p, w in zip(parts, weights.split([5, 6, 1]), strict=True)),
                                (current, neuron.beta))  # fmt: skip
    for a, b in zip(whole, split, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


def test_without_a_fused_path_leaky_steps_through_the_segment():
    neuron = NEURONS_BY_NAME["leaky"](reset_delay=False)  # changes the step: reference path only
    assert neuron.forward_from(torch.rand(3, 2, 4), neuron.init_state(torch.rand(2, 4))) is None


@pytest.mark.parametrize("neuron", ["leaky", "synaptic", "rleaky", "lif"])  # Leaky's fused path and the step loop
def test_the_states_kept_between_segments_hold_one_step_each(neuron, monkeypatch):
    """The bound on memory: a state that were a view of a segment's record would keep the whole segment alive."""
    kept = []
    real = torch.utils.checkpoint.checkpoint

    def recording(fn, *args, **kw):
        out = real(fn, *args, **kw)
        kept.extend(t for state in out[2] for t in state)
        return out

    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", recording)
    model = build_model([{"type": "linear", "out_features": 6, "neuron": {"type": neuron}},
                         {"type": "linear", "out_features": 2, "neuron": {"type": "leaky"}}], (3,))  # fmt: skip
    model.bptt_segment = 4
    model(torch.rand(12, 5, 3)).membrane.sum().backward()
    assert len(kept) >= 3 * 2
    for t in kept:
        assert t.shape[0] == 5 and t.untyped_storage().nbytes() == t.numel() * t.element_size()


def test_a_resume_may_turn_segments_on_or_off(tiny_config_dict):
    old = config_from_dict(tiny_config_dict).to_dict()
    tiny_config_dict["train"]["bptt_segment"] = "auto"
    new = config_from_dict(tiny_config_dict).to_dict()
    assert [c.key for c in resume.check(old, new)] == ["train.bptt_segment"]
    assert [c.key for c in resume.check(new, old)] == ["train.bptt_segment"]
