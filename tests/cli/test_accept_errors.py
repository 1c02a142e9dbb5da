"""The accept() resource-error log: one line per interval with a count, never a flood."""

from __future__ import annotations

import asyncio
import errno
import logging

import pytest

from authstate.cli._accept_errors import AcceptErrorLog

EMFILE = OSError(errno.EMFILE, "Too many open files")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_storm_of_accept_failures_is_one_line_per_interval_with_its_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    log = AcceptErrorLog(interval=10, clock=clock)
    loop = asyncio.new_event_loop()
    try:
        log.install(loop)
        with caplog.at_level(logging.WARNING):
            for _ in range(2048):  # one loop turn of asyncio's accept loop
                loop.call_exception_handler(
                    {"message": "socket.accept() out of system resource", "exception": EMFILE}
                )
            clock.now += 10
            loop.call_exception_handler(
                {"message": "socket.accept() out of system resource", "exception": EMFILE}
            )
    finally:
        loop.close()
    counts = [record.count for record in caplog.records]  # type: ignore[attr-defined]
    assert counts == [1, 2048]
    assert all(record.exc_info is None for record in caplog.records)


def test_other_loop_errors_still_reach_the_previous_handler() -> None:
    seen: list[str] = []
    loop = asyncio.new_event_loop()
    try:
        loop.set_exception_handler(lambda _loop, context: seen.append(context["message"]))
        AcceptErrorLog().install(loop)
        loop.call_exception_handler({"message": "something else"})
    finally:
        loop.close()
    assert seen == ["something else"]
