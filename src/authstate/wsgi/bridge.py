"""``SyncAuth``: an ``AuthCore`` used from WSGI worker threads.

The warm path (a cookie this process verified before, any JWT) is answered in the calling
thread from memory by ``mode.authenticate_from_memory``: no thread hop, no event loop.
Everything else (store reads and writes) is one mechanism: the coroutine is submitted to
the process's ``LoopThread``, which also runs the bus listener and the maintenance task.

The loop thread and the core are started lazily, by the first request of each process:
under gunicorn's pre-fork model that is in the worker, after the fork (a started core
cannot cross a fork: its store connections and thread would be shared or lost).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from authstate.errors import ConfigurationError, StoreUnavailable
from authstate.wsgi.loop import DEFAULT_TIMEOUT_SECONDS, LoopThread

if TYPE_CHECKING:
    from authstate.auth import AuthCore
    from authstate.principal import Principal

T = TypeVar("T")


class SyncAuth:
    """The synchronous face of one ``AuthCore`` in one process."""

    def __init__(self, core: AuthCore) -> None:
        self.core = core
        self._lock = threading.Lock()
        self._loop: LoopThread | None = None
        # Counted for the benchmark and the tests: how many requests needed the loop.
        self.loop_calls = 0
        # Seconds a request waits for store work before answering 503.
        self.timeout = DEFAULT_TIMEOUT_SECONDS

    def ensure_started(self) -> None:
        """Start the loop thread and the core in this process (once; thread-safe)."""
        loop = self._loop
        if loop is not None and loop.owner_pid == os.getpid():
            return
        with self._lock:
            loop = self._loop
            if loop is not None and loop.owner_pid == os.getpid():
                return
            if self.core.started:
                raise ConfigurationError(
                    "this AuthState was started in another process (before a fork): start "
                    "it lazily in each worker (the default) and never in the master"
                )
            loop = LoopThread()
            try:
                loop.run(self.core.start())
            except BaseException:
                loop.stop()
                raise
            self._loop = loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run one of the core's coroutines on the loop thread and return its result."""
        try:
            self.ensure_started()
        except BaseException:
            coro.close()
            raise
        loop = self._loop
        if loop is None:  # pragma: no cover - a concurrent stop()
            coro.close()
            raise RuntimeError("authstate was stopped")
        self.loop_calls += 1
        try:
            return loop.run(coro, self.timeout)
        except TimeoutError:
            # A worker thread must not hang on a dead store: 503, like a store error.
            raise StoreUnavailable(reason=f"store work took over {self.timeout} s") from None

    def authenticate(self, auth_value: str) -> Principal:
        """The principal behind an auth cookie value: from memory when this process can
        answer so, else through the loop. Raises what ``AuthCore.authenticate`` raises."""
        self.ensure_started()
        core = self.core
        principal = core.mode.authenticate_from_memory(auth_value)
        if principal is None:
            principal = self.run(core.authenticate(auth_value))
        return principal

    def stop(self) -> None:
        """Stop the core and the loop thread of this process (tests, clean shutdown)."""
        with self._lock:
            loop = self._loop
            if loop is None or loop.owner_pid != os.getpid():
                return
            try:
                loop.run(self.core.stop())
            finally:
                loop.stop()
                self._loop = None
