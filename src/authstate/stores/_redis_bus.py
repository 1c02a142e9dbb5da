"""The Redis half of the invalidation bus: pub/sub on a dedicated connection.

The publish script logs a change and publishes ``<seq>|<change>`` in one atomic step, so
messages arrive in seq order. A message whose seq follows the last delivered one is
delivered as it is; a gap, a seq already passed (an echo, or a log that went back after
data loss) or anything odd makes the bus read the log with ``read_log`` instead, which is
also how it reconciles after every (re)subscribe.

Health: every ``keepalive`` seconds the bus sends PING on the subscribed connection, then
reads the log's epoch and head (a catch-up), as the PostgreSQL bus does each round. The
PONG comes back behind every message published before the PING reached the server, so once
it arrives everything published before the ping was sent has been delivered, and the send
time is what ``healthy_since()`` reports. On Redis Cluster the connection goes to the node
that serves the change log's slot, the one that runs the publish script, so the same holds
there. A lost connection, a missing PONG or a failed catch-up turns the bus unhealthy; it
reconnects with exponential backoff on a fresh client (redis-py's own silent resubscribe
would hide the gap from us), then catches up before it reports health again (delivery,
health and reconnection are shared with PostgreSQL: ``_bus``).

Propagation bound: while connected, a change reaches every subscribed node one pub/sub hop
after the publish script ran (the revocation table of ``authstate bench`` measures it
across node processes). Whatever goes wrong, ``healthy_since()`` never claims more than was
delivered, so a node that stops hearing fails closed once the staleness bound has passed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from authstate._time import Clock
from authstate.stores._bus import CatchUpBus
from authstate.stores._redis_layout import change_entry
from authstate.stores.base import LogRead


class PubSubBus(CatchUpBus):
    """Delivers every change of one store, in seq order, to the registered listeners."""

    _server = "Redis"
    _task_name = "authstate-redis-bus"

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        channel: bytes,
        read_log: Callable[[int], Awaitable[LogRead]],
        clock: Clock,
        *,
        keepalive: float = 1.0,
    ) -> None:
        # ``connect`` makes a fresh redis.asyncio.Redis for each attempt.
        super().__init__(connect, read_log, clock, keepalive=keepalive)
        self._channel = channel

    async def _on_message(self, data: bytes) -> None:
        try:
            change = change_entry(data)
        except (ValueError, KeyError, TypeError):
            change = None
        async with self._deliver_lock:
            if change is not None and change.seq == self._last_seq + 1:
                self._deliver(change)
                return
        # A gap, something odd, or a seq already passed: the echo of this node's own publish
        # (delivered by its catch-up) or a log that went back after data loss. The log tells.
        await self.catch_up()

    async def _listen(self, conn: Any) -> Any:
        pubsub = conn.pubsub()
        await pubsub.subscribe(self._channel)
        await self._confirm_subscription(pubsub)
        return pubsub

    async def _close(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            await conn.aclose()

    async def _confirm_subscription(self, pubsub: Any) -> None:
        deadline = time.monotonic() + self._answer_timeout
        while time.monotonic() < deadline:
            message = await pubsub.get_message(timeout=deadline - time.monotonic())
            if message is not None and message["type"] == "subscribe":
                return
        raise TimeoutError("no subscribe confirmation from Redis")

    async def _serve(self, pubsub: Any) -> None:
        while True:
            started = self._clock.monotonic()
            pinged = time.monotonic()
            await pubsub.ping()
            # Read up to the PONG (with a deadline), delivering what comes before it.
            deadline = time.monotonic() + self._answer_timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no PONG on the subscribed connection")
                message = await pubsub.get_message(timeout=remaining)
                if message is None:
                    continue
                if message["type"] == "pong":
                    # A message published now queues behind what the PONG queued behind.
                    self._lag = time.monotonic() - pinged
                    break
                if message["type"] == "message":
                    await self._on_message(message["data"])
            # Every round reads the log's epoch and head too (one script call): the first
            # on a connection reconciles, and a log emptied or put back under connected
            # nodes (FLUSHDB, a failover to a replica that was behind) is noticed within a
            # keepalive even when nothing is published.
            await self.catch_up()
            self._set_healthy(started)
            next_ping = time.monotonic() + self._keepalive
            while (remaining := next_ping - time.monotonic()) > 0:
                message = await pubsub.get_message(timeout=remaining)
                if message is not None and message["type"] == "message":
                    await self._on_message(message["data"])
