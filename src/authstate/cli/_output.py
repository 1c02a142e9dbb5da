"""What the commands print: every string from a user or a request goes through ``printable``.

User names, roles, User-Agents and IPs come from people we do not trust; printed raw, a
C1 ``CSI`` (U+009B) or an ESC would drive the operator's terminal, and a bidi override
(U+202E) would make one name read as another.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: object) -> str:
    """``text`` with every non-printable character written as a visible escape (``\\x9b``,
    ``\\u202e``): C0 and C1 controls, DEL, tabs and newlines, bidi controls and other
    format characters (Unicode categories Cc, Cf, Z* except the space, unassigned)."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def say(text: str) -> None:
    """Print one line made printable."""
    print(printable(text))


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Columns padded to their widest cell, every cell made printable; the last column is
    not padded."""
    cells = [[printable(cell) for cell in row] for row in (headers, *rows)]
    widths = [max(len(cell) for cell in column) for column in zip(*cells, strict=True)]
    for row in cells:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
