"""The PostgreSQL schema of authstate and its migrations.

Every table is prefixed ``authstate_`` and lives in the connection's current schema (the
first entry of ``search_path``), so one database can hold several independent stores.
``authstate_schema`` records which migrations ran. ``migrate()`` runs in one transaction
behind an advisory lock, so nodes starting at the same moment apply each migration exactly
once and the others wait for it and then find nothing to do.

How records map to rows, and why text columns go through an escape: ``_pg_rows``.
"""

from __future__ import annotations

from typing import Any

from authstate.errors import ConfigurationError

_V1 = """
CREATE TABLE authstate_sessions (
    handle        text PRIMARY KEY,
    key           text NOT NULL UNIQUE,              -- SHA-256 hex of the client's secret
    user_id       text NOT NULL,
    kind          text NOT NULL,
    created_at    double precision NOT NULL,
    last_seen_at  double precision NOT NULL,
    expires_at    double precision NOT NULL,
    idle_timeout  double precision NOT NULL,
    roles         text NOT NULL,                     -- JSON array
    user_agent    text NOT NULL,
    ip            text NOT NULL,
    data          text NOT NULL,                     -- JSON object
    previous_key  text,
    rotated_at    double precision,
    generation    bigint NOT NULL,
    inserted      bigserial NOT NULL                 -- newest-first tie-break
);
CREATE INDEX authstate_sessions_user
    ON authstate_sessions (user_id, created_at DESC, inserted DESC);
-- The moment a session dies (absolute or idle), for purge_expired.
CREATE INDEX authstate_sessions_dies ON authstate_sessions ((
    CASE WHEN idle_timeout > 0 THEN LEAST(expires_at, last_seen_at + idle_timeout)
         ELSE expires_at END));

-- Refresh keys a family has rotated away from: presenting one again is reuse. They go
-- with their family (logout, reuse, purge) and by themselves at the family's expiry.
CREATE TABLE authstate_consumed (
    key         text PRIMARY KEY,
    handle      text NOT NULL REFERENCES authstate_sessions (handle) ON DELETE CASCADE,
    expires_at  double precision NOT NULL
);
CREATE INDEX authstate_consumed_handle ON authstate_consumed (handle);
CREATE INDEX authstate_consumed_expires ON authstate_consumed (expires_at);

-- The change log. seq comes from the counter row, not a sequence: incrementing it locks
-- the row until commit, so publishers commit in seq order and a reader that has seen seq
-- N has seen every change below N (a sequence can commit 8 after 9, and a catch-up from
-- 9 would then skip 8 for ever).
CREATE TABLE authstate_counters (
    name   text PRIMARY KEY,
    value  bigint NOT NULL
);
INSERT INTO authstate_counters (name, value) VALUES ('changes', 0);
CREATE TABLE authstate_changes (
    seq         bigint PRIMARY KEY,
    kind        text NOT NULL,
    value       text NOT NULL,
    until       double precision NOT NULL,
    generation  bigint NOT NULL
);
CREATE INDEX authstate_changes_until ON authstate_changes (until);

CREATE TABLE authstate_generations (
    user_id     text PRIMARY KEY,
    generation  bigint NOT NULL
);

CREATE TABLE authstate_keys (
    kid             text PRIMARY KEY,
    alg             text NOT NULL,
    sealed_private  bytea NOT NULL,
    public_jwk      text NOT NULL,
    created_at      double precision NOT NULL,
    retire_after    double precision
);

CREATE TABLE authstate_users (
    id             text PRIMARY KEY,
    username       text NOT NULL UNIQUE,
    password_hash  text NOT NULL,
    roles          text NOT NULL,                    -- JSON array
    created_at     double precision NOT NULL,
    disabled       boolean NOT NULL
);

CREATE TABLE authstate_failures (
    id         bigserial PRIMARY KEY,
    bucket     text NOT NULL,
    at         double precision NOT NULL,
    forget_at  double precision NOT NULL
);
CREATE INDEX authstate_failures_bucket ON authstate_failures (bucket, at);
CREATE INDEX authstate_failures_forget ON authstate_failures (forget_at);
"""

# Live roles and claims (``_pg_grants``): the user's record, and its copy in every session.
_V2 = """
ALTER TABLE authstate_sessions
    ADD COLUMN claims text NOT NULL DEFAULT '{}',      -- JSON object
    ADD COLUMN roles_version bigint NOT NULL DEFAULT 0;
CREATE TABLE authstate_grants (
    user_id  text PRIMARY KEY,
    version  bigint NOT NULL,
    roles    text,                                     -- JSON array; NULL: never set
    claims   text NOT NULL                             -- JSON object
);
"""

# Step-up's auth_time (0: the session's created_at) and the remember-me choice.
_V3 = """
ALTER TABLE authstate_sessions
    ADD COLUMN auth_time double precision NOT NULL DEFAULT 0,
    ADD COLUMN remember boolean NOT NULL DEFAULT true;
"""

# Append only: migration N (1-based) upgrades a schema at version N-1.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)


async def migrate(conn: Any) -> int:
    """Bring the current schema up to date; return the version now in place.

    Raises ``ConfigurationError`` when the database was migrated by a newer authstate.
    """
    async with conn.transaction():
        # Serialises concurrent starts on the same schema; released at commit. Without it
        # two nodes would race on CREATE TABLE and one would fail on a catalog conflict.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('authstate_schema'),"
            " hashtext(COALESCE(current_schema(), '')))"
        )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS authstate_schema ("
            " version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM authstate_schema"))
        if current > len(MIGRATIONS):
            raise ConfigurationError(
                f"the PostgreSQL schema is at version {current}, newer than this authstate"
                f" knows ({len(MIGRATIONS)}); upgrade authstate"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            await conn.execute(MIGRATIONS[version - 1])
            await conn.execute("INSERT INTO authstate_schema (version) VALUES ($1)", version)
        return len(MIGRATIONS)
