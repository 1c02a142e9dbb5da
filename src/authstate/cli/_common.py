"""What every subcommand shares: the parser class, ``--store``, settings, opening the store."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, NoReturn

from authstate.asgi.auth_state import AuthState
from authstate.errors import ConfigurationError
from authstate.settings import Settings
from authstate.stores import parse_store_url


class UsageError(Exception):
    """A mistake on the command line: reported as one line on stderr, exit status 1."""


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line and exit status 1 (argparse prints the usage
    and exits 2): ``main`` reports ``UsageError`` like every other user error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The deepest (sub)command parsed leaves its name here: an unknown flag is reported
        # against it ('authstate serve --help'), not against the top-level command.
        self.set_defaults(command_prog=self.prog)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            prog = getattr(parsed, "command_prog", self.prog)
            raise UsageError(f"unrecognized arguments: {' '.join(extras)} (see '{prog} --help')")
        return parsed


def store_option(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: "not given" stays absent, so the environment and the default apply.
    parser.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="store URL: memory://, sqlite:///PATH, postgresql://..., redis://... "
        "(default: $AUTHSTATE_STORE or sqlite:///authstate.db)",
    )


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from the command line (``--store`` and ``overrides``), then ``AUTHSTATE_*``.

    A bad value given as a flag is blamed on the flag (``--port: ...``), not on the
    ``AUTHSTATE_*`` variable that the same check names for the environment."""
    flags = {"store": getattr(args, "store", None), **overrides}
    try:
        return Settings.from_env(**flags)
    except ConfigurationError as exc:
        message = str(exc)
        for name, value in flags.items():
            variable = f"AUTHSTATE_{name.upper()}: "
            if value is not None and message.startswith(variable):
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag}: {message[len(variable) :]}") from None
        raise


def require_existing_store(settings: Settings) -> None:
    """``UsageError`` when the SQLite file of ``settings`` or its secret file does not exist:
    a command that only reads or changes existing records must not leave a new database or
    secret file behind."""
    backend, target = parse_store_url(settings.store)
    if backend != "sqlite" or target == ":memory:":
        return
    if not os.path.exists(target):
        raise UsageError(
            f"no store at {target} (create one with 'authstate users add' or "
            "'authstate serve', or name it with --store or AUTHSTATE_STORE)"
        )
    secret_file = target + ".secret"
    if settings.secret is None and not settings.secret_file and not os.path.exists(secret_file):
        # A new secret here would not unseal the store's keys, and would stay behind to
        # break the next start as well.
        raise UsageError(
            f"the store at {target} has no secret file {secret_file} "
            "(set AUTHSTATE_SECRET or AUTHSTATE_SECRET_FILE to the secret it was made with)"
        )


@asynccontextmanager
async def opened(settings: Settings, *, existing: bool = False) -> AsyncIterator[AuthState]:
    """A started ``AuthState`` on the store of ``settings``, stopped afterwards; with
    ``existing``, ``UsageError`` instead of creating a store that is not there."""
    if existing:
        require_existing_store(settings)
    auth = AuthState(settings)
    await auth.start()
    try:
        yield auth
    finally:
        await auth.stop()


def display_url(url: str) -> str:
    """A store URL fit to print: a password in it becomes ``***``."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def read_password(*, confirm: bool) -> str:
    """The password from stdin: one line (its line ending removed), or a hidden prompt on a
    terminal. Never from an argument, where ``ps`` and shell history would see it."""
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Again: ") != password:
            raise UsageError("the passwords differ")
    else:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    if not password:
        raise UsageError("no password on stdin")
    return password
