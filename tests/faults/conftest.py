"""Fault tests share the multinode fixtures: a schema or key prefix of the test's own."""

from __future__ import annotations

from tests.multinode.conftest import postgres_schema_url, redis_prefixed_url

__all__ = ["postgres_schema_url", "redis_prefixed_url"]
