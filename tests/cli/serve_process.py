"""``authstate serve`` as a real subprocess on a free port, for the CLI and browser tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

COMMAND = [sys.executable, "-m", "authstate.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_cli(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env or clean_env(),
        check=False,
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSTATE_")}
    env.update(extra)
    return env


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    stderr_path: Path
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stdout(self) -> str:
        return "".join(self.lines)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def demo_passwords(self) -> dict[str, str]:
        """The demo users' passwords from the banner. The server may answer before the
        thread that reads its output has seen the banner's last lines: wait for both."""

        def found() -> dict[str, str]:
            return dict(re.findall(r"^  (alice|bob)\s+(\S+)", self.stdout, flags=re.M))

        wait_until(lambda: len(found()) == 2, timeout=30)
        return found()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Send ``sig`` and wait for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise


def _pump(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)


@contextmanager
def serve(
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    command: Sequence[str] = COMMAND,
    preexec_fn: Callable[[], object] | None = None,
) -> Iterator[Served]:
    """Start ``authstate serve --port P ARGS`` and wait until ``/healthz`` answers.

    ``command`` replaces ``python -m authstate.cli`` (e.g. a probe that wraps it);
    ``preexec_fn`` runs in the child before it starts (e.g. to lower a resource limit)."""
    port = free_port()
    stderr_path = tmp_path / f"serve-{port}.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [*command, "serve", "--port", str(port), *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env or clean_env(),
            cwd=cwd or tmp_path,
            preexec_fn=preexec_fn,
        )
    served = Served(process, port, stderr_path)
    threading.Thread(target=_pump, args=(process, served.lines), daemon=True).start()
    try:
        _wait_healthy(served)
        yield served
    finally:
        if process.poll() is None:
            with suppress(subprocess.TimeoutExpired):
                served.stop()


def _wait_healthy(served: Served, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise RuntimeError(f"authstate serve exited early:\n{served.stdout}\n{served.stderr}")
        try:
            if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                # The banner is printed before the server listens; give the pump a moment.
                while "listening" not in served.stdout and time.monotonic() < deadline:
                    time.sleep(0.02)
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"authstate serve did not become healthy:\n{served.stderr}")


def cookie_header(response: httpx.Response, previous: str = "") -> str:
    """The ``Cookie`` header a browser would send after ``response`` (httpx keeps ``Secure``
    cookies only over HTTPS, so plain-HTTP tests carry them by hand)."""
    jar = dict(pair.split("=", 1) for pair in previous.split("; ") if "=" in pair)
    for value in response.headers.get_list("set-cookie"):
        name, rest = value.split("=", 1)
        cookie_value = rest.split(";", 1)[0]
        if "Max-Age=0" in value:
            jar.pop(name, None)
        elif "Path=/auth" not in value:  # the refresh cookie is not sent to / anyway
            jar[name] = cookie_value
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def wait_until(predicate: object, timeout: float = 5.0, interval: float = 0.05) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def lines_of(text: str) -> Sequence[str]:
    return [line for line in text.splitlines() if line.strip()]
