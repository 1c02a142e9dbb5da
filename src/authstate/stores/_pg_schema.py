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


# How schema 4 stores a key (or previous key) and a handle that were text before: the same
# mapping as ``_pg_rows.key_to_db``/``handle_to_db`` (the text is already escaped).
def _key_bytes(column: str) -> str:
    return (
        f"CASE WHEN {column} ~ '^[0-9a-f]{{64}}$' THEN decode({column}, 'hex')"
        f" WHEN octet_length(convert_to({column}, 'UTF8')) = 31"
        f" THEN decode('ffff', 'hex') || convert_to({column}, 'UTF8')"
        f" ELSE decode('ff', 'hex') || convert_to({column}, 'UTF8') END"
    )


def _handle_bytes(column: str) -> str:
    return (
        f"CASE WHEN {column} ~ '^[A-Za-z0-9_-]{{21}}[AQgw]$'"
        f" THEN decode(translate({column}, '-_', '+/') || '==', 'base64')"
        f" WHEN octet_length(convert_to({column}, 'UTF8')) = 15"
        f" THEN decode('ffff', 'hex') || convert_to({column}, 'UTF8')"
        f" ELSE decode('ff', 'hex') || convert_to({column}, 'UTF8') END"
    )


# The sessions table rebuilt for size (issue 17): 8-byte columns first (no alignment
# padding), keys and handles as bytes, the kind as one byte, the values most rows share as
# NULL (see _pg_rows). Uniqueness of the key and the handle by hash indexes (4 bytes an
# entry instead of the whole value), the user's sessions by a plain (deduplicated) index on
# the user: listing sorts a user's few rows. The consumed keys follow their family by a
# trigger instead of a foreign key (which would need a B-tree on the handle).
# The purge index holds the moment a session dies in whole seconds: equal seconds
# deduplicate, and the purge rechecks the exact moment.
_DIES = (
    "(CASE WHEN idle_timeout > 0 THEN LEAST(expires_at, last_seen_at + idle_timeout)"
    " ELSE expires_at END)"
)
DIES_SECOND = f"(floor(LEAST(GREATEST({_DIES}, -9e18), 9e18))::bigint)"
# Built from constants only (S608).
PURGE_SESSIONS = (
    f"DELETE FROM authstate_sessions WHERE {DIES_SECOND} <= floor($1::float8)::bigint"  # noqa: S608
    f" AND {_DIES} <= $1"
)
_V4 = f"""
ALTER TABLE authstate_consumed DROP CONSTRAINT IF EXISTS authstate_consumed_handle_fkey;
ALTER SEQUENCE authstate_sessions_inserted_seq OWNED BY NONE;
CREATE TABLE authstate_sessions_v4 (
    created_at     double precision NOT NULL,
    last_seen_at   double precision NOT NULL,
    expires_at     double precision NOT NULL,
    idle_timeout   double precision NOT NULL,
    inserted       bigint NOT NULL DEFAULT nextval('authstate_sessions_inserted_seq'),
    generation     bigint,                            -- NULL: 0
    roles_version  bigint,                            -- NULL: 0
    auth_time      double precision,                  -- NULL: created_at
    rotated_at     double precision,
    remember       boolean NOT NULL,
    kind           "char" NOT NULL CHECK (kind IN ('s', 'r')),  -- session, refresh family
    key            bytea NOT NULL,                    -- SHA-256 of the client's secret
    handle         bytea NOT NULL,
    user_id        text NOT NULL,
    roles          text NOT NULL,                     -- JSON array
    user_agent     text NOT NULL,
    ip             text NOT NULL,
    data           text,                              -- JSON object; NULL: {{}}
    claims         text,                              -- JSON object; NULL: {{}}
    previous_key   bytea
);
INSERT INTO authstate_sessions_v4 (created_at, last_seen_at, expires_at, idle_timeout,
    inserted, generation, roles_version, auth_time, rotated_at, remember, kind, key, handle,
    user_id, roles, user_agent, ip, data, claims, previous_key)
SELECT created_at, last_seen_at, expires_at, idle_timeout, inserted, NULLIF(generation, 0),
    NULLIF(roles_version, 0), NULLIF(auth_time, created_at), rotated_at, remember,
    -- Any other kind is NULL and stops the migration (NOT NULL): never cut to a letter.
    (CASE kind WHEN 'session' THEN 's' WHEN 'refresh' THEN 'r' END)::"char",
    {_key_bytes("key")}, {_handle_bytes("handle")}, user_id, roles,
    user_agent, ip, NULLIF(data, '{{}}'), NULLIF(claims, '{{}}'), {_key_bytes("previous_key")}
FROM authstate_sessions ORDER BY inserted;
-- The new table gets the old one's grants (an application role given only SELECT, INSERT,
-- UPDATE, DELETE keeps them).
DO $$
DECLARE
    grant_ record;
BEGIN
    FOR grant_ IN
        SELECT acl.privilege_type, acl.grantee, acl.is_grantable
        FROM pg_class c, aclexplode(c.relacl) acl
        WHERE c.oid = 'authstate_sessions'::regclass AND acl.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON authstate_sessions_v4 TO %s%s', grant_.privilege_type,
            CASE WHEN grant_.grantee = 0 THEN 'PUBLIC'
                 ELSE quote_ident(pg_get_userbyid(grant_.grantee)) END,
            CASE WHEN grant_.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;
DROP TABLE authstate_sessions;
ALTER TABLE authstate_sessions_v4 RENAME TO authstate_sessions;
ALTER SEQUENCE authstate_sessions_inserted_seq OWNED BY authstate_sessions.inserted;
ALTER TABLE authstate_sessions
    ADD CONSTRAINT authstate_sessions_key EXCLUDE USING hash (key WITH =)
        WITH (fillfactor = 100),
    ADD CONSTRAINT authstate_sessions_handle EXCLUDE USING hash (handle WITH =)
        WITH (fillfactor = 100);
CREATE INDEX authstate_sessions_user ON authstate_sessions (user_id);
CREATE INDEX authstate_sessions_dies ON authstate_sessions ({DIES_SECOND});

ALTER TABLE authstate_consumed
    ALTER COLUMN key TYPE bytea USING {_key_bytes("key")},
    ALTER COLUMN handle TYPE bytea USING {_handle_bytes("handle")};
CREATE FUNCTION authstate_forget_consumed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM authstate_consumed c USING gone WHERE c.handle = gone.handle;
    RETURN NULL;
END $$;
CREATE TRIGGER authstate_sessions_forget_consumed AFTER DELETE ON authstate_sessions
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
    EXECUTE FUNCTION authstate_forget_consumed();
"""  # noqa: S608 - built from constants only

# Append only: migration N (1-based) upgrades a schema at version N-1.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4)


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
