"""Between Django's request and response and the neutral ones of ``authstate.wsgi``."""

from __future__ import annotations

from http.cookies import Morsel
from typing import Any

from django.http import HttpRequest as DjangoRequest
from django.http import HttpResponse
from django.http.request import RawPostDataException

from authstate.errors import PayloadTooLarge
from authstate.wsgi.http import HttpRequest, Reply


def neutral(request: DjangoRequest) -> HttpRequest:
    def read_body(limit: int) -> bytes:
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared and (not declared.isdigit() or int(declared) > limit):
            raise PayloadTooLarge("request body too large")
        try:
            body: bytes = request.body  # cached by Django: request.POST still works after it
        except RawPostDataException:  # the application read the stream itself
            body = b""
        if len(body) > limit:
            raise PayloadTooLarge("request body too large")
        return body

    return HttpRequest(request.method or "GET", request.path, request.META, read_body)


class _RawSetCookie(Morsel[str]):
    """A ``Set-Cookie`` value written by ``cookies.py``, passed through Django verbatim:
    Django writes ``response.cookies`` with ``morsel.output(header="")``, and its own
    formatting would change the attributes authstate promises (docs/http.md)."""

    def __init__(self, header: str) -> None:
        super().__init__()
        self._header = header
        name, rest = header.split("=", 1)
        value = rest.split(";", 1)[0]
        self.set(name, value, value)  # for readers of response.cookies (Django's test client)

    def output(self, attrs: Any = None, header: str = "Set-Cookie:") -> str:
        return self._header if not header else f"{header} {self._header}"

    def OutputString(self, attrs: Any = None) -> str:
        return self._header


def to_response(reply: Reply) -> HttpResponse:
    response = HttpResponse(reply.body, status=reply.status)
    if reply.content_type is None:
        del response.headers["Content-Type"]
    else:
        response.headers["Content-Type"] = reply.content_type
    for name, value in reply.headers:
        if name.lower() == "set-cookie":
            cookie_name = value.split("=", 1)[0]
            dict.__setitem__(response.cookies, cookie_name, _RawSetCookie(value))
        else:
            response.headers[name] = value
    return response
