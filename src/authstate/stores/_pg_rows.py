"""How authstate records map to PostgreSQL rows (the store's one translation layer).

Caller strings pass through ``to_db``/``from_db``: a ``text`` column cannot hold NUL or an
unpaired surrogate, yet a store must keep (or at least safely not match) whatever a hostile
request carries. The escape is injective and leaves ordinary text (hex keys, ids, names)
unchanged, so the tables stay readable and every lookup compares stored forms. JSON goes in
``text`` columns rather than ``jsonb``, which refuses ``\\u0000``.

The sessions table is laid out for size (schema 4): session keys and handles are stored as
the bytes they spell (``key_to_db``, ``handle_to_db``), the kind as one ``"char"``, and the
values most rows share as NULL (a bit in the row header instead of 3 to 8 bytes): a zero
generation or roles version, an ``auth_time`` equal to ``created_at``, empty ``data`` and
``claims``. The translation is exact: a record reads back equal to what was written.
"""

from __future__ import annotations

import base64
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


# -- session keys and handles as bytes -------------------------------------------------------
# A key is the lowercase hex SHA-256 of a secret and a handle 22 base64url characters (16
# bytes); those are stored as their 32 and 16 bytes. Any other text (tests, hand-made
# records, a hostile handle in a URL) is stored as 0xFF + its escaped UTF-8, with a second
# 0xFF when that would have the length of a decoded value. UTF-8 never contains 0xFF, so
# the mapping is injective and the length alone tells the two apart.
_B64_HANDLE = re.compile(r"[A-Za-z0-9_-]{21}[AQgw]")  # canonical: unused bits zero
_KEY_BYTES = 32
_HANDLE_BYTES = 16


def _other_to_db(text: str, decoded_length: int) -> bytes:
    data = to_db(text).encode("utf-8")
    return (b"\xff\xff" if len(data) + 1 == decoded_length else b"\xff") + data


def _other_from_db(raw: bytes) -> str:
    return from_db(raw.lstrip(b"\xff").decode("utf-8"))


def key_to_db(key: str) -> bytes:
    if len(key) == 64:
        try:
            raw = bytes.fromhex(key)
        except ValueError:
            pass
        else:
            # fromhex also takes capitals and spaces: only the canonical spelling decodes.
            if len(raw) == _KEY_BYTES and raw.hex() == key:
                return raw
    return _other_to_db(key, _KEY_BYTES)


def key_from_db(raw: bytes) -> str:
    return raw.hex() if len(raw) == _KEY_BYTES else _other_from_db(raw)


def opt_key_to_db(key: str | None) -> bytes | None:
    return None if key is None else key_to_db(key)


def opt_key_from_db(raw: bytes | None) -> str | None:
    return None if raw is None else key_from_db(raw)


def handle_to_db(handle: str) -> bytes:
    if len(handle) == 22 and _B64_HANDLE.fullmatch(handle):
        return base64.urlsafe_b64decode(handle + "==")
    return _other_to_db(handle, _HANDLE_BYTES)


def handle_from_db(raw: bytes) -> str:
    if len(raw) == _HANDLE_BYTES:
        return base64.urlsafe_b64encode(raw)[:22].decode("ascii")
    return _other_from_db(raw)


def opt_handle_to_db(handle: str | None) -> bytes | None:
    return None if handle is None else handle_to_db(handle)


_KINDS = {"session": b"s", "refresh": b"r"}
_KIND_NAMES = {code: name for name, code in _KINDS.items()}


def kind_to_db(kind: str) -> bytes:
    try:
        return _KINDS[kind]
    except KeyError:
        raise ValueError(
            f"the PostgreSQL store keeps sessions and refresh families, not {kind!r}"
        ) from None


def opt_kind_to_db(kind: str | None) -> bytes | None:
    # A kind no record can have matches nothing ("?" is never stored).
    return None if kind is None else _KINDS.get(kind, b"?")


def json_or_null(value: Any) -> str | None:
    """JSON text of a mapping, NULL for an empty one (the common case costs no bytes)."""
    return json.dumps(dict(value)) if value else None


# The roles of a row as a tuple, by their JSON text: a few distinct role sets serve every
# session, and a tuple of strings can be shared. Emptied when full.
_ROLES: dict[str, tuple[str, ...]] = {}
_ROLES_ENTRIES = 1024


def roles(text: str) -> tuple[str, ...]:
    found = _ROLES.get(text)
    if found is None:
        found = tuple(json.loads(text))
        if len(_ROLES) >= _ROLES_ENTRIES:
            _ROLES.clear()
        _ROLES[text] = found
    return found


def mapping(text: str | None) -> dict[str, Any]:
    """The mapping of a JSON column that stores {} as NULL."""
    return {} if text is None else dict(json.loads(text))


# -- records <-> rows ------------------------------------------------------------------------
# The column order of the table (widest fixed-size first: no alignment padding) and of
# ``session_row``.
SESSION_COLUMNS = (
    "created_at, last_seen_at, expires_at, idle_timeout, generation, roles_version, auth_time,"
    " rotated_at, remember, kind, key, handle, user_id, roles, user_agent, ip, data, claims,"
    " previous_key"
)


def session_row(record: SessionRecord) -> tuple[Any, ...]:
    return (
        record.created_at,
        record.last_seen_at,
        record.expires_at,
        record.idle_timeout,
        record.generation or None,
        record.roles_version or None,
        None if record.auth_time == record.created_at else record.auth_time,
        record.rotated_at,
        record.remember,
        kind_to_db(record.kind),
        key_to_db(record.key),
        handle_to_db(record.handle),
        to_db(record.user_id),
        json.dumps(list(record.roles)),
        to_db(record.user_agent),
        to_db(record.ip),
        json_or_null(record.data),
        json_or_null(record.claims),
        opt_key_to_db(record.previous_key),
    )


def session(row: Any, key: str | None = None) -> SessionRecord:
    """The record of a row (``key``: the key it was found by, saving its decoding)."""
    created_at = row["created_at"]
    auth_time = row["auth_time"]
    user_agent = row["user_agent"]
    ip = row["ip"]
    return SessionRecord(
        key=key_from_db(row["key"]) if key is None else key,
        handle=handle_from_db(row["handle"]),
        user_id=from_db(row["user_id"]),
        kind=_KIND_NAMES[row["kind"]],
        created_at=created_at,
        last_seen_at=row["last_seen_at"],
        expires_at=row["expires_at"],
        idle_timeout=row["idle_timeout"],
        roles=roles(row["roles"]),
        user_agent=from_db(user_agent) if "\\" in user_agent else user_agent,
        ip=from_db(ip) if "\\" in ip else ip,
        data=mapping(row["data"]),
        previous_key=opt_key_from_db(row["previous_key"]),
        rotated_at=row["rotated_at"],
        generation=row["generation"] or 0,
        claims=mapping(row["claims"]),
        roles_version=row["roles_version"] or 0,
        auth_time=created_at if auth_time is None else auth_time,
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
