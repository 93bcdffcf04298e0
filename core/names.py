"""Validation of the names people type: models, versions, deployments, experiments."""

from __future__ import annotations

import re

from core.errors import InvalidInput

NAME_LENGTH = 128

# Letters, digits and . _ - ; must start with a letter or digit. No spaces, no slashes, so a
# name is safe in a path, a URL and a shell command. Matched with fullmatch: `$` alone would let
# a trailing newline through.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def validate_name(kind: str, value: str) -> str:
    if not value:
        raise InvalidInput(f"{kind} name is empty")
    if len(value) > NAME_LENGTH:
        raise InvalidInput(f"{kind} name is {len(value)} characters long; the limit is {NAME_LENGTH}")
    if not _NAME.fullmatch(value):
        # Printable characters as typed (é stays é), control characters escaped (a NUL shows as \x00).
        shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in value)
        raise InvalidInput(
            f"{kind} name '{shown}' may only contain letters, digits, '.', '_' and '-' "
            "and must start with a letter or digit"
        )
    return value


def parse_version_ref(text: str) -> tuple[str, str]:
    """'MODEL:VERSION' -> (model, version), both validated."""
    model, sep, version = text.partition(":")
    if not sep or ":" in version:
        raise InvalidInput(f"{text!r} is not MODEL:VERSION (one ':' between the model and the version)")
    return validate_name("model", model), validate_name("version", version)


def format_ref(model: str, version: str) -> str:
    return f"{model}:{version}"
