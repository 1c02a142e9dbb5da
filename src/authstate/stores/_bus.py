"""What the server stores' invalidation buses share: delivery, health and reconnection.

A bus delivers every change of one store, in seq order, to the listeners registered with
``start``. The change log is the truth: ``catch_up`` reads it with ``changes_since(last
delivered seq)``, so delivery stays in order and reconciliation after a reconnect is the same
code path as an ordinary wake-up. One broken listener never stops delivery to the others.

The subclass owns the transport: how a connection starts listening (``_listen``), the
loop that hears changes and proves the connection alive (``_serve``, which reports health
with ``_set_healthy``), and how a connection is let go (``_close``). This base runs that
loop in a task, reports the bus unhealthy when it fails and reconnects with exponential
backoff. ``healthy_since()`` never claims more than was delivered, so a node that stops
hearing fails closed once the staleness bound has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from authstate._time import Clock
from authstate.stores.base import Change, ChangeListener

log = logging.getLogger("authstate")

_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 2.0


class CatchUpBus(ABC):
    """Delivers every change of one store, in seq order, to the registered listeners."""

    _server: ClassVar[str]  # names the server in the log: "lost its <server> connection"
    _task_name: ClassVar[str]

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        changes_since: Callable[[int], Awaitable[list[Change]]],
        clock: Clock,
        *,
        keepalive: float = 1.0,
    ) -> None:
        self._connect = connect  # a fresh dedicated connection for each attempt
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
            self._task = loop.create_task(self._run(), name=self._task_name)

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
        """Hand ``change`` to every listener unless it was delivered already (hold the lock)."""
        if change.seq <= self._last_seq:
            return
        self._last_seq = change.seq
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                # One broken listener must not stop delivery to the others.
                log.exception("change listener failed")

    def _set_healthy(self, started: float) -> None:
        """Everything committed before ``started`` (the store clock) has been delivered."""
        self._healthy_since = started
        self._healthy.set()

    def _set_unhealthy(self) -> None:
        self._healthy_since = None
        self._healthy.clear()

    async def _run(self) -> None:
        backoff = _BACKOFF_FIRST
        while True:
            conn: Any = None
            try:
                conn = await self._connect()
                listening = await self._listen(conn)
                backoff = _BACKOFF_FIRST
                await self._serve(listening)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Anything from the driver, the network or the store: report unhealthy, retry.
                if self._healthy_since is not None:
                    log.warning("invalidation bus lost its %s connection: %r", self._server, exc)
                self._set_unhealthy()
            finally:
                if conn is not None:
                    await self._close(conn)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    @abstractmethod
    async def _listen(self, conn: Any) -> Any:
        """Make the fresh ``conn`` listen; return what ``_serve`` reads from."""

    @abstractmethod
    async def _serve(self, listening: Any) -> None:
        """Deliver and keep health until the connection fails (only returns by raising)."""

    @abstractmethod
    async def _close(self, conn: Any) -> None:
        """Let ``conn`` go after a failure or on stop; must not raise."""
