"""AUTHSTATE_ALLOWED_HOSTS: what a pattern matches, how a Host header is read, and which
values the setting refuses."""

from __future__ import annotations

import pytest

from authstate.errors import ConfigurationError
from authstate.server.hosts import allowed_hosts, host_matches, host_name
from authstate.settings import Settings


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Example.COM", "example.com"),
        ("example.com:8443", "example.com"),
        ("example.com.", "example.com"),
        ("[::1]:8000", "[::1]"),
        ("[::1]", "[::1]"),
        ("127.0.0.1:80", "127.0.0.1"),
        ("", ""),
    ],
)
def test_the_host_is_read_without_port_case_or_trailing_dot(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("host", "patterns", "allowed"),
    [
        ("example.com", ("example.com",), True),
        ("www.example.com", ("example.com",), False),
        ("www.example.com", (".example.com",), True),
        ("example.com", (".example.com",), True),
        ("evilexample.com", (".example.com",), False),
        ("example.com.evil", ("example.com",), False),
        ("anything", ("*",), True),
        ("", ("*",), False),
        ("", ("localhost",), False),
    ],
)
def test_a_pattern_matches_its_name_and_dot_patterns_their_subdomains(
    host: str, patterns: tuple[str, ...], allowed: bool
) -> None:
    assert host_matches(host, patterns) is allowed


def test_the_bind_address_is_allowed_unless_it_is_every_interface() -> None:
    defaults = Settings().allowed_hosts
    assert allowed_hosts(defaults, "127.0.0.1") == ("localhost", "127.0.0.1", "[::1]")
    assert allowed_hosts(defaults, "0.0.0.0") == defaults  # noqa: S104 - a value, not a bind
    assert allowed_hosts(defaults, "::") == defaults
    assert allowed_hosts(defaults, "192.0.2.7")[-1] == "192.0.2.7"
    assert allowed_hosts(defaults, "fe80::1")[-1] == "[fe80::1]"


@pytest.mark.parametrize(
    "value", ["https://example.com", "example.com:443", "exa mple.com", "", " , ", "ünï.com"]
)
def test_a_bad_allowed_hosts_value_stops_the_start_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigurationError, match="AUTHSTATE_ALLOWED_HOSTS"):
        Settings(allowed_hosts=value)


def test_allowed_hosts_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"AUTHSTATE_ALLOWED_HOSTS": "App.Example.com, .example.org"})
    assert settings.allowed_hosts == ("app.example.com", ".example.org")
