"""Text that came from a peer, kept safe for terminals and log files.

An agent's host, address and labels, a NACK reason, an alert message: whatever a remote process
says ends up in `sluice agents`, the TUI and the log. An escape sequence (ESC [2J clears the
screen) or a newline (a forged log line) there is an attack on whoever reads it. Two defences:

- on ingest, identity fields must be printable (`require_printable` refuses the message with a
  clear InvalidInput) and free text is made printable (`printable` escapes what is not);
- on output, the CLI and the TUI escape again (`printable`), so text stored before this check, or
  reached through another path, still cannot drive the terminal.

"Printable" is Python's `str.isprintable()`: letters, digits, punctuation and symbols of any
script and the plain space; no control characters (C0, DEL, C1), no line or paragraph separators,
no format characters (the bidirectional overrides of "Trojan Source" among them).
"""

from __future__ import annotations

from core.errors import InvalidInput

#: the common control characters as their usual backslash escapes; any other as \\xNN or \\uNNNN
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """`text` with every character that is not printable replaced by its backslash escape."""
    if text.isprintable():
        return text  # the usual case: no copy
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def require_printable(what: str, text: str) -> str:
    """`text` unchanged when it is printable; InvalidInput naming the field and the character otherwise."""
    if text.isprintable():
        return text
    position, char = next((i, c) for i, c in enumerate(text) if not c.isprintable())
    raise InvalidInput(
        f"{what} must be printable text: character {position} is {_escape(char)} "
        f"(control characters, newlines and escape sequences are refused): '{printable(text[:80])}'"
    )
