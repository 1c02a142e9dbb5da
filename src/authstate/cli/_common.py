"""What every subcommand shares: the parser class, ``--store``, opening the store, output."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

from authstate.auth import AuthState
from authstate.settings import Settings


class UsageError(Exception):
    """A mistake on the command line: reported as one line on stderr, exit status 1."""


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line and exit status 1 (argparse prints the usage
    and exits 2): ``main`` reports ``UsageError`` like every other user error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


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
    """Settings from the command line (``--store`` and ``overrides``), then ``AUTHSTATE_*``."""
    return Settings.from_env(store=getattr(args, "store", None), **overrides)


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[AuthState]:
    """A started ``AuthState`` on the store of ``settings``, stopped afterwards."""
    auth = AuthState(settings)
    await auth.start()
    try:
        yield auth
    finally:
        await auth.stop()


def display_url(url: str) -> str:
    """A store URL fit to print: a password in it becomes ``***``."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip())


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
