"""How the CLI speaks: tables for people, JSON for scripts, one line on stderr for errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from core.text import printable

# Exit codes, stable for scripts, cron and CI (README "Exit codes"). 1 is any other error, including
# those found before any call (a bad file, a bad name).
EXIT_ERROR = 1
EXIT_USAGE = 2  # argparse: a missing or malformed argument
EXIT_UNAVAILABLE = 3  # the server cannot be reached (or its database is down): worth retrying
EXIT_NOT_FOUND = 4  # no such model, version, deployment, experiment, alert
EXIT_REFUSED = 5  # the server refused the request as invalid or not possible in this state
EXIT_CONFLICT = 6  # a concurrent change won (stale --expected-generation) or the name is taken
EXIT_PERMISSION = 7  # no token, an unknown one, or a role that may not do this
EXIT_NOT_APPLIED = 8  # --wait: committed, but agents refused it or did not apply it in --timeout
EXIT_WARNING = 9  # status --check: the worst deployment shown is warning
EXIT_CRITICAL = 10  # status --check: a deployment shown is critical


class CliError(Exception):
    """A message for the user; the CLI prints it on one line and exits with `exit_code` (default 1)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


_INT64 = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)


_FLOATS = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})


def _as_float(value: Any) -> float | None:
    """MessageToDict writes NaN and infinities as strings; no value is null, the rest stay numbers."""
    return None if isinstance(value, str) else value


def _plain_numbers(message: Message, data: dict[str, Any]) -> dict[str, Any]:
    """MessageToDict writes 64-bit integers as strings (for JavaScript); scripts want numbers.

    Ours never come near 2**53, so they stay exact as JSON numbers. A float that is NaN (no value
    yet, e.g. accuracy without labels) or infinite becomes null, so a field is never sometimes a string.
    """
    for field in message.DESCRIPTOR.fields:
        if field.name not in data:
            continue
        value = getattr(message, field.name)
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            inner = entry.fields_by_name["value"]
            if inner.type in _INT64:
                data[field.name] = {k: int(v) for k, v in data[field.name].items()}
            elif inner.message_type is not None and not inner.message_type.full_name.startswith("google.protobuf."):
                for key, sub in value.items():
                    _plain_numbers(sub, data[field.name][str(key)])
        elif field.type in _INT64:
            raw = data[field.name]
            data[field.name] = [int(v) for v in raw] if field.is_repeated else int(raw)
        elif field.type in _FLOATS:
            raw = data[field.name]
            data[field.name] = [_as_float(v) for v in raw] if field.is_repeated else _as_float(raw)
        elif entry is not None and not entry.full_name.startswith("google.protobuf."):
            if field.is_repeated:
                for sub, sub_data in zip(value, data[field.name], strict=True):
                    _plain_numbers(sub, sub_data)
            else:
                _plain_numbers(value, data[field.name])
    return data


def to_jsonable(value: Any) -> Any:
    if isinstance(value, Message):
        data = MessageToDict(value, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
        return _plain_numbers(value, data)
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    json.dump(to_jsonable(value), sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "(none)") -> None:
    """Cells are escaped (`core.text.printable`): what an agent or a server says cannot move the
    cursor, clear the screen or start a new line in the terminal."""
    rows = [[printable(str(c)) for c in row] for row in rows]
    if not rows:
        print(empty)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def when(ts: Timestamp) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")


def ago(ts: Timestamp) -> str:
    if not ts.seconds:
        return "never"
    seconds = (datetime.now(UTC) - ts.ToDatetime(tzinfo=UTC)).total_seconds()
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def vref(message: Any) -> str:
    return f"{message.model}:{message.version}" if message.model else "-"


def shape(spec: Any) -> str:
    return "[" + ", ".join("?" if d < 0 else str(d) for d in spec.shape) + "]"


def fmt(value: float, digits: int = 3) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:.{digits}f}"
