"""The SQLite store: one database file shared by the server processes of one machine.

Durability (docs/stores.md: a SIGKILLed server loses no committed session). The journal is WAL
with ``synchronous=NORMAL``: a commit has written its WAL frames to the operating system
before the call returns, so the data survives the process being killed; only an OS crash
or power loss can drop the last few commits (never corrupt the file). ``FULL`` would add
an fsync per commit, milliseconds on the event loop per login, against a failure the
design does not ask us to survive; pass ``synchronous="FULL"`` to pay for it.

One part per concern: the connection, schema and error translation (``_sqlite_db``: no
thread hop, write lock and busy handling), sessions and refresh families
(``_sqlite_sessions``), the change log and its poller (``_sqlite_bus``), keys, users
and login throttling (``_sqlite_accounts``), and live roles and claims (``_sqlite_grants``).
"""

from __future__ import annotations

from authstate.stores._sqlite_accounts import SQLiteAccounts
from authstate.stores._sqlite_bus import SQLiteBus
from authstate.stores._sqlite_db import SCHEMA, SCHEMA_VERSION, sqlite_path
from authstate.stores._sqlite_grants import SQLiteGrants
from authstate.stores._sqlite_sessions import SQLiteSessions

__all__ = ["SCHEMA", "SCHEMA_VERSION", "SQLiteStore", "sqlite_path"]


class SQLiteStore(SQLiteSessions, SQLiteBus, SQLiteAccounts, SQLiteGrants):
    """A ``Store`` in one SQLite file, safe for several processes on one machine.

    ``SessionRecord.data`` must be JSON-serialisable (``TypeError`` otherwise). Text that is
    not valid Unicode (a lone surrogate) cannot be stored: lookups of it find nothing and
    writes of it raise ``ValueError``.
    """

    url_scheme = "sqlite"
