"""Checks on what an agent sends: its id, its labels, the generations and digests it names.

Pure functions, no database: an agent's Hello, ACK or NACK that fails one is refused whole
(INVALID_ARGUMENT) before anything is recorded; digests that are not well formed are dropped
(they mean "unknown"). `agents.py` calls them before it records anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.errors import InvalidInput
from core.names import NAME_LENGTH, validate_name
from core.text import printable, require_printable

# What one agent may carry in labels: a few short key=value pairs (zone, rack, gpu), bounded so
# that one agent record stays small whatever its Hello says.
MAX_LABELS = 32
MAX_LABEL_KEY = 63
MAX_LABEL_VALUE = 255
MAX_LABELS_TEXT = 4096  # all keys and values together, in characters
_AGENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def check_agent_id(agent_id: str) -> None:
    if not _AGENT_ID.fullmatch(agent_id):
        raise InvalidInput(
            "Hello.agent_id must be 1-64 letters, digits, '.', '_' or '-' (the agent keeps it in its cache)"
        )


def check_labels(labels: Mapping[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise InvalidInput(f"an agent may carry at most {MAX_LABELS} labels, got {len(labels)}")
    for key, value in labels.items():
        if not key or len(key) > MAX_LABEL_KEY or len(value) > MAX_LABEL_VALUE:
            raise InvalidInput(
                f"label '{printable(key[:40])}': keys must be 1-{MAX_LABEL_KEY} characters "
                f"and values at most {MAX_LABEL_VALUE}"
            )
        require_printable("a Hello label key", key)
        require_printable(f"the Hello label '{key}'", value)
    total = sum(len(k) + len(v) for k, v in labels.items())
    if total > MAX_LABELS_TEXT:
        raise InvalidInput(
            f"an agent's labels are {total} characters together; the limit is {MAX_LABELS_TEXT}"
        )


def clean_digests(digests: Mapping[str, str]) -> dict[str, str]:
    """Digests as an agent sent them: only well-formed ones (anything else means "unknown")."""
    return {d: v for d, v in digests.items() if len(d) <= NAME_LENGTH and _DIGEST.fullmatch(v)}


def check_generations(generations: Mapping[str, int]) -> None:
    """An ACK or NACK naming an impossible deployment or generation is refused as a whole."""
    for deployment, generation in generations.items():
        validate_name("deployment", deployment)
        if generation < 0:
            raise InvalidInput(f"the generation of {deployment!r} is {generation}; generations are >= 0")
