"""Sizes: what each mode puts in the browser, per signing algorithm and token format
(``jws`` signed, ``jwe`` encrypted: the JWT modes only, a session ID has no format).

Counted in bytes: the auth cookie's value; the ``name=value`` pair every request sends
back (the Cookie header's share of authstate); the ``Set-Cookie`` lines of a login
(auth, refresh in hybrid, CSRF), each as a full header line ``Set-Cookie: …\\r\\n``.
The peers' cookies are in the in-process table.
"""

from __future__ import annotations

import contextlib

from authstate.asgi.auth_state import AuthState
from authstate.bench._context import MODES, Context
from authstate.bench.apps import BENCH_USER, start_authstate
from authstate.bench.report import Table


def _line(value: str) -> int:
    return len(f"Set-Cookie: {value}\r\n".encode("latin-1"))


async def run(ctx: Context) -> Table:
    options = ctx.options
    table = Table(
        "sizes",
        "Sizes: bytes per mode and algorithm",
        [
            "mode / algorithm",
            "auth cookie value",
            "sent with every request",
            "Set-Cookie at login (all lines)",
            "refresh cookie (to /auth only)",
        ],
    )
    combinations = [
        (mode, alg, fmt)
        for mode in MODES
        for alg in options.algorithms
        for fmt in ("jws", "jwe")
        # An opaque session ID depends on neither the algorithm nor the token format.
        if mode != "session" or (alg == options.algorithms[0] and fmt == "jws")
    ]
    ctx.progress.section("sizes", len(combinations))
    for mode, alg, fmt in combinations:
        auth: AuthState | None = None
        try:
            spec = {"mode": mode, "store": "memory://", "algorithm": alg}
            auth = await start_authstate({**spec, "token_format": fmt})
            issued = await auth.login(*BENCH_USER)
            policy = auth.cookie_policy
            csrf = auth.csrf_token(issued.principal.binding)
            lines = [policy.auth_cookie(issued.auth_value, issued.auth_max_age)]
            refresh = 0
            if issued.refresh_value is not None:
                lines.append(policy.refresh_cookie(issued.refresh_value, issued.refresh_max_age))
                refresh = len(f"{policy.refresh_cookie_name}={issued.refresh_value}")
            lines.append(policy.csrf_cookie(csrf, issued.auth_max_age))
            pair = len(f"{policy.auth_cookie_name}={issued.auth_value}")
            set_cookie = sum(_line(line) for line in lines)
            label = f"{mode} / {'any (opaque ID)' if mode == 'session' else alg}"
            if fmt == "jwe":
                label += " (JWE)"
            table.add(
                [label, len(issued.auth_value), pair, set_cookie, refresh or "-"],
                mode=mode,
                algorithm=None if mode == "session" else alg,
                token_format=None if mode == "session" else fmt,
                auth_value_bytes=len(issued.auth_value),
                cookie_pair_bytes=pair,
                set_cookie_bytes=set_cookie,
                set_cookie_lines=[_line(line) for line in lines],
                refresh_pair_bytes=refresh,
            )
        finally:
            if auth is not None:
                with contextlib.suppress(Exception):
                    await auth.stop()
        ctx.progress.advance("sizes", what=f"{mode} {alg} {fmt}")
    table.notes.append(
        "The CSRF cookie (readable by page scripts, echoed in X-CSRF-Token) is also sent with "
        "every request; it is in the Set-Cookie column, not the per-request one."
    )
    ctx.progress.finish("sizes")
    return table
