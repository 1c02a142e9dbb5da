"""Settings: the defaults of docs/deploy.md, AUTHSTATE_* parsing, precedence and one-line errors."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import pytest

from authstate.errors import ConfigurationError
from authstate.setting_values import normalize_origin, parse_duration
from authstate.settings import Settings

SECRET = "0123456789abcdef0123456789abcdef"  # exactly 32 bytes


def test_defaults_match_the_design() -> None:
    settings = Settings.from_env({})
    assert settings.mode == "hybrid"
    assert settings.store == "sqlite:///authstate.db"
    assert settings.secret is None
    assert settings.secret_file is None
    assert settings.access_ttl == timedelta(minutes=15)
    assert settings.session_ttl == timedelta(days=7)
    assert settings.idle_ttl == timedelta(days=1)
    assert settings.refresh_ttl == timedelta(days=30)
    assert settings.refresh_grace == timedelta(seconds=10)
    assert settings.algorithm == "EdDSA"
    assert settings.allowed_origins == ()
    assert settings.login_max_attempts == 10
    assert settings.login_window == timedelta(minutes=15)
    assert settings.max_staleness == timedelta(seconds=5)
    assert settings.fail_closed is False
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.cookie_secure is True
    assert settings.trust_forwarded is False
    assert settings == Settings()


def test_seconds_properties_are_whole_seconds() -> None:
    settings = Settings()
    assert settings.access_ttl_seconds == 900
    assert settings.session_ttl_seconds == 7 * 86400
    assert settings.idle_ttl_seconds == 86400
    assert settings.refresh_ttl_seconds == 30 * 86400
    assert settings.refresh_grace_seconds == 10
    assert settings.login_window_seconds == 900
    assert settings.leeway_seconds == 30
    assert settings.last_seen_interval_seconds == 60
    assert settings.max_staleness_seconds == 5.0
    assert isinstance(settings.access_ttl_seconds, int)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("90", timedelta(seconds=90)),
        (" 10s ", timedelta(seconds=10)),
        ("0.5s", timedelta(milliseconds=500)),
        ("0", timedelta(0)),
    ],
)
def test_durations_are_written_with_a_unit_or_as_seconds(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "15x",
        "-5s",
        "15 m",
        "15M",
        "1e3",
        "1_000",
        "\u0661\u0665",
        "s",
        "1.s",
        ".5",
        "nan",
        "inf",
    ],
)
def test_a_malformed_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_an_absurd_duration_is_refused_not_crashed() -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_duration("999999999999d")


def test_environment_variables_are_read() -> None:
    settings = Settings.from_env(
        {
            "AUTHSTATE_MODE": "session",
            "AUTHSTATE_STORE": "memory://",
            "AUTHSTATE_SECRET": SECRET,
            "AUTHSTATE_ACCESS_TTL": "5m",
            "AUTHSTATE_SESSION_TTL": "2d",
            "AUTHSTATE_IDLE_TTL": "3h",
            "AUTHSTATE_REFRESH_TTL": "10d",
            "AUTHSTATE_REFRESH_GRACE": "5s",
            "AUTHSTATE_ALGORITHM": "ES256",
            "AUTHSTATE_ALLOWED_ORIGINS": "https://app.example.test, http://localhost:3000",
            "AUTHSTATE_LOGIN_MAX_ATTEMPTS": "3",
            "AUTHSTATE_LOGIN_WINDOW": "1h",
            "AUTHSTATE_MAX_STALENESS": "0.25",
            "AUTHSTATE_FAIL_CLOSED": "yes",
            "AUTHSTATE_HOST": "192.0.2.10",
            "AUTHSTATE_PORT": "9000",
            "AUTHSTATE_TRUST_FORWARDED": "1",
        }
    )
    assert settings.mode == "session"
    assert settings.store == "memory://"
    assert settings.secret == SECRET.encode()
    assert settings.access_ttl_seconds == 300
    assert settings.session_ttl == timedelta(days=2)
    assert settings.idle_ttl == timedelta(hours=3)
    assert settings.refresh_ttl == timedelta(days=10)
    assert settings.refresh_grace_seconds == 5
    assert settings.algorithm == "ES256"
    assert settings.allowed_origins == ("https://app.example.test", "http://localhost:3000")
    assert settings.login_max_attempts == 3
    assert settings.login_window_seconds == 3600
    assert settings.max_staleness_seconds == 0.25
    assert settings.fail_closed is True
    assert (settings.host, settings.port) == ("192.0.2.10", 9000)
    assert settings.trust_forwarded is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("true", True), ("YES", True), ("0", False), ("False", False), (" no ", False)],
)
def test_booleans_are_written_one_zero_true_false_yes_no(text: str, expected: bool) -> None:
    assert Settings.from_env({"AUTHSTATE_FAIL_CLOSED": text}).fail_closed is expected


def test_flags_win_over_the_environment() -> None:
    env = {"AUTHSTATE_MODE": "session", "AUTHSTATE_PORT": "9000", "AUTHSTATE_STORE": "memory://"}
    settings = Settings.from_env(env, mode="stateless", port="9100")
    assert settings.mode == "stateless"
    assert settings.port == 9100
    assert settings.store == "memory://"


def test_an_unset_flag_leaves_the_environment_in_charge() -> None:
    settings = Settings.from_env({"AUTHSTATE_MODE": "session"}, mode=None)
    assert settings.mode == "session"


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHSTATE_ACCESS_TTL", "2m")
    assert Settings.from_env().access_ttl_seconds == 120


def test_typed_values_and_strings_are_both_accepted_in_code() -> None:
    settings = Settings(idle_ttl="1h", last_seen_interval=30, session_ttl=timedelta(hours=2))  # type: ignore[arg-type]
    assert settings.idle_ttl == timedelta(hours=1)
    assert settings.last_seen_interval == timedelta(seconds=30)
    assert settings.session_ttl == timedelta(hours=2)


def test_a_misspelt_keyword_is_a_type_error_with_a_suggestion() -> None:
    with pytest.raises(TypeError, match="did you mean 'access_ttl'"):
        Settings.from_env({}, acess_ttl="5m")


def test_a_misspelt_variable_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="authstate.settings"):
        settings = Settings.from_env({"AUTHSTATE_ACESS_TTL": "1m", "AUTHSTATE_TEST_POSTGRES": "x"})
    assert settings.access_ttl == timedelta(minutes=15)
    assert "AUTHSTATE_ACESS_TTL" in caplog.text
    assert "AUTHSTATE_ACCESS_TTL" in caplog.text
    # Unrelated AUTHSTATE_* variables (the test harness's) are not setting typos.
    assert "AUTHSTATE_TEST_POSTGRES" not in caplog.text


def test_asking_for_secure_cookies_to_be_off_points_at_the_unsafe_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="authstate.settings"):
        settings = Settings.from_env({"AUTHSTATE_COOKIE_SECURE": "0"})
    assert settings.cookie_secure is True
    assert "AUTHSTATE_UNSAFE_INSECURE_COOKIES" in caplog.text


def test_insecure_cookies_need_the_unsafe_name() -> None:
    settings = Settings.from_env({"AUTHSTATE_UNSAFE_INSECURE_COOKIES": "1"})
    assert settings.cookie_secure is False


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "AUTHSTATE_ACCESS_TTL",
            "15x",
            "AUTHSTATE_ACCESS_TTL: '15x' is not a duration (use 45s, 15m, 12h, 7d or seconds)",
        ),
        ("AUTHSTATE_ACCESS_TTL", "0", "AUTHSTATE_ACCESS_TTL: must be positive"),
        ("AUTHSTATE_ACCESS_TTL", "1.5", "AUTHSTATE_ACCESS_TTL: must be a whole number of seconds"),
        (
            "AUTHSTATE_ACCESS_TTL",
            "31d",
            "AUTHSTATE_ACCESS_TTL: must not be longer than AUTHSTATE_REFRESH_TTL",
        ),
        ("AUTHSTATE_SESSION_TTL", "-1d", "AUTHSTATE_SESSION_TTL: '-1d' is not a duration"),
        ("AUTHSTATE_SESSION_TTL", "401d", "AUTHSTATE_SESSION_TTL: must be at most 400d"),
        ("AUTHSTATE_IDLE_TTL", "", "AUTHSTATE_IDLE_TTL: '' is not a duration"),
        ("AUTHSTATE_REFRESH_TTL", "0s", "AUTHSTATE_REFRESH_TTL: must be positive"),
        ("AUTHSTATE_REFRESH_GRACE", "5m", "AUTHSTATE_REFRESH_GRACE: must be at most 60s"),
        ("AUTHSTATE_LEEWAY", "1h", "AUTHSTATE_LEEWAY: must be at most 300s"),
        ("AUTHSTATE_MAX_STALENESS", "0", "AUTHSTATE_MAX_STALENESS: must be positive"),
        ("AUTHSTATE_LOGIN_WINDOW", "soon", "AUTHSTATE_LOGIN_WINDOW: 'soon' is not a duration"),
        ("AUTHSTATE_LAST_SEEN_INTERVAL", "1 minute", "AUTHSTATE_LAST_SEEN_INTERVAL: '1 minute'"),
        (
            "AUTHSTATE_MODE",
            "jwt",
            "AUTHSTATE_MODE: 'jwt' is not a mode (use stateless, session or hybrid)",
        ),
        ("AUTHSTATE_ALGORITHM", "none", "AUTHSTATE_ALGORITHM: 'none' is not supported"),
        ("AUTHSTATE_ALGORITHM", "RS256", "AUTHSTATE_ALGORITHM: 'RS256' is not supported"),
        ("AUTHSTATE_STORE", "authstate.db", "AUTHSTATE_STORE: 'authstate.db' is not a store URL"),
        ("AUTHSTATE_STORE", "", "AUTHSTATE_STORE: '' must be non-empty"),
        ("AUTHSTATE_SECRET", "too short", "AUTHSTATE_SECRET: must be at least 32 bytes (got 9)"),
        ("AUTHSTATE_SECRET", "", "AUTHSTATE_SECRET: must be at least 32 bytes (got 0)"),
        ("AUTHSTATE_SECRET_FILE", "", "AUTHSTATE_SECRET_FILE: '' must be non-empty"),
        ("AUTHSTATE_LOGIN_MAX_ATTEMPTS", "0", "AUTHSTATE_LOGIN_MAX_ATTEMPTS: must be at least 1"),
        (
            "AUTHSTATE_LOGIN_MAX_ATTEMPTS",
            "ten",
            "AUTHSTATE_LOGIN_MAX_ATTEMPTS: 'ten' is not a whole number",
        ),
        (
            "AUTHSTATE_LOGIN_MAX_ATTEMPTS",
            "-3",
            "AUTHSTATE_LOGIN_MAX_ATTEMPTS: '-3' is not a whole number",
        ),
        ("AUTHSTATE_PORT", "0", "AUTHSTATE_PORT: 0 is outside 1-65535"),
        ("AUTHSTATE_PORT", "70000", "AUTHSTATE_PORT: 70000 is outside 1-65535"),
        ("AUTHSTATE_PORT", "http", "AUTHSTATE_PORT: 'http' is not a whole number"),
        ("AUTHSTATE_HOST", " ", "AUTHSTATE_HOST: ' ' must be non-empty"),
        ("AUTHSTATE_ISSUER", "", "AUTHSTATE_ISSUER: '' must be non-empty"),
        ("AUTHSTATE_FAIL_CLOSED", "maybe", "AUTHSTATE_FAIL_CLOSED: 'maybe' is not a boolean"),
        ("AUTHSTATE_TRUST_FORWARDED", "on", "AUTHSTATE_TRUST_FORWARDED: 'on' is not a boolean"),
        ("AUTHSTATE_UNSAFE_INSECURE_COOKIES", "2", "AUTHSTATE_UNSAFE_INSECURE_COOKIES: '2'"),
        (
            "AUTHSTATE_ALLOWED_ORIGINS",
            "https://app.test/",
            "AUTHSTATE_ALLOWED_ORIGINS: 'https://app.test/'",
        ),
        ("AUTHSTATE_ALLOWED_ORIGINS", "*", "AUTHSTATE_ALLOWED_ORIGINS: '*' is not an origin"),
        ("AUTHSTATE_HEADER_TIMEOUT", "0", "AUTHSTATE_HEADER_TIMEOUT: must be positive"),
        ("AUTHSTATE_BODY_TIMEOUT", "-1", "AUTHSTATE_BODY_TIMEOUT: '-1' is not a duration"),
        ("AUTHSTATE_KEEPALIVE_TIMEOUT", "0.5", "AUTHSTATE_KEEPALIVE_TIMEOUT: must be a whole"),
        ("AUTHSTATE_MAX_HEADER_BYTES", "1024", "AUTHSTATE_MAX_HEADER_BYTES: must be 8192-1048576"),
        ("AUTHSTATE_MAX_HEADER_BYTES", "2000000", "AUTHSTATE_MAX_HEADER_BYTES: must be 8192-"),
        ("AUTHSTATE_MAX_CONNECTIONS", "0", "AUTHSTATE_MAX_CONNECTIONS: must be at least 1"),
        (
            "AUTHSTATE_ALLOWED_ORIGINS",
            "app.test",
            "AUTHSTATE_ALLOWED_ORIGINS: 'app.test' is not an origin",
        ),
    ],
)
def test_every_bad_value_stops_the_start_with_one_line_naming_the_variable(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({variable: value})
    text = str(caught.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_the_server_timeouts_take_fractions_for_fast_tests() -> None:
    settings = Settings.from_env(
        {"AUTHSTATE_HEADER_TIMEOUT": "0.5", "AUTHSTATE_BODY_TIMEOUT": "1.5"}
    )
    assert settings.header_timeout == timedelta(seconds=0.5)
    assert settings.body_timeout == timedelta(seconds=1.5)


def test_a_secret_and_a_secret_file_together_are_ambiguous() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        Settings.from_env({"AUTHSTATE_SECRET": SECRET, "AUTHSTATE_SECRET_FILE": "/run/secret"})


def test_a_bad_secret_is_never_echoed_in_the_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings(secret="hunter2-but-short")  # type: ignore[arg-type]
    assert "hunter2" not in str(caught.value)


def test_the_secret_is_hidden_in_repr() -> None:
    settings = Settings(secret=SECRET.encode())
    assert SECRET not in repr(settings)
    assert "secret=<hidden>" in repr(settings)
    assert SECRET not in str(settings)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://app:s3cr3t-pw@db.internal:5432/auth",
            "postgresql://app:***@db.internal:5432/auth",
        ),
        ("rediss://:s3cr3t-pw@cache.internal:6380/0", "rediss://:***@cache.internal:6380/0"),
    ],
)
def test_a_database_password_in_the_store_url_is_hidden_in_repr(url: str, shown: str) -> None:
    settings = Settings(store=url)
    assert "s3cr3t-pw" not in repr(settings)
    assert shown in repr(settings)
    assert settings.store == url


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.mode = "session"  # type: ignore[misc]


def test_replace_validates_again() -> None:
    with pytest.raises(ConfigurationError, match="AUTHSTATE_PORT"):
        dataclasses.replace(Settings(), port=0)


def test_a_boolean_is_not_a_number() -> None:
    with pytest.raises(ConfigurationError, match="AUTHSTATE_PORT"):
        Settings(port=True)
    with pytest.raises(ConfigurationError, match="AUTHSTATE_ACCESS_TTL"):
        Settings(access_ttl=True)  # type: ignore[arg-type]


def test_allowed_origins_are_normalized_and_deduplicated() -> None:
    origins = ["HTTPS://App.Example.test:443", "https://app.example.test"]
    settings = Settings(allowed_origins=origins)  # type: ignore[arg-type]
    assert settings.allowed_origins == ("https://app.example.test",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://app.example.test", "https://app.example.test"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://LOCALHOST:80", "http://localhost"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("https://127.0.0.1", "https://127.0.0.1"),
    ],
)
def test_an_origin_is_scheme_host_and_port(text: str, expected: str) -> None:
    assert normalize_origin(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "null",
        "https://app.test/",
        "https://app.test/path",
        "https://app.test?x=1",
        "https://user@app.test",
        "ftp://app.test",
        "https://",
        "https://app.test:0",
        "https://app.test:99999",
        "https://app..test",
        "https://\u212aelvin.test",  # KELVIN SIGN lower-cases to an ASCII 'k'
        " https://app.test",
    ],
)
def test_anything_else_is_not_an_origin(text: str) -> None:
    with pytest.raises(ValueError):
        normalize_origin(text)
