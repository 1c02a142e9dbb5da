"""``SyncAuth`` and the loop thread: one start per process, a fork is noticed, and the
session cache read by worker threads while the loop thread drops entries never raises."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from authstate.auth import AuthCore
from authstate.errors import ConfigurationError, StoreUnavailable
from authstate.session_cache import SessionCache
from authstate.stores.base import SessionRecord
from authstate.wsgi.bridge import SyncAuth


def _sync(tmp_path: Path) -> SyncAuth:
    return SyncAuth(AuthCore(store=f"sqlite:///{tmp_path}/bridge.db", secret=b"s" * 32))


def test_concurrent_first_requests_start_the_core_once(tmp_path: Path) -> None:
    sync = _sync(tmp_path)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def first_request() -> None:
        barrier.wait()
        try:
            sync.ensure_started()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert sync.core.started
        assert [t.name for t in threading.enumerate()].count("authstate-loop") == 1
    finally:
        sync.stop()
    assert "authstate-loop" not in [t.name for t in threading.enumerate()]


def test_a_core_started_before_a_fork_is_refused_in_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync = _sync(tmp_path)
    sync.ensure_started()
    try:
        parent = os.getpid()
        monkeypatch.setattr(os, "getpid", lambda: parent + 1)  # what the forked child sees
        with pytest.raises(ConfigurationError, match="before a fork"):
            sync.ensure_started()
    finally:
        monkeypatch.undo()
        sync.stop()


def _record(index: int) -> SessionRecord:
    return SessionRecord(
        key=f"k{index}",
        handle=f"h{index}",
        user_id="u",
        kind="session",
        created_at=0.0,
        last_seen_at=0.0,
        expires_at=1e12,
        idle_timeout=0,
    )


def test_session_cache_reads_survive_concurrent_drops() -> None:
    cache = SessionCache()
    records = [_record(i) for i in range(200)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                for record in records:
                    cache.entry(record.key)
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers:
        thread.start()
    for _ in range(300):
        for record in records:
            cache.put(record)
        for record in records:
            cache.drop(record.key)
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []


def test_store_work_that_never_answers_is_a_503_not_a_hung_thread(tmp_path: Path) -> None:
    sync = _sync(tmp_path)
    sync.timeout = 0.2
    try:
        with pytest.raises(StoreUnavailable):
            sync.run(asyncio.sleep(60))
        assert sync.run(asyncio.sleep(0, result="still serving")) == "still serving"
    finally:
        sync.stop()
