"""In-process: the ASGI application called directly, no HTTP server, the steadiest view.

Every configuration (no auth, authstate in each mode on each store, each peer) serves
the same ``GET /me`` to a logged-in client; all are sampled in the same interleaved
rounds and compared with the no-auth app of the same round. The cookie is warm: the
client has made requests before, as every client but the first request of a session.

Configurations that wait on Redis are timed on the wall clock (the wait is their cost);
the others in CPU time of this process, which other processes on the machine cannot
inflate.
"""

from __future__ import annotations

import contextlib
from typing import Any

from authstate.bench import _timing
from authstate.bench._context import MODES, Context
from authstate.bench.apps import Built, build
from authstate.bench.asgi_call import caller
from authstate.bench.peers import _USES_REDIS, PEERS, unavailable
from authstate.bench.report import Table, ratio, us


def configurations(
    ctx: Context, *, modes: tuple[str, ...] = MODES
) -> list[tuple[str, dict[str, Any]]]:
    """(label, spec) of every configuration this run can build."""
    stores = ctx.stores
    redis_url = stores.redis_url if "redis" in stores.urls else None
    found: list[tuple[str, dict[str, Any]]] = [("no auth (baseline)", {"kind": "none"})]
    for kind in ctx.store_kinds():
        for mode in modes:
            url = stores.fresh(kind, f"inproc_{mode}")
            found.append(
                (f"authstate {mode} / {kind}", {"kind": "authstate", "mode": mode, "store": url})
            )
    if "hybrid" in modes:
        # Encrypted tokens (AUTHSTATE_TOKEN_FORMAT=jwe), next to the signed hybrid rows.
        jwe = {"kind": "authstate", "mode": "hybrid", "store": "memory://", "token_format": "jwe"}
        found.append(("authstate hybrid / memory (JWE)", jwe))
    # The same modes with the credential in Authorization: Bearer instead of the cookie,
    # on the first store only: the header changes how the credential is read, not what
    # the store does.
    for kind in ctx.store_kinds()[:1]:
        for mode in modes:
            url = stores.fresh(kind, f"inproc_{mode}_bearer")
            spec = {"kind": "authstate", "mode": mode, "store": url, "transport": "bearer"}
            found.append((f"authstate {mode} / {kind} · Bearer", spec))
    for peer in ctx.options.peers or PEERS:
        reason = unavailable(peer, redis_url=redis_url)
        if reason is not None:
            ctx.notes.append(f"peer {peer} skipped: {reason}")
            continue
        found.append(
            (
                peer,
                {
                    "kind": peer,
                    "redis_url": redis_url,
                    "prefix": stores.redis_prefix,
                    "tmpdir": ctx.tmpdir,
                },
            )
        )
    return found


_BASE = "no auth (baseline)"
# The baseline again, timed on the wall clock: a row timed on the wall clock (it waits on a
# store server) is divided by this one, never by the CPU-time baseline (one clock per ratio).
_BASE_WALL = "no auth (baseline, wall clock)"
_SAME = " ⟂"  # the no-auth app sent this configuration's request, Cookie header included


async def run(ctx: Context) -> tuple[Table, dict[str, Any]]:
    options = ctx.options
    progress = ctx.progress
    configs = configurations(ctx)
    progress.section("inproc", len(configs) + options.rounds)
    built: dict[str, Built] = {}
    candidates: dict[str, Any] = {}
    walls: set[str] = set()
    cookies: dict[str, int] = {}
    try:
        for label, spec in configs:
            progress.advance("inproc", what=f"building {label}")
            try:
                made = await build(spec)
            except Exception as exc:  # a peer that cannot start here: report, go on
                ctx.notes.append(f"{label} skipped: {exc!r}")
                continue
            built[label] = made
            call = caller(made.app, made.cookie, header=made.header)
            for _ in range(3):  # warm: the first request of a client is not what we measure
                status = await call()
            if status != 200:
                ctx.notes.append(f"{label} skipped: GET /me answered {status}")
                continue
            candidates[label] = call
            cookies[label] = len(made.cookie)
            if label != _BASE:
                # The same request to the app without authentication: what is left is the
                # layer's own cost (an app may pay for a Cookie header it never reads).
                candidates[label + _SAME] = caller(
                    built[_BASE].app, made.cookie, header=made.header
                )
            if spec["kind"] in _USES_REDIS or spec["kind"].startswith("fastapi-users"):
                walls.update({label, label + _SAME})
        if walls and _BASE in candidates:
            candidates[_BASE_WALL] = caller(built[_BASE].app, built[_BASE].cookie)
            walls.add(_BASE_WALL)
        series = await _timing.sample(
            candidates,
            rounds=options.rounds,
            sample_seconds=options.sample_seconds * 2,
            is_async=lambda name: True,
            wall=walls.__contains__,
            on_round=lambda: progress.advance("inproc", what="sampling"),
            max_iterations=100_000,
        )
    finally:
        for made in built.values():
            with contextlib.suppress(Exception):
                await made.close()
    progress.finish("inproc")
    return _table(series, cookies, walls)


def _table(
    series: dict[str, _timing.Series], cookies: dict[str, int], walls: set[str]
) -> tuple[Table, dict[str, Any]]:
    base = series.get(_BASE)
    base_wall = series.get(_BASE_WALL)
    table = Table(
        "inproc",
        "In-process: GET /me through the ASGI app, µs per request (median of rounds)",
        [
            "configuration",
            "µs / request",
            "added by the layer",
            "× no auth",
            "cookie bytes",
            "clock",
        ],
    )
    for label, s in series.items():
        if label.endswith(_SAME) or label == _BASE_WALL:
            continue
        same = series.get(label + _SAME)
        added = _timing.median_difference(s, same) if same else float("nan")
        # One clock per comparison: a wall-clock row against the wall-clock baseline.
        baseline = base_wall if label in walls else base
        times = _timing.median_ratio(s, baseline) if baseline else float("nan")
        table.add(
            [
                label,
                us(s.median),
                "-" if s is base else f"{added:+.1f}",
                "-" if s is base else ratio(times),
                cookies.get(label, 0) or "-",
                "wall" if label in walls else "cpu",
            ],
            configuration=label,
            us_per_request=s.median,
            added_us=None if s is base else added,
            added_noise_us=_timing.difference_noise(s, same) if same else None,
            same_request_without_auth_us=same.median if same else None,
            times_baseline=None if s is base else times,
            times_baseline_noise=None
            if s is base or baseline is None
            else _timing.ratio_noise(s, baseline),
            cookie_bytes=cookies.get(label, 0),
            clock="wall" if label in walls else "cpu",
            samples=s.samples,
        )
    table.notes.append(
        "added by the layer = median over rounds of (this configuration − the no-auth app "
        "sent the same request, Cookie header included), sampled in the same round; × no "
        "auth compares with the baseline requested without any cookie, timed on the same "
        "clock as the row (a wall-clock row with a wall-clock baseline). The client is "
        "logged in and has made requests before (warm). · Bearer rows send the same "
        "credential as Authorization: Bearer (AUTHSTATE_TRANSPORTS=cookie,bearer); their "
        "cookie bytes are that header's value."
    )
    return table, {}
