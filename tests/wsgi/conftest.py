"""The multi-node tests' store fixtures (a Redis prefix, a PostgreSQL schema of the test's own)."""

from tests.multinode.conftest import postgres_schema_url, redis_prefixed_url

__all__ = ["postgres_schema_url", "redis_prefixed_url"]
