"""The ``authstate`` command: ``serve``, ``users``, ``sessions``, ``keys``, ``bench``.

Exit status 0 on success; 1 with one line on stderr for any mistake a user can make (a
bad flag, a bad store URL, an unknown user, a store that cannot be reached).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from authstate.cli import bench, keys, serve, sessions, users
from authstate.cli._common import Parser, UsageError
from authstate.cli._output import printable
from authstate.errors import AuthStateError, StoreUnavailable


def build_parser() -> Parser:
    parser = Parser(
        prog="authstate",
        description="Web authentication state: stateless JWT, sessions, hybrid refresh.",
    )
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    commands.required = True
    for module in (serve, users, sessions, keys, bench):
        module.register(commands)
    return parser


def _one_line(text: str) -> str:
    # Messages quote what the user typed or a driver said: one line, nothing for the terminal.
    return printable(" ".join(text.split()))


def _describe(exc: AuthStateError) -> str:
    # For an operator at a terminal the precise reason is the useful part (a store that
    # refuses connections); clients of the HTTP API never see it.
    if isinstance(exc, StoreUnavailable) and exc.reason and exc.reason != exc.detail:
        return f"{exc.detail}: {exc.reason}"
    return exc.detail


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        status: int = args.run(args)
        return status
    except UsageError as exc:
        message = str(exc)
    except AuthStateError as exc:
        message = _describe(exc)
    except OSError as exc:
        message = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    except KeyboardInterrupt:
        return 130
    print(f"authstate: error: {_one_line(message)}", file=sys.stderr)
    return 1
