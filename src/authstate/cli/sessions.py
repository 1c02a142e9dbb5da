"""``authstate sessions list|revoke-all NAME``: a user's server-side sessions and families."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from authstate.cli._common import Parser, opened, settings_from, store_option
from authstate.cli._output import print_table, say, when
from authstate.useragent import describe


def register(commands: Any) -> None:
    sessions = commands.add_parser("sessions", help="list or revoke a user's sessions")
    actions = sessions.add_subparsers(title="actions", dest="action", metavar="ACTION")
    actions.required = True

    listing: Parser = actions.add_parser("list", help="a user's live sessions and refresh families")
    listing.add_argument("name", help="the user")
    store_option(listing)
    listing.set_defaults(run=run_list)

    revoke: Parser = actions.add_parser(
        "revoke-all", help="revoke every session and token of a user, on every node"
    )
    revoke.add_argument("name", help="the user")
    store_option(revoke)
    revoke.set_defaults(run=run_revoke_all)


def run_list(args: argparse.Namespace) -> int:
    return asyncio.run(_list(args))


async def _list(args: argparse.Namespace) -> int:
    async with opened(settings_from(args), existing=True) as auth:
        user = await auth.accounts.get_by_name(args.name)
        now = auth.clock.now()
        records = [r for r in await auth.store.list_sessions(user.id) if r.is_live(now)]
    if not records:
        say(
            f"no active sessions for {user.username} "
            "(stateless tokens are not listed; revoke-all revokes them too)"
        )
        return 0
    rows = [
        (
            r.handle,
            r.kind,
            when(r.created_at),
            when(r.last_seen_at),
            when(min(r.expires_at, r.idle_expires_at())),
            r.ip or "-",
            describe(r.user_agent),
        )
        for r in records
    ]
    print_table(("ID", "KIND", "CREATED (UTC)", "LAST SEEN", "EXPIRES", "IP", "DEVICE"), rows)
    return 0


def run_revoke_all(args: argparse.Namespace) -> int:
    return asyncio.run(_revoke_all(args))


async def _revoke_all(args: argparse.Namespace) -> int:
    async with opened(settings_from(args), existing=True) as auth:
        user = await auth.accounts.get_by_name(args.name)
        await auth.logout_everywhere(user.id)
    say(f"revoked every session and token of {user.username}")
    return 0
