"""What the cookie alone costs the HTTP stack: server CPU per request through uvicorn.

Three configurations, interleaved, four runs of 3 s each (about 40 s in all, 127.0.0.1
only, stops by itself): the no-auth app without a cookie (the bench's baseline), the same
app sent a logged-in hybrid cookie it ignores, and authstate in hybrid mode on the memory
store. The first difference is the HTTP layer reading the Cookie header; the second is
authstate.

    .venv/bin/python benchmarks/cookie_transport.py
"""

from __future__ import annotations

import os
import statistics
import tempfile

from authstate.bench.e2e import one_run
from authstate.bench.servers import Server

ROUNDS, SECONDS, CONNECTIONS = 4, 3.0, 32


def main() -> None:
    log = os.path.join(tempfile.mkdtemp(), "servers.log")
    base = Server({"kind": "none"}, http="h11", loop="asyncio", log=log)
    auth = Server(
        {"kind": "authstate", "mode": "hybrid", "store": "memory://"},
        http="h11",
        loop="asyncio",
        log=log,
    )
    try:
        base.wait_ready()
        cookie = auth.wait_ready()
        runs = {"no auth, no cookie": (base, ""), "no auth, sent the cookie": (base, cookie)}
        runs["authstate hybrid / memory"] = (auth, cookie)
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(ROUNDS):
            for name, (server, sent) in runs.items():
                run = one_run(server, sent, duration=SECONDS, connections=CONNECTIONS)
                cpu[name].append(run.cpu_us_per_request)
        print(f"server CPU µs per request, median of {ROUNDS} runs ({len(cookie)}-byte cookie):")
        for name, values in cpu.items():
            print(f"  {name:28s} {statistics.median(values):7.1f}")
    finally:
        base.stop()
        auth.stop()


if __name__ == "__main__":
    main()
