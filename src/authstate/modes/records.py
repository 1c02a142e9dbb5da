"""Creating the stored record of a session (session mode) or refresh family (hybrid)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from authstate._frozen import builder
from authstate.crypto.ids import hash_secret, new_handle, new_secret_id
from authstate.errors import AuthenticationError, Conflict, StoreUnavailable
from authstate.modes.client import ClientInfo
from authstate.modes.context import ModeContext
from authstate.principal import Principal, SessionInfo
from authstate.stores.base import Change, ChangeKind, SessionRecord

log = logging.getLogger("authstate")

_new_session_info = builder(SessionInfo)  # SessionInfo(id, expires_at), faster


@dataclass(frozen=True, slots=True)
class Grants:
    """What a new credential carries of the user's live roles and claims."""

    roles: tuple[str, ...]
    claims: Mapping[str, Any]
    version: int


async def current_grants(ctx: ModeContext, user_id: str, roles: tuple[str, ...]) -> Grants:
    """The roles, claims and roles version a new credential of ``user_id`` carries: once
    roles were set live (``AuthState.set_roles``) the store's roles win over ``roles`` (the
    caller's), so a login racing a downgrade can never mint the old roles under the new
    version."""
    stored = await ctx.store.get_user_grants(user_id)
    if stored is None:
        return Grants(roles, {}, 0)
    return Grants(
        roles if stored.roles is None else stored.roles, dict(stored.claims), stored.version
    )


async def create_record(
    ctx: ModeContext,
    user_id: str,
    roles: tuple[str, ...],
    *,
    kind: str,
    ttl_seconds: float,
    idle_seconds: float,
    client: ClientInfo,
    data: Mapping[str, Any] | None,
    remember: bool = True,
) -> tuple[str, SessionRecord]:
    """Store a new session or refresh family; return its secret (for the cookie only)
    and the record, which the store keys by the secret's hash. The record carries a fresh
    public session handle, the user's current generation, ``auth_time`` = now (a login
    checked the password) and the remember-me choice."""
    generation = await ctx.store.get_user_generation(user_id)
    grants = await current_grants(ctx, user_id, roles)
    now = ctx.clock.now()
    while True:
        secret = new_secret_id()
        record = SessionRecord(
            key=hash_secret(secret),
            handle=new_handle(),
            user_id=user_id,
            kind=kind,
            created_at=now,
            last_seen_at=now,
            expires_at=now + ttl_seconds,
            idle_timeout=float(idle_seconds),
            roles=grants.roles,
            user_agent=client.user_agent[:256],
            ip=client.ip[:64],
            data=dict(data or {}),
            generation=generation,
            claims=grants.claims,
            roles_version=grants.version,
            auth_time=now,
            remember=remember,
        )
        try:
            await ctx.store.create_session(record)
        except Conflict:  # pragma: no cover - a 256-bit collision
            continue
        await _announce_login(ctx, user_id, now)
        return secret, record


async def _announce_login(ctx: ModeContext, user_id: str, now: float) -> None:
    """Tell every node that ``user_id`` has a new session (their ``/auth/ws`` lists
    re-read), once the record is durable. The change names the user only, no secret.

    Best effort: the login stands without it (a node that misses the change re-reads its
    lists when its bus reconciles); failing the login now would orphan the record."""
    # Kept in the log as long as a node may lag behind it and still catch up from it.
    until = now + ctx.settings.max_staleness_seconds
    try:
        await ctx.store.publish(Change(ChangeKind.LOGIN, user_id, until=until))
    except StoreUnavailable as exc:
        log.warning("login not announced on the bus: %s", exc.reason)


def session_json(record: SessionRecord, current: str | None) -> dict[str, object]:
    """One entry of ``GET /auth/sessions`` (every server answers the same): ``current`` is
    the caller's own session handle."""
    return {
        "id": record.handle,
        "created_at": int(record.created_at),
        "last_seen_at": int(record.last_seen_at),
        "expires_at": int(min(record.expires_at, record.idle_expires_at())),
        "user_agent": record.user_agent,
        "ip": record.ip,
        "current": record.handle == current,
    }


def session_info(record: SessionRecord) -> SessionInfo:
    """What a principal shows of its record: the handle and when it stops being live."""
    expires_at, idle_timeout = record.expires_at, record.idle_timeout
    if idle_timeout > 0:  # record.idle_expires_at(), inline: on every cold session read
        expires_at = min(expires_at, record.last_seen_at + idle_timeout)
    return _new_session_info(record.handle, expires_at)


async def own_record(ctx: ModeContext, principal: Principal) -> SessionRecord:
    """The stored session or refresh family behind ``principal``; ``AuthenticationError``
    when it is gone (revoked meanwhile)."""
    handle = None if principal.session is None else principal.session.id
    if handle is not None:
        for record in await ctx.store.list_sessions(principal.user_id):
            if record.handle == handle and record.is_live(ctx.clock.now()):
                return record
    raise AuthenticationError(reason="the session behind the principal is gone")


async def renew_record(ctx: ModeContext, old: SessionRecord) -> tuple[str, SessionRecord]:
    """Step-up: store a copy of ``old`` under a new secret and a new handle, with
    ``auth_time`` = now (the password was just checked) and the same lifetime, data,
    generation and remember-me choice. The caller ends ``old`` afterwards (its ID and its
    access tokens must die everywhere: fixation defence)."""
    now = ctx.clock.now()
    while True:
        secret = new_secret_id()
        record = replace(
            old,
            key=hash_secret(secret),
            handle=new_handle(),
            last_seen_at=now,
            auth_time=now,
            previous_key=None,
            rotated_at=None,
        )
        try:
            await ctx.store.create_session(record)
        except Conflict:  # pragma: no cover - a 256-bit collision
            continue
        return secret, record
