"""A subscriber cannot hurt the request that caused its event: an exception is logged
and swallowed, a slow ``async`` subscriber does not delay the answer, and every other
subscriber still hears the event. Through the reference app's ``POST /auth/login``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from authstate.events import AuthEvent, LoggedOut, LoginSucceeded
from tests.events.conftest import Recorder
from tests.server.conftest import PASSWORD, Deployment, deploy

pytestmark = pytest.mark.anyio
ALICE = {"username": "alice", "password": PASSWORD}


@pytest.fixture(params=["stateless", "session", "hybrid"])
async def app(request: pytest.FixtureRequest) -> AsyncIterator[Deployment]:
    async for dep in deploy("memory://", mode=request.param):
        await dep.add_user()
        yield dep


async def test_failing_subscribers_are_logged_and_the_login_succeeds(
    app: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: AuthEvent) -> None:
        raise RuntimeError("subscriber bug")

    async def broken_async(event: AuthEvent) -> None:
        raise RuntimeError("async subscriber bug")

    after = Recorder()
    app.auth.subscribe(broken)
    app.auth.subscribe(broken_async, LoginSucceeded)
    app.auth.subscribe(after)
    caplog.set_level(logging.ERROR, logger="authstate.events")
    async with app.client() as http:
        response = await http.post("/auth/login", json=ALICE)
        me = await http.get("/auth/me")
    await app.auth.events.drain()
    assert response.status_code == 200 and me.status_code == 200
    assert [e.name for e in after.events] == ["login"]
    failures = [r for r in caplog.records if r.name == "authstate.events"]
    assert len(failures) == 2
    assert {str(r.exc_info[1]) for r in failures if r.exc_info} == {
        "subscriber bug",
        "async subscriber bug",
    }


async def test_a_slow_async_subscriber_does_not_hold_the_answer(app: Deployment) -> None:
    release = asyncio.Event()
    finished: list[str] = []

    async def slow(event: AuthEvent) -> None:
        await release.wait()  # held until the answer is in the test's hands
        finished.append(event.name)

    app.auth.subscribe(slow, LoginSucceeded)
    async with app.client() as http:
        response = await http.post("/auth/login", json=ALICE)
    assert response.status_code == 200 and finished == []
    release.set()
    await app.auth.events.drain()
    assert finished == ["login"]


async def test_stop_waits_for_async_subscribers_in_flight() -> None:
    finished: list[str] = []
    async for dep in deploy("memory://", mode="session"):
        await dep.add_user()

        async def late(event: AuthEvent) -> None:
            await asyncio.sleep(0.2)  # still running when the app stops, right after
            finished.append(event.name)

        dep.auth.subscribe(late, LoggedOut)
        issued = await dep.auth.login("u1")
        await dep.auth.logout(issued.principal)
    assert finished == ["logout"]


async def test_unsubscribe_stops_delivery(app: Deployment) -> None:
    recorder = Recorder()
    unsubscribe = app.auth.subscribe(recorder)
    await app.auth.login("u1")
    unsubscribe()
    await app.auth.login("u1")
    assert [e.name for e in recorder.events] == ["login"]
