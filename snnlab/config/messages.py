"""How a config error reads: one printable line that names where and what, with a did-you-mean.

:class:`ConfigError` is what every user mistake ends in; the helpers here quote what the user wrote,
short and safe for a terminal. Nothing here knows the schema or reads a file.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticCustomError


class ConfigError(Exception):
    """A config the user can fix. ``str()`` is one printable line of at most :data:`MAX_MESSAGE` characters;
    ``key`` and ``line`` say where, when known."""

    def __init__(self, message: str, *, key: str | None = None, line: int | None = None) -> None:
        # Whatever a message quotes from the input, it must not break the line or drive the terminal.
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in " ".join(message.split()))
        super().__init__(_clip(text, MAX_MESSAGE))
        self.key = key
        self.line = line


MAX_MESSAGE = 400
# How far a config may nest and how many values it may hold once YAML aliases are expanded. The deepest
# setting (model.layers.0.neuron.surrogate_params.alpha) is 7 levels down; 100,000 values hold per-neuron
# lists for layers far larger than a lab trains, and bound the work of reading a file (an alias bomb).
# They are defined here, below schema and loading, because quoting a value (_values_in) stops at MAX_DEPTH too.
MAX_DEPTH = 20
MAX_VALUES = 100_000


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or ``""`` when none is close."""
    match = difflib.get_close_matches(str(word)[:100], list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def _fail(message: str, key: str | None = None) -> PydanticCustomError:
    """A validation error with our own message; ``key`` (dotted) extends its location below the field."""
    context = {"message": message} if key is None else {"message": message, "key": str(key)}
    return PydanticCustomError("snnlab", "{message}", context)


def _show(value: Any) -> str:
    """A value as the user wrote it, short: 'text', -1, true, null, [1, 2], {beta: 2.0}."""
    if isinstance(value, str):
        text = repr(value[:100])
    elif value is None or isinstance(value, bool):
        text = {None: "null", True: "true", False: "false"}[value]
    elif isinstance(value, int) and value.bit_length() > 200:
        text = f"a number of about {int(value.bit_length() * math.log10(2)):,} digits"  # str() refuses huge ints
    elif isinstance(value, dict | list | tuple):
        text = _show_collection(value)
    else:
        text = repr(value)
    return _clip(text, 60)


def _show_collection(value: dict | list | tuple) -> str:
    if _values_in(value, limit=100) > 100:  # large, deeply nested or cyclic: say what it is, not all of it
        return f"a list of {len(value)} items" if isinstance(value, list | tuple) else f"a mapping of {len(value)} keys"
    try:
        return yaml.safe_dump(_plain(value), default_flow_style=True, width=10**6).strip()
    except (yaml.YAMLError, ValueError):
        return repr(value)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with "..." when it was longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clip_path(text: str, limit: int = 80) -> str:
    """A path cut to ``limit`` characters from its start, keeping the file name."""
    return text if len(text) <= limit else "..." + text[3 - limit :]


def _values_in(value: Any, limit: int) -> int:
    """How many values ``value`` holds, counting nested ones and shared ones each time they occur, up to just
    past ``limit`` (a level deeper than ``MAX_DEPTH`` counts as past it: that is also how a cycle ends)."""
    count, stack = 0, [(value, 0)]
    while stack and count <= limit:
        item, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            return limit + 1
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
            count += len(item)  # the keys
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)
    return count


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _dotted(path: tuple) -> str:
    return _clip(".".join(str(part)[:40] for part in path), 100) or "(top level)"


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false"}.get(
        type(value), type(value).__name__
    )
