import math
import re
import sys
import textwrap
import uuid

import pytest
import torch

from snnlab import catalog
from snnlab.engine import surrogates
from snnlab.engine.neurons import Leaky

NAMES = [info.name for info in surrogates.names()]
# Points away from the kinks of the piecewise surrogates (|x| = width, 1/alpha, 0, 1, B).
POINTS = torch.tensor([-2.3, -0.77, -0.31, -0.04, 0.013, 0.2, 0.49, 0.93, 1.7], dtype=torch.float64)


def _logistic(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def _bell(k: float, x: float) -> float:
    """k * s * (1 - s), s = sigmoid(k*x), without overflow."""
    return k * _logistic(k * x) * _logistic(-k * x)


# Each surrogate's gradient written out again from its peer's formula, in plain Python floats.
CLOSED_FORMS = {
    "atan": lambda x, p: p["alpha"] / 2 / (1 + (math.pi / 2 * p["alpha"] * x) ** 2),
    "fast_sigmoid": lambda x, p: 1 / (p["slope"] * abs(x) + 1) ** 2,
    "sigmoid": lambda x, p: _bell(p["slope"], x),
    "triangle": lambda x, p: max(0.0, 1 - abs(x) / p["width"]) / p["width"],
    "straight_through": lambda x, p: 1.0,
    "gaussian": lambda x, p: math.exp(-(x**2) / (2 * p["sigma"] ** 2)) / (math.sqrt(2 * math.pi) * p["sigma"]),
    "erf": lambda x, p: p["alpha"] / math.sqrt(math.pi) * math.exp(-((p["alpha"] * x) ** 2)),
    "soft_sign": lambda x, p: p["alpha"] / (2 * (1 + abs(p["alpha"] * x)) ** 2),
    "piecewise_quadratic": lambda x, p: p["alpha"] - p["alpha"] ** 2 * abs(x) if abs(x) <= 1 / p["alpha"] else 0.0,
    "triangular": lambda x, p: p["threshold"] if x < 0 else -p["threshold"],
    "spike_rate_escape": lambda x, p: p["slope"] * math.exp(-p["beta"] * abs(x - 1)),
    "sparse_fast_sigmoid": lambda x, p: 1 / (p["slope"] * abs(x) + 1) ** 2 if x > p["B"] else 0.0,
    "leaky_spike_operator": lambda x, p: 1.0 if x > 0 else p["slope"],
    "piecewise_exp": lambda x, p: p["alpha"] / 2 * math.exp(-p["alpha"] * abs(x)),
    "sj_sigmoid": lambda x, p: _bell(p["alpha"], x),
    "super_spike": lambda x, p: p["alpha"] / (1 + abs(x)) ** 2,
    "nonzero_sign_log_abs": lambda x, p: 1 / (1 / p["alpha"] + abs(x)),
    "piecewise_leaky_relu": lambda x, p: 1 / (2 * p["w"]) if abs(x) < p["w"] else p["c"],
    "leaky_k_relu": lambda x, p: p["k"] if x >= 0 else p["leak"],
    "log_tailed_relu": lambda x, p: p["alpha"] if x <= 0 else 1.0 if x <= 1 else 1 / x,
    "q_pseudo_spike": lambda x, p: (1 + 2 * abs(x) / (p["alpha"] - 1)) ** -p["alpha"],
    "rect": lambda x, p: p["alpha"] if abs(x) < 1 / (2 * p["alpha"]) else 0.0,
    "s2nn": lambda x, p: _bell(p["alpha"], x) if x < 0 else p["beta"] / (x + 1),
    "squarewave_fourier_series": lambda x, p: (
        4 / p["T_period"] * sum(math.cos((2 * i - 1) * 2 * math.pi / p["T_period"] * x) for i in range(1, int(p["n"])))
    ),
    "relu_grad": lambda x, p: p["alpha"] * max(p["width"] - abs(x), 0.0),
}
# Parameters other than the defaults, including the edges of their ranges (0 where a parameter may be 0).
OTHER_PARAMS = {
    "atan": {"alpha": 3.0},
    "fast_sigmoid": {"slope": 5.0},
    "sigmoid": {"slope": 3.0},
    "triangle": {"width": 0.5},
    "straight_through": {},
    "gaussian": {"sigma": 1.5},
    "erf": {"alpha": 0.5},
    "soft_sign": {"alpha": 0.7},
    "piecewise_quadratic": {"alpha": 3.0},
    "triangular": {"threshold": 0.5},
    "spike_rate_escape": {"beta": 2.0, "slope": 3.0},
    "sparse_fast_sigmoid": {"slope": 4.0, "B": -0.5},
    "leaky_spike_operator": {"slope": 0.0},
    "piecewise_exp": {"alpha": 2.5},
    "sj_sigmoid": {"alpha": 1.5},
    "super_spike": {"alpha": 0.3},
    "nonzero_sign_log_abs": {"alpha": 4.0},
    "piecewise_leaky_relu": {"w": 0.3, "c": 0.0},
    "leaky_k_relu": {"leak": 0.2, "k": 3.0},
    "log_tailed_relu": {"alpha": 0.05},
    "q_pseudo_spike": {"alpha": 1.5},
    "rect": {"alpha": 3.0},
    "s2nn": {"alpha": 2.0, "beta": 0.5},
    "squarewave_fourier_series": {"n": 4.0, "T_period": 3.0},
    "relu_grad": {"alpha": 2.0, "width": 0.4},
}
CASES = [(name, params) for name in NAMES for params in ({}, OTHER_PARAMS[name])]
COMMON_POINTS = [0.0, 1e-9, 0.25, 0.5, 1.0, 2.0, 7.3, 1e2, 1e4]


def _special_points(params: dict[str, float]) -> list[float]:
    """0, a few ordinary points, large |x|, and every kink a parameter can make: +-v, +-1/v, +-1/(2v), +-v/2."""
    values = [*COMMON_POINTS, *params.values()]
    values += [f(v) for v in params.values() if v != 0 for f in (lambda v: 1 / v, lambda v: 0.5 / v, lambda v: v / 2)]
    return sorted({s * v for v in values for s in (1, -1)})


def test_registry_lists_every_peer_surrogate_with_defaults_and_source():
    required = {
        # snnlab's first nine; their names stay (presets and saved configs use them)
        "atan", "fast_sigmoid", "sigmoid", "triangle", "straight_through", "gaussian", "erf", "soft_sign",
        "piecewise_quadratic",
        # snnTorch 1.0
        "triangular", "spike_rate_escape", "sparse_fast_sigmoid", "leaky_spike_operator",
        # SpikingJelly 2.0
        "piecewise_exp", "sj_sigmoid", "super_spike", "nonzero_sign_log_abs", "piecewise_leaky_relu",
        "leaky_k_relu", "log_tailed_relu", "q_pseudo_spike", "rect", "s2nn", "squarewave_fourier_series",
        # BrainPy
        "relu_grad",
    }  # fmt: skip
    infos = {i.name: i for i in surrogates.names()}
    assert required <= set(infos)
    assert NAMES[:9] == ["atan", "fast_sigmoid", "sigmoid", "triangle", "straight_through", "gaussian", "erf",
                         "soft_sign", "piecewise_quadratic"]  # fmt: skip
    assert infos["atan"].defaults == {"alpha": 2.0}
    assert infos["fast_sigmoid"].defaults == {"slope": 25.0}
    assert infos["sigmoid"].defaults == {"slope": 25.0} and infos["sj_sigmoid"].defaults == {"alpha": 4.0}
    assert infos["triangle"].defaults == {"width": 1.0}
    assert infos["gaussian"].defaults == {"sigma": 0.5}
    assert infos["relu_grad"].defaults == {"alpha": 0.3, "width": 1.0}
    assert infos["squarewave_fourier_series"].defaults == {"n": 2.0, "T_period": 8.0}
    assert all(i.description and i.source in catalog.SURROGATE_SOURCES for i in infos.values())
    assert set(CLOSED_FORMS) == set(OTHER_PARAMS) == set(NAMES)  # a new surrogate needs its closed form here


@pytest.mark.parametrize("name,params", CASES)
def test_grad_is_its_closed_form_at_zero_kinks_and_large_x(name, params):
    s = surrogates.get(name, **params)
    points = _special_points(s.params)
    got = s.grad(torch.tensor(points, dtype=torch.float64)).tolist()
    expected = [CLOSED_FORMS[name](x, s.params) for x in points]
    peak = max(abs(v) for v in expected)
    for x, g, e in zip(points, got, expected, strict=True):
        # abs: cos((2i-1)*w*x) of Python's floats is off by ~1e-12 at x = 1e4 (w*x rounds); the scan reduces x first
        assert g == pytest.approx(e, rel=1e-9, abs=1e-9 * peak), f"{name}{s.params} at x = {x}"


@pytest.mark.parametrize("name", NAMES)
def test_grad_is_the_derivative_of_smooth(name):
    s = surrogates.get(name)
    x = POINTS.clone().requires_grad_()
    (autograd,) = torch.autograd.grad(s.smooth(x).sum(), x)
    torch.testing.assert_close(s.grad(POINTS), autograd, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_smooth_is_one_half_at_zero(name):
    assert surrogates.get(name).smooth(torch.zeros(1, dtype=torch.float64)).item() == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("name,params", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_in_place_grad_equals_grad_bit_for_bit(name, params, dtype):
    s = surrogates.get(name, **params)
    big = torch.finfo(dtype).max
    x = torch.cat([torch.linspace(-6, 6, 2001, dtype=dtype), torch.tensor(_special_points(s.params), dtype=dtype),
                   torch.tensor([big, -big, 3e38, -3e38], dtype=dtype)])  # fmt: skip
    before = x.clone()
    expected = s.grad(x)
    assert torch.equal(x, before)  # grad leaves its input alone
    assert torch.equal(s.grad_(x.clone()), expected)
    assert torch.equal(s.grad(x.clone().requires_grad_()), expected)  # a tensor in a graph is read, not traced


@pytest.mark.parametrize("name,params", CASES)
def test_grad_is_finite_at_large_x_and_float_extremes(name, params):
    s = surrogates.get(name, **params)
    for dtype in (torch.float32, torch.float64):
        info = torch.finfo(dtype)
        values = [1e4, 3e38, info.max, info.tiny, info.smallest_normal / 2, 1.0, 0.0] + (
            [1e300] if info.bits == 64 else []
        )
        x = torch.tensor([s * v for v in values for s in (1, -1)], dtype=dtype)
        g = s.grad(x)
        assert torch.isfinite(g).all(), f"{name}{s.params} {dtype}: {dict(zip(x.tolist(), g.tolist(), strict=True))}"


def test_sigmoid_stays_finite_and_right_where_snntorchs_own_is_nan():
    # snnTorch computes slope*exp(-slope*x)/(exp(-slope*x)+1)^2: inf/inf = NaN in float32 below x = -3.43.
    s = surrogates.get("sigmoid")
    x = torch.tensor([-3.0, -3.43, -3.5, -10.0, -100.0, 3.0, 3.5])
    for value, got in zip(x.tolist(), s.grad(x).tolist(), strict=True):
        assert got == pytest.approx(_bell(25.0, value), rel=1e-4, abs=1e-44)
    assert s.grad(torch.tensor([-3.5])).item() > 0  # 2.5e-37: representable, so not flushed to 0


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
    assert at0["triangular"] == -1.0  # snnTorch's: -threshold from 0 up
    assert at0["relu_grad"] == pytest.approx(0.3)
    x = torch.tensor([0.5], dtype=torch.float64)
    assert surrogates.get("atan", alpha=2).grad(x).item() == pytest.approx(1 / (1 + (math.pi / 2) ** 2))
    assert surrogates.get("fast_sigmoid", slope=25).grad(x).item() == pytest.approx(1 / 13.5**2)
    assert surrogates.get("triangle", width=1).grad(x).item() == pytest.approx(0.5)
    assert surrogates.get("triangle", width=1).grad(torch.tensor([1.5])).item() == 0.0
    assert surrogates.get("piecewise_quadratic", alpha=1).grad(torch.tensor([2.0])).item() == 0.0
    sig = 1 / (1 + math.exp(-12.5))
    assert surrogates.get("sigmoid").grad(x).item() == pytest.approx(25 * sig * (1 - sig))


def test_triangle_is_piecewise_quadratic_with_alpha_one_over_width():
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    for width in (0.25, 1.0, 2.0):
        torch.testing.assert_close(
            surrogates.get("triangle", width=width).grad(x),
            surrogates.get("piecewise_quadratic", alpha=1 / width).grad(x),
        )


@pytest.mark.parametrize("name", ["atan", "sigmoid", "gaussian", "erf", "soft_sign", "triangle", "sj_sigmoid",
                                  "piecewise_exp", "piecewise_quadratic", "rect", "q_pseudo_spike"])  # fmt: skip
def test_bounded_smooth_goes_from_zero_to_one(name):
    s = surrogates.get(name)
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


@pytest.mark.parametrize(
    "name,params,message",
    [
        ("q_pseudo_spike", {"alpha": 1.0}, "alpha must be > 1 (got 1.0)"),
        ("squarewave_fourier_series", {"n": 2.5}, "n must be a whole number >= 2 (got 2.5)"),
        ("squarewave_fourier_series", {"n": 1}, "n must be a whole number >= 2 (got 1.0)"),
        ("leaky_k_relu", {"leak": -0.1}, "leak must be >= 0 (got -0.1)"),
        ("leaky_k_relu", {"k": 0}, "k must be > 0 (got 0.0)"),
        ("atan", {"alpha": math.inf}, "alpha must be > 0 (got inf)"),
        ("sparse_fast_sigmoid", {"B": math.nan}, "B must be a number (got nan)"),
    ],
)
def test_each_parameter_has_its_own_range(name, params, message):
    with pytest.raises(ValueError, match=rf"^surrogate '{name}': {re.escape(message)}$"):
        surrogates.get(name, **params)


def test_parameters_that_may_be_zero_or_negative():
    assert surrogates.get("leaky_k_relu").leak == 0.0  # SpikingJelly's default
    assert surrogates.get("log_tailed_relu").alpha == 0.0
    assert surrogates.get("piecewise_leaky_relu", c=0).c == 0.0
    assert surrogates.get("sparse_fast_sigmoid", B=-2).B == -2.0
    assert surrogates.get("squarewave_fourier_series", n=5).n == 5.0


# --- a user's own surrogate -------------------------------------------------------------------------------------


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """Writes a module into the current directory (a fresh one) and returns its name."""
    monkeypatch.chdir(tmp_path)
    # Only load() puts the current directory on the path (python -m pytest put "" there, which follows chdir).
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])

    def write(source: str) -> str:
        name = f"user_grads_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    return write


FUNCTION = """
    import torch

    def box(x, width=0.5):
        return (x.abs() < width).to(x.dtype) / (2 * width)

    class Holder:
        box = staticmethod(box)
"""
SUBCLASS = """
    import torch
    from snnlab.engine.surrogates import Surrogate

    class Bump(Surrogate):
        name = "bump"
        defaults = {"alpha": 2.0}

        def smooth(self, x):
            return torch.sigmoid(self.alpha * x)

        def grad(self, x):
            return self.alpha * torch.exp(-x * x)
"""


def test_a_function_from_a_path_is_a_surrogate_that_runs_in_the_fused_scan(user_module):
    module = user_module(FUNCTION)
    s = surrogates.resolve(f"{module}:box", width=1.0)
    assert isinstance(s, surrogates.FunctionSurrogate) and s.params == {"width": 1.0}
    assert s.grad(torch.tensor([0.0, 0.9, 1.1])).tolist() == [0.5, 0.5, 0.0]
    assert surrogates.load(f"{module}:Holder.box").grad(torch.tensor([0.4, 0.6])).tolist() == [1.0, 0.0]
    with pytest.raises(NotImplementedError, match="has no smooth"):
        s.smooth(torch.zeros(1))
    neuron = Leaky(beta=0.5, surrogate=f"{module}:box", surrogate_params={"width": 1.0})
    assert neuron.uses_fused
    x = (torch.arange(-8, 16).reshape(6, 2, 2) / 8).requires_grad_()
    (fused,) = torch.autograd.grad(sum(o.sum() for o in neuron(x)), x)
    (reference,) = torch.autograd.grad(sum(o.sum() for o in neuron.reference(x)), x)
    torch.testing.assert_close(fused, reference)


def test_a_surrogate_subclass_from_a_path_takes_its_own_parameters(user_module):
    module = user_module(SUBCLASS)
    s = surrogates.resolve(f"{module}:Bump", alpha=3)
    assert type(s).__name__ == "Bump" and s.params == {"alpha": 3.0}
    assert s.grad(torch.zeros(1)).item() == 3.0 and s.grad_(torch.zeros(1)).item() == 3.0
    with pytest.raises(ValueError, match=r"^surrogate '.*:Bump': surrogate 'bump' has no parameter 'beta'"):
        surrogates.load(f"{module}:Bump", beta=1)


@pytest.mark.parametrize(
    "source,attribute,message",
    [
        (None, "grad", "cannot import 'no_such_module_for_snnlab': ModuleNotFoundError: No module named"),
        ("raise RuntimeError('boom\\nand more')", "grad", "cannot import '{module}': RuntimeError: boom"),
        ("x = (", "grad", "cannot import '{module}': SyntaxError:"),
        ("VALUE = 3", "nothing", "'{module}' has no 'nothing'"),
        ("VALUE = 3", "VALUE", "not a Surrogate subclass nor a function grad(x) -> Tensor"),
        ("class Foo:\n    pass", "Foo", "not a Surrogate subclass nor a function grad(x) -> Tensor"),
        ("def bad(x):\n    raise ZeroDivisionError('nope')", "bad", "grad(x) failed on a test tensor: "
         "ZeroDivisionError: nope"),
        ("def bad(x, alpha):\n    return x", "bad", "grad(x) failed on a test tensor: TypeError:"),
        ("def bad(x):\n    return 1.0", "bad", "must return a float tensor shaped like x (got float)"),
        ("def bad(x):\n    return x[:3]", "bad", "(got a torch.float32 tensor of shape [3])"),
        ("def bad(x):\n    return (x > 0).long()", "bad", "(got a torch.int64 tensor of shape [9])"),
        ("from snnlab.engine.surrogates import Surrogate\nclass Empty(Surrogate):\n    name = 'empty'", "Empty",
         "Empty defines none of steps(), grad(x) and grad_(x)"),
    ],
)  # fmt: skip
def test_a_bad_surrogate_path_fails_in_one_line_naming_it(user_module, source, attribute, message):
    module = "no_such_module_for_snnlab" if source is None else user_module(source)
    path = f"{module}:{attribute}"
    with pytest.raises(ValueError) as info:
        surrogates.resolve(path)
    text = str(info.value)
    assert text.startswith(f"surrogate {path!r}: ") and message.format(module=module) in text, text
    assert "\n" not in text


def test_a_bad_path_fails_when_the_network_is_built_naming_the_layer():
    from snnlab.engine.models import build_model

    layers = [{"type": "linear", "out_features": 2, "neuron": {"type": "leaky", "surrogate": "nowhere_xyz:grad"}}]
    with pytest.raises(ValueError, match=r"^model.layers\[0\] \(linear\) neuron: surrogate 'nowhere_xyz:grad': "
                                         r"cannot import 'nowhere_xyz'"):  # fmt: skip
        build_model(layers, (3,))
