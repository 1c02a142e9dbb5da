"""The store: records, change events and ``Store``, every store protocol together.

A store sees only hashes, records and sealed bytes: never a raw session ID, refresh token or
private key. Every driver failure is translated to ``StoreUnavailable`` at the store's edge.

The *change log* is the store's half of the invalidation bus. ``publish()`` persists a
``Change`` (assigning it a sequence number) and broadcasts it to every node's listener;
``changes_since()`` lets a node catch up after a reconnect or at start.

Sequence numbers only mean something within one *log epoch*: a random id the store keeps next
to its counter and makes anew whenever it finds the log missing (an emptied Redis, a fresh
schema or file). ``read_log()`` returns the epoch and the head seq with the changes, so a node
notices when the store lost data (the epoch changed, or the head went below what the node
already delivered: a restored snapshot, a replica that was behind) and reconciles instead of
waiting, forever, for numbers it has already seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from authstate.stores.protocols import (
    ChangeBus,
    Generations,
    GrantStore,
    KeyStore,
    Lifecycle,
    LoginThrottle,
    SessionDataStore,
    SessionStore,
    UserStore,
)
from authstate.stores.records import (
    LATEST,
    Change,
    ChangeKind,
    ChangeListener,
    LogRead,
    Reconciler,
    SessionRecord,
    StoredKey,
    UserGrants,
    UserRecord,
)

__all__ = [
    "LATEST",
    "Change",
    "ChangeBus",
    "ChangeKind",
    "ChangeListener",
    "Generations",
    "GrantStore",
    "KeyStore",
    "Lifecycle",
    "LogRead",
    "LoginThrottle",
    "Reconciler",
    "SessionDataStore",
    "SessionRecord",
    "SessionStore",
    "Store",
    "StoreFactory",
    "StoredKey",
    "UserGrants",
    "UserRecord",
    "UserStore",
]


@runtime_checkable
class Store(
    Lifecycle,
    SessionStore,
    SessionDataStore,
    ChangeBus,
    Generations,
    KeyStore,
    UserStore,
    LoginThrottle,
    GrantStore,
    Protocol,
):
    """Every store protocol (``protocols``): what ``open_store`` returns and what the
    built-in backends implement. A consumer should ask for the narrow protocols it uses."""


StoreFactory = Callable[[str], Awaitable[Store]]
