"""Who is asking: the ``ClientInfo`` (User-Agent and IP) of a request, for ``auth.login``."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from authstate.modes.client import ClientInfo

MAX_USER_AGENT = 256  # characters kept with a session
MAX_IP = 64


def _user_agent(conn: HTTPConnection) -> str:
    # From the raw bytes: Starlette decodes headers as Latin-1, which turns a UTF-8
    # User-Agent into mojibake ("\xc2\x9b" becomes "Â" plus a C1 control). UTF-8 with
    # replacement gives the text the browser meant, and invalid bytes become U+FFFD.
    for key, value in conn.scope.get("headers", ()):
        if key == b"user-agent":
            return bytes(value).decode("utf-8", "replace")[:MAX_USER_AGENT]
    return ""


def client_info(conn: HTTPConnection, *, trust_forwarded: bool = False) -> ClientInfo:
    """The User-Agent (decoded as UTF-8, at most 256 characters) and IP of ``conn``.

    With ``trust_forwarded`` the IP is the rightmost ``X-Forwarded-For`` entry, the one
    the trusted proxy appended: entries to its left come from the client and would let
    it pick the IP that login throttling sees.
    """
    ip = conn.client.host if conn.client else ""
    if trust_forwarded:
        forwarded = conn.headers.get("x-forwarded-for")
        if forwarded:
            ip = forwarded.split(",")[-1].strip()
    return ClientInfo(user_agent=_user_agent(conn), ip=ip[:MAX_IP])
