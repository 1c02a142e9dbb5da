"""``authstate bench`` runs and reports: well-formed tables, JSON and targets.

Numbers are printed by the bench, never asserted here: the machine is shared and a timing
assertion would be a flaky test. Only the shape of the report is checked.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from authstate.bench._context import quick
from authstate.bench._env import require_loopback
from authstate.bench.e2e import parse_wrk
from authstate.bench.loadgen import run as loadgen_run
from authstate.bench.report import Report, judge, markdown, render, render_plain
from authstate.bench.runner import run as run_bench
from authstate.cli import main

WRK_OUTPUT = """\
Running 2s test @ http://127.0.0.1:8000/me
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.18ms  512.00us  12.31ms   91.20%
    Req/Sec     7.66k   310.22     8.01k    80.00%
  Latency Distribution
     50%    4.11ms
     75%    4.30ms
     90%    4.62ms
     99%  850.00us
  15245 requests in 2.00s, 2.37MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:   7615.93
Transfer/sec:      1.18MB
"""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.fixture(scope="module")
def report() -> Report:
    """One small run of every section on the memory and SQLite stores."""
    options = quick(
        stores=("memory", "sqlite"),
        algorithms=("EdDSA", "HS256"),
        peers=("stdlib-jwt",),
        rounds=2,
        sample_seconds=0.002,
        duration=1.0,
        warmup=0.0,
        e2e_modes=("stateless",),
        e2e_stores=("memory",),
        trials=3,
        scale=(100, 300),
    )
    return run_bench(options, progress=False)


@pytest.mark.slow
def test_every_section_reports_a_table_with_rows(report: Report) -> None:
    keys = [table.key for table in report.tables]
    assert keys == [
        "micro-jwt",
        "micro-modes",
        "login",
        "sizes",
        "inproc",
        "wsgi",
        "e2e",
        "revocation",
        "scale",
    ]
    for table in report.tables:
        assert table.rows, table.key
        assert len(table.rows) == len(table.raw)
        assert all(len(row) == len(table.columns) for row in table.rows), table.key


@pytest.mark.slow
def test_the_login_table_compares_an_unknown_user_with_a_known_one(report: Report) -> None:
    # The measurement the suite no longer times (T67): both refusals run one argon2id
    # verification with the production parameters, sampled side by side.
    login = report.table("login")
    assert login is not None and "m=19 MiB, t=2" in login.title
    known, unknown = login.raw
    assert known["times_known"] is None and unknown["times_known"] > 0


@pytest.mark.slow
def test_the_raw_numbers_are_numbers(report: Report) -> None:
    micro = report.table("micro-modes")
    assert micro is not None
    modes = {(row["mode"], row["store"]) for row in micro.raw}
    expected = {(m, s) for m in ("stateless", "session", "hybrid") for s in ("memory", "sqlite")}
    assert modes == expected
    for row in micro.raw:
        assert _is_number(row["cold_us"]) and _is_number(row["warm_us"])
    inproc = report.table("inproc")
    assert inproc is not None
    labels = {row["configuration"] for row in inproc.raw}
    assert "no auth (baseline)" in labels and "stdlib-jwt" in labels
    assert all(_is_number(row["us_per_request"]) for row in inproc.raw)
    e2e = report.table("e2e")
    assert e2e is not None
    for row in e2e.raw:
        assert "failure" not in row, row
        assert row["requests_per_second"] > 0 and row["discarded_pairs"] == 0
    revocation = report.table("revocation")
    assert revocation is not None and revocation.raw[0]["store"] == "sqlite"
    assert revocation.raw[0]["trials"] == 3 and not revocation.raw[0]["failure"]
    scale = report.table("scale")
    assert scale is not None
    assert [(r["store"], r["sessions"]) for r in scale.raw] == [
        ("memory", 100),
        ("memory", 300),
        ("sqlite", 100),
        ("sqlite", 300),
    ]


@pytest.mark.slow
def test_every_target_has_a_verdict_or_says_it_was_not_measured(report: Report) -> None:
    names = [target.name for target in report.targets]
    for expected in ("warm verification", "in-process overhead", "end to end"):
        assert expected in names
    assert "cold JWT verification, EdDSA" in names
    # This run had no Redis or PostgreSQL: the targets on them are the ones it cannot
    # judge, and it must say so rather than pass or fail them.
    unmeasured = {target.name for target in report.targets if target.met is None}
    assert unmeasured == {
        "revocation propagation",
        "bytes per session, redis",
        "bytes per session, postgres",
        "sessions on Redis",
    }
    for target in report.targets:
        if target.met is None:
            assert target.verdict.startswith("not measured"), target
        else:
            assert isinstance(target.met, bool) and target.measured != "-", target
            # "met" only with a margin beyond the figure's noise, which is shown.
            assert target.verdict in (
                "met",
                "NOT met",
                "within noise",
                "met (noise not measured)",
            ), target
            assert target.noise, target


def test_a_margin_inside_the_noise_is_never_met() -> None:
    assert judge(0.97, 1.0, at_most=True, noise=0.05) == (False, "within noise")
    assert judge(0.90, 1.0, at_most=True, noise=0.05) == (True, "met")
    assert judge(1.10, 1.0, at_most=True, noise=0.05) == (False, "NOT met")
    assert judge(0.96, 0.95, at_most=False, noise=0.02) == (False, "within noise")
    assert judge(0.90, 0.95, at_most=False, noise=0.02) == (False, "NOT met")
    assert judge(0.5, 1.0, at_most=True, noise=math.nan) == (True, "met (noise not measured)")
    assert judge(math.nan, 1.0, at_most=True, noise=0.0) == (None, "not measured")


@pytest.mark.slow
def test_the_report_renders_as_text_markdown_and_json(report: Report) -> None:
    for renderer in (render, render_plain):
        out = io.StringIO()
        renderer(report, out)
        text = out.getvalue()
        assert "Micro: JWT verification" in text and "Targets" in text
    assert "| configuration |" in markdown(report)
    decoded = json.loads(report.to_json())
    assert decoded["machine"]["cores"] and decoded["tables"] and decoded["targets"]


def test_the_command_writes_json_and_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    status = main(
        [
            "bench",
            "--quick",
            "--only",
            "sizes",
            "--store",
            "memory://",
            "--algorithms",
            "HS256",
            "--no-progress",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    assert status == 0
    assert "Sizes: bytes per mode and algorithm" in capsys.readouterr().out
    sizes = json.loads(out_json.read_text())["tables"][0]
    assert sizes["key"] == "sizes"
    assert {row["mode"] for row in sizes["raw"]} == {"stateless", "session", "hybrid"}
    assert "Sizes: bytes per mode and algorithm" in out_md.read_text()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["bench"], "--quick --full is required"),
        (["bench", "--quick", "--full"], "not allowed with"),
        (["bench", "--quick", "--only", "everything"], "unknown everything"),
        (["bench", "--quick", "--store", "redis://db.example.com:6379/0"], "127.0.0.1"),
        (["bench", "--quick", "--passes", "0"], "at least 1"),
        (["bench", "--quick", "--json", "/nonexistent-dir/run.json"], "does not exist"),
        (["bench", "--quick", "--markdown", "/nonexistent-dir/run.md"], "does not exist"),
    ],
)
def test_mistakes_are_one_line_errors_and_start_nothing(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("authstate: error: ") and fragment in err
    assert len(err.splitlines()) == 1


def test_only_loopback_targets_are_accepted() -> None:
    require_loopback("redis://127.0.0.1:6379/14")
    require_loopback("postgresql://postgres@localhost:5432/test")
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        require_loopback("postgresql://postgres@10.0.0.5/test")
    with pytest.raises(SystemExit):
        asyncio.run(loadgen_run("http://example.com/", connections=1, duration=0.1, cookie=""))


def test_wrk_output_is_read_with_its_units() -> None:
    numbers = parse_wrk(WRK_OUTPUT)
    assert numbers["requests_per_second"] == 7615.93
    assert numbers["requests"] == 15245
    assert numbers["p50_ms"] == pytest.approx(4.11)
    assert numbers["p99_ms"] == pytest.approx(0.85)
    assert numbers["non_2xx"] == 3 and numbers["errors"] == 3


@pytest.mark.anyio
async def test_the_fallback_load_generator_counts_requests_and_stops_by_itself() -> None:
    body = b'{"ok":true}'
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await loadgen_run(
            f"http://127.0.0.1:{port}/me", connections=4, duration=0.3, cookie="a=b"
        )
    assert result["requests"] > 0 and result["non_2xx"] == 0 and result["errors"] == 0
    assert result["seconds"] < 5
    assert math.isfinite(result["p99_ms"])


def test_end_to_end_rows_run_on_both_parsers_each_with_its_own_baseline() -> None:
    from types import SimpleNamespace

    from authstate.bench.e2e import _baseline_stack, _results

    configs = [
        ("no auth (baseline)", {"kind": "none"}),
        ("authstate hybrid / memory", {"kind": "authstate", "mode": "hybrid"}),
        ("authstate serve (hybrid / memory)", {"kind": "serve", "mode": "hybrid"}),
    ]
    both = _results(SimpleNamespace(options=quick()), configs)  # type: ignore[arg-type]
    assert [(r.label, r.http) for r in both] == [
        ("no auth (baseline) · h11", "h11"),
        ("authstate hybrid / memory · h11", "h11"),
        ("no auth (baseline) · httptools", "httptools"),
        ("authstate hybrid / memory · httptools", "httptools"),
        ("authstate serve (hybrid / memory)", "serve"),  # once, beside its own parser
    ]
    assert _baseline_stack("serve") == "httptools"
    one = _results(SimpleNamespace(options=quick(http=("h11",))), configs)  # type: ignore[arg-type]
    assert [(r.label, r.http) for r in one] == [
        ("no auth (baseline)", "h11"),
        ("authstate hybrid / memory", "h11"),
        ("authstate serve (hybrid / memory)", "h11"),
    ]


def _scale_row(store: str, sessions: int, per: float, logins: float = 2_000.0) -> dict[str, Any]:
    return {
        "store": store,
        "sessions": sessions,
        "store_bytes": per * sessions,
        "cold_us": 300.0,
        "warm_us": 1.5,
        "logins_per_second": logins,
        "fill_seconds": 400.0,
    }


def test_the_redis_capacity_target_reads_redis_and_redis_cluster_at_ten_million() -> None:
    from authstate.bench.report import Table
    from authstate.bench.runner import _bytes_per_session, _redis_capacity

    def table(*rows: dict[str, Any]) -> Table:
        made = Table("scale", "scale", ["store / sessions"])
        for row in rows:
            made.add([row["store"]], **row)
        return made

    both = table(_scale_row("redis", 10**7, 350), _scale_row("redis-cluster", 10**7, 360))
    [capacity] = _redis_capacity(both)
    assert capacity.met is True
    assert "redis-cluster: 10,000,000 sessions, 360 B each" in capacity.measured
    verdicts = {t.name: t.met for t in _bytes_per_session(both)}
    assert verdicts["bytes per session, redis"] is True
    assert verdicts["bytes per session, redis-cluster"] is True
    # No cluster, or one store short of 10⁷, or no login rate: not met.
    for rows in (
        [_scale_row("redis", 10**7, 350)],
        [_scale_row("redis", 10**7, 350), _scale_row("redis-cluster", 10**6, 360)],
        [_scale_row("redis", 10**7, 350), _scale_row("redis-cluster", 10**7, 360, math.nan)],
    ):
        [capacity] = _redis_capacity(table(*rows))
        assert capacity.met is False
    assert {t.name: t.met for t in _bytes_per_session(table(_scale_row("redis", 10**7, 500)))}[
        "bytes per session, redis"
    ] is False
