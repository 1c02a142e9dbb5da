"""Passwords: argon2id at or above OWASP, the same error and the same work for unknown
users, bounded input, and hashing off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import argon2
import pytest

from authstate.errors import BadRequest, ConfigurationError, InvalidCredentials
from authstate.passwords import MAX_PASSWORD_BYTES, PasswordHasher


class CountingHasher(PasswordHasher):
    """Counts argon2 verifications: proves that work happens, without timing assertions."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.checks: list[str] = []

    def _check(self, password_hash: str, secret: bytes) -> None:
        self.checks.append(password_hash)
        super()._check(password_hash, secret)


@pytest.fixture(scope="module")
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture(scope="module")
def stored(hasher: PasswordHasher) -> str:
    return hasher.hash("correct horse battery")


def test_hashes_are_argon2id_at_or_above_the_owasp_minimum(stored: str) -> None:
    assert stored.startswith("$argon2id$v=19$")
    params = argon2.extract_parameters(stored)
    assert params.type is argon2.Type.ID
    assert params.memory_cost >= 19456
    assert params.time_cost >= 2
    assert params.parallelism >= 1
    assert params.salt_len >= 16
    assert params.hash_len >= 32


def test_two_users_with_one_password_get_different_hashes(hasher: PasswordHasher) -> None:
    assert hasher.hash("same password!") != hasher.hash("same password!")


def test_the_right_password_verifies(hasher: PasswordHasher, stored: str) -> None:
    hasher.verify(stored, "correct horse battery")


def test_wrong_password_and_unknown_user_raise_the_same_error(
    hasher: PasswordHasher, stored: str
) -> None:
    with pytest.raises(InvalidCredentials) as wrong:
        hasher.verify(stored, "incorrect horse")
    with pytest.raises(InvalidCredentials) as unknown:
        hasher.verify(None, "incorrect horse")
    assert type(wrong.value) is type(unknown.value)
    assert (wrong.value.status_code, wrong.value.code, wrong.value.detail) == (
        unknown.value.status_code,
        unknown.value.code,
        unknown.value.detail,
    )
    assert str(wrong.value) == str(unknown.value)


def test_an_unknown_user_costs_a_real_argon2_verification(hasher: CountingHasher) -> None:
    hasher.checks.clear()
    with pytest.raises(InvalidCredentials):
        hasher.verify(None, "whatever password")
    assert len(hasher.checks) == 1
    dummy = hasher.checks[0]
    # The dummy has today's parameters, so it costs what a real user's hash costs.
    assert argon2.extract_parameters(dummy) == hasher.parameters


def test_the_dummy_hash_is_made_once(hasher: CountingHasher) -> None:
    hasher.checks.clear()
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            hasher.verify(None, "whatever password")
    assert hasher.checks[0] == hasher.checks[1]


def test_a_malformed_stored_hash_is_invalid_credentials_not_a_crash(hasher: PasswordHasher) -> None:
    for broken in [
        "",
        "plaintext",
        "$argon2id$v=19$m=19456,t=2,p=1$zzz",
        "$2b$12$abcdefghijklmnopqrstuv",
    ]:
        with pytest.raises(InvalidCredentials):
            hasher.verify(broken, "correct horse battery")


def test_a_one_megabyte_password_is_refused_before_any_hashing(hasher: CountingHasher) -> None:
    huge = "a" * 1_000_000
    hasher.checks.clear()
    for password_hash in (None, "$argon2id$whatever"):
        with pytest.raises(BadRequest) as caught:
            hasher.verify(password_hash, huge)
        assert caught.value.status_code == 400
    assert hasher.checks == []
    with pytest.raises(BadRequest):
        hasher.hash(huge)


def test_the_byte_limit_counts_utf8_bytes_not_characters(hasher: PasswordHasher) -> None:
    with pytest.raises(BadRequest):
        hasher.hash("\u20ac" * (MAX_PASSWORD_BYTES // 3 + 1))  # 3 bytes each
    hasher.hash("a" * MAX_PASSWORD_BYTES)


def test_a_long_password_is_not_truncated(hasher: PasswordHasher) -> None:
    password = "x" * 100
    stored = hasher.hash(password)
    with pytest.raises(InvalidCredentials):
        hasher.verify(stored, password[:72] + "y" + password[73:])


def test_composed_and_decomposed_unicode_are_the_same_password(hasher: PasswordHasher) -> None:
    stored = hasher.hash("caf\u00e9 au lait")  # é as one code point
    hasher.verify(stored, "cafe\u0301 au lait")  # e + combining acute accent


def test_spaces_emoji_and_nul_bytes_are_ordinary_characters(hasher: PasswordHasher) -> None:
    for password in ["  spaces  all around  ", "\U0001f511\U0001f512 emoji pass", "nul\x00inside!"]:
        hasher.check_new_password(password)
        hasher.verify(hasher.hash(password), password)


def test_a_lone_surrogate_fails_to_verify_rather_than_crashing(
    hasher: PasswordHasher, stored: str
) -> None:
    with pytest.raises(InvalidCredentials):
        hasher.verify(stored, "abc\ud800def")


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 8"),
        ("1234567", "at least 8"),
        ("a" * (MAX_PASSWORD_BYTES + 1), "at most 1024"),
        ("valid but \ud800 surrogate", "Unicode"),
    ],
)
def test_a_weak_or_unusable_new_password_is_refused_with_a_message(
    hasher: PasswordHasher, password: str, message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        hasher.check_new_password(password)


def test_an_eight_character_password_is_long_enough(hasher: PasswordHasher) -> None:
    hasher.check_new_password("12345678")


def test_a_hash_with_weaker_parameters_needs_a_rehash(hasher: PasswordHasher, stored: str) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    argon2i = argon2.PasswordHasher(
        time_cost=2, memory_cost=19456, parallelism=1, type=argon2.Type.I
    ).hash("pw")
    assert hasher.needs_rehash(weak)
    assert hasher.needs_rehash(argon2i)
    assert hasher.needs_rehash("not a hash")
    assert not hasher.needs_rehash(stored)


def test_an_old_weak_hash_still_verifies_so_it_can_be_upgraded(hasher: PasswordHasher) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("old password")
    hasher.verify(weak, "old password")


def test_parameters_below_owasp_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="OWASP"):
        PasswordHasher(memory_kib=8192, time_cost=2)
    with pytest.raises(ConfigurationError, match="OWASP"):
        PasswordHasher(memory_kib=19456, time_cost=1)


def test_any_owasp_equivalent_row_is_accepted() -> None:
    PasswordHasher(memory_kib=12288, time_cost=3)


def test_weak_parameters_need_the_unsafe_flag() -> None:
    fast = PasswordHasher(memory_kib=8, time_cost=1, unsafe_allow_weak_parameters=True)
    fast.verify(fast.hash("test password"), "test password")


# -- off the event loop -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_hash_and_verify_work(hasher: PasswordHasher) -> None:
    stored = await hasher.hash_async("async password")
    await hasher.verify_async(stored, "async password")
    with pytest.raises(InvalidCredentials):
        await hasher.verify_async(stored, "wrong password")
    with pytest.raises(InvalidCredentials):
        await hasher.verify_async(None, "async password")


@pytest.mark.anyio
async def test_a_login_flood_runs_at_most_two_hashes_at_once() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    class SlowHasher(PasswordHasher):
        def _check(self, password_hash: str, secret: bytes) -> None:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.02)
            with lock:
                running -= 1
            super()._check(password_hash, secret)

    slow = SlowHasher(memory_kib=8, time_cost=1, unsafe_allow_weak_parameters=True)
    results = await asyncio.gather(
        *(slow.verify_async(None, "flood password") for _ in range(8)), return_exceptions=True
    )
    assert all(isinstance(result, InvalidCredentials) for result in results)
    assert peak == 2


@pytest.mark.anyio
async def test_the_event_loop_keeps_running_while_passwords_hash() -> None:
    gate = threading.Event()

    class BlockingHasher(PasswordHasher):
        def _check(self, password_hash: str, secret: bytes) -> None:
            gate.wait(5)
            super()._check(password_hash, secret)

    blocking = BlockingHasher(memory_kib=8, time_cost=1, unsafe_allow_weak_parameters=True)
    task = asyncio.ensure_future(blocking.verify_async(None, "some password"))
    await asyncio.sleep(0)
    assert not task.done()  # the loop got control back while the worker waits
    gate.set()
    with pytest.raises(InvalidCredentials):
        await task


@pytest.mark.anyio
async def test_an_oversized_password_never_takes_a_worker(hasher: CountingHasher) -> None:
    hasher.checks.clear()
    with pytest.raises(BadRequest):
        await hasher.verify_async(None, "a" * 1_000_000)
    assert hasher.checks == []


def test_a_hash_stronger_than_the_policy_is_not_downgraded_on_login() -> None:
    strong = PasswordHasher(memory_kib=2 * 19456, time_cost=3)
    policy = PasswordHasher()
    assert not policy.needs_rehash(strong.hash("correct horse battery"))
    assert policy.needs_rehash(
        PasswordHasher(memory_kib=8, time_cost=1, unsafe_allow_weak_parameters=True).hash("x" * 12)
    )
