"""A small HTTP/1.1 load generator, for machines without wrk.

    python -m authstate.bench.loadgen URL --connections 32 --duration 10 --cookie "a=b"

prints one JSON object: requests, seconds, requests_per_second, p50_ms, p99_ms, non_2xx,
errors. Keep-alive connections on one asyncio loop, each sending the next request when
the previous answer is complete (no pipelining), like ``wrk -t1 -cN``. It only targets
127.0.0.1 and stops by itself after ``--duration`` seconds.

On 2 cores it competes with the server it measures: one Python process spends a
large share of a core per request. wrk (C, one thread) leaves the server more room, so
fallback numbers are lower and the ratios compress toward 1; the report says which
generator ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

from authstate.bench._timing import percentile


async def _connection(
    host: str,
    port: int,
    request: bytes,
    deadline: float,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        counts["errors"] += 1
        return
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not 200 <= status < 400:
                counts["non_2xx"] += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        counts["errors"] += 1
    finally:
        writer.close()


async def run(
    url: str, *, connections: int, duration: float, cookie: str, header: str = "Cookie"
) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("the load generator only targets this machine")
    lines = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}", "User-Agent: loadgen"]
    if cookie:
        lines.append(f"{header}: {cookie}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    latencies: list[float] = []
    counts = {"non_2xx": 0, "errors": 0}
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.wait_for(
        asyncio.gather(
            *(
                _connection(host, port, request, deadline, latencies, counts)
                for _ in range(connections)
            )
        ),
        timeout=duration + 10,
    )
    seconds = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "seconds": seconds,
        "requests_per_second": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "non_2xx": counts["non_2xx"],
        "errors": counts["errors"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m authstate.bench.loadgen")
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--cookie", default="")
    parser.add_argument("--header", default="Cookie", help="the header --cookie goes in")
    args = parser.parse_args(argv)
    result = asyncio.run(
        run(
            args.url,
            connections=args.connections,
            duration=args.duration,
            cookie=args.cookie,
            header=args.header,
        )
    )
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
