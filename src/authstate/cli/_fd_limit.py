"""How many connections ``authstate serve`` can hold open without running out of files.

Each connection is a file descriptor. A process at its open-file limit cannot accept at
all (EMFILE), and asyncio then retries and logs in a tight loop (chaos report F3). So the
soft limit is raised towards the hard one at start-up, and the connection cap is lowered
to what fits under it, leaving room for the store's connections, the database and logs.
"""

from __future__ import annotations

import logging
import resource

logger = logging.getLogger("authstate.server")

# Descriptors kept for everything that is not a client connection (store pools, SQLite
# files, the event loop, stdio).
RESERVED_FILES = 48


def connection_budget(max_connections: int) -> int:
    """The connection cap to use: ``max_connections``, or less if the file limit is lower.

    Raises the soft ``RLIMIT_NOFILE`` up to the hard limit when that makes room."""
    wanted = max_connections + RESERVED_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if raised > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return max_connections
    budget = max(1, soft - RESERVED_FILES)
    logger.warning(
        "the open-file limit (%d) leaves room for %d connections, not AUTHSTATE_MAX_CONNECTIONS=%d",
        soft,
        budget,
        max_connections,
        extra={"event": "connection_budget", "budget": budget},
    )
    return budget
