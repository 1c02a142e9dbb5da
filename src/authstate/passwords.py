"""Password hashing with argon2id (argon2-cffi), equal work for unknown users, and a
bounded worker pool so a login flood cannot starve the event loop.

Passwords are NFKC-normalized before hashing (NIST SP 800-63B §5.1.1.2), so the same
password typed as composed or decomposed Unicode (macOS vs. Windows input) verifies.
They are never truncated and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import unicodedata
from concurrent.futures import ThreadPoolExecutor

import argon2
from argon2 import Type, extract_parameters
from argon2.exceptions import Argon2Error, InvalidHashError

from authstate.errors import BadRequest, ConfigurationError, InvalidCredentials

log = logging.getLogger("authstate.passwords")

# A hard bound checked before any argon2 work: argon2 pre-hashes, so the cost is the
# request, not the length, but nobody needs a 1 KiB password (UTF-8 bytes).
MAX_PASSWORD_BYTES = 1024
# Characters (code points) after normalization (OWASP: at least 8 with MFA).
MIN_PASSWORD_LENGTH = 8
# OWASP Password Storage cheat sheet, argon2id rows (memory KiB, iterations): any
# configuration at least as strong as one row in both dimensions is accepted.
OWASP_MINIMUMS = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
DEFAULT_MEMORY_KIB = 19456
DEFAULT_TIME_COST = 2
DEFAULT_PARALLELISM = 1
# The machine has two cores: more concurrent hashes would only queue inside the CPU.
DEFAULT_MAX_CONCURRENCY = 2


def _encode(password: str) -> bytes:
    """The bytes argon2 sees. Raises ``BadRequest`` for an oversized password."""
    if not isinstance(password, str):
        raise BadRequest("password must be text")
    # 4 bytes per character at most: this cheap test rejects a huge string before encoding.
    if len(password) > MAX_PASSWORD_BYTES or len(password.encode("utf-8", "surrogatepass")) > (
        MAX_PASSWORD_BYTES
    ):
        raise BadRequest(f"password must be at most {MAX_PASSWORD_BYTES} bytes")
    # surrogatepass: a lone surrogate (possible in JSON) can never have been set as a
    # password (check_new_password refuses it), so it simply fails to verify.
    return unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")


class PasswordHasher:
    """argon2id with parameters at or above the OWASP minimum.

    ``memory_kib`` (KiB), ``time_cost`` (iterations) and ``parallelism`` (lanes) go into
    every new hash's PHC string; ``max_concurrency`` bounds the worker threads used by the
    ``*_async`` methods. Parameters weaker than every OWASP row raise
    ``ConfigurationError`` unless ``unsafe_allow_weak_parameters`` is set (tests only).
    """

    def __init__(
        self,
        *,
        memory_kib: int = DEFAULT_MEMORY_KIB,
        time_cost: int = DEFAULT_TIME_COST,
        parallelism: int = DEFAULT_PARALLELISM,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        unsafe_allow_weak_parameters: bool = False,
    ) -> None:
        strong = any(memory_kib >= m and time_cost >= t for m, t in OWASP_MINIMUMS)
        if not strong and not unsafe_allow_weak_parameters:
            raise ConfigurationError(
                f"argon2id m={memory_kib} KiB, t={time_cost} is below the OWASP minimum "
                "(e.g. m=19456, t=2)"
            )
        if parallelism < 1 or max_concurrency < 1:
            raise ConfigurationError("argon2 parallelism and max_concurrency must be at least 1")
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self._max_concurrency = max_concurrency
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        # Verified against when the user does not exist, so an unknown name costs the same
        # argon2 work as a wrong password (CVE-2024-39329 class). Random: nobody knows it.
        self._dummy_hash = self._argon2.hash(secrets.token_bytes(32))

    @property
    def parameters(self) -> argon2.Parameters:
        """The parameters new hashes get."""
        return argon2.extract_parameters(self._dummy_hash)

    def hash(self, password: str) -> str:
        """The PHC string (``$argon2id$v=19$m=...``) for ``password``, with a fresh 16-byte salt.

        Does not judge strength (see ``check_new_password``); raises ``BadRequest`` for a
        password over ``MAX_PASSWORD_BYTES``."""
        return self._argon2.hash(_encode(password))

    def verify(self, password_hash: str | None, password: str) -> None:
        """Return if ``password`` matches ``password_hash``; raise ``InvalidCredentials``
        otherwise, including for a malformed stored hash.

        ``password_hash=None`` (no such user) runs a real verification against a dummy
        hash with the current parameters and then raises the same ``InvalidCredentials``.
        An oversized password raises ``BadRequest`` before any work, whoever the user is.
        """
        secret = _encode(password)
        if password_hash is None:
            # Fails, as expected: nobody knows the dummy's password.
            with contextlib.suppress(InvalidCredentials):
                self._check(self._dummy_hash, secret)
            raise InvalidCredentials(reason="unknown user")
        self._check(password_hash, secret)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether ``password_hash`` is weaker than today's policy (lower memory or time
        cost, shorter salt or hash, another argon2 variant) or cannot be parsed."""
        try:
            stored = extract_parameters(password_hash)
        except (InvalidHashError, ValueError):
            return True
        policy = self._argon2
        if stored.type is not Type.ID:
            return True
        # Only upgrade: a hash made with stronger parameters than today's policy is kept.
        return (
            stored.memory_cost < policy.memory_cost
            or stored.time_cost < policy.time_cost
            or stored.hash_len < policy.hash_len
            or stored.salt_len < policy.salt_len
        )

    def check_new_password(self, password: str) -> None:
        """Raise ``BadRequest`` unless ``password`` is acceptable as a new password: at
        least ``MIN_PASSWORD_LENGTH`` characters, at most ``MAX_PASSWORD_BYTES`` bytes,
        valid Unicode. Any other character, whitespace included, is allowed."""
        secret = _encode(password)
        try:
            secret.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("password must be valid Unicode text") from None
        if len(unicodedata.normalize("NFKC", password)) < MIN_PASSWORD_LENGTH:
            raise BadRequest(f"password must be at least {MIN_PASSWORD_LENGTH} characters")

    async def hash_async(self, password: str) -> str:
        """``hash`` in a worker thread (at most ``max_concurrency`` at a time)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), self.hash, password)

    async def verify_async(self, password_hash: str | None, password: str) -> None:
        """``verify`` in a worker thread (at most ``max_concurrency`` at a time).

        The size check runs first, on the event loop, so an oversized password never
        takes a worker."""
        _encode(password)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool(), self.verify, password_hash, password)

    def _check(self, password_hash: str, secret: bytes) -> None:
        """The one place argon2 verification happens (tests count calls to it)."""
        try:
            self._argon2.verify(password_hash, secret)
        except InvalidHashError:
            log.warning("a stored password hash is malformed; the login fails")
            raise InvalidCredentials(reason="malformed stored password hash") from None
        except Argon2Error:
            raise InvalidCredentials(reason="wrong password") from None

    def _pool(self) -> ThreadPoolExecutor:
        # A private pool of max_concurrency threads is the bound: waiting logins queue here
        # without holding threads of the loop's default executor (which SQLite and other
        # to_thread users need), and unlike an asyncio.Semaphore it is not tied to one
        # event loop. A queued call whose caller is cancelled never runs.
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._max_concurrency, thread_name_prefix="authstate-argon2"
                )
            return self._executor
