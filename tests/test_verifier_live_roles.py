"""A ``Verifier`` given the auth server's store refuses tokens whose roles changed since."""

from __future__ import annotations

from pathlib import Path

import pytest

from authstate import StaleToken
from authstate.stores import open_store
from tests.security.harness import running
from tests.test_verifier import CountingApp, until_refused, verifier_for

pytestmark = pytest.mark.anyio


async def test_with_the_store_a_demotion_makes_older_tokens_stale(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    async with running("hybrid", url) as node:
        store = await open_store(url, clock=node.clock)
        verifier = verifier_for(node, CountingApp(node.app), store=store)
        alice = node.users["alice"]
        await node.auth.set_roles(alice, ("admin",))
        session = await node.login("alice")
        async with verifier:
            assert (await verifier.verify(session.auth)).roles == ("admin",)
            await node.auth.set_roles(alice, ("viewer",))
            await until_refused(verifier, session.auth)
            with pytest.raises(StaleToken):
                await verifier.verify(session.auth)
            renewed = await session.refresh_now()
            assert renewed.status_code == 200, renewed.text
            claims = await verifier.verify(session.auth)
            assert claims.roles == ("viewer",)
