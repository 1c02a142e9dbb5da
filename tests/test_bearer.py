"""The one reader of ``Authorization: Bearer`` and the ``AUTHSTATE_TRANSPORTS`` setting."""

from __future__ import annotations

import pytest

from authstate.bearer import MAX_BEARER_CHARS, is_bearer, read_bearer
from authstate.errors import AuthenticationError, ConfigurationError
from authstate.settings import Settings

TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1MSJ9.c2ln-_"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_scheme_is_read_in_any_case(scheme: str) -> None:
    assert read_bearer([f"{scheme} {TOKEN}"]) == TOKEN


def test_other_schemes_are_not_ours() -> None:
    assert read_bearer([]) is None
    assert read_bearer(["Basic YWxpY2U6eA=="]) is None
    assert read_bearer(["Bearerx abc"]) is None
    assert not is_bearer("Digest x") and is_bearer("  Bearer")


@pytest.mark.parametrize(
    "value",
    [
        "Bearer",
        "Bearer ",
        f"Bearer  {TOKEN}",
        f"Bearer\t{TOKEN}",
        f"Bearer {TOKEN} ",
        f"Bearer {TOKEN},x",
        f"Bearer {TOKEN}=a",
        f'Bearer "{TOKEN}"',
        "Bearer " + "a" * MAX_BEARER_CHARS,
    ],
)
def test_a_malformed_bearer_header_is_refused(value: str) -> None:
    with pytest.raises(AuthenticationError):
        read_bearer([value])


def test_two_authorization_headers_with_a_bearer_one_are_refused() -> None:
    with pytest.raises(AuthenticationError):
        read_bearer([f"Bearer {TOKEN}", f"Bearer {TOKEN}"])
    with pytest.raises(AuthenticationError):
        read_bearer(["Basic YWxpY2U6eA==", f"Bearer {TOKEN}"])


def test_padding_is_allowed_at_the_end_only() -> None:
    assert read_bearer(["Bearer abc=="]) == "abc=="


def test_transports_default_to_the_cookie_and_take_bearer_beside_it() -> None:
    assert Settings().transports == ("cookie",)
    assert not Settings().bearer_enabled
    settings = Settings.from_env({"AUTHSTATE_TRANSPORTS": " Cookie , bearer "})
    assert settings.transports == ("cookie", "bearer") and settings.bearer_enabled
    assert Settings(transports=("bearer", "cookie", "bearer")).transports == ("bearer", "cookie")


@pytest.mark.parametrize("value", ["bearer", "", "cookie,header", "cookie;bearer"])
def test_transports_without_the_cookie_or_unknown_ones_stop_the_start(value: str) -> None:
    with pytest.raises(ConfigurationError, match="AUTHSTATE_TRANSPORTS"):
        Settings.from_env({"AUTHSTATE_TRANSPORTS": value})
