"""End to end: authenticated ``GET /me`` through uvicorn on the loopback.

For each configuration: a fresh ``uvicorn --factory authstate.bench.apps:app_from_env``
(one worker, ``--no-access-log``, ``--loop asyncio --http h11`` unless told otherwise,
127.0.0.1 only), the logged-in Cookie header fetched from ``/bench/cookie`` and checked
(``/me`` answers 200 with it and 401 with a tampered one), a warm-up, then a measured
run of ``wrk -t1 -cN -dS --latency`` (or ``authstate.bench.loadgen`` without wrk), and
the server stopped by PID. Every load run is bounded in time and stops by itself.

All configurations run once per pass, in the same order, so each ratio to the no-auth
baseline is taken within one pass (the median of the per-pass ratios is reported). The
baseline is requested without any cookie, as a client of an app without authentication
would: a configuration's ratio includes what its cookie costs the HTTP stack.

One more row runs the reference server exactly as a user starts it: the
``authstate serve --demo --mode M --store URL`` command (its own uvicorn settings, access
log on), logged in through ``POST /auth/login``, measured on ``GET /auth/me``. The bare-app
rows alone once hid a ~40 ms stall on every keep-alive request of ``authstate serve``.

Also recorded: the server process's CPU time per request (utime + stime from /proc),
steadier than requests/s on a shared machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from authstate.bench._context import Context
from authstate.bench._timing import relative_spread
from authstate.bench.peers import PEERS, unavailable
from authstate.bench.report import Table, count, ms, ratio, us
from authstate.bench.servers import ServeCommand, Server

QUICK_PEERS = ("pyjwt",)


@dataclass
class Run:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int
    cpu_us_per_request: float


@dataclass
class Result:
    label: str
    spec: dict[str, Any]
    cookie: str = ""
    cookie_bytes: int = 0
    server: Server | None = None
    runs: list[Run | None] = field(default_factory=list)
    baseline_runs: list[Run | None] = field(default_factory=list)  # the paired baseline run
    failure: str = ""
    discarded: int = 0  # measured pairs left out because a run had failed requests
    # The HTTP stack: uvicorn --http of a bare-app row ("h11", "httptools"); "serve" for
    # the `authstate serve` row (its own httptools protocol), paired with httptools.
    http: str = "h11"

    @property
    def header(self) -> str:
        """The request header the credential travels in."""
        return "Authorization" if self.spec.get("transport") == "bearer" else "Cookie"


def configurations(ctx: Context) -> list[tuple[str, dict[str, Any]]]:
    stores = ctx.stores
    redis_url = stores.redis_url if "redis" in stores.urls else None
    found: list[tuple[str, dict[str, Any]]] = [("no auth (baseline)", {"kind": "none"})]
    kinds = ctx.store_kinds(ctx.options.e2e_stores)
    for kind in kinds:
        for mode in ctx.options.e2e_modes:
            url = stores.fresh(kind, f"e2e_{mode}")
            found.append(
                (f"authstate {mode} / {kind}", {"kind": "authstate", "mode": mode, "store": url})
            )
    if kinds and ctx.options.e2e_modes:
        # One row is enough to catch what only the command adds: its default mode if
        # measured, on the first store.
        modes = ctx.options.e2e_modes
        mode = "hybrid" if "hybrid" in modes else modes[0]
        url = stores.fresh(kinds[0], f"e2e_serve_{mode}")
        serve = {"kind": "serve", "mode": mode, "store": url, "store_kind": kinds[0]}
        found.append((f"authstate serve ({mode} / {kinds[0]})", {**serve, "tmpdir": ctx.tmpdir}))
        # The same mode with the credential in Authorization: Bearer, beside its cookie row.
        bearer = {"kind": "authstate", "mode": mode, "transport": "bearer"}
        url = stores.fresh(kinds[0], f"e2e_{mode}_bearer")
        found.append((f"authstate {mode} / {kinds[0]} · Bearer", {**bearer, "store": url}))
    peers = ctx.options.peers or (QUICK_PEERS if ctx.options.quick else PEERS)
    for peer in peers:
        if unavailable(peer, redis_url=redis_url) is not None:
            continue  # the in-process section already said why
        spec = {"kind": peer, "redis_url": redis_url, "prefix": stores.redis_prefix}
        found.append((peer, {**spec, "tmpdir": ctx.tmpdir}))
    return found


_WRK_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_TOTAL = re.compile(r"(\d+) requests in")
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_WRK_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(text: str) -> dict[str, float]:
    """Requests/s, p50/p99 (ms), totals and errors from ``wrk --latency`` output."""
    latency = {q: float(v) * _UNIT_MS[u] for q, v, u in _WRK_LATENCY.findall(text)}
    rps = _WRK_RPS.search(text)
    total = _WRK_TOTAL.search(text)
    if rps is None or total is None:
        raise RuntimeError("could not read wrk's output")
    non2xx = _WRK_NON2XX.search(text)
    errors = _WRK_ERRORS.search(text)
    return {
        "requests_per_second": float(rps.group(1)),
        "requests": int(total.group(1)),
        "p50_ms": latency.get("50", float("nan")),
        "p99_ms": latency.get("99", float("nan")),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def load(
    url: str, cookie: str, *, duration: float, connections: int, header: str = "Cookie"
) -> dict[str, float]:
    """One bounded load run against ``url`` (127.0.0.1 only), ``cookie`` sent in ``header``."""
    wrk = shutil.which("wrk")
    seconds = max(1, round(duration))
    if wrk is not None:
        command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
        if cookie:
            command += ["-H", f"{header}: {cookie}"]
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [*command, url], capture_output=True, text=True, timeout=seconds + 30, check=False
        )
        return parse_wrk(done.stdout)
    command = [
        sys.executable,
        "-m",
        "authstate.bench.loadgen",
        url,
        "--connections",
        str(connections),
        "--duration",
        str(duration),
        "--cookie",
        cookie,
        "--header",
        header,
    ]
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        command, capture_output=True, text=True, timeout=duration + 30, check=True
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def one_run(
    server: Server, cookie: str, *, duration: float, connections: int, header: str = "Cookie"
) -> Run:
    before = server.cpu()
    numbers = load(
        server.url + server.me_path,
        cookie,
        duration=duration,
        connections=connections,
        header=header,
    )
    cpu = server.cpu() - before
    requests = int(numbers["requests"])
    return Run(
        requests_per_second=numbers["requests_per_second"],
        p50_ms=numbers["p50_ms"],
        p99_ms=numbers["p99_ms"],
        requests=requests,
        non_2xx=int(numbers["non_2xx"]),
        errors=int(numbers["errors"]),
        cpu_us_per_request=cpu / requests * 1e6 if requests else float("nan"),
    )


def _start(ctx: Context, results: list[Result]) -> None:
    """Start every server (they boot in parallel), then check and warm each in turn."""
    options = ctx.options
    log = os.path.join(ctx.tmpdir, "e2e-server.log")
    for result in results:
        try:
            if result.spec["kind"] == "serve":
                result.server = ServeCommand(result.spec, log=log)
            else:
                result.server = Server(result.spec, http=result.http, loop=options.loop, log=log)
        except Exception as exc:
            result.failure = str(exc) or repr(exc)
    for result in results:
        server = result.server
        if server is None or result.failure:
            continue
        try:
            cookie = server.wait_ready()
            result.cookie_bytes = len(cookie)
            anonymous = result.spec["kind"] == "none"
            server.check(cookie, anonymous=anonymous, header=result.header)
            # An app without authentication: its clients send no auth cookie.
            result.cookie = "" if anonymous else cookie
            if options.warmup > 0:
                load(
                    server.url + server.me_path,
                    result.cookie,
                    duration=options.warmup,
                    connections=8,
                    header=result.header,
                )
        except Exception as exc:
            result.failure = str(exc) or repr(exc)
        ctx.progress.advance("e2e", what=f"started {result.label}")


async def run(ctx: Context) -> Table:
    """Every server stays up for the whole section; each measured run of a configuration
    is paired with a run of the baseline right before or after it (alternating by pass),
    so each ratio compares two runs a few seconds apart."""
    options = ctx.options
    progress = ctx.progress
    results = _results(ctx, configurations(ctx))
    bases = {result.http: result for result in results if result.spec["kind"] == "none"}
    others = [result for result in results if result.spec["kind"] != "none"]
    progress.section("e2e", len(results) + len(others) * options.passes)
    try:
        await asyncio.to_thread(_start, ctx, results)
        for stack_base in bases.values():
            if stack_base.failure or stack_base.server is None:
                raise RuntimeError(f"the baseline server failed: {stack_base.failure}")
        for pass_index in range(options.passes):
            shift = pass_index % max(1, len(others))
            for result in others[shift:] + others[:shift]:
                progress.say("e2e", f"pass {pass_index + 1}: {result.label}")
                if result.failure or result.server is None:
                    result.runs.append(None)
                    result.baseline_runs.append(None)
                else:
                    base = bases[_baseline_stack(result.http)]
                    assert base.server is not None  # noqa: S101 - checked above
                    pair = [(base, base.server), (result, result.server)]
                    if pass_index % 2:
                        pair.reverse()
                    measured = {}
                    for which, server in pair:
                        measured[which.label] = await asyncio.to_thread(
                            one_run,
                            server,
                            which.cookie,
                            duration=options.duration,
                            connections=options.connections,
                            header=which.header,
                        )
                    base.runs.append(measured[base.label])
                    if any(run.non_2xx or run.errors for run in measured.values()):
                        # A pair with failed requests measures something else: left out of
                        # the ratios, counted in the notes.
                        result.discarded += 1
                        result.runs.append(None)
                        result.baseline_runs.append(None)
                    else:
                        result.baseline_runs.append(measured[base.label])
                        result.runs.append(measured[result.label])
                progress.advance("e2e")
    except Exception as exc:
        base = results[0]
        base.failure = base.failure or str(exc) or repr(exc)
    finally:
        for result in results:
            if result.server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(result.server.stop)
    progress.finish("e2e")
    return _table(ctx, results)


def _baseline_stack(http: str) -> str:
    """The stack whose no-auth baseline a row is divided by."""
    return "httptools" if http == "serve" else http


def _results(ctx: Context, configs: list[tuple[str, dict[str, Any]]]) -> list[Result]:
    """One row per configuration and HTTP stack (``options.http``), each stack's no-auth
    baseline first; the `authstate serve` row once, beside the httptools rows (its parser)
    or, without them, the first stack's. With two stacks, labels say which."""
    stacks = ctx.options.http
    serve_with = "httptools" if "httptools" in stacks else stacks[0]
    found: list[Result] = []
    for stack in stacks:
        for label, spec in configs:
            if spec["kind"] == "serve":
                if stack == serve_with:
                    found.append(
                        Result(label, spec, http="serve" if stack == "httptools" else stack)
                    )
                continue
            found.append(
                Result(f"{label} · {stack}" if len(stacks) > 1 else label, spec, http=stack)
            )
    return found


def _paired_ratios(result: Result, attribute: str) -> list[float]:
    """Per pass: this configuration's value ÷ its paired baseline run's."""
    return [
        getattr(run, attribute) / getattr(base_run, attribute)
        for run, base_run in zip(result.runs, result.baseline_runs, strict=False)
        if run is not None and base_run is not None and getattr(base_run, attribute) > 0
    ]


def _paired_ratio(result: Result, attribute: str) -> float:
    """Median over passes of this configuration's value ÷ its paired baseline run's."""
    ratios = _paired_ratios(result, attribute)
    return statistics.median(ratios) if ratios else float("nan")


def _median(result: Result, attribute: str) -> float:
    values = [getattr(run, attribute) for run in result.runs if run is not None]
    return statistics.median(values) if values else float("nan")


def _table(ctx: Context, results: list[Result]) -> Table:
    options = ctx.options
    generator = "wrk -t1" if shutil.which("wrk") else "authstate.bench.loadgen (no wrk)"
    table = Table(
        "e2e",
        f"End to end: GET /me through uvicorn ({options.loop} + {' / '.join(options.http)}, "
        "one worker), "
        f"{generator} -c{options.connections}, {options.duration:g} s runs, "
        f"{options.passes} pass(es), each paired with a baseline run",
        [
            "configuration",
            "req/s",
            "× no auth",
            "p50 ms",
            "p99 ms",
            "server CPU µs/req",
            "CPU × no auth",
            "cookie bytes",
        ],
    )
    for result in results:
        if result.failure:
            table.add(
                [result.label, "failed", "", "", "", "", "", ""],
                configuration=result.label,
                failure=result.failure,
            )
            table.notes.append(f"{result.label}: {result.failure}")
            continue
        is_base = result.spec["kind"] == "none"
        times = 1.0 if is_base else _paired_ratio(result, "requests_per_second")
        cpu_times = 1.0 if is_base else _paired_ratio(result, "cpu_us_per_request")
        bad = result.discarded
        table.add(
            [
                result.label,
                count(_median(result, "requests_per_second")),
                "-" if is_base else ratio(times),
                ms(_median(result, "p50_ms")),
                ms(_median(result, "p99_ms")),
                us(_median(result, "cpu_us_per_request")),
                "-" if is_base else ratio(cpu_times),
                result.cookie_bytes if not is_base else "-",
            ],
            configuration=result.label,
            spec={k: v for k, v in result.spec.items() if k != "tmpdir"},
            http=result.http,
            requests_per_second=_median(result, "requests_per_second"),
            times_baseline=times,
            times_baseline_noise=float("nan")
            if is_base
            else relative_spread(_paired_ratios(result, "requests_per_second")),
            p50_ms=_median(result, "p50_ms"),
            p99_ms=_median(result, "p99_ms"),
            cpu_us_per_request=_median(result, "cpu_us_per_request"),
            cpu_times_baseline=cpu_times,
            cookie_bytes=result.cookie_bytes,
            discarded_pairs=bad,
            runs=[run.__dict__ if run else None for run in result.runs],
        )
        if bad:
            table.notes.append(
                f"{result.label}: {bad} of {len(result.runs)} passes left out (non-2xx answers"
                " or socket errors in the run or its baseline)"
            )
    table.notes.append(
        "× no auth = median over passes of req/s ÷ the req/s of the baseline run paired with "
        "it (right before or after it, alternating); the baseline is requested without a "
        "cookie. CPU = the server process's utime+stime per request (CPU × no auth above 1 "
        "is the cost). All servers stay up for the whole section, only one is under load."
    )
    if len(options.http) > 1:
        table.notes.append(
            "· h11 / · httptools = uvicorn's --http for the row; each row is divided by the "
            "no-auth baseline of its own stack (authstate serve: by the httptools one)."
        )
    if any(result.spec["kind"] == "serve" for result in results):
        table.notes.append(
            "authstate serve (…) = the reference server started as a user starts it "
            "(`authstate serve --demo --mode M --store URL`: asyncio, its own httptools "
            "protocol with limits, host check, JSON access log on), GET /auth/me (the user's "
            "name from the node's cache), divided by the no-auth app on the same parser "
            "(httptools); the other rows are bare apps under uvicorn."
        )
    if any(result.spec.get("transport") == "bearer" for result in results):
        table.notes.append(
            "· Bearer = the same credential sent as Authorization: Bearer "
            "(AUTHSTATE_TRANSPORTS=cookie,bearer); its cookie bytes are that header's value."
        )
    return table
