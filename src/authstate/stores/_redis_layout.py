"""Key names and value encodings of the Redis store (session layout 2).

Hash tags (the part of a key in ``{…}``) decide the Redis Cluster slot. Each atomic
operation is one Lua script whose keys share one tag; the tags are chosen so the load
still spreads over the cluster:

    P{u:<user>}:s            string   the user's sessions and refresh families  per-user slot
    P{u:<user>}:g            string   the user's revocation generation          per-user slot
    P{u:<user>}:r            hash     the user's live roles and claims          per-user slot
    P:K:<xxxx>               hash     key bucket: secret key -> <user>          65,536 buckets
    P:H:<xxxx>               hash     handle bucket: handle -> <user>           65,536 buckets
    P:c:<key>                string   a consumed refresh key -> <user> NUL handle  its own slot
    P{d<n>}:due              zset     users by their earliest session death, 16 shards
    P:f:<bucket>             zset     login failures of one bucket              its own slot
    P{g}:seq|log|until       string, zset, zset: the change log                one global slot
    P{g}:epoch               string   the change log's epoch id (random)        one global slot
    P{g}:layout              string   the session layout of this prefix ("2")   one global slot
    P{g}:fdue                zset     failure buckets by forget time            one global slot
    P{g}:key:<kid>, P{g}:kids         signing keys                              one global slot
    P{users}:u:<id>|n:<name>|ids      users (few, and created rarely)          one users slot

Why: every Redis key costs 60 to 90 bytes of its own (dict entry, object, name, expiry) and
a big hash or sorted set ~100 bytes per member, while a small hash stays a compact
listpack. So a session costs no key of its own: all of a user's records are one packed
string (``pack``; the scripts edit it in place), and the secret key and the handle find
their user through an entry in one of 65,536 small bucket hashes (listpacks up to some 3e7
sessions; beyond, a bucket becomes a plain hash and costs more, nothing breaks). Keys are
stored as their 32 raw bytes when they are the usual hex SHA-256 (``key_bytes``).

A user's records live in the user's slot, so logout-everywhere, listing, rotation and
live roles each touch one slot and run as one script. Lookups by key or handle go through
a bucket first; on a standalone Redis the script follows the bucket entry to the records
on the server (one round trip); on Redis Cluster, where a script stays in one slot, it
takes two. The records are the authority, bucket entries are hints: every script re-checks
the record's current key, so a stale entry finds nothing. A refresh key that rotation
consumed moves to ``P:c:<key>`` (it expires with the family), which is what reuse
detection finds.

Records have no Redis TTL: ``purge_expired`` deletes the dead ones, finding them through
the ``due`` shards (one member per user, scored by the user's earliest death), and with
them their bucket entries. ``<user>`` is the user id itself when it is short and plain,
else ``#`` and a SHA-256 prefix: a ``}`` or a megabyte inside a hash tag would otherwise
break the layout. Every other caller string is used only after the tag, where no character
has a meaning, and never in a pattern (no KEYS, no SCAN).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import zlib
from collections.abc import Mapping

from authstate.errors import StoreUnavailable
from authstate.stores.base import Change, ChangeKind, SessionRecord, StoredKey, UserRecord

_PLAIN_USER = re.compile(r"[A-Za-z0-9._@:+-]{1,64}")
DEFAULT_PREFIX = "authstate:"
_DUE_SHARDS = 16
_BUCKET_MASK = 0xFFFF  # 65,536 buckets each for keys and handles


def enc(text: str) -> bytes:
    # surrogatepass: an unpaired surrogate from a hostile JSON body still maps to bytes (and
    # matches nothing stored) instead of failing inside the driver.
    return text.encode("utf-8", "surrogatepass")


def dec(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def num(value: float) -> bytes:
    return repr(float(value)).encode()


def ms(unix: float) -> int:
    """Unix seconds as whole milliseconds for PEXPIREAT, rounded up (never early)."""
    return math.ceil(unix * 1000)


class Layout:
    """The key names of one store (one prefix)."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = enc(prefix)
        self.channel = self.prefix + b"changes"
        glob = self.prefix + b"{g}:"
        self.seq, self.log, self.until = glob + b"seq", glob + b"log", glob + b"until"
        self.epoch = glob + b"epoch"
        self.version = glob + b"layout"
        self.failing = glob + b"fdue"
        # The purge index grows with the number of users: sharded, so it spreads over the
        # cluster instead of loading one master.
        self.due_shards = [self.prefix + b"{d%d}:due" % shard for shard in range(_DUE_SHARDS)]
        # Layout 1 kept every session in one of these (see ``_redis_migrate``).
        self.old_expiry_shards = [self.prefix + b"{e%d}:exp" % shard for shard in range(16)]
        self.kids = glob + b"kids"
        self._key = glob + b"key:"
        self._user_tag = self.prefix + b"{u:"
        self._key_bucket, self._handle_bucket = self.prefix + b"K:", self.prefix + b"H:"
        self._consumed = self.prefix + b"c:"
        users = self.prefix + b"{users}:"
        self.user_ids = users + b"ids"
        self._user, self._username = users + b"u:", users + b"n:"

    @staticmethod
    def tag(user_id: str) -> bytes:
        """``<user>`` of the user's keys: what a bucket entry holds."""
        if _PLAIN_USER.fullmatch(user_id):
            return user_id.encode()
        return b"#" + hashlib.sha256(enc(user_id)).hexdigest()[:32].encode()

    def _tag(self, user_id: str) -> bytes:
        return self._user_tag + self.tag(user_id) + b"}:"

    def records_parts(self) -> tuple[bytes, bytes]:
        """How a script spells a user's records: ``head + tag + tail``."""
        return self._user_tag, b"}:s"

    def records_of(self, tag: bytes) -> bytes:
        return self._user_tag + tag + b"}:s"

    def records(self, user_id: str) -> bytes:
        return self._tag(user_id) + b"s"

    def due(self, tag: bytes) -> bytes:
        """The purge-index shard of the user with ``tag``."""
        return self.due_shards[zlib.crc32(tag) % _DUE_SHARDS]

    def key_bucket(self, key: bytes) -> bytes:
        """The bucket of a key in its stored form (``key_bytes``)."""
        return self._key_bucket + b"%04x" % (zlib.crc32(key) & _BUCKET_MASK)

    def handle_bucket(self, handle: bytes) -> bytes:
        return self._handle_bucket + b"%04x" % (zlib.crc32(handle) & _BUCKET_MASK)

    def consumed(self, key: bytes) -> bytes:
        return self._consumed + key

    def generation(self, user_id: str) -> bytes:
        return self._tag(user_id) + b"g"

    def grants(self, user_id: str) -> bytes:
        return self._tag(user_id) + b"r"

    def failures(self, bucket: str) -> bytes:
        return self.prefix + b"f:" + enc(bucket)

    def signing_key(self, kid: str) -> bytes:
        return self._key + enc(kid)

    def user(self, user_id: str) -> bytes:
        return self._user + enc(user_id)

    def username(self, name: str) -> bytes:
        return self._username + enc(name)


# -- records ----------------------------------------------------------------------------------
# A user's records string is a list of length-prefixed fields (a length below 255 in one
# byte, else 255 and four bytes big-endian): the user id, then RECORD_FIELDS fields per
# record in this order (1-based, as the scripts index them):
#   1 handle (``key_bytes``), 2 key (``key_bytes``), 3 kind ('s', 'r' or '=' and the name),
#   4 created_at, 5 last_seen_at, 6 expires_at,
#   7 idle_timeout, 8 roles JSON, 9 user agent, 10 ip, 11 data JSON, 12 generation,
#   13 claims JSON, 14 roles_version, 15 auth_time ('' for 0), 16 remember, 17 insertion number,
#   18 previous key ('' or '=' and its ``key_bytes``), 19 rotated_at ('' or a time).
# Times are IEEE doubles, 8 bytes little-endian (exact; Lua reads them with struct.unpack).
RECORD_FIELDS = 19
_DOUBLE = struct.Struct("<d")
_HEX_KEY = re.compile(rb"[0-9a-f]{64}")
_B64_ID = re.compile(rb"[A-Za-z0-9_-]{22}")


def key_bytes(text: str) -> bytes:
    """A secret key or a handle as stored: the 32 bytes of a hex SHA-256 (a key), the 16
    bytes of a canonical 22-character base64url id (a handle), else 0xFF and its UTF-8, a
    second 0xFF when that would be 16 or 32 bytes long. UTF-8 never contains 0xFF, so this is
    reversible (``key_text``) and two texts never share a stored form."""
    raw = enc(text)
    if len(raw) == 64 and _HEX_KEY.fullmatch(raw):
        return bytes.fromhex(text)
    if len(raw) == 22 and _B64_ID.fullmatch(raw):
        decoded = base64.urlsafe_b64decode(raw + b"==")
        if base64.urlsafe_b64encode(decoded)[:22] == raw:
            return decoded
    return b"\xff\xff" + raw if len(raw) in (15, 31) else b"\xff" + raw


def key_text(stored: bytes) -> str:
    if len(stored) == 32:
        return stored.hex()
    if len(stored) == 16:
        return base64.urlsafe_b64encode(stored)[:22].decode("ascii")
    return dec(stored.lstrip(b"\xff"))


_KINDS = {"session": b"s", "refresh": b"r"}
_KIND_NAMES = {code: name for name, code in _KINDS.items()}


def dbl(value: float) -> bytes:
    return _DOUBLE.pack(float(value))


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def record_fields(record: SessionRecord) -> list[bytes]:
    """A record's fields (``ins`` left 0: the create script numbers it)."""
    previous = record.previous_key
    return [
        key_bytes(record.handle),
        key_bytes(record.key),
        _KINDS.get(record.kind) or b"=" + enc(record.kind),
        dbl(record.created_at),
        dbl(record.last_seen_at),
        dbl(record.expires_at),
        dbl(record.idle_timeout),
        _compact(list(record.roles)),
        enc(record.user_agent),
        enc(record.ip),
        _compact(dict(record.data)),
        b"%d" % int(record.generation),
        _compact(dict(record.claims)),
        b"%d" % int(record.roles_version),
        dbl(record.auth_time) if record.auth_time else b"",
        b"1" if record.remember else b"0",
        b"0",
        b"" if previous is None else b"=" + key_bytes(previous),
        b"" if record.rotated_at is None else dbl(record.rotated_at),
    ]


def pack(fields: list[bytes]) -> bytes:
    out = bytearray()
    for field in fields:
        size = len(field)
        if size < 255:
            out.append(size)
        else:
            out.append(255)
            out += size.to_bytes(4, "big")
        out += field
    return bytes(out)


def unpack(blob: bytes) -> list[bytes]:
    fields, at, end = [], 0, len(blob)
    while at < end:
        size = blob[at]
        at += 1
        if size == 255:
            size = int.from_bytes(blob[at : at + 4], "big")
            at += 4
        fields.append(blob[at : at + size])
        at += size
    if at > end:
        raise ValueError("the last field runs past the end")
    return fields


# What decoding a damaged records string raises (a cut, a garbled field): the store reports
# it as StoreUnavailable (503), as any other store fault, never as an unexpected error.
_DAMAGE = (IndexError, ValueError, TypeError, struct.error)


def _damaged(exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(reason=f"Redis: a user's session records are damaged: {exc!r}")


def record_from(user_id: str, f: list[bytes], at: int = 0) -> SessionRecord:
    """The record whose fields start at ``f[at]``."""
    try:
        previous, rotated = f[at + 17], f[at + 18]
        return SessionRecord(
            key=key_text(f[at + 1]),
            handle=key_text(f[at]),
            user_id=user_id,
            kind=_KIND_NAMES.get(f[at + 2]) or dec(f[at + 2][1:]),
            created_at=_DOUBLE.unpack(f[at + 3])[0],
            last_seen_at=_DOUBLE.unpack(f[at + 4])[0],
            expires_at=_DOUBLE.unpack(f[at + 5])[0],
            idle_timeout=_DOUBLE.unpack(f[at + 6])[0],
            roles=tuple(json.loads(f[at + 7])),
            user_agent=dec(f[at + 8]),
            ip=dec(f[at + 9]),
            data=json.loads(f[at + 10]),
            generation=int(f[at + 11]),
            claims=json.loads(f[at + 12]),
            roles_version=int(f[at + 13]),
            auth_time=_DOUBLE.unpack(f[at + 14])[0] if f[at + 14] else 0.0,
            remember=f[at + 15] != b"0",
            previous_key=key_text(previous[1:]) if previous else None,
            rotated_at=_DOUBLE.unpack(rotated)[0] if rotated else None,
        )
    except _DAMAGE as exc:
        raise _damaged(exc) from exc


def records_from(blob: bytes | None) -> list[tuple[SessionRecord, int]]:
    """Every record of a user's records string, with its insertion number."""
    if not blob:
        return []
    try:
        f = unpack(blob)
        if len(f) % RECORD_FIELDS != 1:
            raise ValueError(f"{len(f)} fields")
        user_id = dec(f[0])
        return [
            (record_from(user_id, f, at), int(f[at + 16]))
            for at in range(1, len(f) - RECORD_FIELDS + 1, RECORD_FIELDS)
        ]
    except _DAMAGE as exc:
        raise _damaged(exc) from exc


def one_record(raw: list[bytes] | None) -> SessionRecord | None:
    """A script's answer ``{user id, field, …}`` as a record."""
    if not raw:
        return None
    try:
        user_id = dec(raw[0])
    except _DAMAGE as exc:
        raise _damaged(exc) from exc
    return record_from(user_id, raw, 1)


def many_records(raw: list[bytes]) -> list[SessionRecord]:
    """A script's answer ``{user id, fields of record 1, fields of record 2, …}``."""
    if not raw:
        return []
    try:
        user_id = dec(raw[0])
    except _DAMAGE as exc:
        raise _damaged(exc) from exc
    return [record_from(user_id, raw, at) for at in range(1, len(raw), RECORD_FIELDS)]


# -- values -----------------------------------------------------------------------------------
def change_body(change: Change) -> bytes:
    """A change as the publish script logs it, after ``<seq>|``."""
    return json.dumps([change.kind.value, change.value, change.until, change.generation]).encode()


def change_entry(raw: bytes) -> Change:
    """Parse a change-log entry or bus message: ``<seq>|<JSON body>``."""
    seq, body = raw.split(b"|", 1)
    kind, value, until, generation = json.loads(body)
    return Change(ChangeKind(kind), str(value), float(until), int(generation), int(seq))


def as_mapping(raw: Mapping[bytes, bytes] | list[bytes]) -> Mapping[bytes, bytes]:
    """HGETALL from a client is a dict; from a Lua script, a flat list."""
    if isinstance(raw, list):
        return dict(zip(raw[::2], raw[1::2], strict=True))
    return raw


def key_fields(key: StoredKey) -> list[bytes]:
    fields = [
        b"kid", enc(key.kid),
        b"alg", enc(key.alg),
        b"sealed_private", key.sealed_private,
        b"public_jwk", enc(key.public_jwk),
        b"created_at", num(key.created_at),
    ]  # fmt: skip
    if key.retire_after is not None:
        fields += [b"retire_after", num(key.retire_after)]
    return fields


def stored_key(f: Mapping[bytes, bytes]) -> StoredKey:
    retire = f.get(b"retire_after")
    return StoredKey(
        kid=dec(f[b"kid"]),
        alg=dec(f[b"alg"]),
        sealed_private=bytes(f[b"sealed_private"]),
        public_jwk=dec(f[b"public_jwk"]),
        created_at=float(f[b"created_at"]),
        retire_after=None if retire is None else float(retire),
    )


def user_fields(
    *,
    user_id: str | None = None,
    username: str | None = None,
    password_hash: str | None = None,
    roles: tuple[str, ...] | None = None,
    created_at: float | None = None,
    disabled: bool | None = None,
) -> list[bytes]:
    """Hash fields for the given (non-None) user attributes."""
    fields: list[bytes] = []
    if user_id is not None:
        fields += [b"id", enc(user_id)]
    if username is not None:
        fields += [b"username", enc(username)]
    if password_hash is not None:
        fields += [b"password_hash", enc(password_hash)]
    if roles is not None:
        fields += [b"roles", json.dumps(list(roles)).encode()]
    if created_at is not None:
        fields += [b"created_at", num(created_at)]
    if disabled is not None:
        fields += [b"disabled", b"1" if disabled else b"0"]
    return fields


def user_record(raw: Mapping[bytes, bytes] | list[bytes]) -> UserRecord:
    f = as_mapping(raw)
    return UserRecord(
        id=dec(f[b"id"]),
        username=dec(f[b"username"]),
        password_hash=dec(f[b"password_hash"]),
        roles=tuple(json.loads(f[b"roles"])),
        created_at=float(f[b"created_at"]),
        disabled=f[b"disabled"] == b"1",
    )
