"""``authstate.asgi.client.client_info``: the User-Agent a login records, read as the
browser sent it (UTF-8), and the IP."""

from __future__ import annotations

from starlette.requests import Request

from authstate.asgi.client import client_info


def request(
    headers: list[tuple[bytes, bytes]], client: tuple[str, int] = ("10.0.0.7", 5000)
) -> Request:
    return Request({"type": "http", "headers": headers, "client": client, "method": "GET"})


def test_the_user_agent_is_utf8_as_the_browser_sent_it() -> None:
    info = client_info(request([(b"user-agent", "Café/1.0 東京".encode())]))
    assert info.user_agent == "Café/1.0 東京"
    assert info.ip == "10.0.0.7"


def test_utf8_of_a_c1_control_stays_one_control_and_bad_bytes_become_replacements() -> None:
    # Read as Latin-1, "\xc2\x9b" would be "Â" plus U+009B: mojibake and a control.
    assert client_info(request([(b"user-agent", b"Mozilla\xc2\x9b31m")])).user_agent == (
        "Mozilla\x9b31m"
    )
    assert client_info(request([(b"user-agent", b"a\xff\xfeb")])).user_agent == "a\ufffd\ufffdb"


def test_the_user_agent_is_cut_to_256_characters_and_may_be_absent() -> None:
    assert len(client_info(request([(b"user-agent", "é".encode() * 300)])).user_agent) == 256
    assert client_info(request([])).user_agent == ""


def test_only_a_trusted_proxy_sets_the_ip_and_its_entry_is_the_rightmost() -> None:
    headers = [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.9")]
    assert client_info(request(headers)).ip == "10.0.0.7"
    assert client_info(request(headers), trust_forwarded=True).ip == "203.0.113.9"
