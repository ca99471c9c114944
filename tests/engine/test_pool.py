"""snnlab's MaxPool2d: windows that tile the image pool in C (kernels/pool.c), with torch's values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from snnlab import load_config
from snnlab.engine.kernels import native
from snnlab.engine.layers import MaxPool2d
from snnlab.engine.session import build_network

needs_c = pytest.mark.skipif(native.status() != "native", reason="the C kernels are not available here")


def _spike_maps(shape, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < 0.3).float()  # many windows with several 1s, or none


def _awkward(shape, seed=0) -> torch.Tensor:
    """Floats with ties, -0.0, -inf and NaN, so that the chosen element is decided by torch's order rule."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-2, 3, shape, generator=g).float()
    flat = x.view(-1)
    flat[::7] = -0.0
    flat[::11] = float("-inf")
    flat[::13] = float("nan")
    flat[5::17] = float("nan")
    return x


def _pooled(pool, x, grad) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_()
    y = pool(x)
    y.backward(grad)
    return y.detach(), x.grad


@needs_c
@pytest.mark.parametrize("kernel", [2, 3])
@pytest.mark.parametrize("shape", [(4, 3, 24, 24), (2, 5, 9, 7), (1, 1, 3, 3)])
@pytest.mark.parametrize("make", [_spike_maps, _awkward])
def test_values_and_gradients_are_torchs_bit_for_bit(kernel, shape, make):
    x = make(shape)
    out_shape = (*shape[:2], shape[2] // kernel, shape[3] // kernel)
    grad = torch.randn(out_shape, generator=torch.Generator().manual_seed(1))
    grad.view(-1)[::3] = -0.0  # torch adds the gradient to zeros: -0.0 arrives as 0.0
    ours, ours_grad = _pooled(MaxPool2d(kernel), x, grad)
    theirs, theirs_grad = _pooled(lambda t: F.max_pool2d(t, kernel), x, grad)
    assert ours.shape == out_shape
    assert torch.equal(ours.nan_to_num(), theirs.nan_to_num()) and torch.equal(ours.isnan(), theirs.isnan())
    assert torch.equal(ours_grad, theirs_grad)
    assert torch.equal(ours_grad.signbit(), theirs_grad.signbit())  # zeros of the same sign, bit for bit


@needs_c
def test_windows_that_tile_run_in_c_and_the_rest_in_torch():
    x = _spike_maps((2, 3, 8, 8)).requires_grad_()
    assert type(MaxPool2d(2)(x).grad_fn).__name__ == "_TiledMaxPoolBackward"
    assert type(MaxPool2d(2).to(torch.float64)(x.double()).grad_fn).__name__ != "_TiledMaxPoolBackward"
    for pool in (
        MaxPool2d(2, stride=1),
        MaxPool2d(2, padding=1),
        MaxPool2d(2, ceil_mode=True),
        MaxPool2d(2, dilation=2),
    ):
        ours = pool(x)
        assert type(ours.grad_fn).__name__ != "_TiledMaxPoolBackward", pool
        assert torch.equal(ours, F.max_pool2d(x, 2, pool.stride, pool.padding, pool.dilation, pool.ceil_mode))
    values, where = MaxPool2d(2, return_indices=True)(x)
    assert where.dtype == torch.int64  # torch's indices, as asked


def test_without_the_c_library_torch_pools(monkeypatch):
    monkeypatch.setattr(native, "_load", lambda: None)
    x = _spike_maps((2, 3, 8, 8)).requires_grad_()
    y = MaxPool2d(2)(x)
    assert type(y.grad_fn).__name__ != "_TiledMaxPoolBackward"
    assert torch.equal(y, F.max_pool2d(x, 2))


def test_a_configs_maxpool_layer_is_snnlabs():
    config = load_config("fashion-csnn")
    pools = [m for m in build_network(config).modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert pools and all(type(m) is MaxPool2d for m in pools)
