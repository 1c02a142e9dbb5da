"""Reading small request bodies: size-capped, strict JSON, or an urlencoded form."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request

from authstate.crypto._json import StrictJSONError, loads_object
from authstate.errors import BadRequest, PayloadTooLarge

MAX_BODY_BYTES = 16 * 1024
# Scope key: the fields of the form just read, minus passwords and the CSRF token, so that
# a page re-rendered after a refusal can show what was typed (the body is read only once).
SUBMITTED_KEY = "authstate.submitted"
# Scope key: the whole object ``read_fields`` read, for optional fields (``read_flag``).
BODY_KEY = "authstate.body"
_FORM_TRUE = ("1", "on", "true", "yes")
_FORM_FALSE = ("0", "off", "false", "no")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def is_form(request: Request) -> bool:
    return _media_type(request) == "application/x-www-form-urlencoded"


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refusing more than ``limit`` bytes before reading it all (413)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise PayloadTooLarge("request body too large")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge("request body too large")
            chunks.append(chunk)
    except ClientDisconnect:
        # The client (or the server's body timeout) closed the connection mid-body: nobody
        # will read an answer, but it must not surface as a 500 with a traceback.
        raise BadRequest("connection closed before the body was complete") from None
    return b"".join(chunks)


async def read_fields(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The named string fields of a JSON object or form body; ``BadRequest`` otherwise.

    The body must be declared ``application/json`` or an urlencoded form: JSON sent as
    ``text/plain`` or without a type is what a cross-site "simple request" looks like
    (no CORS preflight), so it is refused rather than parsed (X7, T64). JSON is read by
    the token parser's strict rules (``loads_object``): no duplicate names, NaN, lone
    surrogates (no account name or password can hold one), or nesting deeper than
    ``MAX_DEPTH`` (T82, T83)."""
    media_type = _media_type(request)
    if media_type not in ("application/json", "application/x-www-form-urlencoded"):
        raise BadRequest("send JSON (Content-Type: application/json) or a form")
    body = await read_body(request)
    data: Any
    if is_form(request):
        try:
            data = dict(parse_qsl(body.decode("utf-8"), strict_parsing=False))
        except UnicodeDecodeError as exc:
            raise BadRequest("form body is not UTF-8") from exc
        request.scope[SUBMITTED_KEY] = {
            key: value
            for key, value in data.items()
            if "password" not in key and key != "csrf_token"
        }
    else:
        try:
            data = loads_object(body)
        except StrictJSONError as exc:
            raise BadRequest("body must be a JSON object", reason=f"body: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    request.scope[BODY_KEY] = data
    fields: dict[str, str] = {}
    for name in names:
        value = data.get(name)
        if not isinstance(value, str):
            raise BadRequest(f"field {name!r} must be a string")
        fields[name] = value
    return fields


async def read_form_field(request: Request, name: str) -> str | None:
    """One field of a small urlencoded form body (None when absent)."""
    body = await read_body(request)
    return dict(parse_qsl(body.decode("latin-1"))).get(name)


def read_flag(request: Request, name: str, *, default: bool) -> bool:
    """An optional yes/no field of the body ``read_fields`` has read: a JSON boolean, or
    in a form ``1``/``on``/``true``/``yes`` or ``0``/``off``/``false``/``no`` (a page sends
    a hidden ``0`` before its checkbox: the last value wins). ``default`` when absent;
    ``BadRequest`` for anything else."""
    body = request.scope.get(BODY_KEY)
    value = body.get(name) if isinstance(body, dict) else None
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and is_form(request):
        if value.lower() in _FORM_TRUE:
            return True
        if value.lower() in _FORM_FALSE:
            return False
    raise BadRequest(f"field {name!r} must be true or false")
