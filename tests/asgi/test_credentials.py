"""``asgi.credentials``: one credential per scope, for http and websocket scopes alike."""

from __future__ import annotations

from typing import Any

import pytest

from authstate.asgi.credentials import CredentialReader
from authstate.cookies import AUTH_COOKIE, REFRESH_COOKIE, CookiePolicy
from authstate.errors import BadRequest, PayloadTooLarge

TOKEN = "abc.def.ghi"


def scope(kind: str, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": kind, "headers": list(headers)}


def reader(*, bearer: bool = True) -> CredentialReader:
    return CredentialReader(CookiePolicy(), bearer=bearer)


@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_the_cookie_or_the_header_of_either_kind_of_scope(kind: str) -> None:
    cookie = reader().read(scope(kind, (b"cookie", f"{AUTH_COOKIE}=s1".encode())))
    assert (cookie.value, cookie.transport, cookie.had_cookie) == ("s1", "cookie", True)
    header = reader().read(scope(kind, (b"authorization", f"Bearer {TOKEN}".encode())))
    assert (header.value, header.transport, header.had_cookie) == (TOKEN, "bearer", False)
    nothing = reader().read(scope(kind, (b"host", b"x")))
    assert (nothing.value, nothing.transport, nothing.had_cookie) == (None, None, False)


@pytest.mark.parametrize(
    "cookie",
    [f"{AUTH_COOKIE}=s1", f"{REFRESH_COOKIE}=r1", f"{AUTH_COOKIE}=a; {AUTH_COOKIE}=b"],
)
@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_a_credential_cookie_beside_a_bearer_header_is_refused(kind: str, cookie: str) -> None:
    for authorization in (f"Bearer {TOKEN}", "Bearer not a token"):
        with pytest.raises(BadRequest, match="not both"):
            reader().read(
                scope(
                    kind, (b"cookie", cookie.encode()), (b"authorization", authorization.encode())
                )
            )


def test_with_bearer_off_the_header_is_not_read() -> None:
    both = scope("http", (b"cookie", f"{AUTH_COOKIE}=s1".encode()), (b"authorization", b"Bearer x"))
    assert reader(bearer=False).read(both).value == "s1"
    header_only = scope("http", (b"authorization", f"Bearer {TOKEN}".encode()))
    assert reader(bearer=False).read(header_only).value is None


def test_a_malformed_header_is_an_anonymous_bearer_request() -> None:
    credential = reader().read(scope("http", (b"authorization", b"Bearer a b")))
    assert (credential.value, credential.transport) == (None, "bearer")


def test_a_basic_header_beside_the_cookie_leaves_the_cookie_in_charge() -> None:
    credential = reader().read(
        scope("http", (b"cookie", f"{AUTH_COOKIE}=s1".encode()), (b"authorization", b"Basic eA=="))
    )
    assert (credential.value, credential.transport) == ("s1", "cookie")


def test_an_oversized_cookie_header_is_still_a_413() -> None:
    with pytest.raises(PayloadTooLarge):
        reader().read(scope("http", (b"cookie", b"a=" + b"x" * 17000)))


def test_a_remembered_header_keeps_every_rule_of_the_request_it_comes_in() -> None:
    """The reader remembers how a Cookie or Authorization header reads; what depends on
    the rest of the request (a cookie beside the header, the header twice) is judged anew."""
    once = reader()
    bearer = (b"authorization", f"Bearer {TOKEN}".encode())
    cookie = (b"cookie", f"{AUTH_COOKIE}=s1".encode())
    for _ in range(2):  # the second time from what the reader remembers
        header = once.read(scope("http", bearer))
        assert (header.value, header.transport, header.had_cookie) == (TOKEN, "bearer", False)
        assert once.read(scope("http", cookie)).value == "s1"
    with pytest.raises(BadRequest, match="not both"):
        once.read(scope("http", cookie, bearer))
    with pytest.raises(BadRequest, match="not both"):
        once.read(scope("http", bearer, cookie))
    twice = once.read(scope("http", bearer, (b"authorization", b"Basic eA==")))
    assert (twice.value, twice.transport) == (None, "bearer")
    # The same auth cookie in two Cookie headers (HTTP/2 splits them) is a duplicate.
    assert once.read(scope("http", cookie, cookie)).value is None
    assert once.read(scope("http", (b"host", b"x"))).value is None


def test_what_the_reader_remembers_is_bounded() -> None:
    many = reader()
    for index in range(5000):
        many.read(scope("http", (b"authorization", f"Bearer t{index}".encode())))
        many.read(scope("http", (b"cookie", f"{AUTH_COOKIE}=s{index}".encode())))
    assert len(many._tokens) <= 4096
    assert len(many._readings) <= 4096
