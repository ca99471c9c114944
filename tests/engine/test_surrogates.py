import math

import pytest
import torch

from snnlab.engine import surrogates

NAMES = [info.name for info in surrogates.names()]
# Points away from the kinks of the piecewise surrogates (|x| = width, 1/alpha, 0).
POINTS = torch.tensor([-2.3, -0.77, -0.31, -0.04, 0.013, 0.2, 0.49, 0.93, 1.7], dtype=torch.float64)


def test_registry_lists_the_required_surrogates_with_defaults():
    required = {"atan", "fast_sigmoid", "sigmoid", "triangle", "straight_through", "gaussian", "erf",
                "soft_sign", "piecewise_quadratic"}
    infos = {i.name: i for i in surrogates.names()}
    assert required <= set(infos)
    assert infos["atan"].defaults == {"alpha": 2.0}
    assert infos["fast_sigmoid"].defaults == {"slope": 25.0}
    assert infos["triangle"].defaults == {"width": 1.0}
    assert infos["gaussian"].defaults == {"sigma": 0.5}
    assert all(i.description for i in infos.values())


@pytest.mark.parametrize("name", NAMES)
def test_grad_is_the_derivative_of_smooth(name):
    s = surrogates.get(name)
    x = POINTS.clone().requires_grad_()
    (autograd,) = torch.autograd.grad(s.smooth(x).sum(), x)
    torch.testing.assert_close(s.grad(POINTS), autograd, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_spike_is_heaviside_forward_and_surrogate_backward(name):
    s = surrogates.get(name)
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 0.5], dtype=torch.float64, requires_grad=True)
    out = s(x)
    assert out.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]  # exactly at threshold: no spike
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    (g,) = torch.autograd.grad((out * weights).sum(), x)
    torch.testing.assert_close(g, weights * s.grad(x.detach()))


def test_known_values():
    at0 = {name: surrogates.get(name).grad(torch.zeros(1, dtype=torch.float64)).item() for name in NAMES}
    assert at0["atan"] == pytest.approx(1.0)  # alpha/2
    assert at0["fast_sigmoid"] == pytest.approx(1.0)
    assert at0["sigmoid"] == pytest.approx(25 / 4)
    assert at0["triangle"] == pytest.approx(1.0)
    assert at0["straight_through"] == 1.0
    assert at0["gaussian"] == pytest.approx(1 / (math.sqrt(2 * math.pi) * 0.5))
    assert at0["erf"] == pytest.approx(2 / math.sqrt(math.pi))
    assert at0["soft_sign"] == pytest.approx(1.0)
    assert at0["piecewise_quadratic"] == pytest.approx(1.0)
    x = torch.tensor([0.5], dtype=torch.float64)
    assert surrogates.get("atan", alpha=2).grad(x).item() == pytest.approx(1 / (1 + (math.pi / 2) ** 2))
    assert surrogates.get("fast_sigmoid", slope=25).grad(x).item() == pytest.approx(1 / 13.5**2)
    assert surrogates.get("triangle", width=1).grad(x).item() == pytest.approx(0.5)
    assert surrogates.get("triangle", width=1).grad(torch.tensor([1.5])).item() == 0.0
    assert surrogates.get("piecewise_quadratic", alpha=1).grad(torch.tensor([2.0])).item() == 0.0
    sig = 1 / (1 + math.exp(-12.5))
    assert surrogates.get("sigmoid").grad(x).item() == pytest.approx(25 * sig * (1 - sig))


@pytest.mark.parametrize("name", ["atan", "sigmoid", "gaussian", "erf", "soft_sign", "triangle"])
def test_smooth_is_centred_on_the_step(name):
    s = surrogates.get(name)
    assert s.smooth(torch.zeros(1)).item() == pytest.approx(0.5)
    assert s.smooth(torch.tensor([-50.0])).item() < 0.02 and s.smooth(torch.tensor([50.0])).item() > 0.98


def test_parameters_and_errors():
    assert surrogates.get("atan", alpha=4).alpha == 4.0
    with pytest.raises(ValueError, match="unknown surrogate 'atn'"):
        surrogates.get("atn")
    with pytest.raises(ValueError, match="has no parameter 'slope'"):
        surrogates.get("atan", slope=3)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        surrogates.get("atan", alpha=0)
    assert surrogates.get("atan") == surrogates.get("atan", alpha=2)


@pytest.mark.parametrize("name", NAMES)
def test_in_place_grad_equals_grad(name):
    s = surrogates.get(name)
    x = torch.linspace(-3, 3, 601)
    torch.testing.assert_close(s.grad_(x.clone()), s.grad(x), rtol=1e-6, atol=1e-7)
