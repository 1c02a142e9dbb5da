"""Login throughput under a flood of wrong passwords versus normal logins, over real HTTP.

    .venv/bin/python fuzz/login_flood.py [--seconds 10] [--concurrency 16] [--mode hybrid]

Starts ``authstate serve`` on 127.0.0.1 (a free port, a temporary SQLite store, the
production argon2id parameters m=19 MiB t=2), creates users, then runs, each for
``--seconds`` (at most 20):

1. normal: correct passwords, ``--concurrency`` clients, each its own user and its own
   loopback address (127.0.0.2, .3, ...);
2. flood, throttled: wrong passwords for one account from one address, default limits
   (the account and address buckets answer 429 after 10 failures);
3. flood, unthrottled: wrong passwords for many names from many addresses with the login
   limit raised to 10^6 (every attempt costs a real argon2 verification: the node's raw
   capacity for failed logins);

and during each phase it measures GET /auth/me of an already logged-in user (the node
must keep serving while argon2 is saturated). Prints one table; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

PASSWORD = "correct horse battery staple"
MAX_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(*args: str, env: dict[str, str], stdin: str = "") -> None:
    subprocess.run(
        [sys.executable, "-m", "authstate.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )


class Server:
    def __init__(self, folder: Path, mode: str, *, max_attempts: int, users: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        store = f"sqlite:///{folder / f'flood-{max_attempts}.db'}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSTATE_")}
        self.env["AUTHSTATE_LOGIN_MAX_ATTEMPTS"] = str(max_attempts)
        for i in range(users):
            cli(
                "users",
                "add",
                f"user{i}",
                "--password-stdin",
                "--store",
                store,
                env=self.env,
                stdin=PASSWORD,
            )
        self.log = (folder / f"serve-{self.port}.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "authstate.cli",
                "serve",
                "--mode",
                mode,
                "--store",
                store,
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env=self.env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("authstate serve did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)
        self.log.close()


async def run_for(
    seconds: float,
    concurrency: int,
    attempt: Callable[[httpx.AsyncClient, int], Awaitable[int]],
    *,
    one_address: bool,
) -> tuple[Counter[int], int]:
    """Run ``attempt`` from ``concurrency`` clients for ``seconds``; count statuses.

    Each client connects from its own loopback address (127.0.0.2, .3, ...) unless
    ``one_address``: the server throttles per address, as it would per real client."""
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds

    async def worker(index: int) -> None:
        source = "127.0.0.2" if one_address else f"127.0.0.{index + 2}"
        transport = httpx.AsyncHTTPTransport(local_address=source)
        async with httpx.AsyncClient(timeout=30, transport=transport) as client:
            while time.monotonic() < deadline:
                statuses[await attempt(client, index)] += 1

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return statuses, sum(statuses.values())


async def probe(url: str, cookie: str, stop: asyncio.Event) -> list[float]:
    """GET /auth/me every 50 ms while the phase runs; return latencies in ms."""
    latencies = []
    async with httpx.AsyncClient(timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            response = await client.get(f"{url}/auth/me", headers={"cookie": cookie})
            if response.status_code == 200:
                latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.05)
    return latencies


def login_cookie(url: str, name: str) -> str:
    response = httpx.post(f"{url}/auth/login", json={"username": name, "password": PASSWORD})
    response.raise_for_status()
    return "; ".join(
        h.split(";")[0] for h in response.headers.get_list("set-cookie") if "Path=/;" in h
    )


async def phase(
    name: str,
    server: Server,
    seconds: float,
    concurrency: int,
    attempt: Callable[[httpx.AsyncClient, int], Awaitable[int]],
    probe_user: str,
    *,
    one_address: bool = False,
) -> dict[str, object]:
    cookie = login_cookie(server.url, probe_user)
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(server.url, cookie, stop))
    started = time.monotonic()
    statuses, total = await run_for(seconds, concurrency, attempt, one_address=one_address)
    elapsed = time.monotonic() - started
    stop.set()
    latencies = await prober
    return {
        "phase": name,
        "req/s": round(total / elapsed, 1),
        "statuses": dict(sorted(statuses.items())),
        "me p50 ms": round(statistics.median(latencies), 1) if latencies else None,
        "me max ms": round(max(latencies), 1) if latencies else None,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--mode", default="hybrid", choices=("stateless", "session", "hybrid"))
    args = parser.parse_args()
    seconds = min(args.seconds, MAX_SECONDS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = Server(folder, args.mode, max_attempts=10, users=args.concurrency + 1)
        try:

            async def good(client: httpx.AsyncClient, index: int) -> int:
                response = await client.post(
                    f"{server.url}/auth/login",
                    json={"username": f"user{index}", "password": PASSWORD},
                )
                return response.status_code

            async def wrong_one_account(client: httpx.AsyncClient, index: int) -> int:
                response = await client.post(
                    f"{server.url}/auth/login",
                    json={"username": "user0", "password": secrets.token_hex(8)},
                )
                return response.status_code

            probe_user = f"user{args.concurrency}"
            rows.append(
                await phase("normal logins", server, seconds, args.concurrency, good, probe_user)
            )
            rows.append(
                await phase(
                    "wrong passwords, throttled",
                    server,
                    seconds,
                    args.concurrency,
                    wrong_one_account,
                    probe_user,
                    one_address=True,
                )
            )
        finally:
            server.stop()
        server = Server(folder, args.mode, max_attempts=1_000_000, users=1)
        try:

            async def wrong_many(client: httpx.AsyncClient, index: int) -> int:
                response = await client.post(
                    f"{server.url}/auth/login",
                    json={"username": f"user{secrets.randbelow(10**6)}", "password": "wrong"},
                )
                return response.status_code

            rows.append(
                await phase(
                    "wrong passwords, unthrottled",
                    server,
                    seconds,
                    args.concurrency,
                    wrong_many,
                    "user0",
                )
            )
        finally:
            server.stop()
    print(f"mode {args.mode}, {args.concurrency} clients, {seconds:g} s per phase, 127.0.0.1")
    for row in rows:
        print("  ".join(f"{key}={value}" for key, value in row.items()))


if __name__ == "__main__":
    asyncio.run(main())
