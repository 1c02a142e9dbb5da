"""A throwaway 3-master Redis Cluster for the tests (``authstate.bench.redis_cluster``).

``redis_cluster_url`` (session scope) yields ``redis+cluster://127.0.0.1:PORT`` of a local
cluster started in a temporary directory and stopped when the session ends. Without the
binaries the tests skip (or fail with AUTHSTATE_REQUIRE_SERVICES=1, as in CI).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from authstate.bench.redis_cluster import ClusterUnavailable, local_cluster
from tests.conftest import unavailable


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        cluster = local_cluster(tmp_path_factory.mktemp("redis-cluster"))
        ports = cluster.__enter__()
    except ClusterUnavailable as exc:
        unavailable(str(exc))
    try:
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
    finally:
        cluster.__exit__(None, None, None)
