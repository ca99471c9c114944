"""Configs as flat dotted keys, and the keys where two configs differ (the lab's runs table and config diff).

Keys are written as ``--set`` reads them: ``train.lr``, ``model.layers.1.size`` (list items by index). A list of
plain values (``train.betas``) stays one value: it is set as one, and reads better whole.
"""

from __future__ import annotations

from typing import Any

ABSENT = object()  # a key that one of two configs does not have


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.001}}`` -> ``{"train.lr": 0.001}``, in the config's own order."""
    if isinstance(data, dict):
        items: list[tuple[Any, Any]] = list(data.items())
    elif isinstance(data, list) and data and all(isinstance(v, (dict, list)) for v in data):
        items = list(enumerate(data))
    else:
        return {prefix: data} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else str(key)
        nested = flatten(value, name) if isinstance(value, (dict, list)) else {}
        flat.update(nested or {name: value})  # an empty section is a value of its own
    return flat


def config_diff(old: dict[str, Any], new: dict[str, Any], skip: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """``(key, old value, new value)`` for each dotted key whose values differ, in ``old``'s order then the
    keys only ``new`` has; a key one side lacks has :data:`ABSENT` there. Keys under a prefix in ``skip``
    (``"run."``) are left out."""
    a, b = flatten(old), flatten(new)
    keys = list(a) + [k for k in b if k not in a]
    out = []
    for key in keys:
        if any(key == p.rstrip(".") or key.startswith(p) for p in skip):
            continue
        x, y = a.get(key, ABSENT), b.get(key, ABSENT)
        if x is ABSENT or y is ABSENT or not _same(x, y):
            out.append((key, x, y))
    return out


def varying_keys(configs: list[dict[str, Any]], skip: tuple[str, ...] = ()) -> list[str]:
    """The dotted keys whose values are not the same in every one of ``configs`` (in the first's order)."""
    flats = [flatten(c) for c in configs]
    keys = list(dict.fromkeys(k for flat in flats for k in flat))
    return [
        k
        for k in keys
        if not any(k == p.rstrip(".") or k.startswith(p) for p in skip)
        and any(flat.get(k, ABSENT) is ABSENT or not _same(flat[k], flats[0].get(k, ABSENT)) for flat in flats)
    ]


def _same(x: Any, y: Any) -> bool:
    # 1 and 1.0 are one value (YAML writes an int where --set wrote a float); True and 1 are not.
    if isinstance(x, bool) or isinstance(y, bool):
        return type(x) is type(y) and x == y
    return bool(x == y)
