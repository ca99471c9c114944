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


def assert_decay_scan_matches_torch(run) -> None:
    """``run(x, alpha, out, static, reverse)`` fills ``out`` with the synaptic-current recurrence
    ``out[t] = alpha*out[t-1] + x[t]`` (from the end with ``reverse``): bit for bit a step-by-step torch
    loop, for a scalar and a per-neuron alpha, static and sequence inputs, and written in place."""
    g = torch.Generator().manual_seed(9)
    T, B, N = 13, 3, 1100  # more than one block of 512 (C) and of 1024 (Triton), the last one ragged
    for alpha in (torch.tensor(0.9), torch.rand(N, generator=g)):
        for static, reverse in ((False, False), (True, False), (False, True), (True, True)):
            x = torch.randn((B, N) if static else (T, B, N), generator=g)
            want = torch.empty(T, B, N)
            prev = torch.zeros(B, N)
            for t in range(T - 1, -1, -1) if reverse else range(T):
                prev = alpha * prev + (x if static else x[t])
                want[t] = prev
            out = torch.empty(T, B, N)
            run(x, alpha, out, static, reverse)
            assert torch.equal(out, want), (alpha.numel(), static, reverse)
            if not static:
                run(x, alpha, x, False, reverse)  # in place, as the backward pass does
                assert torch.equal(x, want), (alpha.numel(), "in place", reverse)
