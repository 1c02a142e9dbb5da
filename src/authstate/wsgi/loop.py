"""One event loop per process, on a thread of its own, for WSGI applications.

The core is asynchronous (stores, bus, maintenance). A WSGI worker thread never starts
an event loop: it submits a coroutine to this loop with ``run_coroutine_threadsafe`` and
waits for the result. The loop also runs the store's bus listener, so revocations reach
this process's memory as they reach an ASGI node's. Requests answered from memory (a
cookie seen before) never come here.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# A store call that takes longer than this is a dead store, not a slow one.
DEFAULT_TIMEOUT_SECONDS = 30.0


class LoopThread:
    """A daemon thread running one asyncio loop; ``run(coro)`` from any other thread.

    Created in the process that uses it: after a ``fork`` the thread does not exist in
    the child, so the owner creates a new ``LoopThread`` there (``owner_pid`` tells)."""

    def __init__(self, name: str = "authstate-loop") -> None:
        self.owner_pid = os.getpid()
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(ready,), name=name, daemon=True)
        self._thread.start()
        ready.wait()

    def _main(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(ready.set)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT_SECONDS) -> T:
        """Run ``coro`` on the loop and return (or raise) its outcome in this thread."""
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("LoopThread.run() called from its own loop thread")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self) -> None:
        """Stop the loop and join the thread (pending tasks are cancelled first)."""
        if not self._thread.is_alive():
            return

        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_rest(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
