"""Stopping a bus always ends its listening task, even when the driver eats the cancel.

``authstate keys rotate`` on Redis hung at exit about one run in two: redis-py's pub/sub
read under Python 3.11 can swallow the cancellation that ``stop()`` sends (a timeout
racing a cancel), and the task went on reading forever. ``stop()`` now closes the
connection the task listens on when a cancel did not end it, and cancels again.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from authstate._time import SystemClock
from authstate.stores._bus import CatchUpBus
from authstate.stores.records import LogRead

pytestmark = pytest.mark.anyio


class Connection:
    def __init__(self) -> None:
        self.closed = asyncio.Event()


class StubbornBus(CatchUpBus):
    """A transport whose read ignores the first cancel, like the driver did."""

    _server = "test"
    _task_name = "stubborn-bus"

    def __init__(self) -> None:
        self.conn = Connection()
        self.reading = asyncio.Event()

        async def connect() -> Connection:
            return self.conn

        async def read_log(seq: int) -> LogRead:
            return LogRead(epoch="e", head=seq, changes=[])

        super().__init__(connect, read_log, SystemClock())

    async def _listen(self, conn: Any) -> Any:
        return conn

    async def _serve(self, listening: Any) -> None:
        self.reading.set()
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as the driver did
            await asyncio.sleep(3600)
        await listening.closed.wait()
        raise ConnectionError("connection closed")

    async def _close(self, conn: Any) -> None:
        conn.closed.set()


async def test_stop_ends_a_task_whose_driver_swallowed_the_cancel() -> None:
    bus = StubbornBus()
    bus.start(lambda change: None, LogRead(epoch="e", head=0, changes=[]))
    await asyncio.wait_for(bus.reading.wait(), 5)
    stopping = asyncio.create_task(bus.stop())
    done, _ = await asyncio.wait({stopping}, timeout=8)
    if not done:  # the old stop(): waited forever on a task that never ended
        for task in asyncio.all_tasks():
            if task.get_name() == "stubborn-bus":
                task.cancel()  # its second cancel ends it
        stopping.cancel()
        pytest.fail("stop() did not return")
    assert bus.conn.closed.is_set()
    assert not bus.running
