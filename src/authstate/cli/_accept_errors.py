"""One log line per interval for ``accept()`` running out of file descriptors.

When the process hits its open-file limit (EMFILE) or the system's (ENFILE, ENOBUFS,
ENOMEM), asyncio reports every failed ``accept()`` to the loop's exception handler with a
traceback, up to a whole backlog per loop turn: 343,534 lines (177 MB) in 30 s in the chaos
run (F3). The handler here counts those reports and logs one warning per ``interval``
seconds with the count; anything else goes to the handler that was there before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("authstate.server")

# asyncio's wording (selector_events._accept_connection); uvloop uses the same.
_ACCEPT_EXHAUSTED = "socket.accept() out of system resource"


class AcceptErrorLog:
    """A loop exception handler that rate-limits "out of system resource" on accept."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._suppressed = 0
        self._last: float | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        previous = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if context.get("message") == _ACCEPT_EXHAUSTED:
                self.report(context.get("exception"))
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)

    def report(self, exc: object) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            self._suppressed += 1
            return
        count, self._suppressed, self._last = self._suppressed + 1, 0, now
        logger.warning(
            "cannot accept connections: %s (%d times since the last report); "
            "raise the open-file limit or lower AUTHSTATE_MAX_CONNECTIONS",
            getattr(exc, "strerror", None) or exc,
            count,
            extra={"event": "accept_exhausted", "count": count},
        )
