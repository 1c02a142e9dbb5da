"""Users with argon2id passwords kept in the store, and login throttling shared by all nodes.

Unknown users and wrong passwords take the same time and raise the same error; failures
are counted per username and per client IP within ``login_window``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from authstate._time import Clock
from authstate.errors import BadRequest, Conflict, InvalidCredentials, NotFound, TooManyAttempts
from authstate.passwords import PasswordHasher
from authstate.settings import Settings
from authstate.stores.base import LoginThrottle, UserRecord, UserStore

audit = logging.getLogger("authstate.audit")

MAX_USERNAME_LENGTH = 64
# Roles travel in every access token: bounded so that the JWT always fits in one cookie.
MAX_ROLES = 32
_ROLE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# User id -> username, for display (``GET /auth/me``). Neither ever changes (no rename
# exists and ids are random, never reused), so entries are never stale; emptied when full.
_NAMES_MAX_ENTRIES = 10_000
# Letters and digits of any script, and . _ - @ (e-mail addresses work): no spaces, quotes,
# controls or bidi overrides that would make one name look like another in a listing.
_USERNAME_RE = re.compile(rf"[\w.@-]{{1,{MAX_USERNAME_LENGTH}}}")
USERNAME_RULE = "a user name is 1-64 letters, digits and . _ - @"


def normalize_username(username: str) -> str:
    """NFKC + casefold, so ``Alice`` and ``alice`` are one account; ``BadRequest`` if unusable.

    For looking a name up; ``check_new_username`` also applies the rule for new names."""
    name = unicodedata.normalize("NFKC", username).strip().casefold()
    if not name or len(name) > MAX_USERNAME_LENGTH or any(not c.isprintable() for c in name):
        raise BadRequest("username must be 1-64 printable characters")
    return name


def check_new_username(username: str) -> str:
    """The normalized name (``normalize_username``); ``BadRequest`` unless it is 1-64
    letters (any script), digits and ``. _ - @``."""
    name = normalize_username(username)
    if _USERNAME_RE.fullmatch(name) is None:
        raise BadRequest(f"{USERNAME_RULE}, not {username!r}")
    return name


def check_roles(roles: Sequence[str]) -> tuple[str, ...]:
    """The roles as a tuple; ``BadRequest`` unless there are at most ``MAX_ROLES`` of 1-64
    characters from ``A-Z a-z 0-9 _ . : -`` each (so every access token fits in a cookie)."""
    if isinstance(roles, str) or len(roles) > MAX_ROLES:
        raise BadRequest(f"a user has at most {MAX_ROLES} roles")
    for role in roles:
        if not isinstance(role, str) or _ROLE_RE.fullmatch(role) is None:
            raise BadRequest(f"a role is 1-64 characters of A-Z a-z 0-9 _ . : -, not {role!r}")
    return tuple(roles)


def _bucket(prefix: str, value: str) -> str:
    # Buckets are hashed: the store never holds usernames or IPs of failed attempts in clear.
    # surrogatepass: a lone surrogate (valid as a JSON escape) must not crash the login.
    return prefix + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class AccountStore(UserStore, LoginThrottle, Protocol):
    """The store protocols ``Accounts`` uses."""


class Accounts:
    def __init__(
        self, store: AccountStore, hasher: PasswordHasher, settings: Settings, clock: Clock
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._settings = settings
        self._clock = clock
        # Attempts being verified right now, per bucket. The stored count only grows when a
        # verification has failed, so without these a burst of concurrent guesses would all
        # pass the check before the first failure is recorded (T68).
        self._in_flight: Counter[str] = Counter()
        self._names: dict[str, str] = {}

    async def add_user(
        self, username: str, password: str, roles: tuple[str, ...] = ()
    ) -> UserRecord:
        """Create a user; ``Conflict`` if the name is taken; ``BadRequest`` for a weak password,
        a name that is not 1-64 letters, digits and ``. _ - @``, or a bad role."""
        name = check_new_username(username)
        roles = check_roles(roles)
        self._hasher.check_new_password(password)
        if await self._store.get_user_by_name(name) is not None:
            raise Conflict(f"user {name!r} already exists")
        user = UserRecord(
            id=secrets.token_hex(8),
            username=name,
            password_hash=await self._hasher.hash_async(password),
            roles=tuple(roles),
            created_at=self._clock.now(),
        )
        await self._store.create_user(user)
        return user

    async def username_of(self, user_id: str) -> str | None:
        """The user's name (None for an unknown user), read from the store once per user:
        a warm ``/auth/me`` costs no store round trip, also while the store is down.
        Raises ``StoreUnavailable`` on a first sight while the store is down."""
        name = self._names.get(user_id)
        if name is None:
            user = await self._store.get_user(user_id)
            if user is None:
                return None
            name = self._remember(user)
        return name

    def _remember(self, user: UserRecord) -> str:
        if len(self._names) >= _NAMES_MAX_ENTRIES:
            self._names.clear()
        self._names[user.id] = user.username
        return user.username

    async def get_by_name(self, username: str) -> UserRecord:
        user = await self._store.get_user_by_name(normalize_username(username))
        if user is None:
            raise NotFound(f"no user named {username!r}")
        return user

    async def set_password(self, user_id: str, password: str) -> None:
        self._hasher.check_new_password(password)
        new_hash = await self._hasher.hash_async(password)
        if await self._store.update_user(user_id, password_hash=new_hash) is None:
            raise NotFound("no such user")

    async def verify_login(self, username: str, password: str, *, ip: str) -> UserRecord:
        """Return the user if the password is right; raise ``InvalidCredentials`` (the same for
        unknown users, wrong passwords and disabled accounts) or ``TooManyAttempts``."""
        try:
            name = normalize_username(username)
        except BadRequest:
            name = username[:MAX_USERNAME_LENGTH]
        window = self._settings.login_window_seconds
        now = self._clock.now()
        buckets = (_bucket("user:", name), _bucket("ip:", ip))
        with self._attempt(buckets) as ahead:
            await self._check_throttle(buckets, ahead, now=now)
            user = await self._store.get_user_by_name(name)
            try:
                await self._hasher.verify_async(user.password_hash if user else None, password)
                if user is None or user.disabled:
                    raise InvalidCredentials(reason="unknown or disabled user")
            except InvalidCredentials:
                for bucket in buckets:
                    await self._store.record_failure(bucket, now=now, window=window)
                raise
        await self._store.clear_failures(buckets[0])
        if self._hasher.needs_rehash(user.password_hash):
            # Parameters below today's policy: upgrade while we hold the password.
            await self._store.update_user(
                user.id, password_hash=await self._hasher.hash_async(password)
            )
        self._remember(user)  # the next /auth/me of this user needs no store read
        return user

    async def verify_reauth(self, user_id: str, password: str, *, ip: str) -> UserRecord:
        """Step-up: ``verify_login`` for the user ``user_id`` (the caller), so a reauth is
        throttled with the same buckets (username and IP) and refused with the same
        ``InvalidCredentials`` as a login; a vanished or disabled user is refused alike."""
        user = await self._store.get_user(user_id)
        # An unknown id still costs one (dummy) verification and one failure per bucket.
        verified = await self.verify_login(user.username if user else "", password, ip=ip)
        if verified.id != user_id:
            raise InvalidCredentials(reason="reauth for another user")
        return verified

    async def change_password(self, user_id: str, current: str, new: str) -> None:
        """``InvalidCredentials`` if ``current`` is wrong; ``BadRequest`` if ``new`` is weak;
        ``TooManyAttempts`` once the account's failure budget (shared with login) is spent,
        so a stolen session cannot be used to guess the password (T71)."""
        user = await self._store.get_user(user_id)
        if user is None:
            raise InvalidCredentials(reason="user vanished")
        bucket = (_bucket("user:", user.username),)
        now = self._clock.now()
        with self._attempt(bucket) as ahead:
            await self._check_throttle(bucket, ahead, now=now)
            try:
                await self._hasher.verify_async(user.password_hash, current)
            except InvalidCredentials:
                window = self._settings.login_window_seconds
                await self._store.record_failure(bucket[0], now=now, window=window)
                raise
        await self.set_password(user_id, new)

    @contextmanager
    def _attempt(self, buckets: tuple[str, ...]) -> Iterator[tuple[int, ...]]:
        """Count an attempt as in flight for ``buckets`` while it runs; yield, per bucket,
        how many attempts were already in flight when this one started."""
        ahead = tuple(self._in_flight[bucket] for bucket in buckets)
        self._in_flight.update(buckets)
        try:
            yield ahead
        finally:
            self._in_flight.subtract(buckets)
            for bucket in buckets:
                if self._in_flight[bucket] <= 0:
                    del self._in_flight[bucket]

    async def _check_throttle(
        self, buckets: tuple[str, ...], ahead: tuple[int, ...], *, now: float
    ) -> None:
        """``TooManyAttempts`` when the failures recorded for a bucket plus the attempts that
        were in flight before this one (``ahead``, each of which may still fail) reach the
        limit. On one node this bounds the guesses per window exactly; N nodes sharing a
        store allow at most N times the limit in a burst."""
        window = self._settings.login_window_seconds
        for bucket, earlier in zip(buckets, ahead, strict=True):
            count = await self._store.count_failures(bucket, now=now, window=window)
            if count + earlier >= self._settings.login_max_attempts:
                raise TooManyAttempts(retry_after=int(window))
