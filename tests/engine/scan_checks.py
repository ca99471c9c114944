"""Checks shared by the tests of the one-pass scans (C in test_native.py, Triton in triton_interpreted.py)."""

import torch


def assert_grads_close(got, want) -> None:
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4 * max(1.0, b.abs().max().item()))


def assert_synaptic_matches_reference(neuron, x, time_steps: int | None) -> None:
    """A Synaptic neuron's fused outputs equal its reference path's, gradients (input, alpha, beta, threshold)
    to rounding, under a loss that weighs every output element differently."""
    results = []
    for run in (neuron, neuron.reference):
        out = run(x, time_steps) if time_steps is not None else run(x)
        weights = [torch.linspace(-1, 1, o.numel()).reshape(o.shape) for o in out]
        loss = sum((o * w).sum() for o, w in zip(out, weights, strict=True))
        results.append((out, torch.autograd.grad(loss, [x, neuron.alpha, neuron.beta, neuron.threshold])))
    (out_f, grad_f), (out_r, grad_r) = results
    for a, b in zip(out_f, out_r, strict=True):
        assert torch.equal(a, b)
    assert_grads_close(grad_f, grad_r)
