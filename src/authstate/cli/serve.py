"""``authstate serve``: the reference server on uvicorn.

One process by default, with the ``AuthState`` started before uvicorn so that ``--demo``
users exist (even on ``memory://``) and a bad store fails before anything listens.
``--workers N`` runs N processes on one listening socket through uvicorn's supervisor;
each worker builds its app from ``AUTHSTATE_*``, which we set from the flags.

SIGTERM and SIGINT shut down gracefully (open requests finish) and exit with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import os
import signal
import socket
from typing import Any

from starlette.applications import Starlette

from authstate.asgi.auth_state import AuthState
from authstate.cli._accept_errors import AcceptErrorLog
from authstate.cli._common import UsageError, display_url, opened, settings_from, store_option
from authstate.cli._fd_limit import connection_budget
from authstate.server.app import create_app
from authstate.server.logs import configure_logging
from authstate.server.metrics_route import MISSING as METRICS_MISSING
from authstate.server.users import DEMO_USERS, create_demo_users
from authstate.settings import Settings

WORKER_APP = "authstate.cli.serve:worker_app"


def register(commands: Any) -> None:
    parser = commands.add_parser("serve", help="run the reference server")
    parser.add_argument(
        "--mode",
        choices=("stateless", "session", "hybrid"),
        default=None,
        help="what the auth cookie holds: a JWT, a session ID, or a short JWT with a rotating "
        "refresh token (default: $AUTHSTATE_MODE or hybrid)",
    )
    store_option(parser)
    parser.add_argument("--host", default=None, help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8000)")
    parser.add_argument(
        "--demo", action="store_true", help="create users alice and bob; print their passwords"
    )
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="processes (default 1)")
    parser.add_argument(
        "--metrics",
        action="store_true",
        default=None,
        help="serve GET /metrics in the Prometheus text format (needs authstate[metrics]; "
        "default: $AUTHSTATE_METRICS or off)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    settings = settings_from(
        args, mode=args.mode, host=args.host, port=args.port, metrics=args.metrics
    )
    if settings.metrics and importlib.util.find_spec("prometheus_client") is None:
        raise UsageError(METRICS_MISSING)
    if args.workers > 1 and settings.store.startswith("memory:"):
        raise UsageError("--workers needs a shared store: memory:// lives inside one process")
    configure_logging()
    sock = _bind(settings.host, settings.port)
    # Ours, not Python's defaults: uvicorn re-raises the signal that stopped it once it has
    # shut down, and the default SIGTERM action would turn a clean stop into a kill.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        if args.workers == 1:
            asyncio.run(_serve_one(settings, sock, demo=args.demo))
        else:
            _serve_workers(settings, sock, demo=args.demo, workers=args.workers)
    finally:
        sock.close()
    print("authstate stopped", flush=True)
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a busy port is a one-line error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listening socket says TCP, and without it every keep-alive response waited ~40 ms for
    # the client's delayed ACK (chaos F1). The protocol sets it too (cli/_http.py).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _banner(settings: Settings, sock: socket.socket, workers: int) -> None:
    from authstate.cli._http import websocket_protocol

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    # Secure cookies work over plain HTTP on the loopback address: point browsers there.
    browse = f"http://localhost:{port}/" if host in ("127.0.0.1", "::1") else None
    print(f"authstate listening on http://{shown}:{port}", flush=True)
    print(f"  mode:  {settings.mode}", flush=True)
    print(f"  store: {display_url(settings.store)}", flush=True)
    if workers > 1:
        print(f"  workers: {workers}", flush=True)
    if websocket_protocol() is None:
        print(
            "  websocket: off (GET /auth/ws needs the websockets package:"
            " pip install 'authstate[server]')",
            flush=True,
        )
    if browse:
        print(
            f"  open {browse} in a browser (loopback: Secure cookies work over plain HTTP)",
            flush=True,
        )


def _print_demo(passwords: dict[str, str]) -> None:
    print("demo users (passwords are shown only now):", flush=True)
    roles = dict(DEMO_USERS)
    for name, password in passwords.items():
        extra = f"  (roles: {', '.join(roles[name])})" if roles.get(name) else ""
        print(f"  {name:<6} {password}{extra}", flush=True)


async def _serve_one(settings: Settings, sock: socket.socket, *, demo: bool) -> None:
    import uvicorn

    AcceptErrorLog().install(asyncio.get_running_loop())
    auth = AuthState(settings)
    await auth.start()
    try:
        passwords = await create_demo_users(auth.accounts) if demo else {}
        app = create_app(auth=auth)
        server = uvicorn.Server(_uvicorn_config(app, settings))
        _freeze_startup_objects()
        _banner(settings, sock, 1)
        if passwords:
            _print_demo(passwords)
        await server.serve(sockets=[sock])
    finally:
        await auth.stop()


def _freeze_startup_objects() -> None:
    """Move what start-up built (modules, the app, the key ring) out of the GC's reach.

    Those objects live as long as the process, yet every full collection walks them
    again: about a tenth of a full collection's pause with a full token cache
    (benchmarks/gc_pause.py). Collected first, so no garbage is frozen with them."""
    gc.collect()
    gc.freeze()


def _serve_workers(settings: Settings, sock: socket.socket, *, demo: bool, workers: int) -> None:
    from uvicorn.supervisors import Multiprocess

    passwords = asyncio.run(_demo_users(settings)) if demo else {}
    # Workers are fresh interpreters: they read their settings from the environment.
    os.environ.update(
        {
            "AUTHSTATE_MODE": settings.mode,
            "AUTHSTATE_STORE": settings.store,
            "AUTHSTATE_HOST": settings.host,
            "AUTHSTATE_PORT": str(settings.port),
            "AUTHSTATE_METRICS": "1" if settings.metrics else "0",
        }
    )
    config = _uvicorn_config(WORKER_APP, settings, workers=workers)
    _banner(settings, sock, workers)
    if passwords:
        _print_demo(passwords)
    Multiprocess(config, sockets=[sock]).run()


async def _demo_users(settings: Settings) -> dict[str, str]:
    async with opened(settings) as auth:
        return await create_demo_users(auth.accounts)


def _uvicorn_config(app: Starlette | str, settings: Settings, *, workers: int = 1) -> Any:
    import uvicorn

    from authstate.cli._http import (
        WEBSOCKET_MAX_MESSAGE_BYTES,
        GuardedHttpProtocol,
        websocket_protocol,
    )

    # This process's copy; each --workers process configures its own in worker_app.
    max_connections = connection_budget(settings.max_connections)
    GuardedHttpProtocol.configure(settings, max_connections)
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_config=None,  # ours (configure_logging), not uvicorn's dictConfig
        access_log=False,  # AccessLog writes structured lines instead
        server_header=False,
        proxy_headers=settings.trust_forwarded,
        lifespan="on",
        timeout_graceful_shutdown=10,
        # The limits of chaos F3 and red-team F4 (docs/deploy.md, "Connection limits").
        # No limit_concurrency: the protocol refuses connections over the cap as they
        # arrive, where uvicorn's limit would answer 503 only after reading a head, and
        # already at the cap itself (it compares with >=).
        http=GuardedHttpProtocol,
        timeout_keep_alive=int(settings.keepalive_timeout.total_seconds()),
        # WebSocket (/auth/ws, docs/http.md) when the websockets package is installed; the
        # HTTP protocol hands a connection over only after its head passed the limits.
        ws=websocket_protocol() or "none",
        ws_max_size=WEBSOCKET_MAX_MESSAGE_BYTES,
        # Small JSON messages: compression would cost ~100 KiB of zlib state per socket.
        ws_per_message_deflate=False,
    )


def worker_app() -> Starlette:
    """The app of one ``--workers`` process (an import-string factory for uvicorn).

    uvicorn calls it inside the worker's running loop, before the socket is served."""
    from authstate.cli._http import GuardedHttpProtocol

    configure_logging()
    settings = Settings.from_env()
    GuardedHttpProtocol.configure(settings, connection_budget(settings.max_connections))
    AcceptErrorLog().install(asyncio.get_running_loop())
    app = create_app(settings)
    _freeze_startup_objects()
    return app
