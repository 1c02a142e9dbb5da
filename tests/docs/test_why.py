"""The figures and claims of docs/why.md that can be checked exactly: cookie sizes and the
store round trips of a request in the common case."""

from __future__ import annotations

import pytest

from authstate import AuthState, Settings
from authstate.stores.base import SessionRecord
from authstate.stores.memory import MemoryStore
from tests.docs.markdown import DOCS

pytestmark = pytest.mark.anyio
USER_ID = "0c94aeee9564d2b9"  # 16 characters, as the page says


def sizes_table() -> dict[str, list[str]]:
    text = (DOCS / "why.md").read_text()
    table = text.split("<!-- check: sizes-table -->", 1)[1].strip().split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    return {row[0]: row[1:] for row in rows}


@pytest.mark.parametrize(
    ("row", "mode", "algorithm"),
    [
        ("`stateless` (EdDSA or ES256)", "stateless", "EdDSA"),
        ("`stateless` (EdDSA or ES256)", "stateless", "ES256"),
        ("`stateless` (HS256)", "stateless", "HS256"),
        ("`session`", "session", "EdDSA"),
        ("`hybrid` (EdDSA or ES256)", "hybrid", "EdDSA"),
        ("`hybrid` (EdDSA or ES256)", "hybrid", "ES256"),
    ],
)
async def test_cookie_sizes_are_as_published(row: str, mode: str, algorithm: str) -> None:
    """The sizes table is what a login issues today."""
    settings = Settings(mode=mode, store="memory://", algorithm=algorithm)  # type: ignore[arg-type]
    async with AuthState(settings) as auth:
        issued = await auth.login(USER_ID, ["staff"])
        csrf = auth.csrf_token(issued.principal.binding)
    refresh = str(len(issued.refresh_value)) if issued.refresh_value else "—"
    assert sizes_table()[row] == [str(len(issued.auth_value)), refresh, str(len(csrf))]


class CountingStore(MemoryStore):
    """A memory store that counts the calls a request could make on the hot path."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def get_session(self, key: str) -> SessionRecord | None:
        self.calls.append("get_session")
        return await super().get_session(key)

    async def touch_session(self, key: str, last_seen_at: float) -> bool:
        self.calls.append("touch_session")
        return await super().touch_session(key, last_seen_at)


@pytest.mark.parametrize("mode", ["stateless", "session", "hybrid"])
async def test_a_warm_request_costs_no_store_round_trip(mode: str) -> None:
    """ "0 store round trips per request, common case": 1,000 verifications of one cookie."""
    store = CountingStore()
    async with AuthState(Settings(mode=mode, store="memory://"), store=store) as auth:  # type: ignore[arg-type]
        issued = await auth.login(USER_ID, ["staff"])
        store.calls.clear()
        for _ in range(1000):
            await auth.authenticate(issued.auth_value)
    assert store.calls == []


async def test_a_session_costs_one_read_on_a_node_that_has_not_seen_it() -> None:
    """ "1 on a node's first sight of a session": a second node reads it once, then caches it."""
    store = CountingStore()
    settings = Settings(mode="session", store="memory://", secret=b"s" * 32)
    async with (
        AuthState(settings, store=store) as first,
        AuthState(settings, store=store) as second,
    ):
        issued = await first.login(USER_ID, ["staff"])
        store.calls.clear()
        for _ in range(100):
            await second.authenticate(issued.auth_value)
    assert store.calls == ["get_session"]
