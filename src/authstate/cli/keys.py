"""``authstate keys rotate|list``: the signing keys shared by every node of a store."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from authstate.cli._common import Parser, opened, settings_from, store_option
from authstate.cli._output import print_table, say, when


def register(commands: Any) -> None:
    keys = commands.add_parser("keys", help="rotate or list signing keys")
    actions = keys.add_subparsers(title="actions", dest="action", metavar="ACTION")
    actions.required = True

    rotate: Parser = actions.add_parser(
        "rotate", help="start signing with a new key; old keys verify until their tokens expire"
    )
    store_option(rotate)
    rotate.set_defaults(run=run_rotate)

    listing: Parser = actions.add_parser("list", help="list signing and verifying keys")
    store_option(listing)
    listing.set_defaults(run=run_list)


def run_rotate(args: argparse.Namespace) -> int:
    return asyncio.run(_rotate(args))


async def _rotate(args: argparse.Namespace) -> int:
    async with opened(settings_from(args), existing=True) as auth:
        kid, alg = await auth.rotate_key()  # through AuthCore: KeyRotated is emitted
    say(f"new signing key {kid} ({alg}); previous keys verify until their tokens expire")
    return 0


def run_list(args: argparse.Namespace) -> int:
    return asyncio.run(_list(args))


async def _list(args: argparse.Namespace) -> int:
    async with opened(settings_from(args), existing=True) as auth:
        signing = auth.context.keys.ring.signing_key().kid
        stored = await auth.store.load_keys()
        now = auth.clock.now()
    rows = []
    for key in stored:
        if key.kid == signing:
            status = "signing"
        elif key.retire_after is None or key.retire_after >= now:
            status = (
                f"verifying until {when(key.retire_after)}" if key.retire_after else "verifying"
            )
        else:
            status = "retired"
        rows.append((key.kid, key.alg, when(key.created_at), status))
    print_table(("KID", "ALG", "CREATED (UTC)", "STATUS"), rows)
    return 0
