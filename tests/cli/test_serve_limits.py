"""``authstate serve`` against clients that hold connections or send too much (chaos F1/F3,
red-team F4): every case runs a real server and a raw socket client on 127.0.0.1."""

from __future__ import annotations

import json
import resource
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from tests.cli.serve_process import Served, clean_env, serve, wait_until

pytestmark = pytest.mark.slow

PROBE = Path(__file__).with_name("nodelay_probe.py")
MEMORY = ("--mode", "session", "--store", "memory://")
SHORT = {"AUTHSTATE_HEADER_TIMEOUT": "0.5", "AUTHSTATE_BODY_TIMEOUT": "0.5"}
# Every wait below is an upper bound for something that should happen far sooner.
BOUND = 10.0


@contextmanager
def connection(served: Served) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", served.port), timeout=BOUND) as sock:
        yield sock


def closed_by_server(sock: socket.socket) -> bytes | None:
    """What the server sent before closing, or None if it kept the connection open."""
    received = b""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            return None
        if not chunk:
            return received
        received += chunk
    return None


def get(path: str = "/healthz") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_keep_alive_responses_are_not_held_back_for_the_clients_delayed_ack(
    tmp_path: Path,
) -> None:
    # With Nagle on, a response written as head then body waits ~40 ms for the client's
    # delayed ACK on every keep-alive request after the first (22.8 req/s on one connection).
    probe_file = tmp_path / "nodelay.txt"
    env = clean_env(NODELAY_PROBE_FILE=str(probe_file))
    command = [sys.executable, str(PROBE)]
    with serve(tmp_path, *MEMORY, env=env, command=command) as server, connection(server) as client:
        for _ in range(3):
            client.sendall(get())
            assert read_response(client).startswith(b"HTTP/1.1 200")
        server.process.send_signal(signal.SIGUSR1)
        assert wait_until(probe_file.exists, timeout=BOUND)
        nodelay = dict(line.split() for line in probe_file.read_text().split("\n") if line)
        assert nodelay[str(client.getsockname()[1])] == "1"


def test_start_up_objects_are_frozen_out_of_full_garbage_collections(tmp_path: Path) -> None:
    # A full collection walks every tracked object; what start-up built lives as long as
    # the process, so authstate serve freezes it (benchmarks/gc_pause.py has the numbers).
    probe_file = tmp_path / "probe.txt"
    env = clean_env(NODELAY_PROBE_FILE=str(probe_file))
    with serve(tmp_path, *MEMORY, env=env, command=[sys.executable, str(PROBE)]) as server:
        server.process.send_signal(signal.SIGUSR1)
        assert wait_until(probe_file.exists, timeout=BOUND)
    report = dict(line.split() for line in probe_file.read_text().split("\n") if line)
    assert int(report["gc-frozen"]) > 10_000


def test_a_connection_that_never_sends_a_byte_is_closed_after_the_header_timeout(
    tmp_path: Path,
) -> None:
    with serve(tmp_path, *MEMORY, env=clean_env(**SHORT)) as server:
        with connection(server) as idle:
            assert closed_by_server(idle) == b""
        assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_a_head_sent_a_byte_at_a_time_gets_408_and_is_closed(tmp_path: Path) -> None:
    env = clean_env(**SHORT)
    with serve(tmp_path, *MEMORY, env=env) as server, connection(server) as slowloris:
        slowloris.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        slowloris.settimeout(0.2)
        answer = None
        for byte in b"X-Slow: " + b"a" * 200:
            try:
                slowloris.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            with suppress(TimeoutError):
                answer = slowloris.recv(65536)
                break
        assert answer is not None and answer.startswith(b"HTTP/1.1 408"), answer


def test_a_body_that_trickles_in_gets_408_and_logs_no_traceback(tmp_path: Path) -> None:
    with serve(tmp_path, *MEMORY, env=clean_env(**SHORT)) as server:
        with connection(server) as slow:
            slow.sendall(
                b"POST /auth/login HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"
            )
            slow.settimeout(0.2)
            answer = None
            for _ in range(int(BOUND / 0.2)):
                try:
                    slow.sendall(b" ")
                    answer = slow.recv(65536)
                except (BrokenPipeError, ConnectionResetError):
                    answer = b""
                except TimeoutError:
                    continue
                break
            assert answer is not None and answer.startswith(b"HTTP/1.1 408"), answer
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert "Traceback" not in server.stderr


def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(
    tmp_path: Path,
) -> None:
    env = clean_env(AUTHSTATE_KEEPALIVE_TIMEOUT="1")
    with serve(tmp_path, *MEMORY, env=env) as server, connection(server) as client:
        client.sendall(get())
        assert read_response(client).startswith(b"HTTP/1.1 200")
        client.settimeout(4)  # uvicorn's own default would be 5 s
        assert closed_by_server(client) == b""


def send_huge_header(sock: socket.socket, size: int) -> bytes | None:
    """Send a head with one ``size``-byte header, never finishing it; return the answer.

    A server that buffers the whole line never answers (the head is not complete)."""
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ")
    chunk = b"a" * 16384
    try:
        for _ in range(size // len(chunk)):
            sock.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        return b""  # closed before the line was all sent: not buffered whole
    return closed_by_server(sock)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_one_mib_header_line_is_refused_before_it_is_all_read(
    tmp_path: Path, workers: int
) -> None:
    store = f"sqlite:///{tmp_path / 'a.db'}"
    with serve(tmp_path, "--workers", str(workers), "--store", store) as server:
        with connection(server) as client:
            answer = send_huge_header(client, 1024 * 1024)
        assert answer is not None
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:100]
        assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_two_workers_close_connections_that_send_nothing(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'a.db'}"
    args = ("--workers", "2", "--store", store)
    with serve(tmp_path, *args, env=clean_env(**SHORT)) as server, connection(server) as idle:
        assert closed_by_server(idle) == b""


def low_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def test_a_client_holding_more_connections_than_the_file_limit_gets_503s_not_a_log_flood(
    tmp_path: Path,
) -> None:
    # 1,100 idle connections against a 1,024-file node wrote 343,534 accept() tracebacks
    # in 30 s. Here: 100 connections against 64 files.
    env = clean_env(AUTHSTATE_HEADER_TIMEOUT="1")
    with serve(tmp_path, *MEMORY, env=env, preexec_fn=low_file_limit) as server:
        with ExitStack() as held:
            socks = [
                held.enter_context(socket.create_connection(("127.0.0.1", server.port)))
                for _ in range(100)
            ]
            # Over the cap: 503 and closed at once; within it, or left in the backlog until
            # a file is free: closed by the header timeout. Which of the two each one gets
            # depends on scheduling; that every one is closed does not (the cap's own 503 is
            # tested below).
            answers = [closed_by_server(sock) for sock in socks[-10:]]
            assert None not in answers
        # The held connections time out, and new ones are served again.
        assert wait_until(lambda: _healthy(server), timeout=BOUND)
    log = server.stderr
    assert "Traceback" not in log
    assert len(log.splitlines()) < 15, log[:3000]
    events = [json.loads(line).get("event") for line in log.splitlines()]
    assert events.count("connection_budget") == 1


def test_a_connection_over_the_cap_gets_503_at_once(tmp_path: Path) -> None:
    env = clean_env(AUTHSTATE_MAX_CONNECTIONS="3", AUTHSTATE_HEADER_TIMEOUT="30")
    with serve(tmp_path, *MEMORY, env=env) as server, ExitStack() as held:
        for _ in range(3):
            held.enter_context(connection(server))
        time.sleep(0.5)  # let the server accept the three
        with connection(server) as extra:
            answer = closed_by_server(extra)
        assert answer is not None and answer.startswith(b"HTTP/1.1 503"), answer


def _healthy(served: Served) -> bool:
    try:
        return httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_an_upgrade_to_a_route_without_websocket_is_refused_without_warnings(
    tmp_path: Path,
) -> None:
    # The head passed the limits before the connection left the HTTP protocol; a route
    # that is not a WebSocket refuses the handshake, and nothing extra is logged per request.
    with serve(tmp_path, *MEMORY) as server, connection(server) as client:
        client.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        assert read_response(client).startswith(b"HTTP/1.1 403")
    assert "upgrade" not in server.stderr.lower()


def test_an_upgrade_request_gets_the_head_cap_like_any_other(tmp_path: Path) -> None:
    with serve(tmp_path, *MEMORY) as server, connection(server) as client:
        client.sendall(
            b"GET /auth/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\nX-Filler: " + b"a" * (1024 * 1024)
        )
        answer = closed_by_server(client)
    assert answer is not None and answer.startswith(b"HTTP/1.1 431"), answer
