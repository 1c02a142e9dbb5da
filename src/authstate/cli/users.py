"""``authstate users add|passwd|roles|list``: accounts with argon2id passwords in the store."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from authstate.accounts import check_new_username, check_roles
from authstate.cli._common import (
    Parser,
    UsageError,
    opened,
    read_password,
    require_existing_store,
    settings_from,
    store_option,
)
from authstate.cli._output import print_table, say, when
from authstate.passwords import PasswordHasher
from authstate.settings import Settings


def register(commands: Any) -> None:
    users = commands.add_parser("users", help="add users, set passwords, list users")
    actions = users.add_subparsers(title="actions", dest="action", metavar="ACTION")
    actions.required = True

    add: Parser = actions.add_parser("add", help="create a user (password on stdin)")
    add.add_argument("name", help="1-64 letters, digits and . _ - @ (compared case-blind)")
    add.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="ROLE",
        help="a role: 1-64 of A-Z a-z 0-9 _ . : - (repeatable)",
    )
    _password_stdin(add)
    store_option(add)
    add.set_defaults(run=run_add)

    passwd: Parser = actions.add_parser(
        "passwd", help="set a user's password (stdin); revokes their sessions and tokens"
    )
    passwd.add_argument("name", help="the user")
    _password_stdin(passwd)
    store_option(passwd)
    passwd.set_defaults(run=run_passwd)

    roles: Parser = actions.add_parser(
        "roles", help="set a user's roles, live on every node (sessions and tokens included)"
    )
    roles.add_argument("name", help="the user")
    roles.add_argument("roles", help="comma-separated roles, e.g. staff,admin ('' or - for none)")
    store_option(roles)
    roles.set_defaults(run=run_roles)

    listing: Parser = actions.add_parser("list", help="list users")
    store_option(listing)
    listing.set_defaults(run=run_list)


def _password_stdin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin (required: never pass a password as an argument)",
    )


def _check_password_stdin(args: argparse.Namespace) -> None:
    if not args.password_stdin:
        raise UsageError("pass the password on stdin with --password-stdin")


def run_add(args: argparse.Namespace) -> int:
    _check_password_stdin(args)
    # Checked before the store is opened: a refused user must not leave a new database
    # behind. The accounts layer checks the same rules again.
    check_new_username(args.name)
    # As given (duplicates dropped): an empty or malformed role is refused, not left out.
    roles = check_roles(tuple(dict.fromkeys(args.role)))
    password = read_password(confirm=True)
    PasswordHasher().check_new_password(password)
    return asyncio.run(_add(args, password, roles))


async def _add(args: argparse.Namespace, password: str, roles: tuple[str, ...]) -> int:
    async with opened(settings_from(args)) as auth:
        user = await auth.accounts.add_user(args.name, password, roles)
    say(f"created user {user.username} (id {user.id})")
    return 0


def run_passwd(args: argparse.Namespace) -> int:
    _check_password_stdin(args)
    settings = settings_from(args)
    require_existing_store(settings)  # before the prompt, not after two typed passwords
    password = read_password(confirm=True)
    PasswordHasher().check_new_password(password)
    return asyncio.run(_passwd(settings, args.name, password))


async def _passwd(settings: Settings, name: str, password: str) -> int:
    async with opened(settings, existing=True) as auth:
        user = await auth.accounts.get_by_name(name)
        # A password is reset because it may be known to someone else: whoever logged in
        # with it must not stay logged in (as after a password change over HTTP).
        # set_password revokes them and emits PasswordChanged.
        await auth.set_password(user.id, password)
    say(f"password changed for {user.username}; their sessions and tokens are revoked")
    return 0


def run_roles(args: argparse.Namespace) -> int:
    text = args.roles.strip()
    wanted = () if text in ("", "-") else tuple(dict.fromkeys(r.strip() for r in text.split(",")))
    roles = check_roles(wanted)  # before the store is opened, like ``add``
    settings = settings_from(args)
    require_existing_store(settings)
    return asyncio.run(_roles(settings, args.name, roles))


async def _roles(settings: Settings, name: str, roles: tuple[str, ...]) -> int:
    async with opened(settings, existing=True) as auth:
        user = await auth.accounts.get_by_name(name)
        await auth.set_roles(user.id, roles)
    shown = ",".join(roles) or "none"
    say(f"roles of {user.username} are now {shown}, on every node within the propagation bound")
    return 0


def run_list(args: argparse.Namespace) -> int:
    return asyncio.run(_list(args))


async def _list(args: argparse.Namespace) -> int:
    async with opened(settings_from(args), existing=True) as auth:
        users = await auth.store.list_users()
    if not users:
        print("no users (add one with: authstate users add NAME --password-stdin)")
        return 0
    rows = [
        (
            u.username,
            u.id,
            ",".join(u.roles) or "-",
            when(u.created_at),
            "disabled" if u.disabled else "",
        )
        for u in sorted(users, key=lambda u: u.username)
    ]
    print_table(("NAME", "ID", "ROLES", "CREATED (UTC)", ""), rows)
    return 0
