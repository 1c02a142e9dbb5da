"""A change kind this node does not know (a newer node wrote it during a rolling upgrade)
is read in sequence and acted on by nobody: it must never stop a bus or a log read."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from authstate import FrozenClock
from authstate.revocation import RevocationState
from authstate.stores._redis_layout import change_entry
from authstate.stores.base import Change, ChangeKind
from authstate.stores.sqlite import SQLiteStore

T0 = 1_800_000_000.0


def test_an_unknown_kind_decodes_as_unknown() -> None:
    assert ChangeKind("from-a-newer-node") is ChangeKind.UNKNOWN
    assert ChangeKind("login") is ChangeKind.LOGIN  # known kinds are untouched
    entry = change_entry(b"7|" + json.dumps(["from-a-newer-node", "u1", T0, 0]).encode())
    assert (entry.kind, entry.value, entry.seq) == (ChangeKind.UNKNOWN, "u1", 7)


def test_the_revocation_state_ignores_it_and_keeps_the_sequence() -> None:
    state = RevocationState(FrozenClock(T0))
    state.apply(Change(ChangeKind.UNKNOWN, "u1", until=T0 + 60, generation=9, seq=5))
    assert len(state) == 0
    assert state.minimum_generation("u1") == 0


@pytest.mark.anyio
async def test_a_sqlite_log_with_an_unknown_kind_is_read_and_followed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    store = SQLiteStore(url)
    await store.open()
    try:
        first = await store.publish(Change(ChangeKind.SID, "h1", until=T0 + 60))
        with sqlite3.connect(tmp_path / "a.db") as db:  # what a newer node would write
            db.execute(
                "INSERT INTO changes (kind, value, until, generation) VALUES (?, ?, ?, 0)",
                ("from-a-newer-node", "u1", T0 + 60),
            )
        last = await store.publish(Change(ChangeKind.JTI, "j1", until=T0 + 60))
        read = await store.changes_since(0)
        assert [c.kind for c in read] == [ChangeKind.SID, ChangeKind.UNKNOWN, ChangeKind.JTI]
        assert read[0].seq == first.seq and read[-1].seq == last.seq
    finally:
        await store.close()
