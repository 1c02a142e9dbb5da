"""Every command of docs/cli.md except ``serve``: what it prints, what it changes, and one
line on stderr with exit status 1 for each mistake a user can make."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import subprocess
from pathlib import Path

import pytest

from authstate import AuthState
from authstate.cli import main
from authstate.errors import AuthenticationError
from authstate.settings import Settings
from tests.cli.serve_process import COMMAND, clean_env, run_cli
from tests.conftest import unavailable

PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def empty_store(store: str) -> str:
    """A store that exists, without users."""
    asyncio.run(AuthState(Settings.from_env({}, store=store)).start())
    return store


def run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *argv: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    assert status == 1
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("authstate: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def alice(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store: str) -> str:
    status, out, _ = run(
        capsys,
        monkeypatch,
        "users", "add", "alice", "--role", "staff", "--role", "admin", "--password-stdin",
        "--store", store,
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert status == 0
    return out


async def _login(store: str, name: str = "alice", mode: str = "hybrid") -> tuple[str, str]:
    """Log alice in through the library, as a running server would; return the cookie."""
    async with AuthState(Settings.from_env({}, store=store, mode=mode)) as auth:
        user = await auth.accounts.verify_login(name, PASSWORD, ip="127.0.0.1")
        issued = await auth.login(user.id, user.roles)
        return user.id, issued.auth_value


async def _still_valid(store: str, cookie: str, mode: str = "hybrid") -> bool:
    async with AuthState(Settings.from_env({}, store=store, mode=mode)) as auth:
        try:
            await auth.authenticate(cookie)
        except AuthenticationError:
            return False
        return True


# -- users ---------------------------------------------------------------------------------
def test_users_add_creates_a_user_who_can_log_in(alice: str, store: str) -> None:
    assert alice.startswith("created user alice (id ")
    user_id, cookie = asyncio.run(_login(store))
    assert user_id in alice and cookie


def test_users_list_shows_names_ids_and_roles(
    alice: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    status, out, _ = run(capsys, monkeypatch, "users", "list", "--store", store)
    assert status == 0
    header, row = out.splitlines()
    assert header.split()[:3] == ["NAME", "ID", "ROLES"]
    assert row.startswith("alice") and "staff,admin" in row


def test_users_list_on_an_empty_store_says_how_to_add_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, empty_store: str
) -> None:
    status, out, _ = run(capsys, monkeypatch, "users", "list", "--store", empty_store)
    assert status == 0
    assert "no users" in out and "users add" in out


def test_users_add_twice_is_an_error(
    alice: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    status, _, err = run(
        capsys, monkeypatch, "users", "add", "Alice", "--password-stdin", "--store", store,
        stdin=PASSWORD,
    )  # fmt: skip
    assert_one_line_error(status, err, "already exists")


@pytest.mark.parametrize(
    ("argv", "stdin", "fragment"),
    [
        (["users", "add", "bob"], PASSWORD, "--password-stdin"),
        (["users", "add", "bob", "--password-stdin"], "", "no password"),
        (["users", "add", "bob", "--password-stdin"], "short\n", "at least 8"),
        (["users", "add", "", "--password-stdin"], PASSWORD, "username"),
        (["users", "add", "bad name!", "--password-stdin"], PASSWORD, "letters, digits"),
        (["users", "add", "a\u202eb", "--password-stdin"], PASSWORD, "printable"),
        (["users", "add", "x" * 65, "--password-stdin"], PASSWORD, "1-64"),
        (["users", "add", "bob", "--role", "", "--password-stdin"], PASSWORD, "a role is"),
        (["users", "add", "bob", "--role", "a b", "--password-stdin"], PASSWORD, "'a b'"),
        (["users", "add", "bob", "--password", "x"], "", "unrecognized arguments"),
    ],
)
def test_users_add_mistakes_are_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    store: str,
    argv: list[str],
    stdin: str,
    fragment: str,
) -> None:
    status, _, err = run(capsys, monkeypatch, *argv, "--store", store, stdin=stdin)
    assert_one_line_error(status, err, fragment)
    assert list(Path(store.removeprefix("sqlite:///")).parent.iterdir()) == []  # nothing made


@pytest.mark.parametrize("name", ["alice", "José", "ops.team-1", "carol@example.org", "a_b"])
def test_users_add_accepts_letters_digits_and_dot_underscore_dash_at(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store: str, name: str
) -> None:
    status, out, err = run(
        capsys, monkeypatch, "users", "add", name, "--role", "ops:read", "--password-stdin",
        "--store", store, stdin=PASSWORD,
    )  # fmt: skip
    assert status == 0, err
    assert out.startswith(f"created user {name.casefold()} ")


def test_users_passwd_sets_the_password_and_revokes_every_session(
    alice: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    _, cookie = asyncio.run(_login(store))
    status, out, _ = run(
        capsys, monkeypatch, "users", "passwd", "alice", "--password-stdin", "--store", store,
        stdin="a different password\r\n",
    )  # fmt: skip
    assert status == 0
    assert "password changed for alice" in out
    assert not asyncio.run(_still_valid(store, cookie))

    async def login_with(password: str) -> bool:
        async with AuthState(Settings.from_env({}, store=store)) as auth:
            try:
                await auth.accounts.verify_login("alice", password, ip="127.0.0.1")
            except AuthenticationError:
                return False
            return True

    assert asyncio.run(login_with("a different password"))
    assert not asyncio.run(login_with(PASSWORD))


def test_users_passwd_for_an_unknown_user_is_an_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, empty_store: str
) -> None:
    status, _, err = run(
        capsys, monkeypatch, "users", "passwd", "nobody", "--password-stdin",
        "--store", empty_store,
        stdin=PASSWORD,
    )  # fmt: skip
    assert_one_line_error(status, err, "no user named 'nobody'")


# -- sessions ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["session", "hybrid"])
def test_sessions_list_shows_each_live_session(
    alice: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    store: str,
    mode: str,
) -> None:
    asyncio.run(_login(store, mode=mode))
    asyncio.run(_login(store, mode=mode))
    status, out, _ = run(capsys, monkeypatch, "sessions", "list", "alice", "--store", store)
    assert status == 0
    header, *rows = out.splitlines()
    assert header.split()[:2] == ["ID", "KIND"]
    assert len(rows) == 2
    assert all(("refresh" if mode == "hybrid" else "session") in row for row in rows)


def test_sessions_list_without_sessions_says_so(
    alice: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    status, out, _ = run(capsys, monkeypatch, "sessions", "list", "alice", "--store", store)
    assert status == 0
    assert out.startswith("no active sessions for alice")


@pytest.mark.parametrize("mode", ["stateless", "session", "hybrid"])
def test_sessions_revoke_all_kills_every_session_and_token(
    alice: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    store: str,
    mode: str,
) -> None:
    _, cookie = asyncio.run(_login(store, mode=mode))
    assert asyncio.run(_still_valid(store, cookie, mode=mode))
    status, out, _ = run(capsys, monkeypatch, "sessions", "revoke-all", "alice", "--store", store)
    assert status == 0
    assert out.strip() == "revoked every session and token of alice"
    assert not asyncio.run(_still_valid(store, cookie, mode=mode))


@pytest.mark.parametrize("action", ["list", "revoke-all"])
def test_sessions_of_an_unknown_user_is_an_error(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    empty_store: str,
    action: str,
) -> None:
    status, _, err = run(capsys, monkeypatch, "sessions", action, "nobody", "--store", empty_store)
    assert_one_line_error(status, err, "no user named")


# -- keys ----------------------------------------------------------------------------------
def test_keys_rotate_starts_a_new_signing_key_and_old_tokens_still_verify(
    alice: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    _, cookie = asyncio.run(_login(store, mode="stateless"))
    status, out, _ = run(capsys, monkeypatch, "keys", "list", "--store", store)
    assert status == 0
    (old_kid,) = [line.split()[0] for line in out.splitlines()[1:]]
    status, out, _ = run(capsys, monkeypatch, "keys", "rotate", "--store", store)
    assert status == 0
    new_kid = out.split()[3]
    assert out.startswith("new signing key ") and new_kid != old_kid
    status, out, _ = run(capsys, monkeypatch, "keys", "list", "--store", store)
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == {old_kid, new_kid}
    assert rows[new_kid].endswith("signing")
    assert "verifying until" in rows[old_kid]
    assert asyncio.run(_still_valid(store, cookie, mode="stateless"))


# -- every command, its mistakes -----------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["users", "list"],
        ["users", "add", "x", "--password-stdin"],
        ["users", "passwd", "x", "--password-stdin"],
        ["sessions", "list", "x"],
        ["sessions", "revoke-all", "x"],
        ["keys", "rotate"],
        ["keys", "list"],
    ],
)
@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("not a url", "--store: 'not a url' is not a store URL"),
        ("sqlite:////nonexistent-dir/x.db", "nonexistent-dir"),
    ],
)
def test_a_bad_store_url_is_one_line_for_every_command(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    url: str,
    fragment: str,
) -> None:
    status, _, err = run(capsys, monkeypatch, *argv, "--store", url, stdin=PASSWORD)
    assert_one_line_error(status, err, fragment)


def test_the_store_comes_from_authstate_store_when_not_given(
    alice: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    monkeypatch.setenv("AUTHSTATE_STORE", store)
    status, out, _ = run(capsys, monkeypatch, "users", "list")
    assert status == 0 and "alice" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "required"),
        (["nope"], "invalid choice"),
        (["users"], "required"),
        (["users", "delete", "x"], "invalid choice"),
        (["keys", "list", "--verbose"], "unrecognized arguments"),
        (["serve", "--mode", "cookie"], "invalid choice"),
        (["serve", "--port", "eighty"], "invalid int value"),
        (["serve", "--workers", "0"], "at least 1"),
        (["serve", "--port", "70000"], "--port: 70000 is outside 1-65535"),
        (["serve", "--port", "0"], "--port:"),
        (["serve", "--mode", "stateless", "--bogus-flag"], "(see 'authstate serve --help')"),
        (["users", "list", "--verbose"], "(see 'authstate users list --help')"),
        (["bench"], "one of the arguments --quick --full is required"),
    ],
)
def test_command_line_mistakes_are_one_line_with_status_1(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    fragment: str,
) -> None:
    status, out, err = run(capsys, monkeypatch, *argv)
    assert_one_line_error(status, err, fragment)
    assert out == ""


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "users", "sessions", "keys", "bench"):
        assert command in out


@pytest.mark.parametrize(
    "argv",
    [
        ["users", "list", "--store", "redis://"],
        ["users", "passwd", "ghost", "--password-stdin", "--store", "memory://"],
        ["frobnicate"],
        ["serve", "--store", "memory://", "--workers", "2"],
    ],
)
def test_the_installed_command_never_prints_a_traceback(argv: list[str]) -> None:
    result = run_cli(*argv, stdin=PASSWORD, env=clean_env())
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("authstate: error: ")


# -- no silent side effects ----------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["users", "list"],
        ["users", "passwd", "alice", "--password-stdin"],
        ["sessions", "list", "alice"],
        ["sessions", "revoke-all", "alice"],
        ["keys", "list"],
        ["keys", "rotate"],
    ],
)
def test_commands_that_need_a_store_create_none_in_an_empty_directory(
    tmp_path: Path, argv: list[str]
) -> None:
    result = subprocess.run(
        [*COMMAND, *argv], input=PASSWORD + "\n", capture_output=True, text=True,
        timeout=60, env=clean_env(), cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("authstate: error: no store at authstate.db ")
    assert len(result.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_flag_that_names_the_environment_variable_is_blamed_on_the_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same bad value from the environment is still blamed on the variable.
    monkeypatch.setenv("AUTHSTATE_PORT", "99999")
    status, _, err = run(capsys, monkeypatch, "serve")
    assert_one_line_error(status, err, "AUTHSTATE_PORT: 99999 is outside 1-65535")


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("redis://127.0.0.1:1", ("Redis at 127.0.0.1:1", "ConnectionError", "Connect call failed")),
        ("redis://127.0.0.1:6379/99", ("Redis at 127.0.0.1:6379/99", "DB index is out of range")),
    ],
)
def test_a_redis_store_that_refuses_is_named_with_its_cause(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    fragments: tuple[str, ...],
) -> None:
    if importlib.util.find_spec("redis") is None:
        unavailable("redis-py is not installed (pip install 'authstate[redis]')")
    monkeypatch.setenv("AUTHSTATE_SECRET", "s" * 48)
    status, _, err = run(capsys, monkeypatch, "users", "list", "--store", url)
    assert_one_line_error(status, err, "store unavailable", *fragments)


def test_every_flag_and_argument_has_help_text() -> None:
    from authstate.cli import build_parser

    missing = []
    pending = [build_parser()]
    while pending:
        parser = pending.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend(action.choices.values())
            elif action.help is None:
                missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_a_store_without_its_secret_file_gets_no_new_one(
    alice: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    secret = Path(store.removeprefix("sqlite:///") + ".secret")
    secret.rename(secret.with_suffix(".moved"))
    status, _, err = run(capsys, monkeypatch, "keys", "list", "--store", store)
    assert_one_line_error(status, err, "has no secret file", "AUTHSTATE_SECRET")
    assert not secret.exists()
