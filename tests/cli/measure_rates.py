"""Logins per second and ``GET /auth/me`` per second of a local ``authstate serve``, per mode.

Not a test (pytest does not collect it) nor `authstate bench` (docs/performance.md): a short,
bounded measurement for the issue's closing note. 127.0.0.1 only; each phase runs ``--seconds``.

    .venv/bin/python -m tests.cli.measure_rates --seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from tests.cli.serve_process import cookie_header, serve


async def rate(call: Callable[[], Awaitable[None]], concurrency: int, seconds: float) -> float:
    """Calls per second of ``call`` from ``concurrency`` tasks for ``seconds``."""
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await call()
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def measure(url: str, password: str, seconds: float) -> tuple[float, float]:
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    credentials = {"username": "alice", "password": password}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        first = await client.post("/auth/login", json=credentials)
        cookie = cookie_header(first)

        async def login() -> None:
            response = await client.post("/auth/login", json=credentials)
            if response.status_code != 200:
                raise RuntimeError(response.text)

        async def me() -> None:
            response = await client.get("/auth/me", headers={"cookie": cookie})
            if response.status_code != 200:
                raise RuntimeError(response.text)

        # Logins are argon2-bound (two worker threads): a few concurrent clients saturate them.
        return await rate(login, 4, seconds), await rate(me, 16, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    for mode in ("stateless", "session", "hybrid"):
        with tempfile.TemporaryDirectory() as tmp:
            store = f"sqlite:///{Path(tmp) / 'authstate.db'}"
            with serve(Path(tmp), "--demo", "--mode", mode, "--store", store) as server:
                password = server.demo_passwords()["alice"]
                logins, mes = asyncio.run(measure(server.url, password, args.seconds))
        print(f"{mode:<9}  {logins:6.1f} logins/s  {mes:7.1f} GET /auth/me per s", flush=True)


if __name__ == "__main__":
    main()
