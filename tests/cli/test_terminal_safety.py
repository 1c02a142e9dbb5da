"""What the commands print cannot drive the operator's terminal (redteam F6): a User-Agent,
a user name or a role that holds control or bidi characters is printed with escapes."""

from __future__ import annotations

import asyncio
import secrets
import unicodedata
from pathlib import Path

import httpx
import pytest

from authstate import AuthState, Settings
from authstate.cli._output import printable
from authstate.stores.base import UserRecord
from tests.cli.serve_process import clean_env, run_cli, serve

# A C1 CSI (U+009B) written in UTF-8, as the red team sent it: "\x9b31m" sets red text
# on terminals that honour 8-bit controls.
HOSTILE_USER_AGENT = b"Mozilla\xc2\x9b31mC1-CSI"


def unsafe_characters(text: str) -> list[str]:
    """Characters of ``text`` a terminal could act on (line ends aside)."""
    return [c for c in text if c != "\n" and not c.isprintable()]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Firefox on Linux", "Firefox on Linux"),
        ("Mozilla\x9b31m", "Mozilla\\x9b31m"),
        ("a\x1b[2Jb\x07\x7f", "a\\x1b[2Jb\\x07\\x7f"),
        ("tab\there\nnewline", "tab\\x09here\\x0anewline"),
        ("eve\u202egnp.exe", "eve\\u202egnp.exe"),
        ("\u2066isolate\u2069 \u200b \ufeff", "\\u2066isolate\\u2069 \\u200b \\ufeff"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("José 東京 \u00e9", "José 東京 \u00e9"),
    ],
)
def test_printable_escapes_controls_and_format_characters_only(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert unsafe_characters(printable(text)) == []


def test_printable_leaves_no_category_cc_or_cf_character() -> None:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    out = printable(every)
    assert not [c for c in out if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


@pytest.mark.slow
def test_a_hostile_user_agent_from_a_real_login_is_escaped_in_sessions_list(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'authstate.db'}"
    with serve(tmp_path, "--demo", "--mode", "session", "--store", store) as server:
        password = server.demo_passwords()["bob"]
        response = httpx.post(
            f"{server.url}/auth/login",
            json={"username": "bob", "password": password},
            headers={"user-agent": HOSTILE_USER_AGENT},
            timeout=10,
        )
        assert response.status_code == 200, response.text
    result = run_cli("sessions", "list", "bob", "--store", store, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert unsafe_characters(result.stdout) == []
    assert "\\x9b31mC1-CSI" in result.stdout


@pytest.mark.slow
def test_the_user_agent_of_a_real_login_is_read_as_utf8(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'authstate.db'}"
    with serve(tmp_path, "--demo", "--mode", "session", "--store", store) as server:
        password = server.demo_passwords()["bob"]
        response = httpx.post(
            f"{server.url}/auth/login",
            json={"username": "bob", "password": password},
            headers={"user-agent": "Café/1.0".encode()},
            timeout=10,
        )
        assert response.status_code == 200, response.text
    result = run_cli("sessions", "list", "bob", "--store", store, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].endswith("  Café")  # not "CafÃ©"


async def _plant_user(store: str, username: str, roles: tuple[str, ...]) -> None:
    """A record the accounts layer would refuse today, as an older store may hold."""
    async with AuthState(Settings.from_env({}, store=store)) as auth:
        await auth.store.create_user(
            UserRecord(
                id=secrets.token_hex(8),
                username=username,
                password_hash="x",
                roles=roles,
                created_at=auth.clock.now(),
            )
        )


def test_names_and_roles_from_the_store_are_escaped_in_users_list(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'authstate.db'}"
    asyncio.run(_plant_user(store, "eve\u202egnp.exe", ("admin\x9b31m",)))
    result = run_cli("users", "list", "--store", store, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert unsafe_characters(result.stdout) == []
    assert "eve\\u202egnp.exe" in result.stdout and "admin\\x9b31m" in result.stdout


def test_error_lines_quoting_a_hostile_name_are_escaped(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'authstate.db'}"
    asyncio.run(_plant_user(store, "alice", ()))
    result = run_cli("sessions", "list", "mallory\u202e\u0085x", "--store", store, env=clean_env())
    assert result.returncode == 1
    assert unsafe_characters(result.stderr) == []
    assert len(result.stderr.splitlines()) == 1
