"""How authstate records map to PostgreSQL rows (the store's one translation layer).

Caller strings pass through ``to_db``/``from_db``: a ``text`` column cannot hold NUL or an
unpaired surrogate, yet a store must keep (or at least safely not match) whatever a hostile
request carries. The escape is injective and leaves ordinary text (hex keys, ids, names)
unchanged, so the tables stay readable and every lookup compares stored forms. JSON goes in
``text`` columns rather than ``jsonb``, which refuses ``\\u0000``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from authstate.stores.base import Change, ChangeKind, SessionRecord, StoredKey, UserRecord

# A reversible escape that leaves ordinary text (hex keys, ids, names) unchanged and readable:
# backslash -> \\, NUL -> \0, an unpaired surrogate -> \uXXXX.
_UNSAFE = re.compile(r"[\\\x00\ud800-\udfff]")
_ESCAPED = re.compile(r"\\(\\|0|u[0-9a-f]{4})")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    if char == "\x00":
        return "\\0"
    return f"\\u{ord(char):04x}"


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code == "\\":
        return "\\"
    if code == "0":
        return "\x00"
    return chr(int(code[1:], 16))


def to_db(text: str) -> str:
    """Caller text as it is stored and compared (injective, identity for ordinary text)."""
    return _UNSAFE.sub(_escape, text)


def from_db(text: str) -> str:
    return _ESCAPED.sub(_unescape, text) if "\\" in text else text


def opt_to_db(text: str | None) -> str | None:
    return None if text is None else to_db(text)


def opt_from_db(text: str | None) -> str | None:
    return None if text is None else from_db(text)


# -- records <-> rows ------------------------------------------------------------------------
def session_row(record: SessionRecord) -> tuple[Any, ...]:
    return (
        to_db(record.key),
        to_db(record.handle),
        to_db(record.user_id),
        to_db(record.kind),
        record.created_at,
        record.last_seen_at,
        record.expires_at,
        record.idle_timeout,
        json.dumps(list(record.roles)),
        to_db(record.user_agent),
        to_db(record.ip),
        json.dumps(dict(record.data)),
        opt_to_db(record.previous_key),
        record.rotated_at,
        record.generation,
        json.dumps(dict(record.claims)),
        record.roles_version,
        record.auth_time,
        record.remember,
    )


def session(row: Any) -> SessionRecord:
    return SessionRecord(
        key=from_db(row["key"]),
        handle=from_db(row["handle"]),
        user_id=from_db(row["user_id"]),
        kind=from_db(row["kind"]),
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        expires_at=row["expires_at"],
        idle_timeout=row["idle_timeout"],
        roles=tuple(json.loads(row["roles"])),
        user_agent=from_db(row["user_agent"]),
        ip=from_db(row["ip"]),
        data=json.loads(row["data"]),
        previous_key=opt_from_db(row["previous_key"]),
        rotated_at=row["rotated_at"],
        generation=row["generation"],
        claims=json.loads(row["claims"]),
        roles_version=row["roles_version"],
        auth_time=row["auth_time"],
        remember=row["remember"],
    )


def change(row: Any) -> Change:
    return Change(
        kind=ChangeKind(row["kind"]),
        value=from_db(row["value"]),
        until=row["until"],
        generation=row["generation"],
        seq=row["seq"],
    )


def user(row: Any) -> UserRecord:
    return UserRecord(
        id=from_db(row["id"]),
        username=from_db(row["username"]),
        password_hash=from_db(row["password_hash"]),
        roles=tuple(json.loads(row["roles"])),
        created_at=row["created_at"],
        disabled=row["disabled"],
    )


def stored_key(row: Any) -> StoredKey:
    return StoredKey(
        kid=from_db(row["kid"]),
        alg=from_db(row["alg"]),
        sealed_private=bytes(row["sealed_private"]),
        public_jwk=from_db(row["public_jwk"]),
        created_at=row["created_at"],
        retire_after=row["retire_after"],
    )


def affected(status: str) -> int:
    """The row count of an asyncpg command tag, e.g. 3 for "DELETE 3"."""
    return int(status.rsplit(" ", 1)[-1])
