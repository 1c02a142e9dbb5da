"""Login: what a failed password check costs for a known and for an unknown user.

An unknown user must cost one real argon2id verification, like a known one (a dummy hash
with today's parameters), or the time of a refusal tells which names exist. The test
suite checks *that* each refusal runs exactly one verification with the same parameters
(tests/security/test_i_login.py, T67); how long each takes, side by side, is measured here,
with the production parameters, sampled interleaved like the micro tables (CPU time: the
verification runs in this thread).
"""

from __future__ import annotations

import contextlib
import secrets

from authstate.bench import _timing
from authstate.bench._context import Context
from authstate.bench.report import Table, ratio, us
from authstate.errors import InvalidCredentials
from authstate.passwords import PasswordHasher

_KNOWN = "failed login, known user (wrong password)"
_UNKNOWN = "failed login, unknown user (dummy hash)"


async def run(ctx: Context) -> Table:
    hasher = PasswordHasher()
    stored = hasher.hash(secrets.token_urlsafe(16))
    wrong = secrets.token_urlsafe(16)

    def known() -> None:
        with contextlib.suppress(InvalidCredentials):
            hasher.verify(stored, wrong)

    def unknown() -> None:
        with contextlib.suppress(InvalidCredentials):
            hasher.verify(None, wrong)

    ctx.progress.section("login", ctx.options.rounds)
    series = await _timing.sample(
        {_KNOWN: known, _UNKNOWN: unknown},
        rounds=ctx.options.rounds,
        sample_seconds=ctx.options.sample_seconds,
        is_async=lambda name: False,
        on_round=lambda: ctx.progress.advance("login", what="argon2id"),
        max_iterations=1_000,
    )
    ctx.progress.finish("login")
    parameters = hasher.parameters
    table = Table(
        "login",
        "Login: one failed password check, µs (argon2id "
        f"m={parameters.memory_cost // 1024} MiB, t={parameters.time_cost}, "
        f"p={parameters.parallelism})",
        ["refusal", "µs", "× known user"],
    )
    base = series[_KNOWN]
    for name, s in series.items():
        times = _timing.median_ratio(s, base)
        table.add(
            [name, us(s.median), "-" if s is base else ratio(times)],
            refusal=name,
            us=s.median,
            times_known=None if s is base else times,
            times_known_noise=None if s is base else _timing.ratio_noise(s, base),
            samples=s.samples,
        )
    table.notes.append(
        "An unknown user near 1.00× the known one is the point: a refusal's time does not "
        "tell whether the name exists. Sampled in the same interleaved rounds; CPU time."
    )
    return table
