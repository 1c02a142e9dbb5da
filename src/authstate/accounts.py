"""Users with argon2id passwords kept in the store, and login throttling shared by all nodes.

Unknown users and wrong passwords take the same time and raise the same error; failures
are counted per username and per client IP within ``login_window``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import unicodedata

from authstate._time import Clock
from authstate.errors import BadRequest, Conflict, InvalidCredentials, NotFound, TooManyAttempts
from authstate.passwords import PasswordHasher
from authstate.settings import Settings
from authstate.stores.base import Store, UserRecord

audit = logging.getLogger("authstate.audit")

MAX_USERNAME_LENGTH = 64


def normalize_username(username: str) -> str:
    """NFKC + casefold, so ``Alice`` and ``alice`` are one account; ``BadRequest`` if unusable."""
    name = unicodedata.normalize("NFKC", username).strip().casefold()
    if not name or len(name) > MAX_USERNAME_LENGTH or any(not c.isprintable() for c in name):
        raise BadRequest("username must be 1-64 printable characters")
    return name


def _bucket(prefix: str, value: str) -> str:
    # Buckets are hashed: the store never holds usernames or IPs of failed attempts in clear.
    # surrogatepass: a lone surrogate (valid as a JSON escape) must not crash the login.
    return prefix + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class Accounts:
    def __init__(
        self, store: Store, hasher: PasswordHasher, settings: Settings, clock: Clock
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._settings = settings
        self._clock = clock

    async def add_user(
        self, username: str, password: str, roles: tuple[str, ...] = ()
    ) -> UserRecord:
        """Create a user; ``Conflict`` if the name is taken, ``BadRequest`` for a weak password."""
        name = normalize_username(username)
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
        for bucket in buckets:
            count = await self._store.count_failures(bucket, now=now, window=window)
            if count >= self._settings.login_max_attempts:
                raise TooManyAttempts(retry_after=int(window))
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
        return user

    async def change_password(self, user_id: str, current: str, new: str) -> None:
        """``InvalidCredentials`` if ``current`` is wrong; ``BadRequest`` if ``new`` is weak."""
        user = await self._store.get_user(user_id)
        if user is None:
            raise InvalidCredentials(reason="user vanished")
        await self._hasher.verify_async(user.password_hash, current)
        await self.set_password(user_id, new)
