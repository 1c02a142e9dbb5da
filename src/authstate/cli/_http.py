"""The HTTP/1.1 protocol of ``authstate serve``: uvicorn's httptools protocol with limits.

uvicorn on its own bounds only the idle time between two requests (``timeout_keep_alive``).
A client that connects and sends nothing, sends its head a byte a second, trickles a body,
or sends a header line of any size is served forever and buffered whole (chaos report F3,
red-team report F4). This protocol adds, per connection:

- a head deadline: the request line and headers must arrive within ``header_timeout`` of
  the connection opening, or of the first byte of a later request on it;
- a body deadline: the whole body within ``body_timeout`` of the end of its head;
- a head cap: an unfinished head longer than ``max_header_bytes`` gets 431 and the
  connection is closed, so at most the cap plus one socket read is ever buffered;
- a connection cap: connections beyond ``max_connections`` get 503 and are closed at once;
- WebSocket upgrades (``websocket_protocol``) leave these deadlines behind once the head
  is read, and stay counted in the connection cap;
- ``TCP_NODELAY`` on every accepted socket: with Nagle on, a response written as head and
  body waits for the client's delayed ACK, about 40 ms per keep-alive request (chaos F1).

A passed deadline closes the connection (a head that had started gets ``408`` first).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from authstate.settings import Settings


def _canned(status: bytes) -> bytes:
    return b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


SERVICE_UNAVAILABLE = _canned(b"503 Service Unavailable")
HEADERS_TOO_LARGE = _canned(b"431 Request Header Fields Too Large")
REQUEST_TIMEOUT = _canned(b"408 Request Timeout")


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# uvicorn's WebSocket protocol on the ``websockets`` package (in ``authstate[server]``).
WEBSOCKET_PROTOCOL = "websockets-sansio"
# /auth/ws and typical application messages are small: a bigger frame closes the socket.
WEBSOCKET_MAX_MESSAGE_BYTES = 64 * 1024


def websocket_protocol() -> str | None:
    """uvicorn's ``ws`` setting: the ``websockets`` protocol, or None when the package is
    missing (then Upgrade requests are plain HTTP and /auth/ws answers 404)."""
    try:
        import websockets  # noqa: F401
    except ImportError:
        return None
    return WEBSOCKET_PROTOCOL


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head/body deadlines and a head cap (see module)."""

    # Class attributes, set once per process by ``configure``: uvicorn makes an instance
    # per connection from the class, and ``--workers`` sends it to workers by name.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1000

    @classmethod
    def configure(cls, settings: Settings, max_connections: int) -> None:
        cls.header_timeout = settings.header_timeout.total_seconds()
        cls.body_timeout = settings.body_timeout.total_seconds()
        cls.max_header_bytes = settings.max_header_bytes
        cls.max_connections = max_connections

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # the next bytes belong to a request head
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            # Over the cap: answer and let the descriptor go at once, so the process never
            # reaches its open-file limit (uvicorn's own limit answers 503 only after a head).
            self._refuse(SERVICE_UNAVAILABLE)
            return
        set_nodelay(transport)
        # Counts from the connection itself: a client that never sends a byte is closed too.
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing: a chunk that also holds the end of the head (and a body)
        # has reset the count in on_headers_complete and is not held against the head.
        if self._in_head and self._head_bytes > self.max_header_bytes:
            self._refuse(HEADERS_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        if self._deadline is None:  # after keep-alive idle: the next head starts now
            self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()
        self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        super().on_message_complete()

    def _unsupported_upgrade_warning(self) -> None:
        # Without a WebSocket implementation (ws="none") an Upgrade request is served as
        # plain HTTP and logged once by the access log; uvicorn's two warnings per request
        # would let any client triple the log.
        return

    def handle_websocket_upgrade(self) -> None:
        # The connection leaves this protocol for the WebSocket one: the head/body deadline
        # armed for the upgrade request must not close the socket later. The WebSocket
        # protocol keeps counting in the connection cap (it joins the same set), and its
        # pings close a peer that stopped answering.
        self._disarm()
        super().handle_websocket_upgrade()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._deadline_passed)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        started = self._head_bytes > 0 or not self._in_head
        response_started = self.cycle is not None and self.cycle.response_started
        self._refuse(REQUEST_TIMEOUT if started and not response_started else b"")

    def _refuse(self, response: bytes) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        if response:
            self.transport.write(response)
        self.transport.close()
