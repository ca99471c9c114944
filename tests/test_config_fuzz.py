"""Fuzzed presets: each one ends in the project's one-line ConfigError or a valid config, and valid ones train.

Hypothesis mutates the bundled presets: dropped and unknown keys, wrong types, extreme numbers, lists of
the wrong length, random networks and neurons, deep nesting, YAML aliases (fine ones, self-referencing
ones, alias bombs), huge integers, random bytes, truncation, and ``--set`` overrides. The "ci" profile
(tests/conftest.py) is derandomized, so every CI run sees the same examples.

Training every valid config would not fit a CI run on two cores, so the valid ones are collected while
Hypothesis runs, and then the first TRAINED of them (in generation order) whose batch and network are
small train two steps each on the bundled data (or a small synthetic set), on the CPU. Both counts are
printed at the end.
"""

from __future__ import annotations

import copy
import math
import os
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnlab import catalog
from snnlab import config as cfgmod
from snnlab.config import Config, ConfigError, config_from_dict, load_config
from snnlab.engine import shapes, surrogates

pytestmark = pytest.mark.slow  # a thousand generated presets, some trained

EXAMPLES = int(os.environ.get("SNNLAB_FUZZ_EXAMPLES", "1000"))
TRAINED = int(os.environ.get("SNNLAB_FUZZ_TRAINED", "32"))  # valid configs trained per run
CHEAP = 2_000_000  # values of one batch (Config.batch_values) a trained config may hold

PRESETS = {path.stem: yaml.safe_load(path.read_text()) for path in sorted(cfgmod.PRESETS_DIR.glob("*.yaml"))}
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n" for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def paths(node, prefix=()):
    """Every path to a value below ``node``, as tuples of keys and list indices."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*prefix, i)
            yield from paths(value, (*prefix, i))


def parent_of(data, path):
    for part in path[:-1]:
        data = data[part]
    return data


# --- values -------------------------------------------------------------------------------------------

EXTREMES = [0, 1, 2, 3, 7, 10, 16, -1, 0.5, 0.0, 1.0, 1.5, -0.5, 1e-9, 2**31, 2**32, 2**63 - 1, 2**63, 2**64,
            10**30, -(10**30), 1e308, -1e308, math.inf, -math.inf, math.nan, 100_000_000]  # fmt: skip
WORDS = ["", "x" * 10_000, "atan", "linear", "conv2d", "batchnorm", "bundled", "synthetic", "mnist", "rate", "none",
         "direct", *catalog.NEURONS, "cuda", "bfloat16", "fc1", "true", "~"]  # fmt: skip
scalars = st.one_of(
    st.sampled_from(EXTREMES), st.booleans(), st.none(), st.text(max_size=12), st.sampled_from(WORDS), st.floats()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
beta_lists = st.lists(st.floats(0, 1), max_size=12) | st.sampled_from([1, 2, 4, 10, 16, 32, 256]).map(
    lambda n: [0.9] * n
)
neurons = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(list(catalog.NEURONS)),
        "beta": st.floats(0, 1) | beta_lists,
        "alpha": st.floats(0, 1),
        "threshold": st.sampled_from([0.5, 1.0, 2.0]),
        "reset": st.sampled_from(["subtract", "zero", "none"]),
        "surrogate": st.sampled_from([info.name for info in surrogates.names()]),
        "learn_beta": st.booleans(),
        "learn_threshold": st.booleans(),
        "all_to_all": st.booleans(),
    },
)
neuron_switch = st.booleans() | neurons
# A layer's named initialisers, with parameters that often fit them and often do not.
INIT_PARAMS = [{}, {"std": 0.1}, {"scale": 4.4, "fan_out": 1}, {"a": 2, "b": -2}, {"gain": 0}, {"fan_out": 0.5},
               {"value": math.inf}, [1.0], None]  # fmt: skip
initialisers = {
    "init": st.sampled_from([*catalog.INITS, "kaiming", ""]),
    "init_params": st.sampled_from(INIT_PARAMS),
    "bias_init": st.sampled_from([*catalog.BIAS_INITS, "orthogonal"]),
    "bias_init_params": st.sampled_from([{}, {"value": 0.5}, {"std": -1}]),
}
layers = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("linear"), "out_features": st.sampled_from([1, 2, 4, 10, 16])},
        optional={"neuron": neuron_switch, "bias": st.booleans(), **initialisers},
    ),
    st.fixed_dictionaries(
        {"type": st.just("conv2d"), "out_channels": st.sampled_from([1, 2, 4]), "kernel_size": st.sampled_from([1, 3])},
        optional={
            "stride": st.sampled_from([1, 2, 3]),
            "padding": st.sampled_from([0, 1]),
            "neuron": neuron_switch,
            **initialisers,
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["maxpool", "avgpool"])},
        optional={"kernel_size": st.sampled_from([1, 2, 3]), "stride": st.sampled_from([None, 1, 2])},
    ),
    st.just({"type": "flatten"}),
    st.fixed_dictionaries({"type": st.just("dropout")}, optional={"p": st.sampled_from([0.0, 0.5])}),
    st.fixed_dictionaries({"type": st.just("batchnorm")}, optional={"neuron": neuron_switch}),
    st.fixed_dictionaries(
        {"type": st.just("batchnorm_tt")}, optional={"neuron": neuron_switch, "affine": st.booleans()}
    ),
    st.fixed_dictionaries(
        {"type": st.just("delayed_linear"), "out_features": st.sampled_from([1, 4, 10])},
        optional={
            "max_delay": st.sampled_from([0, 1, 3]),
            "sigma_start": st.sampled_from([None, 0.5, 0]),
            "round_in_eval": st.booleans(),
            "neuron": neuron_switch,
            "bias": st.booleans(),
        },
    ),
)
heads = st.sampled_from(
    [
        [],
        [{"type": "flatten"}, {"type": "linear", "out_features": 10, "neuron": True}],
        [{"type": "linear", "out_features": 10, "neuron": True}],
        [{"type": "linear", "out_features": 2, "neuron": True}],
    ]
)
networks = st.builds(lambda body, head: body + head, st.lists(layers, max_size=4), heads)
# Settings a user plausibly changes, with values that often make a valid config.
PLAUSIBLE = {
    ("data", "dataset"): st.sampled_from(["bundled", "synthetic", "mnist"]),
    ("data", "encoder"): st.sampled_from(["direct", "rate", "latency", "delta", "none"]),
    ("data", "batch_size"): st.sampled_from([1, 2, 3, 7, 50]),
    ("data", "time_steps"): st.sampled_from([1, 2, 5]),
    ("data", "train_size"): st.sampled_from([None, 1, 2, 3, 17]),
    ("data", "test_size"): st.sampled_from([None, 1, 2, 5]),
    ("data", "synthetic"): st.fixed_dictionaries(
        {},
        optional={
            "samples": st.sampled_from([1, 2, 9]),
            "inputs": st.sampled_from([1, 5, 100]),
            "time_steps": st.sampled_from([1, 3]),
            "classes": st.sampled_from([2, 10]),
        },
    ),
    ("model", "layers"): networks,
    ("model", "neuron"): neurons,
    ("model", "fused"): st.booleans(),
    ("train", "optimizer"): st.sampled_from(["adam", "adamw", "sgd"]),
    ("train", "scheduler"): st.sampled_from(["none", "cosine", "step"]),
    ("train", "loss"): st.sampled_from(list(catalog.LOSSES)),
    ("train", "decoder"): st.sampled_from(["rate", "rate_first", "latency", "membrane"]),
    ("train", "precision"): st.sampled_from(["float32", "bfloat16"]),
    ("train", "seed"): st.sampled_from([0, 1, 10**14, 2**63 - 1]),
    ("train", "lr"): st.sampled_from([1e-3, 10.0, 1e30]),
    ("train", "grad_clip"): st.sampled_from([None, 1.0]),
    ("run", "probes"): st.fixed_dictionaries({}, optional={"layers": st.sampled_from([[], ["fc1"], ["conv1"]])}),
}


def flow(value) -> str:
    """``value`` as one line of flow-style YAML."""
    return yaml.safe_dump([value], default_flow_style=True, width=10**9).strip()[1:-1]


@st.composite
def presets(draw) -> tuple[bytes, list[str]]:
    """YAML bytes of a mutated bundled preset, and --set items to apply to it."""
    data = copy.deepcopy(PRESETS[draw(st.sampled_from(sorted(PRESETS)))])
    replacements: dict[str, str] = {}  # markers placed in the data, swapped for raw YAML text after dumping

    def marker(text: str) -> str:
        name = f"ZZMARK{len(replacements)}ZZ"
        replacements[name] = text
        return name

    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["drop", "unknown", "value", "plausible", "plausible", "nest", "alias"]))
        path = draw(st.sampled_from(list(paths(data)))) if data else ()
        if kind == "plausible":
            path = draw(st.sampled_from(sorted(PLAUSIBLE, key=str)))
            parent = data.setdefault(path[0], {}) if isinstance(data, dict) else None
            if isinstance(parent, dict):
                parent[path[1]] = copy.deepcopy(draw(PLAUSIBLE[path]))  # drawn objects may be shared
            continue
        if not path:
            continue
        parent, key = parent_of(data, path), path[-1]
        if kind == "drop":
            del parent[key]
        elif kind == "unknown" and isinstance(parent[key], dict):
            parent[key][draw(st.text(min_size=1, max_size=20))] = draw(scalars)
        elif kind == "value":
            parent[key] = copy.deepcopy(draw(values))
        elif kind == "nest":
            depth = draw(st.sampled_from([2, 5, 18, 19, 20, 21, 50, 1000]))
            opening, closing = draw(st.sampled_from([("[", "]"), ("{a: ", "}")]))
            parent[key] = marker(opening * depth + "1" + closing * depth)
        elif kind == "alias":
            how = draw(st.sampled_from(["self", "bomb", "reuse"]))
            if how == "self":
                parent[key] = marker("&self [*self]")
            elif how == "bomb":
                replacements["ZZBOMB"] = ALIAS_BOMB
                parent[key] = marker("*i")
            else:  # an anchor on one value and an alias to it on another, valid or not in that place
                other = draw(st.sampled_from(list(paths(data))))
                if other[: len(path)] != path and path[: len(other)] != other:
                    anchored = parent_of(data, other)
                    anchored[other[-1]] = marker(f"&v {flow(anchored[other[-1]])}")
                    parent[key] = marker("*v")
    try:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
    except yaml.YAMLError:  # a key hypothesis made up that YAML cannot dump: the preset as it was
        text = yaml.safe_dump(PRESETS["quickstart"], sort_keys=False)
    if "ZZBOMB" in replacements:
        text = replacements.pop("ZZBOMB") + text
    for name, raw_text in replacements.items():
        text = text.replace(f"'{name}'", raw_text).replace(name, raw_text)
    raw = text.encode()

    damage = draw(st.sampled_from(["none"] * 8 + ["bytes", "nul", "truncate", "huge", "empty", "binary"]))
    at = draw(st.integers(0, len(raw)))
    if damage == "bytes":
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    elif damage == "nul":
        raw = raw[:at] + b"\0" + raw[at:]
    elif damage == "truncate":
        raw = raw[:at]
    elif damage == "huge":
        raw = raw.replace(b": 1\n", b": " + b"9" * draw(st.sampled_from([4300, 4301, 5000])) + b"\n", 1)
    elif damage == "empty":
        raw = draw(st.sampled_from([b"", b"# just a comment\n", b"---\n", b"{}\n", b"~\n"]))
    elif damage == "binary":
        raw = draw(st.binary(max_size=300))

    keys = [".".join(map(str, p)) for p in paths(PRESETS["quickstart"])] + ["train.seed", "model.neuron.beta"]
    item = st.one_of(
        st.builds(lambda k, v: f"{k}={flow(v)}", st.sampled_from(keys), values),
        st.builds(lambda k, n: f"{k}={'[' * n}{']' * n}", st.sampled_from(keys), st.sampled_from([3, 25, 1000])),
        st.builds(lambda k: f"{k}={'9' * 5000}", st.sampled_from(keys)),
        st.text(max_size=30),
    )
    return raw, draw(st.lists(item, max_size=2))


# --- the property -------------------------------------------------------------------------------------


def outcome(raw: bytes, overrides: list[str], path) -> Config | None:
    """The valid config, or None after checking that the error is the project's one bounded line."""
    path.write_bytes(raw)
    try:
        return load_config(path, overrides)
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message and message.isprintable(), repr(message)
        assert len(message) <= cfgmod.MAX_MESSAGE, message
        return None


def reduced(cfg: Config) -> Config | None:
    """``cfg`` made cheap to train: a few bundled (or its own synthetic) samples, two steps on the CPU. An event
    set (no files here) becomes a synthetic set of its shape when that is flat (shd, ssc), else None."""
    data = copy.deepcopy(cfg.to_dict())
    d, train = data["data"], data["train"]
    if d["dataset"] in catalog.EVENT_DATASETS:
        facts = shapes.data_shape(d["dataset"], d["synthetic"], d["events"])
        if len(facts.input_shape) != 1:
            return None
        d["dataset"] = "synthetic"
        inputs, classes = facts.input_shape[0], facts.classes
        d["synthetic"].update(samples=24, inputs=inputs, time_steps=d["time_steps"], classes=classes)
    if d["dataset"] == "synthetic":
        samples = d["train_size"] or d["synthetic"]["samples"]
    else:
        d["dataset"], samples = "bundled", d["train_size"] or 5000
        d["test_size"] = min(d["test_size"] or 1000, 12)
    d["train_size"] = min(samples, 24)
    d["drop_last"] = d["drop_last"] and d["batch_size"] <= d["train_size"]  # else the reduction leaves no batch
    if d["dataset"] == "synthetic":
        d["test_size"] = min(d["test_size"] or d["train_size"], d["train_size"])
    d["download"] = False
    train.update(max_steps=2, epochs=max(train["epochs"], 2), device="cpu")
    return config_from_dict(data, "reduced")


def test_fuzzed_presets_end_in_one_line_or_train(tmp_path, capsys):
    from snnlab.engine.models import build_model, count_parameters
    from snnlab.engine.trainer import train

    path = tmp_path / "fuzz.yaml"
    counts = {"examples": 0, "errors": 0}
    valid: list[tuple[bytes, list[str], Config]] = []

    @settings(max_examples=EXAMPLES, suppress_health_check=list(HealthCheck))
    @given(presets())
    def check(case):
        raw, overrides = case
        counts["examples"] += 1
        cfg = outcome(raw, overrides, path)
        if cfg is None:
            counts["errors"] += 1
        else:
            valid.append((raw, overrides, cfg))

    started = time.perf_counter()
    check()
    checked = time.perf_counter() - started

    trained, large, seen = 0, 0, set()
    for raw, overrides, cfg in valid:
        small = reduced(cfg)
        if small is None:
            continue
        key = cfgmod.dump_yaml(small)
        if trained >= TRAINED or key in seen:
            continue
        seen.add(key)
        if small.batch_values() > CHEAP or small.parameter_count() > CHEAP:
            large += 1
            continue
        where = f"preset {raw[:2000]!r} with --set {overrides}, reduced to:\n{key}"
        shape = (small.data.synthetic.inputs,) if small.data.dataset == "synthetic" else (1, 28, 28)
        assert count_parameters(build_model(small.layer_specs(), shape)) == small.parameter_count(), where
        result = train(small)
        # A valid config trains; the one failure no check can foresee is a loss that diverges.
        assert result.status == "completed" or result.reason == "nan_loss", f"{result.error}\n{where}"
        assert result.steps == 2 or result.reason == "nan_loss", where
        trained += 1

    with capsys.disabled():
        print(f"\nfuzzed presets: {counts['examples']} examples ({counts['errors']} config errors, {len(valid)} "
              f"valid) checked in {checked:.0f} s; {trained} distinct valid ones trained 2 steps in "
              f"{time.perf_counter() - started - checked:.0f} s ({large} too large to train here)")  # fmt: skip
    assert counts["examples"] >= EXAMPLES
    assert trained >= min(TRAINED, 16)
    assert counts["errors"] > EXAMPLES // 4 and len(valid) > EXAMPLES // 20  # both outcomes are exercised
