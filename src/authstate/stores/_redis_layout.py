"""Key names and value encodings of the Redis store.

Hash tags (the part of a key in ``{…}``) decide the Redis Cluster slot. Each atomic
operation is one Lua script whose keys share one tag; the tags are chosen so the load
still spreads over the cluster:

    P{u:<user>}:s:<handle>   hash     a session or refresh family          per-user slot
    P{u:<user>}:i            zset     the user's handles by created_at     per-user slot
    P{u:<user>}:n            string   insertion counter (newest-first ties) per-user slot
    P{u:<user>}:g            string   the user's revocation generation     per-user slot
    P{u:<user>}:r            hash     the user's live roles and claims     per-user slot
    P:k:<key>                string   key -> [user, handle] (a pointer)    its own slot
    P:h:<handle>             string   handle -> user (a pointer)           its own slot
    P:f:<bucket>             zset     login failures of one bucket         its own slot
    P{g}:seq|log|until       string, zset, zset: the change log            one global slot
    P{g}:epoch               string   the change log's epoch id (random)   one global slot
    P{e<n>}:exp              zset     sessions by death time, 16 shards     16 slots
    P{g}:fdue                zset     failure buckets by forget time        one global slot
    P{g}:key:<kid>, P{g}:kids         signing keys                         one global slot
    P{users}:u:<id>|n:<name>|ids      users (few, and created rarely)     one users slot

A record lives in its user's slot, so logout-everywhere, listing and rotation each touch
one slot. Lookups by secret key or by handle cannot know the user, so they go through a
pointer first. On a standalone Redis a lookup by key follows the pointer inside one script
(one round trip) when the user id is plain, since the script can then spell the record's
name (``session_parts``); on Redis Cluster, where a script stays in one slot, and for
digest tags, which Lua cannot compute, it takes two. The record is the authority, pointers
are hints: every script re-checks the record's current key, so a stale pointer finds
nothing, and a pointer to a key the family has rotated away from is exactly the "consumed
key" that rotation needs for reuse detection (it expires with the family).

``<user>`` is the user id itself when it is short and plain, else ``#`` and a SHA-256
prefix: a ``}`` or a megabyte inside a hash tag would otherwise break the layout. Every
other caller string is used only after the tag, where no character has a meaning, and
never in a pattern (no KEYS, no SCAN).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from collections.abc import Mapping

from authstate.stores.base import Change, ChangeKind, SessionRecord, StoredKey, UserRecord

_PLAIN_USER = re.compile(r"[A-Za-z0-9._@:+-]{1,64}")
DEFAULT_PREFIX = "authstate:"
_EXPIRY_SHARDS = 16


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
        self.failing = glob + b"fdue"
        # The purge index grows with the number of sessions: sharded, so it spreads over
        # the cluster instead of loading one master.
        self.expiring_shards = [
            self.prefix + b"{e%d}:exp" % shard for shard in range(_EXPIRY_SHARDS)
        ]
        self.kids = glob + b"kids"
        self._key = glob + b"key:"
        self._user_tag = self.prefix + b"{u:"
        users = self.prefix + b"{users}:"
        self.user_ids = users + b"ids"
        self._user, self._username = users + b"u:", users + b"n:"

    def _tag(self, user_id: str) -> bytes:
        if _PLAIN_USER.fullmatch(user_id):
            return self._user_tag + user_id.encode() + b"}:"
        digest = hashlib.sha256(enc(user_id)).hexdigest()[:32]
        return self._user_tag + b"#" + digest.encode() + b"}:"

    def session_parts(self) -> tuple[bytes, bytes]:
        """How a script spells a record's name: ``(head, tail)``.

        For a plain user id (``_PLAIN_USER``, mirrored in ``_redis_scripts``),
        ``session(user_id, handle) == head + user_id + tail + handle``.
        """
        return self._user_tag, b"}:s:"

    def expiring(self, handle: str) -> bytes:
        """The purge-index shard of the session with ``handle``."""
        return self.expiring_shards[zlib.crc32(enc(handle)) % _EXPIRY_SHARDS]

    def session(self, user_id: str, handle: str) -> bytes:
        return self._tag(user_id) + b"s:" + enc(handle)

    def index(self, user_id: str) -> bytes:
        return self._tag(user_id) + b"i"

    def counter(self, user_id: str) -> bytes:
        return self._tag(user_id) + b"n"

    def generation(self, user_id: str) -> bytes:
        return self._tag(user_id) + b"g"

    def grants(self, user_id: str) -> bytes:
        return self._tag(user_id) + b"r"

    def key_pointer(self, key: str) -> bytes:
        return self.prefix + b"k:" + enc(key)

    def handle_pointer(self, handle: str) -> bytes:
        return self.prefix + b"h:" + enc(handle)

    def failures(self, bucket: str) -> bytes:
        return self.prefix + b"f:" + enc(bucket)

    def signing_key(self, kid: str) -> bytes:
        return self._key + enc(kid)

    def user(self, user_id: str) -> bytes:
        return self._user + enc(user_id)

    def username(self, name: str) -> bytes:
        return self._username + enc(name)


# -- values -----------------------------------------------------------------------------------
def pointer(user_id: str, handle: str) -> bytes:
    """What a key pointer and an expiry-index member hold: JSON, unambiguous for any text."""
    return json.dumps([user_id, handle]).encode()


def from_pointer(raw: bytes) -> tuple[str, str]:
    user_id, handle = json.loads(raw)
    return str(user_id), str(handle)


def change_body(change: Change) -> bytes:
    """A change as the publish script logs it, after ``<seq>|``."""
    return json.dumps([change.kind.value, change.value, change.until, change.generation]).encode()


def change_entry(raw: bytes) -> Change:
    """Parse a change-log entry or bus message: ``<seq>|<JSON body>``."""
    seq, body = raw.split(b"|", 1)
    kind, value, until, generation = json.loads(body)
    return Change(ChangeKind(kind), str(value), float(until), int(generation), int(seq))


def session_fields(record: SessionRecord) -> list[bytes]:
    fields = [
        b"key", enc(record.key),
        b"handle", enc(record.handle),
        b"user_id", enc(record.user_id),
        b"kind", enc(record.kind),
        b"created_at", num(record.created_at),
        b"last_seen_at", num(record.last_seen_at),
        b"expires_at", num(record.expires_at),
        b"idle_timeout", num(record.idle_timeout),
        b"roles", json.dumps(list(record.roles)).encode(),
        b"user_agent", enc(record.user_agent),
        b"ip", enc(record.ip),
        b"data", json.dumps(dict(record.data)).encode(),
        b"generation", str(int(record.generation)).encode(),
        b"claims", json.dumps(dict(record.claims)).encode(),
        b"roles_version", str(int(record.roles_version)).encode(),
        b"auth_time", num(record.auth_time),
        b"remember", b"1" if record.remember else b"0",
    ]  # fmt: skip
    if record.previous_key is not None:
        fields += [b"previous_key", enc(record.previous_key)]
    if record.rotated_at is not None:
        fields += [b"rotated_at", num(record.rotated_at)]
    return fields


def as_mapping(raw: Mapping[bytes, bytes] | list[bytes]) -> Mapping[bytes, bytes]:
    """HGETALL from a client is a dict; from a Lua script, a flat list."""
    if isinstance(raw, list):
        return dict(zip(raw[::2], raw[1::2], strict=True))
    return raw


def session_record(raw: Mapping[bytes, bytes] | list[bytes]) -> SessionRecord:
    f = as_mapping(raw)
    previous = f.get(b"previous_key")
    rotated = f.get(b"rotated_at")
    return SessionRecord(
        key=dec(f[b"key"]),
        handle=dec(f[b"handle"]),
        user_id=dec(f[b"user_id"]),
        kind=dec(f[b"kind"]),
        created_at=float(f[b"created_at"]),
        last_seen_at=float(f[b"last_seen_at"]),
        expires_at=float(f[b"expires_at"]),
        idle_timeout=float(f[b"idle_timeout"]),
        roles=tuple(json.loads(f[b"roles"])),
        user_agent=dec(f[b"user_agent"]),
        ip=dec(f[b"ip"]),
        data=json.loads(f[b"data"]),
        previous_key=None if previous is None else dec(previous),
        rotated_at=None if rotated is None else float(rotated),
        generation=int(f[b"generation"]),
        # Absent in records written before live roles existed.
        claims=json.loads(f.get(b"claims", b"{}")),
        roles_version=int(f.get(b"roles_version", b"0")),
        # Absent in records written before step-up and remember-me existed.
        auth_time=float(f.get(b"auth_time", b"0")),
        remember=f.get(b"remember", b"1") != b"0",
    )


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
