"""Pages of list RPCs (ListAgents, ListAlerts): page sizes and page tokens.

A page token is opaque to clients; to the server it is the position of the last item returned in
the list's order (keyset pagination), so inserts and deletes between two pages neither repeat
nor skip an item that stays. A token names its list, so one list's token is refused by another.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from core.errors import InvalidInput

MAX_TOKEN = 1024  # characters: a real token is far shorter


def page_size(requested: int, maximum: int) -> int:
    """0 means the server's page size; more than the maximum is lowered to it."""
    return maximum if requested <= 0 else min(requested, maximum)


def encode_token(kind: str, *position: str | int) -> str:
    text = json.dumps([kind, *position], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_token(kind: str, token: str, *types: type) -> list[Any] | None:
    """The position in a `kind` token (None for ""), each part of the given type."""
    if not token:
        return None
    bad = InvalidInput(
        f"page_token is not one of {kind} this server gave out; pass the next_page_token of the previous "
        f"{kind} answer, or none for the first page"
    )
    if len(token) > MAX_TOKEN:
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(data, list) or len(data) != len(types) + 1 or data[0] != kind:
        raise bad
    position = data[1:]
    # bool is an int in Python: a token holding `true` is not a position
    if not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(position, types, strict=True)):
        raise bad
    return position
