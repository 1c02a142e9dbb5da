"""``authstate bench``: not implemented yet (DESIGN §9)."""

from __future__ import annotations

import argparse
from typing import Any

from authstate.cli._common import UsageError, store_option


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "bench", help="compare modes, stores and peers (not implemented yet)"
    )
    store_option(parser)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    raise UsageError("bench is not implemented yet")
