import pytest
import torch
import torch.nn.functional as F

from snnlab.engine import encoders, losses
from snnlab.engine.data import batches, load_dataset
from snnlab.engine.models import build_model, spike_rates

TUTORIAL5 = [
    {"type": "flatten"},
    {"type": "linear", "out_features": 1000, "neuron": {"type": "leaky", "beta": 0.95}},
    {"type": "linear", "out_features": 10, "neuron": {"type": "leaky", "beta": 0.95}},
]
CSNN = [
    {"type": "conv2d", "out_channels": 4, "kernel_size": 5, "neuron": {"beta": 0.9}},
    {"type": "maxpool", "kernel_size": 2},
    {"type": "conv2d", "out_channels": 8, "kernel_size": 5, "neuron": {"beta": 0.9}},
    {"type": "maxpool", "kernel_size": 2},
    {"type": "flatten"},
    {"type": "dropout", "p": 0.1},
    {"type": "linear", "out_features": 10, "neuron": {"beta": 0.9}},
]


def test_shapes_are_inferred_through_conv_layers():
    model = build_model(CSNN, (1, 28, 28))
    assert model.output_shape == (10,)
    assert model.blocks[-1].op.in_features == 8 * 4 * 4
    out = model(encoders.rate(torch.rand(3, 1, 28, 28), 6), record=True)
    assert out.spikes.shape == (6, 3, 10) and out.membrane.shape == (6, 3, 10)
    assert list(out.layers) == ["conv1", "conv2", "fc1"]
    assert out.layers["conv1"][0].shape == (6, 3, 4, 24, 24)
    assert set(spike_rates(out)) == {"conv1", "conv2", "fc1"}


def test_layers_act_on_the_whole_sequence_in_one_call():
    model = build_model(TUTORIAL5, (1, 28, 28))
    calls = []
    for block in model.blocks:
        block.op.register_forward_hook(lambda m, inp, out: calls.append(tuple(inp[0].shape)))
    model(encoders.rate(torch.rand(4, 1, 28, 28), 5))
    assert calls == [(20, 1, 28, 28), (20, 784), (20, 1000)]


def test_static_input_layers_run_once_and_match_the_repeated_input():
    torch.manual_seed(0)
    model = build_model(TUTORIAL5, (1, 28, 28))
    calls = []
    model.blocks[1].op.register_forward_hook(lambda m, inp, out: calls.append(tuple(inp[0].shape)))
    # Weights on a 2^-10 grid and inputs on a 2^-2 grid: every product and partial sum of both matmuls fits
    # float32's 24 bits exactly, so the [4, 784] and [28, 784] products agree bitwise whatever blocking and
    # summation order the CPU's BLAS picks for each shape.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.round(p * 1024) / 1024)
    x = torch.randint(0, 5, (4, 1, 28, 28)) / 4
    static = model(encoders.direct(x, 7))
    assert calls == [(4, 784)]  # fc1 computed once for all 7 steps
    repeated = model(x.unsqueeze(0).repeat(7, 1, 1, 1, 1))
    assert static.spikes.sum() > 0
    assert torch.equal(static.membrane, repeated.membrane)
    assert torch.equal(static.spikes, repeated.spikes)


def test_build_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"model.layers\[0\] \(linear\): .*add a flatten layer"):
        build_model([{"type": "linear", "out_features": 10, "neuron": {}}], (1, 28, 28))
    with pytest.raises(ValueError, match=r"last layer needs a neuron"):
        build_model([{"type": "flatten"}, {"type": "linear", "out_features": 10}], (1, 28, 28))
    with pytest.raises(ValueError, match=r"model.layers\[0\] \(conv2d\): kernel 40 does not fit"):
        build_model([{"type": "conv2d", "out_channels": 2, "kernel_size": 40, "neuron": {}}], (1, 28, 28))


def test_encoders():
    x = torch.tensor([[0.0, 0.25, 1.0]])
    d = encoders.direct(x, 4)
    assert d.shape == (4, 1, 3) and d.stride(0) == 0 and encoders.is_static(d)
    g = torch.Generator().manual_seed(0)
    r = encoders.rate(torch.full((1, 2000), 0.3), 50, generator=g)
    assert set(r.unique().tolist()) <= {0.0, 1.0}
    assert abs(r.mean().item() - 0.3) < 0.01
    assert encoders.rate(x, 100, gain=2.0).mean(0).tolist()[0][2] == 1.0
    lin = encoders.latency(torch.tensor([[1.0, 0.5, 0.0]]), 11, linear=True)
    assert lin.sum(0).tolist() == [[1.0, 1.0, 0.0]]  # at most one spike; zero input never fires
    assert lin[:, 0, 0].argmax().item() == 0 and lin[:, 0, 1].argmax().item() == 5  # t = (1 - x)(T - 1)
    log = encoders.latency(torch.tensor([[0.9, 0.6, 0.4]]), 50, tau=5, threshold=0.5)
    t_bright, t_dim = (log[:, 0, i].argmax().item() for i in range(2))
    assert (t_bright, t_dim) == (4, 9)  # round(5 ln(0.9/0.4)), round(5 ln(0.6/0.1))
    assert log[:, 0, 2].sum() == 0  # below threshold: silent
    seq = torch.tensor([0.0, 0.5, 0.5, 0.1]).view(4, 1, 1)
    assert encoders.delta(seq, threshold=0.2).flatten().tolist() == [0, 1, 0, 0]
    assert encoders.delta(seq, threshold=0.2, off_spikes=True).flatten().tolist() == [0, 1, 0, -1]
    with pytest.raises(ValueError, match="needs a temporal dataset"):
        encoders.encode("none", x, 4)


def test_losses_match_their_definitions():
    torch.manual_seed(0)
    spk = (torch.rand(5, 4, 3) > 0.5).float()
    mem = torch.randn(5, 4, 3)
    y = torch.tensor([0, 2, 1, 2])
    manual = sum(F.cross_entropy(mem[t], y) for t in range(5))
    torch.testing.assert_close(losses.ce_membrane(spk, mem, y), manual)
    torch.testing.assert_close(losses.ce_rate(spk, mem, y), F.cross_entropy(spk.sum(0), y))
    target = torch.full((4, 3), 0.1)
    target[torch.arange(4), y] = 0.8
    mse = losses.loss_fn("mse_count", correct_rate=0.8, incorrect_rate=0.1)(spk, mem, y)
    torch.testing.assert_close(mse, F.mse_loss(spk.mean(0), target))


def test_decoders_break_ties_by_membrane():
    spk = torch.zeros(3, 1, 3)
    spk[0, 0, 0] = spk[2, 0, 1] = 1  # classes 0 and 1 both spike once
    mem = torch.zeros(3, 1, 3)
    mem[1, 0, 1] = 0.9
    mem[1, 0, 0] = 0.5
    assert losses.decode("rate", spk, mem).item() == 1  # tie on counts, higher membrane wins
    assert losses.decode("latency", spk, mem).item() == 0  # class 0 fired first
    assert losses.decode("membrane", spk, mem).item() == 1
    assert losses.accuracy(torch.tensor([1, 0]), torch.tensor([1, 1])) == 0.5


def test_rate_first_gives_ties_to_the_lowest_class_as_the_tutorials_count():
    # Counts per sample [B=3, C=4] over T=4: a tie of classes 1 and 3 (membrane favours 3), a tie of all
    # four silent classes (membrane favours 2), and a clear winner (class 2).
    counts = torch.tensor([[1, 3, 0, 3], [0, 0, 0, 0], [1, 0, 4, 2]])
    spk = torch.stack([(counts > t).float() for t in range(4)])  # [T, B, C] with these counts
    mem = torch.zeros(4, 3, 4)
    mem[0, 0, 3] = mem[0, 1, 2] = 0.9
    assert losses.decode("rate_first", spk, mem).tolist() == [1, 0, 2]
    assert losses.decode("rate", spk, mem).tolist() == [3, 2, 2]
    # The tutorials' own expressions on the same counts: snnTorch's `.max(1)`, SpikingJelly's argmax of rates.
    assert spk.sum(0).max(1).indices.tolist() == spk.mean(0).argmax(1).tolist() == [1, 0, 2]


def test_snntorch_tutorial5_network_learns_on_real_images():
    """784-1000-10, beta 0.95, T=25, Adam 5e-4, ce_membrane, direct encoding, on bundled Fashion-MNIST."""
    torch.manual_seed(0)
    data = load_dataset("bundled")
    model = build_model(TUTORIAL5, (1, 28, 28))
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.999))
    test_x, test_y = data.test.inputs[:500], data.test.labels[:500]

    def test_accuracy():
        with torch.no_grad():
            out = model(encoders.direct(test_x, 25))
        return losses.accuracy(losses.decode("rate", out.spikes, out.membrane), test_y)

    before = test_accuracy()
    history = []
    gen = torch.Generator().manual_seed(0)
    for step, (x, y) in enumerate(batches(data.train, 128, shuffle=True, generator=gen)):
        out = model(encoders.direct(x, 25))
        loss = losses.ce_membrane(out.spikes, out.membrane, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
        if step == 29:
            break
    after = test_accuracy()
    assert sum(history[-5:]) / 5 < 0.6 * sum(history[:5]) / 5
    assert before < 0.3 and after > 0.6, (before, after)
