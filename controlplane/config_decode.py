"""TOML tables into the configuration's dataclasses, by their type hints.

`decode(cls, table, path)` builds `cls` from a table: every key must be a field, every value of
the field's type (nested dataclasses, lists, bool, int, float, str; numbers not negative); an
error names the key by its dotted path. It knows no section: the checks across keys are
`config.py`'s.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Union, get_args, get_origin, get_type_hints

from core.errors import InvalidInput


def decode(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise InvalidInput(f"config: {where or 'top level'} must be a table")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in known:
            raise InvalidInput(f"config: unknown key {path!r} (known: {', '.join(sorted(known))})")
        values[key] = _convert(hints[key], value, path)
    return cls(**values)


def _convert(hint: Any, value: Any, path: str) -> Any:
    origin = get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return decode(hint, value, path)
    if origin is list:
        (item,) = get_args(hint)
        if not isinstance(value, list):
            raise InvalidInput(f"config: {path} must be a list")
        return [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (Union, types.UnionType):
        raise InvalidInput(f"config: {path} has an unsupported type")
    if hint is bool:
        if not isinstance(value, bool):
            raise InvalidInput(f"config: {path} must be true or false, not {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"config: {path} must be a number, not {value!r}")
        if value < 0:
            raise InvalidInput(f"config: {path} must not be negative, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"config: {path} must be a whole number, not {value!r}")
        if value < 0:
            raise InvalidInput(f"config: {path} must not be negative, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise InvalidInput(f"config: {path} must be a string, not {value!r}")
        return value
    raise InvalidInput(f"config: {path} has an unsupported type")
