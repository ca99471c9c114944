"""Reading a config: YAML files with the line of every key, within bounds, ``--set`` overrides and presets.

Errors a user can make end in one :class:`ConfigError` line that names the file, the line, the key and
what is wrong, e.g. ``presets/x.yaml:12: train.lr: must be > 0 (got -1)``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from snnlab.config.messages import (
    MAX_DEPTH,
    MAX_VALUES,
    ConfigError,
    _clip,
    _clip_path,
    _dotted,
    _kind,
    _number,
    _show,
    did_you_mean,
)
from snnlab.config.schema import _SECTIONS, LAYERS, Config, ModelConfig, NeuronConfig

# The package's presets folder (this file is in snnlab/config/); also reachable as presets/ at the repo root.
PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
MAX_FILE_BYTES = 1 << 20  # a config file larger than this is refused before it is parsed


# --- loading -------------------------------------------------------------------------------------------


def config_from_dict(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate plain data (as read from YAML) into a :class:`Config`; errors name ``source``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections ({', '.join(_SECTIONS)}), got {_kind(data)}")
    _check_size(data, source)
    return _validate(_unshared(data), source, {}, set())


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read a YAML preset, apply ``--set KEY=VALUE`` overrides (``model.layers.1.out_features=500``), validate."""
    path = Path(path)
    source = _clip_path(_display(path))
    text = _read_text(path, source)
    try:
        data, lines = _parse_yaml(text)
    except _Refused as exc:
        where = f"{source}:{exc.line}" if exc.line else source
        what = "invalid YAML: " if exc.syntax else ""
        raise ConfigError(f"{where}: {what}{exc.problem}", key=exc.key, line=exc.line) from None
    if data is None or data == {}:
        raise ConfigError(f"{source}: no settings (the file is empty or only comments); a preset sets at least "
                          f"one of the sections {', '.join(_SECTIONS)}")  # fmt: skip
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections ({', '.join(_SECTIONS)}), got {_kind(data)}")
    data = _unshared(data)  # an override of one use of a YAML alias must not change its other uses
    from_set = apply_overrides(data, overrides)
    return _validate(data, source, lines, from_set)


def dump_yaml(config: Config) -> str:
    """The config as YAML that :func:`load_config` reads back to the same config."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None, width=120)


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> set[tuple[str | int, ...]]:
    """Apply ``a.b.c=value`` items to ``data`` in place (values parsed as YAML); return the paths set."""
    paths = set()
    for item in overrides:
        shown = f"--set {_clip(item, 80)}"
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"{shown}: expected KEY=VALUE")
        if len(parts) > MAX_DEPTH:
            raise ConfigError(f"{shown}: the key has {len(parts)} parts; a config nests at most {MAX_DEPTH} levels")
        try:
            value, _ = _parse_yaml(text)
        except _Refused as exc:
            what = "the value is not valid YAML: " if exc.syntax else ""
            raise ConfigError(f"{shown}: {what}{exc.problem}") from None
        paths.add(_set_path(data, parts, value, shown))
    return paths


def _set_path(data: dict, parts: list[str], value: Any, shown: str) -> tuple[str | int, ...]:
    node: Any = data
    path: list[str | int] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = _clip(".".join(map(str, path)), 80)
        if isinstance(node, list):
            index = _index(part, len(node))
            if index is None:
                raise ConfigError(f"{shown}: {where} has {len(node)} items, so no item {_clip(part, 20)}")
            key: str | int = index
        elif isinstance(node, dict):
            key = part
        else:
            raise ConfigError(f"{shown}: {where} is {_show(node)}, not a mapping")
        path.append(key)
        container: Any = node  # a list indexed by int or a dict by str, as checked above
        if last:
            container[key] = value
        else:
            child = container[key] if isinstance(node, list) else container.get(key)
            if child is None or (child is True and part == "neuron"):
                child = container[key] = {}  # `neuron: true` means "model.neuron with no overrides"
            node = child
    return tuple(path)


def _index(part: str, length: int) -> int | None:
    try:
        index = int(part)
    except ValueError:  # also a part of more digits than int() reads
        return None
    if -length <= index < length:
        return index % length
    return None


def _read_text(path: Path, source: str) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory, not a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_FILE_BYTES >> 20} MB, which is too large for a config file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{source}:{line}: not a text file: byte {raw[exc.start]:#04x} is not UTF-8") from None


class _Refused(Exception):
    """Text that does not read as a config: ``str()`` says why, ``line`` (1-based) where when known, ``syntax``
    whether it is not YAML at all (rather than YAML past a limit)."""

    def __init__(self, problem: str, line: int | None = None, syntax: bool = False, key: str | None = None) -> None:
        super().__init__(_clip(problem, 100))
        self.problem = _clip(problem, 100)
        self.line = line
        self.syntax = syntax
        self.key = key


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses, while composing and before going a level deeper, what would make reading a
    config recurse without end or expand without bound: nesting past MAX_DEPTH levels, an alias used inside
    the node it names, and more than MAX_VALUES values once aliases are expanded (an alias bomb)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, levels), aliases expanded

    # The scanner slows down with every open flow collection ("[[[[..." costs time quadratic in its depth), so
    # nesting is refused while scanning as well, not only while composing.
    def fetch_flow_collection_start(self, TokenClass: type) -> None:
        self._check_scan_depth(1)
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        self._check_scan_depth(0)
        return super().add_indent(column)

    def _check_scan_depth(self, opening: int) -> None:
        if self.flow_level + len(self.indents) + opening > MAX_DEPTH:
            raise _Refused(f"nesting deeper than {MAX_DEPTH} levels (a config needs at most 7)", self.line + 1)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            line = event.start_mark.line + 1
            target = self.anchors.get(event.anchor)
            if target is not None and id(target) not in self._measured:
                raise _Refused(f"alias *{_clip(event.anchor, 40)} is used inside the node it names", line)
            node = super().compose_node(parent, index)
            if self._depth + self._measured[id(node)][1] > MAX_DEPTH:
                raise _Refused(f"nesting deeper than {MAX_DEPTH} levels (a config needs at most 7)", line)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            line = self.peek_event().start_mark.line + 1
            raise _Refused(f"nesting deeper than {MAX_DEPTH} levels (a config needs at most 7)", line)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if node is None:
            return None
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else []
        measured = [self._measured[id(child)] for child in children]
        values = 1 + sum(count for count, _ in measured)
        if values > MAX_VALUES:
            raise _Refused(f"more than {MAX_VALUES:,} values (an alias counts once per use)", node.start_mark.line + 1)
        self._measured[id(node)] = (values, 1 + max((levels for _, levels in measured), default=0))
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # a scalar YAML resolves but Python cannot hold
            if node.tag == "tag:yaml.org,2002:int":
                limit = sys.get_int_max_str_digits()
                problem = f"a number of {len(node.value):,} digits is longer than the {limit:,} allowed"
            else:
                kind = node.tag.rsplit(":", 1)[-1]
                problem = f"cannot read {_show(node.value) if isinstance(node.value, str) else 'it'} as a {kind}: {exc}"
            raise _Refused(problem, node.start_mark.line + 1) from None


def _parse_yaml(text: str) -> tuple[Any, dict[tuple, int]]:
    """The data in ``text`` and the line (1-based) of every key path and list item in it; raises _Refused."""
    loader = None
    try:
        loader = _BoundedLoader(text)  # reads the whole text at once: control characters fail here
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        raise _Refused(f"character U+{code:04X} is not allowed (YAML has no control characters)", line, True) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _Refused(exc.problem or exc.context or "cannot parse", mark.line + 1 if mark else None, True) from None
    except yaml.YAMLError as exc:
        raise _Refused(str(exc).splitlines()[0] if str(exc) else "cannot parse", None, True) from None
    except (ValueError, OverflowError) as exc:  # the scanner's own: chr() of an escape such as "\U7fffffff"
        at = loader.line + 1 if loader is not None else None
        problem = "an escape names no character (the largest is \\U0010FFFF)" if "chr()" in str(exc) else str(exc)
        raise _Refused(problem, at, True) from None
    finally:
        if loader is not None:
            loader.dispose()
    lines: dict[tuple, int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return data, lines


def _index_lines(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    # Recursive, but the loader has bounded the depth and the number of values, aliases expanded.
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            child = (*path, key_node.value)
            line = key_node.start_mark.line + 1
            if child in lines:
                dotted = _dotted(child)
                raise _Refused(f"{dotted}: duplicate key {_show(key_node.value)}", line, key=dotted)
            lines[child] = line
            _index_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _index_lines(item, (*path, i), lines)


def _check_size(data: Any, source: str) -> None:
    """Refuse plain data nested deeper than MAX_DEPTH or holding more than MAX_VALUES values (a shared part
    counts once per use), before anything recurses into it; a cycle ends as nesting too deep."""
    count = 0
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        item, path = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ConfigError(f"{source}: more than {MAX_VALUES:,} values")
        if len(path) > MAX_DEPTH:
            raise ConfigError(f"{source}: {_dotted(path)}: nesting deeper than {MAX_DEPTH} levels "
                              "(a config needs at most 7)", key=_dotted(path))  # fmt: skip
        if isinstance(item, dict):
            stack.extend((value, (*path, key)) for key, value in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((value, (*path, i)) for i, value in enumerate(item))


def _unshared(data: Any) -> Any:
    """A copy in which no dict or list appears twice (YAML aliases and shared Python objects are copied)."""
    if isinstance(data, dict):
        return {key: _unshared(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_unshared(value) for value in data]
    return data


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else as given."""
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            pass
    return str(path)


# --- one line per validation error ---------------------------------------------------------------------


def _validate(data: dict, source: str, lines: dict[tuple, int], from_set: set[tuple]) -> Config:
    _check_size(data, source)  # --set can nest a file's values deeper
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        loc, tags = _clean_loc(first["loc"])
        if first["type"] == "snnlab" and "key" in first.get("ctx", {}):
            loc += tuple(int(p) if p.lstrip("-").isdigit() else p for p in first["ctx"]["key"].split("."))
        elif first["type"] == "union_tag_invalid":
            loc += ("type",)
        elif first["type"] == "missing" and loc and isinstance(loc[-1], int):
            loc = loc[:-1]  # a fixed-length list with too few items
        dotted = _dotted(loc)
        line = None if any(loc[: len(p)] == p for p in from_set) else _line_of(loc, lines)
        where = f"{source}:{line}" if line else source
        message = f"{where}: {dotted}: {_message(first, loc, tags)}"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        raise ConfigError(message, key=dotted, line=line) from None


def _line_of(loc: tuple, lines: dict[tuple, int]) -> int | None:
    """The line of ``loc``; for a key left out of a list item (a layer), the item's line."""
    if loc in lines:
        return lines[loc]
    if len(loc) > 1 and isinstance(loc[-2], int):
        return lines.get(loc[:-1])
    return None


def _clean_loc(loc: tuple) -> tuple[tuple, list[str]]:
    """Drop the union tags pydantic puts in locations (layer type, neuron switch/overrides)."""
    out: list[str | int] = []
    tags: list[str] = []
    for part in loc:
        after_layer = len(out) == 3 and out[:2] == ["model", "layers"] and isinstance(out[2], int)
        after_neuron = len(out) == 4 and out[:2] == ["model", "layers"] and out[3] == "neuron"
        if (after_layer and part in LAYERS) or (after_neuron and part in ("switch", "overrides")):
            tags.append(part)
            continue
        out.append(part)
    return tuple(out), tags


def _message(error: Any, loc: tuple, tags: list[str]) -> str:
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    got = f" (got {_show(value)})"
    if kind == "snnlab":
        return ctx["message"]
    if kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1], tags)
        hint = did_you_mean(loc[-1], allowed) or (f" (valid keys: {', '.join(allowed)})" if allowed else "")
        return f"unknown key '{_clip(str(loc[-1]), 60)}'{hint}"
    if kind == "missing":
        return f"too few items{got}" if isinstance(error["loc"][-1], int) else "missing required key"
    if kind == "union_tag_not_found":
        return f"a layer needs a type: one of {', '.join(LAYERS)}"
    if kind == "union_tag_invalid":
        tag = ctx.get("tag")
        hint = did_you_mean(tag, LAYERS) or f" (choose from: {', '.join(LAYERS)})"
        return f"unknown layer type '{_clip(str(tag), 60)}'{hint}"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        hint = did_you_mean(value, options) if isinstance(value, str) else ""
        return f"must be one of {', '.join(options)}{hint}{got}"
    if kind in ("bool_type", "bool_parsing") and "switch" in tags:
        return "must be true, false or a mapping of neuron settings" + got
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {_number(limit)}{got}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping of settings (key: value)" + got
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty" + got
    simple = {
        "int_parsing": "must be a number",
        "int_type": "must be a number",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "int_from_float": "must be a whole number",
        "finite_number": "must be a finite number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be a string",
        "list_type": "must be a list",
        "tuple_type": "must be a list",
        "too_short": f"must have at least {ctx.get('min_length')} items",
        "too_long": f"must have at most {ctx.get('max_length')} items",
    }
    if kind in simple:
        return simple[kind] + got
    text = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return text[:1].lower() + text[1:] + got


def _fields_at(loc: tuple, tags: list[str]) -> list[str]:
    """Field names of the section at ``loc`` (for did-you-mean on unknown keys)."""
    model: type[BaseModel] = Config
    for part in loc:
        if model is ModelConfig and part == "layers":
            continue  # the next part is the layer's index
        if isinstance(part, int) and model is ModelConfig and tags:
            model = LAYERS[tags[0]]  # the layer's class, from its union tag
        elif part == "neuron" and model in LAYERS.values():
            model = NeuronConfig
        else:
            annotation = getattr(model.model_fields.get(str(part)), "annotation", None)
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return []
            model = annotation
    return list(model.model_fields)


# --- presets -------------------------------------------------------------------------------------------


def find_preset(name_or_path: str | Path) -> Path:
    """A YAML file that exists, or the preset of that name in the presets folder."""
    text = str(name_or_path)
    shown = _clip_path(text)
    try:
        path = Path(text).expanduser()
        is_file, is_dir = path.is_file(), path.is_dir()
    except (OSError, RuntimeError) as exc:  # a name too long for the file system, ~user with no home
        raise ConfigError(f"{shown}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if is_file:
        return path
    if is_dir:
        raise ConfigError(f"{shown}: is a directory, not a YAML file")
    stem = text.removesuffix(".yaml").removesuffix(".yml")
    if "/" not in text and "\\" not in text:
        candidate = PRESETS_DIR / f"{stem}.yaml"
        if len(stem) < 200 and candidate.is_file():
            return candidate
        if not text.endswith((".yaml", ".yml")):
            names = [name for name, _ in list_presets()]
            hint = did_you_mean(stem, names) or f" (presets: {', '.join(names)})"
            raise ConfigError(f"no preset or file named '{shown}'{hint}")
    raise ConfigError(f"{shown}: file not found")


def list_presets() -> list[tuple[str, str]]:
    """``(name, description)`` of every preset in the presets folder, sorted by name."""
    rows = []
    for path in sorted(PRESETS_DIR.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            description = str(data.get("description", "")) if isinstance(data, dict) else ""
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            description = "(unreadable YAML)"
        rows.append((path.stem, " ".join(description.split())))
    return rows
