"""Odd session IDs and handles against the new store layouts (Redis session layout 2, PostgreSQL
schema 4 with bytea keys and the held reader), through ``authstate serve``: every one is
refused with a 4xx and changes nothing in the store.

A session ID is hashed before it reaches the store, and a handle goes to the store as it is
(``key_bytes``: 16 raw bytes when it is canonical base64url, else a marked UTF-8 form), so
the handle cases include the near misses: a non-canonical spelling of a real handle, one
of another user, lengths around 16/22/32.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest

from tests.cli.serve_process import Served
from tests.conftest import REDIS_URL
from tests.multinode.nodes import Session, add_user, cluster, login, me

pytestmark = pytest.mark.slow

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# No last_seen write while the test runs: the store must stay byte for byte the same.
QUIET = {"AUTHSTATE_LAST_SEEN_INTERVAL": "1h"}


def odd_session_ids() -> list[str]:
    ids = ["A" * n for n in range(101)]
    ids += [secrets.token_urlsafe(32)[:43] for _ in range(3)]  # the right shape, unknown
    ids += [
        "+" * 43, "/" * 43, "=" * 43, "." * 43, "~" * 43,
        "A" * 42 + "=", "%00" * 14 + "A", "\\0" * 21 + "A", "A" * 43 + "%00",
        "é" * 43, "€" * 15, "\U0001f600" * 11, "A" * 21 + "é" + "A" * 21,
        "A" * 4096,
    ]  # fmt: skip
    return ids


def non_canonical(handle: str) -> str:
    """The same 16 bytes' base64url with different padding bits in the last character."""
    last = B64.index(handle[-1])
    return handle[:-1] + B64[last ^ 1] if last & 3 == 0 else handle[:-1] + B64[last & ~3]


def odd_handles(own: str, others: str) -> list[str]:
    handles = ["A" * n for n in range(1, 101)]
    handles += ["A" * 21 + c for c in "+/=.~"] + ["é" * 22, "%00" * 7 + "A", own.upper()]
    handles += [non_canonical(own), non_canonical(others), others, others + "A", others[:-1]]
    handles += [own[:15], own[:16], own + own[:9], "\U0001f600" * 8]
    return handles


def redis_snapshot(url: str) -> dict[bytes, bytes]:
    import redis

    prefix = dict(parse_qsl(urlsplit(url).query))["prefix"]
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return {key: client.dump(key) or b"" for key in client.scan_iter(match=f"{prefix}*")}
    finally:
        client.close()


def postgres_snapshot(url: str) -> dict[str, list[Any]]:
    import asyncpg

    async def run() -> dict[str, list[Any]]:
        conn = await asyncpg.connect(url)
        try:
            tables = await conn.fetch(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() ORDER BY 1"
            )
            found = {}
            for table in (str(t["table_name"]) for t in tables):
                # The names come from the catalog, not from a caller.
                rows = await conn.fetch(f'SELECT * FROM "{table}" ORDER BY 1')  # noqa: S608
                found[table] = [tuple(row) for row in rows]
            return found
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture(params=["redis", "postgres"])
def new_store(request: pytest.FixtureRequest) -> Iterator[tuple[str, Any]]:
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_prefixed_url")
        yield url, redis_snapshot
    else:
        url = request.getfixturevalue("postgres_schema_url")
        yield url, postgres_snapshot


def auth_cookie_name(session: Session) -> str:
    names = [pair.split("=", 1)[0] for pair in session.cookie.split("; ")]
    return next(name for name in names if "csrf" not in name)


def handle_of(node: Served, session: Session) -> str:
    response = httpx.get(f"{node.url}/auth/me", headers={"cookie": session.cookie}, timeout=5)
    assert response.status_code == 200
    return str(response.json()["session"]["id"])


def refresh_cookie_name(node: Served, name: str) -> str:
    """The refresh cookie's name, as a hybrid login sets it ("" in session mode)."""
    response = httpx.post(
        f"{node.url}/auth/login",
        json={"username": name, "password": "correct horse battery"},
        timeout=10,
    )
    assert response.status_code == 200
    for value in response.headers.get_list("set-cookie"):
        if "Path=/auth" in value:
            return value.split("=", 1)[0]
    return ""


def cookie_bytes(name: str, value: str) -> bytes:
    return f"{name}={value}".encode()


@pytest.mark.parametrize("mode", ["session", "hybrid"])
def test_odd_session_ids_and_handles_are_refused_and_write_nothing(
    tmp_path: Path, new_store: tuple[str, Any], mode: str
) -> None:
    url, snapshot = new_store
    name, other_name = add_user(url), add_user(url)
    with cluster(tmp_path, url, mode, count=1, **QUIET) as (node,):
        own, other = login(node, name), login(node, other_name)
        own_handle, other_handle = handle_of(node, own), handle_of(node, other)
        cookie = auth_cookie_name(own)
        refresh_cookie = refresh_cookie_name(node, name)
        assert bool(refresh_cookie) == (mode == "hybrid")
        before = snapshot(url)

        statuses: dict[str, set[int]] = {}
        with httpx.Client(base_url=node.url, timeout=10) as client:
            for value in odd_session_ids():
                response = client.get("/auth/me", headers={"cookie": cookie_bytes(cookie, value)})
                statuses.setdefault("me", set()).add(response.status_code)
                if refresh_cookie:
                    refresh = client.post(
                        "/auth/refresh",
                        headers={
                            "cookie": cookie_bytes(refresh_cookie, value),
                            "x-csrf-token": own.csrf,
                        },
                    )
                    statuses.setdefault("refresh", set()).add(refresh.status_code)
            for handle in odd_handles(own_handle, other_handle):
                response = client.delete(
                    f"/auth/sessions/{quote(handle, safe='')}",
                    headers={"cookie": own.cookie, "x-csrf-token": own.csrf},
                )
                statuses.setdefault(f"delete {handle[:30]!r}", set()).add(response.status_code)

        assert statuses.pop("me") == {401}
        assert statuses.pop("refresh", {401}) == {401}
        assert all(codes == {404} for codes in statuses.values()), {
            handle: codes for handle, codes in statuses.items() if codes != {404}
        }
        assert me(node, own) == 200
        assert me(node, other) == 200
        assert snapshot(url) == before
        assert "Traceback" not in node.stderr, node.stderr[-3000:]
