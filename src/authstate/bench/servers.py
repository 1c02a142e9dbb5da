"""The servers of the end-to-end section: the bare bench app under uvicorn, and
``authstate serve`` exactly as a user starts it; each started on a free loopback port,
checked, and stopped by PID."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx

from authstate.bench.apps import BENCH_ACCESS_TTL, DEFAULT_SECRET, SPEC_ENV
from authstate.cookies import AUTH_COOKIE

_START_TIMEOUT = 30.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


class Server:
    """One uvicorn process serving one configuration on 127.0.0.1."""

    me_path = "/me"

    def __init__(self, spec: dict[str, Any], *, http: str, loop: str, log: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, SPEC_ENV: json.dumps(spec)}
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "authstate.bench.apps:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            loop,
            "--http",
            http,
        ]
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_ready(self) -> str:
        """The logged-in Cookie header, once the server answers."""
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(self.url + "/bench/cookie", timeout=2.0)
                if response.status_code == 200:
                    return response.text
            time.sleep(0.1)
        raise RuntimeError("the server did not start in time")

    def check(self, cookie: str, *, anonymous: bool, header: str = "Cookie") -> None:
        """``/me`` is 200 with the cookie (sent in ``header``) and (unless there is no auth)
        401 when tampered."""
        headers = {header: cookie} if cookie else {}
        response = httpx.get(self.url + self.me_path, headers=headers, timeout=5.0)
        if response.status_code != 200:
            raise RuntimeError(f"GET /me with the cookie answered {response.status_code}")
        if anonymous:
            return
        # The credential's last characters changed, whichever header carries it.
        tampered = f"{cookie[:-4]}{'AAAA' if cookie[-4:] != 'AAAA' else 'BBBB'}"
        response = httpx.get(self.url + self.me_path, headers={header: tampered}, timeout=5.0)
        if response.status_code != 401:
            raise RuntimeError(f"GET /me with a tampered cookie answered {response.status_code}")

    def cpu(self) -> float:
        return _cpu_seconds(self.process.pid)

    def stop(self) -> None:
        process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self._log.close()


class ServeCommand(Server):
    """``authstate serve`` as a user starts it, with the demo users, on 127.0.0.1."""

    me_path = "/auth/me"

    def __init__(self, spec: dict[str, Any], *, log: str) -> None:
        if spec["store"].startswith("postgres"):
            from authstate.bench._env import ensure_postgres_schema

            asyncio.run(ensure_postgres_schema(spec["store"]))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSTATE_")}
        # The same secret and token lifetime as the bare-app rows (see apps.py).
        env.update(AUTHSTATE_SECRET=DEFAULT_SECRET, AUTHSTATE_ACCESS_TTL=BENCH_ACCESS_TTL)
        command = [sys.executable, "-m", "authstate.cli", "serve", "--demo"]
        command += ["--mode", spec["mode"], "--store", spec["store"]]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        self._stdout_path = os.path.join(spec["tmpdir"], f"serve-{self.port}.out")
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        with open(self._stdout_path, "wb") as stdout:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
                command, env=env, stdout=stdout, stderr=self._log, cwd=spec["tmpdir"]
            )

    def wait_ready(self) -> str:
        """Log in as the demo user alice once the server answers; the auth cookie."""
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"authstate serve exited with status {self.process.returncode}")
            with open(self._stdout_path, encoding="utf-8") as stdout:
                found = re.search(r"^  alice\s+(\S+)", stdout.read(), flags=re.MULTILINE)
            if found:
                with contextlib.suppress(httpx.HTTPError):
                    return self._login("alice", found.group(1))
            time.sleep(0.1)
        raise RuntimeError("authstate serve did not start in time")

    def _login(self, name: str, password: str) -> str:
        credentials = {"username": name, "password": password}
        response = httpx.post(self.url + "/auth/login", json=credentials, timeout=10.0)
        if response.status_code != 200:
            raise RuntimeError(f"POST /auth/login answered {response.status_code}")
        # By hand: httpx keeps Secure cookies for https only.
        for header in response.headers.get_list("set-cookie"):
            pair = header.split(";", 1)[0]
            if pair.startswith(f"{AUTH_COOKIE}="):
                return pair
        raise RuntimeError("POST /auth/login set no auth cookie")
