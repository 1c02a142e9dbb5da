"""Which client IP login throttling and the session listing see."""

from __future__ import annotations

from starlette.requests import Request

from authstate.asgi.client import client_info


def _request(forwarded: str | None) -> Request:
    headers = [(b"user-agent", b"test-agent")]
    if forwarded is not None:
        headers.append((b"x-forwarded-for", forwarded.encode()))
    return Request({"type": "http", "headers": headers, "client": ("10.0.0.9", 5555)})


def test_forwarded_headers_are_ignored_unless_trusted() -> None:
    assert client_info(_request("1.2.3.4"), trust_forwarded=False).ip == "10.0.0.9"


def test_a_client_cannot_choose_its_ip_by_prepending_to_x_forwarded_for() -> None:
    # The proxy appended the real address; the client wrote the first entry itself.
    info = client_info(_request("6.6.6.6, 203.0.113.7"), trust_forwarded=True)
    assert info.ip == "203.0.113.7"
    assert info.user_agent == "test-agent"
