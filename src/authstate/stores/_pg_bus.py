"""The PostgreSQL half of the invalidation bus: LISTEN on a dedicated connection.

A notification only says "the change log grew" (its payload is the new seq); the changes
themselves are always read from the log with ``changes_since(last delivered seq)``. That
keeps delivery in seq order, makes a lost or foreign notification harmless (several stores
may share the channel from different schemas) and turns reconciliation after a reconnect
into the same code path as an ordinary wake-up.

Every ``keepalive`` seconds the loop catches up and then runs ``SELECT 1`` on the listening
connection. When both succeed, every change committed before the round began has been
delivered and the connection still listens, so the start of the round is the moment the
bus is known healthy up to. A dead connection (server restart, ``pg_terminate_backend``,
network cut) is noticed by its termination callback or by the keepalive, and the loop
reconnects with exponential backoff, then catches up before it reports health again.

Propagation bound: while connected, a change reaches every listening node one NOTIFY and
one indexed read after its commit (a few milliseconds on one host; the store tests print
the measured figure). Whatever goes wrong, ``healthy_since()`` never claims more than was
delivered, so a node that stops hearing fails closed once the staleness bound has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from authstate._time import Clock
from authstate.stores.base import Change, ChangeListener

log = logging.getLogger("authstate")

CHANNEL = "authstate_changes"
_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 2.0


class NotifyBus:
    """Delivers every change of one store, in seq order, to the registered listeners."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        changes_since: Callable[[int], Awaitable[list[Change]]],
        clock: Clock,
        *,
        keepalive: float = 1.0,
    ) -> None:
        self._connect = connect
        self._changes_since = changes_since
        self._clock = clock
        self._keepalive = keepalive
        self._listeners: list[ChangeListener] = []
        self._last_seq = 0
        self._deliver_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._healthy_since: float | None = None
        self._healthy = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self, listener: ChangeListener, head_seq: int) -> None:
        """Register ``listener``; the first call starts delivery of changes after ``head_seq``."""
        self._listeners.append(listener)
        if self._task is None:
            self._last_seq = head_seq
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name="authstate-pg-bus")

    def healthy_since(self) -> float | None:
        return self._healthy_since

    async def wait_healthy(self, within: float) -> bool:
        """Wait until the bus listens and has caught up; False if that took over ``within`` s."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._healthy.wait(), within)
        return self._healthy.is_set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._healthy_since = None
        self._healthy.clear()
        self._listeners.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def catch_up(self) -> None:
        """Deliver every change above the last delivered seq (raises the store's errors)."""
        async with self._deliver_lock:
            for change in await self._changes_since(self._last_seq):
                if change.seq <= self._last_seq:
                    continue
                self._last_seq = change.seq
                for listener in list(self._listeners):
                    try:
                        listener(change)
                    except Exception:
                        # One broken listener must not stop delivery to the others.
                        log.exception("change listener failed")

    async def _run(self) -> None:
        backoff = _BACKOFF_FIRST
        while True:
            conn: Any = None
            try:
                conn = await self._connect()
                conn.add_termination_listener(lambda _conn: self._wake.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                backoff = _BACKOFF_FIRST
                await self._serve(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Anything from the driver, the network or the store: report unhealthy, retry.
                if self._healthy_since is not None:
                    log.warning("invalidation bus lost its PostgreSQL connection: %r", exc)
                self._healthy_since = None
                self._healthy.clear()
            finally:
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _serve(self, conn: Any) -> None:
        while True:
            started = self._clock.monotonic()
            self._wake.clear()
            await self.catch_up()
            if conn.is_closed():
                raise ConnectionError("the listening connection closed")
            await conn.fetchval("SELECT 1", timeout=self._keepalive * 2)
            self._healthy_since = started
            self._healthy.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._keepalive)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._wake.set()
