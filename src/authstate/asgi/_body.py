"""Reading small request bodies: size-capped, strict JSON, or an urlencoded form."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from authstate.errors import BadRequest, PayloadTooLarge

MAX_BODY_BYTES = 16 * 1024
# Scope key: the fields of the form just read, minus passwords and the CSRF token, so that
# a page re-rendered after a refusal can show what was typed (the body is read only once).
SUBMITTED_KEY = "authstate.submitted"


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
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("request body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate member {key!r}")
        result[key] = value
    return result


async def read_fields(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The named string fields of a JSON object or form body; ``BadRequest`` otherwise.

    The body must be declared ``application/json`` or an urlencoded form: JSON sent as
    ``text/plain`` or without a type is what a cross-site "simple request" looks like
    (no CORS preflight), so it is refused rather than parsed (X7, T64)."""
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
            data = json.loads(
                body.decode("utf-8"),
                object_pairs_hook=_no_duplicates,
                parse_constant=_reject_constant,
            )
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise BadRequest("body must be a JSON object") from exc
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
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
