"""Revocation: how long until a logout-everywhere on one node is enforced on the others.

Three node processes share one store (each its own ``AuthState``, connections and bus
subscription). Per trial: node 0 logs a fresh user in; every node authenticates the
cookie (so it is cached, the hard case); node 0 runs ``logout_everywhere`` and notes
the time; nodes 1 and 2 note the moment their ``authenticate`` first refuses the cookie.
They check on every change their bus delivers (a listener registered after authstate's
own) and, as a safety net, every 2 ms. Times are ``time.monotonic()``, one clock for
every process of the machine. Reported: p50/p99 over both nodes and all trials.

Memory stores are not shared between processes: only SQLite (the bus is a poll of the
change log, every 0.2 s by default), PostgreSQL and Redis are measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from authstate.bench._context import Context
from authstate.bench._env import ensure_postgres_schema
from authstate.bench._timing import percentile
from authstate.bench.report import Table, ms

NODES = 3
_TRIAL_TIMEOUT = 5.0
_POLL_SECONDS = 0.002
SHARED_KINDS = ("sqlite", "redis", "postgres")


# -- the node process -------------------------------------------------------------------------
def node_main(conn: Connection, spec: dict[str, Any]) -> None:
    """Entry point of a node process (spawned)."""
    import logging

    logging.disable(logging.WARNING)  # a refused cookie is the expected outcome here
    asyncio.run(_node(conn, spec))


async def _node(conn: Connection, spec: dict[str, Any]) -> None:
    from authstate.bench.apps import start_authstate
    from authstate.errors import AuthenticationError

    auth = await start_authstate(spec)
    watched: set[str] = set()
    loop = asyncio.get_running_loop()

    async def check(value: str) -> None:
        if value not in watched:
            return
        try:
            await auth.authenticate(value)
        except AuthenticationError:
            if value in watched:
                watched.discard(value)
                conn.send(("enforced", value, time.monotonic()))

    tasks: set[asyncio.Task[None]] = set()

    def on_change(change: Any) -> None:  # after authstate's own listener has applied it
        for value in list(watched):
            task = loop.create_task(check(value))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def poll() -> None:
        while True:
            await asyncio.sleep(_POLL_SECONDS)
            for value in list(watched):
                await check(value)

    await auth.store.listen(on_change)
    poller = asyncio.create_task(poll())
    conn.send(("started", auth.store.describe_bus()))
    try:
        while True:
            command = await asyncio.to_thread(conn.recv)
            if command[0] == "login":
                issued = await auth.login(command[1], ["staff"])
                conn.send(("login", issued.auth_value))
            elif command[0] in ("cache", "watch"):
                await auth.authenticate(command[1])  # cached from now on
                await auth.authenticate(command[1])
                if command[0] == "watch":
                    watched.add(command[1])
                conn.send(("watching",))
            elif command[0] == "logout_all":
                started = time.monotonic()
                await auth.logout_everywhere(command[1])
                conn.send(("logged_out", started, time.monotonic()))
            elif command[0] == "stop":
                break
    finally:
        poller.cancel()
        with contextlib.suppress(BaseException):
            await poller
        await auth.stop()
        conn.send(("stopped",))


# -- the runner side --------------------------------------------------------------------------
class Nodes:
    def __init__(self, spec: dict[str, Any]) -> None:
        context = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.processes = []
        for _ in range(NODES):
            mine, theirs = context.Pipe()
            process = context.Process(target=node_main, args=(theirs, spec), daemon=True)
            process.start()
            self.conns.append(mine)
            self.processes.append(process)

    def expect(self, index: int, kind: str, timeout: float = 30.0) -> tuple[Any, ...]:
        conn = self.conns[index]
        if not conn.poll(timeout):
            raise RuntimeError(f"node {index} did not answer {kind!r} in time")
        message: tuple[Any, ...] = conn.recv()
        if message[0] != kind:
            raise RuntimeError(f"node {index} answered {message[0]!r}, expected {kind!r}")
        return message

    def stop(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(("stop",))
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)


def trial(nodes: Nodes, user: str) -> list[float]:
    """One logout-everywhere; the delays (ms) until nodes 1.. refused the cookie."""
    nodes.conns[0].send(("login", user))
    value = nodes.expect(0, "login")[1]
    for index in range(NODES):
        # Node 0 caches the cookie too; it refuses it as soon as its own call applies the
        # change, so only the others are timed.
        nodes.conns[index].send(("cache" if index == 0 else "watch", value))
    for index in range(NODES):
        nodes.expect(index, "watching")
    nodes.conns[0].send(("logout_all", user))
    started = nodes.expect(0, "logged_out")[1]
    delays = []
    for index in range(1, NODES):
        enforced = nodes.expect(index, "enforced", timeout=_TRIAL_TIMEOUT)
        delays.append((enforced[2] - started) * 1000)
    return delays


async def run(ctx: Context) -> Table:
    options = ctx.options
    kinds = ctx.store_kinds(SHARED_KINDS)
    if options.quick and len(kinds) > 1:
        kinds = [k for k in kinds if k != "sqlite"] or kinds  # the network buses matter most
    progress = ctx.progress
    progress.section("revocation", len(kinds) * options.trials)
    table = Table(
        "revocation",
        f"Revocation: logout-everywhere on node 0 until enforced on the other "
        f"{NODES - 1} nodes (hybrid mode, cached cookie), ms",
        ["store", "trials", "p50", "p99", "max", "bus"],
    )
    for kind in kinds:
        url = ctx.stores.fresh(kind, "revocation")
        if kind == "postgres":
            await ensure_postgres_schema(url)
        spec = {"mode": "hybrid", "store": url}
        bus = "-"
        nodes = None
        delays: list[float] = []
        failure = ""
        try:
            # The first node creates the schema and the first key; then the others start.
            nodes = await asyncio.to_thread(Nodes, spec)
            for index in range(NODES):
                started = await asyncio.to_thread(nodes.expect, index, "started", 60.0)
                bus = started[1]  # what the node's own store says, not a label of ours
            for number in range(options.trials):
                delays.extend(await asyncio.to_thread(trial, nodes, f"revoked-{number}"))
                progress.advance("revocation", what=kind)
        except Exception as exc:
            failure = str(exc) or repr(exc)
        finally:
            if nodes is not None:
                await asyncio.to_thread(nodes.stop)
        table.add(
            [
                kind,
                len(delays) // (NODES - 1),
                ms(percentile(delays, 0.5)),
                ms(percentile(delays, 0.99)),
                ms(max(delays, default=float("nan"))),
                bus,
            ],
            store=kind,
            trials=len(delays) // (NODES - 1),
            p50_ms=percentile(delays, 0.5),
            p99_ms=percentile(delays, 0.99),
            max_ms=max(delays, default=None),
            delays_ms=delays,
            bus=bus,
            failure=failure,
        )
        if failure:
            table.notes.append(f"{kind}: stopped early: {failure}")
    table.notes.append(
        "Each node is its own process with its own connections; the clock is time.monotonic() "
        "(one clock for the machine). The cookie was verified and cached on every node first."
    )
    progress.finish("revocation")
    return table
