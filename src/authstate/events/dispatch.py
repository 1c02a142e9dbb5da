"""``Subscribers``: who hears which lifecycle event, and how a subscriber's failure is kept
away from the request that caused the event.

Delivery rules (docs/concepts.md, "Events"):

- ``emit()`` is called by ``AuthCore`` after the change is durable (the store write
  returned), never before, so a subscriber never hears of a change that did not happen.
- A plain function runs inline, in subscription order, before ``emit()`` returns: keep it
  quick (a log line, a counter). Its exception is logged and swallowed.
- A coroutine function (or any callable returning an awaitable) runs as a background
  task: a slow webhook never delays a login. Its exception is logged too. ``drain()``
  waits for the tasks in flight; ``AuthState.stop()`` drains with a time limit.
- A subscriber hears an event of the type it subscribed to and of every subclass
  (``AuthEvent`` is every event).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from authstate.events.types import AuthEvent

log = logging.getLogger("authstate.events")

E = TypeVar("E", bound=AuthEvent)
# A subscriber takes one event and returns nothing, or an awaitable (an async function).
Subscriber = Callable[[Any], Awaitable[None] | None]


class Subscribers:
    """The subscribers of one ``AuthState``; ``auth.subscribe``/``auth.on`` add to it."""

    def __init__(self) -> None:
        self._by_type: dict[type[AuthEvent], list[Subscriber]] = {}
        # Per concrete event type: its subscribers along the MRO, built on first emit.
        self._resolved: dict[type[AuthEvent], tuple[Subscriber, ...]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(
        self, subscriber: Subscriber, *event_types: type[AuthEvent]
    ) -> Callable[[], None]:
        """Call ``subscriber(event)`` for each event of ``event_types`` (default: every
        event). Returns a function that unsubscribes it."""
        types = event_types or (AuthEvent,)
        for event_type in types:
            if not (isinstance(event_type, type) and issubclass(event_type, AuthEvent)):
                raise TypeError(f"{event_type!r} is not an event type")
            self._by_type.setdefault(event_type, []).append(subscriber)
        self._resolved.clear()

        def unsubscribe() -> None:
            for event_type in types:
                with_it = self._by_type.get(event_type, [])
                if subscriber in with_it:
                    with_it.remove(subscriber)
            self._resolved.clear()

        return unsubscribe

    def on(self, *event_types: type[E]) -> Callable[[Callable[[E], Any]], Callable[[E], Any]]:
        """Decorator form of ``subscribe``: ``@auth.on(LoginSucceeded)``."""

        def register(subscriber: Callable[[E], Any]) -> Callable[[E], Any]:
            self.subscribe(subscriber, *event_types)
            return subscriber

        return register

    def emit(self, event: AuthEvent) -> None:
        """Deliver ``event``; never raises. Call it after the change is durable."""
        subscribers = self._resolved.get(type(event))
        if subscribers is None:
            subscribers = self._resolve(type(event))
        for subscriber in subscribers:
            try:
                result = subscriber(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", subscriber, event.name)
                continue
            if inspect.isawaitable(result):
                task = asyncio.get_running_loop().create_task(
                    _guarded(result, subscriber, event), name=f"authstate-event-{event.name}"
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def drain(self, within: float | None = None) -> None:
        """Wait for the asynchronous subscribers in flight (at most ``within`` seconds;
        those still running then are cancelled, with a warning)."""
        while self._tasks:
            pending = set(self._tasks)
            _done, still = await asyncio.wait(pending, timeout=within)
            if still:
                log.warning("%d event subscriber(s) still running: cancelled", len(still))
                for task in still:
                    task.cancel()
                await asyncio.wait(still)
                return

    def _resolve(self, event_type: type[AuthEvent]) -> tuple[Subscriber, ...]:
        found: list[Subscriber] = []
        for cls in event_type.__mro__:
            for subscriber in self._by_type.get(cls, ()):
                if subscriber not in found:
                    found.append(subscriber)
        resolved = tuple(found)
        self._resolved[event_type] = resolved
        return resolved


async def _guarded(result: Awaitable[None], subscriber: Subscriber, event: AuthEvent) -> None:
    try:
        await result
    except Exception:
        log.exception("event subscriber %r failed on %s", subscriber, event.name)
