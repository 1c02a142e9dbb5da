"""The Redis half of the invalidation bus: pub/sub on a dedicated connection.

The publish script logs a change and publishes ``<seq>|<change>`` in one atomic step, so
messages arrive in seq order. A message whose seq follows the last delivered one is
delivered as it is; a gap (or anything odd) makes the bus read the log with
``changes_since`` instead, which is also how it reconciles after every (re)subscribe.

Health: every ``keepalive`` seconds the bus sends PING on the subscribed connection. The
PONG comes back behind every message published before the PING reached the server, so once
it arrives everything published before the ping was sent has been delivered, and the send
time is what ``healthy_since()`` reports. On Redis Cluster the connection goes to the node
that serves the change log's slot, the one that runs the publish script, so the same holds
there. A lost connection, a missing PONG or a failed catch-up turns the bus unhealthy; it
reconnects with exponential backoff on a fresh client (redis-py's own silent resubscribe
would hide the gap from us), then catches up before it reports health again.

Propagation bound: while connected, a change reaches every subscribed node one pub/sub hop
after the publish script ran (well under a millisecond on one host; the store tests print
the measured figure). Whatever goes wrong, ``healthy_since()`` never claims more than was
delivered, so a node that stops hearing fails closed once the staleness bound has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from authstate._time import Clock
from authstate.stores._redis_layout import change_entry
from authstate.stores.base import Change, ChangeListener

log = logging.getLogger("authstate")

_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 2.0


class PubSubBus:
    """Delivers every change of one store, in seq order, to the registered listeners."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        channel: bytes,
        changes_since: Callable[[int], Awaitable[list[Change]]],
        clock: Clock,
        *,
        keepalive: float = 1.0,
    ) -> None:
        self._connect = connect  # a fresh redis.asyncio.Redis for each attempt
        self._channel = channel
        self._changes_since = changes_since
        self._clock = clock
        self._keepalive = keepalive
        self._listeners: list[ChangeListener] = []
        self._last_seq = 0
        self._deliver_lock = asyncio.Lock()
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
            self._task = loop.create_task(self._run(), name="authstate-redis-bus")

    def healthy_since(self) -> float | None:
        return self._healthy_since

    async def wait_healthy(self, within: float) -> bool:
        """Wait until the bus listens and has caught up; False if that took over ``within`` s."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._healthy.wait(), within)
        return self._healthy.is_set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._set_unhealthy()
        self._listeners.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def catch_up(self) -> None:
        """Deliver every logged change above the last delivered seq (raises store errors)."""
        async with self._deliver_lock:
            for change in await self._changes_since(self._last_seq):
                self._deliver(change)

    def _deliver(self, change: Change) -> None:
        if change.seq <= self._last_seq:
            return
        self._last_seq = change.seq
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                # One broken listener must not stop delivery to the others.
                log.exception("change listener failed")

    async def _on_message(self, data: bytes) -> None:
        try:
            change = change_entry(data)
        except (ValueError, KeyError, TypeError):
            change = None
        async with self._deliver_lock:
            if change is not None and change.seq == self._last_seq + 1:
                self._deliver(change)
                return
        if change is None or change.seq > self._last_seq:
            await self.catch_up()

    def _set_unhealthy(self) -> None:
        self._healthy_since = None
        self._healthy.clear()

    async def _run(self) -> None:
        backoff = _BACKOFF_FIRST
        while True:
            client: Any = None
            try:
                client = await self._connect()
                pubsub = client.pubsub()
                await pubsub.subscribe(self._channel)
                await self._confirm_subscription(pubsub)
                backoff = _BACKOFF_FIRST
                await self._serve(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Anything from the driver, the network or the store: report unhealthy, retry.
                if self._healthy_since is not None:
                    log.warning("invalidation bus lost its Redis connection: %r", exc)
                self._set_unhealthy()
            finally:
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _confirm_subscription(self, pubsub: Any) -> None:
        deadline = time.monotonic() + 2 * self._keepalive
        while time.monotonic() < deadline:
            message = await pubsub.get_message(timeout=deadline - time.monotonic())
            if message is not None and message["type"] == "subscribe":
                return
        raise TimeoutError("no subscribe confirmation from Redis")

    async def _serve(self, pubsub: Any) -> None:
        while True:
            started = self._clock.monotonic()
            await pubsub.ping()
            # Read up to the PONG (with a deadline), delivering what comes before it.
            deadline = time.monotonic() + 2 * self._keepalive
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no PONG on the subscribed connection")
                message = await pubsub.get_message(timeout=remaining)
                if message is None:
                    continue
                if message["type"] == "pong":
                    break
                if message["type"] == "message":
                    await self._on_message(message["data"])
            if self._healthy_since is None:
                await self.catch_up()  # first round on this connection: reconcile
            self._healthy_since = started
            self._healthy.set()
            next_ping = time.monotonic() + self._keepalive
            while (remaining := next_ping - time.monotonic()) > 0:
                message = await pubsub.get_message(timeout=remaining)
                if message is not None and message["type"] == "message":
                    await self._on_message(message["data"])
