"""A/B two revisions of ``authstate serve``: req/s and server CPU per request, interleaved.

    .venv/bin/python benchmarks/ab_serve.py BASE_REV [--rounds 6] [--markdown FILE]

The base revision's ``src`` comes from git (``git archive``); the other side is this
checkout's. Each round starts ``authstate serve --demo --mode hybrid --store memory://``
from one side, logs alice in, warms 2 s, then runs ``wrk -t1 -c32 -d5s`` on
``GET /auth/me`` with her cookies (what the bench's serve row does) and reads the server's
utime+stime from /proc; the sides alternate, so both see the same minutes of a shared
machine. 127.0.0.1 only; every server is stopped before the next starts.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def base_source(revision: str, directory: Path) -> Path:
    archive = directory / "base.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", revision, "src"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(directory, filter="data")
    return directory / "src"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def wrk(url: str, host: str, cookie: str, seconds: int) -> tuple[float, int]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            "-c32",
            f"-d{seconds}s",
            "-H",
            f"Host: {host}",
            "-H",
            f"Cookie: {cookie}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"authstate serve answered errors under load:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rate, total


def one_run(src: Path, workdir: Path) -> tuple[float, float]:
    """(req/s, server CPU µs per request) of one serve process started from ``src``."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("AUTHSTATE_SECRET", None)
    banner = workdir / "serve.out"
    with banner.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-c", "from authstate.cli import main; main()", "serve", "--demo",
             "--mode", "hybrid", "--store", "memory://", "--port", str(port)],
            stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=workdir,
        )  # fmt: skip
    try:
        host, base = f"localhost:{port}", f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while "alice" not in banner.read_text():
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("authstate serve did not start")
            time.sleep(0.1)
        password = re.search(r"alice\s+(\S+)", banner.read_text()).group(1)  # type: ignore[union-attr]
        for _ in range(100):
            try:
                login = httpx.post(
                    f"{base}/auth/login",
                    json={"username": "alice", "password": password},
                    headers={"host": host, "origin": f"http://{host}"},
                )
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        login.raise_for_status()
        cookie = "; ".join(f"{c.name}={c.value}" for c in login.cookies.jar)
        wrk(f"{base}/auth/me", host, cookie, 2)  # warm up
        before = cpu_seconds(server.pid)
        rate, total = wrk(f"{base}/auth/me", host, cookie, 5)
        return rate, (cpu_seconds(server.pid) - before) / total * 1e6
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base", help="the git revision to compare this checkout with")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (apt-get install wrk)")
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "src"]
    ).returncode
    sides = {args.base: None, f"{head}{' (modified)' if dirty else ''}": ROOT / "src"}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sides[args.base] = base_source(args.base, workdir)
        for round_ in range(1, args.rounds + 1):
            for name, src in sides.items():
                assert src is not None
                rate, cpu = one_run(src, workdir)
                results[name].append((rate, cpu))
                print(f"round {round_} {name}: {rate:,.0f} req/s, {cpu:.1f} µs CPU per request")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    lines = [
        f"authstate serve A/B, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{args.rounds} interleaved rounds, load after {load}",
        "",
        "| revision | req/s (median) | req/s (each round) | server CPU µs/req (median) |",
        "|---|---:|---|---:|",
    ]
    for name, runs in results.items():
        rates = [r for r, _ in runs]
        each = ", ".join(f"{r:,.0f}" for r in rates)
        lines.append(
            f"| {name} | {statistics.median(rates):,.0f} | {each} |"
            f" {statistics.median(c for _, c in runs):.1f} |"
        )
    (base_runs, head_runs) = results.values()
    ratio = statistics.median(r for r, _ in head_runs) / statistics.median(r for r, _ in base_runs)
    lines += ["", f"this checkout ÷ {args.base}: {ratio:.2f} times the req/s"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
