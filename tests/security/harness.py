"""The attack harness (security research §0, H1-H7) around the reference app.

- H1 raw cookie control: ``Node.raw(...)`` sends any ``Cookie`` header bytes, no jar.
- H2 token forge: ``tests.crypto.forge.forge`` (raw header/payload bytes, any signature).
- H3 the server's test keys: ``Node.signing_key()``; ``Node.mint(...)`` signs any claims.
- H4 an injectable clock: every node runs on a ``FrozenClock``.
- H5 a loopback listener that records every request: ``Recorder``.
- H6 direct store access: ``Node.store`` and ``Node.snapshot()``.
- H7 log capture: every record of the ``authstate`` loggers lands in ``LOG``, and every
  credential the harness sees is noted in ``SECRETS`` for the catalogue-wide log check.

Clients talk to the app through httpx's ASGI transport at ``https://testserver`` (the
cookies are ``Secure`` and ``__Host-``), from a client IP the test chooses.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from starlette.applications import Starlette

from authstate import AuthState, FrozenClock, Settings
from authstate.cookies import AUTH_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from authstate.crypto.ids import b64url_encode, new_jti
from authstate.crypto.keys import SigningKey
from authstate.passwords import PasswordHasher
from authstate.server.app import create_app
from authstate.server.logs import JSONLineFormatter
from tests.crypto.forge import forge

BASE = "https://testserver"
ORIGIN = "https://testserver"
PASSWORD = "correct horse battery staple"
MODES = ("stateless", "session", "hybrid")
JWT_MODES = ("stateless", "hybrid")
STATEFUL_MODES = ("session", "hybrid")
# The unsafe routes a logged-in user has, with a body each accepts (CSRF targets).
UNSAFE_ROUTES: tuple[tuple[str, str, dict[str, str] | None], ...] = (
    ("POST", "/auth/logout", None),
    ("POST", "/auth/logout-all", None),
    ("POST", "/auth/password", {"current_password": PASSWORD, "new_password": "n3w-passw0rd!"}),
)


# -- H7: logs and the secrets that must never be in them ------------------------------------
LOG: list[str] = []
SECRETS: set[str] = set()
PASSWORDS: set[str] = {PASSWORD}


def note_secret(*values: str | None) -> None:
    """Remember credentials (tokens, IDs, key material) for the catalogue-wide log check."""
    for value in values:
        if value and len(value) >= 16:
            SECRETS.add(value)


def note_password(*values: str) -> None:
    for value in values:
        if len(value) >= 8:
            PASSWORDS.add(value)


class CollectingHandler(logging.Handler):
    """Formats every record as the server would (JSON line with ``extra`` fields) into LOG."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JSONLineFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        LOG.append(self.format(record))


def fast_hasher() -> PasswordHasher:
    return PasswordHasher(memory_kib=64, time_cost=1, unsafe_allow_weak_parameters=True)


# -- sessions -----------------------------------------------------------------------------------
@dataclass
class Session:
    """A logged-in browser: its cookies and CSRF token, and a client that sends them."""

    node: Node
    client: httpx.AsyncClient
    user_id: str
    csrf: str
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def auth(self) -> str:
        return self.cookies[AUTH_COOKIE]

    @property
    def refresh(self) -> str | None:
        return self.cookies.get(REFRESH_COOKIE)

    @property
    def headers(self) -> dict[str, str]:
        return {"x-csrf-token": self.csrf}

    def take(self, response: httpx.Response) -> None:
        """Update the cookies (and CSRF token) from a response, as a browser would."""
        for name, value in set_cookies(response).items():
            if value:
                self.cookies[name] = value
                note_secret(value)
            else:
                self.cookies.pop(name, None)
        if CSRF_COOKIE in self.cookies:
            self.csrf = self.cookies[CSRF_COOKIE]

    async def me(self) -> httpx.Response:
        return await self.client.get("/auth/me")

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        response = await self.client.post(path, headers=headers, **kwargs)
        self.take(response)
        return response

    async def refresh_now(self) -> httpx.Response:
        return await self.post("/auth/refresh")

    def token_claims(self) -> dict[str, Any]:
        """The decoded (unverified) claims of this session's access JWT."""
        return decode_segment(self.auth.split(".")[1])


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """``{name: value}`` of every ``Set-Cookie`` (an empty value clears the cookie)."""
    result = {}
    for header in response.headers.get_list("set-cookie"):
        name, rest = header.split("=", 1)
        value = rest.split(";", 1)[0]
        result[name] = "" if "Max-Age=0" in header else value
    return result


def decode_segment(segment: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return data


# -- the node -----------------------------------------------------------------------------------
@dataclass
class Node:
    """One running reference app (``create_app``) with its ``AuthState`` and clock."""

    auth: AuthState
    app: Starlette
    clock: FrozenClock
    users: dict[str, str] = field(default_factory=dict)  # name -> id

    @property
    def mode(self) -> str:
        return self.auth.settings.mode

    @property
    def store(self) -> Any:
        return self.auth.store

    def client(self, *, ip: str = "127.0.0.1", **kwargs: Any) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 50_000))
        return httpx.AsyncClient(transport=transport, base_url=BASE, **kwargs)

    async def add_user(
        self, name: str, password: str = PASSWORD, roles: tuple[str, ...] = ("staff",)
    ) -> str:
        user = await self.auth.accounts.add_user(name, password, roles)
        note_password(password)
        self.users[name] = user.id
        return user.id

    async def login(
        self, name: str = "mallory", password: str = PASSWORD, *, ip: str = "127.0.0.1"
    ) -> Session:
        client = self.client(ip=ip)
        response = await client.post("/auth/login", json={"username": name, "password": password})
        if response.status_code != 200:
            await client.aclose()
            raise AssertionError(f"login of {name} failed: {response.status_code} {response.text}")
        body = response.json()
        session = Session(self, client, body["user"]["id"], body["csrf_token"])
        session.take(response)
        session.csrf = body["csrf_token"]
        note_secret(session.csrf)
        return session

    async def raw(
        self,
        method: str,
        path: str,
        *,
        cookie: str | bytes | None = None,
        headers: Mapping[str, str | bytes] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request from a fresh client (no jar) with exactly the given Cookie header."""
        sent: list[tuple[bytes, bytes]] = []
        if cookie is not None:
            sent.append(
                (b"cookie", cookie.encode("latin-1") if isinstance(cookie, str) else cookie)
            )
        for name, value in (headers or {}).items():
            sent.append(
                (name.encode(), value.encode("latin-1") if isinstance(value, str) else value)
            )
        async with self.client() as client:
            return await client.request(method, path, headers=sent, **kwargs)

    async def whoami(self, cookie: str | bytes) -> str | None:
        """The user id ``GET /auth/me`` answers for this Cookie header, or None on 401.

        Anything but 200 and 401 fails the test: a malformed credential is never a 5xx."""
        response = await self.raw("GET", "/auth/me", cookie=cookie)
        assert response.status_code in (200, 401), (response.status_code, response.text)
        if response.status_code == 401:
            assert response.json() == {
                "error": "unauthenticated",
                "detail": "authentication required",
            }
            assert AUTH_COOKIE + "=" not in response.headers.get("set-cookie", "")
            return None
        user_id: str = response.json()["user"]["id"]
        return user_id

    async def whoami_token(self, token: str) -> str | None:
        return await self.whoami(f"{AUTH_COOKIE}={token}")

    # -- grey box --------------------------------------------------------------------------
    def signing_key(self) -> SigningKey:
        return self.auth.context.keys.ring.signing_key()

    def claims(self, user: str = "mallory", **changes: Any) -> dict[str, Any]:
        """Valid access-token claims for ``user`` now; a value of ``...`` drops a claim."""
        settings = self.auth.settings
        now = int(self.clock.now())
        claims: dict[str, Any] = {
            "iss": settings.issuer,
            "aud": settings.audience,
            "sub": self.users.get(user, user),
            "iat": now,
            "nbf": now,
            "exp": now + settings.access_ttl_seconds,
            "jti": new_jti(),
            "roles": ["staff"],
            "gen": 0,
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not ...}

    async def live_claims(self, user: str = "alice", **changes: Any) -> dict[str, Any]:
        """``claims(user)`` the node accepts when signed: in hybrid mode with the ``sid`` of
        a family the user really has (a login). ``changes`` apply after."""
        claims = self.claims(user)
        if self.mode == "hybrid":
            claims["sid"] = (await self.login(user)).token_claims()["sid"]
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not ...}

    def mint(
        self,
        claims: Mapping[str, Any] | bytes,
        *,
        header: Mapping[str, Any] | bytes | None = None,
        key: SigningKey | None = None,
        **header_changes: Any,
    ) -> str:
        """A token signed with the server's own key (or ``key``) over exactly these parts."""
        signer = key or self.signing_key()
        if header is None:
            base: dict[str, Any] = {"alg": signer.alg, "typ": "at+jwt", "kid": signer.kid}
            base.update(header_changes)
            header = {k: v for k, v in base.items() if v is not ...}
        token = forge(header, claims, signer)
        note_secret(token)
        return token

    async def snapshot(self) -> dict[str, Any]:
        """What "no state change" compares: users, sessions, revocations, failures, keys."""
        store = self.store
        users = await store.list_users()
        sessions = {u.id: sorted(r.key for r in await store.list_sessions(u.id)) for u in users}
        changes, seq = await store.active_revocations(self.clock.now())
        return {
            "users": sorted((u.id, u.password_hash, u.disabled) for u in users),
            "sessions": sessions,
            "revocations": sorted((c.kind, c.value) for c in changes),
            "seq": seq,
            "keys": sorted(k.kid for k in await store.load_keys()),
        }


async def asgi_request(
    app: Starlette,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    *,
    client: tuple[str, int] = ("127.0.0.1", 50_000),
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One request straight through ASGI, with header bytes no HTTP client would send
    (control characters, non-ASCII); returns status, headers and body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": client,
        "server": ("testserver", 443),
    }
    sent = False
    status = 0
    response_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: Mapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers.extend(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, response_headers, b"".join(chunks)


def key_material(auth: AuthState) -> list[str]:
    """Every spelling of the node's private keys a careless log could contain."""
    spellings: list[str] = []
    for key in auth.context.keys.ring.keys:
        if key.private_key is None:
            continue
        raw = key.private_bytes()
        spellings += [b64url_encode(raw), base64.b64encode(raw).decode(), raw.hex()]
    for secret in (auth.context.refresh_key,):
        spellings += [b64url_encode(secret), secret.hex()]
    return spellings


@asynccontextmanager
async def running(
    mode: str = "hybrid",
    store: str = "memory://",
    *,
    clock: FrozenClock | None = None,
    hasher: PasswordHasher | None = None,
    users: tuple[str, ...] = ("mallory", "alice"),
    **overrides: Any,
) -> AsyncIterator[Node]:
    """A started reference app in ``mode`` on ``store``, with the named users."""
    overrides.setdefault("allowed_hosts", "testserver")
    settings = Settings.from_env({}, mode=mode, store=store, **overrides)
    clock = clock or FrozenClock()
    auth = AuthState(settings, clock=clock, password_hasher=hasher or fast_hasher())
    app = create_app(auth=auth)
    async with auth:
        node = Node(auth, app, clock)
        note_secret(*key_material(auth))
        for name in users:
            await node.add_user(name)
        yield node


# -- H5: a loopback listener that records every request ------------------------------------------
@dataclass
class Recorder:
    """An HTTP server on 127.0.0.1 (ephemeral port) that records each request line and
    answers ``body`` (JSON) to every GET."""

    body: Mapping[str, Any] | bytes = field(default_factory=dict)
    status: int = 200
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def recorder(
    body: Mapping[str, Any] | bytes | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Iterator[Recorder]:
    rec = Recorder(body if body is not None else {}, status, headers or {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            rec.requests.append(f"GET {self.path}")
            payload = rec.body if isinstance(rec.body, bytes) else json.dumps(rec.body).encode()
            self.send_response(rec.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in rec.extra_headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            rec.requests.append(f"POST {self.path}")
            self.send_response(404)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
