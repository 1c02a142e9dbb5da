"""``authstate bench``: measure every mode and store against the peers (docs/performance.md).

    authstate bench --quick                     # under a minute, what CI runs
    authstate bench --full --json results.json  # the recorded run (about half an hour)
    authstate bench --full --only micro,inproc --store redis://127.0.0.1:6379/14

The bench never uses the store of ``--store``/``AUTHSTATE_STORE`` as it is: it writes
only to a temporary SQLite file, a Redis key prefix and a PostgreSQL schema of its own on
the servers named (127.0.0.1 only), and removes them afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from authstate.cli._common import UsageError

SECTIONS = ("micro", "inproc", "wsgi", "sizes", "e2e", "revocation", "scale")


def _list(choices: tuple[str, ...] | None = None) -> Any:
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in text.split(",") if item.strip())
        if not items:
            raise argparse.ArgumentTypeError("give at least one value")
        if choices is not None:
            unknown = [item for item in items if item not in choices]
            if unknown:
                raise argparse.ArgumentTypeError(
                    f"unknown {', '.join(unknown)} (choose from {', '.join(choices)})"
                )
        return items

    return parse


def _counts(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(item.replace("_", "")) for item in text.split(",") if item.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("give positive integers")
    return values


def register(commands: Any) -> None:
    from authstate.bench._context import ALGORITHMS
    from authstate.bench.peers import PEERS

    parser = commands.add_parser(
        "bench",
        help="measure every mode, store and peer side by side",
        description="Measure every mode and store against the peers; print a table.",
    )
    # A full run takes about half an hour: never start one by accident.
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--quick", action="store_true", help="a run under a minute (CI)")
    size.add_argument("--full", action="store_true", help="the recorded run (about 30 minutes)")
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown")
    parser.add_argument(
        "--only", type=_list(SECTIONS), metavar="SECTIONS", help=f"some of {','.join(SECTIONS)}"
    )
    parser.add_argument(
        "--store",
        action="append",
        metavar="URL",
        help="benchmark this kind of store (repeatable): memory://, sqlite://, or the "
        "redis:// / postgresql:// server to use (127.0.0.1); default: all four, the "
        "servers at their usual local addresses when they answer",
    )
    parser.add_argument(
        "--algorithms",
        type=_list(ALGORITHMS),
        metavar="LIST",
        help=f"JWT signing algorithms to measure, some of {','.join(ALGORITHMS)} (default: all)",
    )
    parser.add_argument(
        "--peers",
        type=_list(PEERS),
        metavar="LIST",
        help=f"libraries to compare with, some of {','.join(PEERS)} "
        "(default: all; fewer with --quick)",
    )
    parser.add_argument("--rounds", type=int, metavar="N", help="interleaved rounds (micro)")
    parser.add_argument("--duration", type=float, metavar="S", help="seconds per load run")
    parser.add_argument("--passes", type=int, metavar="N", help="end-to-end passes")
    parser.add_argument("--connections", type=int, metavar="N", help="end-to-end connections")
    parser.add_argument("--trials", type=int, metavar="N", help="revocation trials per store")
    parser.add_argument("--scale", type=_counts, metavar="LIST", help="session counts")
    parser.add_argument(
        "--http",
        choices=("h11", "httptools"),
        help="uvicorn HTTP parser of the end-to-end rows (default: both, each with its baseline)",
    )
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), help="uvicorn event loop")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def _stores(urls: list[str] | None) -> tuple[tuple[str, ...] | None, dict[str, str]]:
    from authstate.bench._env import require_loopback
    from authstate.stores import parse_store_url

    if not urls:
        return None, {}
    kinds: list[str] = []
    servers: dict[str, str] = {}
    for url in urls:
        backend = "sqlite" if url in ("sqlite://", "sqlite:") else parse_store_url(url)[0]
        if backend in ("redis", "postgres"):
            try:
                require_loopback(url)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            servers[backend] = url
        if backend not in kinds:
            kinds.append(backend)
    return tuple(kinds), servers


def run(args: argparse.Namespace) -> int:
    from authstate.bench import runner
    from authstate.bench._context import full, quick
    from authstate.bench._env import DEFAULT_POSTGRES, DEFAULT_REDIS
    from authstate.bench.report import markdown, render

    kinds, servers = _stores(args.store)
    overrides: dict[str, Any] = {}
    for name in ("algorithms", "peers", "rounds", "duration", "passes", "connections", "trials"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    for name in ("scale", "loop"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.http is not None:
        overrides["http"] = (args.http,)
    if args.scale is not None:
        overrides["redis_scale"] = ()  # the sizes given, for every store
    if args.only:
        overrides["sections"] = args.only
    if kinds is not None:
        overrides["stores"] = kinds
        overrides["e2e_stores"] = kinds if not args.quick else kinds[:1]
    for name in ("rounds", "passes", "connections", "trials"):
        if name in overrides and overrides[name] < 1:
            raise UsageError(f"--{name} must be at least 1")
    if "duration" in overrides and not 0.5 <= overrides["duration"] <= 300:
        raise UsageError("--duration must be between 0.5 and 300 seconds")
    for flag, path in (("--json", args.json), ("--markdown", args.markdown)):
        # Found out before a half-hour run, not after it.
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UsageError(f"{flag}: the directory of {path} does not exist")
    options = quick(**overrides) if args.quick else full(**overrides)
    report = runner.run(
        options,
        redis_url=servers.get("redis", DEFAULT_REDIS),
        postgres_url=servers.get("postgres", DEFAULT_POSTGRES),
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    render(report, sys.stdout)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            out.write(report.to_json())
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as out:
            out.write(markdown(report))
    return 0
