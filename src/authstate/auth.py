"""``AuthCore``: wires settings, store, keys, revocation state and the mode, without HTTP.

    auth = AuthState(mode="hybrid", store="sqlite:///authstate.db")
    await auth.start()
    issued = await auth.login(user.id, roles=user.roles)
    principal = await auth.authenticate(cookie_value)
    await auth.logout_everywhere(user.id)

The public ``authstate.AuthState`` is this core plus the ASGI entry points
(``auth.middleware()``, ``auth.routes()``, ``auth.require()``); it is defined in the ASGI
layer (``authstate.asgi.auth_state``), which imports this module and never the reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, Self, TypeVar

from authstate._time import Clock, SystemClock
from authstate.accounts import Accounts, check_roles
from authstate.cookies import CookiePolicy
from authstate.crypto.ids import b64url_encode, check_secret_format, hash_secret
from authstate.crypto.sealing import Sealer, derive_key
from authstate.csrf import CSRFEvidence, CSRFProtector
from authstate.custom_claims import check_custom_claims
from authstate.errors import (
    AuthenticationError,
    BadRequest,
    ConfigurationError,
    InvalidCredentials,
    InvalidRefresh,
    NotFound,
    ReauthRequired,
    StoreUnavailable,
    TooManyAttempts,
)
from authstate.events import (
    AuthEvent,
    KeyRotated,
    LoggedOut,
    LoggedOutEverywhere,
    LoginFailed,
    LoginSucceeded,
    LoginThrottled,
    PasswordChanged,
    Refreshed,
    SessionRevoked,
    Subscriber,
    Subscribers,
    UserDisabled,
    audit_log,
)
from authstate.key_storage import KeyManager
from authstate.master_secret import resolve_master_secret
from authstate.modes.access_tokens import AccessTokens
from authstate.modes.base import BaseMode
from authstate.modes.client import ClientInfo
from authstate.modes.context import ModeContext
from authstate.modes.freshness import Freshness
from authstate.modes.hybrid import HybridMode
from authstate.modes.issued import IssuedCredentials
from authstate.modes.session import SessionMode
from authstate.modes.stateless import StatelessMode
from authstate.passwords import PasswordHasher
from authstate.principal import Principal
from authstate.revocation import RevocationState
from authstate.session_cache import SessionCache
from authstate.session_data import SessionData, load_session_data, update_session_data
from authstate.settings import Settings
from authstate.stores import open_store
from authstate.stores.base import Change, ChangeKind, SessionRecord, Store, UserGrants, UserRecord
from authstate.telemetry import StoreStats, instrument_store

log = logging.getLogger("authstate")
audit = logging.getLogger("authstate.audit")

E = TypeVar("E", bound=AuthEvent)

_MAINTENANCE_INTERVAL_SECONDS = 60.0
# How long stop() waits for asynchronous event subscribers still running.
_EVENT_DRAIN_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class _Running:
    """What ``start()`` builds: every part that exists only while the node runs."""

    context: ModeContext
    tokens: AccessTokens
    mode: BaseMode
    csrf: CSRFProtector
    accounts: Accounts


class AuthCore:
    """One node's authentication state, without HTTP. Create it once per process (as the
    public ``authstate.AuthState``); ``start()`` before use."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: Store | str | None = None,
        clock: Clock | None = None,
        password_hasher: PasswordHasher | None = None,
        **overrides: Any,
    ) -> None:
        """``overrides`` are Settings fields (``mode="session"``...); with no ``settings`` they
        are applied over ``AUTHSTATE_*`` and the defaults. ``store`` is a store URL (a setting
        like the others) or a ready ``Store`` object; an object needs ``secret=`` (or
        ``AUTHSTATE_SECRET``) unless it is a memory store.

        Raises ``ConfigurationError`` for a bad setting."""
        if isinstance(store, str):
            overrides["store"] = store
            store = None
        if settings is None:
            settings = Settings.from_env(**overrides)
        elif overrides:
            raise TypeError("pass settings or keyword settings, not both")
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.cookie_policy = CookiePolicy.from_settings(self.settings)
        self._store = store
        self._hasher = password_hasher
        self._started = False
        self._start_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._parts: _Running | None = None
        # Lifecycle events: subscribers may be added before start(). The audit log is one.
        self.events = Subscribers()
        self.events.subscribe(audit_log)
        # Latency of every store call, for the metrics (authstate.metrics.Collector).
        self.store_stats = StoreStats()

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> None:
        """Open the store, load keys and the revocation state, subscribe to the bus."""
        async with self._start_lock:
            if self._started:
                return
            await self._start()
            self._started = True

    async def _start(self) -> None:
        settings = self.settings
        if self._store is not None and settings.secret is None and not settings.secret_file:
            if self._store.url_scheme != "memory":
                raise ConfigurationError(
                    "AUTHSTATE_SECRET (or secret=) is required with a store object: the secret "
                    "cannot be kept beside a store authstate did not open"
                )
            master = secrets.token_bytes(32)
        else:
            master = resolve_master_secret(settings)
        # The bus proves itself alive every heartbeat: a quarter of the staleness bound (at
        # most 1 s), so a healthy bus never looks stale between two proofs, even when the
        # bound is set as low as 1 s (it then failed closed now and then on a busy machine).
        heartbeat = min(1.0, settings.max_staleness_seconds / 4)
        store = self._store or await open_store(
            settings.store, clock=self.clock, heartbeat=heartbeat
        )
        if self._store is not None:
            await store.open()
        self._store = store
        # Timed (and traced, with OpenTelemetry installed) below this point: every store
        # call the node makes goes through the wrapper; the warm path makes none. Only
        # Freshness, asked on warm requests, reads the bus state from the store itself.
        raw_store, store = store, instrument_store(store, self.store_stats)
        keys = KeyManager(
            store,
            Sealer(master),
            self.clock,
            algorithm=settings.algorithm,
            verify_grace_seconds=settings.access_ttl_seconds + settings.leeway_seconds,
            first_kid=b64url_encode(derive_key(master, f"first-kid/{settings.algorithm}", 16)),
        )
        await keys.load()
        revocation = RevocationState(self.clock)
        ctx = ModeContext(
            settings=settings,
            store=store,
            clock=self.clock,
            keys=keys,
            revocation=revocation,
            sessions=SessionCache(),
            freshness=Freshness(raw_store, self.clock, settings.max_staleness_seconds),
            refresh_key=derive_key(master, "refresh"),
            events=self.events,
        )
        tokens = AccessTokens(ctx)
        self._parts = _Running(
            context=ctx,
            tokens=tokens,
            mode=_make_mode(settings, ctx, tokens),
            csrf=CSRFProtector(
                derive_key(master, "csrf"),
                allowed_origins=settings.allowed_origins,
                clock=self.clock,
            ),
            accounts=Accounts(store, self._hasher or PasswordHasher(), settings, self.clock),
        )
        await store.listen(self._on_change, reconcile=self._reconcile)
        await self._reload_revocations()
        # A rotation published between the first load and listen() would be missed: read again.
        await keys.load()
        self._tasks = [
            asyncio.create_task(self._maintenance_loop(), name="authstate-maintenance"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.events.drain(within=_EVENT_DRAIN_SECONDS)
        if self._store is not None and self._started:
            await self._store.close()
        self._started = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the bus -------------------------------------------------------------------------------
    def _on_change(self, change: Change) -> None:
        ctx = self.context
        ctx.revocation.apply(change)
        if change.kind is ChangeKind.SID:
            ctx.sessions.drop_handle(change.value)
        elif change.kind is ChangeKind.SESSION:
            ctx.sessions.drop(change.value)
        elif change.kind is ChangeKind.KEYS:
            self._tasks.append(asyncio.get_running_loop().create_task(self._reload_keys()))

    async def _reload_keys(self) -> None:
        await self.context.keys.load()
        self.tokens.forget_all()

    async def _reload_revocations(self) -> None:
        ctx = self.context
        changes, seq = await ctx.store.active_revocations(self.clock.now())
        ctx.revocation.load(changes, seq)

    async def _reconcile(self) -> None:
        """Rebuild this node's view from the store: after a bus interruption, and after the
        store lost data (its change log went back). The bus awaits this before it reports
        itself healthy again, so no cached session or verified token from before outlives
        it (a session the store lost would otherwise stay cached and keep working)."""
        ctx = self.context
        ctx.sessions.clear()
        self.tokens.forget_all()
        await self._reload_revocations()
        await self._reload_keys()
        # Anything cached while the reloads ran may predate them.
        ctx.sessions.clear()
        log.info("reconciled with the store after a bus interruption")

    async def _maintenance_loop(self) -> None:
        ctx = self.context
        while True:
            await asyncio.sleep(_MAINTENANCE_INTERVAL_SECONDS)
            try:
                await ctx.store.purge_expired(self.clock.now())
                if await ctx.keys.purge_retired():
                    await self._reload_keys()
                ctx.revocation.prune()
            except StoreUnavailable:
                log.warning("maintenance skipped: store unavailable")

    # -- accessors -----------------------------------------------------------------------------
    def _not_started(self) -> NoReturn:
        # The one check behind every accessor of a part that start() builds.
        raise RuntimeError("AuthState.start() has not run")

    # One property call each, as before the parts were gathered: the middleware reads
    # ``auth.mode`` on every request.
    @property
    def context(self) -> ModeContext:
        return (self._parts or self._not_started()).context

    @property
    def mode(self) -> BaseMode:
        return (self._parts or self._not_started()).mode

    @property
    def tokens(self) -> AccessTokens:
        return (self._parts or self._not_started()).tokens

    @property
    def accounts(self) -> Accounts:
        return (self._parts or self._not_started()).accounts

    @property
    def csrf(self) -> CSRFProtector:
        return (self._parts or self._not_started()).csrf

    @property
    def store(self) -> Store:
        return self.context.store

    # -- operations ----------------------------------------------------------------------------
    async def authenticate(self, auth_value: str) -> Principal:
        """The principal behind an auth cookie value; ``AuthenticationError`` (401) or
        ``StoreUnavailable`` (503)."""
        return await self.mode.authenticate(auth_value)

    async def login(
        self,
        user_id: str,
        roles: tuple[str, ...] | list[str] = (),
        *,
        client: ClientInfo | None = None,
        previous_auth: str | None = None,
        data: Mapping[str, Any] | None = None,
        remember: bool = True,
    ) -> IssuedCredentials:
        """Issue fresh credentials for ``user_id`` (after the application checked who it is).

        The login counts as a password check (``auth_time`` = now). ``remember=False``
        makes the cookies browser-session cookies (no ``Max-Age``) for the whole life of
        this login, refreshes included; the server-side lifetime is the same either way.
        With ``max_sessions_per_user`` set, the user's oldest sessions beyond it are ended.
        Emits ``LoginSucceeded``."""
        client = client or ClientInfo()
        issued = await self.mode.login(
            user_id,
            tuple(roles),
            client=client,
            previous_auth=previous_auth,
            data=data,
            remember=remember,
        )
        session = issued.principal.session
        self._emit(
            LoginSucceeded,
            user_id=user_id,
            mode=self.settings.mode,
            session_id=session.id if session is not None else None,
            ip=client.ip or None,
            user_agent=client.user_agent or None,
        )
        return issued

    async def verify_login(self, username: str, password: str, *, ip: str = "") -> UserRecord:
        """Check a built-in user's password (throttled per account and per client IP);
        return the user. Emits ``LoginFailed`` or ``LoginThrottled`` on a refusal.

        Raises ``InvalidCredentials`` (the same for an unknown user, a wrong password and a
        disabled account), ``TooManyAttempts``, ``StoreUnavailable``."""
        try:
            return await self.accounts.verify_login(username, password, ip=ip)
        except InvalidCredentials as exc:
            self._emit(LoginFailed, ip=ip or None, error=exc.code)
            raise
        except TooManyAttempts as exc:
            self._emit(LoginThrottled, ip=ip or None, retry_after=exc.retry_after)
            raise

    async def logout(self, principal: Principal, *, refresh_value: str | None = None) -> None:
        """Revoke the principal's session, refresh family or token. Emits ``LoggedOut``."""
        await self.mode.logout(principal, refresh_value=refresh_value)
        session = principal.session
        self._emit(
            LoggedOut,
            user_id=principal.user_id,
            session_id=session.id if session is not None else None,
        )

    async def logout_everywhere(self, user_id: str) -> None:
        """Revoke every session and token of the user, on every node. Emits
        ``LoggedOutEverywhere``."""
        await self.mode.logout_everywhere(user_id)
        self._emit(LoggedOutEverywhere, user_id=user_id)

    async def disable_user(self, user_id: str) -> None:
        """Refuse the user's logins from now on and revoke every session, refresh family and
        token they hold, on every node (T30). ``NotFound`` for an unknown user. Emits
        ``UserDisabled``."""
        if await self.store.update_user(user_id, disabled=True) is None:
            raise NotFound("no such user")
        await self.mode.logout_everywhere(user_id)
        self._emit(UserDisabled, user_id=user_id)

    async def set_password(self, user_id: str, password: str) -> None:
        """Set a built-in user's password (an administrator's reset: no current password)
        and revoke every session and token of the user, on every node. Emits
        ``PasswordChanged``. ``BadRequest`` for a weak password, ``NotFound``."""
        await self.accounts.set_password(user_id, password)
        await self.mode.logout_everywhere(user_id)
        self._emit(PasswordChanged, user_id=user_id)

    async def rotate_key(self) -> tuple[str, str]:
        """Start signing with a new key on every node; older keys verify until their tokens
        expire. Returns the new key's ``(kid, alg)``. Emits ``KeyRotated``."""
        key = await self.context.keys.rotate()
        self._emit(KeyRotated, kid=key.kid, alg=key.alg)
        return key.kid, key.alg

    # -- lifecycle events --------------------------------------------------------------------
    def subscribe(
        self, subscriber: Subscriber, *event_types: type[AuthEvent]
    ) -> Callable[[], None]:
        """Call ``subscriber(event)`` (a function or an ``async`` function) for each event of
        ``event_types`` (default: all), after the change is durable. Returns a function that
        unsubscribes. See ``authstate.events``."""
        return self.events.subscribe(subscriber, *event_types)

    def on(self, *event_types: type[E]) -> Callable[[Callable[[E], Any]], Callable[[E], Any]]:
        """Decorator form of ``subscribe``: ``@auth.on(LoginSucceeded)``."""
        return self.events.on(*event_types)

    def _emit(self, event_type: type[AuthEvent], **fields: Any) -> None:
        # The one way an operation reports itself: after its store writes returned.
        self.events.emit(event_type(at=self.clock.now(), **fields))

    # -- live roles and claims (docs/concepts.md, "Live roles") -------------------------------
    async def set_roles(self, user_id: str, roles: tuple[str, ...] | list[str]) -> UserGrants:
        """Give ``user_id`` these roles from now on, on every node within the propagation
        bound and in every mode: sessions and refresh families change in place, access
        tokens carrying the old roles are refused with ``token_stale`` (the client
        refreshes, or logs in again in stateless mode). A built-in user's record is updated
        too; from now on the store's roles win over the ``roles`` passed to ``login``.

        Raises ``BadRequest`` for a bad role (``accounts.check_roles``), ``StoreUnavailable``."""
        checked = check_roles(roles)
        current = await self.store.get_user_grants(user_id)
        self._check_token_fits(user_id, checked, {} if current is None else current.claims)
        grants = await self.store.set_user_grants(user_id, roles=checked)
        await self.store.update_user(user_id, roles=checked)  # None for an application's user
        await self._publish_grants(grants)
        return grants

    async def set_claims(self, user_id: str, claims: Mapping[str, Any]) -> UserGrants:
        """Replace the user's custom claims (``Principal.claims``, and in the JWT modes the
        access token) like ``set_roles`` replaces roles. ``BadRequest`` unless a JSON object
        of at most ``MAX_CLAIMS_BYTES`` bytes without reserved names (``custom_claims``)."""
        checked = check_custom_claims(claims)
        current = await self.store.get_user_grants(user_id)
        if current is not None and current.roles is not None:
            roles: tuple[str, ...] = current.roles
        else:
            user = await self.store.get_user(user_id)
            roles = () if user is None else user.roles
        self._check_token_fits(user_id, roles, checked)
        grants = await self.store.set_user_grants(user_id, claims=checked)
        await self._publish_grants(grants)
        return grants

    def _check_token_fits(
        self, user_id: str, roles: tuple[str, ...], claims: Mapping[str, Any]
    ) -> None:
        # Roles and claims each fit alone, but not always together: refuse a change after
        # which no access token of the user would fit in a cookie (logins would fail).
        try:
            self.tokens.issue(
                user_id,
                roles,
                generation=2**53 - 1,
                handle="h" * 43,  # a hybrid token's sid
                claims=claims,
                roles_version=2**53 - 1,
            )
        except ValueError as exc:
            raise BadRequest("these roles and claims together exceed the token size cap") from exc

    async def _publish_grants(self, grants: UserGrants) -> None:
        # Nodes refuse (or re-read) what was written under an older version; the entry lives
        # as long as the longest credential that could carry one.
        ctx = self.context
        until = ctx.clock.now() + self.mode.longest_lifetime() + ctx.settings.leeway_seconds
        change = Change(ChangeKind.ROLES, grants.user_id, until, generation=grants.version)
        ctx.revocation.apply(await ctx.store.publish(change))
        # Roles are logged (who holds what is an audit question); claims only by name.
        audit.info(
            "roles or claims changed",
            extra={
                "event": "grants_changed",
                "user_id": grants.user_id,
                "roles_version": grants.version,
                "roles": None if grants.roles is None else list(grants.roles),
                "claim_names": sorted(grants.claims),
            },
        )

    async def list_sessions(self, principal: Principal) -> list[SessionRecord]:
        return await self.mode.list_sessions(principal)

    async def revoke_session(self, principal: Principal, handle: str) -> None:
        """Revoke one of the principal's sessions. Another than its own needs a password
        check within ``fresh_window`` (``ReauthRequired``): a stolen cookie must not be
        able to sign its victim out of every other device. Emits ``SessionRevoked``."""
        if principal.session is None or handle != principal.session.id:
            self.require_fresh(principal, self.settings.fresh_window_seconds)
        await self.mode.revoke_session(principal, handle)
        self._emit(SessionRevoked, user_id=principal.user_id, session_id=handle)

    async def reissue(
        self, principal: Principal, *, client: ClientInfo | None = None
    ) -> IssuedCredentials:
        """New credentials for a principal after ``logout_everywhere`` (password change),
        with its remember-me choice; they count as a fresh password check. Not a login:
        no event."""
        return await self.mode.login(
            principal.user_id,
            principal.roles,
            client=client or ClientInfo(),
            previous_auth=None,
            remember=principal.remember,
        )

    # -- step-up and device control -----------------------------------------------------------
    def require_fresh(self, principal: Principal, max_age_seconds: float) -> None:
        """Raise ``ReauthRequired`` unless the principal's password was checked within
        ``max_age_seconds`` (an unknown ``auth_time`` is never fresh)."""
        if not principal.authenticated_within(max_age_seconds, now=self.clock.now()):
            raise ReauthRequired(reason=f"last password check older than {max_age_seconds}s")

    async def step_up(self, principal: Principal) -> IssuedCredentials:
        """New credentials stamped ``auth_time`` = now, for a caller whose password the
        application has just checked itself: a new session ID / refresh family / token,
        the old one revoked on every node (fixation defence). ``reauthenticate`` is this
        with the built-in users' password check."""
        return await self.mode.step_up(principal)

    async def reauthenticate(
        self, principal: Principal, password: str, *, client: ClientInfo | None = None
    ) -> IssuedCredentials:
        """Step-up for a built-in user: check ``password`` (throttled like a login, by the
        same username and IP buckets), then ``step_up``.

        Raises ``InvalidCredentials``, ``TooManyAttempts``, ``AuthenticationError`` when the
        session was revoked meanwhile, ``StoreUnavailable``. A refusal emits ``LoginFailed``
        or ``LoginThrottled``, as a login's does."""
        ip = (client or ClientInfo()).ip
        try:
            await self.accounts.verify_reauth(principal.user_id, password, ip=ip)
        except InvalidCredentials as exc:
            self._emit(LoginFailed, ip=ip or None, error=exc.code)
            raise
        except TooManyAttempts as exc:
            self._emit(LoginThrottled, ip=ip or None, retry_after=exc.retry_after)
            raise
        return await self.step_up(principal)

    async def revoke_others(self, principal: Principal) -> IssuedCredentials | None:
        """Sign out every other device: every session/family of the user but the
        principal's own is revoked on every node. Needs a password check within
        ``fresh_window`` (``ReauthRequired``). In stateless mode every token of the user
        dies and the caller's replacement is returned (None elsewhere: nothing to set)."""
        self.require_fresh(principal, self.settings.fresh_window_seconds)
        return await self.mode.revoke_others(principal)

    def csrf_token(self, binding: str) -> str:
        return self.csrf.issue(binding)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return self.context.keys.ring.jwks(now=self.clock.now())

    async def health(self) -> None:
        """Raise ``StoreUnavailable`` when the store or bus is unusable."""
        ctx = self.context
        await ctx.store.ping()
        if not ctx.freshness.is_fresh():
            raise StoreUnavailable(reason="invalidation bus is stale")

    # -- refresh and password change: the operations behind the /auth/* routes ------------
    async def refresh(
        self,
        refresh_value: str,
        *,
        bound_to: Principal | None = None,
        csrf: CSRFEvidence | None = None,
    ) -> IssuedCredentials:
        """Rotate a hybrid refresh token: new access token and successor refresh token.

        ``bound_to`` is the principal of the access cookie sent beside the refresh cookie,
        if any: a refresh family other than its own is refused. ``csrf`` is the request's
        CSRF evidence, checked against the family. Both are checked before anything
        changes, so a refused request rotates nothing (a token reused after the grace
        window still revokes its family: theft detection does not wait for them).

        Raises ``NotFound`` outside hybrid mode; ``InvalidRefresh`` for a malformed,
        unknown, expired, revoked or reused token (reuse outside the grace window also
        revokes the whole family) and for another principal's family; ``CSRFError``.
        """
        issued = await self._refresh(refresh_value, bound_to=bound_to, csrf=csrf)
        session = issued.principal.session
        self._emit(
            Refreshed,
            user_id=issued.principal.user_id,
            session_id=session.id if session is not None else None,
        )
        return issued

    async def _refresh(
        self, refresh_value: str, *, bound_to: Principal | None, csrf: CSRFEvidence | None
    ) -> IssuedCredentials:
        mode = self.mode
        if not isinstance(mode, HybridMode):
            raise NotFound("refresh exists only in hybrid mode")
        if bound_to is None and csrf is None:
            return await mode.refresh(refresh_value)
        try:
            check_secret_format(refresh_value)
        except AuthenticationError as exc:
            raise InvalidRefresh(reason=exc.reason) from exc
        family = await self.store.get_session(hash_secret(refresh_value))
        if family is not None:
            self._check_family(family.handle, bound_to, csrf)
            return await mode.refresh(refresh_value)
        # Not the current token: only a grace-window answer (which changes nothing in the
        # store) can follow, and it is checked against its family before it is returned.
        issued = await mode.refresh(refresh_value)
        self._check_family(issued.principal.binding, bound_to, csrf)
        return issued

    def _check_family(
        self, handle: str, bound_to: Principal | None, csrf: CSRFEvidence | None
    ) -> None:
        # An access cookie names its own family: rotate only that one, so a refresh cookie
        # planted beside it (a sibling host can set __Secure- cookies) is refused instead
        # of switching this browser into another account (red team F3).
        if bound_to is not None and (bound_to.session is None or bound_to.session.id != handle):
            raise InvalidRefresh(reason="refresh family is not the caller's")
        # Always bound to the family: with an access cookie the middleware checked the same
        # binding (its sid); without one (expired) this is the only check.
        if csrf is not None:
            self.csrf.check(csrf, handle)

    async def change_password(
        self,
        principal: Principal,
        current_password: str,
        new_password: str,
        *,
        client: ClientInfo | None = None,
    ) -> IssuedCredentials:
        """Change a built-in user's password, revoke every session and token of the user on
        every node, and return fresh credentials for the caller.

        Raises ``InvalidCredentials`` for a wrong ``current_password``, ``BadRequest`` for
        a weak ``new_password``, ``TooManyAttempts``, ``StoreUnavailable``."""
        await self.accounts.change_password(principal.user_id, current_password, new_password)
        await self.mode.logout_everywhere(principal.user_id)
        self._emit(PasswordChanged, user_id=principal.user_id)
        return await self.reissue(principal, client=client)

    # -- server-side session data (authstate.session_data states the rules) ------------------
    async def session_data(self, principal: Principal) -> SessionData:
        """The data of the principal's session (session mode) or refresh family (hybrid),
        read from the store now. ``NotFound`` in stateless mode (there is no server-side
        session); ``AuthenticationError`` if the session ended; ``StoreUnavailable``."""
        return await load_session_data(self.store, principal, self.settings.session_data_max_bytes)

    async def update_session_data(
        self,
        principal: Principal,
        changes: Mapping[str, Any],
        *,
        remove: Collection[str] = (),
    ) -> SessionData:
        """Set ``changes`` and delete the keys ``remove`` in one atomic step (last writer wins
        per key); return the data as stored after it. ``TypeError``/``ValueError`` for a
        value that is not JSON and ``SessionDataTooLarge`` over the cap, both before any
        write; otherwise as ``session_data``."""
        return await update_session_data(
            self.store, principal, changes, remove, self.settings.session_data_max_bytes
        )


def _make_mode(settings: Settings, ctx: ModeContext, tokens: AccessTokens) -> BaseMode:
    if settings.mode == "stateless":
        return StatelessMode(ctx, tokens)
    if settings.mode == "session":
        return SessionMode(ctx)
    return HybridMode(ctx, tokens)
