"""docs/quickstart.md, run as a newcomer would: its shell commands, its app.py, its outputs.

The commands run in an empty directory with this virtualenv's ``bin`` first on ``PATH``
(``authstate``, ``uvicorn``) and no ``AUTHSTATE_*`` variables; port 8000 is replaced by a
free one. Each "output" block must match what the "run" block before it printed, where
"…" stands for any text (ids, tokens, times).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.docs.markdown import DOCS, ROOT, Block, blocks

pytestmark = pytest.mark.slow
QUICKSTART = DOCS / "quickstart.md"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(port: int, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the app did not start:\n{log.read_text()}")
        time.sleep(0.05)


def matches(expected: str, actual: str) -> bool:
    """``expected`` with each "…" standing for any run of characters, line ends trimmed."""
    pattern = ".*?".join(re.escape(part) for part in expected.strip().split("…"))
    return re.fullmatch(pattern, actual.strip(), flags=re.DOTALL) is not None


def test_matches_treats_the_ellipsis_as_a_wildcard() -> None:
    """The comparison used below: literal text, "…" for anything."""
    assert matches('{"id":"…","n":1}', '{"id":"abc","n":1}\n')
    assert not matches('{"id":"…","n":1}', '{"id":"abc","n":2}')


def test_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    """Every command succeeds and prints what the page says it prints."""
    if shutil.which("curl") is None:
        unavailable("curl is not installed (apt-get install curl)")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSTATE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    steps = [b for b in blocks(QUICKSTART) if b.kind in {"run", "output", "background", "file"}]
    assert [b.kind for b in steps].count("background") == 1

    def command(block: Block) -> str:
        return block.text.replace("8000", str(port))

    server: subprocess.Popen[str] | None = None
    log = tmp_path / "server.log"
    last: tuple[Block, str] | None = None
    try:
        for block in steps:
            if block.kind == "file":
                name, equals, source = block.args
                assert equals == "="
                assert block.text == (ROOT / source).read_text(), f"{block.where} != {source}"
                (tmp_path / name).write_text(block.text)
            elif block.kind == "background":
                with log.open("w") as out:
                    server = subprocess.Popen(
                        ["bash", "-c", "exec " + command(block).strip()],
                        cwd=tmp_path,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                _wait_for(port, server, log)
            elif block.kind == "run":
                done = subprocess.run(
                    ["bash", "-e", "-c", command(block)],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                assert done.returncode == 0, f"{block.where}: {done.stderr}"
                last = (block, done.stdout)
            else:
                assert last is not None, f"{block.where}: an output block before any command"
                ran, stdout = last
                assert matches(block.text, stdout), f"{ran.where} printed:\n{stdout}"
                last = None
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
