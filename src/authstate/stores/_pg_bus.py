"""The PostgreSQL half of the invalidation bus: LISTEN on a dedicated connection.

A notification only says "the change log grew" (its payload is the new seq); the changes
themselves are always read from the log with ``read_log(last delivered seq)``, which also
returns the log's epoch and head, so every round notices a log that went back (``_bus``). That
keeps delivery in seq order, makes a lost or foreign notification harmless (several stores
may share the channel from different schemas) and turns reconciliation after a reconnect
into the same code path as an ordinary wake-up.

Every ``keepalive`` seconds the loop catches up and then runs ``SELECT 1`` on the listening
connection. When both succeed, every change committed before the round began has been
delivered and the connection still listens, so the start of the round is the moment the
bus is known healthy up to. A dead connection (server restart, ``pg_terminate_backend``,
network cut) is noticed by its termination callback or by the keepalive, and the loop
reconnects with exponential backoff, then catches up before it reports health again
(delivery, health and reconnection are shared with Redis: ``_bus``).

Propagation bound: while connected, a change reaches every listening node one NOTIFY and
one indexed read after its commit (the revocation table of ``authstate bench`` measures
it across node processes). Whatever goes wrong, ``healthy_since()`` never claims more than was
delivered, so a node that stops hearing fails closed once the staleness bound has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from authstate._time import Clock
from authstate.stores._bus import CatchUpBus
from authstate.stores.base import LogRead

CHANNEL = "authstate_changes"


class NotifyBus(CatchUpBus):
    """Delivers every change of one store, in seq order, to the registered listeners."""

    _server = "PostgreSQL"
    _task_name = "authstate-pg-bus"

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        read_log: Callable[[int], Awaitable[LogRead]],
        clock: Clock,
        *,
        keepalive: float = 1.0,
    ) -> None:
        super().__init__(connect, read_log, clock, keepalive=keepalive)
        self._wake = asyncio.Event()

    async def _listen(self, conn: Any) -> Any:
        conn.add_termination_listener(lambda _conn: self._wake.set())
        await conn.add_listener(CHANNEL, self._on_notify)
        return conn

    async def _serve(self, conn: Any) -> None:
        while True:
            started = self._clock.monotonic()
            self._wake.clear()
            await self.catch_up()
            if conn.is_closed():
                raise ConnectionError("the listening connection closed")
            await conn.fetchval("SELECT 1", timeout=self._answer_timeout)
            # A NOTIFY travels the listening connection, then a catch-up read: as measured.
            self._lag = self._clock.monotonic() - started
            self._set_healthy(started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._keepalive)

    async def _close(self, conn: Any) -> None:
        conn.terminate()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._wake.set()
