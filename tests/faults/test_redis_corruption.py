"""A user's packed records string in Redis is damaged (truncated, a field garbled) under
running ``authstate serve`` nodes: every request touching it answers 401 or 503, never a
500 and never another user; other users are unaffected.

Session layout 2 keeps all of a user's sessions in one length-prefixed string
(``_redis_layout``). Damage there is what a partial restore, a hand edit or a bug leaves
behind; the store must report it as unavailable (503), as it does for any other fault.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.cli.serve_process import Served
from tests.conftest import REDIS_URL
from tests.multinode.nodes import Session, add_user, cluster, login, me, post

pytestmark = pytest.mark.slow

SESSIONS = 3
FIELDS = 19  # per record (``_redis_layout.RECORD_FIELDS``)


def records_name(url: str, user_id: str) -> bytes:
    prefix = dict(parse_qsl(urlsplit(url).query))["prefix"]
    return f"{prefix}{{u:{user_id}}}:s".encode()


@pytest.fixture
def raw_redis() -> Iterator[object]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        client.close()


def user_id_of(node: Served, session: Session) -> str:
    response = httpx.get(f"{node.url}/auth/me", headers={"cookie": session.cookie}, timeout=5)
    assert response.status_code == 200, response.text
    return str(response.json()["user"]["id"])


def field_spans(blob: bytes) -> list[tuple[int, int]]:
    """(start, end) of every field of a records string (``_redis_layout.pack``)."""
    spans, at = [], 0
    while at < len(blob):
        size = blob[at]
        at += 1
        if size == 255:
            size = int.from_bytes(blob[at : at + 4], "big")
            at += 4
        spans.append((at, at + size))
        at += size
    return spans


DAMAGES = (
    "cut inside the user id",
    "cut inside the first record",
    "cut after the last record's key",
    "cut inside the last record's roles",
    "last byte missing",
    "roles not JSON",
    "a time of the wrong size",
)


def damaged(blob: bytes, how: str) -> bytes:
    """A records string of SESSIONS records, damaged as DAMAGES[...] says."""
    spans = field_spans(blob)
    assert len(spans) == 1 + SESSIONS * FIELDS
    last = 1 + (SESSIONS - 1) * FIELDS  # first field of the last record
    roles = spans[last + 7]
    created = spans[last + 3]
    return {
        "cut inside the user id": blob[:3],
        "cut inside the first record": blob[: spans[5][0] + 2],
        "cut after the last record's key": blob[: spans[last + 1][1]],
        "cut inside the last record's roles": blob[: roles[0] + 1],
        "last byte missing": blob[:-1],
        "roles not JSON": blob[: roles[0]] + b"{" * (roles[1] - roles[0]) + blob[roles[1] :],
        "a time of the wrong size": (
            blob[: created[0] - 1] + bytes([7]) + blob[created[0] : created[1] - 1]
            + blob[created[1] :]
        ),
    }[how]  # fmt: skip


@pytest.mark.parametrize("mode", ["session", "hybrid"])
def test_a_damaged_records_string_answers_401_or_503_never_500_nor_another_user(
    tmp_path: Path, redis_prefixed_url: str, raw_redis: object, mode: str
) -> None:
    import redis

    assert isinstance(raw_redis, redis.Redis)
    url = redis_prefixed_url
    bystander_name = add_user(url)
    with cluster(tmp_path, url, mode, count=2) as nodes:
        bystander = login(nodes[0], bystander_name)
        seen: dict[str, set[int]] = {}
        name = add_user(url)
        victim = user_id_of(nodes[0], login(nodes[0], name))
        for damage in DAMAGES:
            # Fresh sessions for each damage, on a node that has not cached them.
            raw_redis.delete(records_name(url, victim))
            sessions = [login(nodes[0], name) for _ in range(SESSIONS)]
            shaped = raw_redis.get(records_name(url, victim))
            assert shaped is not None and len(field_spans(shaped)) == 1 + SESSIONS * FIELDS
            raw_redis.set(records_name(url, victim), damaged(shaped, damage))
            codes = seen.setdefault(damage, set())
            for session in sessions:
                response = httpx.get(
                    f"{nodes[1].url}/auth/me", headers={"cookie": session.cookie}, timeout=5
                )
                codes.add(response.status_code)
                if response.status_code == 200:
                    assert response.json()["user"]["id"] == victim
                codes.add(
                    httpx.get(
                        f"{nodes[1].url}/auth/sessions", headers={"cookie": session.cookie},
                        timeout=5,
                    ).status_code
                )  # fmt: skip
            codes.add(post(nodes[1], "/auth/logout", sessions[-1]).status_code)
            codes.add(post(nodes[1], "/auth/logout-all", sessions[0]).status_code)
            codes.add(
                httpx.post(
                    f"{nodes[1].url}/auth/login",
                    json={"username": name, "password": "correct horse battery"},
                    timeout=10,
                ).status_code
            )
            assert me(nodes[1], bystander) == 200
        bad = {damage: codes for damage, codes in seen.items() if not codes <= {200, 204, 401, 503}}
        assert not bad, f"unexpected statuses: {bad}"
        listed = httpx.get(
            f"{nodes[1].url}/auth/sessions", headers={"cookie": bystander.cookie}, timeout=5
        )
        assert listed.status_code == 200
        assert len(listed.json()["sessions"]) == 1
        for node in nodes:
            assert "Traceback" not in node.stderr, node.stderr[-3000:]


def key_bucket_entry(url: str, session: Session) -> tuple[bytes, bytes]:
    """(bucket hash, field) of a session cookie's key (``Layout.key_bucket``, ``key_bytes``)."""
    prefix = dict(parse_qsl(urlsplit(url).query))["prefix"]
    value = next(pair.split("=", 1)[1] for pair in session.cookie.split("; ") if "csrf" not in pair)
    key = hashlib.sha256(value.encode()).digest()
    return f"{prefix}K:{zlib.crc32(key) & 0xFFFF:04x}".encode(), key


def test_a_key_bucket_entry_naming_another_user_or_garbage_finds_no_one(
    tmp_path: Path, redis_prefixed_url: str, raw_redis: object
) -> None:
    """Bucket entries are hints: whatever an entry names, the user's records decide."""
    import redis

    assert isinstance(raw_redis, redis.Redis)
    url = redis_prefixed_url
    victim_name, other_name = add_user(url), add_user(url)
    with cluster(tmp_path, url, "session", count=2) as nodes:
        other = login(nodes[0], other_name)
        other_id = user_id_of(nodes[0], other)
        for entry in [other_id.encode(), b"", b"x}y", b"\xff" * 40, b"#" + b"0" * 32, b"{u:"]:
            session = login(nodes[0], victim_name)
            bucket, field = key_bucket_entry(url, session)
            assert raw_redis.hget(bucket, field) is not None
            raw_redis.hset(bucket, field, entry)
            response = httpx.get(
                f"{nodes[1].url}/auth/me", headers={"cookie": session.cookie}, timeout=5
            )
            assert response.status_code in (401, 503), (entry, response.status_code)
            assert post(nodes[1], "/auth/logout", session).status_code in (204, 401, 503)
        assert me(nodes[1], other) == 200
        assert user_id_of(nodes[1], other) == other_id
        for node in nodes:
            assert "Traceback" not in node.stderr, node.stderr[-3000:]
